//! Coefficient packing of a linear layer under BFV, and the layer's public HE parameters: pure
//! index and size arithmetic shared by the runtime (which encrypts) and the cost model (which
//! counts ciphertexts).
//!
//! Coefficient packing (Cheetah, USENIX Security 2022): a convolution becomes
//! polynomial products in Z_t[X]/(X^N + 1) with no rotations.
//!
//! Every HE layer is seen as a stride-1 "valid" convolution of a padded input `[C, H, W]` with
//! `M` kernels `[C, KH, KW]` (a dense layer is `C = K`, `H = W = KH = KW = 1`; groups and
//! dilation are expanded into zero kernel taps; strides are taken by splitting the input into
//! its phases, [`Layer`]).
//!
//! A tile holds `cb` channels and `hb` input rows (with the `KH − 1` halo) of full width `W`:
//! `S = cb·hb·W ≤ N` coefficients, input `(c, i, j)` at `c·hb·W + i·W + j`. Kernel `b` of a group
//! of `mb = ⌊N / S⌋` kernels sits at `b·S + O − (c·hb·W + l·W + l')` with
//! `O = (cb − 1)·hb·W + (KH − 1)·W + (KW − 1)`; the product's coefficient `b·S + O + i·W + j` is
//! then exactly output `(b, i, j)` of the tile. Neither other kernels of the group nor the
//! negacyclic wrap reach those coefficients (the module tests check every case against a direct
//! convolution). Channel tiles' products are summed.

use crate::{Graph, Node, Op, Window2d};

/// A linear layer as a stride-1 valid convolution (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    /// Input channels `C`.
    pub c: usize,
    /// Padded input height `H`.
    pub h: usize,
    /// Padded input width `W`.
    pub w: usize,
    /// Kernels (output channels) `M`.
    pub m: usize,
    /// Kernel height `KH`, dilation expanded.
    pub kh: usize,
    /// Kernel width `KW`, dilation expanded.
    pub kw: usize,
}

impl ConvGeom {
    /// Output height of the stride-1 valid convolution: `H − KH + 1`.
    pub fn out_h(&self) -> usize {
        self.h - self.kh + 1
    }

    /// Output width of the stride-1 valid convolution: `W − KW + 1`.
    pub fn out_w(&self) -> usize {
        self.w - self.kw + 1
    }
}

