//! Float kernels of the reference interpreter, one function per op family.
//!
//! Sums accumulate in f64 so the reference is at least as accurate as any float runtime.

use crate::op::Window2d;
use crate::tensor::{Tensor, strides};

/// `y[.., n] = Σ_k x[.., k] w[n, k] + b[n]`.
pub fn dense(x: &Tensor, w: &[f32], n: usize, b: Option<&[f32]>) -> Tensor {
    let k = *x.shape.last().expect("dense input has rank ≥ 1");
    let rows = x.data.len() / k.max(1);
    let mut shape = x.shape.clone();
    *shape.last_mut().expect("rank ≥ 1") = n;
    let mut out = Vec::with_capacity(rows * n);
    for r in 0..rows {
        let xr = &x.data[r * k..(r + 1) * k];
        for j in 0..n {
            let wr = &w[j * k..(j + 1) * k];
            let acc: f64 = xr.iter().zip(wr).map(|(&a, &b)| a as f64 * b as f64).sum();
            out.push((acc + b.map_or(0.0, |b| b[j] as f64)) as f32);
        }
    }
    Tensor { shape, data: out }
}

/// Input coordinate of output position `o`, kernel tap `k` on spatial axis `a`, or `None` in padding.
pub fn tap(w: &Window2d, a: usize, o: usize, k: usize, size: usize) -> Option<usize> {
    let i = (o * w.strides[a] + k * w.dilations[a]).checked_sub(w.pads[a])?;
    (i < size).then_some(i)
}

/// The output positions `lo..hi` along spatial axis `a` whose kernel tap `k` falls inside an
/// input of size `size` (not in padding), for `out` output positions.
pub fn valid_outputs(w: &Window2d, a: usize, k: usize, size: usize, out: usize) -> std::ops::Range<usize> {
    let (s, off) = (w.strides[a] as isize, (k * w.dilations[a]) as isize - w.pads[a] as isize);
    // ix = o·s + off must satisfy 0 ≤ ix < size.
    let lo = if off >= 0 { 0 } else { ((-off) + s - 1) / s };
    let hi = if size as isize > off { ((size as isize - off) + s - 1) / s } else { 0 };
    let hi = (hi.max(0) as usize).min(out);
    (lo.max(0) as usize).min(hi)..hi
}

/// ONNX `Conv` over `[N, C, H, W]` with weight `[M, C/g, kh, kw]`.
pub fn conv2d(x: &Tensor, wt: &[f32], m: usize, b: Option<&[f32]>, win: &Window2d, groups: usize) -> Tensor {
    let [n, c, h, wd] = x.shape[..] else { unreachable!("verified: conv input is 4-D") };
    let [oh, ow] = win.output_hw([h, wd]).expect("verified: window fits");
    let [kh, kw] = win.kernel;
    let (cg, mg) = (c / groups, m / groups);
    let mut out = vec![0f32; n * m * oh * ow];
    let mut acc = vec![0f64; oh * ow];
    for bn in 0..n {
        for oc in 0..m {
            let g = oc / mg;
            acc.iter_mut().for_each(|a| *a = b.map_or(0.0, |b| b[oc] as f64));
            for ic in 0..cg {
                let xc = &x.data[((bn * c) + g * cg + ic) * h * wd..][..h * wd];
                for ky in 0..kh {
                    for kx in 0..kw {
                        let wv = wt[((oc * cg + ic) * kh + ky) * kw + kx] as f64;
                        let xs = valid_outputs(win, 1, kx, wd, ow);
                        if xs.is_empty() {
                            // This tap column lies in the padding for every output column.
                            continue;
                        }
                        let (sw, off) = (win.strides[1], kx * win.dilations[1]);
                        for oy in valid_outputs(win, 0, ky, h, oh) {
                            let iy = oy * win.strides[0] + ky * win.dilations[0] - win.pads[0];
                            let row = &xc[iy * wd..(iy + 1) * wd];
                            let dst = &mut acc[oy * ow..(oy + 1) * ow];
                            if sw == 1 {
                                // Contiguous taps: a zipped loop the compiler vectorises.
                                let src = &row[xs.start + off - win.pads[1]..][..xs.len()];
                                dst[xs.clone()].iter_mut().zip(src).for_each(|(d, &v)| *d += wv * v as f64);
                            } else {
                                for ox in xs.clone() {
                                    dst[ox] += wv * row[ox * sw + off - win.pads[1]] as f64;
                                }
                            }
                        }
                    }
                }
            }
            let dst = &mut out[(bn * m + oc) * oh * ow..][..oh * ow];
            dst.iter_mut().zip(&acc).for_each(|(d, a)| *d = *a as f32);
        }
    }
    Tensor { shape: vec![n, m, oh, ow], data: out }
}

