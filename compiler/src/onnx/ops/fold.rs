//! Compile-time evaluation of nodes whose operands are all constants: the shape arithmetic
//! exporters emit (`Shape → Gather → Unsqueeze → Concat → Reshape`, `Slice`, `Range`, ...)
//! and constant weight preprocessing. Integers stay integers; floats are f32.

use super::array::{flatten_target, perm, reshape_target, squeeze_target, unsqueeze_target};
use super::{axis, konst, opt_const};
use crate::onnx::consts::{self, CData, CTensor};
use crate::onnx::import::{Ctx, Importer, Sym};
use crate::onnx::proto::tensor_proto::DataType;
use veil_ir::strides;

/// Ops supported only on constants (shape computations), never on computed values.
pub const FOLD_ONLY: &[&str] = &["Constant", "ConstantOfShape", "Range", "Sqrt", "Equal", "Where", "Mod", "Trilu"];

/// Comparisons and boolean logic, folded on constants (masks built from `arange`s); on the
/// client's own booleans they are `client_mask`'s.
pub const LOGIC: &[&str] = &["Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor", "Not"];

/// Ops this module can evaluate when every operand is constant.
pub fn can_fold(op: &str) -> bool {
    FOLD_ONLY.contains(&op)
        || LOGIC.contains(&op)
        || super::movement::OPS.contains(&op)
        || matches!(
            op,
            "Gather"
                | "Slice"
                | "Identity"
                | "Dropout"
                | "Cast"
                | "Shape"
                | "Unsqueeze"
                | "Squeeze"
                | "Reshape"
                | "Flatten"
                | "Concat"
                | "Transpose"
                | "Add"
                | "Sub"
                | "Mul"
                | "Div"
                | "Pow"
                | "Neg"
        )
}

/// Lowering of [`FOLD_ONLY`] ops reached with a computed operand.
pub fn only_constants(_: &mut Importer, _: &Ctx, _: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    Err("supported only on constants (shape computations), not on values computed from the model input".into())
}

/// `Shape`'s output for `dims`, honouring the `start`/`end` attributes (opset 15).
pub fn shape_slice(ctx: &Ctx, dims: &[usize]) -> Result<CTensor, String> {
    let r = dims.len() as i64;
    let clamp = |a: i64| (if a < 0 { a + r } else { a }).clamp(0, r) as usize;
    let start = clamp(ctx.attrs.int_or("start", 0)?);
    let end = clamp(ctx.attrs.int_or("end", r)?).max(start);
    let v: Vec<i64> = dims[start..end].iter().map(|&d| d as i64).collect();
    Ok(CTensor::i64(vec![v.len()], v))
}

/// ONNX's Mod with `fmod = 0`: the remainder takes the divisor's sign (as Python's `%`).
fn mod_i(a: i64, b: i64) -> Option<i64> {
    let r = a.checked_rem(b)?;
    Some(if r != 0 && (r < 0) != (b < 0) { r + b } else { r })
}

fn mod_f(a: f64, b: f64) -> f64 {
    let r = a % b;
    if r != 0.0 && (r < 0.0) != (b < 0.0) { r + b } else { r }
}

fn div_i(a: i64, b: i64) -> Option<i64> {
    // ONNX integer Div truncates toward zero, like Rust.
    a.checked_div(b)
}

