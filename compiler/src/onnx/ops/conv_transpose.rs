//! `ConvTranspose` (1-D and 2-D): the gradient of a convolution, written as an ordinary
//! convolution of the input spread out by the stride.
//!
//! Per spatial axis (input `n`, stride `s`, kernel `k`, dilation `d`), ONNX's full output has
//! `s·(n − 1) + output_padding + d·(k − 1) + 1` positions; the node keeps `out` of them from
//! `begin` on (from `pads`, or `auto_pad` and `output_shape`, as the reference implementation
//! derives them; positions past the full output are zero plus bias). That equals a stride-1
//! convolution with dilation `d`, the kernel flipped and its two channel axes exchanged (per
//! group), of the input with `s − 1` zeros between elements and `d·(k − 1) − begin` zeros in
//! front. Those zeros come from one static `select` of the input padded by one zero element
//! (data movement, no cost), so the convolution is an ordinary `conv2d` (HE offline) whose
//! input is about `s²` times larger than the node's.

use veil_ir::{Op, Window2d};

use super::nn::{add_image_op, image};
use super::{arg, konst, opt_const};
use crate::onnx::import::{Ctx, Importer, Sym};

/// One spatial axis of the node.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Axis {
    input: usize,
    stride: usize,
    kernel: usize,
    dilation: usize,
    /// The first kept position of the full output (negative: zeros in front).
    begin: i64,
    /// Kept positions.
    out: usize,
}

impl Axis {
    /// The length of the spread, padded input the convolution reads.
    fn padded(&self) -> usize {
        self.out + self.dilation * (self.kernel - 1)
    }

    /// For each position of the padded input, the input index it holds (`None`: a zero).
    fn sources(&self) -> Vec<Option<usize>> {
        let front = (self.dilation * (self.kernel - 1)) as i64 - self.begin;
        (0..self.padded() as i64)
            .map(|i| {
                let j = i - front;
                (j >= 0 && j % self.stride as i64 == 0 && ((j / self.stride as i64) as usize) < self.input)
                    .then(|| (j / self.stride as i64) as usize)
            })
            .collect()
    }
}

fn per_axis(ctx: &Ctx, name: &str, rank: usize, default: usize) -> Result<Vec<usize>, String> {
    match ctx.attrs.usizes(name)? {
        None => Ok(vec![default; rank]),
        Some(v) if v.len() == rank => Ok(v),
        Some(v) => Err(format!("{name} has {} entries for {rank} spatial axes", v.len())),
    }
}

/// The spatial axes of a node with input sizes `input` and kernel sizes `kernel`.
fn axes(ctx: &Ctx, input: &[usize], kernel: &[usize]) -> Result<Vec<Axis>, String> {
    let r = input.len();
    let strides = per_axis(ctx, "strides", r, 1)?;
    let dilations = per_axis(ctx, "dilations", r, 1)?;
    let output_padding = per_axis(ctx, "output_padding", r, 0)?;
    if strides.contains(&0) || dilations.contains(&0) {
        return Err("strides and dilations must be positive".into());
    }
    if let Some(k) = ctx.attrs.usizes("kernel_shape")?
        && k != kernel
    {
        return Err(format!("kernel_shape {k:?} does not match the weight's {kernel:?}"));
    }
    let output_shape = match ctx.attrs.usizes("output_shape")? {
        // The full form [N, C, ...] is accepted too.
        Some(v) if v.len() == r + 2 => Some(v[2..].to_vec()),
        Some(v) if v.len() == r => Some(v),
        Some(v) => return Err(format!("output_shape has {} entries for {r} spatial axes", v.len())),
        None => None,
    };
    let auto_pad = ctx.attrs.string("auto_pad")?.unwrap_or_else(|| "NOTSET".into());
    let pads = ctx.attrs.ints("pads")?;
    let mut out = Vec::with_capacity(r);
    for a in 0..r {
        let full = (strides[a] * (input[a] - 1) + output_padding[a] + dilations[a] * (kernel[a] - 1) + 1) as i64;
        let (begin, size) = match (auto_pad.as_str(), &pads) {
            ("SAME_UPPER" | "SAME_LOWER", None) => {
                let size = output_shape.as_ref().map_or(input[a] * strides[a], |o| o[a]) as i64;
                let total = full - size;
                let begin = if auto_pad == "SAME_UPPER" { total.div_euclid(2) } else { total - total.div_euclid(2) };
                (begin, size)
            }
            ("NOTSET" | "VALID", _) | (_, Some(_)) => {
                let (b, e) = match &pads {
                    Some(p) if p.len() == 2 * r => (p[a], p[a + r]),
                    Some(p) => return Err(format!("pads has {} entries for {r} spatial axes", p.len())),
                    None => (0, 0),
                };
                if b < 0 || e < 0 {
                    return Err(format!("pads {b}, {e} must not be negative"));
                }
                (b, output_shape.as_ref().map_or(full - b - e, |o| o[a] as i64))
            }
            (other, _) => return Err(format!("auto_pad = {other:?} is not one ONNX defines")),
        };
        let out_size = usize::try_from(size).ok().filter(|&s| s > 0).ok_or(format!(
            "the output would have {size} positions on spatial axis {a} (empty tensors are not supported)"
        ))?;
        out.push(Axis {
            input: input[a],
            stride: strides[a],
            kernel: kernel[a],
            dilation: dilations[a],
            begin,
            out: out_size,
        });
    }
    Ok(out)
}

