//! MatMul of two computed values (attention's `Q·Kᵀ`, bilinear layers), lowered to one
//! [`Op::MatMul`] (a matrix Beaver triple per batch element, docs/decisions.md): the batch axes
//! broadcast first (a local `select` of the operand that needs it). Numpy semantics: rank-1
//! operands get a dimension prepended (`A`) or appended (`B`) that the result drops.

use veil_ir::{Op, ValueId};

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
    let a3: Vec<usize> = batch.iter().copied().chain([m, k]).collect();
    let b3: Vec<usize> = batch.iter().copied().chain([k, n]).collect();
    let count = batch.iter().product::<usize>() * (m * k + k * n + m * n);
    if count > u32::MAX as usize {
        return Err(format!(
            "MatMul of shapes {sa:?} and {sb:?}: the {count} operand and output elements are too many"
        ));
    }
    let xa = spread(imp, ctx, a, ma.clone(), &a3, out, "a")?;
    let xb = spread(imp, ctx, b, mb.clone(), &b3, out, "b")?;
    let full: Vec<usize> = batch.iter().copied().chain([m, n]).collect();
    let mut shape = batch;
    if sa.len() > 1 {
        shape.push(m);
    }
    if sb.len() > 1 {
        shape.push(n);
    }
    if shape == full {
        return imp.add(&ctx.name, out, Op::MatMul, &[xa, xb]);
    }
    let p = imp.add(&ctx.name, &format!("{out}/product"), Op::MatMul, &[xa, xb])?;
    imp.add(&ctx.name, out, Op::Reshape { shape }, &[p])
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
