//! Rounding and linear quantization: `Round`, `Floor`, `Ceil`, a `Cast` of a real to an
//! integer type, `QuantizeLinear` and `DequantizeLinear` (the QDQ form onnxruntime's
//! quantizer writes).
//!
//! A rounding is [`Op::Round`] (a garbled circuit on shares). `QuantizeLinear(x, s, z)` is
//! `clamp(round(x / s) + z, lo, hi)` for the output type's range: an affine `x · (1/s) + z`
//! and a [`RoundMode::HalfEven`] rounding clamped to `[lo, hi]` (one circuit) that also reads
//! `z`, so that a tie of `x / s` goes to even before `z` is added (`round(v − z) + z`); its output is an
//! integer-typed value (`ints`). `DequantizeLinear(q, s, z)` is the affine `(q − z) · s`, folded at compile
//! time when `q` is a constant (quantized weights). Scales and zero points are the model's
//! (weights, kept by the server like any other); the integer range is public. Per-axis and
//! blocked scales broadcast along their axis.

use veil_ir::{Op, RoundMode};

use super::super::consts::{CData, CTensor};
use super::super::import::{Ctx, Importer, Sym};
use super::super::ints;
use super::super::proto::tensor_proto::DataType;
use super::{arg, axis, konst, opt_const};

/// `Round`, `Floor` and `Ceil` of a computed value; constants fold.
pub fn round(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let mode = mode_of(ctx.node.op_type());
    if let Sym::Const(t) = arg(inputs, 0)? {
        return Ok(vec![Sym::Const(rounded(t, mode))]);
    }
    let x = imp.value(arg(inputs, 0)?)?;
    Ok(vec![Sym::Value(imp.add(
        &ctx.name,
        ctx.out(0),
        Op::Round { mode, min: None, max: None, zero_point: None, grid: None },
        &[x],
    )?)])
}

fn mode_of(op: &str) -> RoundMode {
    match op {
        "Floor" => RoundMode::Floor,
        "Ceil" => RoundMode::Ceil,
        _ => RoundMode::HalfEven,
    }
}

fn rounded(t: &CTensor, mode: RoundMode) -> CTensor {
    match &t.data {
        CData::I(_) => t.clone(),
        CData::F(v) => CTensor::f32(t.shape.clone(), v.iter().map(|&x| mode.apply(x as f64) as f32).collect()),
    }
}

/// A `Cast` of a computed real to a type other than a wide float: to an integer type ONNX
/// truncates toward zero (out-of-range values are undefined: Veil keeps them for 8 bits and
/// more, and saturates to 2- and 4-bit types' ranges as onnxruntime does); to an 8- or 4-bit
/// float type it rounds onto the type's values ([`float_type`]; `saturate`, and FLOAT8E8M0's
/// `round_mode`).
pub fn cast_computed(imp: &mut Importer, ctx: &Ctx, x: &Sym, to: DataType) -> Result<Sym, String> {
    let op = if let Some((grid, max)) = float_type(to, ctx.attrs.int_or("saturate", 1)? != 0) {
        let mode = match to {
            DataType::Float8e8m0 => match ctx.attrs.string("round_mode")?.as_deref().unwrap_or("up") {
                "up" => RoundMode::Ceil,
                "down" => RoundMode::TowardZero,
                "nearest" => RoundMode::HalfEven,
                other => return Err(format!("round_mode {other:?} is not one of up, down, nearest")),
            },
            _ => RoundMode::HalfEven,
        };
        Op::Round { mode, min: Some(-max), max: Some(max), zero_point: None, grid: Some(grid) }
    } else if integer_cast_target(to) {
        let narrow = matches!(to, DataType::Int2 | DataType::Uint2 | DataType::Int4 | DataType::Uint4);
        let (lo, hi) = match ints::range(to) {
            Some((lo, hi)) if narrow => (Some(lo as f32), Some(hi as f32)),
            _ => (None, None),
        };
        Op::Round { mode: RoundMode::TowardZero, min: lo, max: hi, zero_point: None, grid: None }
    } else {
        return Err(format!(
            "cast of a computed value (a real number, FLOAT) to {} is not supported: Veil passes casts \
between FLOAT, DOUBLE, FLOAT16 and BFLOAT16 through, rounds toward zero to integer types and onto the values \
of 8- and 4-bit float types, and refuses boolean and 6-bit float types",
            to.as_str_name()
        ));
    };
    let x = imp.value(x)?;
    Ok(Sym::Value(imp.add(&ctx.name, ctx.out(0), op, &[x])?))
}