/// Evaluates `ctx.node` on constant operands.
pub fn fold(ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<CTensor, String> {
    let c = |i: usize| konst(inputs, i, "operand");
    let op = ctx.node.op_type();
    Ok(match op {
        "Constant" => constant(ctx)?,
        "Identity" | "Dropout" => c(0)?.clone(),
        "Cast" => {
            let to = DataType::try_from(ctx.attrs.int("to")?.ok_or("attribute to is required")? as i32)
                .unwrap_or(DataType::Undefined);
            let t = c(0)?;
            match to {
                DataType::Float | DataType::Double => CTensor::f32(t.shape.clone(), t.floats()),
                DataType::Float16 => {
                    CTensor::f32(t.shape.clone(), t.floats().into_iter().map(consts::round_to_f16).collect())
                }
                DataType::Bfloat16 => {
                    CTensor::f32(t.shape.clone(), t.floats().into_iter().map(consts::round_to_bf16).collect())
                }
                DataType::Bool => {
                    CTensor::i64(t.shape.clone(), t.floats().iter().map(|&x| (x != 0.0) as i64).collect())
                }
                DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Uint8
                | DataType::Uint16
                | DataType::Uint32
                | DataType::Uint64 => match &t.data {
                    CData::I(_) => t.clone(),
                    CData::F(v) => CTensor::i64(t.shape.clone(), v.iter().map(|&x| x.trunc() as i64).collect()),
                },
                // The 8-, 6- and 4-bit floats (with Cast-24's round_mode), 4- and
                // 2-bit integers, strings and complex numbers.
                other => return Err(format!("cast to {} is not supported", other.as_str_name())),
            }
        }
        "Shape" => shape_slice(ctx, &c(0)?.shape)?,
        "Reshape" => {
            let t = c(0)?;
            let spec =
                if ctx.opset < 5 { ctx.attrs.ints("shape")?.ok_or("shape is required")? } else { c(1)?.ints()? };
            t.reshaped(reshape_target(&t.shape, &spec, ctx.attrs.int_or("allowzero", 0)? != 0)?)?
        }
        "Flatten" => c(0)?.reshaped(flatten_target(ctx, &c(0)?.shape)?)?,
        "Squeeze" => c(0)?.reshaped(squeeze_target(ctx, inputs, &c(0)?.shape)?)?,
        "Unsqueeze" => c(0)?.reshaped(unsqueeze_target(ctx, inputs, &c(0)?.shape)?)?,
        "Transpose" => consts::transpose(c(0)?, &perm(ctx, c(0)?.shape.len())?),
        "Concat" => concat(ctx, inputs)?,
        "Add" => consts::binary(c(0)?, c(1)?, |a, b| a + b, i64::checked_add)?,
        "Sub" => consts::binary(c(0)?, c(1)?, |a, b| a - b, i64::checked_sub)?,
        "Mul" => consts::binary(c(0)?, c(1)?, |a, b| a * b, i64::checked_mul)?,
        "Div" => consts::binary(c(0)?, c(1)?, |a, b| a / b, div_i)?,
        // `fmod = 1`: the remainder takes the dividend's sign (C's fmod, Rust's `%`).
        "Mod" if ctx.attrs.int_or("fmod", 0)? != 0 => consts::binary(c(0)?, c(1)?, |a, b| a % b, i64::checked_rem)?,
        "Mod" => consts::binary(c(0)?, c(1)?, mod_f, mod_i)?,
        "Pow" => consts::binary(c(0)?, c(1)?, f64::powf, |a, b| a.checked_pow(u32::try_from(b).ok()?))?,
        "Equal" => {
            let t = consts::binary(c(0)?, c(1)?, |a, b| (a == b) as i64 as f64, |a, b| Some((a == b) as i64))?;
            CTensor::i64(t.shape.clone(), t.floats().iter().map(|&x| x as i64).collect())
        }
        "Neg" => {
            let t = c(0)?;
            match &t.data {
                CData::F(v) => CTensor::f32(t.shape.clone(), v.iter().map(|x| -x).collect()),
                CData::I(v) => CTensor::i64(t.shape.clone(), v.iter().map(|x| x.wrapping_neg()).collect()),
            }
        }
        "Sqrt" => CTensor::f32(c(0)?.shape.clone(), c(0)?.floats().iter().map(|x| x.sqrt()).collect()),
        "Not" => CTensor::i64(c(0)?.shape.clone(), c(0)?.floats().iter().map(|&x| (x == 0.0) as i64).collect()),
        op if LOGIC.contains(&op) => {
            let f: fn(f64, f64) -> bool = match op {
                "Greater" => |a, b| a > b,
                "Less" => |a, b| a < b,
                "GreaterOrEqual" => |a, b| a >= b,
                "LessOrEqual" => |a, b| a <= b,
                "And" => |a, b| a != 0.0 && b != 0.0,
                "Or" => |a, b| a != 0.0 || b != 0.0,
                _ => |a, b| (a != 0.0) != (b != 0.0),
            };
            let (a, b) = (c(0)?, c(1)?);
            let shape = consts::broadcast_shape(&a.shape, &b.shape)?;
            let (ia, ib) = (consts::broadcast_indices(&a.shape, &shape), consts::broadcast_indices(&b.shape, &shape));
            // As f64: exact for f32 and for the integers of shape computations.
            let wide = |t: &CTensor| match &t.data {
                CData::I(v) => v.iter().map(|&i| i as f64).collect::<Vec<_>>(),
                CData::F(v) => v.iter().map(|&f| f as f64).collect(),
            };
            let (x, y) = (wide(a), wide(b));
            CTensor::i64(shape, ia.iter().zip(&ib).map(|(&i, &j)| f(x[i], y[j]) as i64).collect())
        }
        "Where" => where_(c(0)?, c(1)?, c(2)?)?,
        "Trilu" => {
            let k = match opt_const(inputs, 1, "k")?.map(CTensor::ints).transpose()?.as_deref() {
                None => 0,
                Some(&[k]) => k,
                Some(other) => return Err(format!("k must be one integer, got {other:?}")),
            };
            trilu(c(0)?, k, ctx.attrs.int_or("upper", 1)? != 0)?
        }
        "Gather" => gather(ctx, c(0)?, c(1)?)?,
        op if super::movement::OPS.contains(&op) => super::movement::fold(ctx, inputs)?,
        "Slice" => slice(ctx, inputs)?,
        "ConstantOfShape" => {
            let shape: Vec<usize> = c(0)?
                .ints()?
                .iter()
                .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
                .collect::<Result<_, _>>()?;
            let n: usize = shape.iter().product();
            match ctx.attrs.tensor("value")?.map(consts::from_proto).transpose()? {
                None => CTensor::f32(shape, vec![0.0; n]),
                Some(v) => CTensor { data: v.data.pick(std::iter::repeat_n(0, n)), shape },
            }
        }
        "Range" => {
            // Range-27's stash_type: 1 (FLOAT, the default) is what `range` computes (in f64,
            // rounded to f32); another would accumulate in a narrower type.
            if let Some(t) = ctx.attrs.int("stash_type")?.filter(|&t| t != DataType::Float as i64) {
                return Err(format!("stash_type {t} is not supported (only 1, FLOAT)"));
            }
            range(c(0)?, c(1)?, c(2)?)?
        }
        _ => return Err(format!("cannot evaluate {op} at compile time")),
    })
}

fn constant(ctx: &Ctx) -> Result<CTensor, String> {
    let a = &ctx.attrs;
    if let Some(t) = a.tensor("value")? {
        return consts::from_proto(t);
    }
    if let Some(f) = a.float("value_float")? {
        return Ok(CTensor::f32(vec![], vec![f]));
    }
    if let Some(v) = a.floats("value_floats")? {
        return Ok(CTensor::f32(vec![v.len()], v));
    }
    if let Some(i) = a.int("value_int")? {
        return Ok(CTensor::i64(vec![], vec![i]));
    }
    if let Some(v) = a.ints("value_ints")? {
        return Ok(CTensor::i64(vec![v.len()], v));
    }
    Err("needs a value, value_float(s) or value_int(s) attribute (sparse and string constants are not supported)"
        .into())
}

fn concat(ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<CTensor, String> {
    let ts: Vec<&CTensor> = (0..inputs.len()).filter_map(|i| opt_const(inputs, i, "operand").ok().flatten()).collect();
    let first = ts.first().ok_or("needs at least one input")?;
    let rank = first.shape.len();
    if rank == 0 {
        return Err("inputs must have rank 1 or more (scalars cannot be concatenated)".into());
    }
    let a = axis(ctx.attrs.int("axis")?.ok_or("attribute axis is required")?, rank)?;
    // Found by the onnx_import fuzz target: mismatched shapes indexed out of bounds.
    if let Some(t) =
        ts.iter().find(|t| t.shape.len() != rank || (0..rank).any(|d| d != a && t.shape[d] != first.shape[d]))
    {
        return Err(format!("inputs of shapes {:?} and {:?} cannot be concatenated on axis {a}", first.shape, t.shape));
    }
    let float = ts.iter().any(|t| matches!(t.data, CData::F(_)));
    let mut shape = first.shape.clone();
    shape[a] = ts.iter().map(|t| t.shape[a]).sum();
    let outer: usize = shape[..a].iter().product();
    if let Some(t) = ts.iter().find(|t| t.len() != t.shape.iter().product::<usize>()) {
        return Err(format!("an input of shape {:?} holds {} values", t.shape, t.len()));
    }
    let inner = |t: &CTensor| -> usize { t.shape[a..].iter().product() };
    if float {
        let parts: Vec<Vec<f32>> = ts.iter().map(|t| t.floats()).collect();
        let f =
            (0..outer).flat_map(|o| ts.iter().zip(&parts).flat_map(move |(t, p)| &p[o * inner(t)..(o + 1) * inner(t)]));
        Ok(CTensor::f32(shape, f.copied().collect()))
    } else {
        let parts: Vec<Vec<i64>> = ts.iter().map(|t| t.ints()).collect::<Result<_, _>>()?;
        let i =
            (0..outer).flat_map(|o| ts.iter().zip(&parts).flat_map(move |(t, p)| &p[o * inner(t)..(o + 1) * inner(t)]));
        Ok(CTensor::i64(shape, i.copied().collect()))
    }
}

fn gather(ctx: &Ctx, data: &CTensor, indices: &CTensor) -> Result<CTensor, String> {
    let a = axis(ctx.attrs.int_or("axis", 0)?, data.shape.len())?;
    let n = data.shape[a] as i64;
    let idx: Vec<usize> = indices
        .ints()?
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + n } else { i };
            if (0..n).contains(&j) {
                Ok(j as usize)
            } else {
                Err(format!("index {i} out of range for axis of size {n}"))
            }
        })
        .collect::<Result<_, _>>()?;
    let outer: usize = data.shape[..a].iter().product();
    let inner: usize = data.shape[a + 1..].iter().product();
    let mut src = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &j in &idx {
            src.extend((0..inner).map(|k| (o * data.shape[a] + j) * inner + k));
        }
    }
    let shape = [&data.shape[..a], &indices.shape[..], &data.shape[a + 1..]].concat();
    Ok(CTensor { shape, data: data.data.pick(src.into_iter()) })
}

