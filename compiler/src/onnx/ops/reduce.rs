//! ReduceSum and ReduceMean: linear, so they lower to a window sum over the reduced elements
//! (`sumpool`), or for the mean an `avgpool` that `normalize_linear` splits into that sum and a
//! public divisor. ReduceMax is a `maxpool` over the same window (the garbled comparison tree
//! MaxPool runs), and ReduceMin is `−max(−x)` (two local negations around it).
//!
//! The reduced axes are brought next to each other (a `transpose` when they are not already
//! contiguous), the tensor is viewed as `[1, outer, K, inner]` (a `reshape`), one window of
//! `K × 1` sums them, and a final `reshape` gives ONNX's output shape (`keepdims` either way).
//! A global pool over the two spatial axes of an image (`x.mean((2, 3))`, how torch's dynamo
//! exporter writes a global average pool) is a pool over `[N, C, H, W]` as it stands.

use veil_ir::{Op, ValueId, Window2d};

use super::{arg, axis, opt_const};
use crate::onnx::consts::{CData, CTensor};
use crate::onnx::import::{Ctx, Importer, Sym};

/// What a Reduce node computes over its window.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sum,
    Mean,
    Max,
    Min,
}

impl Kind {
    fn of(op_type: &str) -> Kind {
        match op_type {
            "ReduceMean" => Kind::Mean,
            "ReduceMax" => Kind::Max,
            "ReduceMin" => Kind::Min,
            _ => Kind::Sum,
        }
    }
}

/// Which axes a Reduce node reduces, sorted; `None` when it reduces nothing (an empty axes list
/// with `noop_with_empty_axes = 1`: the identity).
fn reduced_axes(ctx: &Ctx, inputs: &[Option<Sym>], rank: usize) -> Result<Option<Vec<usize>>, String> {
    // Axes moved from the attribute to input 1 in ReduceSum-13, and in ReduceMean, ReduceMax
    // and ReduceMin-18.
    let from_input = ctx.opset >= if ctx.node.op_type() == "ReduceSum" { 13 } else { 18 };
    let given = if from_input {
        opt_const(inputs, 1, "axes")?.map(CTensor::ints).transpose()?
    } else {
        ctx.attrs.ints("axes")?
    };
    let given = given.unwrap_or_default();
    if given.is_empty() {
        return Ok(if ctx.attrs.int_or("noop_with_empty_axes", 0)? != 0 { None } else { Some((0..rank).collect()) });
    }
    let mut axes = given.iter().map(|&a| axis(a, rank)).collect::<Result<Vec<_>, _>>()?;
    axes.sort_unstable();
    if axes.windows(2).any(|w| w[0] == w[1]) {
        return Err(format!("axes {given:?} name an axis twice"));
    }
    Ok(Some(axes))
}

/// The output shape: reduced axes become 1 (`keepdims`) or disappear.
fn output_shape(shape: &[usize], axes: &[usize], keepdims: bool) -> Vec<usize> {
    (0..shape.len()).filter_map(|i| if !axes.contains(&i) { Some(shape[i]) } else { keepdims.then_some(1) }).collect()
}

/// `−v`: an affine with a public scale of −1, local on shares (a secret scale would not be).
fn negated(imp: &mut Importer, ctx: &Ctx, v: ValueId, out: &str) -> Result<ValueId, String> {
    let minus_one = imp.public(&format!("{out}.minus_one"), vec![], vec![-1.0]);
    imp.add(&ctx.name, out, Op::Affine { scale: Some(minus_one), shift: None }, &[v])
}

/// Lowers ReduceSum, ReduceMean, ReduceMax and ReduceMin.
pub fn reduce(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let kind = Kind::of(ctx.node.op_type());
    let keepdims = ctx.attrs.int_or("keepdims", 1)? != 0;
    if let Sym::Const(t) = arg(inputs, 0)? {
        let Some(axes) = reduced_axes(ctx, inputs, t.shape.len())? else { return Ok(vec![Sym::Const(t.clone())]) };
        return Ok(vec![Sym::Const(fold(t, &axes, keepdims, kind)?)]);
    }
    let out = ctx.out(0);
    // A pending polynomial has its base's shape.
    let shape = match arg(inputs, 0)? {
        Sym::Poly { base, .. } => imp.ty(*base).shape.clone(),
        s => {
            let v = imp.value(s)?;
            imp.ty(v).shape.clone()
        }
    };
    let Some(axes) = reduced_axes(ctx, inputs, shape.len())? else { return Ok(vec![arg(inputs, 0)?.clone()]) };
    let operand = arg(inputs, 0)?.clone();
    let x0 = imp.value(&operand)?;
    let mut x = x0;
    if kind == Kind::Min {
        // min(x) = −max(−x).
        x = negated(imp, ctx, x, &format!("{out}/negated"))?;
    }
    let out_shape = output_shape(&shape, &axes, keepdims);
    let k: usize = axes.iter().map(|&a| shape[a]).product();
    let pooled = if kind == Kind::Min { format!("{out}/negated_max") } else { format!("{out}/pooled") };
    let v = if k == 1 {
        x
    } else if shape.len() == 4 && axes == [2, 3] {
        pool(imp, ctx, x, [shape[2], shape[3]], kind, &pooled)?
    } else {
        // Kept axes first (in order), then the reduced ones: contiguous at the end, unless they
        // already are contiguous somewhere.
        let contiguous = axes.windows(2).all(|w| w[1] == w[0] + 1);
        let (v, first) = if contiguous {
            (x, axes[0])
        } else {
            let perm: Vec<usize> = (0..shape.len()).filter(|i| !axes.contains(i)).chain(axes.iter().copied()).collect();
            let t = imp.add(&ctx.name, &format!("{out}/reduced_last"), Op::Transpose { perm }, &[x])?;
            (t, shape.len() - axes.len())
        };
        let vshape = imp.ty(v).shape.clone();
        let outer: usize = vshape[..first].iter().product();
        let inner: usize = vshape[first + axes.len()..].iter().product();
        let grid = vec![1, outer, k, inner];
        let g = imp.add(&ctx.name, &format!("{out}/grid"), Op::Reshape { shape: grid }, &[v])?;
        pool(imp, ctx, g, [k, 1], kind, &pooled)?
    };
    // The output shape, then for a min the final negation (which then carries the node's name).
    let shaped = if kind == Kind::Min { format!("{out}/negated_shaped") } else { out.to_string() };
    let v = if imp.ty(v).shape == out_shape {
        v
    } else {
        imp.add(&ctx.name, &shaped, Op::Reshape { shape: out_shape }, &[v])?
    };
    let v = if kind == Kind::Min { negated(imp, ctx, v, out)? } else { v };
    if kind == Kind::Mean && keepdims {
        super::norm_form::note_mean(imp, &operand, x0, &shape, &axes, v);
    }
    Ok(vec![Sym::Value(v)])
}