/// `ConvTranspose(x, W, B)`: see the module doc.
pub fn conv_transpose(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let (x, [n, c, h, w], one_d) = image(imp, ctx, arg(inputs, 0)?)?;
    let wt = konst(inputs, 1, "weight")?;
    let groups =
        usize::try_from(ctx.attrs.int_or("group", 1)?).ok().filter(|&g| g > 0).ok_or("group must be positive")?;
    let (cw, mg, kh, kw) = match (one_d, &wt.shape[..]) {
        (true, &[cw, mg, k]) => (cw, mg, 1, k),
        (false, &[cw, mg, kh, kw]) => (cw, mg, kh, kw),
        _ => {
            return Err(format!(
                "weight shape {:?} does not fit a {}-D transposed convolution (1-D and 2-D are supported)",
                wt.shape,
                if one_d { 1 } else { 2 }
            ));
        }
    };
    if cw != c || c % groups != 0 {
        return Err(format!("weight {:?} with group = {groups} does not fit {c} input channels", wt.shape));
    }
    let m = mg * groups;
    let spatial = if one_d { axes(ctx, &[w], &[kw])? } else { axes(ctx, &[h, w], &[kh, kw])? };
    let trivial = Axis { input: 1, stride: 1, kernel: 1, dilation: 1, begin: 0, out: 1 };
    let (ah, aw) = if one_d { (trivial, spatial[0]) } else { (spatial[0], spatial[1]) };

    // The input spread by the stride and padded, from the input padded by one zero element.
    let padded = imp.add(
        &ctx.name,
        &format!("{}/zero_padded", ctx.out(0)),
        Op::Pad { pads: vec![0, 0, 0, 0, 0, 0, 1, 1], value: 0.0 },
        &[x],
    )?;
    let (sh, sw) = (ah.sources(), aw.sources());
    let mut indices = Vec::with_capacity(n * c * sh.len() * sw.len());
    for plane in 0..n * c {
        for &i in &sh {
            for &j in &sw {
                let (i, j) = match (i, j) {
                    (Some(i), Some(j)) => (i, j),
                    _ => (h, w),
                };
                indices.push(((plane * (h + 1) + i) * (w + 1) + j) as u32);
            }
        }
    }
    if indices.len() > u32::MAX as usize {
        return Err("the spread input is too large".into());
    }
    let shape = vec![n, c, sh.len(), sw.len()];
    let spread = imp.add(&ctx.name, &format!("{}/spread", ctx.out(0)), Op::Select { indices, shape }, &[padded])?;

    // The kernel flipped, its channel axes exchanged per group: [M, C/G, kh, kw].
    let cg = c / groups;
    let src = wt.floats();
    let mut kernel = vec![0f32; m * cg * kh * kw];
    for g in 0..groups {
        for j in 0..mg {
            for ci in 0..cg {
                for a in 0..kh {
                    for b in 0..kw {
                        let from = (((g * cg + ci) * mg + j) * kh + (kh - 1 - a)) * kw + (kw - 1 - b);
                        kernel[(((g * mg + j) * cg + ci) * kh + a) * kw + b] = src[from];
                    }
                }
            }
        }
    }
    let weight = imp.weight(&format!("{}.weight", ctx.name), vec![m, cg, kh, kw], kernel);
    let bias = match opt_const(inputs, 2, "bias")? {
        Some(b) if b.len() == m => Some(imp.weight(&format!("{}.bias", ctx.name), vec![m], b.floats())),
        Some(b) => return Err(format!("bias has shape {:?}, expected [{m}]", b.shape)),
        None => None,
    };
    let window = Window2d { kernel: [kh, kw], strides: [1, 1], pads: [0; 4], dilations: [ah.dilation, aw.dilation] };
    add_image_op(imp, ctx, Op::Conv2d { weight, bias, window, groups }, spread, one_d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stride 2, kernel 3, no pads: the spread input has a zero between elements and two in
    /// front and behind (the full correlation).
    #[test]
    fn the_spread_input_interleaves_zeros_and_pads_for_the_full_correlation() {
        let a = Axis { input: 3, stride: 2, kernel: 3, dilation: 1, begin: 0, out: 7 };
        assert_eq!(a.sources(), vec![None, None, Some(0), None, Some(1), None, Some(2), None, None]);
        // pads = 1 on both sides keeps 5 positions from the second on.
        let b = Axis { begin: 1, out: 5, ..a };
        assert_eq!(b.sources(), vec![None, Some(0), None, Some(1), None, Some(2), None]);
    }
}
