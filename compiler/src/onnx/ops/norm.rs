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

use veil_ir::{Op, ValueId, Window2d};

use super::{arg, axis, konst, opt_const};
use crate::onnx::consts::broadcast_shape;
use crate::onnx::import::{Ctx, Importer, Sym};

/// Lowers LayerNormalization (`Y` only; `stash_type` 1).
pub fn layer_norm(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    if ctx.node.output.iter().skip(1).any(|o| !o.is_empty()) {
        return Err("the Mean and InvStdDev outputs are not supported (they are statistics of the secret input); \
only Y is"
            .into());
    }
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
    Ok(vec![Sym::Value(imp.add(name, out, Op::Affine { scale: Some(g), shift: b }, &[n])?)])
}

/// `(x − μ)/√(σ² + ε)` over the axes of `x` from `a` on, with `x`'s shape (see the module doc):
/// what LayerNormalization computes before its scale and bias, and what its written-out form
/// (`super::norm_form`) lowers to. `name` names the nodes, `out` prefixes their values.
pub fn normalise(imp: &mut Importer, name: &str, out: &str, x: ValueId, a: usize, eps: f32) -> Result<ValueId, String> {
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
    let d = imp.add(name, &format!("{out}/centred"), Op::Sub, &[kx, ms])?;
    let sq = imp.add(name, &format!("{out}/squares"), Op::Mul, &[d, d])?;
    let ss = imp.add(name, &format!("{out}/sum_squares"), row, &[sq])?;
    let c = k as f64 * up * up;
    let r = imp.add(name, &format!("{out}/rsqrt"), Op::Rsqrt { eps: (eps as f64 * c) as f32 }, &[ss])?;
    let root_k = imp.public(&format!("{name}.sqrt_k"), vec![], vec![(k as f32).sqrt()]);
    let inv = imp.add(name, &format!("{out}/inv_std"), Op::Affine { scale: Some(root_k), shift: None }, &[r])?;
    let n = imp.add(name, &format!("{out}/normalised_rows"), Op::Mul, &[d, inv])?;
    imp.add(name, &format!("{out}/normalised"), Op::Reshape { shape }, &[n])
}
