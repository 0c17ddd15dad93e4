//! `Equal` and `Where` on what the client knows alone (and `IsNaN`/`IsInf`, false on Veil's
//! finite values, with the `Where` that picks a branch by them): a padding mask computed from its input
//! (`attention_mask == 0`, then `Where(mask, −∞, 0)` added to the attention scores, as torch's
//! `src_key_padding_mask` and Hugging Face encoders write it). Elsewhere these ops are folded on
//! constants only.
//! - `Equal(x, c)`, `x` integer-typed and known to the client, `c` one integer: `[x = c]` is
//!   `one_hot(2·(x − c))` with one column (an even operand lights column 0 only at 0, and
//!   `one_hot` reads an integer off by less than one half exactly), all on the client's
//!   plaintext: nothing is shared and nothing is lost.
//! - `Where(cond, a, b)`, `cond` such a boolean, `a` and `b` constants that broadcast to its
//!   shape: `b + cond·(a − b)`,
//!   an affine map with the server's constants (the client shares `cond`, the map is local).
//!   A branch below [`MASKED`] (`−∞`, float32's lowest: a mask) counts as `MASKED`, whose
//!   exponential in a Softmax is 0 in float and fixed point alike; `+∞` or NaN is refused.

use veil_ir::{Domain, Op, ValueId};

use super::shared_softmax::MASKED;
use crate::onnx::consts::CTensor;
use crate::onnx::import::{Ctx, Importer, Sym};

/// The one element of constant `c`, or why not.
fn single(c: &CTensor, what: &str) -> Result<f64, String> {
    match c.floats()[..] {
        [v] => Ok(v as f64),
        _ => Err(format!("{what} must be a single constant when the condition is computed (got shape {:?})", c.shape)),
    }
}

/// `[x = c]` on the client's plaintext, named `out`: `one_hot(2·(x − c))` with one column.
fn equals(imp: &mut Importer, ctx: &Ctx, x: ValueId, c: f64, out: &str) -> Result<ValueId, String> {
    let two = imp.public(&format!("{out}.two"), vec![], vec![2.0]);
    let shift = imp.public(&format!("{out}.shift"), vec![], vec![(-2.0 * c) as f32]);
    let d = imp.add(
        &ctx.name,
        &format!("{out}/twice_difference"),
        Op::Affine { scale: Some(two), shift: Some(shift) },
        &[x],
    )?;
    let hot = imp.add(&ctx.name, &format!("{out}/one_hot"), Op::OneHot { depth: 1 }, &[d])?;
    let shape = imp.ty(x).shape.clone();
    imp.add(&ctx.name, out, Op::Reshape { shape }, &[hot])
}

/// `scale·x + shift` with public constants (booleans' arithmetic on the client's plaintext),
/// `x` first broadcast with the constants' shapes.
fn public_affine(
    imp: &mut Importer,
    ctx: &Ctx,
    x: ValueId,
    scale: CTensor,
    shift: CTensor,
    out: &str,
) -> Result<ValueId, String> {
    let mut xs = imp.ty(x).shape.clone();
    let wide =
        crate::onnx::consts::broadcast_shape(&crate::onnx::consts::broadcast_shape(&scale.shape, &shift.shape)?, &xs)?;
    let x = if wide != xs {
        let indices = crate::onnx::consts::broadcast_indices(&xs, &wide).into_iter().map(|i| i as u32).collect();
        xs = wide.clone();
        imp.add(&ctx.name, &format!("{out}/broadcast"), Op::Select { indices, shape: wide }, &[x])?
    } else {
        x
    };
    for t in [&scale, &shift] {
        if crate::onnx::consts::broadcast_shape(&t.shape, &xs)? != xs {
            return Err(format!("a constant of shape {:?} must broadcast to the computed operand's {xs:?}", t.shape));
        }
    }
    let scale = imp.public(&format!("{out}.scale"), scale.shape.clone(), scale.floats());
    let shift = imp.public(&format!("{out}.shift"), shift.shape.clone(), shift.floats());
    imp.add(&ctx.name, out, Op::Affine { scale: Some(scale), shift: Some(shift) }, &[x])
}

