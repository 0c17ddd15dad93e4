//! Gelu written out, as exporters below opset 20 write it (torch's TorchScript exporter, Hugging
//! Face models): `0.5·x·(1 + Erf(x/√2))` and the tanh form, in the orders they use, import as
//! one `pl_gelu`; an `Erf` on its own is refused by name, and a tanh of the same cubic read any
//! other way is the generic Tanh.

use super::activations::{fixed_within_bound, gelu_reference, gelu_tanh_reference, x};
use super::*;

/// `in · I` (a server weight, so the activation runs on shares) named `x`, then `nodes`, with the
/// scalar constants `consts` (name, value), output `y`.
fn written_out(nodes: Vec<NodeProto>, consts: &[(&str, f32)]) -> Vec<u8> {
    let mut inits = vec![tensor("eye", &[6, 6], (0..36).map(|i| if i % 7 == 0 { 1.0 } else { 0.0 }).collect())];
    inits.extend(consts.iter().map(|&(n, v)| scalar(n, v)));
    let mut all = vec![node("MatMul", "w", &["in", "eye"], &["x"])];
    all.extend(nodes);
    model(17, vec![info("in", &[Some(1), Some(6)])], all, inits, "y")
}

/// Imports `b`, checks it is one `pl_gelu` (of the `tanh` form or not) and nothing else after the
/// weight, that its float semantics are `reference` times `scale`, and that fixed point stays
/// within the derived bound.
fn is_one_gelu(b: &[u8], tanh: bool, scale: f32, reference: fn(f32) -> f32) {
    let g = import(b).unwrap();
    let ops: Vec<&Op> = g.live_nodes().map(|(_, n)| &n.op).collect();
    let gelus = ops.iter().filter(|op| matches!(op, Op::PlGelu { tanh: t } if *t == tanh)).count();
    let text = veil_ir::print::to_text(&g);
    assert_eq!(gelus, 1, "{text}");
    let extra = if scale == 1.0 { 0 } else { 1 };
    assert_eq!(ops.len(), 2 + extra + 1, "the weight, the Gelu, a scale if any, the reveal: {text}");
    let want: Vec<f32> = x().data.iter().map(|&v| scale * reference(v)).collect();
    let got = run_float(&g, &[x()]).unwrap().remove(0);
    for (g, w) in got.data.iter().zip(&want) {
        assert!((g - w).abs() < 1e-5, "{g} vs {w}");
    }
    fixed_within_bound(&g, &x(), 3.0, &want);
}

#[test]
fn torchs_erf_form_is_one_gelu() {
    // TorchScript's order: x / √2, Erf, + 1, x ·, · 0.5.
    let b = written_out(
        vec![
            node("Div", "div", &["x", "sqrt2"], &["d"]),
            node("Erf", "erf", &["d"], &["e"]),
            node("Add", "add", &["e", "one"], &["a"]),
            node("Mul", "mul", &["x", "a"], &["m"]),
            node("Mul", "half", &["m", "h"], &["y"]),
        ],
        &[("sqrt2", std::f32::consts::SQRT_2), ("one", 1.0), ("h", 0.5)],
    );
    is_one_gelu(&b, false, 1.0, gelu_reference);
}

#[test]
fn the_half_first_erf_form_and_a_doubled_one_are_gelus() {
    // Hugging Face's order: 0.5·x first, x · (1/√2), 1 + Erf (constant first).
    let b = written_out(
        vec![
            node("Mul", "half", &["x", "h"], &["hx"]),
            node("Mul", "scale", &["x", "rsqrt2"], &["d"]),
            node("Erf", "erf", &["d"], &["e"]),
            node("Add", "add", &["one", "e"], &["a"]),
            node("Mul", "mul", &["hx", "a"], &["y"]),
        ],
        &[("h", 0.5), ("rsqrt2", std::f32::consts::FRAC_1_SQRT_2), ("one", 1.0)],
    );
    is_one_gelu(&b, false, 1.0, gelu_reference);
    // Without the 0.5: x·(1 + erf(x/√2)) = 2·Gelu(x), a Gelu and a public scale.
    let b = written_out(
        vec![
            node("Mul", "scale", &["x", "rsqrt2"], &["d"]),
            node("Erf", "erf", &["d"], &["e"]),
            node("Add", "add", &["e", "one"], &["a"]),
            node("Mul", "mul", &["a", "x"], &["y"]),
        ],
        &[("rsqrt2", std::f32::consts::FRAC_1_SQRT_2), ("one", 1.0)],
    );
    is_one_gelu(&b, false, 2.0, gelu_reference);
}

