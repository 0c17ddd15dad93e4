//! The precision search (`veil_passes::precision::choose`) on small hand-built graphs, checked
//! against an error computed here: the float reference by hand in f64 (not `veil_ir::eval`), the
//! fixed point by the simulator at an explicitly given `F`.

use veil_ir::{Domain, Graph, Op, Tensor, TensorType, eval::run_fixed};
use veil_passes::precision::{MIN_FRAC_BITS, Samples, choose};
use veil_passes::{Options, run_pipeline};

const IN: usize = 8;
const OUT: usize = 4;

/// Weights of x:[1,8] → dense(4, w) → reveal.
fn weights(scale: f32) -> Vec<f32> {
    (0..OUT * IN).map(|i| scale * (1.0 + ((i * 7) % 11) as f32 / 10.0) * if i % 3 == 0 { -1.0 } else { 1.0 }).collect()
}

fn dense(w: &[f32]) -> Graph {
    let mut g = Graph::new("t");
    let x = g.add_input("x", TensorType::f32(vec![1, IN]));
    let w = g.add_const("w", vec![OUT, IN], Domain::Server, w.to_vec());
    let y = g.add_node("fc", "y", Op::Dense { weight: w, bias: None }, &[x]).unwrap();
    let out = g.add_node("reveal", "out", Op::Reveal, &[y]).unwrap();
    g.outputs.push(out);
    g
}

fn samples() -> Vec<Tensor> {
    (0..6)
        .map(|s| Tensor {
            shape: vec![1, IN],
            data: (0..IN).map(|i| (((s * 5 + i * 3) % 13) as f32 - 6.0) / 6.0).collect(),
        })
        .collect()
}

/// max |fixed − float| / (max − min of float) over `xs`, with `F` given explicitly (and the
/// weights at `F + extra`).
fn error_at(w: &[f32], xs: &[Tensor], frac_bits: u8, extra: u8) -> f64 {
    let mut g = dense(w);
    let opts = Options { frac_bits, weight_extra_bits: Some(extra), calibration: xs.to_vec(), ..Options::default() };
    run_pipeline(&mut g, &opts, None, true).unwrap();
    let (mut lo, mut hi, mut err) = (f64::MAX, f64::MIN, 0f64);
    for x in xs {
        let fixed = run_fixed(&g, std::slice::from_ref(x), 0).unwrap().outputs.remove(0);
        for o in 0..OUT {
            let want: f64 = (0..IN).map(|i| w[o * IN + i] as f64 * x.data[i] as f64).sum();
            lo = lo.min(want);
            hi = hi.max(want);
            err = err.max((fixed.data[o] as f64 - want).abs());
        }
    }
    err / (hi - lo)
}

#[test]
fn tiny_weights_miss_one_percent_at_f12_and_the_search_picks_the_smallest_f_that_meets_it() {
    // Weights about 3e-4 are a few units at F = 12: rounding them costs far more than 1 %.
    let w = weights(3e-4);
    let xs = samples();
    assert!(error_at(&w, &xs, 12, 0) > 0.01, "F = 12 gives {}", error_at(&w, &xs, 12, 0));
    let opts = Options { calibration: xs.clone(), ..Options::default() };
    let c = choose(&dense(&w), &opts, 0.01).unwrap();
    assert!(c.frac_bits > 12, "{c}");
    let extra = c.weight_extra_bits;
    let reached = error_at(&w, &xs, c.frac_bits, extra);
    assert!(reached <= 0.01, "F = {} gives {reached}", c.frac_bits);
    // The search's reference is the f32 interpreter, ours f64: equal to rounding.
    assert!((reached - c.error).abs() < 1e-6, "reported {} measured {reached}", c.error);
    assert!(error_at(&w, &xs, c.frac_bits - 1, extra) > 0.01, "F = {} already met the target", c.frac_bits - 1);
    assert_eq!(c.samples, Samples::Calibration { count: xs.len() });
    assert_eq!(c.trials.first().map(|t| t.frac_bits), Some(MIN_FRAC_BITS));
    assert_eq!(c.trials.len(), (c.frac_bits - MIN_FRAC_BITS + 1) as usize);
    // A refused F stops after its first batch of samples (six here, so some are never simulated
    // at F = 6): its error is then a lower bound of the error on all samples, still above the
    // target; the chosen F ran every sample.
    let (chosen, refused) = c.trials.split_last().unwrap();
    assert!(chosen.complete, "{chosen:?}");
    for t in refused {
        let (_, e) = t.outcome.clone().unwrap();
        let full = error_at(&w, &xs, t.frac_bits, extra);
        assert!(e > 0.01 && e <= full + 1e-6, "F = {}: {e} against {full} on every sample", t.frac_bits);
        if t.complete {
            assert!((e - full).abs() < 1e-6, "F = {}: {e} against {full}", t.frac_bits);
        }
    }
    assert!(refused.iter().any(|t| !t.complete), "every refused F simulated every sample");
    // The ring grows with F: the chosen plan's ring is the one `quantize` gives at that F.
    let mut g = dense(&w);
    run_pipeline(&mut g, &Options { frac_bits: c.frac_bits, weight_extra_bits: Some(extra), ..opts }, None, true)
        .unwrap();
    assert_eq!(g.ring_bits, Some(c.ring_bits));
}

