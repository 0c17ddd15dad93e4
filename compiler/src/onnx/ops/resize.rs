//! `Resize` (opsets 10 to 19+) and `Upsample`: with static shapes, scales and sizes, every
//! mode is a public linear map of the operand, separable by axis, so it runs locally on shares.
//!
//! Each resized axis is a list of *taps* per output position (input index and public
//! coefficient), computed as ONNX's reference implementation does (`onnx.reference.ops.
//! op_resize`, in f64): the coordinate transformation, the mode's coefficients (nearest with
//! its rounding, linear, cubic with `cubic_coeff_a`, both with `antialias`), `exclude_outside`,
//! edge clamping, and `tf_crop_and_resize`'s extrapolation value. In the IR an axis is one
//! static `select` per tap slot, each scaled by its coefficients (a public `affine`, local on
//! shares) and summed; nearest needs only the `select`, one for all its axes. Axes go in
//! ascending order, as the reference's do (the order changes nothing but extrapolated
//! positions, where it is the reference's).

use veil_ir::{Op, ValueId};

use super::super::consts::CTensor;
use super::super::import::{Ctx, Importer, Sym};
use super::{arg, opt_const};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Nearest,
    Linear,
    Cubic,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Nearest {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
    /// onnxruntime's rounding for Upsample and opset-10 Resize: floor when enlarging, ceil
    /// when shrinking.
    Simple,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Coords {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
    TfCropAndResize,
}

/// How one node resizes, per axis.
#[derive(Clone, Debug)]
struct Spec {
    mode: Mode,
    nearest: Nearest,
    coords: Coords,
    cubic_a: f64,
    exclude_outside: bool,
    antialias: bool,
    extrapolation: f64,
}

/// One axis: for each output position, its (input index, coefficient) taps, and whether it is
/// extrapolated (then its value is the extrapolation value, and it has no taps).
#[derive(Clone, Debug, PartialEq)]
struct AxisMap {
    taps: Vec<Vec<(usize, f64)>>,
    extrapolated: Vec<bool>,
}

fn attr_str(ctx: &Ctx, name: &str, default: &str) -> Result<String, String> {
    Ok(ctx.attrs.string(name)?.unwrap_or_else(|| default.to_string()))
}

fn spec(ctx: &Ctx, upsample: bool) -> Result<Spec, String> {
    let mode = match attr_str(ctx, "mode", "nearest")?.as_str() {
        "nearest" => Mode::Nearest,
        "linear" | "bilinear" | "trilinear" => Mode::Linear,
        "cubic" if !upsample => Mode::Cubic,
        m => return Err(format!("mode = {m:?} is not one of \"nearest\", \"linear\" and \"cubic\"")),
    };
    // Upsample and opset-10 Resize have neither coordinate nor rounding attributes.
    if upsample || ctx.opset < 11 {
        return Ok(Spec {
            mode,
            nearest: Nearest::Simple,
            coords: Coords::Asymmetric,
            cubic_a: -0.75,
            exclude_outside: false,
            antialias: false,
            extrapolation: 0.0,
        });
    }
    let coords = match attr_str(ctx, "coordinate_transformation_mode", "half_pixel")?.as_str() {
        "half_pixel" => Coords::HalfPixel,
        "half_pixel_symmetric" => Coords::HalfPixelSymmetric,
        "pytorch_half_pixel" => Coords::PytorchHalfPixel,
        "align_corners" => Coords::AlignCorners,
        "asymmetric" => Coords::Asymmetric,
        "tf_half_pixel_for_nn" => Coords::TfHalfPixelForNn,
        "tf_crop_and_resize" => Coords::TfCropAndResize,
        m => return Err(format!("coordinate_transformation_mode = {m:?} is not one ONNX defines")),
    };
    let nearest = match attr_str(ctx, "nearest_mode", "round_prefer_floor")?.as_str() {
        "round_prefer_floor" => Nearest::RoundPreferFloor,
        "round_prefer_ceil" => Nearest::RoundPreferCeil,
        "floor" => Nearest::Floor,
        "ceil" => Nearest::Ceil,
        m => return Err(format!("nearest_mode = {m:?} is not one ONNX defines")),
    };
    let antialias = ctx.attrs.int_or("antialias", 0)? != 0;
    if antialias && mode == Mode::Nearest {
        return Err("antialias = 1 is defined for the linear and cubic modes only".into());
    }
    Ok(Spec {
        mode,
        nearest,
        coords,
        cubic_a: f64::from(ctx.attrs.float_or("cubic_coeff_a", -0.75)?),
        exclude_outside: ctx.attrs.int_or("exclude_outside", 0)? != 0,
        antialias,
        extrapolation: f64::from(ctx.attrs.float_or("extrapolation_value", 0.0)?),
    })
}

/// The mode's coefficients for `ratio` in (0, 1] (the source coordinate's distance past the
/// pixel on its left) at `scale`, as the reference's `_*_coeffs` functions compute them.
fn coefficients(s: &Spec, ratio: f64, scale: f64) -> Vec<f64> {
    let normalised = |c: Vec<f64>| {
        let sum: f64 = c.iter().sum();
        c.into_iter().map(|v| v / sum).collect()
    };
    match s.mode {
        Mode::Nearest => {
            let b = |lo: bool| if lo { vec![1.0, 0.0] } else { vec![0.0, 1.0] };
            if ratio == 1.0 {
                return b(false);
            }
            match s.nearest {
                Nearest::RoundPreferFloor => b(ratio <= 0.5),
                Nearest::RoundPreferCeil => b(ratio < 0.5),
                Nearest::Floor => b(true),
                Nearest::Ceil => b(false),
                Nearest::Simple => b(scale >= 1.0),
            }
        }
        Mode::Linear if s.antialias => {
            let sc = scale.min(1.0);
            let start = (-1.0 / sc).floor() as i64 + 1;
            let footprint = 2 - 2 * start;
            normalised(
                (start..start + footprint).map(|i| (1.0 - ((i as f64 - ratio) * sc).abs()).clamp(0.0, 1.0)).collect(),
            )
        }
        Mode::Linear => vec![1.0 - ratio, ratio],
        Mode::Cubic if s.antialias => {
            let (a, sc) = (s.cubic_a, scale.min(1.0));
            let k = |x: f64| {
                let x = x.abs();
                if x <= 1.0 {
                    (a + 2.0) * x * x * x - (a + 3.0) * x * x + 1.0
                } else if x < 2.0 {
                    a * x * x * x - 5.0 * a * x * x + 8.0 * a * x - 4.0 * a
                } else {
                    0.0
                }
            };
            let start = (-2.0 / sc).floor() as i64 + 1;
            normalised((start..2 - start).map(|i| k(sc * (i as f64 - ratio))).collect())
        }
        Mode::Cubic => {
            let (a, r, q) = (s.cubic_a, ratio, 1.0 - ratio);
            vec![
                ((a * (r + 1.0) - 5.0 * a) * (r + 1.0) + 8.0 * a) * (r + 1.0) - 4.0 * a,
                ((a + 2.0) * r - (a + 3.0)) * r * r + 1.0,
                ((a + 2.0) * q - (a + 3.0)) * q * q + 1.0,
                ((a * (q + 1.0) - 5.0 * a) * (q + 1.0) + 8.0 * a) * (q + 1.0) - 4.0 * a,
            ]
        }
    }
}

/// The source coordinate of output index `y`, and whether it is extrapolated
/// (`tf_crop_and_resize` outside the input).
fn source(s: &Spec, y: f64, scale: f64, input: usize, out_int: usize, roi: (f64, f64)) -> (f64, bool) {
    let (iw, ow) = (input as f64, scale * input as f64);
    let x = match s.coords {
        Coords::AlignCorners if ow == 1.0 => 0.0,
        Coords::AlignCorners => y * (iw - 1.0) / (ow - 1.0),
        Coords::Asymmetric => y / scale,
        Coords::TfHalfPixelForNn => (y + 0.5) / scale,
        Coords::TfCropAndResize => {
            let x = if ow == 1.0 {
                (roi.1 - roi.0) * (iw - 1.0) / 2.0
            } else {
                y * (roi.1 - roi.0) * (iw - 1.0) / (ow - 1.0)
            } + roi.0 * (iw - 1.0);
            return (x, x < 0.0 || x > iw - 1.0);
        }
        Coords::PytorchHalfPixel if ow == 1.0 => -0.5,
        Coords::PytorchHalfPixel | Coords::HalfPixel => (y + 0.5) / scale - 0.5,
        Coords::HalfPixelSymmetric => {
            let adjustment = out_int as f64 / ow;
            iw / 2.0 * (1.0 - adjustment) + (y + 0.5) / scale - 0.5
        }
    };
    (x, false)
}

/// One axis of `input` elements resized to `out` at `scale` (see [`AxisMap`]).
fn axis_map(s: &Spec, input: usize, out: usize, scale: f64, roi: (f64, f64)) -> AxisMap {
    let mut map = AxisMap { taps: Vec::with_capacity(out), extrapolated: Vec::with_capacity(out) };
    for y in 0..out {
        let (x, extrapolated) = source(s, y as f64, scale, input, out, roi);
        map.extrapolated.push(extrapolated);
        if extrapolated {
            map.taps.push(Vec::new());
            continue;
        }
        let ratio = if x == x.floor() { 1.0 } else { x - x.floor() };
        let mut c = coefficients(s, ratio, scale);
        let n = c.len() as i64;
        // The n indices nearest x (ties to the smaller), in edge-padded coordinates.
        let pad = (n + 1) / 2;
        let xp = x + pad as f64;
        let (p, frac) = (xp.floor() as i64, xp - xp.floor());
        let offset = if n % 2 == 0 {
            if frac == 0.0 { -(n / 2) } else { -(n / 2) + 1 }
        } else {
            let base = -((n - 1) / 2);
            if frac <= 0.5 { base } else { base + 1 }
        };
        let idx: Vec<i64> = (0..n).map(|k| p + offset + k - pad).collect();
        if s.exclude_outside {
            for (ci, &i) in c.iter_mut().zip(&idx) {
                if i < 0 || i >= input as i64 {
                    *ci = 0.0;
                }
            }
            let sum: f64 = c.iter().sum();
            if sum != 0.0 {
                c.iter_mut().for_each(|v| *v /= sum);
            }
        }
        let mut taps: Vec<(usize, f64)> = Vec::new();
        for (&i, &w) in idx.iter().zip(&c) {
            let i = i.clamp(0, input as i64 - 1) as usize;
            if w == 0.0 {
                continue;
            }
            match taps.iter_mut().find(|t| t.0 == i) {
                Some(t) => t.1 += w,
                None => taps.push((i, w)),
            }
        }
        map.taps.push(taps);
    }
    map
}

/// Per axis of the operand (shape `dims`): the output size and scale, from `scales` or
/// `sizes` (on `axes`, with `keep_aspect_ratio_policy`), as the reference derives them.
fn sizes_and_scales(
    ctx: &Ctx,
    dims: &[usize],
    scales: Option<Vec<f64>>,
    sizes: Option<Vec<i64>>,
    axes: &[usize],
) -> Result<(Vec<usize>, Vec<f64>), String> {
    let r = dims.len();
    let mut out: Vec<usize> = dims.to_vec();
    let mut sc = vec![1.0f64; r];
    match (scales, sizes) {
        (_, Some(sizes)) => {
            if sizes.len() != axes.len() {
                return Err(format!("sizes has {} entries for {} axes", sizes.len(), axes.len()));
            }
            for (&a, &n) in axes.iter().zip(&sizes) {
                out[a] = usize::try_from(n)
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("sizes holds {n}; sizes must be positive"))?;
                sc[a] = out[a] as f64 / dims[a] as f64;
            }
            let policy = attr_str(ctx, "keep_aspect_ratio_policy", "stretch")?;
            if policy != "stretch" {
                let pick = axes.iter().map(|&a| sc[a]);
                let s = match policy.as_str() {
                    "not_larger" => pick.fold(f64::INFINITY, f64::min),
                    "not_smaller" => pick.fold(f64::NEG_INFINITY, f64::max),
                    p => return Err(format!("keep_aspect_ratio_policy = {p:?} is not one ONNX defines")),
                };
                for &a in axes {
                    sc[a] = s;
                    out[a] = (s * dims[a] as f64 + 0.5) as usize;
                }
            }
        }
        (Some(scales), None) => {
            if scales.len() != axes.len() {
                return Err(format!("scales has {} entries for {} axes", scales.len(), axes.len()));
            }
            for (&a, &s) in axes.iter().zip(&scales) {
                if !(s.is_finite() && s > 0.0) {
                    return Err(format!("scales holds {s}; scales must be positive and finite"));
                }
                sc[a] = s;
                out[a] = (s * dims[a] as f64) as usize;
                if out[a] == 0 {
                    return Err(format!(
                        "scale {s} empties axis {a} of size {} (empty tensors are not supported)",
                        dims[a]
                    ));
                }
            }
        }
        (None, None) => return Err("one of scales and sizes is required".into()),
    }
    Ok((out, sc))
}

