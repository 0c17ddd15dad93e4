//! Unit tests of the float-level passes on small built graphs: what each rewrites, and that the
//! float result is unchanged (or changed exactly as asked, for activation substitution).

use veil_ir::{
    CircaVariant, Domain, Graph, Op, Tensor, TensorType, Window2d, eval::run_fixed, eval::run_float, verify,
};
use veil_passes::{Activation, Options, run_pipeline};

fn ops(g: &Graph) -> Vec<&'static str> {
    g.live_nodes().map(|(_, n)| n.op.mnemonic()).collect()
}

fn image(c: usize, hw: usize) -> Tensor {
    Tensor::new(vec![1, c, hw, hw], (0..c * hw * hw).map(|i| ((i * 37) % 17) as f32 / 8.0 - 1.0).collect()).unwrap()
}

fn close(a: &[Tensor], b: &[Tensor]) {
    for (x, y) in a.iter().zip(b) {
        for (p, q) in x.data.iter().zip(&y.data) {
            assert!((p - q).abs() <= 1e-5 * (1.0 + q.abs()), "{p} vs {q}");
        }
    }
}

fn bn_consts(g: &mut Graph, c: usize) -> [veil_ir::Const; 4] {
    let v = |k: usize| (0..c).map(|i| 0.5 + (i * k % 7) as f32 / 10.0).collect::<Vec<_>>();
    [
        g.add_const("s", vec![c], Domain::Server, v(3)),
        g.add_const("b", vec![c], Domain::Server, v(5)),
        g.add_const("m", vec![c], Domain::Server, v(2)),
        g.add_const("v", vec![c], Domain::Server, v(4)),
    ]
}

#[test]
fn batchnorm_after_conv_folds_into_it_and_elsewhere_becomes_affine() {
    let mut g = Graph::new("bn");
    let x = g.add_input("x", TensorType::f32(vec![1, 2, 5, 5]));
    let w = g.add_const("w", vec![3, 2, 3, 3], Domain::Server, (0..54).map(|i| (i as f32 - 27.0) / 30.0).collect());
    let window = Window2d { kernel: [3, 3], strides: [1, 1], pads: [1; 4], dilations: [1, 1] };
    let c = g.add_node("conv", "c", Op::Conv2d { weight: w, bias: None, window, groups: 1 }, &[x]).unwrap();
    let [s, b, m, v] = bn_consts(&mut g, 3);
    let y = g.add_node("bn1", "y", Op::BatchNorm { scale: s, bias: b, mean: m, var: v, epsilon: 1e-3 }, &[c]).unwrap();
    let r = g.add_node("relu", "r", Op::Relu, &[y]).unwrap();
    let [s, b, m, v] = bn_consts(&mut g, 3);
    let z = g.add_node("bn2", "z", Op::BatchNorm { scale: s, bias: b, mean: m, var: v, epsilon: 1e-3 }, &[r]).unwrap();
    let out = g.add_node("reveal", "out", Op::Reveal, &[z]).unwrap();
    g.outputs.push(out);
    let before = run_float(&g, &[image(2, 5)]).unwrap();
    run_pipeline(&mut g, &Options::default(), Some(veil_passes::Pass::FoldBatchnorm.into()), true).unwrap();
    assert_eq!(ops(&g), ["conv2d", "relu", "affine", "reveal"]);
    close(&run_float(&g, &[image(2, 5)]).unwrap(), &before);
}