/// How a [`ConvGeom`] is cut into polynomials of degree `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiling {
    /// The convolution being tiled.
    pub geom: ConvGeom,
    /// Polynomial degree `N`: coefficients per plaintext.
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

    /// Channel tiles: `⌈C / cb⌉`; their products are summed.
    pub fn channel_tiles(&self) -> usize {
        self.geom.c.div_ceil(self.cb)
    }

    /// Output rows per spatial tile.
    pub fn rows_per_tile(&self) -> usize {
        self.hb - self.geom.kh + 1
    }

    /// Spatial tiles: `⌈OH / rows_per_tile⌉`.
    pub fn spatial_tiles(&self) -> usize {
        self.geom.out_h().div_ceil(self.rows_per_tile())
    }

    /// Kernel groups: `⌈M / mb⌉`, one product polynomial each per spatial tile.
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
        let (kgs, cts) = (self.kernel_groups(), self.channel_tiles());
        (0..kgs * cts).map(|i| self.encode_kernel(w, i / cts, i % cts)).collect()
    }

    /// The kernel polynomial of kernel group `kg` and channel tile `ct` (signed coefficients),
    /// from weights `[M, C, KH, KW]`: entry `kg · channel_tiles + ct` of
    /// [`Tiling::encode_kernels`], made alone so a caller can make them in parallel.
    pub fn encode_kernel(&self, w: &[i64], kg: usize, ct: usize) -> Vec<i64> {
        let g = &self.geom;
        assert_eq!(w.len(), g.m * g.c * g.kh * g.kw, "weights match the geometry");
        let (s, o) = (self.tile_len(), self.origin());
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
        p
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

/// A Dense or Conv2d layer under HE: per batch element, the zero-padded input rearranged into
/// its stride phases and mapped by a stride-1 convolution ([`ConvGeom`]), its parameters and
/// tiling.
///
/// **Strides by phases.** A convolution with strides `(sh, sw)` reads the padded input `xp` at
/// `(sh·i + l, sw·j + l')`. Writing the tap `l = sh·u + a` splits the input into the phases
/// `x_ab(y, z) = xp(sh·y + a, sw·z + b)` for `a < min(sh, KH)`, `b < min(sw, KW)` (phases no tap
/// reads are left out), each a channel of its own, and the kernel into `w_ab(u, v) =
/// w(sh·u + a, sw·v + b)` (zero where the tap is past the kernel), `⌈KH/sh⌉ × ⌈KW/sw⌉`. The
/// strided convolution is then exactly the stride-1 valid convolution of the phases, of height
/// `OH + ⌈KH/sh⌉ − 1` (reads past the padded input are zeros that only zero taps meet): the
/// layer computes only the outputs it keeps. A 1×1 stride-2 convolution becomes a 1×1
/// convolution of the subsampled input; a 3×3 stride-2 one a 2×2 convolution of four phases.
/// Stride 1 is the identity rearrangement.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Batch elements (leading dimensions); each is packed and sent on its own.
    pub batch: usize,
    /// Unpadded input `[C, H, W]` of one batch element.
    pub input: [usize; 3],
    /// `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// Strides `[h, w]`, taken by the phases.
    pub strides: [usize; 2],
    /// The kernel's extent `[KH, KW]`, dilation expanded.
    pub taps: [usize; 2],
    /// Phases per axis, `[min(sh, KH), min(sw, KW)]`.
    pub phases: [usize; 2],
    /// Output `[M, OH, OW]` of one batch element.
    pub output: [usize; 3],
    /// The stride-1 convolution of the phases computed under HE.
    pub geom: ConvGeom,
    /// The layer's BFV parameters.
    pub params: HeParams,
    /// How `geom` is cut into polynomials of `params.degree`.
    pub tiling: Tiling,
}

impl Layer {
    /// The HE layout of a dense or conv2d `node` of a quantized graph; `None` when no supported
    /// degree has room for its ring width. Panics on any other op or on a float graph.
    ///
    /// The plaintext modulus is `2^ℓ`, or the narrower `2^k` the plan gives the layer
    /// ([`Graph::narrow_bits`], chosen by `assign_protocols` from [`Layer::narrower_width`]).
    pub fn of(g: &Graph, node: &Node) -> Option<Layer> {
        let ell = g.ring_bits.expect("quantized");
        let id = match g.values[node.output].def {
            crate::Def::Node(id) => Some(id),
            crate::Def::Input(_) => None,
        };
        let k = id.and_then(|id| crate::schedule::narrow_bits(g, id)).unwrap_or(ell);
        Layer::shape_of(g, node)(k)
    }

    /// The layout of `node` with the plaintext modulus `2^k`, whatever the plan gives it.
    pub fn with_width(g: &Graph, node: &Node, k: u8) -> Option<Layer> {
        Layer::shape_of(g, node)(k)
    }

    /// The plaintext width a layer whose output is needed modulo `2^need` only
    /// ([`crate::schedule::demand`]) could use instead of ℓ: the widest `k` in `need..ℓ` whose
    /// parameters have the sizes of `need`'s (so that layers of similar widths share a parameter
    /// set and its public key); `None` where the sizes at `need` are those at ℓ. The sizes
    /// (degree, primes and their bits, the response's primes) fall with `k` only in steps: the
    /// flooding noise dominates the ciphertext modulus, so most narrower widths change nothing.
    pub fn narrower_width(g: &Graph, node: &Node, need: u8) -> Option<u8> {
        let ell = g.ring_bits.expect("quantized");
        let shape = Layer::shape_of(g, node);
        let sizes = |p: &HeParams| (p.degree, p.prime_bits, p.primes, p.response_primes);
        let low = shape(need.max(3))?;
        if need >= ell || shape(ell).is_some_and(|full| sizes(&full.params) == sizes(&low.params)) {
            return None;
        }
        // At `low`'s degree the tiling, hence the channel tiles, is `low`'s: only the
        // parameters need recomputing per width (a tiling search per width is slow on wide layers).
        let tiles = low.tiling.channel_tiles();
        (need.max(3)..ell)
            .rev()
            .find(|&k| HeParams::for_layer(k, tiles).is_some_and(|p| sizes(&p) == sizes(&low.params)))
    }

