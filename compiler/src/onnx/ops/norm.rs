//! LayerNormalization (opset 17) on shares, from existing ops and the secret inverse square
//! root: `y = (x − μ) / √(σ² + ε) · γ + β` over the trailing axes from `axis`.
//!
//! Every division by the row length `k` is kept off the shares, where a public `1/k` would be
//! rounded to the fixed-point scale (a relative error of several percent for `k = 768`).
//! With `2^m ≤ k < 2^(m+1)`, the centred row is computed exactly as
//! `d' = (k/2^m)·x − Σx/2^m = (k/2^m)·(x − μ)` (both public factors are exact at the usual
//! scales), the sum of its squares is `c·σ²` with `c = k·(k/2^m)²`, so
//! `(x − μ)/√(σ² + ε) = d' · √k · rsqrt(Σd'² + c·ε)`. The mean is broadcast back over the row by
//! a static gather (local), the squares and the final product are Beaver products, the inverse
//! square root is one garbled circuit per row, and `γ`, `β` (server weights) are a per-channel
//! affine, which `normalize_linear` folds into a following linear layer where there is one.
//! The optional `Mean` and `InvStdDev` outputs are `Σx · (1/k)` (a public scale) and
//! `√c · rsqrt(Σd'² + c·ε)`, from the same row sums and the same circuit ([`RowStats`], made
//! once per operand, axis and `ε`).

use veil_ir::{Op, ValueId, Window2d};

use super::{arg, axis, konst, opt_const};
use crate::onnx::consts::broadcast_shape;
use crate::onnx::import::{Ctx, Importer, Sym};

/// Lowers LayerNormalization (`Y`, and `Mean` and `InvStdDev` when the node names them;
/// `stash_type` 1).
pub fn layer_norm(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let stash = ctx.attrs.int_or("stash_type", 1)?;
    if stash != 1 {
        return Err(format!("stash_type = {stash} is not supported (only 1: statistics in float)"));
    }
    let eps = ctx.attrs.float_or("epsilon", 1e-5)?;
    if !eps.is_finite() || eps < 0.0 {
        return Err(format!("epsilon must be finite and ≥ 0, got {eps}"));
    }
    let x = imp.value(arg(inputs, 0)?)?;
    let shape = imp.ty(x).shape.clone();
    let a = axis(ctx.attrs.int_or("axis", -1)?, shape.len())?;
    let gamma = konst(inputs, 1, "scale")?.clone();
    let beta = opt_const(inputs, 2, "bias")?.cloned();
    for (what, t) in [("scale", Some(&gamma)), ("bias", beta.as_ref())] {
        if let Some(t) = t
            && broadcast_shape(&t.shape, &shape[a..]).ok().as_deref() != Some(&shape[a..])
        {
            return Err(format!(
                "{what} of shape {:?} does not broadcast to the normalised shape {:?}",
                t.shape,
                &shape[a..]
            ));
        }
    }
    let (out, name) = (ctx.out(0), ctx.name.as_str());
    let n = normalise(imp, name, out, x, a, eps)?;
    let g = imp.weight(&format!("{name}.scale"), gamma.shape.clone(), gamma.floats());
    let b = beta.map(|t| imp.weight(&format!("{name}.bias"), t.shape.clone(), t.floats()));
    let mut outs = vec![Sym::Value(imp.add(name, out, Op::Affine { scale: Some(g), shift: b }, &[n])?)];
    if !ctx.out(1).is_empty() {
        outs.push(Sym::Value(mean(imp, name, ctx.out(1), x, a, eps)?));
    }
    if !ctx.out(2).is_empty() {
        outs.resize(2, Sym::Missing("unused".into()));
        outs.push(Sym::Value(inv_std(imp, name, ctx.out(2), x, a, eps)?));
    }
    Ok(outs)
}

/// The statistics of the rows of `x` over its axes from `axis` on that every output of a
/// normalisation is made from (see the module doc).
#[derive(Clone, Debug)]
pub struct RowStats {
    /// `Σx` per row, `[1, rows, 1, 1]`.
    sum: ValueId,
    /// The centred rows `d' = (k/2^m)·(x − μ)`, `[1, rows, k, 1]`.
    centred: ValueId,
    /// `rsqrt(Σd'² + c·ε)` per row, `[1, rows, 1, 1]`.
    rsqrt: ValueId,
    /// The row length `k`.
    k: usize,
    /// `c = k·(k/2^m)²`.
    c: f64,
}

