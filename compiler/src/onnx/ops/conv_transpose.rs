//! `ConvTranspose` (1-D and 2-D; 3-D in `conv3d`), as ordinary convolutions.
//!
//! Per spatial axis (input `n`, stride `s`, kernel `k`, dilation `d`), ONNX's full output has
//! `s·(n − 1) + output_padding + d·(k − 1) + 1` positions, `t = i·s + j·d` for input `i` and tap
//! `j`; the node keeps `out` of them from `begin` on (from `pads`, or `auto_pad` and
//! `output_shape`, as the reference implementation derives them; positions past the full output
//! are zero plus bias).
//!
//! **Strided (polyphase).** Output `t = q·s + r` takes the taps `j` with `j·d ≡ r (mod s)`, from
//! inputs `q − ⌊j·d / s⌋`: for each phase `r` a stride-1 convolution of the input with a
//! sub-kernel of `⌊(k − 1)·d / s⌋ + 1` taps. All `s_h·s_w` phases are one `conv2d` with that many
//! times the output channels (grouped as the node's groups), reading the input itself (padded or
//! cropped by one static `select`), and a second `select` interleaves the phases into the output
//! (as a pixel shuffle does). The HE work is that of a convolution of the node's input, not of
//! an input `s²` times larger with zeros between elements.
//!
//! **Stride 1.** A `conv2d` with the kernel flipped, its channel axes exchanged per group, and the
//! node's dilation, of the input padded by `d·(k − 1) − begin` in front (the same `select`).

use veil_ir::{Op, Window2d};

use super::nn::image;
use super::{arg, konst, opt_const};
use crate::onnx::import::{Ctx, Importer, Sym};