#[test]
fn normalize_linear_folds_biases_splits_pools_and_moves_scalar_scales_forward() {
    let mut g = Graph::new("lin");
    let x = g.add_input("x", TensorType::f32(vec![1, 2, 4, 4]));
    // avgpool without counting padding → sumpool + per-position divisor.
    let pool = Window2d { kernel: [3, 3], strides: [1, 1], pads: [1; 4], dilations: [1, 1] };
    let p = g.add_node("pool", "p", Op::AvgPool { window: pool, count_include_pad: false }, &[x]).unwrap();
    // A scalar scale, then a reshape, then a dense: the scale moves into the dense.
    let half = g.add_const("half", vec![], Domain::Public, vec![0.5]);
    let h = g.add_node("scale", "h", Op::Affine { scale: Some(half), shift: None }, &[p]).unwrap();
    let f = g.add_node("flat", "f", Op::Reshape { shape: vec![1, 32] }, &[h]).unwrap();
    let w = g.add_const("w", vec![3, 32], Domain::Server, (0..96).map(|i| (i as f32 - 48.0) / 50.0).collect());
    let d = g.add_node("fc", "d", Op::Dense { weight: w, bias: None }, &[f]).unwrap();
    // MatMul + Add as exporters write it: the shift becomes the dense's bias.
    let t = g.add_const("t", vec![1, 3], Domain::Server, vec![0.1, -0.2, 0.3]);
    let y = g.add_node("bias", "y", Op::Affine { scale: None, shift: Some(t) }, &[d]).unwrap();
    let out = g.add_node("reveal", "out", Op::Reveal, &[y]).unwrap();
    g.outputs.push(out);
    let before = run_float(&g, &[image(2, 4)]).unwrap();
    run_pipeline(&mut g, &Options::default(), Some(veil_passes::Pass::NormalizeLinear.into()), true).unwrap();
    assert_eq!(ops(&g), ["sumpool", "affine", "reshape", "dense", "reveal"], "{}", veil_ir::print::to_text(&g));
    let Op::Dense { bias: Some(_), .. } = g.live_nodes().find(|(_, n)| n.name == "fc").unwrap().1.op else {
        panic!("the shift became the bias")
    };
    // The divisor is public and per position: 4 at corners, 6 on edges, 9 inside.
    let Op::Affine { scale: Some(div), .. } = g.live_nodes().find(|(_, n)| n.op.mnemonic() == "affine").unwrap().1.op
    else {
        panic!("divisor")
    };
    let k = &g.consts[div];
    assert_eq!((k.domain, k.shape.clone()), (Domain::Public, vec![1, 1, 4, 4]));
    assert_eq!(&k.data[..4], &[1.0 / 4.0, 1.0 / 6.0, 1.0 / 6.0, 1.0 / 4.0]);
    assert_eq!(k.data[5], 1.0 / 9.0);
    close(&run_float(&g, &[image(2, 4)]).unwrap(), &before);
}

/// A secret scalar scale on the client's input moves into the first linear layer; the data
/// movement in between then runs on the client's side (found by the `onnx_compile` fuzz target:
/// the transpose kept the affine's shared domain, and the verifier refused the graph).
#[test]
fn a_scale_moved_off_the_client_input_leaves_the_data_movement_with_the_client() {
    let mut g = Graph::new("neg");
    let x = g.add_input("x", TensorType::f32(vec![3, 2]));
    let s = g.add_const("minus", vec![], Domain::Server, vec![-1.0]);
    let h = g.add_node("neg", "h", Op::Affine { scale: Some(s), shift: None }, &[x]).unwrap();
    let t = g.add_node("t", "t", Op::Transpose { perm: vec![1, 0] }, &[h]).unwrap();
    let w = g.add_const("w", vec![4, 3], Domain::Server, (0..12).map(|i| i as f32 / 4.0 - 1.0).collect());
    let d = g.add_node("fc", "d", Op::Dense { weight: w, bias: None }, &[t]).unwrap();
    let out = g.add_node("reveal", "out", Op::Reveal, &[d]).unwrap();
    g.outputs.push(out);
    let input = Tensor::new(vec![3, 2], vec![0.5, -1.0, 0.25, 1.0, -0.75, 0.0]).unwrap();
    let before = run_float(&g, std::slice::from_ref(&input)).unwrap();
    run_pipeline(&mut g, &Options::default(), Some(veil_passes::Pass::NormalizeLinear.into()), true).unwrap();
    assert_eq!(ops(&g), ["transpose", "dense", "reveal"], "{}", veil_ir::print::to_text(&g));
    let domain = |name: &str| g.values[g.live_nodes().find(|(_, n)| n.name == name).unwrap().1.output].domain;
    assert_eq!((domain("t"), domain("fc")), (Domain::Client, Domain::Shared));
    close(&run_float(&g, &[input]).unwrap(), &before);
}

