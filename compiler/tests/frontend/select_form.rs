//! Comparison-and-select forms (`Where(Less(a, b), p, q)`, ONNX's function bodies of Clip and
//! LeakyRelu, hand-written `torch.where`): imported as Max, Min, LeakyRelu and PRelu, with the float
//! semantics of the select; a `Less` with another reader is not fused and refused by name.

use super::*;

/// `in · I` (a server weight, so the rest is shared) named `x`, `[1, 6]`, then `nodes`, with the
/// scalar constants `consts`, output `y`.
fn written_out(opset: i64, nodes: Vec<NodeProto>, consts: &[(&str, f32)]) -> Vec<u8> {
    let mut inits = vec![tensor("eye", &[6, 6], (0..36).map(|i| if i % 7 == 0 { 1.0 } else { 0.0 }).collect())];
    inits.extend(consts.iter().map(|&(n, v)| scalar(n, v)));
    let mut all = vec![node("MatMul", "w", &["in", "eye"], &["x"])];
    all.extend(nodes);
    model(opset, vec![info("in", &[Some(1), Some(6)])], all, inits, "y")
}

fn input() -> Tensor {
    Tensor::new(vec![1, 6], vec![-3.0, -1.25, -0.5, 0.0, 0.75, 2.5]).unwrap()
}

/// Imports `b`: no `Where` survives, the ops are `want` (besides the weight and the reveal), and
/// the float result is `f` of the input.
fn check(b: &[u8], want: &[&str], f: impl Fn(f32) -> f32) {
    let g = import(b).unwrap_or_else(|e| panic!("{e}"));
    let text = veil_ir::print::to_text(&g);
    let ops: Vec<&str> = g.live_nodes().map(|(_, n)| n.op.mnemonic()).collect();
    let inner: Vec<&str> = ops[1..ops.len() - 1].to_vec();
    assert_eq!(inner, want, "{text}");
    let got = run_float(&g, &[input()]).unwrap().remove(0);
    for (g, x) in got.data.iter().zip(&input().data) {
        assert!((g - f(*x)).abs() < 1e-6, "x = {x}: {g} vs {}", f(*x));
    }
}

#[test]
fn clips_function_body_is_a_clip() {
    // ONNX's Clip body: tmp = x < min ? min : x; y = max < tmp ? max : tmp.
    let nodes = vec![
        node("Less", "lo", &["x", "min"], &["c0"]),
        node("Where", "w0", &["c0", "min", "x"], &["t"]),
        node("Less", "hi", &["max", "t"], &["c1"]),
        node("Where", "w1", &["c1", "max", "t"], &["y"]),
    ];
    check(&written_out(13, nodes, &[("min", -1.0), ("max", 1.0)]), &["clip", "clip"], |x| x.clamp(-1.0, 1.0));
    // One side, and the other orders of the comparison.
    let nodes = vec![node("Less", "lo", &["min", "x"], &["c"]), node("Where", "w", &["c", "x", "min"], &["y"])];
    check(&written_out(13, nodes, &[("min", -1.0)]), &["clip"], |x| x.max(-1.0));
    let nodes = vec![node("Less", "hi", &["x", "max"], &["c"]), node("Where", "w", &["c", "x", "max"], &["y"])];
    check(&written_out(13, nodes, &[("max", 0.5)]), &["clip"], |x| x.min(0.5));
}

#[test]
fn leaky_relus_function_body_is_a_leaky_relu() {
    // ONNX's LeakyRelu body: α and 0 as Constants cast like x, x < 0 ? α·x : x.
    let mut alpha = node("Constant", "a", &[], &["alpha"]);
    alpha.attribute.push(AttributeProto {
        name: Some("value_float".into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(0.1),
        ..Default::default()
    });
    let nodes = vec![
        alpha,
        node("CastLike", "ac", &["alpha", "x"], &["alpha_c"]),
        node("CastLike", "zc", &["zero", "x"], &["zero_c"]),
        node("Less", "neg", &["x", "zero_c"], &["c"]),
        node("Mul", "ax", &["alpha_c", "x"], &["m"]),
        node("Where", "w", &["c", "m", "x"], &["y"]),
    ];
    let b = written_out(16, nodes, &[("zero", 0.0)]);
    let g = import(&b).unwrap();
    let leaky = g.live_nodes().any(|(_, n)| matches!(n.op, Op::LeakyRelu { alpha } if (alpha - 0.1).abs() < 1e-7));
    assert!(leaky, "{}", veil_ir::print::to_text(&g));
    check(&b, &["leaky_relu"], |x| if x < 0.0 { 0.1 * x } else { x });
}

/// With the slope in an initializer (a weight: torch's PReLU written out, PRelu's function body)
/// the same select is a PRelu, whose slope stays a server constant rather than a LeakyRelu's
/// alpha in the plan; per-channel slopes too.
#[test]
fn a_select_with_a_weight_slope_is_a_prelu_that_keeps_it_secret() {
    let nodes = vec![
        node("Less", "neg", &["x", "zero"], &["c"]),
        node("Mul", "ax", &["slope", "x"], &["m"]),
        node("Where", "w", &["c", "m", "x"], &["y"]),
    ];
    let b = written_out(16, nodes.clone(), &[("zero", 0.0), ("slope", 0.2)]);
    let g = import(&b).unwrap();
    assert!(!g.live_nodes().any(|(_, n)| matches!(n.op, Op::LeakyRelu { .. })), "{}", veil_ir::print::to_text(&g));
    let slope = g.consts.iter().find(|(_, c)| c.name.ends_with(".slope")).expect("the slope constant").1;
    assert_eq!(slope.domain, veil_ir::Domain::Server);
    check(&b, &["relu", "sub", "affine", "add"], |x| if x < 0.0 { 0.2 * x } else { x });
    // One slope per element of the last axis.
    let slopes: Vec<f32> = (0..6).map(|i| 0.1 * i as f32).collect();
    let mut inits = vec![
        tensor("eye", &[6, 6], (0..36).map(|i| if i % 7 == 0 { 1.0 } else { 0.0 }).collect()),
        scalar("zero", 0.0),
    ];
    inits.push(tensor("slope", &[6], slopes.clone()));
    let mut all = vec![node("MatMul", "w0", &["in", "eye"], &["x"])];
    all.extend(nodes);
    let g = import(&model(16, vec![info("in", &[Some(1), Some(6)])], all, inits, "y")).unwrap();
    let got = run_float(&g, &[input()]).unwrap().remove(0);
    for (k, (g, x)) in got.data.iter().zip(&input().data).enumerate() {
        let want = if *x < 0.0 { slopes[k] * x } else { *x };
        assert!((g - want).abs() < 1e-6, "x = {x}: {g} vs {want}");
    }
}

#[test]
fn a_comparison_with_another_reader_is_refused_by_name() {
    let nodes = vec![
        node("Less", "lo", &["x", "min"], &["c"]),
        node("Where", "w", &["c", "min", "x"], &["t"]),
        node("Where", "w2", &["c", "x", "t"], &["y"]),
    ];
    let p = problems(&written_out(13, nodes, &[("min", -1.0)]));
    assert!(p.contains("\"lo\" (Less): supported only on constants"), "{p}");
}