/// A constant operand that may be given empty (opset 11–12's placeholders): `None` then.
fn given<'a>(inputs: &'a [Option<Sym>], i: usize, what: &str) -> Result<Option<&'a CTensor>, String> {
    Ok(opt_const(inputs, i, what)?.filter(|t| t.len() > 0))
}

/// `Resize` and `Upsample` (see the module doc).
pub fn resize(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let upsample = ctx.node.op_type() == "Upsample";
    let s = spec(ctx, upsample)?;
    let x = arg(inputs, 0)?;
    let dims = match x {
        Sym::Const(t) => t.shape.clone(),
        x => {
            let v = imp.value(x)?;
            imp.ty(v).shape.clone()
        }
    };
    let r = dims.len();
    let floats = |t: &CTensor| t.floats().into_iter().map(f64::from).collect::<Vec<_>>();
    let (scales, sizes, roi) = if upsample && ctx.opset < 9 {
        let sc = ctx.attrs.floats("scales")?.ok_or("attribute scales is required")?;
        (Some(sc.into_iter().map(f64::from).collect()), None, None)
    } else if upsample || ctx.opset < 11 {
        (given(inputs, 1, "scales")?.map(floats), None, None)
    } else {
        let roi = given(inputs, 1, "roi")?.map(floats);
        (given(inputs, 2, "scales")?.map(floats), given(inputs, 3, "sizes")?.map(|t| t.ints()).transpose()?, roi)
    };
    let axes: Vec<usize> = match ctx.attrs.ints("axes")? {
        Some(a) => a.iter().map(|&a| super::axis(a, r)).collect::<Result<_, _>>()?,
        None => (0..r).collect(),
    };
    let (out, sc) = sizes_and_scales(ctx, &dims, scales, sizes, &axes)?;
    super::moved_elements(&out, "the resized result")?;
    let roi_of = |a: usize| -> Result<(f64, f64), String> {
        match &roi {
            None => Ok((0.0, 1.0)),
            Some(roi) if roi.len() == 2 * axes.len() => {
                let k = axes.iter().position(|&b| b == a).expect("a is one of axes");
                Ok((roi[k], roi[axes.len() + k]))
            }
            Some(roi) => Err(format!("roi has {} entries for {} axes", roi.len(), axes.len())),
        }
    };
    if s.coords == Coords::TfCropAndResize && roi.is_none() {
        return Err("coordinate_transformation_mode = \"tf_crop_and_resize\" needs roi".into());
    }
    let mut sorted = axes.clone();
    sorted.sort_unstable();
    let mut maps = Vec::new();
    for &a in &sorted {
        let roi = if s.coords == Coords::TfCropAndResize { roi_of(a)? } else { (0.0, 1.0) };
        let identity = (sc[a] - 1.0).abs() < 1e-9 && out[a] == dims[a] && roi == (0.0, 1.0);
        if !identity {
            maps.push((a, axis_map(&s, dims[a], out[a], sc[a], roi)));
        }
    }
    match x {
        Sym::Const(t) => Ok(vec![Sym::Const(maps.iter().fold(t.clone(), |t, (a, m)| const_axis(&t, *a, m, &s)))]),
        x => {
            let mut v = imp.value(x)?;
            // Moves only (nearest): every axis composed into one `select`, by resizing the
            // operand's flat indices.
            let n: usize = dims.iter().product();
            let moves = maps.iter().all(|(_, m)| {
                m.taps.iter().all(|t| matches!(t[..], [(_, w)] if w == 1.0)) && !m.extrapolated.contains(&true)
            });
            if moves && !maps.is_empty() && n < 1 << 24 {
                let iota = CTensor::f32(dims.clone(), (0..n).map(|i| i as f32).collect());
                let moved = maps.iter().fold(iota, |t, (a, m)| const_axis(&t, *a, m, &s));
                let indices = moved.floats().iter().map(|&i| i as u32).collect();
                let op = Op::Select { indices, shape: moved.shape };
                return Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), op, &[v])?)]);
            }
            let last = maps.len();
            for (k, (a, m)) in maps.iter().enumerate() {
                let name = if k + 1 == last { ctx.out(0).to_string() } else { format!("{}/axis{a}", ctx.out(0)) };
                v = value_axis(imp, ctx, v, *a, m, &s, &name)?;
            }
            Ok(vec![Sym::Value(v)])
        }
    }
}

