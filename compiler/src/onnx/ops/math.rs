//! Gemm, MatMul and elementwise arithmetic. Products with a constant become `dense` or `affine`;
//! chains of `Mul`/`Add`/`Sub`/`Div`/`Neg` (and `Pow` by a small integer) over one computed
//! value become one `poly`.

use veil_ir::{Op, ValueId, check_broadcast};

use super::{arg, batched, opt_const};
use crate::onnx::consts::{self, CTensor};
use crate::onnx::import::{Ctx, Importer, MAX_POLY_DEGREE, Sym};

/// `w` (`[K, N]`) as a `[N, K]` dense weight scaled by `alpha`.
fn dense_weight(w: &CTensor, alpha: f32) -> CTensor {
    let t = consts::transpose(w, &[1, 0]);
    CTensor::f32(t.shape.clone(), t.floats().iter().map(|x| x * alpha).collect())
}

fn transposed(imp: &mut Importer, ctx: &Ctx, v: ValueId, what: &str) -> Result<ValueId, String> {
    let r = imp.ty(v).rank();
    if r < 2 {
        return Err(format!("{what} must have rank ≥ 2"));
    }
    let mut perm: Vec<usize> = (0..r).collect();
    perm.swap(r - 2, r - 1);
    imp.add(&ctx.name, &format!("{}/{what}_t", ctx.out(0)), Op::Transpose { perm }, &[v])
}

/// Adds `dense` of `x` with `weight` (`[N, K]`) and an optional bias vector.
fn dense(
    imp: &mut Importer,
    ctx: &Ctx,
    out: &str,
    x: ValueId,
    weight: CTensor,
    bias: Option<Vec<f32>>,
) -> Result<ValueId, String> {
    let n = weight.shape[0];
    let w = imp.weight(&format!("{}.weight", ctx.name), weight.shape.clone(), weight.floats());
    let b = bias.map(|b| imp.weight(&format!("{}.bias", ctx.name), vec![n], b));
    imp.add(&ctx.name, out, Op::Dense { weight: w, bias: b }, &[x])
}

/// `c · beta` folded into a `[N]` bias when it is constant along every other axis of `[M, N]`.
fn as_bias(c: &CTensor, beta: f32, n: usize) -> Option<Vec<f32>> {
    let leading_ones = c.shape.len() <= 2 && c.shape.iter().rev().skip(1).all(|&d| d == 1);
    match c.shape.last() {
        _ if c.len() == 1 => Some(vec![c.floats()[0] * beta; n]),
        Some(&d) if d == n && leading_ones => Some(c.floats().iter().map(|x| x * beta).collect()),
        _ => None,
    }
}

/// Adds `y + shift` with a constant shift broadcast to `y`.
fn shift(imp: &mut Importer, ctx: &Ctx, y: ValueId, c: &CTensor, beta: f32) -> Result<ValueId, String> {
    check_broadcast(&c.shape, &imp.ty(y).shape)?;
    let k = imp.weight(&format!("{}.c", ctx.name), c.shape.clone(), c.floats().iter().map(|x| x * beta).collect());
    imp.add(&ctx.name, ctx.out(0), Op::Affine { scale: None, shift: Some(k) }, &[y])
}

