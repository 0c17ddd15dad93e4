//! Softmax inside the network (attention's weights) runs on shares: the row's maximum, the
//! garbled `exp2` and `reciprocal`, a Beaver product. Its float semantics are the exact Softmax
//! (checked against the formula computed directly); fixed point stays within the derived
//! bound; LogSoftmax there is refused by name.

use super::activations::fixed_within_bound;
use super::*;

const W: [f32; 16] = [0.5, -1.0, 2.0, 1.5, 0.25, -0.75, 1.0, 3.0, -2.0, 0.125, 1.25, -0.5, 0.75, 2.5, -1.5, 0.375];
const V: [f32; 8] = [1.0, -0.5, 0.25, 2.0, -1.5, 0.75, 0.5, 1.25];

/// `in · W` (a server weight, so the rest is shared), `[2, 3, 4]`, then `op` over `axis`, then
/// `· V` (`[4, 2]`): the Softmax is read by more than post-processing.
fn attention_like(opset: i64, op: &str, axis: i64) -> Vec<u8> {
    let mut sm = node(op, "sm", &["x"], &["s"]);
    sm.attribute.push(int_attr("axis", axis));
    model(
        opset,
        vec![info("in", &[Some(2), Some(3), Some(4)])],
        vec![node("MatMul", "w", &["in", "w"], &["x"]), sm, node("MatMul", "v", &["s", "v"], &["y"])],
        vec![tensor("w", &[4, 4], W.to_vec()), tensor("v", &[4, 2], V.to_vec())],
        "y",
    )
}

fn input() -> Tensor {
    let d: Vec<f32> = (0..24).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.35).collect();
    Tensor::new(vec![2, 3, 4], d).unwrap()
}

/// The model computed directly: `x = in·W`, Softmax over `axis` (with `coerce_2d`, over all
/// axes from it on), `· V`.
fn reference(axis: usize, coerce_2d: bool) -> Vec<f32> {
    let a = input().data;
    let x: Vec<f64> =
        (0..24).map(|i| (0..4).map(|k| (a[i / 4 * 4 + k] * W[k * 4 + i % 4]) as f64).sum::<f64>()).collect();
    // The flat indices of the line through element i along the axis (or axes).
    let line = |i: usize| -> Vec<usize> {
        match (axis, coerce_2d) {
            (2, _) => (0..4).map(|c| i / 4 * 4 + c).collect(),
            (1, false) => (0..3).map(|r| i / 12 * 12 + r * 4 + i % 4).collect(),
            (1, true) => (0..12).map(|j| i / 12 * 12 + j).collect(),
            _ => unreachable!(),
        }
    };
    let s: Vec<f64> = (0..24)
        .map(|i| {
            let l = line(i);
            let m = l.iter().map(|&j| x[j]).fold(f64::NEG_INFINITY, f64::max);
            (x[i] - m).exp() / l.iter().map(|&j| (x[j] - m).exp()).sum::<f64>()
        })
        .collect();
    (0..6)
        .flat_map(|r| (0..2).map(move |c| (r, c)))
        .map(|(r, c)| (0..4).map(|k| s[r * 4 + k] * V[k * 2 + c] as f64).sum::<f64>() as f32)
        .collect()
}

#[test]
fn a_softmax_read_by_a_matmul_runs_on_shares_with_the_exact_float_semantics() {
    for (opset, axis, coerce_2d) in [(17, -1, false), (13, 1, false), (11, 1, true), (11, 2, false)] {
        let b = attention_like(opset, "Softmax", axis);
        let g = import(&b).unwrap_or_else(|e| panic!("opset {opset} axis {axis}: {e}"));
        let text = veil_ir::print::to_text(&g);
        let count = |m: &str| g.live_nodes().filter(|(_, n)| n.op.mnemonic() == m).count();
        assert_eq!(
            (count("softmax"), count("exp2"), count("reciprocal"), count("maxpool"), count("mul")),
            (0, 1, 1, 1, 1),
            "{text}"
        );
        assert_eq!(count("reveal"), 1, "only the result is revealed: {text}");
        let a = if axis < 0 { 2 } else { axis as usize };
        let want = reference(a, coerce_2d);
        let got = run_float(&g, &[input()]).unwrap().remove(0);
        for (g, w) in got.data.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "opset {opset} axis {axis}: {g} vs {w}");
        }
        // Within the derived bound (loose: it adds every exponential's error into the sum
        // and through the product, where a row's errors largely cancel).
        fixed_within_bound(&g, &input(), 2.0, &want);
    }
}

