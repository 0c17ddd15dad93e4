//! Convolution, pooling, batch normalisation and the ReLU family.
//!
//! Convolutions and pools are 2-D over `[N, C, H, W]`. A 1-D one over `[N, C, L]` runs as the 2-D
//! op over `[N, C, 1, L]` (a `reshape` before and after; its attributes gain a trivial first axis).
//! 3-D pools are two 2-D ones (`pool3d`), 3-D convolutions one 2-D one over the gathered depth
//! taps (`conv3d`); window attributes are resolved in `window`.

use veil_ir::{Op, ValueId, Window2d};

use super::window::{Axis, TRIVIAL, explicit_pads, spatial_axes, window2d};
use super::{arg, konst, opt_const, pool3d};
use crate::onnx::import::{Ctx, Importer, Sym};

/// The 2-D window of a Conv or pool node over input spatial size `hw` (`[1, L]` for a 1-D op,
/// whose attributes then name one axis). Returns the window and, with `ceil_mode`, how many extra
/// end pads stand in for the overhanging last window.
fn window(
    ctx: &Ctx,
    hw: [usize; 2],
    kernel: [usize; 2],
    ceil_mode: bool,
    one_d: bool,
) -> Result<(Window2d, [usize; 2]), String> {
    let (h, w) = if one_d {
        let [w] = spatial_axes(ctx, &hw[1..], &kernel[1..], ceil_mode)?[..] else { unreachable!("one axis asked") };
        (TRIVIAL, w)
    } else {
        let [h, w] = spatial_axes(ctx, &hw, &kernel, ceil_mode)?[..] else { unreachable!("two axes asked") };
        (h, w)
    };
    Ok((window2d(h, w), [h.extra, w.extra]))
}

/// The operand as a 2-D image, lifted from `[N, C, L]` to `[N, C, 1, L]` for a 1-D op; the
/// flag says whether it was.
pub(super) fn image(imp: &mut Importer, ctx: &Ctx, x: &Sym) -> Result<(veil_ir::ValueId, [usize; 4], bool), String> {
    let v = imp.value(x)?;
    match imp.ty(v).shape[..] {
        [n, c, h, w] => Ok((v, [n, c, h, w], false)),
        [n, c, l] => {
            let shape = vec![n, c, 1, l];
            let lifted = imp.add(&ctx.name, &format!("{}/input_2d", ctx.out(0)), Op::Reshape { shape }, &[v])?;
            Ok((lifted, [n, c, 1, l], true))
        }
        ref s => Err(format!(
            "only 1-D, 2-D and 3-D images ([N, C, L], [N, C, H, W], [N, C, D, H, W]) are supported, got input shape {s:?}"
        )),
    }
}

/// Adds `op` on the 2-D image `x`; a 1-D op's result goes back to `[N, C, L']`.
pub(super) fn add_image_op(
    imp: &mut Importer,
    ctx: &Ctx,
    op: Op,
    x: veil_ir::ValueId,
    one_d: bool,
) -> Result<Vec<Sym>, String> {
    if !one_d {
        return Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), op, &[x])?)]);
    }
    let y = imp.add(&ctx.name, &format!("{}/2d", ctx.out(0)), op, &[x])?;
    let [n, c, _, l] = imp.ty(y).shape[..] else { unreachable!("2-D ops give [N, C, H, W]") };
    Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), Op::Reshape { shape: vec![n, c, l] }, &[y])?)])
}

fn kernel_attr(ctx: &Ctx, one_d: bool) -> Result<Option<[usize; 2]>, String> {
    ctx.attrs
        .usizes("kernel_shape")?
        .map(|k| match k[..] {
            [l] if one_d => Ok([1, l]),
            [h, w] if !one_d => Ok([h, w]),
            _ => Err(format!("kernel_shape {k:?} does not fit a {}-D op over its operand", if one_d { 1 } else { 2 })),
        })
        .transpose()
}

pub fn conv(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let v = imp.value(arg(inputs, 0)?)?;
    if let [n, c, d, h, w] = imp.ty(v).shape[..] {
        return super::conv3d::conv(imp, ctx, inputs, v, [n, c, d, h, w]);
    }
    let (x, [_, c, h, w], one_d) = image(imp, ctx, arg(inputs, 0)?)?;
    let wt = konst(inputs, 1, "weight")?;
    let wt = match wt.shape[..] {
        [m, cg, k] if one_d => wt.reshaped(vec![m, cg, 1, k])?,
        _ => wt.clone(),
    };
    let [m, cg, kh, kw] = wt.shape[..] else {
        return Err(format!("weight shape {:?} does not fit a {}-D convolution", wt.shape, if one_d { 1 } else { 2 }));
    };
    if let Some(k) = kernel_attr(ctx, one_d)?
        && k != [kh, kw]
    {
        return Err(format!("kernel_shape {k:?} does not match weight shape {:?}", wt.shape));
    }
    let groups = usize::try_from(ctx.attrs.int_or("group", 1)?).map_err(|_| "group must be positive".to_string())?;
    if groups == 0 || c != cg * groups {
        return Err(format!("weight {:?} with group = {groups} does not fit {c} input channels", wt.shape));
    }
    let (window, _) = window(ctx, [h, w], [kh, kw], false, one_d)?;
    let weight = imp.weight(&format!("{}.weight", ctx.name), wt.shape.clone(), wt.floats());
    let bias = match opt_const(inputs, 2, "bias")? {
        Some(b) if b.len() == m => Some(imp.weight(&format!("{}.bias", ctx.name), vec![m], b.floats())),
        Some(b) => return Err(format!("bias has shape {:?}, expected [{m}]", b.shape)),
        None => None,
    };
    add_image_op(imp, ctx, Op::Conv2d { weight, bias, window, groups }, x, one_d)
}

