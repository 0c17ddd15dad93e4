//! The float interpreter agrees with tract's inference on every bundled model.

// Reports the measured error per model on stderr (shown with --nocapture).
#![allow(clippy::print_stderr)]

use veil_compiler::onnx::{ImportOptions, import_file};
use veil_tests::{bundled_models, max_rel_error, root, tract_run};

/// Relative tolerance of the acceptance criterion. Elements far below the tensor's
/// largest magnitude are judged relative to 1e-2 of it (f32 cancellation makes their own
/// relative error meaningless).
const TOL: f32 = 1e-4;

#[test]
fn float_interpreter_matches_tract_on_every_bundled_model() {
    let models = bundled_models();
    assert!(models.len() >= 8, "expected the bundled models, found {models:?}");
    for name in &models {
        let path = root().join("models").join(format!("{name}.onnx"));
        let g = import_file(&path, &ImportOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let x = veil_ir::npy::read_npy(&root().join("models/inputs").join(format!("{name}.npy"))).unwrap();
        let ours = veil_ir::eval::run_float(&g, std::slice::from_ref(&x)).unwrap();
        let theirs = tract_run(&path, &[x]).unwrap_or_else(|e| panic!("{name}: tract failed: {e:?}"));
        assert_eq!(ours.len(), theirs.len(), "{name}: output count");
        for (a, b) in ours.iter().zip(&theirs) {
            let err = max_rel_error(a, b, 1e-2);
            eprintln!("{name}: max relative error {err:e} over {} values", a.data.len());
            assert!(
                err <= TOL,
                "{name}: max relative error {err:e} > {TOL:e}\nours   {:?}\ntract  {:?}",
                a.data,
                b.data
            );
        }
    }
}

#[test]
fn float_interpreter_matches_tract_on_a_batch() {
    // A dynamic batch dimension fixed to 3 with --batch.
    let path = root().join("models/lenet.onnx");
    let g = import_file(&path, &ImportOptions { batch: 3 }).unwrap();
    assert_eq!(g.values[g.inputs[0]].ty.shape, vec![3, 1, 28, 28]);
    let data: Vec<f32> = (0..3 * 28 * 28).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect();
    let x = veil_ir::Tensor::new(vec![3, 1, 28, 28], data).unwrap();
    let ours = veil_ir::eval::run_float(&g, std::slice::from_ref(&x)).unwrap();
    let theirs = tract_run(&path, &[x]).unwrap();
    assert!(max_rel_error(&ours[0], &theirs[0], 1e-2) <= TOL);
}