#[test]
fn a_logsoftmax_inside_the_network_is_refused_by_name() {
    let e = problems(&attention_like(17, "LogSoftmax", -1));
    assert!(e.contains(r#"node "sm" (LogSoftmax): LogSoftmax inside the network"#) && e.contains("logarithm"), "{e}");
}

/// torch's nn.TransformerEncoderLayer (`models/attention/make_torch.py`, both exporters: the
/// TorchScript one writes attention with MatMul, Div and Softmax, the dynamo one as its
/// scaled-dot-product decomposition), also with a causal mask (a Trilu of a constant, or a
/// constant of −∞): one Softmax on shares per export, onnxruntime's output in float.
#[test]
fn torchs_transformer_layer_gives_onnxruntimes_output() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/attention");
    let x = veil_ir::npy::read_npy(&dir.join("torch_input.npy")).unwrap();
    for export in ["", "_dynamo", "_causal", "_causal_dynamo"] {
        let g = veil_compiler::onnx::import_file(&dir.join(format!("torch{export}.onnx")), &ImportOptions::default())
            .unwrap_or_else(|e| panic!("torch{export}: {e}"));
        let count = |m: &str| g.live_nodes().filter(|(_, n)| n.op.mnemonic() == m).count();
        assert_eq!((count("exp2"), count("reciprocal"), count("softmax")), (1, 1, 0), "torch{export}");
        let want = veil_ir::npy::read_npy(&dir.join(format!("torch{export}_ort.npy"))).unwrap();
        let got = run_float(&g, std::slice::from_ref(&x)).unwrap().remove(0);
        assert_eq!(got.shape, want.shape);
        for (a, b) in got.data.iter().zip(&want.data) {
            assert!((a - b).abs() < 1e-5, "torch{export}: {a} vs onnxruntime {b}");
        }
    }
}

/// A mask added to the scores (here `−∞` and float32's lowest above the diagonal, `−10⁴` in one
/// place) hides those positions: the float result is the masked Softmax computed directly, the
/// ring encodes the mask, and fixed point stays within the derived bound.
#[test]
fn a_mask_of_minus_infinity_hides_its_positions() {
    // Scores [2, 3, 4] (rows of 4), mask [3, 4] broadcast over the batch.
    let hidden = |r: usize, c: usize| c > r + 1 || (r, c) == (2, 0);
    let mask: Vec<f32> = (0..12)
        .map(|i| match (i / 4, i % 4) {
            (2, 0) => -1e4,
            (r, c) if c > r + 1 => {
                if c == 3 {
                    f32::MIN
                } else {
                    f32::NEG_INFINITY
                }
            }
            _ => 0.0,
        })
        .collect();
    let b = model(
        17,
        vec![info("in", &[Some(2), Some(3), Some(4)])],
        vec![
            node("MatMul", "w", &["in", "w"], &["x"]),
            node("Add", "mask", &["x", "m"], &["xm"]),
            node("Softmax", "sm", &["xm"], &["s"]),
            node("MatMul", "v", &["s", "v"], &["y"]),
        ],
        vec![tensor("w", &[4, 4], W.to_vec()), tensor("m", &[3, 4], mask), tensor("v", &[4, 2], V.to_vec())],
        "y",
    );
    let g = import(&b).unwrap();
    let a = input().data;
    let x: Vec<f64> =
        (0..24).map(|i| (0..4).map(|k| (a[i / 4 * 4 + k] * W[k * 4 + i % 4]) as f64).sum::<f64>()).collect();
    let s: Vec<f64> = (0..24)
        .map(|i| {
            let (r, row) = (i / 4 % 3, i / 4 * 4);
            let open: Vec<usize> = (0..4).filter(|&c| !hidden(r, c)).map(|c| row + c).collect();
            if hidden(r, i % 4) {
                return 0.0;
            }
            let m = open.iter().map(|&j| x[j]).fold(f64::NEG_INFINITY, f64::max);
            (x[i] - m).exp() / open.iter().map(|&j| (x[j] - m).exp()).sum::<f64>()
        })
        .collect();
    let want: Vec<f32> = (0..6)
        .flat_map(|r| (0..2).map(move |c| (r, c)))
        .map(|(r, c)| (0..4).map(|k| s[r * 4 + k] * V[k * 2 + c] as f64).sum::<f64>() as f32)
        .collect();
    let got = run_float(&g, &[input()]).unwrap().remove(0);
    for (g, w) in got.data.iter().zip(&want) {
        assert!((g - w).abs() < 1e-5, "{g} vs {w}");
    }
    fixed_within_bound(&g, &input(), 2.0, &want);
}

/// Trilu on constants (the TorchScript exporter's causal mask): both triangles, diagonals
/// either side, and batched matrices, against the definition.
#[test]
fn trilu_folds_on_constants() {
    for (upper, k) in [(1i64, 0i64), (0, 0), (1, 1), (0, -1), (1, -2), (0, 2)] {
        let mut t = node("Trilu", "t", &["c", "k"], &["m"]);
        t.attribute.push(int_attr("upper", upper));
        // y = x + Trilu(c): the mask is folded into one constant shift.
        let b = model(
            14,
            vec![info("in", &[Some(2), Some(3), Some(4)])],
            vec![t, node("MatMul", "w", &["in", "w"], &["x"]), node("Add", "add", &["x", "m"], &["y"])],
            vec![
                tensor("c", &[2, 3, 4], (1..=24).map(|v| v as f32).collect()),
                int64s("k", &[k]),
                tensor("w", &[4, 4], W.to_vec()),
            ],
            "y",
        );
        let g = import(&b).unwrap_or_else(|e| panic!("upper {upper} k {k}: {e}"));
        let zero = Tensor::new(vec![2, 3, 4], vec![0.0; 24]).unwrap();
        let got = run_float(&g, &[zero]).unwrap().remove(0);
        let want: Vec<f32> = (0..24)
            .map(|f| {
                let (i, j) = ((f / 4 % 3) as i64, (f % 4) as i64);
                let keep = if upper == 1 { j - i >= k } else { j - i <= k };
                if keep { (f + 1) as f32 } else { 0.0 }
            })
            .collect();
        assert_eq!(got.data, want, "upper {upper} k {k}");
    }
}