pub fn gemm(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let (ta, tb) = (ctx.attrs.int_or("transA", 0)? != 0, ctx.attrs.int_or("transB", 0)? != 0);
    let (alpha, beta) = (ctx.attrs.float_or("alpha", 1.0)?, ctx.attrs.float_or("beta", 1.0)?);
    let c = opt_const(inputs, 2, "C")?.filter(|_| beta != 0.0);
    match (arg(inputs, 0)?, arg(inputs, 1)?) {
        (a, Sym::Const(b)) if !matches!(a, Sym::Const(_)) => {
            let mut x = imp.value(a)?;
            if imp.ty(x).rank() != 2 || b.shape.len() != 2 {
                return Err("A and B must be 2-D".into());
            }
            if ta {
                x = transposed(imp, ctx, x, "A")?;
            }
            let w = if tb {
                CTensor::f32(b.shape.clone(), b.floats().iter().map(|v| v * alpha).collect())
            } else {
                dense_weight(b, alpha)
            };
            let n = w.shape[0];
            let bias = c.and_then(|c| as_bias(c, beta, n));
            match (c, bias) {
                (Some(c), None) => {
                    let y = dense(imp, ctx, &format!("{}/matmul", ctx.out(0)), x, w, None)?;
                    Ok(vec![Sym::Value(shift(imp, ctx, y, c, beta)?)])
                }
                (_, bias) => Ok(vec![Sym::Value(dense(imp, ctx, ctx.out(0), x, w, bias)?)]),
            }
        }
        (Sym::Const(a), b) => {
            // y = alpha·A'·B' + C, computed as (B'ᵀ · (alpha·A')ᵀ)ᵀ.
            let mut x = imp.value(b)?;
            if imp.ty(x).rank() != 2 || a.shape.len() != 2 {
                return Err("A and B must be 2-D".into());
            }
            if !tb {
                x = transposed(imp, ctx, x, "B")?;
            }
            let a2 = if ta { consts::transpose(a, &[1, 0]) } else { a.clone() };
            let w = CTensor::f32(a2.shape.clone(), a2.floats().iter().map(|v| v * alpha).collect());
            let y = dense(imp, ctx, &format!("{}/matmul_t", ctx.out(0)), x, w, None)?;
            let out = if c.is_some() { format!("{}/matmul", ctx.out(0)) } else { ctx.out(0).to_string() };
            let y = imp.add(&ctx.name, &out, Op::Transpose { perm: vec![1, 0] }, &[y])?;
            Ok(vec![Sym::Value(match c {
                Some(c) => shift(imp, ctx, y, c, beta)?,
                None => y,
            })])
        }
        (a, b) => {
            // Both computed: y = alpha·A'·B' + C.
            let (mut x, mut y) = (imp.value(a)?, imp.value(b)?);
            if imp.ty(x).rank() != 2 || imp.ty(y).rank() != 2 {
                return Err("A and B must be 2-D".into());
            }
            if alpha != 1.0 {
                return Err(format!("alpha = {alpha} with two computed operands is not supported (only 1)"));
            }
            if ta {
                x = transposed(imp, ctx, x, "A")?;
            }
            if tb {
                y = transposed(imp, ctx, y, "B")?;
            }
            let out = if c.is_some() { format!("{}/matmul", ctx.out(0)) } else { ctx.out(0).to_string() };
            let p = super::secret_matmul::secret_matmul(imp, ctx, x, y, &out)?;
            Ok(vec![Sym::Value(match c {
                Some(c) => shift(imp, ctx, p, c, beta)?,
                None => p,
            })])
        }
    }
}

pub fn matmul(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    match (arg(inputs, 0)?, arg(inputs, 1)?) {
        (a, Sym::Const(w)) if !matches!(a, Sym::Const(_)) => {
            let x = imp.value(a)?;
            match w.shape.len() {
                2 => Ok(vec![Sym::Value(dense(imp, ctx, ctx.out(0), x, dense_weight(w, 1.0), None)?)]),
                1 => {
                    let y = dense(imp, ctx, &format!("{}/dot", ctx.out(0)), x, w.reshaped(vec![1, w.len()])?, None)?;
                    let mut shape = imp.ty(y).shape.clone();
                    shape.pop();
                    Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), Op::Reshape { shape }, &[y])?)])
                }
                _ => Ok(vec![Sym::Value(batched::right(imp, ctx, x, w, ctx.out(0))?)]),
            }
        }
        (Sym::Const(a), b) if a.shape.len() == 2 && !matches!(b, Sym::Const(_)) => {
            let x = imp.value(b)?;
            if imp.ty(x).rank() < 2 {
                return Ok(vec![Sym::Value(batched::left(imp, ctx, a, x, ctx.out(0))?)]);
            }
            let xt = transposed(imp, ctx, x, "B")?;
            let y = dense(imp, ctx, &format!("{}/matmul_t", ctx.out(0)), xt, a.clone(), None)?;
            let r = imp.ty(y).rank();
            let mut perm: Vec<usize> = (0..r).collect();
            perm.swap(r - 2, r - 1);
            Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), Op::Transpose { perm }, &[y])?)])
        }
        (Sym::Const(a), b) if a.shape.len() >= 3 && !matches!(b, Sym::Const(_)) => {
            let x = imp.value(b)?;
            Ok(vec![Sym::Value(batched::left(imp, ctx, a, x, ctx.out(0))?)])
        }
        (Sym::Const(a), _) => Err(format!("a rank-{} constant left operand is not supported", a.shape.len())),
        (a, b) => {
            let (x, y) = (imp.value(a)?, imp.value(b)?);
            Ok(vec![Sym::Value(super::secret_matmul::secret_matmul(imp, ctx, x, y, ctx.out(0))?)])
        }
    }
}

