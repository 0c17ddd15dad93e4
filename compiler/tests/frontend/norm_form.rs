//! LayerNormalization written out (ReduceMean, Sub, Pow or Mul, ReduceMean, Add ε, Sqrt, Div or
//! Reciprocal and Mul), as exporters below opset 17 write it: the models of
//! `models/layer_norm_forms/` (made by its `make.py`) against onnxruntime in float and within
//! the calibrated error bound in fixed point, lowered like the op (one inverse square root per
//! row, the written-out statistics gone); and every other Sqrt or Reciprocal of a secret value
//! refused by name.

use super::*;

fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/layer_norm_forms")
}

/// Each form: float within 1e-4 of onnxruntime; compiled (calibrated on its input, F = 16), one
/// `rsqrt` with one element per normalised row, two Beaver products (the squares and the
/// normalisation) and none of the written-out statistics (`avgpool`, `poly`); the fixed-point
/// output within the calibrated error bound of onnxruntime's.
#[test]
fn written_out_layer_norms_match_onnxruntime_and_run_within_the_bound() {
    for (name, rows) in [("torchscript", 4usize), ("reciprocal", 4), ("two_axes", 1)] {
        let g = veil_compiler::onnx::import_file(&dir().join(format!("{name}.onnx")), &ImportOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let x = veil_ir::npy::read_npy(&dir().join(format!("input_{name}.npy"))).unwrap();
        let want = veil_ir::npy::read_npy(&dir().join(format!("ort_{name}.npy"))).unwrap();
        let float = run_float(&g, std::slice::from_ref(&x)).unwrap().remove(0);
        assert_eq!(float.shape, want.shape, "{name}");
        let float_err = float.data.iter().zip(&want.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(float_err <= 1e-4, "{name}: float off onnxruntime by {float_err}");

        let opts = veil_passes::Options { frac_bits: 16, calibration: vec![x.clone()], ..Default::default() };
        let f = veil_compiler::compile(&g, &opts.into()).unwrap_or_else(|e| panic!("{name}: {e}")).graph;
        let ops: Vec<&str> = f.live_nodes().map(|(_, n)| n.op.mnemonic()).collect();
        let count = |m: &str| ops.iter().filter(|&&o| o == m).count();
        assert_eq!((count("rsqrt"), count("mul"), count("poly"), count("avgpool")), (1, 2, 0, 0), "{name}: {ops:?}");
        let r = f.live_nodes().find(|(_, n)| matches!(n.op, Op::Rsqrt { .. })).unwrap().1;
        assert_eq!(f.values[r.output].ty.len(), rows, "{name}: one root per row");
        veil_ir::schedule::lower(&f).unwrap_or_else(|e| panic!("{name}: {e}"));

        let e = veil_passes::error_bound::calibrated_error_bounds(&f, std::slice::from_ref(&x)).unwrap();
        let bound = f.outputs.iter().map(|v| e[v.index()]).fold(0f64, f64::max);
        let fixed = veil_ir::eval::run_fixed(&f, std::slice::from_ref(&x), 0).unwrap().outputs.remove(0);
        let err = fixed.data.iter().zip(&want.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) as f64;
        eprintln!(
            "layer norm written out ({name}): float {float_err:.1e}, fixed {err:.2e} (calibrated bound {bound:.2e})"
        );
        assert!(err <= bound, "{name}: fixed point off by {err}, beyond the bound {bound}");
    }
}

fn mean(name: &str, x: &str, y: &str) -> NodeProto {
    let mut m = node("ReduceMean", name, &[x], &[y]);
    m.attribute = vec![ints_attr("axes", &[-1])];
    m
}

/// `x → MatMul(w) → h`, then `nodes`, output `y`, at opset 13.
fn after_matmul(nodes: Vec<NodeProto>, inits: Vec<TensorProto>) -> Vec<u8> {
    let w = tensor("w", &[4, 4], (0..16).map(|i| ((i * 5) % 7) as f32 * 0.25 - 0.75).collect());
    let mut all = vec![node("MatMul", "first", &["x", "w"], &["h"])];
    all.extend(nodes);
    model(13, vec![info("x", &[Some(1), Some(2), Some(4)])], all, [vec![w], inits].concat(), "y")
}

/// The written-out statistics up to `s = Sqrt(Var(h) + ε)`.
fn up_to_std() -> Vec<NodeProto> {
    vec![
        mean("mean", "h", "mu"),
        node("Sub", "centre", &["h", "mu"], &["d"]),
        node("Mul", "square", &["d", "d"], &["d2"]),
        mean("variance", "d2", "v"),
        node("Add", "add_eps", &["v", "tiny"], &["ve"]),
        node("Sqrt", "std", &["ve"], &["s"]),
    ]
}

/// Any other Sqrt or Reciprocal of a secret value is refused by name: of a plain value, the
/// standard deviation read by another op, a value other than the centred one divided by it,
/// and the square root of a mean that is not a variance. (Before session 15 every Sqrt of a
/// secret value was refused; the written-out form now compiles.)
#[test]
fn sqrt_and_reciprocal_outside_the_written_out_form_are_refused_by_name() {
    let eps = || vec![scalar("tiny", 1e-5)];
    let e = problems(&after_matmul(vec![node("Sqrt", "root", &["h"], &["y"])], vec![]));
    assert!(
        e.contains(r#"node "root" (Sqrt): not supported: a Sqrt of a secret value outside LayerNormalization's written-out form"#),
        "{e}"
    );
    let e = problems(&after_matmul(vec![node("Reciprocal", "inv", &["h"], &["y"])], vec![]));
    assert!(e.contains(r#"node "inv" (Reciprocal): not supported: a Reciprocal of a secret value other than"#), "{e}");
    let read = [up_to_std(), vec![node("Add", "other", &["s", "tiny"], &["y"])]].concat();
    let e = problems(&after_matmul(read, eps()));
    assert!(e.contains(r#"node "other" (Add): reads "s" (from node "std"), not supported: a Sqrt"#), "{e}");
    let wrong = [up_to_std(), vec![node("Div", "norm", &["h", "s"], &["y"])]].concat();
    let e = problems(&after_matmul(wrong, eps()));
    assert!(e.contains(r#"node "norm" (Div): reads "s" (from node "std"), not supported: a Sqrt"#), "{e}");
    let not_var = vec![mean("mean", "h", "mu"), node("Sqrt", "std", &["mu"], &["y"])];
    let e = problems(&after_matmul(not_var, vec![]));
    assert!(e.contains(r#"node "std" (Sqrt): not supported: a Sqrt of a secret value outside"#), "{e}");
    // The written-out form itself compiles to one inverse square root.
    let ok = [up_to_std(), vec![node("Div", "norm", &["d", "s"], &["y"])]].concat();
    let g = import(&after_matmul(ok, eps())).unwrap();
    assert_eq!(g.live_nodes().filter(|(_, n)| matches!(n.op, Op::Rsqrt { .. })).count(), 1);
}