/// The search runs with the weights at their layer's `F` and at `F + 2` and keeps the narrower
/// ring: each is what the search gives with that choice fixed, and tiny weights (whose rounding
/// is the error) take the two extra bits, which let the activations' `F` drop by more and the
/// ring narrow.
#[test]
fn the_search_gives_the_weights_two_more_bits_where_that_narrows_the_ring() {
    let (w, xs) = (weights(3e-4), samples());
    let opts = Options { calibration: xs.clone(), ..Options::default() };
    let c = choose(&dense(&w), &opts, 0.01).unwrap();
    let fixed = |e: u8| choose(&dense(&w), &Options { weight_extra_bits: Some(e), ..opts.clone() }, 0.01).unwrap();
    let (c0, c2) = (fixed(0), fixed(2));
    assert_eq!((c0.weight_extra_bits, c2.weight_extra_bits), (0, 2));
    let best = if (c2.ring_bits, c2.error) < (c0.ring_bits, c0.error) { &c2 } else { &c0 };
    assert_eq!(
        (c.weight_extra_bits, c.frac_bits, c.ring_bits),
        (best.weight_extra_bits, best.frac_bits, best.ring_bits)
    );
    assert!(c2.ring_bits < c0.ring_bits && c2.frac_bits < c0.frac_bits, "{c0} / {c2}");
    assert_eq!(c.weight_extra_bits, 2, "{c}");
}

#[test]
fn large_weights_get_a_small_f_and_random_inputs_without_calibration() {
    let w = weights(0.5);
    let c = choose(&dense(&w), &Options::default(), 0.01).unwrap();
    assert!(c.frac_bits < 12, "{c}");
    assert_eq!(c.samples, Samples::Random { count: veil_passes::precision::RANDOM_SAMPLES, bound: 1.0 });
    // Independently, on inputs of our own within the bound: the chosen F holds the target
    // there too (with margin: these are not the search's samples).
    assert!(error_at(&w, &samples(), c.frac_bits, c.weight_extra_bits) <= 0.02, "{c}");
    // A looser target never needs a larger F.
    let loose = choose(&dense(&w), &Options::default(), 0.05).unwrap();
    assert!(loose.frac_bits <= c.frac_bits, "{loose} vs {c}");
}

#[test]
fn a_target_no_f_reaches_is_refused_with_the_best_error() {
    let w = weights(3e-4);
    let opts = Options { calibration: samples(), ..Options::default() };
    let e = choose(&dense(&w), &opts, 1e-12).unwrap_err().to_string();
    assert!(e.starts_with("precision: no F reaches an output error of"), "{e}");
    assert!(e.contains("the best is") && e.contains("--frac-bits"), "{e}");
    // The ring limit ends the search: a value no longer fits 61 bits at some F.
    let opts = Options { input_bound: 1e6, ..Options::default() };
    let e = choose(&dense(&weights(3e-4)), &opts, 1e-12).unwrap_err().to_string();
    assert!(e.contains("is refused (node"), "{e}");
    for bad in [0.0, -0.01, f64::NAN, f64::INFINITY] {
        let e = choose(&dense(&w), &Options::default(), bad).unwrap_err().to_string();
        assert!(e.contains("--max-error must be a positive fraction"), "{bad}: {e}");
    }
}

#[test]
fn a_two_input_model_without_calibration_gets_random_samples_for_both() {
    let mut g = Graph::new("two");
    let x = g.add_input("x", TensorType::f32(vec![1, IN]));
    let y = g.add_input("y", TensorType::f32(vec![1, IN]));
    let w = g.add_const("w", vec![OUT, IN], Domain::Server, weights(0.5));
    let a = g.add_node("fa", "a", Op::Dense { weight: w, bias: None }, &[x]).unwrap();
    let b = g.add_node("fb", "b", Op::Dense { weight: w, bias: None }, &[y]).unwrap();
    let s = g.add_node("sum", "s", Op::Add, &[a, b]).unwrap();
    let out = g.add_node("reveal", "out", Op::Reveal, &[s]).unwrap();
    g.outputs.push(out);
    let c = choose(&g, &Options::default(), 0.01).unwrap();
    assert!(matches!(c.samples, Samples::Random { .. }) && c.error <= 0.01, "{c}");
}