/// `s` as a polynomial `(base, coeffs)` if it is computed.
fn as_poly(s: &Sym) -> Option<(ValueId, Vec<f64>)> {
    match s {
        Sym::Value(v) => Some((*v, vec![0.0, 1.0])),
        Sym::Poly { base, coeffs, .. } => Some((*base, coeffs.clone())),
        _ => None,
    }
}

fn poly_out(ctx: &Ctx, base: ValueId, coeffs: Vec<f64>) -> Vec<Sym> {
    vec![Sym::Poly { base, coeffs, node: ctx.name.clone(), out: ctx.out(0).to_string() }]
}

fn poly_add(a: &[f64], b: &[f64], sign: f64) -> Vec<f64> {
    (0..a.len().max(b.len())).map(|i| a.get(i).unwrap_or(&0.0) + sign * b.get(i).unwrap_or(&0.0)).collect()
}

fn poly_mul(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; a.len() + b.len() - 1];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            out[i + j] += x * y;
        }
    }
    out
}

fn degree(c: &[f64]) -> usize {
    c.iter().rposition(|&x| x != 0.0).unwrap_or(0)
}

pub fn neg(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let (base, c) = as_poly(arg(inputs, 0)?).ok_or("operand unavailable")?;
    let _ = imp;
    Ok(poly_out(ctx, base, c.iter().map(|x| -x).collect()))
}

/// Pow of a computed base by a constant exponent that is a whole number from 0 to
/// [`MAX_POLY_DEGREE`] (torch writes `x ** 2` so; its TorchScript exporter below opset 17 also
/// writes LayerNorm's variance with it): the polynomial `x · x · …`, exactly as the `Mul` chain.
/// Other exponents (roots, negative powers) of secret values have no protocol.
pub fn pow(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let _ = imp;
    let (base, p) = as_poly(arg(inputs, 0)?).ok_or("a constant base with a computed exponent is not supported")?;
    let e = super::konst(inputs, 1, "the exponent")?;
    let n =
        e.scalar().filter(|&v| v.fract() == 0.0 && (0.0..=MAX_POLY_DEGREE as f32).contains(&v)).ok_or_else(|| {
            format!(
                "exponent {:?}: only a single whole exponent from 0 to {MAX_POLY_DEGREE} is supported (a polynomial); \
                 other powers of secret values have no two-party protocol",
                e.floats()
            )
        })? as usize;
    let mut coeffs = vec![1.0];
    for _ in 0..n {
        coeffs = poly_mul(&coeffs, &p);
    }
    if degree(&coeffs) > MAX_POLY_DEGREE {
        return Err(format!("polynomial of degree {} exceeds the supported {MAX_POLY_DEGREE}", degree(&coeffs)));
    }
    Ok(poly_out(ctx, base, coeffs))
}

/// Add, Sub, Mul and Div with at least one computed operand.
pub fn arith(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    arith_syms(imp, ctx, arg(inputs, 0)?, arg(inputs, 1)?)
}

