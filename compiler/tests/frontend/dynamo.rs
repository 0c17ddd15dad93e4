//! A model exported by torch's default exporter (`torch.onnx.export(..., dynamo=True)`, opset
//! 20): external weights, a global average pool written as `ReduceMean`, ReLU6 as `Clip` with
//! constant bounds. Made by `models/dynamo/make_dynamo.py`, with onnxruntime's output as the
//! reference.

use std::path::PathBuf;

use veil_compiler::onnx::import_file;
use veil_ir::npy::read_npy;

use super::*;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/dynamo")
}

#[test]
fn a_dynamo_exported_cnn_imports_compiles_and_simulates_within_the_error_bound() {
    let g = import_file(&dir().join("cnn_gap.onnx"), &ImportOptions::default()).unwrap();
    let text = veil_ir::print::to_text(&g);
    assert!(text.contains("avgpool"), "ReduceMean over [2, 3] is a global pool:\n{text}");
    let x = read_npy(&dir().join("cnn_gap_input.npy")).unwrap();
    let want = read_npy(&dir().join("cnn_gap_logits.npy")).unwrap();

    let float = run_float(&g, std::slice::from_ref(&x)).unwrap();
    assert_eq!(float[0].shape, want.shape);
    for (k, (a, b)) in float[0].data.iter().zip(&want.data).enumerate() {
        assert!((a - b).abs() <= 1e-4 + 1e-4 * b.abs(), "float logit {k}: {a}, onnxruntime {b}");
    }

    let bound = x.data.iter().fold(0f64, |m, &v| m.max(v.abs() as f64));
    let opts = veil_passes::Options { input_bound: bound as f32, ..Default::default() };
    let f = veil_compiler::compile(&g, &opts.into()).unwrap().graph;
    let ir = veil_ir::print::to_text(&f);
    let mean_affines = ir.lines().filter(|l| l.contains("affine") && l.contains(r#"node "node_mean""#)).count();
    assert!(
        ir.contains("= sumpool") && ir.contains("weight+node_mean") && mean_affines == 0,
        "the mean is a sum pool whose divisor folds into the classifier:\n{ir}"
    );
    let run = veil_ir::eval::run_fixed(&f, std::slice::from_ref(&x), 0).unwrap();
    let tol = veil_passes::error_bound::error_bounds(&f, bound)[f.outputs[0].index()];
    let (lo, hi) = want.data.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let range = (hi - lo) as f64;
    let mut worst = 0f64;
    for (k, (a, b)) in run.outputs[0].data.iter().zip(&want.data).enumerate() {
        let err = (a - b).abs() as f64;
        assert!(err <= tol + 1e-4, "fixed-point logit {k}: {a}, onnxruntime {b}, bound {tol:e}");
        worst = worst.max(err);
    }
    assert_eq!(run.truncation_wraps, 0);
    // The derived bound is a worst case over every input; what this input reaches is far below,
    // and the prediction is the same.
    let top = |v: &[f32]| (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap();
    assert_eq!(top(&run.outputs[0].data), top(&want.data), "top-1 class");
    assert!(worst <= 0.05 * range, "error {worst:e} over 5% of the logits' range {range}");
    eprintln!(
        "dynamo CNN: worst fixed-point error {worst:.2e} = {:.2}% of the logits' range {range:.3} (derived bound {tol:.2e})",
        100.0 * worst / range
    );
}