/// Row-major index of the element at `o` in shape `out`, with axis `a`'s coordinate replaced
/// by `src`, in `dims` (the same shape but for axis `a`).
fn source_indices(dims: &[usize], a: usize, out_len: usize, pick: impl Fn(usize) -> usize) -> Vec<u32> {
    let outer: usize = dims[..a].iter().product();
    let inner: usize = dims[a + 1..].iter().product();
    let mut idx = Vec::with_capacity(outer * out_len * inner);
    for o in 0..outer {
        for y in 0..out_len {
            let base = (o * dims[a] + pick(y)) * inner;
            idx.extend((0..inner).map(|i| (base + i) as u32));
        }
    }
    idx
}

fn const_axis(t: &CTensor, a: usize, m: &AxisMap, s: &Spec) -> CTensor {
    let x = t.floats();
    let mut shape = t.shape.clone();
    shape[a] = m.taps.len();
    let (outer, inner): (usize, usize) = (t.shape[..a].iter().product(), t.shape[a + 1..].iter().product());
    let mut y = Vec::with_capacity(outer * m.taps.len() * inner);
    for o in 0..outer {
        for (taps, &ex) in m.taps.iter().zip(&m.extrapolated) {
            for i in 0..inner {
                let at = |k: usize| f64::from(x[(o * t.shape[a] + k) * inner + i]);
                let v = if ex { s.extrapolation } else { taps.iter().map(|&(k, w)| w * at(k)).sum() };
                y.push(v as f32);
            }
        }
    }
    CTensor::f32(shape, y)
}

