//! Softmax inside the network (attention's weights), on shares. At the end of a model Softmax
//! runs on the client after the reveal (`post`); a Softmax the model computes on is
//! `e^(x − m) / Σ e^(x − m)` with `m` the row's maximum, lowered to protocols Veil has:
//! - `m`: a `maxpool` over the row (the garbled comparison tree of MaxPool and ReduceMax);
//! - `x − m`, broadcast back by a static `select`, and the product by `log₂e`: local;
//! - `2^((x − m)·log₂e)`: the garbled `exp2` (chords, within 2.4·10⁻⁴; its operand is never
//!   positive, so every exponential is in `(0, 1]` and the row's largest is exactly 1);
//! - the sum: a `sumpool` (local), at least 1, and its `reciprocal` (a garbled long division);
//! - the product of each exponential with its row's reciprocal: one Beaver product each.
//!
//! The row is viewed as `[1, outer, n, inner]` (the axis in the middle, so no transpose), and
//! with `coerce_2d` (opset < 13) the axes from `axis` on are one row of `n` elements.
//! LogSoftmax inside the network would need a logarithm circuit and is refused by name.
//!
//! An attention mask added to the scores (a causal or padding mask: `−∞`, float32's lowest or
//! `−10⁴` where a position is hidden) holds values no ring can encode; entries below
//! [`MASKED`] count as `MASKED`, whose exponential is 0 in float and fixed point alike (as
//! long as the scores themselves stay above `MASKED + 100`), so the Softmax is the model's.
//! A padding mask computed from the client's input is a `Where` on its plaintext (`client_mask`),
//! whose branches are clamped the same way.

use veil_ir::{Op, ValueId, Window2d};

use crate::onnx::import::{Ctx, Importer};

/// The value a masked score counts as (see the module doc).
pub const MASKED: f32 = -4096.0;

/// `softmax(x)` over `axis` on shares, named `out`.
pub fn softmax(
    imp: &mut Importer,
    ctx: &Ctx,
    x: ValueId,
    axis: usize,
    coerce_2d: bool,
    out: &str,
) -> Result<ValueId, String> {
    let x = unmasked(imp, ctx, x, out)?;
    let shape = imp.ty(x).shape.clone();
    let outer: usize = shape[..axis].iter().product();
    let (n, inner) =
        if coerce_2d { (shape[axis..].iter().product(), 1) } else { (shape[axis], shape[axis + 1..].iter().product()) };
    let grid = vec![1, outer, n, inner];
    let name = &ctx.name;
    let x = if shape == grid {
        x
    } else {
        imp.add(name, &format!("{out}/rows"), Op::Reshape { shape: grid.clone() }, &[x])?
    };
    let window = Window2d { kernel: [n, 1], strides: [1, 1], pads: [0; 4], dilations: [1, 1] };
    let m = imp.add(name, &format!("{out}/max"), Op::MaxPool { window }, &[x])?;
    let m = super::math::broadcast_to(imp, ctx, m, &grid, &format!("{out}/max_spread"))?;
    let d = imp.add(name, &format!("{out}/centred"), Op::Sub, &[x, m])?;
    let log2e = imp.public(&format!("{out}.log2e"), vec![], vec![std::f32::consts::LOG2_E]);
    let t = imp.add(name, &format!("{out}/exponent"), Op::Affine { scale: Some(log2e), shift: None }, &[d])?;
    let e = imp.add(name, &format!("{out}/exp"), Op::Exp2, &[t])?;
    let sum = imp.add(name, &format!("{out}/sum"), Op::SumPool { window }, &[e])?;
    let r = imp.add(name, &format!("{out}/reciprocal"), Op::Reciprocal, &[sum])?;
    if shape == grid {
        return imp.add(name, out, Op::Mul, &[e, r]);
    }
    let p = imp.add(name, &format!("{out}/normalised"), Op::Mul, &[e, r])?;
    imp.add(name, out, Op::Reshape { shape }, &[p])
}

/// `x`, or when `x` is the scores plus a constant mask with entries below [`MASKED`], the same
/// sum with those entries at `MASKED` (a new constant and node: the original, if anything else
/// reads it, keeps the model's values).
fn unmasked(imp: &mut Importer, ctx: &Ctx, x: ValueId, out: &str) -> Result<ValueId, String> {
    let Some(node) = imp.g.producer(x) else { return Ok(x) };
    let (Op::Affine { scale: None, shift: Some(c) }, [scores]) = (&node.op, node.inputs.as_slice()) else {
        return Ok(x);
    };
    let (c, scores) = (*c, *scores);
    let k = &imp.g.consts[c];
    if !k.data.iter().any(|&v| v < MASKED) {
        return Ok(x);
    }
    let data = k.data.iter().map(|&v| if v < MASKED { MASKED } else { v }).collect();
    let (shape, domain) = (k.shape.clone(), k.domain);
    let mask = imp.g.add_const(format!("{out}.mask"), shape, domain, data);
    imp.add(&ctx.name, &format!("{out}/masked"), Op::Affine { scale: None, shift: Some(mask) }, &[scores])
}