fn slice(ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<CTensor, String> {
    let t = konst(inputs, 0, "data")?;
    let r = t.shape.len();
    let (starts, ends, axes, steps) = if ctx.opset < 10 {
        (
            ctx.attrs.ints("starts")?.ok_or("attribute starts is required")?,
            ctx.attrs.ints("ends")?.ok_or("attribute ends is required")?,
            ctx.attrs.ints("axes")?,
            None,
        )
    } else {
        let get = |i, what| opt_const(inputs, i, what).and_then(|t| t.map(CTensor::ints).transpose());
        (konst(inputs, 1, "starts")?.ints()?, konst(inputs, 2, "ends")?.ints()?, get(3, "axes")?, get(4, "steps")?)
    };
    let axes: Vec<usize> = match axes {
        Some(a) => a.iter().map(|&a| axis(a, r)).collect::<Result<_, _>>()?,
        None => (0..starts.len()).collect(),
    };
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err("starts, ends, axes and steps must have one length".into());
    }
    // Per axis: the selected source coordinates.
    let mut sel: Vec<Vec<usize>> = t.shape.iter().map(|&d| (0..d).collect()).collect();
    for (k, &a) in axes.iter().enumerate() {
        let d = t.shape[a] as i64;
        let step = steps[k];
        if step == 0 {
            return Err("slice step 0".into());
        }
        if d == 0 {
            // Nothing to select along an empty axis (and no last index to clamp to).
            sel[a] = Vec::new();
            continue;
        }
        let norm = |x: i64| if x < 0 { x + d } else { x };
        let (s, e) = if step > 0 {
            (norm(starts[k]).clamp(0, d), norm(ends[k]).clamp(0, d))
        } else {
            (norm(starts[k]).clamp(0, d - 1), norm(ends[k]).clamp(-1, d - 1))
        };
        let mut v = Vec::new();
        let mut i = s;
        while (step > 0 && i < e) || (step < 0 && i > e) {
            v.push(i as usize);
            i += step;
        }
        sel[a] = v;
    }
    let shape: Vec<usize> = sel.iter().map(Vec::len).collect();
    let (xs, os) = (strides(&t.shape), strides(&shape));
    let n: usize = shape.iter().product();
    let idx = (0..n).map(|flat| (0..r).map(|i| sel[i][(flat / os[i]) % shape[i]] * xs[i]).sum());
    Ok(CTensor { data: t.data.pick(idx), shape })
}

