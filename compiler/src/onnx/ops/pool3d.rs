//! 3-D pools over `[N, C, D, H, W]` as two 2-D pools of the IR: one over `(H, W)`, then one
//! over `D`. A pool's window is the product of one window per axis, so
//! `max_{d,h,w} x = max_d max_{h,w} x`, and a mean's divisor (the window's size, or its count
//! of non-padding elements) is the product of the per-axis ones, so the mean is the mean over
//! `D` of the means over `(H, W)`. The max is the same garbled comparison tree, split in two
//! (`kh·kw − 1` then `kd − 1` comparisons per output instead of `kd·kh·kw − 1`); the mean stays
//! linear (two public rescales instead of one).
//!
//! Layout: `reshape` to `[N, C·D, H, W]`, the `(H, W)` pool, `reshape` to `[N, C, D, H'·W']`,
//! a `kd × 1` pool, `reshape` to `[N, C, D', H', W']`. Data movement only, local on shares.

use veil_ir::Op;

use super::arg;
use super::window::{Axis, TRIVIAL, explicit_pads, spatial_axes, window2d};
use crate::onnx::import::{Ctx, Importer, Sym};

/// Lowers a MaxPool, AveragePool, GlobalMaxPool or GlobalAveragePool whose operand has rank 5;
/// `None` for any other rank (the 1-D and 2-D lowering applies).
pub fn pool(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Option<Vec<Sym>>, String> {
    let mut x = imp.value(arg(inputs, 0)?)?;
    let [n, c, d, h, w] = imp.ty(x).shape[..] else { return Ok(None) };
    let op_type = ctx.node.op_type();
    let max = op_type.ends_with("MaxPool");
    let mut count_include_pad = !max && ctx.attrs.int_or("count_include_pad", 0)? != 0;
    let mut axes = if op_type.starts_with("Global") {
        [d, h, w].map(|k| Axis { kernel: k, ..TRIVIAL }).to_vec()
    } else {
        let kernel = ctx.attrs.usizes("kernel_shape")?.ok_or("attribute kernel_shape is required")?;
        if kernel.len() != 3 {
            return Err(format!("kernel_shape {kernel:?} does not fit a 3-D pool over {:?}", imp.ty(x).shape));
        }
        let ceil = ctx.attrs.int_or("ceil_mode", 0)? != 0;
        spatial_axes(ctx, &[d, h, w], &kernel, ceil)?
    };
    let out = ctx.out(0);
    if count_include_pad && axes.iter().any(|a| a.extra != 0) {
        if let Some(pads) = explicit_pads(&mut axes) {
            x = imp.add(&ctx.name, &format!("{out}/padded"), Op::Pad { pads, value: 0.0 }, &[x])?;
        }
        count_include_pad = false;
    }
    let [_, _, d, h, w] = imp.ty(x).shape[..] else { unreachable!("a pad keeps the rank") };
    let pool = |window| match max {
        // Padding is never selected by a max, so extra end pads model ceil_mode exactly.
        true => Op::MaxPool { window },
        false => Op::AvgPool { window, count_include_pad },
    };
    // A pool whose window is one element on its axes (video models pool (1, 2, 2)) is the
    // identity there, and is left out rather than run as a garbled layer.
    let identity = |a: &Axis| a.kernel == 1 && a.stride == 1 && a.pad_begin == 0 && a.pad_end == 0;
    let planes = imp.add(&ctx.name, &format!("{out}/planes"), Op::Reshape { shape: vec![n, c * d, h, w] }, &[x])?;
    let hw = match identity(&axes[1]) && identity(&axes[2]) {
        true => planes,
        false => imp.add(&ctx.name, &format!("{out}/pooled_hw"), pool(window2d(axes[1], axes[2])), &[planes])?,
    };
    let [_, _, h2, w2] = imp.ty(hw).shape[..] else { unreachable!("2-D pools give [N, C, H, W]") };
    let columns = imp.add(&ctx.name, &format!("{out}/depth"), Op::Reshape { shape: vec![n, c, d, h2 * w2] }, &[hw])?;
    let dd = match identity(&axes[0]) {
        true => columns,
        false => imp.add(&ctx.name, &format!("{out}/pooled_d"), pool(window2d(axes[0], TRIVIAL)), &[columns])?,
    };
    let d2 = imp.ty(dd).shape[2];
    let y = imp.add(&ctx.name, out, Op::Reshape { shape: vec![n, c, d2, h2, w2] }, &[dd])?;
    Ok(Some(vec![Sym::Value(y)]))
}