/// One unpadded window of `kernel` over an `[N, C, H, W]` value: a sum, a mean or a max.
fn pool(
    imp: &mut Importer,
    ctx: &Ctx,
    x: ValueId,
    kernel: [usize; 2],
    kind: Kind,
    out: &str,
) -> Result<ValueId, String> {
    let window = Window2d { kernel, strides: [1, 1], pads: [0; 4], dilations: [1, 1] };
    let op = match kind {
        Kind::Sum => Op::SumPool { window },
        Kind::Mean => Op::AvgPool { window, count_include_pad: false },
        Kind::Max | Kind::Min => Op::MaxPool { window },
    };
    imp.add(&ctx.name, out, op, &[x])
}

/// Reduces a compile-time tensor (a shape computation, or constant weight preprocessing). An
/// empty reduction gives ONNX's identity element: 0 for a sum, −∞ for a max and +∞ for a min
/// (the integer type's extremes for integers); a mean of nothing is NaN.
fn fold(t: &CTensor, axes: &[usize], keepdims: bool, kind: Kind) -> Result<CTensor, String> {
    let kept = output_shape(&t.shape, axes, true);
    let (xs, os) = (veil_ir::strides(&t.shape), veil_ir::strides(&kept));
    // The output element an input element adds to: its coordinates with the reduced ones dropped.
    let dest = |flat: usize| -> usize {
        (0..t.shape.len()).filter(|i| !axes.contains(i)).map(|i| (flat / xs[i]) % t.shape[i] * os[i]).sum()
    };
    let n: usize = kept.iter().product();
    let out_shape = output_shape(&t.shape, axes, keepdims);
    if matches!(kind, Kind::Max | Kind::Min) {
        let max = kind == Kind::Max;
        return Ok(match &t.data {
            CData::I(v) => {
                let mut acc = vec![if max { i64::MIN } else { i64::MAX }; n];
                for (i, &x) in v.iter().enumerate() {
                    let d = dest(i);
                    acc[d] = if max { acc[d].max(x) } else { acc[d].min(x) };
                }
                CTensor::i64(out_shape, acc)
            }
            CData::F(v) => {
                let mut acc = vec![if max { f32::NEG_INFINITY } else { f32::INFINITY }; n];
                for (i, &x) in v.iter().enumerate() {
                    let d = dest(i);
                    // NaN propagates, as in numpy's max.
                    acc[d] = if x.is_nan() || acc[d].is_nan() {
                        f32::NAN
                    } else if max {
                        acc[d].max(x)
                    } else {
                        acc[d].min(x)
                    };
                }
                CTensor::f32(out_shape, acc)
            }
        });
    }
    let mean = kind == Kind::Mean;
    match &t.data {
        CData::I(v) if !mean => {
            let mut acc = vec![0i64; n];
            for (i, &x) in v.iter().enumerate() {
                let d = dest(i);
                acc[d] = acc[d].checked_add(x).ok_or("integer overflow in a constant ReduceSum")?;
            }
            Ok(CTensor::i64(out_shape, acc))
        }
        CData::I(_) => Err("ReduceMean of integers is not supported".into()),
        CData::F(v) => {
            let mut acc = vec![0f64; n];
            for (i, &x) in v.iter().enumerate() {
                acc[dest(i)] += x as f64;
            }
            let k: usize = axes.iter().map(|&a| t.shape[a]).product();
            let div = if mean { k as f64 } else { 1.0 };
            Ok(CTensor::f32(out_shape, acc.iter().map(|&s| (s / div) as f32).collect()))
        }
    }
}