/// A public no-op shift on the client's input is dropped, and what followed it (shared because
/// of it) goes back to the client, its reveal with it (found by the `onnx_compile` fuzz
/// target). A secret one is kept: whether a weight is zero must not show in the plan.
#[test]
fn dropping_a_no_op_on_the_client_input_gives_the_rest_back_to_the_client() {
    for domain in [Domain::Public, Domain::Server] {
        let mut g = Graph::new("zero");
        let x = g.add_input("x", TensorType::f32(vec![1, 2, 2, 5]));
        let z = g.add_const("zeros", vec![5], domain, vec![0.0; 5]);
        let h = g.add_node("add", "h", Op::Affine { scale: None, shift: Some(z) }, &[x]).unwrap();
        let r = g.add_node("relu", "r", Op::Relu, &[h]).unwrap();
        let out = g.add_node("reveal", "out", Op::Reveal, &[r]).unwrap();
        g.outputs.push(out);
        let input = image(2, 2);
        let input =
            Tensor::new(vec![1, 2, 2, 5], (0..20).map(|i| input.data[i % 8] * (i as f32 - 9.5)).collect()).unwrap();
        let before = run_float(&g, std::slice::from_ref(&input)).unwrap();
        run_pipeline(&mut g, &Options::default(), Some(veil_passes::Pass::FoldConstants.into()), true).unwrap();
        if domain == Domain::Public {
            assert_eq!(ops(&g), ["relu"], "{}", veil_ir::print::to_text(&g));
            assert_eq!(g.values[g.outputs[0]].domain, Domain::Client);
        } else {
            assert_eq!(ops(&g), ["affine", "relu", "reveal"], "{}", veil_ir::print::to_text(&g));
        }
        close(&run_float(&g, &[input]).unwrap(), &before);
    }
}

/// An input normalisation `(x − mean) / std` per channel moves into the first layer: scaled
/// weights, the shift's contribution in the bias (no padding, dense) or, with zero padding,
/// as a per-position shift after the layer; the float result is unchanged and the plan lowers
/// (a secret scale on the client's input has no two-party protocol). The plan's structure
/// depends on the window only, not on the weights: a zero mean folds the same way.
#[test]
fn an_input_normalisation_moves_into_the_first_layer() {
    let cases = [([0; 4], 1, false), ([1, 0, 2, 1], 1, false), ([1; 4], 2, false), ([0; 4], 1, true)];
    for ((pads, groups, dense), zero_mean) in cases.into_iter().flat_map(|c| [(c, false), (c, true)]) {
        let mut g = Graph::new("norm");
        let x = g.add_input("x", TensorType::f32(vec![1, 2, 5, 5]));
        let (cshape, n) = if dense { (vec![5], 5) } else { (vec![1, 2, 1, 1], 2) };
        let mean = g.add_const(
            "mean",
            cshape.clone(),
            Domain::Server,
            (0..n).map(|i| if zero_mean { 0.0 } else { 0.25 + i as f32 / 8.0 }).collect(),
        );
        let inv_std = g.add_const("inv_std", cshape, Domain::Server, (0..n).map(|i| 2.0 + i as f32 / 2.0).collect());
        let h = g.add_node("norm", "h", Op::Affine { scale: Some(inv_std), shift: Some(mean) }, &[x]).unwrap();
        let y = if dense {
            let w = g.add_const("w", vec![3, 5], Domain::Server, (0..15).map(|i| (i as f32 - 7.0) / 8.0).collect());
            g.add_node("fc", "y", Op::Dense { weight: w, bias: None }, &[h]).unwrap()
        } else {
            let w = g.add_const(
                "w",
                vec![4, 2 / groups, 3, 3],
                Domain::Server,
                (0..72 / groups).map(|i| ((i * 5) % 9) as f32 / 4.0 - 1.0).collect(),
            );
            let b = g.add_const("b", vec![4], Domain::Server, vec![0.5, -0.5, 0.25, 0.0]);
            let window = Window2d { kernel: [3, 3], strides: [1, 1], pads, dilations: [1, 1] };
            g.add_node("conv", "y", Op::Conv2d { weight: w, bias: Some(b), window, groups }, &[h]).unwrap()
        };
        let r = g.add_node("relu", "r", Op::Relu, &[y]).unwrap();
        let out = g.add_node("reveal", "out", Op::Reveal, &[r]).unwrap();
        g.outputs.push(out);
        let input = image(2, 5);
        let before = run_float(&g, std::slice::from_ref(&input)).unwrap();
        let mut folded = g.clone();
        run_pipeline(&mut folded, &Options::default(), Some(veil_passes::Pass::NormalizeLinear.into()), true).unwrap();
        let padded = pads != [0; 4];
        let want: &[&str] =
            if padded { &["conv2d", "affine", "relu", "reveal"] } else { &["conv2d", "relu", "reveal"] };
        let want: Vec<&str> = want.iter().map(|&o| if dense && o == "conv2d" { "dense" } else { o }).collect();
        assert_eq!(ops(&folded), want, "{pads:?} groups {groups}:\n{}", veil_ir::print::to_text(&folded));
        close(&run_float(&folded, &[input]).unwrap(), &before);
        run_pipeline(&mut g, &Options::default(), None, true).unwrap();
        veil_ir::schedule::lower(&g).unwrap_or_else(|e| panic!("{pads:?} groups {groups}: {e:?}"));
    }
}

