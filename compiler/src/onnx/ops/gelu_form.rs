//! Gelu's written-out forms, as exporters below opset 20 (torch's TorchScript exporter,
//! Hugging Face models, the ONNX function bodies) write them, recognised into one `pl_gelu`:
//! - `0.5·x·(1 + Erf(x/√2))` (the exact Gelu), and
//! - `0.5·x·(1 + Tanh(√(2/π)·(x + 0.044715·x³)))` (the tanh form),
//!
//! in any order of the scalar factors and sums. The inner function `f(x)` (`Erf(x/√2)` or that
//! `Tanh`) becomes a pending [`Sym::GeluInner`] `a + b·f(x)`; scalar `Add`/`Sub`/`Mul`/`Div`
//! update `a` and `b`, and a `Mul` by `k·x` (the same `x`) with `a = b` is `2ka·Gelu(x)`. Read any
//! other way, the tanh form falls back to the generic `Tanh` (a piecewise-linear sigmoid), and an
//! `Erf` is refused by name: Veil has no protocol for `erf` alone.

use veil_ir::{Op, ValueId};

use super::{arg, nn};
use crate::onnx::import::{Ctx, Importer, Sym};

/// `1/√2`, the argument's scale in the exact form.
const ERF_SCALE: f64 = std::f64::consts::FRAC_1_SQRT_2;
/// `√(2/π)` and the cubic's coefficient in the tanh form.
const TANH_SCALE: f64 = 0.797_884_560_802_865_4;
const TANH_CUBIC: f64 = 0.044_715;

/// Why an `Erf` that is not Gelu's is refused.
pub const ERF_ALONE: &str = "not supported: an Erf outside Gelu's written-out form 0.5·x·(1 + Erf(x/√2)) (which \
compiles to one pl_gelu circuit); Veil has no two-party protocol for erf on its own";

/// Whether `got` is `want` up to the rounding of an exporter's float32 constants.
fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-5 * want.abs().max(1e-3)
}

/// The base `x` of a pending polynomial with exactly these coefficients (up to rounding).
fn poly_base(s: &Sym, want: &[f64]) -> Option<ValueId> {
    let Sym::Poly { base, coeffs, .. } = s else { return None };
    let mut c = coeffs.clone();
    c.resize(want.len().max(c.len()), 0.0);
    let ok = c.len() == want.len() && c.iter().zip(want).all(|(&g, &w)| if w == 0.0 { g == 0.0 } else { close(g, w) });
    ok.then_some(*base)
}

fn pending(ctx: &Ctx, base: ValueId, a: f64, b: f64, tanh: bool, arg: Option<Sym>) -> Vec<Sym> {
    let (node, out) = (ctx.name.clone(), ctx.out(0).to_string());
    vec![Sym::GeluInner { base, a, b, tanh, arg: arg.map(Box::new), node, out }]
}

/// `Erf`: of `x/√2` (a pending `x · 0.7071…`) it is Gelu's inner function; otherwise refused.
pub fn erf(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let _ = imp;
    let base = poly_base(arg(inputs, 0)?, &[0.0, ERF_SCALE]).ok_or(ERF_ALONE)?;
    Ok(pending(ctx, base, 0.0, 1.0, false, None))
}

/// `Tanh` of `√(2/π)·(x + 0.044715·x³)` becomes Gelu's pending inner function (keeping its
/// operand for the fallback); any other `Tanh` is the generic one ([`nn::tanh`]).
pub fn tanh(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let x = arg(inputs, 0)?;
    match poly_base(x, &[0.0, TANH_SCALE, 0.0, TANH_SCALE * TANH_CUBIC]) {
        Some(base) => Ok(pending(ctx, base, 0.0, 1.0, true, Some(x.clone()))),
        None => nn::tanh(imp, ctx, inputs),
    }
}

