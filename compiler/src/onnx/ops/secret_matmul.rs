//! MatMul of two computed values (attention's `Q·Kᵀ`, bilinear layers), lowered to existing
//! ops: `A` as `[.., m, k, 1]` and `B` as `[.., 1, k, n]`, both broadcast (local `select`) to
//! `[.., m, k, n]`, one elementwise Beaver `mul`, then a local sum over `k` (`sum_pool`).
//! Exact and exactly priced, but it costs `m·k·n` Beaver triples per matrix (see
//! docs/decisions.md on why not matrix triples yet). Numpy semantics: rank-1 operands get a
//! dimension prepended (`A`) or appended (`B`) that the result drops; batch axes broadcast.

use veil_ir::{Op, ValueId, Window2d};

use crate::onnx::consts;
use crate::onnx::import::{Ctx, Importer};

/// `a · b` by numpy `matmul` rules, both computed; the result is named `out`.
pub fn secret_matmul(imp: &mut Importer, ctx: &Ctx, a: ValueId, b: ValueId, out: &str) -> Result<ValueId, String> {
    let (sa, sb) = (imp.ty(a).shape.clone(), imp.ty(b).shape.clone());
    if sa.is_empty() || sb.is_empty() {
        return Err(format!("MatMul of shapes {sa:?} and {sb:?}: scalar operands are not allowed"));
    }
    let (mut ma, mut mb) = (sa.clone(), sb.clone());
    if ma.len() == 1 {
        ma.insert(0, 1);
    }
    if mb.len() == 1 {
        mb.push(1);
    }
    let (m, k) = (ma[ma.len() - 2], ma[ma.len() - 1]);
    let (k2, n) = (mb[mb.len() - 2], mb[mb.len() - 1]);
    if k != k2 {
        return Err(format!("MatMul of shapes {sa:?} and {sb:?}: inner dimensions {k} and {k2} differ"));
    }
    let (ba, bb) = (&ma[..ma.len() - 2], &mb[..mb.len() - 2]);
    let batch = consts::broadcast_shape(ba, bb)
        .map_err(|_| format!("MatMul of shapes {sa:?} and {sb:?}: batch dimensions do not broadcast"))?;
    let full: Vec<usize> = batch.iter().copied().chain([m, k, n]).collect();
    let count: usize = full.iter().product();
    if count > u32::MAX as usize {
        return Err(format!("MatMul of shapes {sa:?} and {sb:?}: the {count} products are too many"));
    }
    let a4: Vec<usize> = ba.iter().copied().chain([m, k, 1]).collect();
    let b4: Vec<usize> = bb.iter().copied().chain([1, k, n]).collect();
    let xa = spread(imp, ctx, a, a4, &full, out, "a")?;
    let xb = spread(imp, ctx, b, b4, &full, out, "b")?;
    let p = imp.add(&ctx.name, &format!("{out}/products"), Op::Mul, &[xa, xb])?;
    let outer: usize = batch.iter().product::<usize>() * m;
    let grid = if full == [1, outer, k, n] {
        p
    } else {
        imp.add(&ctx.name, &format!("{out}/grid"), Op::Reshape { shape: vec![1, outer, k, n] }, &[p])?
    };
    let window = Window2d { kernel: [k, 1], strides: [1, 1], pads: [0; 4], dilations: [1, 1] };
    let s = imp.add(&ctx.name, &format!("{out}/summed"), Op::SumPool { window }, &[grid])?;
    let mut shape = batch;
    if sa.len() > 1 {
        shape.push(m);
    }
    if sb.len() > 1 {
        shape.push(n);
    }
    imp.add(&ctx.name, out, Op::Reshape { shape }, &[s])
}

/// `v` reshaped to `shape` and broadcast to `full` (each step only if it changes something).
fn spread(
    imp: &mut Importer,
    ctx: &Ctx,
    v: ValueId,
    shape: Vec<usize>,
    full: &[usize],
    out: &str,
    which: &str,
) -> Result<ValueId, String> {
    let v = if imp.ty(v).shape == shape {
        v
    } else {
        imp.add(&ctx.name, &format!("{out}/{which}_shaped"), Op::Reshape { shape }, &[v])?
    };
    super::math::broadcast_to(imp, ctx, v, full, &format!("{out}/{which}_spread"))
}
