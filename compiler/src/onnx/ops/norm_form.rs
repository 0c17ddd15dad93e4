//! LayerNormalization written out, as torch's TorchScript exporter below opset 17 and many
//! Hugging Face exports write it, recognised during import into LayerNormalization's lowering
//! ([`super::norm::normalise`]):
//!
//! `μ = ReduceMean(x)`, `d = x − μ`, `v = ReduceMean(d²)` (`Pow(d, 2)` or `Mul(d, d)`) or
//! `v = ReduceMean(x²) − μ²` (as ONNX's own function bodies write it), `s = Sqrt(v + ε)`, then
//! `d / s` or `d · Reciprocal(s)` (then `Mul γ`, `Add β`, ordinary per-channel affines), every
//! mean over the same trailing axes with `keepdims`. `Reciprocal(s)` read otherwise (the
//! function bodies' `InvStdDev` output) is the inverse standard deviation on its own, from the
//! same circuit.
//!
//! The statistics lower as ordinary nodes when they are read (a mean and a centred value are
//! linear, the squares a polynomial); the importer remembers what each one is ([`Part`]), and
//! `Sqrt` of `v + ε` becomes a pending [`Sym::NormStd`]. Dividing the same `d` by it (or
//! multiplying by its `Reciprocal`) is `normalise(x)`, computed from `x` alone, so the written-out
//! statistics are left unread and `fold_constants` removes them. Any other reader of the pending
//! value, and any other `Sqrt` or `Reciprocal` of a secret value, is refused by name.

use veil_ir::ValueId;

use super::{arg, norm};
use crate::onnx::consts::CTensor;
use crate::onnx::import::{Ctx, Importer, Sym};

/// Why a square root of a secret value outside the written-out form is refused.
pub const SQRT_ALONE: &str = "not supported: a Sqrt of a secret value outside LayerNormalization's written-out form \
(ReduceMean, Sub, Pow or Mul, ReduceMean, Add ε, Sqrt, then Div, or Reciprocal and Mul, over the same trailing axes), \
which compiles to the secret inverse square root; Veil has no two-party protocol for a square root on its own";

/// Why a reciprocal of a secret value outside the written-out form is refused.
pub const RECIPROCAL_ALONE: &str = "not supported: a Reciprocal of a secret value other than the standard deviation \
of LayerNormalization's written-out form (ReduceMean, Sub, Pow or Mul, ReduceMean, Add ε, Sqrt, Reciprocal, Mul); \
Veil has no two-party protocol for a division by a secret value";

/// What an IR value of the written-out form is, over the axes of `x` from `axis` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// `ReduceMean(x)` with `keepdims`.
    Mean { x: ValueId, axis: usize },
    /// `x − ReduceMean(x)`.
    Centred { x: ValueId, axis: usize },
    /// `ReduceMean(x²)`.
    MeanSquare { x: ValueId, axis: usize },
    /// `ReduceMean((x − ReduceMean(x))²)` or `ReduceMean(x²) − ReduceMean(x)²`.
    Variance { x: ValueId, axis: usize },
}

/// Records what `ReduceMean` output `out` is, when it reduces the computed `operand` (the IR
/// value `x`, of shape `shape`) over the trailing `axes` with `keepdims`: a mean of `x`, the
/// variance when `operand` is the square of a centred value over the same axes, or the mean of
/// the square of another value.
pub fn note_mean(imp: &mut Importer, operand: &Sym, x: ValueId, shape: &[usize], axes: &[usize], out: ValueId) {
    let trailing =
        !axes.is_empty() && axes.windows(2).all(|w| w[1] == w[0] + 1) && axes.last() == Some(&(shape.len() - 1));
    if !trailing || axes.iter().map(|&a| shape[a]).product::<usize>() < 2 {
        return;
    }
    let axis = axes[0];
    let part = match operand {
        Sym::Poly { base, coeffs, .. } if is_square(coeffs) => match imp.norm_parts.get(base) {
            Some(&Part::Centred { x, axis: a }) if a == axis => Part::Variance { x, axis },
            Some(_) => return,
            None => Part::MeanSquare { x: *base, axis },
        },
        _ => Part::Mean { x, axis },
    };
    imp.norm_parts.insert(out, part);
}