/// x:[1,8] → fc1 (weights ~0.5) → relu → fc2 (weights ~`big`) → reveal: fc2's output is the
/// largest value at the highest scale, so it alone sets the ring.
fn two_layers(big: f32) -> (Graph, Vec<f32>, Vec<f32>) {
    let (w1, w2) = (weights(0.5)[..IN * IN / 2].to_vec(), weights(big)[..OUT * OUT].to_vec());
    let mut g = Graph::new("t2");
    let x = g.add_input("x", TensorType::f32(vec![1, IN]));
    let c1 = g.add_const("w1", vec![OUT, IN], Domain::Server, w1.clone());
    let c2 = g.add_const("w2", vec![OUT, OUT], Domain::Server, w2.clone());
    let h = g.add_node("fc1", "h", Op::Dense { weight: c1, bias: None }, &[x]).unwrap();
    let r = g.add_node("act", "r", Op::Relu, &[h]).unwrap();
    let y = g.add_node("fc2", "y", Op::Dense { weight: c2, bias: None }, &[r]).unwrap();
    let out = g.add_node("reveal", "out", Op::Reveal, &[y]).unwrap();
    g.outputs.push(out);
    (g, w1, w2)
}

/// The two-layer model's error, by hand in f64, for a compiled graph `g`.
fn two_layer_error(g: &Graph, w1: &[f32], w2: &[f32], xs: &[Tensor]) -> f64 {
    let (mut lo, mut hi, mut err) = (f64::MAX, f64::MIN, 0f64);
    for x in xs {
        let fixed = run_fixed(g, std::slice::from_ref(x), 0).unwrap().outputs.remove(0);
        let h: Vec<f64> =
            (0..OUT).map(|o| (0..IN).map(|i| w1[o * IN + i] as f64 * x.data[i] as f64).sum::<f64>().max(0.0)).collect();
        for o in 0..OUT {
            let want: f64 = (0..OUT).map(|i| w2[o * OUT + i] as f64 * h[i]).sum();
            lo = lo.min(want);
            hi = hi.max(want);
            err = err.max((fixed.data[o] as f64 - want).abs());
        }
    }
    err / (hi - lo)
}

#[test]
fn the_layer_that_sets_the_ring_gets_a_lower_f_where_the_target_still_holds() {
    let (g, w1, w2) = two_layers(300.0);
    let xs = samples();
    let opts = Options { calibration: xs.clone(), ..Options::default() };
    let c = choose(&g, &opts, 0.01).unwrap();
    // fc2 and the ReLU feeding it (whose fused truncation takes the extra bit) drop together;
    // fc1 does not set the ring and keeps the global F.
    let (f2, fa) = (c.layer_frac_bits.get("fc2"), c.layer_frac_bits.get("act"));
    assert!(f2.is_some_and(|&f| f < c.frac_bits) && fa == f2, "{c}: {:?}", c.layer_frac_bits);
    assert!(!c.layer_frac_bits.contains_key("fc1"), "{:?}", c.layer_frac_bits);
    assert!(c.ring_bits < c.global_ring_bits, "{c}");
    // Independently: compiled with those per-layer F, the plan has that ring, fc2's weights sit
    // at its own F, and the error computed here meets the target and is the one reported.
    let mut f = g.clone();
    let at = Options { frac_bits: c.frac_bits, layer_frac_bits: c.layer_frac_bits.clone(), ..opts.clone() };
    run_pipeline(&mut f, &at, None, true).unwrap();
    assert_eq!(f.ring_bits, Some(c.ring_bits));
    let w2_scale = f.consts.iter().find(|(_, k)| k.name == "w2").and_then(|(_, k)| k.frac_bits);
    assert_eq!(w2_scale, f2.copied(), "fc2's weights");
    let reached = two_layer_error(&f, &w1, &w2, &xs);
    assert!(reached <= 0.01 && (reached - c.error).abs() < 1e-6, "reported {} measured {reached}", c.error);
    // At the global F alone the ring is wider: what the per-layer F bought.
    let mut global = g.clone();
    run_pipeline(&mut global, &Options { frac_bits: c.frac_bits, ..opts.clone() }, None, true).unwrap();
    assert_eq!(global.ring_bits, Some(c.global_ring_bits));
}

#[test]
fn per_layer_f_for_a_node_the_graph_lacks_or_out_of_range_is_refused() {
    let (mut g, _, _) = two_layers(300.0);
    let mut opts = Options::default();
    opts.layer_frac_bits.insert("/nope".into(), 8);
    let e = run_pipeline(&mut g.clone(), &opts, None, true).unwrap_err().to_string();
    assert!(e.contains("\"/nope\"") && e.contains("no node by that name"), "{e}");
    let mut opts = Options::default();
    opts.layer_frac_bits.insert("fc2".into(), 0);
    let e = run_pipeline(&mut g, &opts, None, true).unwrap_err().to_string();
    assert!(e.contains("\"fc2\"") && e.contains("outside 1..=30"), "{e}");
}
