//! Ring kernels of the linear layers: the simulator's semantics and the server's online step
//! (`W·(x − r) + b` on its share), so both compute exactly the same.

use crate::ring::Ring;

use super::kernels::valid_outputs;

pub mod exp2;
pub mod pl_gelu;
pub mod reciprocal;
pub mod round;
pub mod rsqrt;
pub use pl_gelu::PL_GELU_MAX_ERROR;

/// `x · Wᵀ + b` over the last axis of `x` (`[.., k]`); `weights` is `(W [n, k], n, bias)`.
pub fn dense(
    ring: Ring,
    x: &[u64],
    shape: &[usize],
    weights: (&[i64], usize, Option<&[i64]>),
) -> (Vec<usize>, Vec<u64>) {
    let (w, n, b) = weights;
    let k = *shape.last().expect("dense input has rank ≥ 1");
    let mut out_shape = shape.to_vec();
    *out_shape.last_mut().expect("rank ≥ 1") = n;
    let mut out = Vec::with_capacity(x.len() / k.max(1) * n);
    for row in x.chunks_exact(k) {
        for j in 0..n {
            let acc = row
                .iter()
                .zip(&w[j * k..(j + 1) * k])
                .fold(b.map_or(0, |b| b[j] as u64), |a, (&xv, &wv)| a.wrapping_add(xv.wrapping_mul(wv as u64)));
            out.push(ring.reduce(acc));
        }
    }
    (out_shape, out)
}

/// `weights` is `(W, M, bias)`: the quantized weight, the output channels and the bias.
pub fn conv2d(
    ring: Ring,
    x: &[u64],
    shape: &[usize],
    weights: (&[i64], usize, Option<&[i64]>),
    win: &crate::Window2d,
    groups: usize,
) -> (Vec<usize>, Vec<u64>) {
    let (w, m, b) = weights;
    let [n, c, h, wd] = shape[..] else { unreachable!("verified: conv input is 4-D") };
    let [oh, ow] = win.output_hw([h, wd]).expect("verified: window fits");
    let [kh, kw] = win.kernel;
    let (cg, mg) = (c / groups, m / groups);
    let mut out = vec![0u64; n * m * oh * ow];
    // Per kernel tap, the output rows and columns it reaches inside the input (the others are
    // in padding), so the innermost loop runs over a contiguous row without a test per element.
    let ranges: Vec<_> = (0..kh)
        .flat_map(|ky| (0..kw).map(move |kx| (ky, kx)))
        .map(|(ky, kx)| (valid_outputs(win, 0, ky, h, oh), valid_outputs(win, 1, kx, wd, ow)))
        .collect();
    let [sy, sx] = win.strides;
    for bn in 0..n {
        for oc in 0..m {
            let g = oc / mg;
            let dst = &mut out[(bn * m + oc) * oh * ow..][..oh * ow];
            dst.iter_mut().for_each(|d| *d = b.map_or(0, |b| b[oc] as u64));
            for ic in 0..cg {
                let xc = &x[((bn * c) + g * cg + ic) * h * wd..][..h * wd];
                for (t, (ys, xs)) in ranges.iter().enumerate() {
                    if xs.is_empty() {
                        continue;
                    }
                    let (ky, kx) = (t / kw, t % kw);
                    let wv = w[(oc * cg + ic) * kh * kw + t] as u64;
                    // The first valid column's input column; the others follow at stride `sx`.
                    let ix0 = xs.start * sx + kx * win.dilations[1] - win.pads[1];
                    for oy in ys.clone() {
                        let iy = oy * sy + ky * win.dilations[0] - win.pads[0];
                        let row = &xc[iy * wd..][..wd];
                        let drow = &mut dst[oy * ow..][xs.clone()];
                        if sx == 1 {
                            for (d, &v) in drow.iter_mut().zip(&row[ix0..]) {
                                *d = d.wrapping_add(wv.wrapping_mul(v));
                            }
                        } else {
                            for (d, &v) in drow.iter_mut().zip(row[ix0..].iter().step_by(sx)) {
                                *d = d.wrapping_add(wv.wrapping_mul(v));
                            }
                        }
                    }
                }
            }
            dst.iter_mut().for_each(|d| *d = ring.reduce(*d));
        }
    }
    (vec![n, m, oh, ow], out)
}