fn integer_cast_target(to: DataType) -> bool {
    use DataType::*;
    matches!(to, Int2 | Int4 | Int8 | Int16 | Int32 | Int64 | Uint2 | Uint4 | Uint8 | Uint16 | Uint32 | Uint64)
}

/// An 8- or 4-bit float type's grid and largest finite value (ONNX's Cast tables: the FN and
/// FNUZ types have no infinity, so a non-saturating overflow is NaN; FLOAT8E5M2's is ±∞;
/// FLOAT4E2M1 always saturates, and has no NaN).
pub fn float_type(t: DataType, saturate: bool) -> Option<(veil_ir::FloatGrid, f32)> {
    use DataType::*;
    use veil_ir::Overflow::{Infinity, Nan, Saturate, SaturateNoNan};
    let (mantissa, min_exp, max, overflow) = match t {
        Float8e4m3fn => (3, -6, 448.0, Nan),
        Float8e4m3fnuz => (3, -7, 240.0, Nan),
        Float8e5m2 => (2, -14, 57344.0, Infinity),
        Float8e5m2fnuz => (2, -15, 57344.0, Nan),
        Float8e8m0 => (0, -127, f32::MAX, Nan),
        Float4e2m1 => (1, 0, 6.0, SaturateNoNan),
        _ => return None,
    };
    let overflow = if saturate && overflow != SaturateNoNan { Saturate } else { overflow };
    Some((veil_ir::FloatGrid { mantissa, min_exp, overflow }, max))
}

/// The integer type a node makes of a computed real, for `ints`: `QuantizeLinear`'s output
/// type, or a `Cast`'s integer target; `None` for other nodes.
pub fn integer_result(imp: &Importer, ctx: &Ctx) -> Result<Option<DataType>, String> {
    Ok(match ctx.node.op_type() {
        "QuantizeLinear" => Some(output_type(imp, ctx)?).filter(|&t| float_type(t, true).is_none()),
        "Cast" => {
            let to = ctx.attrs.int("to")?.ok_or("attribute to is required")?;
            Some(DataType::try_from(to as i32).unwrap_or(DataType::Undefined)).filter(|&t| integer_cast_target(t))
        }
        _ => None,
    })
}

/// QuantizeLinear's output type: its zero point's, else `output_dtype` (opset 21), else UINT8.
fn output_type(imp: &Importer, ctx: &Ctx) -> Result<DataType, String> {
    let zp = ctx.node.input.get(2).filter(|n| !n.is_empty()).and_then(|n| imp.const_types.get(n).copied());
    let attr = ctx
        .attrs
        .int("output_dtype")?
        .filter(|&t| t != 0)
        .map(|t| DataType::try_from(t as i32).unwrap_or(DataType::Undefined));
    Ok(zp.or(attr).unwrap_or(DataType::Uint8))
}