/// Operand `i`, an integer-typed value known to the client alone (token ids, a mask), or why
/// not.
pub fn client_int(imp: &mut Importer, ctx: &Ctx, s: &Sym, i: usize) -> Result<ValueId, String> {
    let name = ctx.node.input.get(i).map_or("", String::as_str);
    if imp.int_type(name).is_none() {
        return Err(format!(
            "{name:?} must be integer-typed and known to the client (token ids or a mask from its input), not a real"
        ));
    }
    let v = imp.value(s)?;
    if imp.g.values[v].domain != Domain::Client {
        return Err(format!(
            "{name:?} must be known to the client alone (computed from its input with public operands)"
        ));
    }
    Ok(v)
}

/// `Equal` with a computed operand; see the module doc.
pub fn equal(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let (x, c, i) = match (inputs.first(), inputs.get(1)) {
        (Some(Some(Sym::Const(c))), Some(Some(x))) => (x, c, 1),
        (Some(Some(x)), Some(Some(Sym::Const(c)))) => (x, c, 0),
        _ => return Err("supported on a computed value and a constant, not on two computed values".into()),
    };
    let c = single(c, "the compared constant")?;
    if c.fract() != 0.0 || !c.is_finite() {
        return Err(format!("the compared constant {c} must be an integer"));
    }
    let x = client_int(imp, ctx, x, i)?;
    Ok(vec![Sym::Value(equals(imp, ctx, x, c, ctx.out(0))?)])
}

/// `Cast` to BOOL of the client's integers: `x ≠ 0`, that is `1 − [x = 0]`.
pub fn nonzero(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let x = inputs.first().and_then(Option::as_ref).ok_or("input 0 is required")?;
    let x = client_int(imp, ctx, x, 0)?;
    let out = ctx.out(0);
    let zero = equals(imp, ctx, x, 0.0, &format!("{out}/is_zero"))?;
    let (neg, one) = (CTensor::f32(vec![], vec![-1.0]), CTensor::f32(vec![], vec![1.0]));
    Ok(vec![Sym::Value(public_affine(imp, ctx, zero, neg, one, out)?)])
}

/// `Not`, `And`, `Or`, `Xor` of the client's booleans (with each other or with constant ones,
/// as a causal pattern): `1 − a`; `[a + b = 2]`, `1 − [a + b = 0]`, `[a + b = 1]`; with a
/// constant `k`, the affine maps `k·a`, `(1 − k)·a + k`, `(1 − 2k)·a + k` (public: `k` is the
/// mask's structure).
pub fn logic(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let op = ctx.node.op_type();
    let out = ctx.out(0);
    let arg = |i: usize| inputs.get(i).and_then(Option::as_ref).ok_or(format!("input {i} is required"));
    let map = |k: &CTensor, f: fn(f32) -> f32| CTensor::f32(k.shape.clone(), k.floats().into_iter().map(f).collect());
    if op == "Not" {
        let a = client_int(imp, ctx, arg(0)?, 0)?;
        let (neg, one) = (CTensor::f32(vec![], vec![-1.0]), CTensor::f32(vec![], vec![1.0]));
        return Ok(vec![Sym::Value(public_affine(imp, ctx, a, neg, one, out)?)]);
    }
    let (a, b) = (arg(0)?, arg(1)?);
    let (x, k, i) = match (a, b) {
        (Sym::Const(k), x) => (x, Some(k), 1),
        (x, Sym::Const(k)) => (x, Some(k), 0),
        (x, _) => (x, None, 0),
    };
    let x = client_int(imp, ctx, x, i)?;
    let v = match k {
        Some(k) => {
            let k = map(k, |v| f32::from(v != 0.0));
            let (scale, shift) = match op {
                "And" => (k.clone(), CTensor::f32(vec![], vec![0.0])),
                "Or" => (map(&k, |v| 1.0 - v), k),
                _ => (map(&k, |v| 1.0 - 2.0 * v), k),
            };
            public_affine(imp, ctx, x, scale, shift, out)?
        }
        None => {
            let y = client_int(imp, ctx, b, 1)?;
            let sum = imp.add(&ctx.name, &format!("{out}/sum"), Op::Add, &[x, y])?;
            match op {
                "And" => equals(imp, ctx, sum, 2.0, out)?,
                "Xor" => equals(imp, ctx, sum, 1.0, out)?,
                _ => {
                    let none = equals(imp, ctx, sum, 0.0, &format!("{out}/none"))?;
                    let (neg, one) = (CTensor::f32(vec![], vec![-1.0]), CTensor::f32(vec![], vec![1.0]));
                    public_affine(imp, ctx, none, neg, one, out)?
                }
            }
        }
    };
    Ok(vec![Sym::Value(v)])
}

