//! Activations of today's model families: a trailing Sigmoid runs on the client, HardSigmoid
//! lowers to an affine and a clip, HardSwish and a squeeze-excite gate to a product of two
//! computed values, a Sigmoid the model computes on (SiLU) and Tanh to the piecewise-linear
//! `pl_sigmoid`, Gelu to the piecewise-linear `pl_gelu`, and the rest (an Erf alone) are refused
//! with one message that names the op and says why.

use super::*;

fn float_attr(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(v),
        ..Default::default()
    }
}

/// 1 / (1 + e^−x) in f64, independent of the IR's kernel.
fn logistic(x: f32) -> f32 {
    (1.0 / (1.0 + (-(x as f64)).exp())) as f32
}

pub(super) fn x() -> Tensor {
    Tensor::new(vec![1, 6], vec![-3.0, -1.25, -0.5, 0.0, 0.75, 2.5]).unwrap()
}

#[test]
fn a_trailing_sigmoid_runs_on_the_client_after_the_reveal() {
    let b = model(
        13,
        vec![info("in", &[Some(1), Some(6)])],
        vec![node("Mul", "w", &["in", "ones"], &["x"]), node("Sigmoid", "prob", &["x"], &["y"])],
        vec![ones("ones", 6)],
        "y",
    );
    let g = import(&b).unwrap();
    let text = veil_ir::print::to_text(&g);
    assert!(text.contains("= reveal %1 : client"), "{text}");
    assert!(text.contains("= sigmoid %2 : client f32[1,6]"), "{text}");
    let want: Vec<f32> = x().data.iter().map(|&v| logistic(v)).collect();
    assert_eq!(run_float(&g, &[x()]).unwrap()[0].data, want);
    // Through the whole pipeline: the client applies it to the revealed fixed-point value, so the
    // error is the input's rounding (F = 12) through a 1/4-Lipschitz function.
    let opts = veil_passes::Options { input_bound: 3.0, ..Default::default() };
    let f = veil_compiler::compile(&g, &opts.into()).unwrap().graph;
    let sig = f.live_nodes().find(|(_, n)| n.op == Op::Sigmoid).expect("sigmoid kept").1;
    assert_eq!(f.values[sig.output].domain, veil_ir::Domain::Client);
    // The text form round-trips the new op (plans are inspected and tested as text).
    let text = veil_ir::print::to_text(&f);
    assert_eq!(veil_ir::print::to_text(&veil_ir::print::parse_with_weights(&text, &f.consts).unwrap()), text);
    let got = veil_ir::eval::run_fixed(&f, &[x()], 0).unwrap().outputs.remove(0);
    for (a, b) in got.data.iter().zip(&want) {
        assert!((a - b).abs() <= 2f32.powi(-12), "{a} vs {b}");
    }
}

#[test]
fn a_sigmoid_the_model_computes_on_runs_on_shares_as_silu() {
    // SiLU: x · Sigmoid(x), after a weight so it runs on shares.
    let b = model(
        13,
        vec![info("in", &[Some(1), Some(6)])],
        vec![
            node("MatMul", "w", &["in", "eye"], &["x"]),
            node("Sigmoid", "gate", &["x"], &["s"]),
            node("Mul", "silu", &["x", "s"], &["y"]),
        ],
        vec![tensor("eye", &[6, 6], (0..36).map(|i| if i % 7 == 0 { 1.0 } else { 0.0 }).collect())],
        "y",
    );
    let g = import(&b).unwrap();
    let text = veil_ir::print::to_text(&g);
    assert!(text.contains("= pl_sigmoid %") && text.contains("= mul %") && !text.contains("= sigmoid"), "{text}");
    // Float semantics are the model's: the exact logistic function.
    let want: Vec<f32> = x().data.iter().map(|&v| v * logistic(v)).collect();
    let got = run_float(&g, &[x()]).unwrap().remove(0);
    for (g, w) in got.data.iter().zip(&want) {
        assert!((g - w).abs() < 1e-6, "{g} vs {w}");
    }
    // Fixed point: the piecewise-linear sigmoid, within the derived bound (which includes the
    // approximation's stated error times |x|).
    let (f, _, tol) = fixed_within_bound(&g, &x(), 3.0, &want);
    // The approximation's error (7.6·10⁻⁴) times |x| ≤ 3, the rest fixed-point rounding.
    assert!(tol < 0.01, "bound {tol}");
    let steps = veil_ir::schedule::lower(&f).unwrap();
    let gc = steps.iter().filter(|s| matches!(s.kind, veil_ir::schedule::Kind::Activation { .. })).count();
    let mul = steps.iter().filter(|s| matches!(s.kind, veil_ir::schedule::Kind::Mul)).count();
    assert_eq!((gc, mul), (1, 1), "one garbled sigmoid and one product");
}

