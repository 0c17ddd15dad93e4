//! Data movement with static shapes: `Tile`, `Expand`, `DepthToSpace` (PixelShuffle),
//! `SpaceToDepth`, and `GatherND` and `GatherElements` with constant indices (torch's dynamo
//! exporter writes 1-D interpolation as GatherND). Each is defined once here on constant tensors; a computed operand becomes a
//! static [`veil_ir::Op::Select`] by running the same definition on its flat indices
//! (`array::select`), so no share moves between the parties.

use super::super::consts::{self, CTensor};
use super::super::import::Ctx;
use super::{arg, konst};
use crate::onnx::import::Sym;

/// Ops this module defines.
pub const OPS: &[&str] = &["Tile", "Expand", "DepthToSpace", "SpaceToDepth", "GatherND", "GatherElements"];

/// Evaluates `ctx.node` (one of [`OPS`]) on its constant operands.
pub fn fold(ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<CTensor, String> {
    let Sym::Const(x) = arg(inputs, 0)? else { return Err("operand 0 is not a constant".into()) };
    match ctx.node.op_type() {
        "Tile" => tile(x, &konst(inputs, 1, "repeats")?.ints()?),
        "Expand" => expand(x, &konst(inputs, 1, "shape")?.ints()?),
        "DepthToSpace" => depth_to_space(ctx, x),
        "SpaceToDepth" => space_to_depth(ctx, x),
        "GatherND" => {
            let b =
                usize::try_from(ctx.attrs.int_or("batch_dims", 0)?).map_err(|_| "batch_dims must not be negative")?;
            gather_nd(x, konst(inputs, 1, "indices")?, b)
        }
        "GatherElements" => {
            let i = konst(inputs, 1, "indices")?;
            gather_elements(x, i, super::axis(ctx.attrs.int_or("axis", 0)?, x.shape.len())?)
        }
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
    let out: Vec<usize> = x
        .shape
        .iter()
        .zip(repeats)
        .map(|(&d, &r)| d.saturating_mul(usize::try_from(r).unwrap_or(usize::MAX)))
        .collect();
    let n = super::moved_elements(&out, "the tiled result")?;
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
    super::moved_elements(&out, "the expanded result")?;
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

/// An index into an axis of `n` elements (negative counts from the end), checked.
fn index(i: i64, n: usize) -> Result<usize, String> {
    let j = if i < 0 { i + n as i64 } else { i };
    usize::try_from(j).ok().filter(|&j| j < n).ok_or(format!("index {i} is out of range for an axis of {n}"))
}

/// `GatherND(data, indices)` with `b` batch axes: each index tuple (the last axis of `indices`)
/// picks a slice of `data` within its batch.
fn gather_nd(x: &CTensor, idx: &CTensor, b: usize) -> Result<CTensor, String> {
    let (r, q) = (x.shape.len(), idx.shape.len());
    let m = *idx.shape.last().ok_or("indices must have rank 1 or more")?;
    if b >= q || b + m > r || idx.shape[..b] != x.shape[..b] {
        return Err(format!(
            "indices of shape {:?} with batch_dims = {b} do not fit data of shape {:?}",
            idx.shape, x.shape
        ));
    }
    let mut shape = idx.shape[..q - 1].to_vec();
    shape.extend_from_slice(&x.shape[b + m..]);
    super::moved_elements(&shape, "the gathered result")?;
    let ids = idx.ints()?;
    let batches: usize = x.shape[..b].iter().product();
    let tuples = ids.len() / m.max(1) / batches.max(1);
    let slice: usize = x.shape[b + m..].iter().product();
    let per_batch: usize = x.shape[b..].iter().product();
    let strides = veil_ir::strides(&x.shape[b..]);
    let mut out = Vec::with_capacity(batches * tuples * slice);
    for bi in 0..batches {
        for t in 0..tuples {
            let tuple = &ids[(bi * tuples + t) * m..][..m];
            let mut base = bi * per_batch;
            for (a, &i) in tuple.iter().enumerate() {
                base += index(i, x.shape[b + a])? * strides[a];
            }
            out.extend(base..base + slice);
        }
    }
    Ok(gathered(x, shape, out.into_iter()))
}

/// `GatherElements(data, indices, axis)`: element `i` of the output is `data` at `i` with its
/// `axis` coordinate replaced by `indices[i]`.
fn gather_elements(x: &CTensor, idx: &CTensor, axis: usize) -> Result<CTensor, String> {
    if idx.shape.len() != x.shape.len() {
        return Err(format!("indices of rank {} for data of rank {}", idx.shape.len(), x.shape.len()));
    }
    let ids = idx.ints()?;
    let (xs, is) = (veil_ir::strides(&x.shape), veil_ir::strides(&idx.shape));
    let mut out = Vec::with_capacity(ids.len());
    for (k, &i) in ids.iter().enumerate() {
        let mut src = 0;
        for a in 0..idx.shape.len() {
            let c = if a == axis { index(i, x.shape[a])? } else { (k / is[a]) % idx.shape[a] };
            if c >= x.shape[a] {
                return Err(format!("indices of shape {:?} exceed data of shape {:?}", idx.shape, x.shape));
            }
            src += c * xs[a];
        }
        out.push(src);
    }
    Ok(gathered(x, idx.shape.clone(), out.into_iter()))
}