/// Max or sum of each pooling window (`[N, C, H, W]` input), ring semantics of the simulator.
pub fn window_sum(ring: Ring, x: &[u64], shape: &[usize], win: &crate::Window2d, max: bool) -> (Vec<usize>, Vec<u64>) {
    let [n, c, h, w] = shape[..] else { unreachable!("verified: pool input is 4-D") };
    let [oh, ow] = win.output_hw([h, w]).expect("verified: window fits");
    let mut out = Vec::with_capacity(n * c * oh * ow);
    for plane in x.chunks_exact(h * w) {
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut best, mut sum) = (None::<i64>, 0u64);
                for ky in 0..win.kernel[0] {
                    for kx in 0..win.kernel[1] {
                        if let (Some(iy), Some(ix)) =
                            (super::kernels::tap(win, 0, oy, ky, h), super::kernels::tap(win, 1, ox, kx, w))
                        {
                            let v = plane[iy * w + ix];
                            sum = sum.wrapping_add(v);
                            let sv = ring.to_signed(v);
                            best = Some(best.map_or(sv, |b| b.max(sv)));
                        }
                    }
                }
                out.push(if max { ring.from_signed(best.unwrap_or(0)) } else { ring.reduce(sum) });
            }
        }
    }
    (vec![n, c, oh, ow], out)
}

/// Flat input indices of each output element's window taps (`[N, C, H, W]` input), in the
/// order [`window_sum`] visits them.
pub fn window_taps(shape: &[usize], win: &crate::Window2d) -> Vec<Vec<usize>> {
    let [n, c, h, w] = shape[..] else { unreachable!("verified: pool input is 4-D") };
    let [oh, ow] = win.output_hw([h, w]).expect("verified: window fits");
    let mut out = Vec::with_capacity(n * c * oh * ow);
    for plane in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut taps = Vec::with_capacity(win.kernel[0] * win.kernel[1]);
                for ky in 0..win.kernel[0] {
                    for kx in 0..win.kernel[1] {
                        if let (Some(iy), Some(ix)) =
                            (super::kernels::tap(win, 0, oy, ky, h), super::kernels::tap(win, 1, ox, kx, w))
                        {
                            taps.push(plane * h * w + iy * w + ix);
                        }
                    }
                }
                out.push(taps);
            }
        }
    }
    out
}

/// The ring coefficients of `poly` (ascending) for an operand at scale `s_in`: coefficient `i`
/// A Clip's (or a clamped rounding's) bounds at scale `s` as signed ring values: a bound beyond
/// the ring's range never binds (`i64::MIN`/`i64::MAX`), nor does a missing one.
pub fn clip_bounds(ring: Ring, min: Option<f32>, max: Option<f32>, s: u8) -> (i64, i64) {
    let bound = |b: Option<f32>, none: i64| {
        b.map_or(none, |b| {
            ring.encode(b as f64, s).map_or(if b < 0.0 { i64::MIN } else { i64::MAX }, |e| ring.to_signed(e))
        })
    };
    (bound(min, i64::MIN), bound(max, i64::MAX))
}

/// at scale `(deg − i)·s_in + f_c` so every term lands on the output scale.
pub fn poly_coeffs(ring: Ring, coeffs: &[f32], s_in: u8) -> Vec<u64> {
    let (fc, _) = crate::op::poly_scales(coeffs, s_in);
    let deg = coeffs.len() - 1;
    coeffs
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            ring.from_signed((c as f64 * (((deg - i) as u32 * s_in as u32 + fc) as f64).exp2()).round() as i64)
        })
        .collect()
}

