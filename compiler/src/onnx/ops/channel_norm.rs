//! InstanceNormalization and GroupNormalization on shares: statistics per channel (instance) or
//! per group of channels (group) over the spatial axes of `[N, C, D1, ...]`, then a per-channel
//! scale and bias. Both are LayerNormalization's lowering ([`super::norm::normalise`]) over a
//! view whose trailing axis holds one normalised row: `[N, C, D1·D2·…]` for an instance,
//! `[N, G, (C/G)·D1·D2·…]` for a group. The scale and bias are server weights of shape
//! `[C, 1, …, 1]`, run like LayerNormalization's (folded into a following linear layer, or a
//! depthwise 1×1 convolution by `normalize_linear`).

use veil_ir::{Op, ValueId};

use super::{arg, konst};
use crate::onnx::consts::CTensor;
use crate::onnx::import::{Ctx, Importer, Sym};

/// `ε` from the node, finite and non-negative.
fn epsilon(ctx: &Ctx) -> Result<f32, String> {
    let eps = ctx.attrs.float_or("epsilon", 1e-5)?;
    if !eps.is_finite() || eps < 0.0 {
        return Err(format!("epsilon must be finite and ≥ 0, got {eps}"));
    }
    Ok(eps)
}

/// The operand `[N, C, D1, ...]` and its shape.
fn operand(imp: &mut Importer, inputs: &[Option<Sym>]) -> Result<(ValueId, Vec<usize>), String> {
    let x = imp.value(arg(inputs, 0)?)?;
    let shape = imp.ty(x).shape.clone();
    if shape.len() < 3 {
        return Err(format!(
            "input of shape {shape:?}: the statistics are over the axes after [N, C], and there are none"
        ));
    }
    Ok((x, shape))
}

/// `n · scale + bias` per channel (axis 1) of the `shape`-shaped `n`, with `scale` and `bias`
/// given per channel.
fn channel_affine(
    imp: &mut Importer,
    ctx: &Ctx,
    n: ValueId,
    shape: &[usize],
    scale: Vec<f32>,
    bias: Vec<f32>,
) -> Result<Vec<Sym>, String> {
    let per_channel: Vec<usize> = std::iter::once(shape[1]).chain(std::iter::repeat_n(1, shape.len() - 2)).collect();
    let (name, out) = (ctx.name.as_str(), ctx.out(0));
    let s = imp.weight(&format!("{name}.scale"), per_channel.clone(), scale);
    let b = imp.weight(&format!("{name}.bias"), per_channel, bias);
    Ok(vec![Sym::Value(imp.add(name, out, Op::Affine { scale: Some(s), shift: Some(b) }, &[n])?)])
}

/// A constant operand of exactly `len` elements, as floats.
fn vector(inputs: &[Option<Sym>], i: usize, what: &str, len: usize, why: &str) -> Result<Vec<f32>, String> {
    let t: &CTensor = konst(inputs, i, what)?;
    if t.len() != len || t.shape.len() != 1 {
        return Err(format!("{what} of shape {:?}: expected [{len}] ({why})", t.shape));
    }
    Ok(t.floats())
}

/// Lowers InstanceNormalization: statistics per sample and channel over the spatial axes.
pub fn instance_norm(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let eps = epsilon(ctx)?;
    let (x, shape) = operand(imp, inputs)?;
    let c = shape[1];
    let scale = vector(inputs, 1, "scale", c, "one per channel")?;
    let bias = vector(inputs, 2, "B", c, "one per channel")?;
    let n = super::norm::normalise(imp, &ctx.name, ctx.out(0), x, 2, eps)?;
    channel_affine(imp, ctx, n, &shape, scale, bias)
}

/// Lowers GroupNormalization: statistics per sample and group of `C/G` channels over those
/// channels and the spatial axes. Opset 21 gives the scale and bias per channel; opset 18 per
/// group (each group's value then applies to its channels).
pub fn group_norm(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let eps = epsilon(ctx)?;
    let stash = ctx.attrs.int_or("stash_type", 1)?;
    if stash != 1 {
        return Err(format!("stash_type = {stash} is not supported (only 1: statistics in float)"));
    }
    let groups = ctx.attrs.int("num_groups")?.ok_or("the num_groups attribute is required")?;
    let (x, shape) = operand(imp, inputs)?;
    let c = shape[1];
    if groups < 1 || c % groups as usize != 0 {
        return Err(format!("num_groups = {groups} does not divide the {c} channels"));
    }
    let g = groups as usize;
    let (scale, bias) = if ctx.opset >= 21 {
        (vector(inputs, 1, "scale", c, "one per channel")?, vector(inputs, 2, "bias", c, "one per channel")?)
    } else {
        let why = "one per group before opset 21";
        let (s, b) = (vector(inputs, 1, "scale", g, why)?, vector(inputs, 2, "bias", g, why)?);
        let expand = |v: Vec<f32>| v.iter().flat_map(|&x| std::iter::repeat_n(x, c / g)).collect::<Vec<f32>>();
        (expand(s), expand(b))
    };
    let (name, out) = (ctx.name.as_str(), ctx.out(0));
    let row: usize = shape[1..].iter().product::<usize>() / g;
    let grouped = imp.add(name, &format!("{out}/groups"), Op::Reshape { shape: vec![shape[0], g, row] }, &[x])?;
    let n = super::norm::normalise(imp, name, out, grouped, 2, eps)?;
    let n = imp.add(name, &format!("{out}/channels"), Op::Reshape { shape: shape.clone() }, &[n])?;
    channel_affine(imp, ctx, n, &shape, scale, bias)
}
