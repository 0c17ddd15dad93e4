//! `Pad` on a computed value, in its four modes.
//!
//! `constant` lowers to `Op::Pad` (the padding is a public constant; negative pads crop after it
//! with a `Select`). `edge`, `reflect` and `wrap` copy operand elements to fixed places, so they
//! lower to a `Select` with a static index map: local on shares, exact in every encoding. Each
//! output coordinate `o` along an axis of length `n` with `before` leading pads reads the operand
//! at `i = o − before`, folded back into `0..n`: clamped (`edge`), mirrored without repeating
//! the edge (`reflect`, period `2(n − 1)`, as numpy's `reflect` for pads of any length), or
//! modulo `n` (`wrap`).

use veil_ir::Op;

use super::{arg, axis, konst, opt_const};
use crate::onnx::import::{Ctx, Importer, Sym};

/// The ONNX Pad modes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Constant,
    Edge,
    Reflect,
    Wrap,
}

/// The operand coordinate read by offset `i` (`o − before`) along an axis of length `n`.
fn source(mode: Mode, i: i64, n: i64) -> i64 {
    match mode {
        Mode::Constant | Mode::Edge => i.clamp(0, n - 1),
        Mode::Wrap => i.rem_euclid(n),
        Mode::Reflect if n == 1 => 0,
        Mode::Reflect => {
            let m = i.rem_euclid(2 * (n - 1));
            if m >= n { 2 * (n - 1) - m } else { m }
        }
    }
}

/// The flat operand index of every output element of padding `shape` by `before`/`after`
/// (row-major), for the copying modes.
fn index_map(mode: Mode, shape: &[usize], before: &[i64], after: &[i64]) -> (Vec<usize>, Vec<u32>) {
    let out: Vec<usize> = (0..shape.len()).map(|a| (shape[a] as i64 + before[a] + after[a]) as usize).collect();
    let mut strides = vec![1usize; shape.len()];
    for a in (0..shape.len().saturating_sub(1)).rev() {
        strides[a] = strides[a + 1] * shape[a + 1];
    }
    // Per axis, the source offset of each output coordinate; the flat index is their sum.
    let per_axis: Vec<Vec<usize>> = (0..shape.len())
        .map(|a| {
            (0..out[a] as i64).map(|o| source(mode, o - before[a], shape[a] as i64) as usize * strides[a]).collect()
        })
        .collect();
    let total: usize = out.iter().product();
    let mut indices = Vec::with_capacity(total);
    let mut coord = vec![0usize; shape.len()];
    for _ in 0..total {
        indices.push(coord.iter().enumerate().map(|(a, &c)| per_axis[a][c]).sum::<usize>() as u32);
        for a in (0..shape.len()).rev() {
            coord[a] += 1;
            if coord[a] < out[a] {
                break;
            }
            coord[a] = 0;
        }
    }
    (out, indices)
}

