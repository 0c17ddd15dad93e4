//! `quantize` and `fuse_truncation` on small graphs: scales, truncation placement, alignment,
//! Circa's drop bits, refusals; and the simulator's Circa fault rate against the formula.

use veil_ir::{CircaVariant, Domain, ElemType, Graph, Op, Tensor, TensorType, TruncMode, eval::run_fixed, verify};
use veil_passes::{Activation, Options, run_pipeline};

fn fx(frac_bits: u8) -> ElemType {
    ElemType::Fixed { frac_bits }
}

/// x:[1,4] → dense(4) → relu → dense(3) [→ + the relu output, with `residual`] → reveal.
fn mlp(residual: bool, weight_scale: f32) -> Graph {
    let mut g = Graph::new("t");
    let x = g.add_input("x", TensorType::f32(vec![1, 4]));
    let w1 =
        g.add_const("w1", vec![4, 4], Domain::Server, (0..16).map(|i| weight_scale * (i as f32 - 7.5) / 8.0).collect());
    let b1 = g.add_const("b1", vec![4], Domain::Server, vec![0.1, -0.2, 0.3, 0.0]);
    let n2 = if residual { 4 } else { 3 };
    let w2 = g.add_const("w2", vec![n2, 4], Domain::Server, (0..n2 * 4).map(|i| (i as f32 - 6.0) / 10.0).collect());
    let h = g.add_node("fc1", "h", Op::Dense { weight: w1, bias: Some(b1) }, &[x]).unwrap();
    let r = g.add_node("act", "r", Op::Relu, &[h]).unwrap();
    let mut y = g.add_node("fc2", "y", Op::Dense { weight: w2, bias: None }, &[r]).unwrap();
    if residual {
        y = g.add_node("skip", "z", Op::Add, &[y, r]).unwrap();
    }
    let out = g.add_node("reveal", "out", Op::Reveal, &[y]).unwrap();
    g.outputs.push(out);
    g
}

fn by_name<'g>(g: &'g Graph, name: &str) -> &'g veil_ir::Value {
    g.values.iter().find(|(_, v)| v.name == name).unwrap_or_else(|| panic!("no value {name}")).1
}

#[test]
fn scales_add_up_and_truncations_fuse_into_the_relu() {
    let mut g = mlp(false, 1.0);
    run_pipeline(&mut g, &Options::default(), None, true).unwrap();
    verify(&g).unwrap();
    assert_eq!(by_name(&g, "x").ty.elem, fx(12));
    assert_eq!(by_name(&g, "h").ty.elem, fx(24), "input scale + weight scale");
    assert_eq!(by_name(&g, "r").ty.elem, fx(12));
    assert_eq!(by_name(&g, "y").ty.elem, fx(24), "outputs are revealed unscaled");
    let truncs: Vec<_> = g
        .live_nodes()
        .filter_map(|(_, n)| match n.op {
            Op::Truncate { bits, mode } => Some((bits, mode)),
            _ => None,
        })
        .collect();
    assert_eq!(truncs, [(12, TruncMode::Exact)], "one truncation, fused into the ReLU's circuit");
    let w1 = g.consts.iter().find(|(_, c)| c.name == "w1").unwrap().1;
    assert_eq!(w1.frac_bits, Some(12));
    assert_eq!(w1.qdata[0], (-7.5f64 / 8.0 * 4096.0).round() as i64);
    let b1 = g.consts.iter().find(|(_, c)| c.name == "b1").unwrap().1;
    assert_eq!(b1.frac_bits, Some(24));
    assert!(g.ring_bits.is_some_and(|l| l <= 61));
}

#[test]
fn residual_add_raises_the_lower_scale_exactly() {
    let mut g = mlp(true, 1.0);
    run_pipeline(&mut g, &Options::default(), None, true).unwrap();
    let align = g.live_nodes().find(|(_, n)| n.name == "skip/align").expect("the skip operand is aligned").1;
    let Op::Affine { scale: Some(c), shift: None } = align.op else { panic!("{:?}", align.op) };
    assert_eq!((g.consts[c].frac_bits, g.consts[c].qdata.clone()), (Some(12), vec![4096]));
    assert_eq!(g.values[align.output].ty.elem, fx(24));
    let x = Tensor::new(vec![1, 4], vec![0.5, -0.25, 1.0, 0.75]).unwrap();
    let run = run_fixed(&g, &[x], 0).unwrap();
    assert_eq!(run.truncation_wraps, 0);
}

#[test]
fn polynomials_get_a_local_truncation_and_circa_its_drop_bits() {
    let mut g = mlp(false, 1.0);
    let mut opts = Options { activation: Activation::Poly, ..Options::default() };
    run_pipeline(&mut g, &opts, None, true).unwrap();
    let (bits, mode) = g
        .live_nodes()
        .find_map(|(_, n)| match n.op {
            Op::Truncate { bits, mode } => Some((bits, mode)),
            _ => None,
        })
        .unwrap();
    assert_eq!((bits, mode), (12, TruncMode::Local), "a polynomial is not a garbled circuit");
    assert_eq!(by_name(&g, "r").ty.elem, fx(24), "x² + x with integer coefficients: scale 2·12");

    let mut g = mlp(false, 1.0);
    opts.activation = Activation::Circa;
    run_pipeline(&mut g, &opts, None, true).unwrap();
    let act = g.live_nodes().find(|(_, n)| n.name == "act").unwrap().1;
    let Op::StochasticRelu { drop_bits, variant, test_bits: Some(m) } = act.op else { panic!("{:?}", act.op) };
    assert_eq!((drop_bits, variant), (Some(24 - 5), CircaVariant::PosZero));
    assert!(m < g.ring_bits.unwrap() && m > 24, "the test ring (m = {m}) holds the value, not the plan's headroom");
}

