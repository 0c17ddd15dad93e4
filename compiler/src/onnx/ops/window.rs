//! The sliding-window attributes of Conv and the pools (`kernel_shape`, `strides`, `dilations`,
//! `pads`, `auto_pad`, `ceil_mode`), resolved per spatial axis for any number of them, and put
//! together into the IR's 2-D [`Window2d`].

use veil_ir::Window2d;

use crate::onnx::import::Ctx;

/// One spatial axis of a window: all positive except the pads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Axis {
    pub kernel: usize,
    pub stride: usize,
    pub dilation: usize,
    pub pad_begin: usize,
    /// End padding, including `extra`.
    pub pad_end: usize,
    /// End pads added by `ceil_mode` for an overhanging last window (never explicit padding).
    pub extra: usize,
}

/// An axis the window does not move along (a 1-D op's lifted axis).
pub const TRIVIAL: Axis = Axis { kernel: 1, stride: 1, dilation: 1, pad_begin: 0, pad_end: 0, extra: 0 };

/// The window of `ctx.node` over spatial sizes `sizes` with kernel `kernel` (one entry per
/// spatial axis). With `ceil_mode`, the last window may overhang: `extra` end pads stand in for it.
pub fn spatial_axes(ctx: &Ctx, sizes: &[usize], kernel: &[usize], ceil_mode: bool) -> Result<Vec<Axis>, String> {
    let n = sizes.len();
    let list = |name: &str, len: usize, default: usize| -> Result<Vec<usize>, String> {
        match ctx.attrs.usizes(name)? {
            None => Ok(vec![default; len]),
            Some(v) if v.len() == len => Ok(v),
            Some(v) => Err(format!("attribute {name} must have {len} values for a {n}-D op, got {v:?}")),
        }
    };
    let strides = list("strides", n, 1)?;
    let dilations = list("dilations", n, 1)?;
    if kernel.len() != n {
        return Err(format!("kernel_shape {kernel:?} does not fit a {n}-D op"));
    }
    if strides.contains(&0) || dilations.contains(&0) || kernel.contains(&0) {
        return Err("kernel, strides and dilations must be positive".into());
    }
    if sizes.contains(&0) {
        return Err(format!("the input's spatial sizes {sizes:?} include an empty axis"));
    }
    let auto_pad = ctx.attrs.string("auto_pad")?.unwrap_or_else(|| "NOTSET".into());
    let mut pads = vec![0usize; 2 * n];
    match auto_pad.as_str() {
        "NOTSET" => {
            if ctx.attrs.usizes("pads")?.is_some() {
                pads = list("pads", 2 * n, 0)?;
            }
        }
        "VALID" => {}
        "SAME_UPPER" | "SAME_LOWER" => {
            for a in 0..n {
                let out = sizes[a].div_ceil(strides[a]);
                let span = dilations[a] * (kernel[a] - 1) + 1;
                let total = ((out - 1) * strides[a] + span).saturating_sub(sizes[a]);
                let (small, big) = (total / 2, total - total / 2);
                (pads[a], pads[a + n]) = if auto_pad == "SAME_UPPER" { (small, big) } else { (big, small) };
            }
        }
        other => return Err(format!("auto_pad {other:?} is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")),
    }
    let mut axes = Vec::with_capacity(n);
    for a in 0..n {
        let (pad_begin, mut pad_end) = (pads[a], pads[a + n]);
        let span = dilations[a] * (kernel[a] - 1) + 1;
        let mut extra = 0;
        let padded = sizes[a] + pad_begin + pad_end;
        if ceil_mode && let Some(room) = padded.checked_sub(span) {
            let mut out = room.div_ceil(strides[a]) + 1;
            // The last window must start inside the input or its begin padding.
            if (out - 1) * strides[a] >= sizes[a] + pad_begin {
                out -= 1;
            }
            extra = ((out - 1) * strides[a] + span).saturating_sub(padded);
            pad_end += extra;
        }
        axes.push(Axis { kernel: kernel[a], stride: strides[a], dilation: dilations[a], pad_begin, pad_end, extra });
    }
    Ok(axes)
}

/// The IR window over `[h, w]`, from the two axes' geometry.
pub fn window2d(h: Axis, w: Axis) -> Window2d {
    Window2d {
        kernel: [h.kernel, w.kernel],
        strides: [h.stride, w.stride],
        pads: [h.pad_begin, w.pad_begin, h.pad_end, w.pad_end],
        dilations: [h.dilation, w.dilation],
    }
}

/// For an average that counts padding (`count_include_pad = 1`) with a `ceil_mode` overhang:
/// ONNX divides by the taps inside the explicitly padded input, not those in the overhang. The
/// explicit pads move out of the window (into a zero `pad` the caller adds, whose zeros then count
/// as elements), leaving the overhang's `extra` end pads, which an average with
/// `count_include_pad = 0` does not count. Returns the `pad` op's `pads` for an operand of rank
/// `2 + axes.len()`, `None` when nothing is padded explicitly. The output size is unchanged.
pub fn explicit_pads(axes: &mut [Axis]) -> Option<Vec<usize>> {
    let n = axes.len();
    let mut pads = vec![0; 2 * (n + 2)];
    for (a, ax) in axes.iter_mut().enumerate() {
        pads[2 + a] = ax.pad_begin;
        pads[n + 4 + a] = ax.pad_end - ax.extra;
        (ax.pad_begin, ax.pad_end) = (0, ax.extra);
    }
    pads.iter().any(|&p| p != 0).then_some(pads)
}
