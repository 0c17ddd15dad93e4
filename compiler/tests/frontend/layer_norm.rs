//! LayerNormalization (opset 17) on shares: against a direct f64 computation in float, within
//! the derived error bound in fixed point, with `γ`/`β` folded into the following linear layer
//! or run as a diagonal one; its `Mean` and `InvStdDev` outputs; the calibrated error bound;
//! and the refused forms, each with its reason.

use super::*;

fn float_attr(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(v),
        ..Default::default()
    }
}

const K: usize = 8;
const ROWS: usize = 3;
const EPS: f32 = 1e-5;

/// Rows of different spreads (one nearly constant) and offsets.
fn input() -> Tensor {
    let data = (0..ROWS * K)
        .map(|i| {
            let (r, j) = (i / K, (i % K) as f32);
            match r {
                0 => -1.5 + 0.4 * j - 0.05 * j * j,
                1 => 2.0 + 0.02 * (j * 1.7).sin(),
                _ => 0.6 * (j * 2.3).cos() - 0.3,
            }
        })
        .collect();
    Tensor::new(vec![1, ROWS, K], data).unwrap()
}

fn gamma() -> Vec<f32> {
    (0..K).map(|j| 0.5 + 0.125 * j as f32).collect()
}

fn beta() -> Vec<f32> {
    (0..K).map(|j| 0.25 - 0.0625 * j as f32).collect()
}

/// `(x − μ)/√(σ² + ε)·γ + β` per row, in f64.
fn reference(x: &Tensor) -> Vec<f64> {
    let (g, b) = (gamma(), beta());
    let mut out = Vec::new();
    for row in x.data.chunks(K) {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / K as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / K as f64;
        for (j, &v) in row.iter().enumerate() {
            out.push((v as f64 - mean) / (var + EPS as f64).sqrt() * g[j] as f64 + b[j] as f64);
        }
    }
    out
}

fn eye(name: &str) -> TensorProto {
    tensor(name, &[K, K], (0..K * K).map(|i| if i % (K + 1) == 0 { 1.0 } else { 0.0 }).collect())
}

/// `x → MatMul(eye) → LayerNormalization` with these outputs.
fn layer_norm_model_nodes(outputs: &[&str]) -> Vec<NodeProto> {
    let mut ln = node("LayerNormalization", "ln", &["x", "gamma", "beta"], outputs);
    ln.attribute = vec![int_attr("axis", -1), float_attr("epsilon", EPS)];
    vec![node("MatMul", "first", &["in", "eye"], &["x"]), ln]
}

/// `x → MatMul(eye) → LayerNormalization → [MatMul(w)]`: the first layer makes the input shared.
fn layer_norm_model(then_linear: bool, extra: Vec<AttributeProto>, outputs: &[&str]) -> Vec<u8> {
    let mut nodes = layer_norm_model_nodes(outputs);
    nodes[1].attribute.extend(extra);
    let mut inits = vec![eye("eye"), tensor("gamma", &[K], gamma()), tensor("beta", &[K], beta())];
    if then_linear {
        nodes.push(node("MatMul", "next", &["y", "w"], &["z"]));
        inits.push(tensor("w", &[K, 2], (0..2 * K).map(|i| ((i * 7) % 5) as f32 * 0.25 - 0.5).collect()));
    }
    model(
        17,
        vec![info("in", &[Some(1), Some(ROWS as i64), Some(K as i64)])],
        nodes,
        inits,
        if then_linear { "z" } else { "y" },
    )
}

/// Float matches the direct computation; fixed point stays within the derived bound and, with
/// no linear layer after it, `γ`/`β` run as a diagonal dense layer (so the plan lowers).
#[test]
fn layer_norm_matches_the_formula_and_runs_on_shares() {
    let x = input();
    let want = reference(&x);
    let g = import(&layer_norm_model(false, vec![], &["y"])).unwrap();
    let text = veil_ir::print::to_text(&g);
    assert!(text.contains("= rsqrt %") && text.contains("eps="), "{text}");
    let got = run_float(&g, std::slice::from_ref(&x)).unwrap().remove(0);
    for (a, w) in got.data.iter().zip(&want) {
        assert!((*a as f64 - w).abs() < 1e-4, "float {a} vs {w}");
    }
    let want32: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    let opts = veil_passes::Options { input_bound: 3.0, ..Default::default() };
    let f = veil_compiler::compile(&g, &opts.into()).unwrap().graph;
    let e = veil_passes::error_bound::error_bounds(&f, 3.0);
    let tol = f.outputs.iter().map(|v| e[v.index()]).fold(0f64, f64::max);
    let fixed = veil_ir::eval::run_fixed(&f, std::slice::from_ref(&x), 0).unwrap().outputs.remove(0);
    let worst = fixed.data.iter().zip(&want32).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    eprintln!("layer norm: largest fixed-point error {worst:.2e} (derived bound {tol:.2e})");
    assert!((worst as f64) <= tol, "{worst} beyond the bound {tol}");
    let steps = veil_ir::schedule::lower(&f).unwrap_or_else(|e| panic!("{e}\n{}", veil_ir::print::to_text(&f)));
    let gc = steps.iter().filter(|s| matches!(s.kind, veil_ir::schedule::Kind::Activation { .. })).count();
    assert_eq!(gc, 1, "one garbled inverse square root");
    let rsqrt = f.live_nodes().find(|(_, n)| matches!(n.op, Op::Rsqrt { .. })).unwrap().1;
    assert_eq!(f.values[rsqrt.output].ty.shape, vec![1, ROWS, 1, 1], "one per row");
}