pub fn pad(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let v = imp.value(arg(inputs, 0)?)?;
    let shape = imp.ty(v).shape.clone();
    let rank = shape.len();
    let mode = match ctx.attrs.string("mode")?.as_deref().unwrap_or("constant") {
        "constant" => Mode::Constant,
        "edge" => Mode::Edge,
        "reflect" => Mode::Reflect,
        "wrap" => Mode::Wrap,
        m => return Err(format!("mode {m:?} is not an ONNX Pad mode (constant, edge, reflect or wrap)")),
    };
    let (pads, value) = if ctx.opset < 11 {
        (ctx.attrs.ints("pads")?.ok_or("attribute pads is required")?, ctx.attrs.float_or("value", 0.0)?)
    } else {
        let value = match opt_const(inputs, 2, "constant_value")? {
            Some(t) => t.scalar().ok_or("constant_value must be a scalar")?,
            None => 0.0,
        };
        (konst(inputs, 1, "pads")?.ints()?, value)
    };
    let axes: Vec<usize> = match opt_const(inputs, 3, "axes")? {
        Some(t) => t.ints()?.iter().map(|&a| axis(a, rank)).collect::<Result<_, _>>()?,
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(format!("{} pads for {} axes", pads.len(), axes.len()));
    }
    let (mut before, mut after) = (vec![0i64; rank], vec![0i64; rank]);
    for (i, &a) in axes.iter().enumerate() {
        before[a] = pads[i];
        after[a] = pads[axes.len() + i];
    }
    for a in 0..rank {
        let n = shape[a] as i64;
        if n + before[a] + after[a] <= 0 || before[a] < -n || after[a] < -n {
            return Err(format!("pads {pads:?} crop axis {a} of length {n} to nothing"));
        }
        if mode != Mode::Constant && (before[a] < 0 || after[a] < 0) {
            return Err(format!("negative pads {pads:?} (cropping) are supported in mode \"constant\" only"));
        }
    }
    if before.iter().chain(&after).all(|&p| p == 0) {
        return Ok(vec![Sym::Value(v)]);
    }
    let out: usize = (0..rank).map(|a| (shape[a] as i64 + before[a] + after[a]) as usize).product();
    if out > u32::MAX as usize || shape.iter().product::<usize>() > u32::MAX as usize {
        return Err(format!("padded result of {out} elements is too large"));
    }
    if mode != Mode::Constant {
        let (out_shape, indices) = index_map(mode, &shape, &before, &after);
        return Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), Op::Select { indices, shape: out_shape }, &[v])?)]);
    }
    let grow: Vec<usize> = before.iter().chain(&after).map(|&p| p.max(0) as usize).collect();
    let crop = before.iter().chain(&after).any(|&p| p < 0);
    let padded = if grow.iter().any(|&p| p > 0) {
        let out = if crop { format!("{}/padded", ctx.out(0)) } else { ctx.out(0).to_string() };
        imp.add(&ctx.name, &out, Op::Pad { pads: grow.clone(), value }, &[v])?
    } else {
        v
    };
    if !crop {
        return Ok(vec![Sym::Value(padded)]);
    }
    // Crop the negative pads off the padded value: a plain slice, as an edge-mode index map
    // that never leaves the operand.
    let grown: Vec<usize> = (0..rank).map(|a| shape[a] + grow[a] + grow[rank + a]).collect();
    let cut = |p: i64| p.min(0);
    let (b, e): (Vec<i64>, Vec<i64>) =
        (before.iter().map(|&p| cut(p)).collect(), after.iter().map(|&p| cut(p)).collect());
    let (out_shape, indices) = index_map(Mode::Edge, &grown, &b, &e);
    Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), Op::Select { indices, shape: out_shape }, &[padded])?)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// numpy's `np.pad(np.arange(4), (5, 6), mode)`, written out.
    #[test]
    fn modes_fold_offsets_as_numpy_does() {
        let map = |m| index_map(m, &[4], &[5], &[6]).1;
        assert_eq!(map(Mode::Edge), [0, 0, 0, 0, 0, 0, 1, 2, 3, 3, 3, 3, 3, 3, 3]);
        assert_eq!(map(Mode::Reflect), [1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2, 3]);
        assert_eq!(map(Mode::Wrap), [3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1]);
        assert_eq!(index_map(Mode::Reflect, &[1], &[2], &[1]).1, [0, 0, 0, 0]);
    }

    #[test]
    fn maps_are_row_major_over_every_axis() {
        // A 2×3 operand, one leading row and one trailing column, edge mode.
        let (shape, idx) = index_map(Mode::Edge, &[2, 3], &[1, 0], &[0, 1]);
        assert_eq!(shape, [3, 4]);
        assert_eq!(idx, [0, 1, 2, 2, 0, 1, 2, 2, 3, 4, 5, 5]);
        // Cropping (negative offsets) reads the kept block.
        let (shape, idx) = index_map(Mode::Edge, &[2, 3], &[0, -1], &[-1, 0]);
        assert_eq!(shape, [1, 2]);
        assert_eq!(idx, [1, 2]);
    }
}