fn where_(cond: &CTensor, a: &CTensor, b: &CTensor) -> Result<CTensor, String> {
    let shape = consts::broadcast_shape(&consts::broadcast_shape(&cond.shape, &a.shape)?, &b.shape)?;
    let (ic, ia, ib) = (
        consts::broadcast_indices(&cond.shape, &shape),
        consts::broadcast_indices(&a.shape, &shape),
        consts::broadcast_indices(&b.shape, &shape),
    );
    let cv = cond.floats();
    // Both branches in one array: index i of `a`, or a.len() + i of `b`.
    let joined = match (&a.data, &b.data) {
        (CData::I(x), CData::I(y)) => CData::I([x.as_slice(), y].concat()),
        _ => CData::F([a.floats(), b.floats()].concat()),
    };
    let n: usize = shape.iter().product();
    let idx = (0..n).map(|k| if cv[ic[k]] != 0.0 { ia[k] } else { a.len() + ib[k] });
    Ok(CTensor { data: joined.pick(idx), shape })
}

/// Trilu (the causal masks exporters build): in each trailing matrix, the elements on and above
/// diagonal `k` (`upper`) or on and below it, zeros elsewhere.
fn trilu(t: &CTensor, k: i64, upper: bool) -> Result<CTensor, String> {
    let r = t.shape.len();
    if r < 2 {
        return Err(format!("Trilu needs a rank of at least 2, got shape {:?}", t.shape));
    }
    let (rows, cols) = (t.shape[r - 2], t.shape[r - 1]);
    let keep = |flat: usize| {
        let (i, j) = ((flat / cols % rows) as i64, (flat % cols) as i64);
        if upper { j - i >= k } else { j - i <= k }
    };
    let data = match &t.data {
        CData::F(v) => CData::F(v.iter().enumerate().map(|(f, &x)| if keep(f) { x } else { 0.0 }).collect()),
        CData::I(v) => CData::I(v.iter().enumerate().map(|(f, &x)| if keep(f) { x } else { 0 }).collect()),
    };
    Ok(CTensor { data, shape: t.shape.clone() })
}

