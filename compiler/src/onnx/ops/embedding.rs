//! `Gather(table, ids)` with a constant table (the server's embedding) and indices computed
//! from the client's input (its token ids): the client turns its ids into one-hot rows on its
//! own plaintext (`one_hot`), and the lookup is the dense layer `one_hot(ids) · table`, a linear
//! layer like any other (HE offline, local online). The server learns nothing of the ids, the
//! client nothing of the table but the rows' sum with the server's mask. Indices must be
//! integer-typed and known to the client alone (computed from its input with public operands);
//! the gathered axis must be the first (an embedding's rows).

use veil_ir::Op;

use crate::onnx::consts::CTensor;
use crate::onnx::import::{Ctx, Importer, Sym};

/// The lowering of an embedding lookup; see the module doc.
pub fn lookup(imp: &mut Importer, ctx: &Ctx, table: &CTensor, ids: &Sym) -> Result<Vec<Sym>, String> {
    let axis = ctx.attrs.int_or("axis", 0)?;
    let rank = table.shape.len() as i64;
    if rank == 0 {
        return Err("data must have rank at least 1".into());
    }
    if axis != 0 && axis != -rank {
        return Err(format!(
            "a Gather of a constant by computed indices is supported along axis 0 (an embedding's rows), not axis {axis}"
        ));
    }
    let ids = super::client_mask::client_int(imp, ctx, ids, 1)?;
    let depth = table.shape[0];
    let row: usize = table.shape[1..].iter().product();
    if depth == 0 || row == 0 {
        return Err("the table has an empty dimension (empty tensors are not supported)".into());
    }
    let data = table.floats();
    // Dense weight [row, depth]: the table transposed.
    let weight: Vec<f32> =
        (0..row).flat_map(|j| (0..depth).map(move |i| (i, j))).map(|(i, j)| data[i * row + j]).collect();
    let out = ctx.out(0);
    let hot = imp.add(&ctx.name, &format!("{out}/one_hot"), Op::OneHot { depth }, &[ids])?;
    let w = imp.weight(&format!("{out}.table"), vec![row, depth], weight);
    let ids_shape = imp.ty(ids).shape.clone();
    let rows = if table.shape.len() == 2 { out.to_string() } else { format!("{out}/rows") };
    let mut y = imp.add(&ctx.name, &rows, Op::Dense { weight: w, bias: None }, &[hot])?;
    if table.shape.len() != 2 {
        let shape = [&ids_shape[..], &table.shape[1..]].concat();
        y = imp.add(&ctx.name, out, Op::Reshape { shape }, &[y])?;
    }
    Ok(vec![Sym::Value(y)])
}
