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