/// One spatial axis of the node.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Axis {
    input: usize,
    pub(super) stride: usize,
    kernel: usize,
    pub(super) dilation: usize,
    /// The first kept position of the full output (negative: zeros in front).
    pub(super) begin: i64,
    /// Kept positions.
    pub(super) out: usize,
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
pub(super) fn axes(ctx: &Ctx, input: &[usize], kernel: &[usize]) -> Result<Vec<Axis>, String> {
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
        Some(v) if v.iter().any(|&d| d >= 1 << 40) => return Err(format!("output_shape {v:?} is too large")),
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
        let full = strides[a]
            .checked_mul(input[a] - 1)
            .and_then(|v| v.checked_add(output_padding[a]))
            .and_then(|v| v.checked_add(dilations[a].checked_mul(kernel[a] - 1)?))
            .and_then(|v| i64::try_from(v).ok())
            .filter(|&v| v < 1 << 40)
            .ok_or(format!("strides, dilations and output_padding make spatial axis {a} too large"))?
            + 1;
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
                if !(0..1 << 40).contains(&b) || !(0..1 << 40).contains(&e) {
                    return Err(format!("pads {b}, {e} must be between 0 and 2^40"));
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
    let v = imp.value(arg(inputs, 0)?)?;
    if let [n, c, d, h, w] = imp.ty(v).shape[..] {
        return super::conv3d::conv_transpose(imp, ctx, inputs, v, [n, c, d, h, w]);
    }
    let (x, [n, c, h, w], one_d) = image(imp, ctx, arg(inputs, 0)?)?;
    let wt = konst(inputs, 1, "weight")?;
    let groups = groups(ctx)?;
    let (cw, mg, kh, kw) = match (one_d, &wt.shape[..]) {
        (true, &[cw, mg, k]) => (cw, mg, 1, k),
        (false, &[cw, mg, kh, kw]) => (cw, mg, kh, kw),
        _ => {
            return Err(format!(
                "weight shape {:?} does not fit a {}-D transposed convolution (1-D, 2-D and 3-D are supported)",
                wt.shape,
                if one_d { 1 } else { 2 }
            ));
        }
    };
    if cw != c || c % groups != 0 {
        return Err(format!("weight {:?} with group = {groups} does not fit {c} input channels", wt.shape));
    }
    let spatial = if one_d { axes(ctx, &[w], &[kw])? } else { axes(ctx, &[h, w], &[kh, kw])? };
    let trivial = Axis { input: 1, stride: 1, kernel: 1, dilation: 1, begin: 0, out: 1 };
    let (ah, aw) = if one_d { (trivial, spatial[0]) } else { (spatial[0], spatial[1]) };
    let bias = bias(inputs, mg * groups)?;
    let layer = Layer { c, groups, mg, kh, kw, weight: wt.floats(), bias };
    let out = ctx.out(0);
    if !one_d {
        return Ok(vec![Sym::Value(lower(imp, ctx, x, [n, c, h, w], &layer, (ah, aw), out)?)]);
    }
    let y = lower(imp, ctx, x, [n, c, h, w], &layer, (ah, aw), &format!("{out}/2d"))?;
    Ok(vec![Sym::Value(imp.add(&ctx.name, out, Op::Reshape { shape: vec![n, mg * groups, aw.out] }, &[y])?)])
}

/// The `group` attribute, positive.
pub(super) fn groups(ctx: &Ctx) -> Result<usize, String> {
    usize::try_from(ctx.attrs.int_or("group", 1)?)
        .ok()
        .filter(|&g| g > 0)
        .ok_or_else(|| "group must be positive".into())
}

/// The bias (operand 2) for `m` output channels, if given.
pub(super) fn bias(inputs: &[Option<Sym>], m: usize) -> Result<Option<Vec<f32>>, String> {
    match opt_const(inputs, 2, "bias")? {
        Some(b) if b.len() == m => Ok(Some(b.floats())),
        Some(b) => Err(format!("bias has shape {:?}, expected [{m}]", b.shape)),
        None => Ok(None),
    }
}

/// The 2-D transposed convolution of `x` (`[N, C, H, W]`) along axes `(ah, aw)`, its output
/// `[N, M, H', W']` named `name`: see the module doc.
pub(super) fn lower(
    imp: &mut Importer,
    ctx: &Ctx,
    x: veil_ir::ValueId,
    [n, c, h, w]: [usize; 4],
    layer: &Layer,
    (ah, aw): (Axis, Axis),
    name: &str,
) -> Result<veil_ir::ValueId, String> {
    let extents: Vec<usize> =
        [ah, aw].iter().map(|a| a.out.saturating_add(a.kernel.saturating_mul(a.dilation))).collect();
    super::moved_elements(&extents, "the output")?;
    let (groups, mg, m) = (layer.groups, layer.mg, layer.mg * layer.groups);
    if ah.stride == 1 && aw.stride == 1 {
        let x = padded_select(imp, ctx, x, [n, c, h, w], (&ah.sources(), &aw.sources()))?;
        let (weight, bias) = layer.flipped(imp, ctx);
        let window = Window2d {
            kernel: [layer.kh, layer.kw],
            strides: [1, 1],
            pads: [0; 4],
            dilations: [ah.dilation, aw.dilation],
        };
        return imp.add(&ctx.name, name, Op::Conv2d { weight, bias, window, groups }, &[x]);
    }
    // Polyphase: one convolution computing every phase, then the phases interleaved.
    let (ph, pw) = (Phases::of(&ah), Phases::of(&aw));
    let x = padded_select(imp, ctx, x, [n, c, h, w], (&ph.sources, &pw.sources))?;
    let (weight, bias) = layer.phased(imp, ctx, (&ah, &aw), (&ph, &pw));
    let window = Window2d { kernel: [ph.taps, pw.taps], strides: [1, 1], pads: [0; 4], dilations: [1, 1] };
    let phased =
        imp.add(&ctx.name, &format!("{}/phases", ctx.out(0)), Op::Conv2d { weight, bias, window, groups }, &[x])?;
    let (qh, qw) = (ph.count, pw.count);
    let planes = ah.stride * aw.stride;
    let mut indices = Vec::with_capacity(n * m * ah.out * aw.out);
    for b in 0..n {
        for mo in 0..m {
            let (g, jm) = (mo / mg, mo % mg);
            for oh in 0..ah.out {
                let (rh, qi) = ph.locate(&ah, oh);
                for ow in 0..aw.out {
                    let (rw, qj) = pw.locate(&aw, ow);
                    let channel = (g * planes + rh * aw.stride + rw) * mg + jm;
                    indices.push((((b * groups * planes * mg + channel) * qh + qi) * qw + qj) as u32);
                }
            }
        }
    }
    imp.add(&ctx.name, name, Op::Select { indices, shape: vec![n, m, ah.out, aw.out] }, &[phased])
}

/// The node's weights: `[C, M/G, kh, kw]` and the bias `[M]`.
pub(super) struct Layer {
    pub(super) c: usize,
    pub(super) groups: usize,
    pub(super) mg: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) weight: Vec<f32>,
    pub(super) bias: Option<Vec<f32>>,
}