/// Followed by a linear layer, `γ` and `β` fold into its weights and bias: no affine with a
/// secret scale is left, and the result is the formula's through that layer.
#[test]
fn layer_norm_scale_and_bias_fold_into_the_next_linear_layer() {
    let x = input();
    let n = reference(&x);
    let w: Vec<f64> = (0..2 * K).map(|i| ((i * 7) % 5) as f64 * 0.25 - 0.5).collect();
    let want: Vec<f64> = n
        .chunks(K)
        .flat_map(|r| (0..2).map(|o| (0..K).map(|j| r[j] * w[j * 2 + o]).sum::<f64>()).collect::<Vec<_>>())
        .collect();
    let g = import(&layer_norm_model(true, vec![], &["y"])).unwrap();
    let got = run_float(&g, std::slice::from_ref(&x)).unwrap().remove(0);
    for (a, w) in got.data.iter().zip(&want) {
        assert!((*a as f64 - w).abs() < 1e-4, "float {a} vs {w}");
    }
    let opts = veil_passes::Options { input_bound: 3.0, ..Default::default() };
    let f = veil_compiler::compile(&g, &opts.into()).unwrap().graph;
    let secret_scale = f.live_nodes().any(
        |(_, n)| matches!(n.op, Op::Affine { scale: Some(c), .. } if f.consts[c].domain == veil_ir::Domain::Server),
    );
    assert!(!secret_scale, "{}", veil_ir::print::to_text(&f));
    let dense = f.live_nodes().filter(|(_, n)| matches!(n.op, Op::Dense { .. })).count();
    assert_eq!(dense, 2, "the two MatMuls, γ and β folded into the second");
    let e = veil_passes::error_bound::error_bounds(&f, 3.0);
    let tol = f.outputs.iter().map(|v| e[v.index()]).fold(0f64, f64::max);
    let fixed = veil_ir::eval::run_fixed(&f, std::slice::from_ref(&x), 0).unwrap().outputs.remove(0);
    let worst = fixed.data.iter().zip(&want).map(|(a, b)| (*a as f64 - b).abs()).fold(0f64, f64::max);
    eprintln!("layer norm then linear: largest fixed-point error {worst:.2e} (derived bound {tol:.2e})");
    assert!(worst <= tol, "{worst} beyond the bound {tol}");
    veil_ir::schedule::lower(&f).unwrap();
}

/// The `Mean` and `InvStdDev` outputs (session 15; refused before) are the formula's, from the
/// same circuit as `Y`: one inverse square root per row for all three.
#[test]
fn layer_norm_statistics_outputs_match_the_formula() {
    let x = input();
    let bytes = model_proto(
        17,
        vec![info("in", &[Some(1), Some(ROWS as i64), Some(K as i64)])],
        layer_norm_model_nodes(&["y", "mean", "inv_std"]),
        vec![eye("eye"), tensor("gamma", &[K], gamma()), tensor("beta", &[K], beta())],
        &["y", "mean", "inv_std"],
    )
    .encode_to_vec();
    let g = import(&bytes).unwrap();
    assert_eq!(g.live_nodes().filter(|(_, n)| matches!(n.op, Op::Rsqrt { .. })).count(), 1);
    let got = run_float(&g, std::slice::from_ref(&x)).unwrap();
    assert_eq!((got[1].shape.as_slice(), got[2].shape.as_slice()), ([1, ROWS, 1].as_slice(), [1, ROWS, 1].as_slice()));
    for (r, row) in x.data.chunks(K).enumerate() {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / K as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / K as f64;
        let inv = 1.0 / (var + EPS as f64).sqrt();
        assert!((got[1].data[r] as f64 - mean).abs() < 1e-5, "row {r}: mean {} vs {mean}", got[1].data[r]);
        assert!((got[2].data[r] as f64 - inv).abs() < 1e-4 * inv, "row {r}: 1/σ {} vs {inv}", got[2].data[r]);
    }
}