/// A scale or zero point broadcast against an operand of shape `x`: a scalar as is, a 1-D
/// tensor along `axis` as `[d, 1, …, 1]`, a blocked one (`block_size` > 0, the operand's rank)
/// repeated along `axis` to the operand's shape.
fn along(t: &CTensor, x: &[usize], ctx: &Ctx, what: &str) -> Result<(Vec<usize>, Vec<f32>), String> {
    let v = t.floats();
    let block = ctx.attrs.int_or("block_size", 0)?;
    if v.len() == 1 && block == 0 {
        return Ok((vec![], v));
    }
    let a = axis(ctx.attrs.int_or("axis", 1)?, x.len())?;
    if block <= 0 {
        if t.shape.len() != 1 || t.shape[0] != x[a] {
            return Err(format!("{what} has shape {:?}, expected a scalar or [{}] (axis {a} of {x:?})", t.shape, x[a]));
        }
        let mut shape = vec![x[a]];
        shape.extend(std::iter::repeat_n(1, x.len() - a - 1));
        return Ok((shape, v));
    }
    let b = block as usize;
    let blocks = x[a].div_ceil(b);
    let fits = t.shape.len() == x.len()
        && t.shape.iter().zip(x).enumerate().all(|(i, (&d, &n))| if i == a { d == blocks } else { d == n });
    if !fits {
        return Err(format!("{what} has shape {:?}, which does not block {x:?} by {b} along axis {a}", t.shape));
    }
    let strides = veil_ir::strides(x);
    let tstrides = veil_ir::strides(&t.shape);
    let n: usize = x.iter().product();
    let data = (0..n)
        .map(|i| {
            let at: usize = (0..x.len())
                .map(|d| {
                    let k = (i / strides[d]) % x[d];
                    (if d == a { k / b } else { k }) * tstrides[d]
                })
                .sum();
            v[at]
        })
        .collect();
    Ok((x.to_vec(), data))
}

/// Operand 2, the zero point, when it is given and not all zero (otherwise no shift).
fn zero_point<'a>(inputs: &'a [Option<Sym>], what: &str) -> Result<Option<&'a CTensor>, String> {
    Ok(opt_const(inputs, 2, what)?.filter(|z| z.floats().iter().any(|&v| v != 0.0)))
}

/// The integer range of QuantizeLinear's output type.
fn quant_range(t: DataType) -> Result<(f32, f32), String> {
    match ints::range(t) {
        Some((lo, hi)) if t != DataType::Bool && hi <= i32::MAX as i128 => Ok((lo as f32, hi as f32)),
        _ => Err(format!(
            "quantization to {} is not supported: Veil quantizes to 2- to 16-bit and 32-bit integers (a rounding \
and a clamp), not to 8- and 4-bit floats",
            t.as_str_name()
        )),
    }
}

/// What a computed DequantizeLinear's output dequantizes: the integer value `q` of type `ty`,
/// with the scale and zero point as they broadcast to it (`along`; zero point `None` when 0).
#[derive(Clone, Debug, PartialEq)]
pub struct Dequantized {
    q: veil_ir::ValueId,
    ty: DataType,
    scale: (Vec<usize>, Vec<f32>),
    zero: Option<(Vec<usize>, Vec<f32>)>,
}

