//! Ring kernels of the linear layers: the simulator's semantics and the server's online step
//! (`W·(x − r) + b` on its share), so both compute exactly the same.

use crate::ring::Ring;

use super::kernels::valid_outputs;

pub mod exp2;
pub mod float_grid;
pub mod one_hot;
pub mod pl_gelu;
pub mod pl_sigmoid;
pub mod reciprocal;
pub mod round;
pub mod rsqrt;
pub use pl_gelu::PL_GELU_MAX_ERROR;
pub use pl_sigmoid::PL_SIGMOID_MAX_ERROR;

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