/// The tanh form as torch writes `gelu(x, approximate="tanh")` below opset 20.
fn tanh_form(last: Vec<NodeProto>) -> Vec<u8> {
    let mut nodes = vec![
        node("Mul", "sq", &["x", "x"], &["x2"]),
        node("Mul", "cube", &["x2", "x"], &["x3"]),
        node("Mul", "c", &["x3", "k3"], &["cx3"]),
        node("Add", "inner", &["x", "cx3"], &["p"]),
        node("Mul", "s", &["p", "k"], &["sp"]),
        node("Tanh", "tanh", &["sp"], &["t"]),
    ];
    nodes.extend(last);
    written_out(nodes, &[("k3", 0.044715), ("k", 0.797_884_6), ("one", 1.0), ("h", 0.5)])
}

#[test]
fn the_tanh_form_is_one_tanh_gelu() {
    let b = tanh_form(vec![
        node("Add", "add", &["t", "one"], &["a"]),
        node("Mul", "half", &["a", "h"], &["ha"]),
        node("Mul", "mul", &["x", "ha"], &["y"]),
    ]);
    is_one_gelu(&b, true, 1.0, gelu_tanh_reference);
}

#[test]
fn a_tanh_of_the_cubic_read_otherwise_is_the_generic_tanh() {
    // tanh(...) + 1, not multiplied by x: the generic Tanh (a pl_sigmoid), then the affine.
    let b = tanh_form(vec![node("Add", "add", &["t", "one"], &["y"])]);
    let g = import(&b).unwrap();
    let text = veil_ir::print::to_text(&g);
    assert!(text.contains("= pl_sigmoid %") && !text.contains("pl_gelu"), "{text}");
    let inner = |v: f32| 0.797_884_6 * (v as f64 + 0.044715 * (v as f64).powi(3));
    let want: Vec<f32> = x().data.iter().map(|&v| (inner(v).tanh() + 1.0) as f32).collect();
    let got = run_float(&g, &[x()]).unwrap().remove(0);
    for (g, w) in got.data.iter().zip(&want) {
        assert!((g - w).abs() < 1e-5, "{g} vs {w}");
    }
}

#[test]
fn an_erf_outside_gelus_form_is_refused_by_name() {
    let cases = [
        // Erf of x itself (not x/√2).
        vec![node("Erf", "erf", &["x"], &["y"])],
        // Erf(x/√2) as the output.
        vec![node("Div", "div", &["x", "sqrt2"], &["d"]), node("Erf", "erf", &["d"], &["y"])],
        // (1 + Erf(x/√2)) times x² (a multiple of x, x/√2 included, would be a Gelu).
        vec![
            node("Div", "div", &["x", "sqrt2"], &["d"]),
            node("Erf", "erf", &["d"], &["e"]),
            node("Add", "add", &["e", "one"], &["a"]),
            node("Mul", "sq", &["x", "x"], &["x2"]),
            node("Mul", "mul", &["a", "x2"], &["y"]),
        ],
        // x · Erf(x/√2) without the 1 +.
        vec![
            node("Div", "div", &["x", "sqrt2"], &["d"]),
            node("Erf", "erf", &["d"], &["e"]),
            node("Mul", "mul", &["x", "e"], &["y"]),
        ],
    ];
    for nodes in cases {
        let b = written_out(nodes, &[("sqrt2", std::f32::consts::SQRT_2), ("one", 1.0)]);
        let e = problems(&b);
        assert!(e.contains("an Erf outside Gelu's written-out form"), "{e}");
    }
}