#[test]
fn tanh_is_twice_a_sigmoid_of_twice_its_operand_minus_one() {
    let b = model(
        13,
        vec![info("in", &[Some(1), Some(6)])],
        vec![node("MatMul", "w", &["in", "eye"], &["x"]), node("Tanh", "t", &["x"], &["y"])],
        vec![tensor("eye", &[6, 6], (0..36).map(|i| if i % 7 == 0 { 1.0 } else { 0.0 }).collect())],
        "y",
    );
    let g = import(&b).unwrap();
    let want: Vec<f32> = x().data.iter().map(|&v| (v as f64).tanh() as f32).collect();
    let got = run_float(&g, &[x()]).unwrap().remove(0);
    for (g, w) in got.data.iter().zip(&want) {
        assert!((g - w).abs() < 1e-6, "{g} vs {w}");
    }
    // Twice the sigmoid's error, the rest fixed-point rounding.
    let (_, _, tol) = fixed_within_bound(&g, &x(), 3.0, &want);
    assert!(tol < 0.005, "bound {tol}");
    // The approximation is what the compiled model computes (its float reference differs from
    // tanh between the knots, where 2x is no multiple of 1/4), and the float semantics are not it.
    let between = Tensor::new(vec![1, 6], vec![-2.3, -0.66, -0.07, 0.31, 0.69, 1.4]).unwrap();
    let approx = veil_ir::eval::run_float_approximated(&g, std::slice::from_ref(&between)).unwrap().remove(0);
    let exact: Vec<f32> = between.data.iter().map(|&v| (v as f64).tanh() as f32).collect();
    let worst = approx.data.iter().zip(&exact).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst > 1e-4 && f64::from(worst) <= 2.0 * veil_ir::eval::ring_ops::PL_SIGMOID_MAX_ERROR, "{worst}");
}

