//! MatMul with a batched constant operand (rank ≥ 3): numpy's broadcasting `matmul`, lowered to
//! one `dense` per distinct weight matrix.
//!
//! For `x · W` with `x` `[..xb, M, K]` and `W` `[..wb, K, N]`, the batch shape is
//! `broadcast(xb, wb)`. Each weight matrix `W[j]` multiplies the rows of `x` whose batch index it
//! is broadcast to: a `select` gathers them, a `dense` multiplies, and a `concat` and a `select`
//! put the results back in batch order. Each `dense` is an ordinary linear layer (HE offline,
//! local online); no weight is duplicated or padded into a block diagonal. A constant left
//! operand `A · x` is computed as `(xᵀ · Aᵀ)ᵀ` with the two last axes swapped.

use veil_ir::{Op, ValueId};

use crate::onnx::consts::{self, CTensor};
use crate::onnx::import::{Ctx, Importer};

/// Most weight matrices one MatMul may hold (one `dense` node each).
const MAX_MATRICES: usize = 4096;

/// `t` with its two last axes swapped.
fn swap_last(t: &CTensor) -> CTensor {
    let r = t.shape.len();
    let mut perm: Vec<usize> = (0..r).collect();
    perm.swap(r - 2, r - 1);
    consts::transpose(t, &perm)
}

/// A value with its two last axes swapped.
fn swap_last_value(imp: &mut Importer, ctx: &Ctx, v: ValueId, out: &str) -> Result<ValueId, String> {
    let r = imp.ty(v).rank();
    let mut perm: Vec<usize> = (0..r).collect();
    perm.swap(r - 2, r - 1);
    imp.add(&ctx.name, out, Op::Transpose { perm }, &[v])
}

/// `x · w` for a computed `x` (rank ≥ 1) and a constant `w` (rank ≥ 2), named `out`.
pub fn right(imp: &mut Importer, ctx: &Ctx, x: ValueId, w: &CTensor, out: &str) -> Result<ValueId, String> {
    let xshape = imp.ty(x).shape.clone();
    let vector = xshape.len() == 1;
    let (xb, [m, k]) = match xshape[..] {
        [k] => (vec![], [1, k]),
        ref s => (s[..s.len() - 2].to_vec(), [s[s.len() - 2], s[s.len() - 1]]),
    };
    let wr = w.shape.len();
    let (wb, [wk, n]) = (w.shape[..wr - 2].to_vec(), [w.shape[wr - 2], w.shape[wr - 1]]);
    if wk != k {
        return Err(format!("operands {xshape:?} and {:?} do not multiply ({k} ≠ {wk})", w.shape));
    }
    let bs = consts::broadcast_shape(&xb, &wb)?;
    let (nb, nw): (usize, usize) = (bs.iter().product(), wb.iter().product());
    if nw > MAX_MATRICES {
        return Err(format!("{nw} weight matrices exceed the supported {MAX_MATRICES}"));
    }
    let mut out_shape = bs.clone();
    if !vector {
        out_shape.push(m);
    }
    out_shape.push(n);
    let (bx, bw) = (consts::broadcast_indices(&xb, &bs), consts::broadcast_indices(&wb, &bs));
    let nx: usize = xb.iter().product();
    let rows = imp.add(&ctx.name, &format!("{out}/rows"), Op::Reshape { shape: vec![nx, m, k] }, &[x])?;
    let wf = w.floats();
    let (mut parts, mut order) = (Vec::new(), Vec::new());
    for j in 0..nw {
        let batch: Vec<usize> = (0..nb).filter(|&b| bw[b] == j).collect();
        let src: Vec<usize> = batch.iter().map(|&b| bx[b]).collect();
        let xs = if src.iter().copied().eq(0..nx) {
            rows
        } else {
            let per = m * k;
            let indices = src.iter().flat_map(|&r| (r * per..(r + 1) * per).map(|i| i as u32)).collect();
            let shape = vec![src.len(), m, k];
            imp.add(&ctx.name, &format!("{out}/rows{j}"), Op::Select { indices, shape }, &[rows])?
        };
        // W[j] is [K, N]; dense takes [N, K].
        let wj = CTensor::f32(vec![k, n], wf[j * k * n..(j + 1) * k * n].to_vec());
        let wt = consts::transpose(&wj, &[1, 0]);
        let c = imp.weight(&format!("{}.weight{j}", ctx.name), wt.shape.clone(), wt.floats());
        parts.push(imp.add(&ctx.name, &format!("{out}/part{j}"), Op::Dense { weight: c, bias: None }, &[xs])?);
        order.extend(batch);
    }
    let mut y = match parts[..] {
        [p] => p,
        _ => imp.add(&ctx.name, &format!("{out}/parts"), Op::Concat { axis: 0 }, &parts)?,
    };
    if !order.iter().copied().eq(0..nb) {
        // Row r of the concatenation is batch order[r]; put batch b at row b.
        let mut at = vec![0; nb];
        for (r, &b) in order.iter().enumerate() {
            at[b] = r;
        }
        let per = m * n;
        let indices = at.iter().flat_map(|&r| (r * per..(r + 1) * per).map(|i| i as u32)).collect();
        y = imp.add(&ctx.name, &format!("{out}/ordered"), Op::Select { indices, shape: vec![nb, m, n] }, &[y])?;
    }
    imp.add(&ctx.name, out, Op::Reshape { shape: out_shape }, &[y])
}

/// `a · x` for a constant `a` (rank ≥ 2, batched or not) and a computed `x` (rank ≥ 1), named
/// `out`: `(xᵀ · aᵀ)ᵀ`.
pub fn left(imp: &mut Importer, ctx: &Ctx, a: &CTensor, x: ValueId, out: &str) -> Result<ValueId, String> {
    let xshape = imp.ty(x).shape.clone();
    // A vector right operand is a [K, 1] matrix whose last axis is dropped afterwards.
    let x2 = if xshape.len() == 1 {
        imp.add(&ctx.name, &format!("{out}/column"), Op::Reshape { shape: vec![xshape[0], 1] }, &[x])?
    } else {
        x
    };
    let xt = swap_last_value(imp, ctx, x2, &format!("{out}/x_t"))?;
    let yt = right(imp, ctx, xt, &swap_last(a), &format!("{out}/y_t"))?;
    if xshape.len() == 1 {
        let mut shape = imp.ty(yt).shape.clone();
        shape.remove(shape.len() - 2);
        return imp.add(&ctx.name, out, Op::Reshape { shape }, &[yt]);
    }
    swap_last_value(imp, ctx, yt, out)
}