fn pool_window(
    imp: &mut Importer,
    ctx: &Ctx,
    inputs: &[Option<Sym>],
) -> Result<(veil_ir::ValueId, Window2d, [usize; 2], bool), String> {
    let (x, [_, _, h, w], one_d) = image(imp, ctx, arg(inputs, 0)?)?;
    if ctx.node.op_type().starts_with("Global") {
        let window = Window2d { kernel: [h, w], strides: [1, 1], pads: [0; 4], dilations: [1, 1] };
        return Ok((x, window, [0, 0], one_d));
    }
    let kernel = kernel_attr(ctx, one_d)?.ok_or("attribute kernel_shape is required")?;
    let ceil = ctx.attrs.int_or("ceil_mode", 0)? != 0;
    let (win, extra) = window(ctx, [h, w], kernel, ceil, one_d)?;
    Ok((x, win, extra, one_d))
}

pub fn max_pool(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    if let Some(y) = pool3d::pool(imp, ctx, inputs)? {
        return Ok(y);
    }
    let (x, window, _, one_d) = pool_window(imp, ctx, inputs)?;
    // Extra end pads are never selected by a max, so they model ceil_mode exactly.
    add_image_op(imp, ctx, Op::MaxPool { window }, x, one_d)
}

pub fn avg_pool(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    if let Some(y) = pool3d::pool(imp, ctx, inputs)? {
        return Ok(y);
    }
    let (mut x, mut window, extra, one_d) = pool_window(imp, ctx, inputs)?;
    let mut count_include_pad = ctx.attrs.int_or("count_include_pad", 0)? != 0;
    if count_include_pad && extra != [0, 0] {
        // ONNX counts the explicit pads but not the overhang: see `window::explicit_pads`.
        let [kh, kw] = window.kernel;
        let [sh, sw] = window.strides;
        let [dh, dw] = window.dilations;
        let [hb, wb, he, we] = window.pads;
        let mut axes = [
            Axis { kernel: kh, stride: sh, dilation: dh, pad_begin: hb, pad_end: he, extra: extra[0] },
            Axis { kernel: kw, stride: sw, dilation: dw, pad_begin: wb, pad_end: we, extra: extra[1] },
        ];
        if let Some(pads) = explicit_pads(&mut axes) {
            x = imp.add(&ctx.name, &format!("{}/padded", ctx.out(0)), Op::Pad { pads, value: 0.0 }, &[x])?;
        }
        (window, count_include_pad) = (window2d(axes[0], axes[1]), false);
    }
    add_image_op(imp, ctx, Op::AvgPool { window, count_include_pad }, x, one_d)
}

pub fn batch_norm(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    if ctx.attrs.int_or("training_mode", 0)? != 0 {
        return Err("training_mode = 1 is not supported (inference only)".into());
    }
    let x = imp.value(arg(inputs, 0)?)?;
    let epsilon = ctx.attrs.float_or("epsilon", 1e-5)?;
    let mut k = [None; 4];
    for (i, what) in ["scale", "bias", "mean", "var"].iter().enumerate() {
        let t = konst(inputs, i + 1, what)?;
        k[i] = Some(imp.weight(&format!("{}.{what}", ctx.name), t.shape.clone(), t.floats()));
    }
    let [Some(scale), Some(bias), Some(mean), Some(var)] = k else { unreachable!("all four set above") };
    Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), Op::BatchNorm { scale, bias, mean, var, epsilon }, &[x])?)])
}

pub fn relu(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let x = imp.value(arg(inputs, 0)?)?;
    Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), Op::Relu, &[x])?)])
}

/// HardSigmoid: `max(0, min(1, alpha·x + beta))` as an `affine` of public constants (local on
/// shares) and a `clip` to [0, 1] (an exact circuit), both of which the IR already has.
pub fn hard_sigmoid(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let x = imp.value(arg(inputs, 0)?)?;
    let (alpha, beta) = (ctx.attrs.float_or("alpha", 0.2)?, ctx.attrs.float_or("beta", 0.5)?);
    let y = hard_sigmoid_of(imp, ctx, x, alpha, beta, ctx.out(0))?;
    Ok(vec![Sym::Value(y)])
}