#[test]
fn hard_sigmoid_is_an_affine_and_a_clip() {
    for (alpha, beta) in [(None, None), (Some(0.5), Some(0.25)), (Some(-1.0), Some(0.0))] {
        let mut n = node("HardSigmoid", "hs", &["x"], &["y"]);
        n.attribute =
            alpha.map(|a| float_attr("alpha", a)).into_iter().chain(beta.map(|b| float_attr("beta", b))).collect();
        let b = model(22, vec![info("x", &[Some(1), Some(6)])], vec![n], vec![], "y");
        let g = import(&b).unwrap();
        let (a, c) = (alpha.unwrap_or(0.2), beta.unwrap_or(0.5));
        let want: Vec<f32> = x().data.iter().map(|&v| (a * v + c).clamp(0.0, 1.0)).collect();
        let got = run_float(&g, &[x()]).unwrap().remove(0);
        for (g, w) in got.data.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "alpha {a} beta {c}: {g} vs {w}");
        }
        let opts = veil_passes::Options { input_bound: 3.0, ..Default::default() };
        let f = veil_compiler::compile(&g, &opts.into()).unwrap().graph;
        let fixed = veil_ir::eval::run_fixed(&f, &[x()], 0).unwrap().outputs.remove(0);
        for (g, w) in fixed.data.iter().zip(&want) {
            assert!((g - w).abs() <= 3.0 * 2f32.powi(-12), "fixed: alpha {a} beta {c}: {g} vs {w}");
        }
    }
    let mut n = node("HardSigmoid", "hs", &["x"], &["y"]);
    n.attribute = vec![float_attr("alpha", f32::NAN)];
    let e = problems(&model(13, vec![info("x", &[Some(1), Some(6)])], vec![n], vec![], "y"));
    assert!(e.contains(r#"node "hs" (HardSigmoid): alpha = NaN and beta = 0.5 must be finite"#), "{e}");
}

/// Compiles `g` for `|input| ≤ bound` and checks its fixed-point output against `want` within
/// the pass crate's sound error bound (derived from the scales, not tuned).
/// Returns the plan, its fixed-point output and the bound.
pub(super) fn fixed_within_bound(
    g: &veil_ir::Graph,
    x: &Tensor,
    bound: f32,
    want: &[f32],
) -> (veil_ir::Graph, Vec<f32>, f64) {
    let opts = veil_passes::Options { input_bound: bound, ..Default::default() };
    let f = veil_compiler::compile(g, &opts.into()).unwrap().graph;
    let e = veil_passes::error_bound::error_bounds(&f, bound as f64);
    let tol = f.outputs.iter().map(|v| e[v.index()]).fold(0f64, f64::max);
    assert!(tol > 0.0, "bound {tol}");
    let got = veil_ir::eval::run_fixed(&f, std::slice::from_ref(x), 0).unwrap().outputs.remove(0);
    for (g, w) in got.data.iter().zip(want) {
        assert!(((g - w).abs() as f64) <= tol, "fixed {g} vs {w} (bound {tol})");
    }
    (f, got.data, tol)
}

#[test]
fn hard_swish_is_x_times_its_hard_sigmoid_gate() {
    // A server weight first, so the activation runs on shares (on the client's input alone the
    // whole model would be the client's).
    let b = model(
        22,
        vec![info("in", &[Some(1), Some(6)])],
        vec![node("MatMul", "w", &["in", "eye"], &["x"]), node("HardSwish", "hs", &["x"], &["y"])],
        vec![tensor("eye", &[6, 6], (0..36).map(|i| if i % 7 == 0 { 1.0 } else { 0.0 }).collect())],
        "y",
    );
    let g = import(&b).unwrap();
    let text = veil_ir::print::to_text(&g);
    assert!(text.contains("clip") && text.contains("= mul %"), "{text}");
    // ONNX: y = x · max(0, min(1, x/6 + 1/2)), in f64.
    let want: Vec<f32> = x().data.iter().map(|&v| (v as f64 * (v as f64 / 6.0 + 0.5).clamp(0.0, 1.0)) as f32).collect();
    let got = run_float(&g, &[x()]).unwrap().remove(0);
    for (g, w) in got.data.iter().zip(&want) {
        assert!((g - w).abs() < 1e-6, "{g} vs {w}");
    }
    let (f, _, tol) = fixed_within_bound(&g, &x(), 3.0, &want);
    assert!(tol < 0.01, "bound {tol}");
    // The product runs as a Beaver step, and the plan's text round-trips it.
    let steps = veil_ir::schedule::lower(&f).unwrap();
    assert!(steps.iter().any(|s| matches!(s.kind, veil_ir::schedule::Kind::Mul)), "{}", veil_ir::print::to_text(&f));
    let text = veil_ir::print::to_text(&f);
    assert_eq!(veil_ir::print::to_text(&veil_ir::print::parse_with_weights(&text, &f.consts).unwrap()), text);
}

#[test]
fn a_squeeze_excite_gate_broadcasts_over_the_spatial_axes() {
    // y = x · HardSigmoid(ReduceMean(x, axes [2, 3], keepdims)): the gate is [1, 2, 1, 1].
    let b = model(
        18,
        vec![info("x", &[Some(1), Some(2), Some(2), Some(2)])],
        vec![
            node("ReduceMean", "pool", &["x", "axes"], &["m"]),
            node("HardSigmoid", "gate", &["m"], &["s"]),
            node("Mul", "excite", &["s", "x"], &["y"]),
        ],
        vec![int64s("axes", &[2, 3])],
        "y",
    );
    let g = import(&b).unwrap();
    let xs = [-1.5f32, 0.5, 2.0, 1.0, 0.25, -0.75, -2.0, 0.5];
    let x = Tensor::new(vec![1, 2, 2, 2], xs.to_vec()).unwrap();
    let want: Vec<f32> = (0..8)
        .map(|i| {
            let c = i / 4;
            let m: f64 = xs[c * 4..c * 4 + 4].iter().map(|&v| v as f64).sum::<f64>() / 4.0;
            (xs[i] as f64 * (0.2 * m + 0.5).clamp(0.0, 1.0)) as f32
        })
        .collect();
    let got = run_float(&g, std::slice::from_ref(&x)).unwrap().remove(0);
    for (g, w) in got.data.iter().zip(&want) {
        assert!((g - w).abs() < 1e-6, "{g} vs {w}");
    }
    let (_, _, tol) = fixed_within_bound(&g, &x, 2.0, &want);
    assert!(tol < 0.01, "bound {tol}");
}

/// x·Φ(x) in f64 from an erf written out here (Abramowitz–Stegun 7.1.26, within 1.5·10⁻⁷),
/// independent of the IR's kernel.
pub(super) fn gelu_reference(x: f32) -> f32 {
    let z = x as f64 / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z.abs());
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = (1.0 - poly * (-z * z).exp()).copysign(z);
    (0.5 * x as f64 * (1.0 + erf)) as f32
}