/// What a pooling window computes.
#[derive(Clone, Copy, Debug)]
pub enum Pool {
    /// Largest element; padding never selected.
    Max,
    /// Sum of the elements; padding counts as zero.
    Sum,
    /// Mean of the elements.
    Avg {
        /// Divide by the full kernel size, padding included (else by the non-padding count).
        count_include_pad: bool,
    },
}

/// Max, sum or mean pooling over each window of `[N, C, H, W]`.
pub fn pool(x: &Tensor, win: &Window2d, kind: Pool) -> Tensor {
    let [n, c, h, wd] = x.shape[..] else { unreachable!("verified: pool input is 4-D") };
    let [oh, ow] = win.output_hw([h, wd]).expect("verified: window fits");
    let mut out = Vec::with_capacity(n * c * oh * ow);
    for plane in x.data.chunks_exact(h * wd) {
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut max, mut sum, mut count) = (f32::NEG_INFINITY, 0f64, 0usize);
                for ky in 0..win.kernel[0] {
                    for kx in 0..win.kernel[1] {
                        if let (Some(iy), Some(ix)) = (tap(win, 0, oy, ky, h), tap(win, 1, ox, kx, wd)) {
                            let v = plane[iy * wd + ix];
                            max = max.max(v);
                            sum += v as f64;
                            count += 1;
                        }
                    }
                }
                out.push(match kind {
                    Pool::Max => max,
                    Pool::Sum => sum as f32,
                    Pool::Avg { count_include_pad: true } => (sum / (win.kernel[0] * win.kernel[1]) as f64) as f32,
                    Pool::Avg { count_include_pad: false } => (sum / count.max(1) as f64) as f32,
                });
            }
        }
    }
    Tensor { shape: vec![n, c, oh, ow], data: out }
}

/// For each element of a tensor of `shape`, the index into a constant of `cshape` broadcast to it.
pub fn broadcast_index(cshape: &[usize], shape: &[usize]) -> impl Fn(usize) -> usize {
    let off = shape.len() - cshape.len();
    let cs = strides(cshape);
    let xs = strides(shape);
    let dims: Vec<(usize, usize, usize)> =
        (0..cshape.len()).filter(|&i| cshape[i] != 1).map(|i| (xs[off + i], shape[off + i], cs[i])).collect();
    move |flat| dims.iter().map(|&(xs, n, cs)| (flat / xs) % n * cs).sum()
}

/// `(batch, m, k, n)` of a matrix product of `[.., m, k]` by `[.., k, n]` (shapes verified by
/// [`crate::Op::MatMul`]'s typing rule).
pub fn matmul_dims(a: &[usize], b: &[usize]) -> (usize, usize, usize, usize) {
    let r = a.len();
    (a[..r - 2].iter().product(), a[r - 2], a[r - 1], b[r - 1])
}

/// Batched matrix product of row-major `a` (`batch × m × k`) and `b` (`batch × k × n`):
/// `out[i, j] = Σ_t a[i, t]·b[t, j]` accumulated by `acc(sum, a, b)` from `zero`.
pub fn matmul<T: Copy, S: Copy>(
    a: &[T],
    b: &[T],
    (batch, m, k, n): (usize, usize, usize, usize),
    zero: S,
    acc: impl Fn(S, T, T) -> S,
) -> Vec<S> {
    let mut out = vec![zero; batch * m * n];
    for p in 0..batch {
        let (a, b) = (&a[p * m * k..(p + 1) * m * k], &b[p * k * n..(p + 1) * k * n]);
        for i in 0..m {
            let row = &mut out[(p * m + i) * n..(p * m + i + 1) * n];
            for t in 0..k {
                let x = a[i * k + t];
                for (o, &y) in row.iter_mut().zip(&b[t * n..(t + 1) * n]) {
                    *o = acc(*o, x, y);
                }
            }
        }
    }
    out
}

/// Axis permutation of row-major `data` of `shape`: output axis `i` is input axis `perm[i]`.
pub fn transpose_data<T: Copy>(data: &[T], shape: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<T>) {
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let xs = strides(shape);
    let os = strides(&out_shape);
    let out = (0..data.len())
        .map(|flat| data[(0..out_shape.len()).map(|i| (flat / os[i]) % out_shape[i] * xs[perm[i]]).sum::<usize>()])
        .collect();
    (out_shape, out)
}

