//! `fold_batchnorm`: removes every `batchnorm`.
//!
//! Requires a verified graph. A batchnorm whose operand is a `conv2d` or a 2-D `dense` read by
//! nothing else is folded into that layer's weights and bias (`W'[m] = W[m]·a[m]`,
//! `b'[m] = (b[m] − mean[m])·a[m] + beta[m]` with `a = scale / sqrt(var + eps)`); any other becomes
//! a per-channel `affine`. Preserves float semantics up to f32 rounding. Does not fold affines
//! into linear layers (that is `normalize_linear`).

use veil_ir::{Graph, Op};

use crate::util::{derived_const, sole_producer};
use crate::{Options, PassError, Report};

pub fn run(g: &mut Graph, _: &Options) -> Result<Report, PassError> {
    let mut report = Report::default();
    let (mut folded, mut affine) = (0, 0);
    for n in g.body.clone() {
        let Op::BatchNorm { scale, bias, mean, var, epsilon } = g.nodes[n].op.clone() else { continue };
        let x = g.nodes[n].inputs[0];
        let c = g.values[x].ty.shape[1];
        let eps = epsilon as f64;
        let a: Vec<f64> =
            (0..c).map(|i| g.consts[scale].data[i] as f64 / (g.consts[var].data[i] as f64 + eps).sqrt()).collect();
        let shift =
            |b: f64, i: usize| ((b - g.consts[mean].data[i] as f64) * a[i] + g.consts[bias].data[i] as f64) as f32;
        let name = g.nodes[n].name.clone();
        let linear = sole_producer(g, x).filter(|&p| match &g.nodes[p].op {
            Op::Conv2d { .. } => true,
            Op::Dense { .. } => g.values[x].ty.rank() == 2,
            _ => false,
        });
        if let Some(p) = linear {
            let (Op::Conv2d { weight, bias: b0, .. } | Op::Dense { weight, bias: b0 }) = g.nodes[p].op.clone() else {
                unreachable!("filtered to conv2d and dense")
            };
            let per = g.consts[weight].data.len() / c;
            let w: Vec<f32> =
                g.consts[weight].data.iter().enumerate().map(|(i, &v)| (v as f64 * a[i / per]) as f32).collect();
            let b: Vec<f32> = (0..c).map(|i| shift(b0.map_or(0.0, |b0| g.consts[b0].data[i] as f64), i)).collect();
            let pname = g.nodes[p].name.clone();
            let wshape = g.consts[weight].shape.clone();
            let new_w = derived_const(g, weight, format!("{pname}.weight+{name}"), wshape, w);
            let new_b = Some(derived_const(g, weight, format!("{pname}.bias+{name}"), vec![c], b));
            match &mut g.nodes[p].op {
                Op::Conv2d { weight, bias, .. } | Op::Dense { weight, bias } => (*weight, *bias) = (new_w, new_b),
                _ => unreachable!("filtered to conv2d and dense"),
            }
            let out = g.nodes[n].output;
            let src = g.nodes[p].output;
            g.replace_uses(out, src);
            g.remove_node(n);
            folded += 1;
        } else {
            let rank = g.values[x].ty.rank();
            let shape: Vec<usize> = std::iter::once(c).chain(std::iter::repeat_n(1, rank - 2)).collect();
            let s = a.iter().map(|&v| v as f32).collect();
            let t = (0..c).map(|i| shift(0.0, i)).collect();
            let s = Some(derived_const(g, scale, format!("{name}.scale"), shape.clone(), s));
            let t = Some(derived_const(g, scale, format!("{name}.shift"), shape, t));
            g.nodes[n].op = Op::Affine { scale: s, shift: t };
            affine += 1;
        }
    }
    if folded + affine > 0 {
        report.note(format!(
            "folded {folded} batchnorm(s) into the preceding layer, turned {affine} into per-channel affine"
        ));
    }
    Ok(report)
}
