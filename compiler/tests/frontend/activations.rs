//! Activations of today's model families: a trailing Sigmoid runs on the client, HardSigmoid
//! lowers to an affine and a clip, and the rest (LayerNormalization, HardSwish, Gelu, Tanh, a
//! Sigmoid the model computes on) are refused with one message that names the op and says why.

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

fn x() -> Tensor {
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
fn a_sigmoid_the_model_computes_on_is_refused_naming_it() {
    // SiLU / squeeze-excite: x · Sigmoid(x).
    let b = model(
        13,
        vec![info("x", &[Some(1), Some(3)])],
        vec![node("Sigmoid", "gate", &["x"], &["s"]), node("Mul", "silu", &["x", "s"], &["y"])],
        vec![],
        "y",
    );
    let e = problems(&b);
    assert!(
        e.contains(
            r#"node "silu" (Mul): reads "s", the result of client-side post-processing; Softmax, LogSoftmax, ArgMax and Sigmoid run on the client after the result is revealed (Veil has no two-party protocol for them)"#
        ),
        "{e}"
    );
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

#[test]
fn unsupported_activations_are_refused_with_the_reason() {
    let cases = [
        ("LayerNormalization", "needs a secret inverse square root"),
        ("InstanceNormalization", "needs a secret inverse square root"),
        ("GroupNormalization", "needs a secret inverse square root"),
        ("HardSwish", "a product of two secret values"),
        ("Gelu", "Gelu is a smooth non-linearity of secret values"),
        ("Tanh", "Tanh is a smooth non-linearity of secret values"),
        ("Erf", "Erf is a smooth non-linearity of secret values"),
    ];
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