/// ONNX's tanh form of Gelu in f64.
pub(super) fn gelu_tanh_reference(x: f32) -> f32 {
    let x = x as f64;
    (0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())) as f32
}

#[test]
fn gelu_runs_on_shares_as_the_piecewise_linear_pl_gelu_in_either_form() {
    for (approximate, reference) in [(None, gelu_reference as fn(f32) -> f32), (Some("tanh"), gelu_tanh_reference)] {
        let mut n = node("Gelu", "act", &["x"], &["y"]);
        n.attribute = approximate
            .map(|a| AttributeProto {
                name: Some("approximate".into()),
                r#type: Some(AttributeType::String as i32),
                s: Some(a.as_bytes().to_vec()),
                ..Default::default()
            })
            .into_iter()
            .collect();
        let b = model(
            20,
            vec![info("in", &[Some(1), Some(6)])],
            vec![node("MatMul", "w", &["in", "eye"], &["x"]), n],
            vec![tensor("eye", &[6, 6], (0..36).map(|i| if i % 7 == 0 { 1.0 } else { 0.0 }).collect())],
            "y",
        );
        let g = import(&b).unwrap();
        let text = veil_ir::print::to_text(&g);
        let want_op = if approximate.is_some() { "= pl_gelu %1 tanh=true" } else { "= pl_gelu %1 :" };
        assert!(text.contains(want_op), "{text}");
        // Float semantics are the model's form.
        let want: Vec<f32> = x().data.iter().map(|&v| reference(v)).collect();
        let got = run_float(&g, &[x()]).unwrap().remove(0);
        for (g, w) in got.data.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "{approximate:?}: {g} vs {w}");
        }
        // Fixed point: the approximation, within the derived bound (its stated error, the
        // operand's rounding through Gelu's slope, and rounding).
        let (f, fixed, tol) = fixed_within_bound(&g, &x(), 3.0, &want);
        assert!(tol < 1.5 * veil_ir::eval::ring_ops::PL_GELU_MAX_ERROR, "bound {tol}");
        let worst = fixed.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst > 1e-3, "the approximation is used: {worst}");
        let steps = veil_ir::schedule::lower(&f).unwrap();
        let gc = steps.iter().filter(|s| matches!(s.kind, veil_ir::schedule::Kind::Activation { .. })).count();
        assert_eq!(gc, 1, "one garbled Gelu");
        let text = veil_ir::print::to_text(&f);
        assert_eq!(veil_ir::print::to_text(&veil_ir::print::parse_with_weights(&text, &f.consts).unwrap()), text);
    }
}