/// The row statistics of `x` over the axes from `a` on, made once per `(x, a, ε)`.
fn row_stats(imp: &mut Importer, name: &str, out: &str, x: ValueId, a: usize, eps: f32) -> Result<RowStats, String> {
    let key = (x, a, eps.to_bits());
    if let Some(s) = imp.norm_stats.get(&key) {
        return Ok(s.clone());
    }
    let shape = imp.ty(x).shape.clone();
    let k: usize = shape[a..].iter().product();
    let outer: usize = shape[..a].iter().product();
    if outer.checked_mul(k).is_none_or(|n| n > u32::MAX as usize) {
        return Err(format!("input of shape {shape:?} is too large"));
    }
    let grid = vec![1, outer, k, 1];
    let row = Op::SumPool { window: Window2d { kernel: [k, 1], strides: [1, 1], pads: [0; 4], dilations: [1, 1] } };
    let xg = imp.add(name, &format!("{out}/rows"), Op::Reshape { shape: grid.clone() }, &[x])?;
    let sum = imp.add(name, &format!("{out}/sum"), row.clone(), &[xg])?;
    let indices = (0..outer * k).map(|i| (i / k) as u32).collect();
    let sums = imp.add(name, &format!("{out}/sum_per_element"), Op::Select { indices, shape: grid }, &[sum])?;
    // d' = (k/2^m)·x − Σx/2^m.
    let m = k.ilog2();
    let up = k as f64 / (m as f64).exp2();
    let c_up = imp.public(&format!("{name}.k/2^{m}"), vec![], vec![up as f32]);
    let c_down = imp.public(&format!("{name}.1/2^{m}"), vec![], vec![(-(m as f32)).exp2()]);
    let kx = imp.add(name, &format!("{out}/x_scaled"), Op::Affine { scale: Some(c_up), shift: None }, &[xg])?;
    let ms = imp.add(name, &format!("{out}/sum_scaled"), Op::Affine { scale: Some(c_down), shift: None }, &[sums])?;
    let centred = imp.add(name, &format!("{out}/centred"), Op::Sub, &[kx, ms])?;
    let sq = imp.add(name, &format!("{out}/squares"), Op::Mul, &[centred, centred])?;
    let ss = imp.add(name, &format!("{out}/sum_squares"), row, &[sq])?;
    let c = k as f64 * up * up;
    let rsqrt = imp.add(name, &format!("{out}/rsqrt"), Op::Rsqrt { eps: (eps as f64 * c) as f32 }, &[ss])?;
    let stats = RowStats { sum, centred, rsqrt, k, c };
    imp.norm_stats.insert(key, stats.clone());
    Ok(stats)
}

/// `(x − μ)/√(σ² + ε)` over the axes of `x` from `a` on, with `x`'s shape (see the module doc):
/// what LayerNormalization computes before its scale and bias, and what its written-out form
/// (`super::norm_form`) lowers to. `name` names the nodes, `out` prefixes their values.
pub fn normalise(imp: &mut Importer, name: &str, out: &str, x: ValueId, a: usize, eps: f32) -> Result<ValueId, String> {
    let shape = imp.ty(x).shape.clone();
    let s = row_stats(imp, name, out, x, a, eps)?;
    let root_k = imp.public(&format!("{name}.sqrt_k"), vec![], vec![(s.k as f32).sqrt()]);
    let inv = imp.add(name, &format!("{out}/inv_std"), Op::Affine { scale: Some(root_k), shift: None }, &[s.rsqrt])?;
    let n = imp.add(name, &format!("{out}/normalised_rows"), Op::Mul, &[s.centred, inv])?;
    imp.add(name, &format!("{out}/normalised"), Op::Reshape { shape }, &[n])
}

/// The shape of a statistic of `x` per row: the axes from `a` on kept as 1.
fn stat_shape(imp: &Importer, x: ValueId, a: usize) -> Vec<usize> {
    let shape = &imp.ty(x).shape;
    shape[..a].iter().copied().chain(std::iter::repeat_n(1, shape.len() - a)).collect()
}

/// The mean `μ` of each row of `x` over the axes from `a` on (`Σx · 1/k`, a public scale), in
/// the shape ONNX gives it (those axes kept as 1): LayerNormalization's `Mean` output.
pub fn mean(imp: &mut Importer, name: &str, out: &str, x: ValueId, a: usize, eps: f32) -> Result<ValueId, String> {
    let s = row_stats(imp, name, out, x, a, eps)?;
    let inv_k = imp.public(&format!("{name}.1/k"), vec![], vec![1.0 / s.k as f32]);
    let m = imp.add(name, &format!("{out}/rows"), Op::Affine { scale: Some(inv_k), shift: None }, &[s.sum])?;
    let shape = stat_shape(imp, x, a);
    imp.add(name, out, Op::Reshape { shape }, &[m])
}

/// `1/√(σ² + ε)` of each row of `x` over the axes from `a` on (`√c · rsqrt(Σd'² + c·ε)`), in
/// the shape ONNX gives it: LayerNormalization's `InvStdDev` output, and the reciprocal of the
/// written-out form's standard deviation read on its own.
pub fn inv_std(imp: &mut Importer, name: &str, out: &str, x: ValueId, a: usize, eps: f32) -> Result<ValueId, String> {
    let s = row_stats(imp, name, out, x, a, eps)?;
    let root_c = imp.public(&format!("{name}.sqrt_c"), vec![], vec![s.c.sqrt() as f32]);
    let r = imp.add(name, &format!("{out}/rows"), Op::Affine { scale: Some(root_c), shift: None }, &[s.rsqrt])?;
    let shape = stat_shape(imp, x, a);
    imp.add(name, out, Op::Reshape { shape }, &[r])
}
