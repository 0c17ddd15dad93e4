//! 3-D convolutions, `Conv` and `ConvTranspose` over `[N, C, D, H, W]`, as the IR's 2-D ones
//! with the depth taps moved into the channels.
//!
//! Output depth `o` of either sums, over the kernel's depth taps `t`, the 2-D (transposed)
//! convolution of one input depth plane `i(o, t)` with the kernel's plane `t`, or nothing where
//! `i(o, t)` falls in the padding (or, transposed, between the strided inputs). So one static
//! `select` gathers, for each batch element and output depth, an image of `C·kd` channels
//! (channel `c·kd + t` is input channel `c` at depth `i(o, t)`, zero where there is none), and
//! one 2-D op on that `[N·D', C·kd, H, W]` batch with the kernel's depth taps as channels
//! computes every output depth: for `Conv` the kernel `[M, C/G, kd, kh, kw]` read as
//! `[M, C/G·kd, kh, kw]`, for `ConvTranspose` `[C, M/G, kd, kh, kw]` with its depth axis moved
//! next to `C`. A group's channels stay contiguous, so groups carry over. `reshape`s and a
//! `transpose` put the depth axis back. The HE work is the 3-D convolution's (each output depth
//! reads its `kd` planes once); the gather copies the input `kd/s_d` times, locally on shares.
//!
//! - `Conv`: `i(o, t) = o·s_d + t·d_d − pad_begin` (the window of `window::spatial_axes`).
//! - `ConvTranspose`: full-output position `p = o + begin` takes tap `t` from input
//!   `(p − t·d_d)/s_d` where that is a whole index in range (`conv_transpose::axes`).

use veil_ir::{Op, ValueId};

use super::conv_transpose::{self, Layer};
use super::window::{spatial_axes, window2d};
use super::{konst, moved_elements};
use crate::onnx::import::{Ctx, Importer, Sym};

/// `Conv` of `x` (`[N, C, D, H, W]`): see the module doc.
pub fn conv(
    imp: &mut Importer,
    ctx: &Ctx,
    inputs: &[Option<Sym>],
    x: ValueId,
    [n, c, d, h, w]: [usize; 5],
) -> Result<Vec<Sym>, String> {
    let wt = konst(inputs, 1, "weight")?;
    let [m, cg, kd, kh, kw] = wt.shape[..] else {
        return Err(format!("weight shape {:?} does not fit a 3-D convolution", wt.shape));
    };
    if let Some(k) = ctx.attrs.usizes("kernel_shape")?
        && k != [kd, kh, kw]
    {
        return Err(format!("kernel_shape {k:?} does not match weight shape {:?}", wt.shape));
    }
    let groups = conv_transpose::groups(ctx)?;
    if c != cg * groups || m % groups != 0 {
        return Err(format!("weight {:?} with group = {groups} does not fit {c} input channels", wt.shape));
    }
    let axes = spatial_axes(ctx, &[d, h, w], &[kd, kh, kw], false)?;
    let a = axes[0];
    let span = a.dilation.checked_mul(kd - 1).and_then(|v| v.checked_add(1));
    let padded = d.checked_add(a.pad_begin).and_then(|v| v.checked_add(a.pad_end));
    let dout = match (span, padded) {
        (Some(span), Some(padded)) if padded >= span => (padded - span) / a.stride + 1,
        _ => return Err(format!("the kernel's depth span does not fit the padded depth of {d}")),
    };
    let source = |o: usize, t: usize| {
        let i = (o * a.stride + t * a.dilation) as i64 - a.pad_begin as i64;
        (0..d as i64).contains(&i).then_some(i as usize)
    };
    let planes = depth_taps(imp, ctx, x, [n, c, d, h, w], (dout, kd), source)?;
    let weight = imp.weight(&format!("{}.weight", ctx.name), vec![m, cg * kd, kh, kw], wt.floats());
    let bias = conv_transpose::bias(inputs, m)?.map(|b| imp.weight(&format!("{}.bias", ctx.name), vec![m], b));
    let op = Op::Conv2d { weight, bias, window: window2d(axes[1], axes[2]), groups };
    let y = imp.add(&ctx.name, &format!("{}/planes", ctx.out(0)), op, &[planes])?;
    depth_back(imp, ctx, y, n, dout)
}

