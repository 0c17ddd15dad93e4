//! Softmax and LogSoftmax written out (ONNX's function bodies; hand-written
//! `exp(x − max) / Σ exp(x − max)`): imported as the op, which runs on the client at the end of
//! the model; its float result is the formula's; a chain with an extra reader of an intermediate
//! is not fused and refused by name; one in the middle of a model runs on shares.

use super::*;

/// `in · W` (a server weight, so the rest is shared) named `x`, shape `[2, 3]`, then `nodes`, with
/// the 1-D INT64 constant `axes` when given, output `y`.
fn written_out(opset: i64, nodes: Vec<NodeProto>, axes: Option<&[i64]>) -> Vec<u8> {
    let w: Vec<f32> = (0..9).map(|i| [0.5, -1.0, 2.0, 1.5, 0.25, -0.75, 1.0, 3.0, -2.0][i]).collect();
    let mut inits = vec![tensor("w", &[3, 3], w)];
    inits.extend(axes.map(|a| int64s("axes", a)));
    let mut all = vec![node("MatMul", "mm", &["in", "w"], &["x"])];
    all.extend(nodes);
    model(opset, vec![info("in", &[Some(2), Some(3)])], all, inits, "y")
}

fn input() -> Tensor {
    Tensor::new(vec![2, 3], vec![0.3, -1.2, 2.0, 1.1, 0.4, -0.7]).unwrap()
}

/// `in · W` in plain floats.
fn logits() -> Vec<Vec<f64>> {
    let w = [0.5, -1.0, 2.0, 1.5, 0.25, -0.75, 1.0, 3.0, -2.0];
    let x = input().data;
    (0..2).map(|r| (0..3).map(|c| (0..3).map(|k| (x[r * 3 + k] * w[k * 3 + c]) as f64).sum()).collect()).collect()
}

fn reduce(opset: i64, op: &str, name: &str, input: &str, out: &str, axis: i64) -> NodeProto {
    let axes_input = opset >= 18 || op == "ReduceSum" && opset >= 13;
    let mut n = node(op, name, &[input, "axes"][..if axes_input { 2 } else { 1 }], &[out]);
    if !axes_input {
        n.attribute.push(ints_attr("axes", &[axis]));
    }
    n.attribute.push(int_attr("keepdims", 1));
    n
}

/// The function body of Softmax (or, `log`, LogSoftmax) over `axis`, with or without the max.
fn body(opset: i64, axis: i64, log: bool, max: bool) -> Vec<NodeProto> {
    let c = if max { "c" } else { "x" };
    let mut n = Vec::new();
    if max {
        n.push(reduce(opset, "ReduceMax", "max", "x", "m", axis));
        n.push(node("Sub", "centre", &["x", "m"], &["c"]));
    }
    n.push(node("Exp", "exp", &[c], &["e"]));
    n.push(reduce(opset, "ReduceSum", "sum", "e", "s", axis));
    if log {
        n.push(node("Log", "log", &["s"], &["l"]));
        n.push(node("Sub", "out", &[c, "l"], &["y"]));
    } else {
        n.push(node("Div", "out", &["e", "s"], &["y"]));
    }
    n
}

/// Imports the body, checks it is the op on the client, and its float result the formula's.
fn is_the_op(opset: i64, axis: i64, log: bool, max: bool) {
    let b = written_out(opset, body(opset, axis, log, max), Some(&[axis]));
    let g = import(&b).unwrap_or_else(|e| panic!("opset {opset} axis {axis} log {log} max {max}: {e}"));
    let text = veil_ir::print::to_text(&g);
    let a = if axis < 0 { (axis + 2) as usize } else { axis as usize };
    let found = g.live_nodes().any(|(_, n)| match n.op {
        Op::Softmax { axis: x, .. } => !log && x == a,
        Op::LogSoftmax { axis: x, .. } => log && x == a,
        _ => false,
    });
    assert!(found, "opset {opset} axis {axis} log {log} max {max}:\n{text}");
    assert!(!text.contains("exp"), "{text}");
    let x = logits();
    let got = run_float(&g, &[input()]).unwrap().remove(0);
    for r in 0..2 {
        for c in 0..3 {
            // The reduction's line: row r over the columns (axis 1) or column c over the rows.
            let line: Vec<f64> = if a == 1 { x[r].clone() } else { vec![x[0][c], x[1][c]] };
            let v = x[r][c];
            let lse = line.iter().map(|u| u.exp()).sum::<f64>().ln();
            let want = if log { v - lse } else { (v - lse).exp() };
            let g = got.data[r * 3 + c] as f64;
            assert!((g - want).abs() < 1e-5, "opset {opset} axis {axis} log {log}: ({r},{c}) {g} vs {want}");
        }
    }
}

#[test]
fn written_out_softmax_and_log_softmax_are_the_ops() {
    for opset in [13, 17, 18, 21] {
        for axis in [0, 1, -1] {
            for log in [false, true] {
                is_the_op(opset, axis, log, true);
            }
        }
    }
    // Without the max subtraction (hand-written), and below opset 13 over the last axis.
    is_the_op(13, 1, false, false);
    is_the_op(13, -1, true, false);
    is_the_op(11, -1, false, true);
}

#[test]
fn a_chain_with_another_reader_is_not_fused_and_one_mid_model_runs_on_shares() {
    // The sum is also an output of the model: no fusion, so the Exp is refused by name.
    let mut m = veil_compiler::onnx::proto::ModelProto::decode(
        written_out(13, body(13, 1, false, true), Some(&[1])).as_slice(),
    )
    .unwrap();
    let graph = m.graph.as_mut().unwrap();
    graph.output.push(info("s", &[Some(2), Some(1)]));
    let p = problems(&m.encode_to_vec());
    assert!(p.contains("\"exp\" (Exp)"), "{p}");
    // A written-out Softmax whose result the model computes on: fused, then on shares.
    let mut nodes = body(13, 1, false, true);
    nodes.last_mut().unwrap().output = vec!["p".into()];
    nodes.push(node("MatMul", "after", &["p", "w"], &["y"]));
    let g = import(&written_out(13, nodes, Some(&[1]))).unwrap();
    let text = veil_ir::print::to_text(&g);
    assert!(text.contains("= exp2 %") && text.contains("= reciprocal %") && !text.contains("softmax"), "{text}");
}
