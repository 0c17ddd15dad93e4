//! Ring kernels of the linear layers: the simulator's semantics and the server's online step
//! (`W·(x − r) + b` on its share), so both compute exactly the same.

use crate::ring::Ring;

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
    for bn in 0..n {
        for oc in 0..m {
            let g = oc / mg;
            let dst = &mut out[(bn * m + oc) * oh * ow..][..oh * ow];
            dst.iter_mut().for_each(|d| *d = b.map_or(0, |b| b[oc] as u64));
            for ic in 0..cg {
                let xc = &x[((bn * c) + g * cg + ic) * h * wd..][..h * wd];
                for ky in 0..kh {
                    for kx in 0..kw {
                        let wv = w[((oc * cg + ic) * kh + ky) * kw + kx] as u64;
                        for oy in 0..oh {
                            let Some(iy) = super::kernels::tap(win, 0, oy, ky, h) else { continue };
                            for ox in 0..ow {
                                if let Some(ix) = super::kernels::tap(win, 1, ox, kx, wd) {
                                    dst[oy * ow + ox] =
                                        dst[oy * ow + ox].wrapping_add(wv.wrapping_mul(xc[iy * wd + ix]));
                                }
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