/// The shape of operand `s`.
fn shape_of(imp: &mut Importer, s: &Sym) -> Result<Vec<usize>, String> {
    match s {
        Sym::Const(t) => Ok(t.shape.clone()),
        s => {
            let v = imp.value(s)?;
            Ok(imp.ty(v).shape.clone())
        }
    }
}

/// `IsNaN` or `IsInf` of a computed value: false everywhere. Veil's values are finite (an input
/// holding NaN or ∞ is refused, constants are clamped or refused, and a fully masked Softmax
/// row is uniform, not NaN), so torch's guard `Where(IsNaN(softmax), 0, softmax)` is the
/// Softmax.
pub fn never(imp: &mut Importer, _: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let x = match inputs.first() {
        Some(Some(Sym::Const(c))) => {
            return Err(format!("a constant operand (shape {:?}) is folded, not lowered", c.shape));
        }
        Some(Some(x)) => imp.value(x)?,
        _ => return Err("input 0 is required".into()),
    };
    let shape = imp.ty(x).shape.clone();
    let n = shape.iter().product();
    Ok(vec![Sym::Const(CTensor::i64(shape, vec![0; n]))])
}

/// `Where` with a computed operand: a constant condition picks a branch, a computed one is a
/// mask (see the module doc).
pub fn where_(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    if let Some(Some(Sym::Const(c))) = inputs.first() {
        let all = |v: bool| c.floats().iter().all(|&x| (x != 0.0) == v);
        let pick = if all(true) {
            1
        } else if all(false) {
            2
        } else {
            0
        };
        let branch = inputs.get(pick).and_then(Option::as_ref).filter(|_| pick > 0);
        let Some(branch) = branch else {
            return Err("a constant condition mixing true and false between computed values is not supported".into());
        };
        let other = inputs.get(3 - pick).and_then(Option::as_ref).ok_or("three inputs are required")?;
        let out = crate::onnx::consts::broadcast_shape(&c.shape, &shape_of(imp, other)?)?;
        let out = crate::onnx::consts::broadcast_shape(&out, &shape_of(imp, branch)?)?;
        if shape_of(imp, branch)? != out {
            return Err(format!("the chosen branch must have the result's shape {out:?} (no broadcast)"));
        }
        return Ok(vec![branch.clone()]);
    }
    let (Some(Some(cond)), Some(Some(Sym::Const(a))), Some(Some(Sym::Const(b)))) =
        (inputs.first(), inputs.get(1), inputs.get(2))
    else {
        return Err(
            "supported with a computed condition and two constant branches (a mask), not computed branches".into()
        );
    };
    let cond = client_int(imp, ctx, cond, 0)?;
    // Masks: below MASKED counts as MASKED; +∞ and NaN have no encoding.
    let clamped = |c: &CTensor, what: &str| -> Result<CTensor, String> {
        let data = c.floats();
        if let Some(v) = data.iter().find(|v| v.is_nan() || **v == f32::INFINITY) {
            return Err(format!("the {what} branch holds {v}, which no fixed-point value encodes"));
        }
        Ok(CTensor::f32(c.shape.clone(), data.iter().map(|&v| v.max(MASKED)).collect()))
    };
    let (a, b) = (clamped(a, "true")?, clamped(b, "false")?);
    let d = crate::onnx::consts::binary(&a, &b, |x, y| x - y, |x, y| x.checked_sub(y))?;
    let b = crate::onnx::consts::binary(&a, &b, |_, y| y, |_, y| Some(y))?;
    let cond_shape = imp.ty(cond).shape.clone();
    if crate::onnx::consts::broadcast_shape(&d.shape, &cond_shape)? != cond_shape {
        return Err(format!(
            "the branches (shape {:?}) must broadcast to the condition's shape {cond_shape:?} when it is computed",
            d.shape
        ));
    }
    let (shape, d, b) = (d.shape.clone(), d.floats(), b.floats());
    let out = ctx.out(0);
    let scale = d.iter().any(|&v| v != 1.0).then(|| imp.weight(&format!("{out}.scale"), shape.clone(), d));
    let shift = b.iter().any(|&v| v != 0.0).then(|| imp.weight(&format!("{out}.shift"), shape, b));
    if scale.is_none() && shift.is_none() {
        return Ok(vec![Sym::Value(cond)]);
    }
    Ok(vec![Sym::Value(imp.add(&ctx.name, out, Op::Affine { scale, shift }, &[cond])?)])
}
