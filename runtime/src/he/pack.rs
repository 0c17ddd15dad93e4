//! Coefficient packing of a linear layer (Cheetah, USENIX Security 2022): a convolution becomes
//! polynomial products in Z_t[X]/(X^N + 1) with no rotations.
//!
//! Every HE layer is seen as a stride-1 "valid" convolution of a padded input `[C, H, W]` with
//! `M` kernels `[C, KH, KW]` (a dense layer is `C = K`, `H = W = KH = KW = 1`; groups and
//! dilation are expanded into zero kernel taps; strides subsample the outputs afterwards).
//!
//! A tile holds `cb` channels and `hb` input rows (with the `KH − 1` halo) of full width `W`:
//! `S = cb·hb·W ≤ N` coefficients, input `(c, i, j)` at `c·hb·W + i·W + j`. Kernel `b` of a group
//! of `mb = ⌊N / S⌋` kernels sits at `b·S + O − (c·hb·W + l·W + l')` with
//! `O = (cb − 1)·hb·W + (KH − 1)·W + (KW − 1)`; the product's coefficient `b·S + O + i·W + j` is
//! then exactly output `(b, i, j)` of the tile. Neither other kernels of the group nor the
//! negacyclic wrap reach those coefficients (the module tests check every case against a direct
//! convolution). Channel tiles' products are summed.

/// A linear layer as a stride-1 valid convolution (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub m: usize,
    pub kh: usize,
    pub kw: usize,
}

impl ConvGeom {
    pub fn out_h(&self) -> usize {
        self.h - self.kh + 1
    }

    pub fn out_w(&self) -> usize {
        self.w - self.kw + 1
    }
}

/// How a [`ConvGeom`] is cut into polynomials of degree `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiling {
    pub geom: ConvGeom,
    pub n: usize,
    /// Channels per tile.
    pub cb: usize,
    /// Input rows per tile (output rows per tile plus `KH − 1`).
    pub hb: usize,
    /// Kernels per product polynomial.
    pub mb: usize,
}

impl Tiling {
    /// The tiling with the fewest ciphertexts sent plus received, or `None` when even one
    /// channel of `KH` rows does not fit `n` coefficients.
    pub fn choose(geom: ConvGeom, n: usize) -> Option<Tiling> {
        let mut best: Option<(usize, Tiling)> = None;
        for cb in 1..=geom.c {
            for hb in geom.kh..=geom.h {
                let s = cb * hb * geom.w;
                if s > n {
                    break;
                }
                let t = Tiling { geom, n, cb, hb, mb: (n / s).min(geom.m) };
                let cost = t.input_cts() + t.output_cts();
                if best.is_none_or(|(c, _)| cost < c) {
                    best = Some((cost, t));
                }
            }
        }
        best.map(|(_, t)| t)
    }

    pub fn channel_tiles(&self) -> usize {
        self.geom.c.div_ceil(self.cb)
    }

    /// Output rows per spatial tile.
    pub fn rows_per_tile(&self) -> usize {
        self.hb - self.geom.kh + 1
    }

    pub fn spatial_tiles(&self) -> usize {
        self.geom.out_h().div_ceil(self.rows_per_tile())
    }

    pub fn kernel_groups(&self) -> usize {
        self.geom.m.div_ceil(self.mb)
    }

    /// Ciphertexts the client sends: one per (channel tile, spatial tile).
    pub fn input_cts(&self) -> usize {
        self.channel_tiles() * self.spatial_tiles()
    }

    /// Ciphertexts the server returns: one per (kernel group, spatial tile).
    pub fn output_cts(&self) -> usize {
        self.kernel_groups() * self.spatial_tiles()
    }

    /// Plaintext products the server computes.
    pub fn products(&self) -> usize {
        self.kernel_groups() * self.input_cts()
    }

    fn tile_len(&self) -> usize {
        self.cb * self.hb * self.geom.w
    }

    fn origin(&self) -> usize {
        let g = &self.geom;
        (self.cb - 1) * self.hb * g.w + (g.kh - 1) * g.w + (g.kw - 1)
    }

    /// The input polynomials, indexed `[channel tile][spatial tile]` flattened row-major, from an
    /// input `[C, H, W]`.
    pub fn encode_input(&self, x: &[u64]) -> Vec<Vec<u64>> {
        let g = &self.geom;
        assert_eq!(x.len(), g.c * g.h * g.w, "input matches the geometry");
        let mut polys = Vec::with_capacity(self.input_cts());
        for ct in 0..self.channel_tiles() {
            for st in 0..self.spatial_tiles() {
                let mut p = vec![0u64; self.n];
                let row0 = st * self.rows_per_tile();
                for cl in 0..self.cb.min(g.c - ct * self.cb) {
                    let c = ct * self.cb + cl;
                    for i in 0..self.hb.min(g.h - row0) {
                        let src = &x[(c * g.h + row0 + i) * g.w..][..g.w];
                        p[(cl * self.hb + i) * g.w..][..g.w].copy_from_slice(src);
                    }
                }
                polys.push(p);
            }
        }
        polys
    }

