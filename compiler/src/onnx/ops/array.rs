//! Data movement: Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Identity-likes, Shape,
//! Slice and Gather (Concat and Split are in `join`, Pad in `pad`). On shares these are local; their shape rules are shared with constant folding.

use veil_ir::Op;

use super::{arg, axis, konst, opt_const};
use crate::onnx::consts::{CData, CTensor};
use crate::onnx::import::{Ctx, Importer, Sym};
use crate::onnx::proto::tensor_proto::DataType;

/// The shape `Reshape` produces from `input` for the requested `spec` (0 copies, −1 infers).
pub fn reshape_target(input: &[usize], spec: &[i64], allowzero: bool) -> Result<Vec<usize>, String> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(
                *input
                    .get(i)
                    .ok_or_else(|| format!("shape {spec:?} copies dimension {i} of rank-{} input", input.len()))?,
            ),
            d if d >= 0 => out.push(d as usize),
            _ => return Err(format!("invalid target shape {spec:?}")),
        }
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("cannot reshape {input:?} to {spec:?}"));
        }
        out[i] = total / known;
    }
    if out.iter().product::<usize>() != total {
        return Err(format!("cannot reshape {input:?} ({total} elements) to {spec:?}"));
    }
    Ok(out)
}

/// Flatten's 2-D shape.
pub fn flatten_target(ctx: &Ctx, input: &[usize]) -> Result<Vec<usize>, String> {
    let r = input.len();
    let a = ctx.attrs.int_or("axis", 1)?;
    let a = if a == r as i64 { r } else { axis(a, r.max(1))? };
    Ok(vec![input[..a].iter().product(), input[a..].iter().product()])
}

/// Squeeze's or Unsqueeze's axes, from the attribute (opset < 13) or input 1.
fn axes_operand(ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Option<Vec<i64>>, String> {
    if ctx.opset < 13 {
        return ctx.attrs.ints("axes");
    }
    opt_const(inputs, 1, "axes")?.map(CTensor::ints).transpose()
}

pub fn squeeze_target(ctx: &Ctx, inputs: &[Option<Sym>], input: &[usize]) -> Result<Vec<usize>, String> {
    let axes = match axes_operand(ctx, inputs)? {
        None => return Ok(input.iter().copied().filter(|&d| d != 1).collect()),
        Some(a) => a.iter().map(|&a| axis(a, input.len())).collect::<Result<Vec<_>, _>>()?,
    };
    if let Some(&a) = axes.iter().find(|&&a| input[a] != 1) {
        return Err(format!("cannot squeeze axis {a} of size {}", input[a]));
    }
    Ok(input.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect())
}

pub fn unsqueeze_target(ctx: &Ctx, inputs: &[Option<Sym>], input: &[usize]) -> Result<Vec<usize>, String> {
    let axes = axes_operand(ctx, inputs)?.ok_or("axes are required")?;
    let r = input.len() + axes.len();
    let mut axes = axes.iter().map(|&a| axis(a, r)).collect::<Result<Vec<_>, _>>()?;
    axes.sort_unstable();
    if axes.windows(2).any(|w| w[0] == w[1]) {
        return Err(format!("repeated axes {axes:?}"));
    }
    let mut rest = input.iter();
    Ok((0..r).map(|i| if axes.contains(&i) { 1 } else { *rest.next().unwrap_or(&1) }).collect())
}

pub fn perm(ctx: &Ctx, rank: usize) -> Result<Vec<usize>, String> {
    match ctx.attrs.ints("perm")? {
        None => Ok((0..rank).rev().collect()),
        Some(p) => p.iter().map(|&a| axis(a, rank)).collect(),
    }
}

/// Moves a value to `shape` with a `reshape` node named after the ONNX output.
fn reshape_value(imp: &mut Importer, ctx: &Ctx, x: &Sym, shape: Vec<usize>) -> Result<Vec<Sym>, String> {
    let v = imp.value(x)?;
    if imp.ty(v).shape == shape {
        return Ok(vec![Sym::Value(v)]);
    }
    Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), Op::Reshape { shape }, &[v])?)])
}

fn shape_of(imp: &mut Importer, x: &Sym) -> Result<Vec<usize>, String> {
    let v = imp.value(x)?;
    Ok(imp.ty(v).shape.clone())
}

pub fn reshape(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let x = arg(inputs, 0)?;
    let spec = if ctx.opset < 5 {
        ctx.attrs.ints("shape")?.ok_or("shape is required")?
    } else {
        konst(inputs, 1, "shape")?.ints()?
    };
    let target = reshape_target(&shape_of(imp, x)?, &spec, ctx.attrs.int_or("allowzero", 0)? != 0)?;
    reshape_value(imp, ctx, x, target)
}

pub fn flatten(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let x = arg(inputs, 0)?;
    let target = flatten_target(ctx, &shape_of(imp, x)?)?;
    reshape_value(imp, ctx, x, target)
}

pub fn squeeze(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let x = arg(inputs, 0)?;
    let target = squeeze_target(ctx, inputs, &shape_of(imp, x)?)?;
    reshape_value(imp, ctx, x, target)
}