fn range(start: &CTensor, limit: &CTensor, delta: &CTensor) -> Result<CTensor, String> {
    let f = |t: &CTensor| t.scalar().map(f64::from).ok_or("Range operands must be scalars");
    let (s, l, d) = (f(start)?, f(limit)?, f(delta)?);
    if d == 0.0 {
        return Err("Range delta 0".into());
    }
    let n = ((l - s) / d).ceil().max(0.0) as usize;
    if n > 1 << 24 {
        return Err(format!("Range of {n} elements is too large"));
    }
    Ok(match (&start.data, &delta.data) {
        (CData::I(a), CData::I(b)) => CTensor::i64(vec![n], (0..n as i64).map(|i| a[0] + i * b[0]).collect()),
        _ => CTensor::f32(vec![n], (0..n).map(|i| (s + i as f64 * d) as f32).collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ONNX's Mod (the node tests' values): the remainder takes the divisor's sign, or with
    /// `fmod = 1` the dividend's.
    #[test]
    fn mod_follows_the_divisors_sign_and_fmod_the_dividends() {
        let pairs = [(-4i64, 7i64), (7, -3), (-7, 3), (9, 3), (5, 8)];
        let got: Vec<i64> = pairs.iter().map(|&(a, b)| mod_i(a, b).unwrap()).collect();
        assert_eq!(got, vec![3, -2, 2, 0, 5]);
        let fmod: Vec<i64> = pairs.iter().map(|&(a, b)| a.checked_rem(b).unwrap()).collect();
        assert_eq!(fmod, vec![-4, 1, -1, 0, 5]);
        assert_eq!(mod_f(-4.5, 2.0), 1.5);
        assert_eq!(mod_f(4.5, -2.0), -1.5);
        assert!(mod_i(1, 0).is_none());
    }
}