impl Layer {
    /// `W[c][j][a][b]` for input channel `c`, output channel `j` of its group, tap `(a, b)`.
    fn at(&self, c: usize, j: usize, a: usize, b: usize) -> f32 {
        self.weight[((c * self.mg + j) * self.kh + a) * self.kw + b]
    }

    /// The stride-1 form's kernel: flipped, its channel axes exchanged per group, `[M, C/G, kh, kw]`.
    fn flipped(&self, imp: &mut Importer, ctx: &Ctx) -> (veil_ir::Const, Option<veil_ir::Const>) {
        let (cg, m, kh, kw) = (self.c / self.groups, self.mg * self.groups, self.kh, self.kw);
        let mut kernel = vec![0f32; m * cg * kh * kw];
        for g in 0..self.groups {
            for j in 0..self.mg {
                for ci in 0..cg {
                    for a in 0..kh {
                        for b in 0..kw {
                            let v = self.at(g * cg + ci, j, kh - 1 - a, kw - 1 - b);
                            kernel[(((g * self.mg + j) * cg + ci) * kh + a) * kw + b] = v;
                        }
                    }
                }
            }
        }
        let weight = imp.weight(&format!("{}.weight", ctx.name), vec![m, cg, kh, kw], kernel);
        let bias = self.bias.as_ref().map(|b| imp.weight(&format!("{}.bias", ctx.name), vec![m], b.clone()));
        (weight, bias)
    }

    /// The polyphase kernel `[G·P·M/G, C/G, Kh, Kw]` (`P = s_h·s_w` phases; output channel
    /// `(g·P + phase)·M/G + j`), and the bias repeated per phase.
    fn phased(
        &self,
        imp: &mut Importer,
        ctx: &Ctx,
        (ah, aw): (&Axis, &Axis),
        (ph, pw): (&Phases, &Phases),
    ) -> (veil_ir::Const, Option<veil_ir::Const>) {
        let (cg, planes) = (self.c / self.groups, ah.stride * aw.stride);
        let (kh, kw) = (ph.taps, pw.taps);
        let channels = self.groups * planes * self.mg;
        let mut kernel = vec![0f32; channels * cg * kh * kw];
        for g in 0..self.groups {
            for j in 0..self.mg {
                for ci in 0..cg {
                    for a in 0..self.kh {
                        let (rh, uh) = ph.tap(ah, a);
                        for b in 0..self.kw {
                            let (rw, uw) = pw.tap(aw, b);
                            let o = (g * planes + rh * aw.stride + rw) * self.mg + j;
                            kernel[((o * cg + ci) * kh + uh) * kw + uw] = self.at(g * cg + ci, j, a, b);
                        }
                    }
                }
            }
        }
        let weight = imp.weight(&format!("{}.weight", ctx.name), vec![channels, cg, kh, kw], kernel);
        let bias = self.bias.as_ref().map(|b| {
            let per: Vec<f32> = (0..channels).map(|o| b[(o / (planes * self.mg)) * self.mg + o % self.mg]).collect();
            imp.weight(&format!("{}.bias", ctx.name), vec![channels], per)
        });
        (weight, bias)
    }
}