/// Materialises a pending inner function read outside Gelu's form ([`Importer::value`] calls
/// this once per ONNX value): the tanh form's `Tanh` and
/// then `a + b·t` as public affines; an `Erf` is refused ([`ERF_ALONE`]).
pub fn materialize(imp: &mut Importer, inner: &Sym) -> Result<ValueId, String> {
    let Sym::GeluInner { a, b, tanh: true, arg: Some(x), node, out, .. } = inner else {
        return Err(ERF_ALONE.into());
    };
    let x = imp.value(x)?;
    let t = nn::tanh_value(imp, node, &format!("{out}/tanh"), x)?;
    let (scale, shift) = (
        imp.public(&format!("{node}.b"), vec![], vec![*b as f32]),
        imp.public(&format!("{node}.a"), vec![], vec![*a as f32]),
    );
    imp.add(node, out, Op::Affine { scale: Some(scale), shift: Some(shift) }, &[t])
}

/// `op` (`Add`, `Sub` or `Mul`; a `Div` by a constant already a `Mul`) with a pending inner
/// function as an operand: the updated pending value, or Gelu; `None` when neither operand is
/// one. Any other combination materialises the operand ([`materialize`]) and `then` goes on.
pub fn combine(
    imp: &mut Importer,
    ctx: &Ctx,
    op: &str,
    a: &Sym,
    b: &Sym,
    then: impl FnOnce(&mut Importer, &Sym, &Sym) -> Result<Vec<Sym>, String>,
) -> Option<Result<Vec<Sym>, String>> {
    let (inner, other, inner_first) = match (a, b) {
        (i @ Sym::GeluInner { .. }, o) => (i, o, true),
        (o, i @ Sym::GeluInner { .. }) => (i, o, false),
        _ => return None,
    };
    let Sym::GeluInner { base, a: c0, b: c1, tanh, arg, .. } = inner else { unreachable!("matched above") };
    let scalar = match other {
        Sym::Const(c) if c.shape.len() <= imp.ty(*base).rank() => c.scalar().map(f64::from),
        _ => None,
    };
    let updated = match (op, scalar) {
        ("Mul", Some(s)) => Some((c0 * s, c1 * s)),
        ("Add", Some(s)) => Some((c0 + s, *c1)),
        ("Sub", Some(s)) if inner_first => Some((c0 - s, *c1)),
        ("Sub", Some(s)) => Some((s - c0, -c1)),
        _ => None,
    };
    if let Some((a, b)) = updated {
        return Some(Ok(pending(ctx, *base, a, b, *tanh, arg.as_deref().cloned())));
    }
    // `k·x · (a + a·f(x))` is `2ka · Gelu(x)`.
    let k = match other {
        Sym::Value(v) if v == base => Some(1.0),
        Sym::Poly { base: pb, coeffs, .. }
            if pb == base && coeffs.iter().enumerate().all(|(i, &c)| i == 1 || c == 0.0) =>
        {
            coeffs.get(1).copied()
        }
        _ => None,
    };
    if let (Some(k), "Mul") = (k, op)
        && *c0 != 0.0
        && close(*c1, *c0)
    {
        return Some(gelu(imp, ctx, *base, *tanh, 2.0 * k * c0));
    }
    let materialized = imp.value(inner).map(Sym::Value);
    Some(materialized.and_then(|m| if inner_first { then(imp, &m, other) } else { then(imp, other, &m) }))
}

/// `scale · Gelu(x)` as a `pl_gelu` node (then a pending scalar product when `scale ≠ 1`).
fn gelu(imp: &mut Importer, ctx: &Ctx, x: ValueId, tanh: bool, scale: f64) -> Result<Vec<Sym>, String> {
    let out = ctx.out(0);
    if close(scale, 1.0) {
        return Ok(vec![Sym::Value(imp.add(&ctx.name, out, Op::PlGelu { tanh }, &[x])?)]);
    }
    let g = imp.add(&ctx.name, &format!("{out}/gelu"), Op::PlGelu { tanh }, &[x])?;
    Ok(vec![Sym::Poly { base: g, coeffs: vec![0.0, scale], node: ctx.name.clone(), out: out.to_string() }])
}
