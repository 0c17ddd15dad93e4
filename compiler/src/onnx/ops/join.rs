//! Concat and Split: data movement along one axis, local on shares.
//!
//! A constant concatenated to a computed value (a class token, a zero channel) becomes a
//! `select` that leaves a zero where each constant element goes, then an `affine` shift that
//! puts the constant there. Split becomes one `select` per output (or folds, on a constant).

use veil_ir::{Op, ValueId};

use super::{arg, axis, opt_const};
use crate::onnx::consts::CTensor;
use crate::onnx::import::{Ctx, Importer, Sym};

/// The elements of a `shape`-shaped tensor whose coordinate on `axis` lies in `range`, row-major
/// (a slice along one axis, as flat indices).
fn slab(shape: &[usize], axis: usize, range: std::ops::Range<usize>) -> Vec<usize> {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut idx = Vec::with_capacity(outer * range.len() * inner);
    for o in 0..outer {
        for a in range.clone() {
            idx.extend((0..inner).map(|i| (o * shape[axis] + a) * inner + i));
        }
    }
    idx
}

pub fn concat(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let parts: Vec<&Sym> = inputs.iter().flatten().collect();
    let mut shapes = Vec::with_capacity(parts.len());
    let mut values: Vec<Option<ValueId>> = Vec::with_capacity(parts.len());
    for s in &parts {
        match s {
            Sym::Const(t) => {
                shapes.push(t.shape.clone());
                values.push(None);
            }
            s => {
                let v = imp.value(s)?;
                shapes.push(imp.ty(v).shape.clone());
                values.push(Some(v));
            }
        }
    }
    let first = shapes.first().ok_or("needs at least one input")?;
    let rank = first.len();
    let a = axis(ctx.attrs.int("axis")?.ok_or("attribute axis is required")?, rank)?;
    let mut out_shape = first.clone();
    out_shape[a] = 0;
    for s in &shapes {
        if s.len() != rank || (0..rank).any(|i| i != a && s[i] != first[i]) {
            return Err(format!("operand shapes {shapes:?} do not concatenate on axis {a}"));
        }
        out_shape[a] += s[a];
    }
    let computed: Vec<ValueId> = values.iter().flatten().copied().collect();
    if computed.len() == values.len() {
        if let [v] = computed[..] {
            return Ok(vec![Sym::Value(v)]);
        }
        return Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), Op::Concat { axis: a }, &computed)?)]);
    }
    // The computed operands, concatenated and flattened, with one zero appended: constant
    // positions select that zero, and the shift adds the constant there.
    let out = ctx.out(0);
    let joined = match computed[..] {
        [v] => v,
        _ => imp.add(&ctx.name, &format!("{out}/computed"), Op::Concat { axis: a }, &computed)?,
    };
    let jshape = imp.ty(joined).shape.clone();
    let n: usize = jshape.iter().product();
    if n >= u32::MAX as usize {
        return Err(format!("operand of {n} elements is too large"));
    }
    let flat = imp.add(&ctx.name, &format!("{out}/flat"), Op::Reshape { shape: vec![n] }, &[joined])?;
    let padded = imp.add(&ctx.name, &format!("{out}/zero"), Op::Pad { pads: vec![0, 1], value: 0.0 }, &[flat])?;
    let total: usize = out_shape.iter().product();
    let mut indices = vec![n as u32; total];
    let mut shift = vec![0f32; total];
    let (mut at, mut at_computed) = (0, 0);
    for (s, (sym, v)) in shapes.iter().zip(parts.iter().zip(&values)) {
        let dst = slab(&out_shape, a, at..at + s[a]);
        match (sym, v) {
            (_, Some(_)) => {
                for (d, src) in dst.iter().zip(slab(&jshape, a, at_computed..at_computed + s[a])) {
                    indices[*d] = src as u32;
                }
                at_computed += s[a];
            }
            (Sym::Const(t), None) => {
                for (d, x) in dst.iter().zip(t.floats()) {
                    shift[*d] = x;
                }
            }
            _ => unreachable!("constant operands have no value"),
        }
        at += s[a];
    }
    let placed =
        imp.add(&ctx.name, &format!("{out}/placed"), Op::Select { indices, shape: out_shape.clone() }, &[padded])?;
    if shift.iter().all(|&x| x == 0.0) {
        return Ok(vec![Sym::Value(placed)]);
    }
    let k = imp.weight(&format!("{}.constant", ctx.name), out_shape, shift);
    Ok(vec![Sym::Value(imp.add(&ctx.name, out, Op::Affine { scale: None, shift: Some(k) }, &[placed])?)])
}

/// Split's part sizes along an axis of size `dim`, for `outputs` outputs: the `split` attribute
/// (opset < 13) or input, else `num_outputs` (opset 18) or the output count, in equal parts with
/// a smaller last one when they do not divide (as the ONNX reference does).
fn part_sizes(ctx: &Ctx, inputs: &[Option<Sym>], dim: usize, outputs: usize) -> Result<Vec<usize>, String> {
    let given = if ctx.opset < 13 {
        ctx.attrs.ints("split")?
    } else {
        opt_const(inputs, 1, "split")?.map(CTensor::ints).transpose()?
    };
    if let Some(sizes) = given.filter(|s| !s.is_empty()) {
        let sizes = sizes
            .iter()
            .map(|&s| usize::try_from(s).map_err(|_| format!("split {sizes:?} has a negative size")))
            .collect::<Result<Vec<_>, _>>()?;
        if sizes.len() != outputs || sizes.iter().sum::<usize>() != dim {
            return Err(format!("split {sizes:?} does not cut an axis of {dim} into {outputs} output(s)"));
        }
        return Ok(sizes);
    }
    let n = match ctx.attrs.int("num_outputs")? {
        Some(k) if usize::try_from(k).ok() != Some(outputs) => {
            return Err(format!("num_outputs = {k} but the node has {outputs} output(s)"));
        }
        _ => outputs,
    };
    if n == 0 {
        return Err("needs at least one output".into());
    }
    let part = dim.div_ceil(n);
    let last = dim.checked_sub(part * (n - 1)).ok_or_else(|| format!("cannot split {dim} into {n} parts"))?;
    Ok([vec![part; n - 1], vec![last]].concat())
}

pub fn split(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let x = arg(inputs, 0)?;
    let shape = match x {
        Sym::Const(t) => t.shape.clone(),
        s => {
            let v = imp.value(s)?;
            imp.ty(v).shape.clone()
        }
    };
    let a = axis(ctx.attrs.int_or("axis", 0)?, shape.len())?;
    let sizes = part_sizes(ctx, inputs, shape[a], ctx.node.output.len())?;
    let mut outs = Vec::with_capacity(sizes.len());
    let mut at = 0;
    for (k, &size) in sizes.iter().enumerate() {
        let mut part_shape = shape.clone();
        part_shape[a] = size;
        let idx = slab(&shape, a, at..at + size);
        at += size;
        outs.push(match x {
            Sym::Const(t) => Sym::Const(CTensor { data: t.data.pick(idx.into_iter()), shape: part_shape }),
            s => {
                let v = imp.value(s)?;
                if part_shape == shape {
                    Sym::Value(v)
                } else {
                    let indices = idx.iter().map(|&i| i as u32).collect();
                    Sym::Value(imp.add(&ctx.name, ctx.out(k), Op::Select { indices, shape: part_shape }, &[v])?)
                }
            }
        });
    }
    Ok(outs)
}