    /// The layout of `node` at a given plaintext width.
    fn shape_of(g: &Graph, node: &Node) -> impl Fn(u8) -> Option<Layer> {
        let in_shape = &g.values[node.inputs[0]].ty.shape;
        let out_shape = &g.values[node.output].ty.shape;
        let (batch, input, pads, strides, taps, output) = match &node.op {
            Op::Dense { weight, .. } => {
                let k = *in_shape.last().expect("rank ≥ 1");
                let n = g.consts[*weight].shape[0];
                let batch = in_shape.iter().product::<usize>() / k;
                (batch, [k, 1, 1], [0; 4], [1, 1], [1, 1], [n, 1, 1])
            }
            Op::Conv2d { window, .. } => {
                let [n, c, h, w] = in_shape[..] else { unreachable!("verified: conv input is 4-D") };
                let Window2d { kernel, strides, pads, dilations } = window;
                let (kh, kw) = ((kernel[0] - 1) * dilations[0] + 1, (kernel[1] - 1) * dilations[1] + 1);
                (n, [c, h, w], *pads, *strides, [kh, kw], [out_shape[1], out_shape[2], out_shape[3]])
            }
            other => unreachable!("schedule::lower sends only dense/conv here, not {}", other.mnemonic()),
        };
        move |ell| Layer::with(batch, input, pads, strides, taps, output, ell)
    }

    /// The layout of a layer given by its shapes (see [`Layer::of`]).
    pub fn with(
        batch: usize,
        input: [usize; 3],
        pads: [usize; 4],
        strides: [usize; 2],
        taps: [usize; 2],
        output: [usize; 3],
        ell: u8,
    ) -> Option<Layer> {
        let phases = [strides[0].min(taps[0]), strides[1].min(taps[1])];
        let (kh, kw) = (taps[0].div_ceil(strides[0]), taps[1].div_ceil(strides[1]));
        let geom = ConvGeom {
            c: input[0] * phases[0] * phases[1],
            h: output[1] + kh - 1,
            w: output[2] + kw - 1,
            m: output[0],
            kh,
            kw,
        };
        let mut params = HeParams::for_layer(ell, 1)?;
        loop {
            let tiling = Tiling::choose(geom, params.degree)?;
            let p = HeParams::for_layer(ell, tiling.channel_tiles())?;
            if p == params {
                return Some(Layer { batch, input, pads, strides, taps, phases, output, geom, params, tiling });
            }
            params = p;
        }
    }

    /// Elements of one batch element's unpadded input (`C·H·W`).
    pub fn in_len(&self) -> usize {
        self.input.iter().product()
    }

    /// Elements of one batch element's output (`M·OH·OW`).
    pub fn out_len(&self) -> usize {
        self.output.iter().product()
    }