/// One axis of a computed value: a `select` per tap slot, scaled by a public `affine` unless
/// every coefficient in it is 1, then summed (`extrapolated` positions get the value as a
/// public shift).
fn value_axis(
    imp: &mut Importer,
    ctx: &Ctx,
    v: ValueId,
    a: usize,
    m: &AxisMap,
    s: &Spec,
    out: &str,
) -> Result<ValueId, String> {
    let dims = imp.ty(v).shape.clone();
    let n = m.taps.len();
    let mut shape = dims.clone();
    shape[a] = n;
    if shape.iter().product::<usize>() > u32::MAX as usize {
        return Err(format!("the resized shape {shape:?} is too large"));
    }
    let slots = m.taps.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut coef_shape = vec![1; dims.len()];
    coef_shape[a] = n;
    let shift: Vec<f32> = m.extrapolated.iter().map(|&e| if e { s.extrapolation as f32 } else { 0.0 }).collect();
    let shift = shift.iter().any(|&v| v != 0.0).then_some(shift);
    let mut acc: Option<ValueId> = None;
    for t in 0..slots {
        let pick = |y: usize| m.taps[y].get(t).map_or(0, |p| p.0);
        let coef: Vec<f32> = (0..n).map(|y| m.taps[y].get(t).map_or(0.0, |p| p.1 as f32)).collect();
        let shift_here = if t + 1 == slots { shift.clone() } else { None };
        let indices = source_indices(&dims, a, n, pick);
        let mut term = if shape == dims && indices.iter().enumerate().all(|(k, &i)| k == i as usize) {
            v
        } else {
            imp.add(&ctx.name, &format!("{out}/taps{t}"), Op::Select { indices, shape: shape.clone() }, &[v])?
        };
        if coef.iter().any(|&c| c != 1.0) || shift_here.is_some() {
            let scale = imp.public(&format!("{}.{out}/coefficients{t}", ctx.name), coef_shape.clone(), coef);
            let shift =
                shift_here.map(|d| imp.public(&format!("{}.{out}/extrapolated", ctx.name), coef_shape.clone(), d));
            term = imp.add(&ctx.name, &format!("{out}/term{t}"), Op::Affine { scale: Some(scale), shift }, &[term])?;
        }
        acc = Some(match acc {
            None => term,
            Some(prev) => imp.add(&ctx.name, &format!("{out}/sum{t}"), Op::Add, &[prev, term])?,
        });
    }
    let acc = acc.expect("one slot at least");
    if acc != v {
        imp.g.values[acc].name = out.to_string();
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mode: Mode, coords: Coords) -> Spec {
        Spec {
            mode,
            nearest: Nearest::RoundPreferFloor,
            coords,
            cubic_a: -0.75,
            exclude_outside: false,
            antialias: false,
            extrapolation: 0.0,
        }
    }

    /// Linear upsampling by 2 with half-pixel centres: the first output is the edge, the next
    /// ones 3:1 mixes, each row of coefficients sums to one.
    #[test]
    fn half_pixel_linear_by_two_mixes_neighbours_three_to_one() {
        let m = axis_map(&spec(Mode::Linear, Coords::HalfPixel), 3, 6, 2.0, (0.0, 1.0));
        assert_eq!(m.taps[0], vec![(0, 1.0)]);
        assert_eq!(m.taps[1], vec![(0, 0.75), (1, 0.25)]);
        assert_eq!(m.taps[2], vec![(0, 0.25), (1, 0.75)]);
        assert_eq!(m.taps[5], vec![(2, 1.0)]);
        for t in &m.taps {
            assert!((t.iter().map(|p| p.1).sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }

    /// Nearest with asymmetric coordinates and floor is torch's `interpolate(scale_factor=2)`:
    /// each input repeated.
    #[test]
    fn asymmetric_floor_nearest_repeats_each_input() {
        let mut s = spec(Mode::Nearest, Coords::Asymmetric);
        s.nearest = Nearest::Floor;
        let m = axis_map(&s, 3, 6, 2.0, (0.0, 1.0));
        let picked: Vec<usize> = m.taps.iter().map(|t| t[0].0).collect();
        assert_eq!(picked, vec![0, 0, 1, 1, 2, 2]);
    }
}