/// What the lowering does not read is refused with the reason: a non-float `stash_type`, a
/// negative epsilon, and a scale that does not fit the row.
#[test]
fn layer_norm_refuses_other_stash_types_and_bad_attributes() {
    let e = problems(&layer_norm_model(false, vec![int_attr("stash_type", 0)], &["y"]));
    assert!(e.contains("stash_type = 0 is not supported"), "{e}");
    let mut bad = node("LayerNormalization", "ln", &["x", "gamma"], &["y"]);
    bad.attribute = vec![float_attr("epsilon", -1.0)];
    let b = model(
        17,
        vec![info("in", &[Some(1), Some(ROWS as i64), Some(K as i64)])],
        vec![node("MatMul", "first", &["in", "eye"], &["x"]), bad],
        vec![eye("eye"), tensor("gamma", &[K], gamma())],
        "y",
    );
    assert!(problems(&b).contains("epsilon must be finite and ≥ 0, got -1"), "{}", problems(&b));
    let mut wide = node("LayerNormalization", "ln", &["x", "gamma"], &["y"]);
    wide.attribute = vec![int_attr("axis", -1)];
    let b = model(
        17,
        vec![info("in", &[Some(1), Some(ROWS as i64), Some(K as i64)])],
        vec![node("MatMul", "first", &["in", "eye"], &["x"]), wide],
        vec![eye("eye"), tensor("gamma", &[3], vec![1.0; 3])],
        "y",
    );
    assert!(
        problems(&b).contains("scale of shape [3] does not broadcast to the normalised shape [8]"),
        "{}",
        problems(&b)
    );
}

/// The error bound with calibration (`models/layer_norm/`, calibrated on its own input): it
/// holds (the fixed-point output is within it of onnxruntime's), and taking the variances at
/// least half the smallest seen, instead of as small as 0, makes it orders of magnitude tighter
/// than the worst-case bound for the same plan.
#[test]
fn the_calibrated_error_bound_holds_and_is_far_below_the_worst_case_one() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/layer_norm");
    let g = veil_compiler::onnx::import_file(&dir.join("model.onnx"), &ImportOptions::default()).unwrap();
    let x = veil_ir::npy::read_npy(&dir.join("input.npy")).unwrap();
    let want = veil_ir::npy::read_npy(&dir.join("ort.npy")).unwrap();
    for frac_bits in [12u8, 16] {
        let opts = veil_passes::Options { frac_bits, calibration: vec![x.clone()], ..Default::default() };
        let f = veil_compiler::compile(&g, &opts.into()).unwrap().graph;
        let out = |e: &[f64]| f.outputs.iter().map(|v| e[v.index()]).fold(0f64, f64::max);
        let stated = out(&veil_passes::error_bound::calibrated_error_bounds(&f, std::slice::from_ref(&x)).unwrap());
        let worst_case = out(&veil_passes::error_bound::error_bounds(&f, f.input_bound.unwrap() as f64));
        let fixed = veil_ir::eval::run_fixed(&f, std::slice::from_ref(&x), 0).unwrap().outputs.remove(0);
        let measured = fixed.data.iter().zip(&want.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) as f64;
        eprintln!(
            "layer_norm model F={frac_bits}: measured {measured:.2e}, calibrated bound {stated:.2e}, worst-case bound {worst_case:.2e}"
        );
        assert!(measured <= stated, "F={frac_bits}: {measured} beyond the calibrated bound {stated}");
        assert!(stated * 1e3 <= worst_case, "F={frac_bits}: calibrated {stated} vs worst case {worst_case}");
    }
}

/// The calibrated bound holds for every calibration input, not only one: 24 inputs whose rows
/// have spreads from 10⁻³ to 2 (a variance near ε among them), at F = 12 and 16, each within
/// the bound of the float model.
#[test]
fn the_calibrated_error_bound_holds_for_every_calibration_input() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/layer_norm");
    let g = veil_compiler::onnx::import_file(&dir.join("model.onnx"), &ImportOptions::default()).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let xs: Vec<Tensor> = (0..24)
        .map(|i| {
            let spread = 10f64.powf(-3.0 + 3.3 * i as f64 / 23.0);
            let data = (0..32).map(|j| (if j % 8 == 0 { uniform() } else { 0.5 } + spread * (uniform() - 0.5)) as f32);
            Tensor::new(vec![1, 4, 8], data.collect()).unwrap()
        })
        .collect();
    for frac_bits in [12u8, 16] {
        let opts = veil_passes::Options { frac_bits, calibration: xs.clone(), ..Default::default() };
        let f = veil_compiler::compile(&g, &opts.into()).unwrap().graph;
        let e = veil_passes::error_bound::calibrated_error_bounds(&f, &xs).unwrap();
        let bound = f.outputs.iter().map(|v| e[v.index()]).fold(0f64, f64::max);
        let mut worst = 0f64;
        for x in &xs {
            let want = run_float(&g, std::slice::from_ref(x)).unwrap().remove(0);
            let got = veil_ir::eval::run_fixed(&f, std::slice::from_ref(x), 0).unwrap().outputs.remove(0);
            let err = got.data.iter().zip(&want.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) as f64;
            worst = worst.max(err);
        }
        eprintln!(
            "layer_norm model, 24 calibration inputs, F={frac_bits}: worst {worst:.2e}, calibrated bound {bound:.2e}"
        );
        assert!(worst <= bound, "F={frac_bits}: {worst} beyond the calibrated bound {bound}");
    }
}