    /// One batch element's input share, zero-padded and split into its phases: `[C·pa·pb, H', W']`
    /// with channel `(c·pa + a)·pb + b` holding `xp(sh·y + a, sw·z + b)`.
    pub fn pad(&self, x: &[u64]) -> Vec<u64> {
        let [c, h, w] = self.input;
        let ConvGeom { h: hq, w: wq, .. } = self.geom;
        let ([pa, pb], [sh, sw]) = (self.phases, self.strides);
        let mut out = vec![0u64; c * pa * pb * hq * wq];
        for ch in 0..c {
            for a in 0..pa {
                for b in 0..pb {
                    let base = ((ch * pa + a) * pb + b) * hq * wq;
                    for y in 0..hq {
                        // Row sh·y + a of the padded input is row sh·y + a − top of the input.
                        let Some(r) = (sh * y + a).checked_sub(self.pads[0]).filter(|&r| r < h) else { continue };
                        for z in 0..wq {
                            if let Some(q) = (sw * z + b).checked_sub(self.pads[1]).filter(|&q| q < w) {
                                out[base + y * wq + z] = x[(ch * h + r) * w + q];
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// The server's weights as the phases' kernel `[M, C·pa·pb, ⌈KH/sh⌉, ⌈KW/sw⌉]`, groups and
    /// dilation expanded.
    pub fn kernel(&self, g: &Graph, node: &Node) -> Vec<i64> {
        match &node.op {
            Op::Dense { weight, .. } => g.consts[*weight].qdata.clone(),
            Op::Conv2d { weight, window, groups, .. } => {
                let w = &g.consts[*weight].qdata;
                let (c, m, [kh, kw]) = (self.input[0], self.output[0], self.taps);
                let (cg, mg) = (c / groups, m / groups);
                let [k0, k1] = window.kernel;
                let [d0, d1] = window.dilations;
                let mut out = vec![0i64; m * c * kh * kw];
                for oc in 0..m {
                    let grp = oc / mg;
                    for ic in 0..cg {
                        for y in 0..k0 {
                            for x in 0..k1 {
                                let v = w[((oc * cg + ic) * k0 + y) * k1 + x];
                                out[((oc * c + grp * cg + ic) * kh + y * d0) * kw + x * d1] = v;
                            }
                        }
                    }
                }
                self.phased(&out)
            }
            _ => unreachable!("dense/conv only"),
        }
    }

    /// A kernel `[M, C, KH, KW]` rearranged for the phases (see [`Layer`]).
    pub fn phased(&self, w: &[i64]) -> Vec<i64> {
        let (c, m, [kh, kw]) = (self.input[0], self.output[0], self.taps);
        let ([pa, pb], [sh, sw]) = (self.phases, self.strides);
        let ConvGeom { kh: kq, kw: kwq, .. } = self.geom;
        let mut out = vec![0i64; m * c * pa * pb * kq * kwq];
        for oc in 0..m {
            for ic in 0..c {
                for l in 0..kh {
                    for l2 in 0..kw {
                        let (u, a, v, b) = (l / sh, l % sh, l2 / sw, l2 % sw);
                        let ch = (ic * pa + a) * pb + b;
                        out[((oc * c * pa * pb + ch) * kq + u) * kwq + v] = w[((oc * c + ic) * kh + l) * kw + l2];
                    }
                }
            }
        }
        out
    }
}

/// Weights must satisfy `|w| < 2^WEIGHT_BITS` (in the ring, read as signed).
pub const WEIGHT_BITS: u32 = 24;
/// Statistical security of the noise flooding, in bits: the total statistical distance between
/// everything a client sees of the responses and a simulation from the decrypted values alone.
pub const FLOOD_SECURITY: u32 = 40;
/// The query bound of the flooding analysis: one weights file answers at most `2^QUERY_BITS`
/// response ciphertexts over its lifetime, every session and client together (at the fastest
/// measured rate, ~17 ms on 2 cores per response ciphertext at N = 8192, that is ~150,000
/// core-years; docs/threat-model.md, "HE linear layers").
pub const QUERY_BITS: u32 = 48;
/// `|e + ε|` of a client's fresh encryption: `fhe` draws `e` from a centred binomial of
/// variance 10 (support `[−20, 20]`) and encodes `m` as `⌊q·m/t⌋` (`ε ∈ (−1, 0]`).
const FRESH_NOISE: u128 = 21;
/// Bound on a coefficient of `fhe`'s centred-binomial samples (secret key, `u`, errors).
const CBD_BOUND: u128 = 20;

/// Largest log2 q for 128-bit security per degree (homomorphicencryption.org standard).
const MAX_LOG_Q: [(usize, u32); 4] = [(4096, 109), (8192, 218), (16384, 438), (32768, 881)];

/// BFV parameters of one linear layer: public, derived from the ring width and the packing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeParams {
    /// Polynomial degree `N` (4096 to 32768).
    pub degree: usize,
    /// Bits of each ciphertext prime (all equal; each above the plaintext modulus).
    pub prime_bits: usize,
    /// Number of ciphertext primes in a fresh ciphertext (`log q ≈ primes·prime_bits`).
    pub primes: usize,
    /// Primes kept in a response after modulus switching.
    pub response_primes: usize,
    /// Ring width ℓ; the plaintext modulus is `t = 2^ℓ`.
    pub ring_bits: u8,
    /// σ: the flooding noise is uniform in `[−2^σ, 2^σ)`.
    pub flood_bits: u32,
}

impl HeParams {
    /// Parameters for a layer over ring `ring_bits` whose outputs each sum the products of
    /// `channel_tiles` polynomial pairs; `None` if no supported degree has room.
    ///
    /// The smudging analysis (`docs/decisions.md`, "HE circuit privacy"): the noise a response
    /// carries before flooding is `(e + ε)·K` (the client's encryption noise times the kernel,
    /// at most [`HeParams::noise_bound`]) plus the public-key encryption of zero's
    /// `e_pk·u + e₁ + e₂·s`; flooding uniform in `[−2^σ, 2^σ)` hides a shift `x` of one
    /// coefficient up to statistical distance `|x| / 2^(σ+1)`. A client sees `N` coefficients
    /// per response ciphertext and at most `2^QUERY_BITS` ciphertexts, so
    /// `σ = bits(bound) + log N + QUERY_BITS + FLOOD_SECURITY − 1` keeps the sum below
    /// `2^−FLOOD_SECURITY`. The modulus switch is a deterministic function of the flooded
    /// ciphertext, so its rounding adds no distance; `q` holds `2^σ` with a factor `16·t` to
    /// spare, and the response primes hold `t` times the switch's rounding with margin.
    pub fn for_layer(ring_bits: u8, channel_tiles: usize) -> Option<HeParams> {
        let l = ring_bits as u32;
        for (degree, max_log_q) in MAX_LOG_Q {
            let noise_bits = 128 - Self::noise_bound(degree, channel_tiles).leading_zeros();
            let flood_bits = noise_bits + degree.ilog2() + QUERY_BITS + FLOOD_SECURITY - 1;
            let need = flood_bits + l + 4;
            let prime_bits = (l as usize + 1).max(50);
            if prime_bits > 62 {
                return None;
            }
            let primes = (need as usize).div_ceil(prime_bits);
            if (primes * prime_bits) as u32 > max_log_q {
                continue;
            }
            // After the switch: ratio kept, plus rounding noise below 2^(log N + 8).
            let response_primes = ((l as usize + 16 + degree.ilog2() as usize) / prime_bits + 1).min(primes);
            return Some(HeParams { degree, prime_bits, primes, response_primes, ring_bits, flood_bits });
        }
        None
    }

    /// Bound on a coefficient of the noise a response carries before flooding, for weights
    /// below `2^WEIGHT_BITS`: `(e + ε)·K` sums `N·tiles` products, and the public-key
    /// encryption of zero adds `e_pk·u + e₁ + e₂·s`.
    pub fn noise_bound(degree: usize, channel_tiles: usize) -> u128 {
        let terms = (degree * channel_tiles) as u128;
        let n = degree as u128;
        FRESH_NOISE * ((1 << WEIGHT_BITS) - 1) * terms + 2 * CBD_BOUND * CBD_BOUND * n + CBD_BOUND
    }

    /// Bytes of the client's public key: a fresh seeded encryption of zero (whose polynomial
    /// lacks the variable-time flag: 2 bytes fewer than a request), wrapped once more.
    pub fn public_key_bytes(&self) -> u64 {
        let c = self.request_ct_bytes() - 2;
        1 + varint_len(c) + c
    }

    /// The parameters a client's keys depend on: these, but for the server's flooding width
    /// (which depends on the layer's packing, not on the key). Layers whose key sets are equal
    /// share the session's secret and public key ([`Self::public_key_bytes`] is sent once).
    pub fn key_set(&self) -> HeParams {
        HeParams { flood_bits: 0, ..*self }
    }

    /// The level a response is switched to.
    pub fn response_level(&self) -> usize {
        self.primes - self.response_primes
    }

    /// Bytes of one serialized polynomial over `primes` primes (`fhe-math`'s `Rq` protobuf:
    /// representation, degree, coefficients bit-packed at the primes' width, and the
    /// variable-time flag the `fhe` crate sets on ciphertext polynomials).
    fn poly_bytes(&self, primes: usize) -> u64 {
        let coeffs = (primes * (self.degree * self.prime_bits).div_ceil(8)) as u64;
        2 + 1 + varint_len(self.degree as u64) + 1 + varint_len(coeffs) + coeffs + 2
    }

    /// Bytes of a fresh seeded ciphertext (the client's request): `c0` and the 32-byte seed.
    pub fn request_ct_bytes(&self) -> u64 {
        let p = self.poly_bytes(self.primes);
        1 + varint_len(p) + p + 2 + 32
    }

    /// Bytes of a response ciphertext (two polynomials at the response level).
    pub fn response_ct_bytes(&self) -> u64 {
        let p = self.poly_bytes(self.response_primes);
        let level = self.response_level() as u64;
        2 * (1 + varint_len(p) + p) + if level > 0 { 1 + varint_len(level) } else { 0 }
    }
}

/// Bytes of a protobuf varint.
fn varint_len(x: u64) -> u64 {
    ((64 - x.leading_zeros()).max(1) as u64).div_ceil(7)
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

    /// A strided, padded convolution's output from its definition.
    fn strided(layer: &Layer, x: &[u64], w: &[i64]) -> Vec<u64> {
        let ([c, h, wd], [m, oh, ow], [kh, kw], [sh, sw]) = (layer.input, layer.output, layer.taps, layer.strides);
        let at = |ch: usize, r: usize, q: usize| -> u64 {
            match (r.checked_sub(layer.pads[0]), q.checked_sub(layer.pads[1])) {
                (Some(r), Some(q)) if r < h && q < wd => x[(ch * h + r) * wd + q],
                _ => 0,
            }
        };
        let mut out = vec![0u64; m * oh * ow];
        for k in 0..m {
            for i in 0..oh {
                for j in 0..ow {
                    let mut acc = 0u64;
                    for ch in 0..c {
                        for l in 0..kh {
                            for l2 in 0..kw {
                                let wv = w[((k * c + ch) * kh + l) * kw + l2] as u64;
                                acc = acc.wrapping_add(wv.wrapping_mul(at(ch, sh * i + l, sw * j + l2)));
                            }
                        }
                    }
                    out[(k * oh + i) * ow + j] = acc;
                }
            }
        }
        out
    }

    /// Strided convolutions through the phases (padding, odd sizes, kernels narrower than and
    /// equal to the stride, unequal strides, stride 1) equal the strided sum by definition, and
    /// compute no output the layer drops.
    #[test]
    fn strided_convolutions_by_phases_equal_the_definition() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        // (C, H, W, M, KH, KW, sh, sw, pads)
        let cases = [
            (3, 9, 9, 4, 3, 3, 2, 2, [1, 1, 1, 1]),
            (2, 8, 8, 3, 1, 1, 2, 2, [0, 0, 0, 0]),
            (2, 7, 10, 2, 3, 2, 2, 3, [1, 0, 1, 2]),
            (1, 11, 11, 2, 5, 5, 3, 3, [2, 2, 2, 2]),
            (2, 6, 6, 2, 3, 3, 1, 1, [1, 1, 1, 1]),
            (2, 10, 10, 3, 2, 2, 4, 4, [0, 1, 0, 1]),
        ];
        for (c, h, w, m, kh, kw, sh, sw, pads) in cases {
            let oh = (h + pads[0] + pads[2] - kh) / sh + 1;
            let ow = (w + pads[1] + pads[3] - kw) / sw + 1;
            let layer = Layer::with(1, [c, h, w], pads, [sh, sw], [kh, kw], [m, oh, ow], 40).expect("fits");
            let x: Vec<u64> = (0..c * h * w).map(|_| rng.random()).collect();
            let wt: Vec<i64> = (0..m * c * kh * kw).map(|_| rng.random_range(-1000..1000)).collect();
            let g = layer.geom;
            assert_eq!((g.out_h(), g.out_w()), (oh, ow), "only the kept outputs");
            let full = direct(&g, &layer.pad(&x), &layer.phased(&wt));
            assert_eq!(full, strided(&layer, &x, &wt), "{:?}", (c, h, w, m, kh, kw, sh, sw, pads));
        }
    }

    #[test]
    fn tiling_refuses_what_cannot_fit() {
        assert!(Tiling::choose(ConvGeom { c: 1, h: 40, w: 40, m: 1, kh: 3, kw: 3 }, 64).is_none());
    }
}