/// [`arith`] of the operands `a` and `b`.
fn arith_syms(imp: &mut Importer, ctx: &Ctx, a: &Sym, b: &Sym) -> Result<Vec<Sym>, String> {
    let op = ctx.node.op_type();
    if let Some(r) = super::norm_form::combine(imp, ctx, op, a, b, |imp, a, b| arith_syms(imp, ctx, a, b)) {
        return r;
    }
    // Division only by a constant: a / c = a · (1/c).
    let recip;
    let b = match (op, b) {
        ("Div", Sym::Const(c)) => {
            if c.floats().contains(&0.0) {
                return Err("division by a constant containing zero".into());
            }
            recip = Sym::Const(CTensor::f32(c.shape.clone(), c.floats().iter().map(|x| 1.0 / x).collect()));
            &recip
        }
        ("Div", _) => return Err("division by a computed value is not supported".into()),
        _ => b,
    };
    let op = if op == "Div" { "Mul" } else { op };
    arith_on(imp, ctx, op, a, b)
}

/// Sum (variadic Add) of one or two operands, at least one computed: the operand, or `Add`
/// (the ONNX function bodies of Gelu write `Sum(1, Erf(…))`). More go to `variadic`.
pub fn sum(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    match inputs {
        [Some(a)] => Ok(vec![a.clone()]),
        [Some(a), Some(b)] => arith_on(imp, ctx, "Add", a, b),
        _ => Err(format!("Sum of {} operands: only one or two are supported (write Add)", inputs.len())),
    }
}

/// `v` broadcast to the shape it has with a constant of shape `c` (numpy's rule), where the
/// constant has more axes or stretches one of `v`'s (torch's dynamo export adds a `[1, 1, H]`
/// bias to a `[1, H]` state): a reshape when only leading ones are added, else a static
/// `select`. Unchanged otherwise; an incompatible shape is left to the caller's check.
fn broadcast_to_constant(imp: &mut Importer, ctx: &Ctx, v: ValueId, c: &[usize]) -> Result<ValueId, String> {
    let shape = imp.ty(v).shape.clone();
    let Ok(target) = consts::broadcast_shape(c, &shape) else { return Ok(v) };
    if target == shape {
        return Ok(v);
    }
    let n = super::moved_elements(&target, "the broadcast operand")?;
    let out = format!("{}/broadcast", ctx.out(0));
    if n == shape.iter().product::<usize>() {
        return imp.add(&ctx.name, &out, Op::Reshape { shape: target }, &[v]);
    }
    let indices = consts::broadcast_indices(&shape, &target).into_iter().map(|i| i as u32).collect();
    imp.add(&ctx.name, &out, Op::Select { indices, shape: target }, &[v])
}

/// [`arith`] after a division by a constant became a product: `op` is `Add`, `Sub` or `Mul`.
fn arith_on(imp: &mut Importer, ctx: &Ctx, op: &str, a: &Sym, b: &Sym) -> Result<Vec<Sym>, String> {
    if let Some(r) = super::gelu_form::combine(imp, ctx, op, a, b, |imp, a, b| arith_on(imp, ctx, op, a, b)) {
        return r;
    }
    match (a, b) {
        (Sym::Const(c), x) | (x, Sym::Const(c)) => {
            let const_first = matches!(a, Sym::Const(_));
            let (base, p) = as_poly(x).ok_or("operand unavailable")?;
            let rank = imp.ty(base).rank();
            if let Some(s) = c.scalar().filter(|_| c.shape.len() <= rank) {
                let s = s as f64;
                let coeffs = match op {
                    "Mul" => p.iter().map(|v| v * s).collect(),
                    "Add" => poly_add(&p, &[s], 1.0),
                    _ if const_first => poly_add(&[s], &p, -1.0),
                    _ => poly_add(&p, &[s], -1.0),
                };
                return Ok(poly_out(ctx, base, coeffs));
            }
            let v = imp.value(x)?;
            let v = broadcast_to_constant(imp, ctx, v, &c.shape)?;
            check_broadcast(&c.shape, &imp.ty(v).shape)
                .map_err(|e| format!("{e}: a constant operand may not change the computed operand's shape"))?;
            let mut k = |suffix: &str, f: &dyn Fn(f32) -> f32| {
                imp.weight(&format!("{}.{suffix}", ctx.name), c.shape.clone(), c.floats().into_iter().map(f).collect())
            };
            let (scale, shift) = match op {
                "Mul" => (Some(k("scale", &|x| x)), None),
                "Add" => (None, Some(k("shift", &|x| x))),
                _ if const_first => (Some(k("scale", &|_| -1.0)), Some(k("shift", &|x| x))),
                _ => (None, Some(k("shift", &|x| -x))),
            };
            Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), Op::Affine { scale, shift }, &[v])?)])
        }
        (x, y) => {
            let ((bx, px), (by, py)) =
                (as_poly(x).ok_or("operand unavailable")?, as_poly(y).ok_or("operand unavailable")?);
            if bx == by {
                let coeffs = match op {
                    "Mul" => poly_mul(&px, &py),
                    "Add" => poly_add(&px, &py, 1.0),
                    _ => poly_add(&px, &py, -1.0),
                };
                if degree(&coeffs) > MAX_POLY_DEGREE {
                    return Err(format!(
                        "polynomial of degree {} exceeds the supported {MAX_POLY_DEGREE}",
                        degree(&coeffs)
                    ));
                }
                return Ok(poly_out(ctx, bx, coeffs));
            }
            if op == "Mul" {
                return product(imp, ctx, x, y);
            }
            let (x0, y0) = (imp.value(x)?, imp.value(y)?);
            let (vx, vy) = (broadcast(imp, ctx, x0, y0, "a")?, broadcast(imp, ctx, y0, x0, "b")?);
            let ir = if op == "Add" { Op::Add } else { Op::Sub };
            let out = imp.add(&ctx.name, ctx.out(0), ir, &[vx, vy])?;
            if op == "Sub" {
                super::norm_form::note_sub(imp, x0, y0, y, out);
            }
            Ok(vec![Sym::Value(out)])
        }
    }
}