    /// The kernel polynomials (signed coefficients), indexed `[kernel group][channel tile]`
    /// flattened row-major, from weights `[M, C, KH, KW]`.
    pub fn encode_kernels(&self, w: &[i64]) -> Vec<Vec<i64>> {
        let g = &self.geom;
        assert_eq!(w.len(), g.m * g.c * g.kh * g.kw, "weights match the geometry");
        let (s, o) = (self.tile_len(), self.origin());
        let mut polys = Vec::with_capacity(self.kernel_groups() * self.channel_tiles());
        for kg in 0..self.kernel_groups() {
            for ct in 0..self.channel_tiles() {
                let mut p = vec![0i64; self.n];
                for b in 0..self.mb.min(g.m - kg * self.mb) {
                    let m = kg * self.mb + b;
                    for cl in 0..self.cb.min(g.c - ct * self.cb) {
                        let c = ct * self.cb + cl;
                        for l in 0..g.kh {
                            for l2 in 0..g.kw {
                                let at = b * s + o - (cl * self.hb * g.w + l * g.w + l2);
                                p[at] = w[((m * g.c + c) * g.kh + l) * g.kw + l2];
                            }
                        }
                    }
                }
                polys.push(p);
            }
        }
        polys
    }

    /// The stride-1 outputs `[M, out_h, out_w]` read from the product polynomials, indexed
    /// `[kernel group][spatial tile]` flattened row-major.
    pub fn decode_output(&self, polys: &[Vec<u64>]) -> Vec<u64> {
        let g = &self.geom;
        assert_eq!(polys.len(), self.output_cts(), "one polynomial per output ciphertext");
        let (s, o) = (self.tile_len(), self.origin());
        let (oh, ow) = (g.out_h(), g.out_w());
        let mut out = vec![0u64; g.m * oh * ow];
        for kg in 0..self.kernel_groups() {
            for st in 0..self.spatial_tiles() {
                let p = &polys[kg * self.spatial_tiles() + st];
                let row0 = st * self.rows_per_tile();
                for b in 0..self.mb.min(g.m - kg * self.mb) {
                    let m = kg * self.mb + b;
                    for i in 0..self.rows_per_tile().min(oh - row0) {
                        for j in 0..ow {
                            out[(m * oh + row0 + i) * ow + j] = p[b * s + o + i * g.w + j];
                        }
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Negacyclic product mod 2^64 (the ring Z[X]/(X^n + 1) with wrapping coefficients).
    fn negacyclic(a: &[u64], b: &[i64]) -> Vec<u64> {
        let n = a.len();
        let mut out = vec![0u64; n];
        for (i, &x) in a.iter().enumerate() {
            for (j, &y) in b.iter().enumerate() {
                if y == 0 {
                    continue;
                }
                let t = x.wrapping_mul(y as u64);
                let k = i + j;
                if k < n {
                    out[k] = out[k].wrapping_add(t);
                } else {
                    out[k - n] = out[k - n].wrapping_sub(t);
                }
            }
        }
        out
    }

    fn direct(g: &ConvGeom, x: &[u64], w: &[i64]) -> Vec<u64> {
        let (oh, ow) = (g.out_h(), g.out_w());
        let mut out = vec![0u64; g.m * oh * ow];
        for m in 0..g.m {
            for i in 0..oh {
                for j in 0..ow {
                    let mut acc = 0u64;
                    for c in 0..g.c {
                        for l in 0..g.kh {
                            for l2 in 0..g.kw {
                                let wv = w[((m * g.c + c) * g.kh + l) * g.kw + l2] as u64;
                                acc = acc.wrapping_add(wv.wrapping_mul(x[(c * g.h + i + l) * g.w + j + l2]));
                            }
                        }
                    }
                    out[(m * oh + i) * ow + j] = acc;
                }
            }
        }
        out
    }

    /// Runs the packing with plaintext polynomial arithmetic and compares with the direct sum.
    fn check(g: ConvGeom, n: usize, seed: u64) {
        let t = Tiling::choose(g, n).expect("fits");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let x: Vec<u64> = (0..g.c * g.h * g.w).map(|_| rng.random()).collect();
        let w: Vec<i64> = (0..g.m * g.c * g.kh * g.kw).map(|_| rng.random_range(-1000..1000)).collect();
        let xs = t.encode_input(&x);
        let ks = t.encode_kernels(&w);
        let mut outs = Vec::new();
        for kg in 0..t.kernel_groups() {
            for st in 0..t.spatial_tiles() {
                let mut acc = vec![0u64; n];
                for ct in 0..t.channel_tiles() {
                    let p = negacyclic(&xs[ct * t.spatial_tiles() + st], &ks[kg * t.channel_tiles() + ct]);
                    acc.iter_mut().zip(p).for_each(|(a, b)| *a = a.wrapping_add(b));
                }
                outs.push(acc);
            }
        }
        assert_eq!(t.decode_output(&outs), direct(&g, &x, &w), "{g:?} with {t:?}");
    }

    #[test]
    fn dense_and_conv_packings_equal_direct_sums() {
        // Dense 20 → 7 in one polynomial, and split over channel tiles (20 > 16).
        check(ConvGeom { c: 20, h: 1, w: 1, m: 7, kh: 1, kw: 1 }, 64, 1);
        check(ConvGeom { c: 20, h: 1, w: 1, m: 7, kh: 1, kw: 1 }, 16, 2);
        // Convolutions: several spatial tiles, channel tiles, kernel groups, non-square kernels.
        check(ConvGeom { c: 3, h: 8, w: 8, m: 5, kh: 3, kw: 3 }, 64, 3);
        check(ConvGeom { c: 3, h: 10, w: 6, m: 4, kh: 3, kw: 2 }, 128, 4);
        check(ConvGeom { c: 2, h: 5, w: 5, m: 9, kh: 5, kw: 5 }, 256, 5);
        check(ConvGeom { c: 4, h: 7, w: 9, m: 3, kh: 1, kw: 1 }, 32, 6);
    }

    #[test]
    fn tiling_refuses_what_cannot_fit() {
        assert!(Tiling::choose(ConvGeom { c: 1, h: 40, w: 40, m: 1, kh: 3, kw: 3 }, 64).is_none());
    }
}