/// `ConvTranspose` of `x` (`[N, C, D, H, W]`): see the module doc.
pub fn conv_transpose(
    imp: &mut Importer,
    ctx: &Ctx,
    inputs: &[Option<Sym>],
    x: ValueId,
    [n, c, d, h, w]: [usize; 5],
) -> Result<Vec<Sym>, String> {
    let wt = konst(inputs, 1, "weight")?;
    let [cw, mg, kd, kh, kw] = wt.shape[..] else {
        return Err(format!("weight shape {:?} does not fit a 3-D transposed convolution", wt.shape));
    };
    let groups = conv_transpose::groups(ctx)?;
    if cw != c || c % groups != 0 {
        return Err(format!("weight {:?} with group = {groups} does not fit {c} input channels", wt.shape));
    }
    let axes = conv_transpose::axes(ctx, &[d, h, w], &[kd, kh, kw])?;
    let a = axes[0];
    let (s, dil) = (a.stride as i64, a.dilation as i64);
    let source = |o: usize, t: usize| {
        let q = o as i64 + a.begin - t as i64 * dil;
        (q >= 0 && q % s == 0 && q / s < d as i64).then_some((q / s) as usize)
    };
    let planes = depth_taps(imp, ctx, x, [n, c, d, h, w], (a.out, kd), source)?;
    // [C, M/G, kd, kh, kw] → [C·kd, M/G, kh, kw]: channel c·kd + t holds the kernel's plane t.
    let data = wt.floats();
    let plane = kh * kw;
    let mut weight = Vec::with_capacity(data.len());
    for ci in 0..c {
        for t in 0..kd {
            for j in 0..mg {
                let at = ((ci * mg + j) * kd + t) * plane;
                weight.extend_from_slice(&data[at..at + plane]);
            }
        }
    }
    let layer = Layer { c: c * kd, groups, mg, kh, kw, weight, bias: conv_transpose::bias(inputs, mg * groups)? };
    let name = format!("{}/planes", ctx.out(0));
    let y = conv_transpose::lower(imp, ctx, planes, [n * a.out, c * kd, h, w], &layer, (axes[1], axes[2]), &name)?;
    depth_back(imp, ctx, y, n, a.out)
}

/// `x` (`[N, C, D, H, W]`) as `[N·D', C·kd, H, W]`: image `b·D' + o` holds in channel
/// `c·kd + t` input channel `c` at depth `source(o, t)`, or zeros where that is `None` (a
/// `select` of `x` padded by one zero plane at the end of its depth axis).
fn depth_taps(
    imp: &mut Importer,
    ctx: &Ctx,
    x: ValueId,
    [n, c, d, h, w]: [usize; 5],
    (dout, kd): (usize, usize),
    source: impl Fn(usize, usize) -> Option<usize>,
) -> Result<ValueId, String> {
    moved_elements(&[n, dout, c, kd, h, w], "the gathered depth taps")?;
    moved_elements(&[n, c, d + 1, h, w], "the input")?;
    let out = ctx.out(0);
    let pads = vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 0];
    let padded = imp.add(&ctx.name, &format!("{out}/zero_plane"), Op::Pad { pads, value: 0.0 }, &[x])?;
    let hw = h * w;
    let mut indices = Vec::with_capacity(n * dout * c * kd * hw);
    for b in 0..n {
        for o in 0..dout {
            for ci in 0..c {
                for t in 0..kd {
                    let start = ((b * c + ci) * (d + 1) + source(o, t).unwrap_or(d)) * hw;
                    indices.extend((start..start + hw).map(|i| i as u32));
                }
            }
        }
    }
    let shape = vec![n * dout, c * kd, h, w];
    imp.add(&ctx.name, &format!("{out}/depth_taps"), Op::Select { indices, shape }, &[padded])
}

/// `y` (`[N·D', M, H', W']`) back to `[N, M, D', H', W']`, named as the node's output.
fn depth_back(imp: &mut Importer, ctx: &Ctx, y: ValueId, n: usize, dout: usize) -> Result<Vec<Sym>, String> {
    let [_, m, h2, w2] = imp.ty(y).shape[..] else { unreachable!("2-D convolutions give [N, C, H, W]") };
    let out = ctx.out(0);
    let rows = imp.add(&ctx.name, &format!("{out}/rows"), Op::Reshape { shape: vec![n, dout, m, h2 * w2] }, &[y])?;
    let moved =
        imp.add(&ctx.name, &format!("{out}/depth_second"), Op::Transpose { perm: vec![0, 2, 1, 3] }, &[rows])?;
    let y = imp.add(&ctx.name, out, Op::Reshape { shape: vec![n, m, dout, h2, w2] }, &[moved])?;
    Ok(vec![Sym::Value(y)])
}
