//! Data movement with static shapes: `Tile`, `Expand`, `DepthToSpace` (PixelShuffle) and
//! `SpaceToDepth`. Each is defined once here on constant tensors; a computed operand becomes a
//! static [`veil_ir::Op::Select`] by running the same definition on its flat indices
//! (`array::select`), so no share moves between the parties.

use super::super::consts::{self, CTensor};
use super::super::import::Ctx;
use super::{arg, konst};
use crate::onnx::import::Sym;

/// Ops this module defines.
pub const OPS: &[&str] = &["Tile", "Expand", "DepthToSpace", "SpaceToDepth"];

/// Evaluates `ctx.node` (one of [`OPS`]) on its constant operands.
pub fn fold(ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<CTensor, String> {
    let Sym::Const(x) = arg(inputs, 0)? else { return Err("operand 0 is not a constant".into()) };
    match ctx.node.op_type() {
        "Tile" => tile(x, &konst(inputs, 1, "repeats")?.ints()?),
        "Expand" => expand(x, &konst(inputs, 1, "shape")?.ints()?),
        "DepthToSpace" => depth_to_space(ctx, x),
        "SpaceToDepth" => space_to_depth(ctx, x),
        other => Err(format!("{other} is not a data-movement op")),
    }
}

fn gathered(x: &CTensor, shape: Vec<usize>, idx: impl Iterator<Item = usize>) -> CTensor {
    CTensor { shape, data: x.data.pick(idx) }
}

/// `Tile(x, repeats)`: output axis `i` is `repeats[i]` copies of input axis `i`.
fn tile(x: &CTensor, repeats: &[i64]) -> Result<CTensor, String> {
    if repeats.len() != x.shape.len() {
        return Err(format!("repeats has {} entries for an operand of rank {}", repeats.len(), x.shape.len()));
    }
    if let Some(r) = repeats.iter().find(|&&r| r < 1) {
        return Err(format!("repeats holds {r}; each must be at least 1 (empty tensors are not supported)"));
    }
    let out: Vec<usize> = x.shape.iter().zip(repeats).map(|(&d, &r)| d * r as usize).collect();
    let n: usize = out.iter().product();
    let idx = (0..n).map(|mut k| {
        let (mut src, mut stride) = (0, 1);
        for a in (0..out.len()).rev() {
            let i = k % out[a];
            k /= out[a];
            src += (i % x.shape[a]) * stride;
            stride *= x.shape[a];
        }
        src
    });
    Ok(gathered(x, out.clone(), idx))
}

/// `Expand(x, shape)`: `x` broadcast with `shape` by numpy's rules (both ways).
fn expand(x: &CTensor, shape: &[i64]) -> Result<CTensor, String> {
    if let Some(d) = shape.iter().find(|&&d| d < 0) {
        return Err(format!("shape holds {d}; dimensions must not be negative"));
    }
    let target: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let out = consts::broadcast_shape(&x.shape, &target)?;
    if out.contains(&0) {
        return Err("the expanded shape has an empty dimension (empty tensors are not supported)".into());
    }
    Ok(gathered(x, out.clone(), consts::broadcast_indices(&x.shape, &out).into_iter()))
}

/// `blocksize` and `mode` (`DCR` default, or `CRD`) of DepthToSpace and SpaceToDepth, with the
/// operand's `[N, C, H, W]`.
fn block_args(ctx: &Ctx, x: &CTensor) -> Result<(usize, bool, [usize; 4]), String> {
    let b = ctx.attrs.int("blocksize")?.ok_or("attribute blocksize is required")?;
    let b = usize::try_from(b).ok().filter(|&b| b > 0).ok_or(format!("blocksize = {b} must be positive"))?;
    let crd = match ctx.attrs.string("mode")?.as_deref() {
        None | Some("DCR") => false,
        Some("CRD") => true,
        Some(m) => return Err(format!("mode = {m:?} is not one of \"DCR\" and \"CRD\"")),
    };
    let [n, c, h, w] = x.shape[..] else {
        return Err(format!("the operand must be [N, C, H, W], got shape {:?}", x.shape));
    };
    Ok((b, crd, [n, c, h, w]))
}

/// `DepthToSpace`: channel blocks of `b²` become `b × b` pixel blocks (torch's PixelShuffle is
/// the `CRD` mode).
fn depth_to_space(ctx: &Ctx, x: &CTensor) -> Result<CTensor, String> {
    let (b, crd, [n, c, h, w]) = block_args(ctx, x)?;
    if c % (b * b) != 0 {
        return Err(format!("{c} channels are not a multiple of blocksize² = {}", b * b));
    }
    let (tmp, perm) = if crd {
        (vec![n, c / (b * b), b, b, h, w], [0, 1, 4, 2, 5, 3])
    } else {
        (vec![n, b, b, c / (b * b), h, w], [0, 3, 4, 1, 5, 2])
    };
    consts::transpose(&x.reshaped(tmp)?, &perm).reshaped(vec![n, c / (b * b), h * b, w * b])
}

/// `SpaceToDepth`: the inverse movement, `b × b` pixel blocks into channels.
fn space_to_depth(ctx: &Ctx, x: &CTensor) -> Result<CTensor, String> {
    let (b, crd, [n, c, h, w]) = block_args(ctx, x)?;
    if h % b != 0 || w % b != 0 {
        return Err(format!("spatial size {h}×{w} is not a multiple of blocksize = {b}"));
    }
    let perm = if crd { [0, 1, 3, 5, 2, 4] } else { [0, 3, 5, 1, 2, 4] };
    let tmp = x.reshaped(vec![n, c, h / b, b, w / b, b])?;
    consts::transpose(&tmp, &perm).reshaped(vec![n, c * b * b, h / b, w / b])
}