/// Records what `out = a − b` is (`b_sym` is `b` as the node read it): centred when `b` is the
/// mean of `a`, the variance when `a` is the mean of a square and `b` the square of its mean.
pub fn note_sub(imp: &mut Importer, a: ValueId, b: ValueId, b_sym: &Sym, out: ValueId) {
    let part = match (imp.norm_parts.get(&a), imp.norm_parts.get(&b), b_sym) {
        (_, Some(&Part::Mean { x, axis }), _) if x == a => Part::Centred { x, axis },
        (Some(&Part::MeanSquare { x, axis }), _, Sym::Poly { base, coeffs, .. })
            if is_square(coeffs) && imp.norm_parts.get(base) == Some(&Part::Mean { x, axis }) =>
        {
            Part::Variance { x, axis }
        }
        _ => return,
    };
    imp.norm_parts.insert(out, part);
}

fn is_square(coeffs: &[f64]) -> bool {
    let mut c = coeffs.to_vec();
    while c.last() == Some(&0.0) {
        c.pop();
    }
    c == [0.0, 0.0, 1.0]
}

/// `Sqrt`: of a written-out variance plus a constant `ε ≥ 0`, the pending standard deviation;
/// otherwise refused ([`SQRT_ALONE`]). Constants fold before this is reached.
pub fn sqrt(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let (v, eps) = match arg(inputs, 0)? {
        Sym::Value(v) => (*v, 0.0),
        Sym::Poly { base, coeffs, .. } if coeffs.len() == 2 && coeffs[1] == 1.0 => (*base, coeffs[0]),
        _ => return Err(SQRT_ALONE.into()),
    };
    let Some(&Part::Variance { x, axis }) = imp.norm_parts.get(&v) else { return Err(SQRT_ALONE.into()) };
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(format!("the ε added before the square root must be finite and ≥ 0, got {eps}"));
    }
    let (node, out) = (ctx.name.clone(), ctx.out(0).to_string());
    Ok(vec![Sym::NormStd { x, axis, eps, inverse: false, node, out }])
}

/// `Reciprocal`: of a constant, folded; of the pending standard deviation, its inverse;
/// otherwise refused ([`RECIPROCAL_ALONE`]).
pub fn reciprocal(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let _ = imp;
    match arg(inputs, 0)? {
        Sym::Const(c) => {
            Ok(vec![Sym::Const(CTensor::f32(c.shape.clone(), c.floats().iter().map(|x| 1.0 / x).collect()))])
        }
        Sym::NormStd { x, axis, eps, inverse: false, .. } => {
            let (node, out) = (ctx.name.clone(), ctx.out(0).to_string());
            Ok(vec![Sym::NormStd { x: *x, axis: *axis, eps: *eps, inverse: true, node, out }])
        }
        _ => Err(RECIPROCAL_ALONE.into()),
    }
}

/// `op` (`Div` or `Mul` as the node writes it, or `Add`, `Sub`) with the pending standard
/// deviation as an operand: the normalised `x` for `d / s` or `d · (1/s)` with `d` the same
/// centred value; otherwise the operand computed on its own (the reciprocal; the root is
/// refused) and `then` goes on with it. `None` when neither operand is pending.
pub fn combine(
    imp: &mut Importer,
    ctx: &Ctx,
    op: &str,
    a: &Sym,
    b: &Sym,
    then: impl FnOnce(&mut Importer, &Sym, &Sym) -> Result<Vec<Sym>, String>,
) -> Option<Result<Vec<Sym>, String>> {
    let (std, other, std_second) = match (a, b) {
        (o, s @ Sym::NormStd { .. }) => (s, o, true),
        (s @ Sym::NormStd { .. }, o) => (s, o, false),
        _ => return None,
    };
    let Sym::NormStd { x, axis, eps, inverse, .. } = std else { unreachable!("matched above") };
    let applies = match (op, inverse) {
        ("Div", false) => std_second,
        ("Mul", true) => true,
        _ => false,
    };
    let centred = match other {
        Sym::Value(d) => imp.norm_parts.get(d).copied(),
        _ => None,
    };
    if !applies || centred != Some(Part::Centred { x: *x, axis: *axis }) {
        let m = match imp.value(std) {
            Ok(v) => Sym::Value(v),
            Err(e) => return Some(Err(e)),
        };
        return Some(if std_second { then(imp, other, &m) } else { then(imp, &m, other) });
    }
    Some(norm::normalise(imp, &ctx.name, ctx.out(0), *x, *axis, *eps as f32).map(|n| vec![Sym::Value(n)]))
}