/// One axis of the polyphase form: output `t = q·s + r` of phase `r` is position `q − q_min` of
/// that phase's stride-1 convolution, whose `taps` reach `⌊(k − 1)·d / s⌋` inputs back.
#[derive(Clone, Debug, PartialEq)]
struct Phases {
    taps: usize,
    /// The first `q` an output needs.
    first: i64,
    /// How many `q` the outputs need.
    count: usize,
    /// The convolution's input positions: the input index each holds (`None`: a zero).
    sources: Vec<Option<usize>>,
}

impl Phases {
    fn of(a: &Axis) -> Phases {
        let s = a.stride as i64;
        let reach = (a.kernel - 1) * a.dilation / a.stride;
        let first = a.begin.div_euclid(s);
        let last = (a.out as i64 - 1 + a.begin).div_euclid(s);
        let count = (last - first + 1) as usize;
        let front = reach as i64 - first;
        let sources = (0..(count + reach) as i64)
            .map(|p| {
                let i = p - front;
                (i >= 0 && (i as usize) < a.input).then_some(i as usize)
            })
            .collect();
        Phases { taps: reach + 1, first, count, sources }
    }

    /// Tap `j`'s phase and its position in the phase's kernel.
    fn tap(&self, a: &Axis, j: usize) -> (usize, usize) {
        let t = j * a.dilation;
        (t % a.stride, self.taps - 1 - t / a.stride)
    }

    /// Output `o`'s phase and its position in that phase's convolution output.
    fn locate(&self, a: &Axis, o: usize) -> (usize, usize) {
        let (t, s) = (o as i64 + a.begin, a.stride as i64);
        (t.rem_euclid(s) as usize, (t.div_euclid(s) - self.first) as usize)
    }
}

/// `x` (`[N, C, H, W]`) padded and cropped: position `(i, j)` of each plane holds
/// `x[sh[i], sw[j]]`, or zero where either is `None` (a `select` of `x` padded by one zero
/// element at the end of each spatial axis).
fn padded_select(
    imp: &mut Importer,
    ctx: &Ctx,
    x: veil_ir::ValueId,
    [n, c, h, w]: [usize; 4],
    (sh, sw): (&[Option<usize>], &[Option<usize>]),
) -> Result<veil_ir::ValueId, String> {
    let padded = imp.add(
        &ctx.name,
        &format!("{}/zero_padded", ctx.out(0)),
        Op::Pad { pads: vec![0, 0, 0, 0, 0, 0, 1, 1], value: 0.0 },
        &[x],
    )?;
    if n * c * sh.len() * sw.len() > u32::MAX as usize {
        return Err("the padded input is too large".into());
    }
    let mut indices = Vec::with_capacity(n * c * sh.len() * sw.len());
    for plane in 0..n * c {
        for &i in sh {
            for &j in sw {
                let (i, j) = match (i, j) {
                    (Some(i), Some(j)) => (i, j),
                    _ => (h, w),
                };
                indices.push(((plane * (h + 1) + i) * (w + 1) + j) as u32);
            }
        }
    }
    let shape = vec![n, c, sh.len(), sw.len()];
    imp.add(&ctx.name, &format!("{}/padded", ctx.out(0)), Op::Select { indices, shape }, &[padded])
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

    /// Stride 2, kernel 3, pads 1 (5 outputs of the full 7): taps 0 and 2 form phase 0 (tap 2
    /// one input back), tap 1 phase 1; output `o` is phase `(o + 1) mod 2` at `(o + 1) div 2`,
    /// and the phases' convolution reads one zero in front of the three inputs.
    #[test]
    fn polyphase_splits_the_taps_by_phase_and_locates_each_output() {
        let a = Axis { input: 3, stride: 2, kernel: 3, dilation: 1, begin: 1, out: 5 };
        let p = Phases::of(&a);
        assert_eq!((p.taps, p.first, p.count), (2, 0, 3));
        assert_eq!(p.sources, vec![None, Some(0), Some(1), Some(2)]);
        assert_eq!((0..3).map(|j| p.tap(&a, j)).collect::<Vec<_>>(), vec![(0, 1), (1, 1), (0, 0)]);
        assert_eq!((0..5).map(|o| p.locate(&a, o)).collect::<Vec<_>>(), vec![(1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]);
    }
}