#[test]
fn substitution_follows_the_policy_and_the_overrides() {
    let build = || {
        let mut g = Graph::new("act");
        let x = g.add_input("x", TensorType::f32(vec![1, 4]));
        let w = g.add_const("w", vec![4, 4], Domain::Server, (0..16).map(|i| i as f32 / 10.0 - 0.8).collect());
        let mut v = x;
        for i in 0..3 {
            v = g.add_node(format!("fc{i}"), format!("h{i}"), Op::Dense { weight: w, bias: None }, &[v]).unwrap();
            v = g.add_node(format!("act{i}"), format!("a{i}"), Op::Relu, &[v]).unwrap();
        }
        let p = g.add_node("trained", "p", Op::Poly { coeffs: vec![0.0, 1.0, 1.0] }, &[v]).unwrap();
        let out = g.add_node("reveal", "out", Op::Reveal, &[p]).unwrap();
        g.outputs.push(out);
        g
    };
    let mut g = build();
    let mut opts = Options { activation: Activation::Poly, poly: [0.25, 0.5, 0.125], ..Options::default() };
    opts.layer_activation.insert("act1".into(), Activation::Circa);
    opts.layer_activation.insert("act2".into(), Activation::Relu);
    opts.circa_variant = CircaVariant::NegPass;
    let x = Tensor::new(vec![1, 4], vec![0.5, -1.0, 2.0, 0.25]).unwrap();
    run_pipeline(&mut g, &opts, Some(veil_passes::Pass::SubstituteActivations.into()), true).unwrap();
    verify(&g).unwrap();
    let op = |name: &str| g.live_nodes().find(|(_, n)| n.name == name).unwrap().1.op.clone();
    assert_eq!(op("act0"), Op::Poly { coeffs: vec![0.125, 0.5, 0.25] });
    assert_eq!(op("act1"), Op::StochasticRelu { drop_bits: None, variant: CircaVariant::NegPass, test_bits: None });
    assert_eq!(op("act2"), Op::Relu);
    assert_eq!(op("trained"), Op::Poly { coeffs: vec![0.0, 1.0, 1.0] }, "trained polynomials are kept");
    // Float semantics: only the substituted polynomial changes the result.
    let mut reference = build();
    let n = reference.body[1];
    reference.nodes[n].op = Op::Poly { coeffs: vec![0.125, 0.5, 0.25] };
    close(&run_float(&g, std::slice::from_ref(&x)).unwrap(), &run_float(&reference, &[x]).unwrap());
}