fn hard_sigmoid_of(
    imp: &mut Importer,
    ctx: &Ctx,
    x: ValueId,
    alpha: f32,
    beta: f32,
    out: &str,
) -> Result<ValueId, String> {
    if !(alpha.is_finite() && beta.is_finite()) {
        return Err(format!("alpha = {alpha} and beta = {beta} must be finite"));
    }
    // The attributes are the architecture's (public, in the plan like a Clip's bounds).
    let scale = imp.public(&format!("{}.alpha", ctx.name), vec![], vec![alpha]);
    let shift = imp.public(&format!("{}.beta", ctx.name), vec![], vec![beta]);
    let y =
        imp.add(&ctx.name, &format!("{out}/affine"), Op::Affine { scale: Some(scale), shift: Some(shift) }, &[x])?;
    imp.add(&format!("{}/clip", ctx.name), out, Op::Clip { min: Some(0.0), max: Some(1.0) }, &[y])
}

/// HardSwish: `x · HardSigmoid(x)` with ONNX's fixed `alpha = 1/6`, `beta = 1/2`: the gate as in
/// [`hard_sigmoid`], then a product of two computed values.
pub fn hard_swish(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let x = imp.value(arg(inputs, 0)?)?;
    let gate = hard_sigmoid_of(imp, ctx, x, 1.0 / 6.0, 0.5, &format!("{}/gate", ctx.out(0)))?;
    Ok(vec![Sym::Value(imp.add(&format!("{}/mul", ctx.name), ctx.out(0), Op::Mul, &[x, gate])?)])
}

/// Tanh: `2·σ(2x) − 1` with the shared piecewise-linear sigmoid (`pl_sigmoid`), so its largest
/// error is twice the sigmoid's. The scalings are public affines (local on shares).
pub fn tanh(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let x = imp.value(arg(inputs, 0)?)?;
    Ok(vec![Sym::Value(tanh_value(imp, &ctx.name, ctx.out(0), x)?)])
}

/// [`tanh`] of the IR value `x`, as nodes named after ONNX node `node`, its result named `out`.
pub fn tanh_value(imp: &mut Importer, node: &str, out: &str, x: ValueId) -> Result<ValueId, String> {
    let two = imp.public(&format!("{node}.two"), vec![], vec![2.0]);
    let x2 = imp.add(node, &format!("{out}/double"), Op::Affine { scale: Some(two), shift: None }, &[x])?;
    let s = imp.add(&format!("{node}/sigmoid"), &format!("{out}/sigmoid"), Op::PlSigmoid, &[x2])?;
    let two = imp.public(&format!("{node}.two_out"), vec![], vec![2.0]);
    let minus_one = imp.public(&format!("{node}.minus_one"), vec![], vec![-1.0]);
    let op = Op::Affine { scale: Some(two), shift: Some(minus_one) };
    imp.add(&format!("{node}/affine"), out, op, &[s])
}

/// Gelu (opset 20), `approximate = "none"` or `"tanh"`: on shares as the piecewise-linear
/// `pl_gelu` circuit (`ReLU(x)` minus a few segments of `x·Φ(−|x|)`), whose largest error from
/// either form the IR op states; the float semantics keep the model's form.
pub fn gelu(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let x = imp.value(arg(inputs, 0)?)?;
    let tanh = match ctx.attrs.string("approximate")?.as_deref() {
        None | Some("none") => false,
        Some("tanh") => true,
        Some(other) => return Err(format!("approximate = {other:?} is not one of \"none\" and \"tanh\"")),
    };
    Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), Op::PlGelu { tanh }, &[x])?)])
}

pub fn leaky_relu(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let x = imp.value(arg(inputs, 0)?)?;
    let alpha = ctx.attrs.float_or("alpha", 0.01)?;
    let op = if alpha == 0.0 { Op::Relu } else { Op::LeakyRelu { alpha } };
    Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), op, &[x])?)])
}

pub fn clip(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let x = imp.value(arg(inputs, 0)?)?;
    // `unbounded` is the side's "no bound": exporters spell it ±inf or the float extreme.
    let bound = |i: usize, name: &str, unbounded: f32| -> Result<Option<f32>, String> {
        let v = if ctx.opset < 11 {
            ctx.attrs.float(name)?
        } else {
            opt_const(inputs, i, name)?.map(|t| t.scalar().ok_or(format!("{name} must be a scalar"))).transpose()?
        };
        match v {
            Some(b) if b == unbounded || b.abs() >= f32::MAX && b.signum() == unbounded.signum() => Ok(None),
            Some(b) if !b.is_finite() => Err(format!("{name} = {b} is not a usable bound")),
            b => Ok(b),
        }
    };
    let (min, max) = (bound(1, "min", f32::NEG_INFINITY)?, bound(2, "max", f32::INFINITY)?);
    let op = match (min, max) {
        (None, None) => return Ok(vec![Sym::Value(x)]),
        (Some(0.0), None) => Op::Relu,
        // ONNX: when min exceeds max, every output equals max (0·x + max, local on shares).
        (Some(lo), Some(hi)) if lo >= hi => {
            let scale = imp.weight(&format!("{}.zero", ctx.name), vec![], vec![0.0]);
            let shift = imp.weight(&format!("{}.max", ctx.name), vec![], vec![hi]);
            Op::Affine { scale: Some(scale), shift: Some(shift) }
        }
        _ => Op::Clip { min, max },
    };
    Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), op, &[x])?)])
}
