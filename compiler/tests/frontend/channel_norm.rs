//! InstanceNormalization and GroupNormalization (opset 18: scale and bias per group; opset 21:
//! per channel) on shares: against a direct f64 computation in float, within the calibrated
//! error bound in fixed point, one inverse square root per normalised row; and the refused
//! forms with their reasons.

use super::*;

const C: usize = 4;
const HW: usize = 6;

fn float_attr(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(v),
        ..Default::default()
    }
}

/// `[1, C, 2, 3]`: channels of different spreads and offsets (one nearly constant).
fn input() -> Tensor {
    let data = (0..C * HW)
        .map(|i| {
            let (c, j) = (i / HW, (i % HW) as f32);
            match c {
                0 => -1.0 + 0.4 * j - 0.05 * j * j,
                1 => 1.5 + 0.03 * (j * 1.3).sin(),
                2 => 0.8 * (j * 2.1).cos(),
                _ => 0.2 * j - 0.4,
            }
        })
        .collect();
    Tensor::new(vec![1, C, 2, 3], data).unwrap()
}

/// `(x − μ)/√(σ² + ε)·scale[c] + bias[c]` with statistics over groups of `C/groups` channels.
fn reference(x: &Tensor, groups: usize, scale: &[f32], bias: &[f32], eps: f64) -> Vec<f32> {
    let per = C / groups * HW;
    let mut out = Vec::new();
    for (gi, row) in x.data.chunks(per).enumerate() {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / per as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / per as f64;
        for (j, &v) in row.iter().enumerate() {
            let c = gi * (C / groups) + j / HW;
            out.push(((v as f64 - mean) / (var + eps).sqrt() * scale[c] as f64 + bias[c] as f64) as f32);
        }
    }
    out
}

/// `in → Mul(ones) → op(x, scale, bias)`: the product makes the operand secret.
fn norm_model(opset: i64, op: NodeProto, scale: &[f32], bias: &[f32]) -> Vec<u8> {
    model(
        opset,
        vec![info("in", &[Some(1), Some(C as i64), Some(2), Some(3)])],
        vec![node("Mul", "w", &["in", "ones"], &["x"]), op],
        vec![
            tensor("ones", &[1], vec![1.0]),
            tensor("scale", &[scale.len()], scale.to_vec()),
            tensor("bias", &[bias.len()], bias.to_vec()),
        ],
        "y",
    )
}

fn check(what: &str, bytes: &[u8], want: &[f32], rows: usize) {
    let x = input();
    let g = import(bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
    let float = run_float(&g, std::slice::from_ref(&x)).unwrap().remove(0);
    for (a, w) in float.data.iter().zip(want) {
        assert!((a - w).abs() < 1e-4, "{what}: float {a} vs {w}");
    }
    let opts = veil_passes::Options { frac_bits: 16, calibration: vec![x.clone()], ..Default::default() };
    let f = veil_compiler::compile(&g, &opts.into()).unwrap_or_else(|e| panic!("{what}: {e}")).graph;
    let r = f.live_nodes().find(|(_, n)| matches!(n.op, Op::Rsqrt { .. })).unwrap().1;
    assert_eq!(f.values[r.output].ty.len(), rows, "{what}: one root per row");
    veil_ir::schedule::lower(&f).unwrap_or_else(|e| panic!("{what}: {e}"));
    let e = veil_passes::error_bound::calibrated_error_bounds(&f, std::slice::from_ref(&x)).unwrap();
    let bound = f.outputs.iter().map(|v| e[v.index()]).fold(0f64, f64::max);
    let fixed = veil_ir::eval::run_fixed(&f, std::slice::from_ref(&x), 0).unwrap().outputs.remove(0);
    let err = fixed.data.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) as f64;
    eprintln!("{what}: fixed {err:.2e} (calibrated bound {bound:.2e})");
    assert!(err <= bound, "{what}: {err} beyond the bound {bound}");
}

#[test]
fn instance_norm_matches_the_formula_per_channel() {
    let (scale, bias) = ([0.5, 1.0, 1.5, -0.75], [0.25, -0.5, 0.0, 1.0]);
    let mut op = node("InstanceNormalization", "norm", &["x", "scale", "bias"], &["y"]);
    op.attribute = vec![float_attr("epsilon", 1e-4)];
    let want = reference(&input(), C, &scale, &bias, 1e-4f32 as f64);
    check("instance norm", &norm_model(17, op, &scale, &bias), &want, C);
}

#[test]
fn group_norm_matches_the_formula_per_group_at_opsets_18_and_21() {
    let mut op = node("GroupNormalization", "norm", &["x", "scale", "bias"], &["y"]);
    op.attribute = vec![float_attr("epsilon", 1e-5), int_attr("num_groups", 2)];
    // Opset 21: per channel.
    let (scale, bias) = ([0.5, 1.0, 1.5, -0.75], [0.25, -0.5, 0.0, 1.0]);
    let want = reference(&input(), 2, &scale, &bias, 1e-5f32 as f64);
    check("group norm (21)", &norm_model(21, op.clone(), &scale, &bias), &want, 2);
    // Opset 18: per group, each applying to its channels.
    let (gs, gb) = ([0.5f32, 1.5], [0.25f32, -0.5]);
    let want = reference(&input(), 2, &[0.5, 0.5, 1.5, 1.5], &[0.25, 0.25, -0.5, -0.5], 1e-5f32 as f64);
    check("group norm (18)", &norm_model(18, op, &gs, &gb), &want, 2);
}

#[test]
fn channel_norms_refuse_what_they_do_not_read_with_the_reason() {
    let per_channel = [1.0f32; C];
    let mut op = node("GroupNormalization", "norm", &["x", "scale", "bias"], &["y"]);
    op.attribute = vec![int_attr("num_groups", 3)];
    let e = problems(&norm_model(21, op, &per_channel, &per_channel));
    assert!(e.contains(r#"node "norm" (GroupNormalization): num_groups = 3 does not divide the 4 channels"#), "{e}");
    let mut op = node("GroupNormalization", "norm", &["x", "scale", "bias"], &["y"]);
    op.attribute = vec![int_attr("num_groups", 2)];
    let e = problems(&norm_model(18, op, &per_channel, &per_channel));
    assert!(e.contains("scale of shape [4]: expected [2] (one per group before opset 21)"), "{e}");
    let op = node("InstanceNormalization", "norm", &["x", "scale", "bias"], &["y"]);
    let e = problems(&norm_model(17, op, &[1.0; 3], &[0.0; 3]));
    assert!(e.contains("scale of shape [3]: expected [4] (one per channel)"), "{e}");
    let mut op = node("GroupNormalization", "norm", &["x", "scale", "bias"], &["y"]);
    op.attribute = vec![int_attr("num_groups", 2), int_attr("stash_type", 0)];
    let e = problems(&norm_model(21, op, &per_channel, &per_channel));
    assert!(e.contains("stash_type = 0 is not supported"), "{e}");
}