/// `F.relu(F.max_pool2d(conv(x), 2))`: under `--nonlinear ot` the ReLU moves before the pool
/// (the same values, ReLU being monotone), so the pool reads non-negative values and both run
/// over OT; the fixed-point result is the garbled plan's, bit for bit (a floor shift and a ReLU
/// both commute with a maximum). Under the default the graph keeps its order.
#[test]
fn a_relu_after_a_maxpool_moves_before_it_over_ot_with_the_same_result() {
    use veil_ir::schedule::{Kind, lower};
    use veil_passes::NonlinearChoice;
    let build = || {
        let mut g = Graph::new("pool_relu");
        let x = g.add_input("x", TensorType::f32(vec![1, 2, 6, 6]));
        let w = g.add_const("w", vec![3, 2, 3, 3], Domain::Server, (0..54).map(|i| (i as f32 - 27.0) / 30.0).collect());
        let window = Window2d { kernel: [3, 3], strides: [1, 1], pads: [1; 4], dilations: [1, 1] };
        let c = g.add_node("conv", "c", Op::Conv2d { weight: w, bias: None, window, groups: 1 }, &[x]).unwrap();
        // A padded 3×3 pool with stride 2: border windows are smaller.
        let pool = Window2d { kernel: [3, 3], strides: [2, 2], pads: [1; 4], dilations: [1, 1] };
        let p = g.add_node("pool", "p", Op::MaxPool { window: pool }, &[c]).unwrap();
        let r = g.add_node("relu", "r", Op::Relu, &[p]).unwrap();
        let out = g.add_node("reveal", "out", Op::Reveal, &[r]).unwrap();
        g.outputs.push(out);
        g
    };
    let input = [image(2, 6)];
    let before = run_float(&build(), &input).unwrap();
    let ot = Options { nonlinear: NonlinearChoice::Ot, calibration: input.to_vec(), ..Options::default() };
    let gc = Options { calibration: input.to_vec(), ..Options::default() };

    let mut g = build();
    run_pipeline(&mut g, &ot, Some(veil_passes::Pass::SubstituteActivations.into()), true).unwrap();
    assert_eq!(ops(&g), ["conv2d", "relu", "maxpool", "reveal"]);
    let names: Vec<&str> = g.live_nodes().map(|(_, n)| n.name.as_str()).collect();
    assert_eq!(names, ["conv", "relu", "pool", "reveal"], "each node keeps its op's name");
    close(&run_float(&g, &input).unwrap(), &before);

    let (mut over_ot, mut garbled) = (build(), build());
    run_pipeline(&mut over_ot, &ot, None, true).unwrap();
    run_pipeline(&mut garbled, &gc, None, true).unwrap();
    let order = |g: &Graph| ops(g).into_iter().filter(|&o| o != "truncate").collect::<Vec<_>>();
    assert_eq!(order(&garbled), ["conv2d", "maxpool", "relu", "reveal"], "the default keeps the order");
    assert_eq!(order(&over_ot), ["conv2d", "relu", "maxpool", "reveal"]);
    let kinds: Vec<Kind> = lower(&over_ot).unwrap().into_iter().map(|s| s.kind).collect();
    assert!(kinds.iter().any(|k| matches!(k, Kind::ReluOt { shift, .. } if *shift > 0)), "{kinds:?}");
    assert!(kinds.iter().any(|k| matches!(k, Kind::MaxPoolOt { .. })), "{kinds:?}");
    assert_eq!(over_ot.ring_bits, garbled.ring_bits);
    let (a, b) = (run_fixed(&over_ot, &input, 1).unwrap(), run_fixed(&garbled, &input, 1).unwrap());
    assert_eq!(a.outputs[0].data, b.outputs[0].data);
    assert!(a.outputs[0].data.iter().any(|&v| v > 0.0) && a.outputs[0].data.contains(&0.0));
}