/// `v` broadcast (numpy rules) to the shape it has in an elementwise op with `other`: a static
/// `select` (local data movement, as in `x − max(x)` with `keepdims`); `v` itself when its shape
/// is already that one.
fn broadcast(imp: &mut Importer, ctx: &Ctx, v: ValueId, other: ValueId, which: &str) -> Result<ValueId, String> {
    let (sv, so) = (imp.ty(v).shape.clone(), imp.ty(other).shape.clone());
    let shape = consts::broadcast_shape(&sv, &so)
        .map_err(|_| format!("operands {} and {} do not broadcast", imp.ty(v), imp.ty(other)))?;
    broadcast_to(imp, ctx, v, &shape, &format!("{}/broadcast_{which}", ctx.out(0)))
}

/// `v` broadcast (numpy rules) to `shape` by a static `select` named `name`; `v` itself when it
/// has that shape already.
pub(super) fn broadcast_to(
    imp: &mut Importer,
    ctx: &Ctx,
    v: ValueId,
    shape: &[usize],
    name: &str,
) -> Result<ValueId, String> {
    let sv = imp.ty(v).shape.clone();
    if shape == sv {
        return Ok(v);
    }
    if shape.iter().product::<usize>() > u32::MAX as usize {
        return Err(format!("broadcast result {shape:?} is too large"));
    }
    let indices = consts::broadcast_indices(&sv, shape).into_iter().map(|i| i as u32).collect();
    imp.add(&ctx.name, name, Op::Select { indices, shape: shape.to_vec() }, &[v])
}

/// A product of two different computed values (a Beaver product): the operand of smaller shape
/// is broadcast to the other's (a squeeze-excite gate `[N, C, 1, 1]` to `[N, C, H, W]`).
fn product(imp: &mut Importer, ctx: &Ctx, x: &Sym, y: &Sym) -> Result<Vec<Sym>, String> {
    let (vx, vy) = (imp.value(x)?, imp.value(y)?);
    let (sx, sy) = (imp.ty(vx).shape.clone(), imp.ty(vy).shape.clone());
    let operands = if check_broadcast(&sy, &sx).is_ok() {
        [vx, vy]
    } else if check_broadcast(&sx, &sy).is_ok() {
        [vy, vx]
    } else {
        return Err(format!(
            "operands {sx:?} and {sy:?}: a product of two computed values needs one to broadcast to the other's shape"
        ));
    };
    Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), Op::Mul, &operands)?)])
}