pub fn unsqueeze(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let x = arg(inputs, 0)?;
    let target = unsqueeze_target(ctx, inputs, &shape_of(imp, x)?)?;
    reshape_value(imp, ctx, x, target)
}

pub fn transpose(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let v = imp.value(arg(inputs, 0)?)?;
    let perm = perm(ctx, imp.ty(v).rank())?;
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return Ok(vec![Sym::Value(v)]);
    }
    Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), Op::Transpose { perm }, &[v])?)])
}

/// Identity, Dropout (inference: identity; its mask output is not computed) and Cast to a float
/// type (FLOAT, DOUBLE, FLOAT16, BFLOAT16) pass their operand through.
///
/// A cast to FLOAT16 or BFLOAT16 does not round: Veil's values are fixed-point reals whose
/// precision the compiler chooses (`--frac-bits`), so the narrower float's rounding (relative
/// `2^-11` for FLOAT16, `2^-8` for BFLOAT16, and FLOAT16's overflow past 65504) is not
/// reproduced; the result is the uncast model's. Casts to integer, boolean or 8-, 6-, 4- and 2-bit
/// types of a computed value are refused: they would round or saturate secret values.
pub fn identity(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let x = arg(inputs, 0)?.clone();
    match ctx.node.op_type() {
        "Cast" => {
            let to = DataType::try_from(ctx.attrs.int("to")?.ok_or("attribute to is required")? as i32)
                .unwrap_or(DataType::Undefined);
            if !matches!(to, DataType::Float | DataType::Double | DataType::Float16 | DataType::Bfloat16) {
                return Ok(vec![super::quant::cast_computed(imp, ctx, &x, to)?]);
            }
        }
        "Dropout" => {
            if let Some(t) = opt_const(inputs, 2, "training_mode")?
                && t.ints()?.iter().any(|&b| b != 0)
            {
                return Err("training_mode = true is not supported (inference only)".into());
            }
        }
        _ => {}
    }
    Ok(vec![x])
}

/// `CastLike(input, target)`: `input` cast to `target`'s element type. Computed values are f32,
/// so a computed target makes it a cast to FLOAT; a constant target gives its own type (as
/// `Cast`'s `to`). A computed input passes unchanged to a float type and is refused otherwise;
/// a constant input is converted.
pub fn cast_like(_imp: &mut Importer, _ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let x = arg(inputs, 0)?.clone();
    let to_float = match arg(inputs, 1)? {
        Sym::Const(t) => matches!(t.data, CData::F(_)),
        _ => true,
    };
    Ok(vec![match (x, to_float) {
        (Sym::Const(t), true) => Sym::Const(CTensor { data: CData::F(t.floats()), ..t }),
        (Sym::Const(t), false) => {
            let ints = t.floats().iter().map(|&v| v.trunc() as i64).collect();
            Sym::Const(CTensor { data: CData::I(ints), ..t })
        }
        (x, true) => x,
        (_, false) => {
            return Err(
                "cast of a computed value to an integer type (the target's) is not supported (only to float)".into()
            );
        }
    }])
}

/// `Shape` of a computed value: its static shape, a compile-time constant.
pub fn shape(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let dims = shape_of(imp, arg(inputs, 0)?)?;
    Ok(vec![Sym::Const(super::fold::shape_slice(ctx, &dims)?)])
}

/// `Size`: the number of elements, known at compile time for a computed value as for a constant.
pub fn size(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let _ = ctx;
    let n: usize = match arg(inputs, 0)? {
        Sym::Const(t) => t.len(),
        x => shape_of(imp, x)?.iter().product(),
    };
    Ok(vec![Sym::Const(CTensor::i64(vec![], vec![n as i64]))])
}

/// `Slice` and `Gather` with constant indices on a computed value: the static index map comes
/// from running the constant folder on the operand's flat indices, so the two share one
/// definition of the op's semantics.
pub fn select(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    if ctx.node.op_type() == "Gather"
        && let (Some(Sym::Const(table)), Some(Some(ids))) = (arg(inputs, 0).ok(), inputs.get(1))
        && !matches!(ids, Sym::Const(_))
    {
        return super::embedding::lookup(imp, ctx, table, ids);
    }
    let v = imp.value(arg(inputs, 0)?)?;
    let shape = imp.ty(v).shape.clone();
    let n: usize = shape.iter().product();
    if n > u32::MAX as usize {
        return Err(format!("operand of {n} elements is too large"));
    }
    let iota = CTensor::i64(shape.clone(), (0..n as i64).collect());
    let mut args = inputs.to_vec();
    args[0] = Some(Sym::Const(iota));
    for (i, a) in args.iter().enumerate().skip(1) {
        if matches!(a, Some(s) if !matches!(s, Sym::Const(_))) {
            return Err(format!(
                "input {i} must be a constant (indices and bounds computed from the model input are not supported)"
            ));
        }
    }
    let picked = super::fold::fold(ctx, &args)?;
    let indices: Vec<u32> = picked.ints()?.iter().map(|&i| i as u32).collect();
    if picked.shape == shape && indices.iter().enumerate().all(|(k, &i)| k == i as usize) {
        return Ok(vec![Sym::Value(v)]);
    }
    Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), Op::Select { indices, shape: picked.shape }, &[v])?)])
}