/// Axis permutation of a tensor.
pub fn transpose(x: &Tensor, perm: &[usize]) -> Tensor {
    let (shape, data) = transpose_data(&x.data, &x.shape, perm);
    Tensor { shape, data }
}

/// Concatenation of row-major arrays along `axis`.
pub fn concat_data<T: Copy>(parts: &[(&[usize], &[T])], axis: usize) -> (Vec<usize>, Vec<T>) {
    let mut shape = parts[0].0.to_vec();
    shape[axis] = parts.iter().map(|(s, _)| s[axis]).sum();
    let outer: usize = shape[..axis].iter().product();
    let mut data = Vec::with_capacity(shape.iter().product());
    for o in 0..outer {
        for (s, d) in parts {
            let inner: usize = s[axis..].iter().product();
            data.extend_from_slice(&d[o * inner..(o + 1) * inner]);
        }
    }
    (shape, data)
}

/// Concatenation along `axis`.
pub fn concat(xs: &[&Tensor], axis: usize) -> Tensor {
    let parts: Vec<(&[usize], &[f32])> = xs.iter().map(|t| (t.shape.as_slice(), t.data.as_slice())).collect();
    let (shape, data) = concat_data(&parts, axis);
    Tensor { shape, data }
}

/// Constant padding of row-major `data`: `pads[i]` before and `pads[rank + i]` after axis `i`.
pub fn pad_data<T: Copy>(data: &[T], shape: &[usize], pads: &[usize], value: T) -> (Vec<usize>, Vec<T>) {
    let r = shape.len();
    let out_shape: Vec<usize> = (0..r).map(|i| shape[i] + pads[i] + pads[r + i]).collect();
    let os = strides(&out_shape);
    let xs = strides(shape);
    let mut out = vec![value; out_shape.iter().product()];
    for (flat, &v) in data.iter().enumerate() {
        let dst: usize = (0..r).map(|i| ((flat / xs[i]) % shape[i] + pads[i]) * os[i]).sum();
        out[dst] = v;
    }
    (out_shape, out)
}

/// Constant padding: `pads[i]` before and `pads[rank + i]` after axis `i`.
pub fn pad(x: &Tensor, pads: &[usize], value: f32) -> Tensor {
    let (shape, data) = pad_data(&x.data, &x.shape, pads, value);
    Tensor { shape, data }
}

/// Splits `shape` around the reduced axes into `(outer, reduced, inner)` sizes.
fn reduce_split(shape: &[usize], axis: usize, to_end: bool) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    if to_end {
        (outer, shape[axis..].iter().product(), 1)
    } else {
        (outer, shape[axis], shape[axis + 1..].iter().product())
    }
}

/// Softmax (or log-softmax) over `axis`, or over all axes from `axis` on with `to_end`.
pub fn softmax(x: &Tensor, axis: usize, to_end: bool, log: bool) -> Tensor {
    let (outer, n, inner) = reduce_split(&x.shape, axis, to_end);
    let mut out = x.data.clone();
    for o in 0..outer {
        for i in 0..inner {
            let idx = |j: usize| (o * n + j) * inner + i;
            let max = (0..n).map(|j| x.data[idx(j)]).fold(f32::NEG_INFINITY, f32::max) as f64;
            let sum: f64 = (0..n).map(|j| (x.data[idx(j)] as f64 - max).exp()).sum();
            for j in 0..n {
                let z = x.data[idx(j)] as f64 - max;
                out[idx(j)] = if log { (z - sum.ln()) as f32 } else { (z.exp() / sum) as f32 };
            }
        }
    }
    Tensor { shape: x.shape.clone(), data: out }
}

/// The logistic function elementwise, computed in f64 and rounded to f32.
pub fn sigmoid(x: &Tensor) -> Tensor {
    let data = x.data.iter().map(|&v| (1.0 / (1.0 + (-(v as f64)).exp())) as f32).collect();
    Tensor { shape: x.shape.clone(), data }
}

/// Index of the maximum along `axis` (first or last occurrence), as exact floats.
pub fn argmax(x: &Tensor, axis: usize, keepdims: bool, last: bool) -> Tensor {
    let (outer, n, inner) = reduce_split(&x.shape, axis, false);
    let mut data = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let mut best = 0;
            for j in 1..n {
                let (v, b) = (x.data[(o * n + j) * inner + i], x.data[(o * n + best) * inner + i]);
                if v > b || (last && v == b) {
                    best = j;
                }
            }
            data.push(best as f32);
        }
    }
    let mut shape = x.shape.clone();
    if keepdims {
        shape[axis] = 1;
    } else {
        shape.remove(axis);
    }
    Tensor { shape, data }
}