/// `QuantizeLinear(x, y_scale, y_zero_point)`: see the module doc.
pub fn quantize_linear(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let out_type = output_type(imp, ctx)?;
    // To an 8- or 4-bit float type: `x / s` rounded onto the type's values (ties to even) and
    // saturated (with `saturate = 0`, NaN or ±∞ in float semantics). Such zero points are zero in
    // practice; another is refused.
    let float = float_type(out_type, ctx.attrs.int_or("saturate", 1)? != 0);
    if float.is_some() && zero_point(inputs, "y_zero_point")?.is_some() {
        return Err("a non-zero zero point for an 8- or 4-bit float type is not supported".into());
    }
    let (grid, (lo, hi)) = match float {
        Some((grid, max)) => (Some(grid), (-max, max)),
        None => (None, quant_range(out_type)?),
    };
    if let Sym::Const(t) = arg(inputs, 0)? {
        return Ok(vec![Sym::Const(quantized(ctx, t, inputs, (lo, hi), grid)?)]);
    }
    let x = imp.value(arg(inputs, 0)?)?;
    let shape = imp.g.values[x].ty.shape.clone();
    let (sshape, s) = along(konst(inputs, 1, "y_scale")?, &shape, ctx, "y_scale")?;
    if let Some(bad) = s.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
        return Err(format!("y_scale holds {bad}; scales must be positive and finite"));
    }
    let zero = zero_point(inputs, "y_zero_point")?.map(|z| along(z, &shape, ctx, "y_zero_point")).transpose()?;
    if let Some(m) = requantized_pool(imp, ctx, x, out_type, (&sshape, &s), zero.as_ref())? {
        return Ok(vec![Sym::Value(m)]);
    }
    let inv: Vec<f32> = s.iter().map(|v| 1.0 / v).collect();
    let scale = imp.weight(&format!("{}.inv_scale", ctx.name), sshape, inv);
    // The zero point shifts the scaled value and, being added before the rounding, also tells it
    // which way ties go (ONNX rounds `x/s` to even, then adds it).
    let shift = zero.map(|(zshape, zp)| imp.weight(&format!("{}.zero_point", ctx.name), zshape, zp));
    let out = ctx.out(0);
    let y = imp.add(&ctx.name, &format!("{out}/scaled"), Op::Affine { scale: Some(scale), shift }, &[x])?;
    let op = Op::Round { mode: RoundMode::HalfEven, min: Some(lo), max: Some(hi), zero_point: shift, grid };
    Ok(vec![Sym::Value(imp.add(&format!("{}/round", ctx.name), out, op, &[y])?)])
}

/// `QuantizeLinear(MaxPool(DequantizeLinear(q)))` with the same positive scale, zero point and
/// integer type on both sides (what onnxruntime's QDQ quantizer writes around a MaxPool) is
/// `MaxPool(q)`: `(q − z)·s` is increasing in `q`, so the window's maximum dequantizes the
/// integers' maximum, and quantizing it back gives that integer exactly (also in ONNX's float
/// arithmetic: `(q − z)·s / s` is within an ulp of the integer `q − z`, which rounding recovers).
/// One garbled MaxPool on the integers instead of two server-private diagonal layers, their
/// truncations, the pool and a rounding. `None` where the pattern does not hold.
fn requantized_pool(
    imp: &mut Importer,
    ctx: &Ctx,
    x: veil_ir::ValueId,
    out_type: DataType,
    scale: (&[usize], &[f32]),
    zero: Option<&(Vec<usize>, Vec<f32>)>,
) -> Result<Option<veil_ir::ValueId>, String> {
    let Some(pool) = imp.g.producer(x).filter(|n| matches!(n.op, Op::MaxPool { .. })).cloned() else {
        return Ok(None);
    };
    let Some(dq) = imp.dequantized.get(&pool.inputs[0]).cloned() else { return Ok(None) };
    let same = dq.ty == out_type
        && (dq.scale.0.as_slice(), dq.scale.1.as_slice()) == scale
        && dq.zero.as_ref() == zero
        // Per-axis parameters must lie along the channels (axis 1), which MaxPool keeps (blocked
        // ones have the operand's rank, and the pool changes their shape).
        && (dq.scale.1.len() == 1 || dq.scale.0.len() + 1 == imp.g.values[x].ty.rank());
    if !same {
        return Ok(None);
    }
    Ok(Some(imp.add(&ctx.name, ctx.out(0), pool.op.clone(), &[dq.q])?))
}