#[test]
fn gelu_with_an_unknown_approximation_is_refused_with_its_name() {
    let mut n = node("Gelu", "act", &["x"], &["y"]);
    n.attribute = vec![AttributeProto {
        name: Some("approximate".into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(b"cubic".to_vec()),
        ..Default::default()
    }];
    let b = model(
        20,
        vec![info("in", &[Some(1), Some(3)])],
        vec![node("Mul", "w", &["in", "ones"], &["x"]), n],
        vec![ones("ones", 3)],
        "y",
    );
    let e = problems(&b);
    assert!(e.contains(r#"node "act" (Gelu): approximate = "cubic" is not one of "none" and "tanh""#), "{e}");
}

#[test]
fn unsupported_activations_are_refused_with_the_reason() {
    let cases = [("Erf", "an Erf outside Gelu's written-out form")];
    for (op, why) in cases {
        let b = model(
            21,
            vec![info("in", &[Some(1), Some(3)])],
            vec![node("Mul", "w", &["in", "ones"], &["x"]), node(op, "act", &["x", "ones", "ones"], &["y"])],
            vec![ones("ones", 3)],
            "y",
        );
        let e = problems(&b);
        assert!(e.contains("the model cannot be compiled (1 problem(s)):"), "{op}: {e}");
        assert!(e.contains(&format!(r#"node "act" ({op}): not supported: "#)) && e.contains(why), "{op}: {e}");
    }
}

/// A `[6]` constant.
fn vec6(name: &str, v: [f32; 6]) -> TensorProto {
    tensor(name, &[6], v.to_vec())
}

#[test]
fn max_and_min_are_clips_of_constant_bounds_and_relus_of_two_values() {
    let k1 = [1.0, -2.0, 0.5, 3.0, -1.0, 2.0];
    let k2 = [-1.0, 1.0, 2.0, 0.5, 1.5, -0.25];
    // (nodes after a = in·k1, b = in·k2; the reference on a, b)
    type Case = (Vec<NodeProto>, fn(f32, f32) -> f32, &'static str);
    let cases: Vec<Case> = vec![
        (
            vec![node("CastLike", "c", &["zero", "a"], &["z"]), node("Max", "m", &["a", "z"], &["y"])],
            |a, _| a.max(0.0),
            "relu",
        ),
        (vec![node("Max", "m", &["a", "lo", "zero"], &["y"])], |a, _| a.max(0.0), "relu"),
        (vec![node("Max", "m", &["a", "lo"], &["y"])], |a, _| a.max(-0.5), "clip %"),
        (vec![node("Min", "m", &["hi", "a"], &["y"])], |a, _| a.min(1.5), "clip %"),
        (vec![node("Max", "m", &["a", "b"], &["y"])], f32::max, "relu"),
        (vec![node("Min", "m", &["a", "b"], &["y"])], f32::min, "relu"),
        (vec![node("Max", "m", &["a"], &["y"])], |a, _| a, ""),
    ];
    for (i, (tail, reference, lowered)) in cases.into_iter().enumerate() {
        let mut nodes = vec![node("Mul", "ka", &["in", "k1"], &["a"]), node("Mul", "kb", &["in", "k2"], &["b"])];
        nodes.extend(tail);
        let inits = vec![vec6("k1", k1), vec6("k2", k2), scalar("zero", 0.0), scalar("lo", -0.5), scalar("hi", 1.5)];
        let g = import(&model(13, vec![info("in", &[Some(1), Some(6)])], nodes, inits, "y"))
            .unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert!(veil_ir::print::to_text(&g).contains(lowered), "case {i}: {}", veil_ir::print::to_text(&g));
        let want: Vec<f32> = (0..6).map(|j| reference(x().data[j] * k1[j], x().data[j] * k2[j])).collect();
        assert_eq!(run_float(&g, &[x()]).unwrap()[0].data, want, "case {i}");
        let opts = veil_passes::Options { input_bound: 3.0, ..Default::default() };
        let f = veil_compiler::compile(&g, &opts.into()).unwrap().graph;
        let got = veil_ir::eval::run_fixed(&f, &[x()], 0).unwrap().outputs.remove(0);
        for (a, b) in got.data.iter().zip(&want) {
            assert!((a - b).abs() <= 4.0 * 2f32.powi(-12), "case {i} fixed: {a} vs {b}");
        }
    }
}

#[test]
fn max_and_min_beyond_bounds_and_pairs_are_refused_with_the_reason() {
    let cases = [
        (vec!["a", "k1"], r#"node "m" (Max): input 1 is a constant whose elements differ; only a single bound"#),
        (vec!["a", "b", "a"], r#"node "m" (Max): Max of 3 computed value(s) is not supported"#),
        (vec!["a", "b", "zero"], r#"node "m" (Max): Max of 2 computed value(s) and a constant is not supported"#),
    ];
    for (operands, msg) in cases {
        let nodes = vec![
            node("Mul", "ka", &["in", "k1"], &["a"]),
            node("Mul", "kb", &["in", "k1"], &["b"]),
            node("Max", "m", &operands, &["y"]),
        ];
        let inits = vec![vec6("k1", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), scalar("zero", 0.0)];
        let e = problems(&model(13, vec![info("in", &[Some(1), Some(6)])], nodes, inits, "y"));
        assert!(e.contains(msg), "{operands:?}: {e}");
    }
}

#[test]
fn max_of_two_client_inputs_compiles_and_runs_on_the_client() {
    // Both operands are the client's own: the sub, ReLU and add stay in its domain, in plaintext.
    let nodes = vec![node("Max", "m", &["in", "in2"], &["y"])];
    let b = model(13, vec![info("in", &[Some(1), Some(6)]), info("in2", &[Some(1), Some(6)])], nodes, vec![], "y");
    let g = import(&b).unwrap();
    let opts = veil_passes::Options { input_bound: 3.0, ..Default::default() };
    let f = veil_compiler::compile(&g, &opts.into()).unwrap().graph;
    let zeros = Tensor::new(vec![1, 6], vec![0.0; 6]).unwrap();
    let y = veil_ir::eval::run_fixed(&f, &[x(), zeros], 0).unwrap();
    // x's values are multiples of 1/4: exact at any F.
    assert_eq!(y.outputs[0].data, x().data.iter().map(|v| v.max(0.0)).collect::<Vec<_>>());
}

/// `models/mobile_block.onnx` (MobileNetV3-style: HardSwish, a squeeze-excite gate) against
/// onnxruntime's logits: the float graph within float rounding, the fixed-point one within the
/// derived error bound and with the same top-1 class.
#[test]
fn a_mobilenet_v3_block_matches_onnxruntime() {
    matches_onnxruntime("mobile_block");
}

/// `models/efficient_block.onnx` (EfficientNet-style: SiLU, a Sigmoid squeeze-excite gate, a
/// Tanh), checked as the MobileNetV3 block is.
#[test]
fn an_efficientnet_block_matches_onnxruntime() {
    matches_onnxruntime("efficient_block");
}

fn matches_onnxruntime(name: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let g = veil_compiler::onnx::import_file(&dir.join(format!("{name}.onnx")), &ImportOptions::default()).unwrap();
    let x = veil_ir::npy::read_npy(&dir.join(format!("inputs/{name}.npy"))).unwrap();
    let want = veil_ir::npy::read_npy(&dir.join(format!("inputs/{name}_ort.npy"))).unwrap();
    let float = run_float(&g, std::slice::from_ref(&x)).unwrap().remove(0);
    assert_eq!(float.shape, want.shape);
    for (k, (a, b)) in float.data.iter().zip(&want.data).enumerate() {
        assert!((a - b).abs() <= 1e-4 + 1e-4 * b.abs(), "float logit {k}: {a}, onnxruntime {b}");
    }
    let bound = x.data.iter().fold(0f32, |m, &v| m.max(v.abs()));
    let (_, fixed, _) = fixed_within_bound(&g, &x, bound, &want.data);
    let top = |v: &[f32]| (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap();
    assert_eq!(top(&fixed), top(&want.data), "top-1 class");
    // The derived bound is a worst case over every input (products of worst cases are loose);
    // what this input reaches is far below it, as for the dynamo CNN.
    let (lo, hi) = want.data.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let worst = fixed.iter().zip(&want.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst <= 0.05 * (hi - lo), "error {worst} over 5% of the logits' range {}", hi - lo);
}