/// The piecewise-linear sigmoid (PLAN: Amin, Curtis and Hayes-Gill, 1997) that
/// [`crate::Op::PlSigmoid`] computes in fixed point: for `a = |x|`,
/// `1` when `a ≥ 5`, `a/32 + 0.84375` when `a ≥ 2.375`, `a/8 + 0.625` when `a ≥ 1`, else
/// `a/4 + 0.5`; `1 − y(a)` for negative `x`. Slopes are powers of two, so a circuit needs only
/// wiring for them. Its largest distance from the logistic function is [`PL_SIGMOID_MAX_ERROR`].
pub mod pl_sigmoid {
    use crate::ring::Ring;

    /// Right shifts of `|x|` per segment, the lowest segment first.
    pub const SHIFTS: [u32; 3] = [2, 3, 5];
    /// Segment starts (`|x| ≥`), lowest first (the first segment starts at 0).
    pub const THRESHOLDS: [f64; 3] = [1.0, 2.375, 5.0];
    /// Intercepts per segment, lowest first.
    pub const INTERCEPTS: [f64; 3] = [0.5, 0.625, 0.84375];

    /// A constant at scale `s` as a ring element (rounded; the circuit uses the same).
    pub fn constant(ring: Ring, c: f64, s: u8) -> u64 {
        ring.reduce((c * (s as f64).exp2()).round() as u64)
    }

    /// The approximation at scale `s` (input and output), as a ring element.
    pub fn eval(ring: Ring, x: u64, s: u8) -> u64 {
        let neg = ring.to_signed(x) < 0;
        let a = if neg { ring.reduce(x.wrapping_neg()) } else { x };
        let one = constant(ring, 1.0, s);
        let mut y = one;
        for i in (0..3).rev() {
            if a < constant(ring, THRESHOLDS[i], s) {
                y = ring.reduce((a >> SHIFTS[i]).wrapping_add(constant(ring, INTERCEPTS[i], s)));
            }
        }
        ring.reduce(if neg { one.wrapping_sub(y) } else { y })
    }

    /// The approximation in real arithmetic (no rounding): what `eval` computes as `s` grows.
    pub fn real(x: f64) -> f64 {
        let a = x.abs();
        let y = match a {
            a if a >= 5.0 => 1.0,
            a if a >= 2.375 => a / 32.0 + 0.84375,
            a if a >= 1.0 => a / 8.0 + 0.625,
            a => a / 4.0 + 0.5,
        };
        if x < 0.0 { 1.0 - y } else { y }
    }
}

/// Largest `|pl_sigmoid::real(x) − 1/(1 + e^−x)|` over all `x` (at `x ≈ ±2.375` and the other
/// segment joins; checked on a fine grid by a test).
pub const PL_SIGMOID_MAX_ERROR: f64 = 0.0190;

#[cfg(test)]
mod pl_sigmoid_tests {
    use super::*;

    /// The stated error is the approximation's: within it everywhere on a fine grid, and tight
    /// (some point comes within 10⁻³ of it).
    #[test]
    fn the_stated_maximum_error_holds_and_is_tight() {
        let worst = (-800_000..=800_000)
            .map(|i| i as f64 * 1e-5)
            .map(|x| (pl_sigmoid::real(x) - 1.0 / (1.0 + (-x).exp())).abs())
            .fold(0f64, f64::max);
        assert!(worst <= PL_SIGMOID_MAX_ERROR && worst > PL_SIGMOID_MAX_ERROR - 1e-3, "{worst}");
    }

    /// The float interpreter keeps the model's logistic function; its approximated mode (the
    /// precision search's reference) gives the piecewise-linear one.
    #[test]
    fn the_float_interpreter_is_exact_and_its_approximated_mode_is_not() {
        let mut g = crate::Graph::new("s");
        let x = g.add_input("x", crate::TensorType::f32(vec![1, 5]));
        let y = g.add_node("s", "y", crate::Op::PlSigmoid, &[x]).unwrap();
        g.outputs.push(y);
        let xs = [-6.0f32, -2.0, 0.3, 2.375, 4.0];
        let t = crate::Tensor::new(vec![1, 5], xs.to_vec()).unwrap();
        let exact = crate::eval::run_float(&g, std::slice::from_ref(&t)).unwrap().remove(0);
        let approx = crate::eval::run_float_approximated(&g, &[t]).unwrap().remove(0);
        for (i, &v) in xs.iter().enumerate() {
            assert_eq!(exact.data[i], (1.0 / (1.0 + (-(v as f64)).exp())) as f32);
            assert_eq!(approx.data[i], pl_sigmoid::real(v as f64) as f32);
        }
        assert_ne!(exact.data, approx.data);
    }