/// `DequantizeLinear(x, x_scale, x_zero_point)`: `(x − z) · s`; see the module doc.
pub fn dequantize_linear(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    if let Sym::Const(t) = arg(inputs, 0)? {
        return Ok(vec![Sym::Const(dequantized(ctx, t, inputs)?)]);
    }
    let x = imp.value(arg(inputs, 0)?)?;
    let shape = imp.g.values[x].ty.shape.clone();
    let (sshape, s) = along(konst(inputs, 1, "x_scale")?, &shape, ctx, "x_scale")?;
    let zero = zero_point(inputs, "x_zero_point")?.map(|z| along(z, &shape, ctx, "x_zero_point")).transpose()?;
    let record = ctx.node.input.first().and_then(|n| imp.int_type(n)).map(|ty| Dequantized {
        q: x,
        ty,
        scale: (sshape.clone(), s.clone()),
        zero: zero.clone(),
    });
    let shift = match zero {
        Some((zshape, zp)) => {
            // −z·s: the two have the same form, or one is a scalar.
            let (wshape, data): (Vec<usize>, Vec<f32>) = if zshape == sshape {
                (zshape, zp.iter().zip(&s).map(|(z, s)| -z * s).collect())
            } else if zp.len() == 1 {
                (sshape.clone(), s.iter().map(|s| -zp[0] * s).collect())
            } else if s.len() == 1 {
                (zshape, zp.iter().map(|z| -z * s[0]).collect())
            } else {
                return Err(format!("x_zero_point has shape {zshape:?} and x_scale {sshape:?}: they must match"));
            };
            Some(imp.weight(&format!("{}.shift", ctx.name), wshape, data))
        }
        _ => None,
    };
    let scale = imp.weight(&format!("{}.scale", ctx.name), sshape, s);
    let y = imp.add(&ctx.name, ctx.out(0), Op::Affine { scale: Some(scale), shift }, &[x])?;
    if let Some(r) = record {
        imp.dequantized.insert(y, r);
    }
    Ok(vec![Sym::Value(y)])
}

/// Each element's scale and zero point (operands 1 and 2, named `scale` and `zero_point`) for
/// a constant operand `t`, as they broadcast to it.
fn per_element(
    ctx: &Ctx,
    t: &CTensor,
    inputs: &[Option<Sym>],
    (scale, zero_point): (&str, &str),
) -> Result<Vec<(f32, f32)>, String> {
    let (sshape, s) = along(konst(inputs, 1, scale)?, &t.shape, ctx, scale)?;
    let zero = CTensor::f32(vec![], vec![0.0]);
    let z = opt_const(inputs, 2, zero_point)?.unwrap_or(&zero);
    let (zshape, zp) = along(z, &t.shape, ctx, zero_point)?;
    let (si, zi) = (
        veil_ir::eval::kernels::broadcast_index(&sshape, &t.shape),
        veil_ir::eval::kernels::broadcast_index(&zshape, &t.shape),
    );
    Ok((0..t.len()).map(|i| (s[si(i)], zp[zi(i)])).collect())
}

/// QuantizeLinear of a constant, at compile time (as ONNX computes it: `x / s`, rounded).
fn quantized(
    ctx: &Ctx,
    t: &CTensor,
    inputs: &[Option<Sym>],
    (lo, hi): (f32, f32),
    grid: Option<veil_ir::FloatGrid>,
) -> Result<CTensor, String> {
    let sz = per_element(ctx, t, inputs, ("y_scale", "y_zero_point"))?;
    let x = t.floats();
    if let Some(grid) = grid {
        let round = |v: f32| {
            veil_ir::eval::ring_ops::float_grid::real(v.into(), RoundMode::HalfEven, grid, (Some(lo), Some(hi)))
        };
        return Ok(CTensor::f32(t.shape.clone(), x.iter().zip(sz).map(|(x, (s, _))| round(x / s) as f32).collect()));
    }
    let data = x.iter().zip(sz).map(|(x, (s, z))| ((x / s).round_ties_even() + z).clamp(lo, hi) as i64);
    Ok(CTensor::i64(t.shape.clone(), data.collect()))
}

/// DequantizeLinear of a constant (quantized weights), at compile time.
fn dequantized(ctx: &Ctx, t: &CTensor, inputs: &[Option<Sym>]) -> Result<CTensor, String> {
    let sz = per_element(ctx, t, inputs, ("x_scale", "x_zero_point"))?;
    let data = t.floats().iter().zip(sz).map(|(x, (s, z))| (x - z) * s).collect();
    Ok(CTensor::f32(t.shape.clone(), data))
}