/// x (|x| ≤ b) → Circa → reveal at F = 12: the operand is the input at scale 12, k = 12 − 5 = 7,
/// and the bound is the integer B = 3985 = 2^12 − 2^7 + 17. In Z_2^13 the value −B leaves
/// u₀ = 2^12 − B = 111 low bits above −2^12, so the test errs with probability
/// (2^7 − 1 − 111)/2^7 = 2^−3 (by hand, docs/decisions.md); in Z_2^14 never. A budget of 2^−3
/// picks 13 bits, the default 2^−20 picks 14, and 2^−4 (below it) picks 14 too.
#[test]
fn circa_test_ring_is_the_narrowest_meeting_the_fault_budget() {
    for (p, want) in [(1.0 / 8.0, 13u8), (1.0 / 16.0, 14), (veil_passes::quantize::CIRCA_FAULT_RATE, 14)] {
        let mut g = Graph::new("t");
        let x = g.add_input("x", TensorType::f32(vec![1, 4]));
        let r = g.add_node("act", "r", Op::Relu, &[x]).unwrap();
        let out = g.add_node("reveal", "out", Op::Reveal, &[r]).unwrap();
        g.outputs.push(out);
        let opts = Options {
            activation: Activation::Circa,
            input_bound: 3985.0 / 4096.0,
            circa_fault_rate: p,
            ..Options::default()
        };
        run_pipeline(&mut g, &opts, None, true).unwrap();
        let act = g.live_nodes().find(|(_, n)| n.name == "act").unwrap().1;
        assert_eq!(
            act.op,
            Op::StochasticRelu { drop_bits: Some(7), variant: CircaVariant::PosZero, test_bits: Some(want) },
            "budget {p}"
        );
    }
}

/// The simulator runs the sign test in its test ring: at the worst-case value −B of the test
/// above, a 13-bit test ring errs at the formula's rate 2^−3 (counted as wrap faults), a 14-bit
/// one never.
#[test]
fn simulated_wrap_faults_match_the_formula() {
    let n = 20_000;
    for (m, p) in [(13u8, 1.0 / 8.0), (14, 0.0)] {
        let mut g = Graph::new("circa");
        let x = g.add_input("x", TensorType { elem: fx(12), shape: vec![n] });
        let op = Op::StochasticRelu { drop_bits: Some(7), variant: CircaVariant::PosZero, test_bits: Some(m) };
        let r = g.add_node("s", "r", op, &[x]).unwrap();
        g.outputs.push(r);
        g.ring_bits = Some(40);
        verify(&g).unwrap();
        let input = Tensor::new(vec![n], vec![-3985.0 / 4096.0; n]).unwrap();
        let run = run_fixed(&g, &[input], 7).unwrap();
        assert_eq!(run.circa_wrap_faults, run.circa_faults, "no value is near zero");
        let rate = run.circa_faults as f64 / n as f64;
        let sd = (p * (1.0 - p) / n as f64).sqrt();
        assert!((rate - p).abs() <= 5.0 * sd, "m={m}: wrap fault rate {rate}, formula {p}");
        // A wrap fault passes the negative value unchanged.
        let passed = run.outputs[0].data.iter().filter(|&&v| v != 0.0).count();
        assert_eq!(passed, run.circa_faults);
    }
}

#[test]
fn values_that_cannot_fit_are_refused_with_the_node_named() {
    let mut g = mlp(false, 1e13);
    let e = run_pipeline(&mut g, &Options::default(), None, true).unwrap_err();
    assert!(e.is_user_error());
    let msg = e.to_string();
    assert!(msg.contains("quantize: node \"fc1\" needs") && msg.contains("bits"), "{msg}");
}

/// docs/fixed-point.md: with uniformly random shares, a value 0 ≤ y < 2^k is read as negative with
/// probability about 1 − y/2^k. Exactly: the low k bits a′ of the client's share are uniform and
/// the carry is lost iff a′ > y, so P = (2^k − 1 − y)/2^k; for NegPass, v = y + 2^k passes iff
/// a′ ≤ v, so P = (v + 1)/2^k. The simulator must produce those rates.
#[test]
fn simulated_circa_fault_rate_matches_the_formula() {
    let (frac, k) = (8u8, 6u8);
    for (y, variant, p) in [
        (16i64, CircaVariant::PosZero, (64.0 - 1.0 - 16.0) / 64.0),
        (-16, CircaVariant::NegPass, (-16.0 + 64.0 + 1.0) / 64.0),
    ] {
        let mut g = Graph::new("circa");
        let n = 40_000;
        let x = g.add_input("x", TensorType { elem: fx(frac), shape: vec![n] });
        let r =
            g.add_node("s", "r", Op::StochasticRelu { drop_bits: Some(k), variant, test_bits: None }, &[x]).unwrap();
        g.outputs.push(r);
        g.ring_bits = Some(40);
        verify(&g).unwrap();
        let input = Tensor::new(vec![n], vec![y as f32 / 256.0; n]).unwrap();
        let run = run_fixed(&g, &[input], 42).unwrap();
        let rate = run.circa_faults as f64 / run.circa_tests as f64;
        let sd = (p * (1.0 - p) / n as f64).sqrt();
        assert!((rate - p).abs() < 5.0 * sd, "{variant:?} y={y}: fault rate {rate}, formula {p}");
        // A fault zeroes a small positive (PosZero) or passes a small negative (NegPass).
        let wrong = run.outputs[0].data.iter().filter(|&&v| if y > 0 { v == 0.0 } else { v != 0.0 }).count();
        assert_eq!(wrong, run.circa_faults);
    }
}