    /// The fixed-point form is the real one within the rounding of the shift and constants.
    #[test]
    fn fixed_point_follows_the_real_approximation() {
        let (ring, s) = (Ring::new(30), 12u8);
        for i in -7000..=7000 {
            let x = i as f64 / 1000.0;
            let q = ring.encode(x, s).unwrap();
            let got = ring.decode(pl_sigmoid::eval(ring, q, s), s);
            let xr = ring.decode(q, s);
            assert!((got - pl_sigmoid::real(xr)).abs() <= 2.0 * 2f64.powi(-(s as i32)), "x={x}: {got}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The convolution's definition, one output element and tap at a time, padding tested per
    /// tap: the reference for [`conv2d`].
    fn naive_conv2d(
        ring: Ring,
        x: &[u64],
        [n, c, h, wd]: [usize; 4],
        (w, m, b): (&[i64], usize, Option<&[i64]>),
        win: &crate::Window2d,
        groups: usize,
    ) -> Vec<u64> {
        let [oh, ow] = win.output_hw([h, wd]).unwrap();
        let [kh, kw] = win.kernel;
        let (cg, mg) = (c / groups, m / groups);
        let mut out = Vec::new();
        for bn in 0..n {
            for oc in 0..m {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = b.map_or(0, |b| b[oc] as u64);
                        for ic in 0..cg {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let tap = |a: usize, o: usize, k: usize, size: usize| {
                                        let i =
                                            (o * win.strides[a] + k * win.dilations[a]) as isize - win.pads[a] as isize;
                                        (i >= 0 && (i as usize) < size).then_some(i as usize)
                                    };
                                    if let (Some(iy), Some(ix)) = (tap(0, oy, ky, h), tap(1, ox, kx, wd)) {
                                        let xv = x[((bn * c + (oc / mg) * cg + ic) * h + iy) * wd + ix];
                                        let wv = w[((oc * cg + ic) * kh + ky) * kw + kx] as u64;
                                        acc = acc.wrapping_add(wv.wrapping_mul(xv));
                                    }
                                }
                            }
                        }
                        out.push(ring.reduce(acc));
                    }
                }
            }
        }
        out
    }

    /// Strides, asymmetric padding wider than the kernel's reach, dilation, groups and a
    /// batch: every output equals the definition's.
    #[test]
    fn the_convolution_equals_its_definition() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let ring = Ring::new(43);
        let cases = [
            ([3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 1),
            ([3, 3], [2, 2], [1, 1, 1, 1], [1, 1], 1),
            ([3, 2], [2, 1], [1, 0, 1, 1], [1, 2], 1),
            ([1, 1], [2, 2], [0, 0, 0, 0], [1, 1], 1),
            ([5, 3], [3, 2], [4, 3, 2, 5], [2, 1], 2),
            ([3, 3], [1, 3], [2, 2, 0, 1], [2, 2], 3),
        ];
        for (kernel, strides, pads, dilations, groups) in cases {
            let win = crate::Window2d { kernel, strides, pads, dilations };
            let (n, c, h, wd, m) = (2, 6, 9, 11, 6);
            let x: Vec<u64> = (0..n * c * h * wd).map(|_| ring.reduce(rng.random())).collect();
            let w: Vec<i64> =
                (0..m * (c / groups) * kernel[0] * kernel[1]).map(|_| rng.random_range(-1 << 20..1 << 20)).collect();
            let bias: Vec<i64> = (0..m).map(|_| rng.random_range(-1000..1000)).collect();
            let want = naive_conv2d(ring, &x, [n, c, h, wd], (&w, m, Some(&bias)), &win, groups);
            let got = conv2d(ring, &x, &[n, c, h, wd], (&w, m, Some(&bias)), &win, groups).1;
            assert_eq!(got, want, "{win:?}, groups {groups}");
        }
    }
}
