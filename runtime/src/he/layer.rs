//! The server's side of one HE linear layer (see the module doc of [`super`]): the client's
//! public key as the server holds it, the parse of requests, the answer; and `fhe`'s plaintext
//! encoding, which both sides use. The client's side: [`super::client`].

use std::sync::Arc;

use fhe::bfv::{BfvParameters, Ciphertext};
use fhe_math::rq::{Context, Poly, Representation, dot_product, traits::TryConvertFrom};
use rand::{CryptoRng, Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use zeroize::Zeroizing;

use super::pack::Tiling;
use super::{HeParams, WEIGHT_BITS};

/// An HE step failed: parameters, a malformed peer message, or weights out of range.
#[derive(Debug, thiserror::Error)]
pub enum HeError {
    /// The `fhe` crate rejected the parameter set (taken from the plan, not from the peer).
    #[error("BFV parameters: {0}")]
    Params(String),
    /// A peer's ciphertext does not parse or decrypt (a request on the server, a response on the
    /// client).
    #[error("HE message {index} of {expected}: {reason}")]
    Message {
        /// Position of the bad ciphertext in the message, from 0.
        index: usize,
        /// Ciphertexts the message carries.
        expected: usize,
        /// What is wrong with it (its size or form, or the `fhe` crate's error).
        reason: String,
    },
    /// A peer's message has the wrong number of ciphertexts for the layer's tiling.
    #[error("expected {expected} ciphertexts, got {got}")]
    Count {
        /// Ciphertexts the layer's tiling needs.
        expected: usize,
        /// Ciphertexts received.
        got: usize,
    },
    /// A server weight is too wide for HE: `|w| ≥ 2^WEIGHT_BITS` (read as signed in the ring).
    #[error("a weight is {bits} bits wide; HE layers take weights below 2^{WEIGHT_BITS}")]
    WeightRange {
        /// Width of the widest weight's magnitude, in bits.
        bits: u32,
    },
    /// Another `fhe` operation failed (context, encoding, encryption, polynomial conversion).
    #[error("BFV: {0}")]
    Fhe(String),
    /// The client's public key does not parse or was made for another parameter set.
    #[error("the client's public key: {0}")]
    Key(String),
}

pub(super) fn fhe_err(e: fhe::Error) -> HeError {
    HeError::Fhe(e.to_string())
}

pub(super) fn fhe_err_math(e: fhe_math::Error) -> HeError {
    HeError::Fhe(e.to_string())
}
/// `fhe`'s encoding of a plaintext polynomial `m` (coefficients mod `t`) at the top level, in
/// the coefficient domain: `⌊q·m/t⌋` per coefficient, computed as `[m·(q mod t)]_t · (−t)⁻¹`
/// modulo each prime (`⌊q·m/t⌋ = (q·m − [q·m]_t)/t`).
pub(super) struct Encoder {
    top: Arc<Context>,
    t_mask: u64,
    /// `q mod t`.
    q_mod_t: u64,
    /// `(−t)⁻¹ mod p` per top-level prime `p`.
    neg_t_inv: Vec<u64>,
}

impl Encoder {
    pub(super) fn new(params: &HeParams, par: &Arc<BfvParameters>) -> Result<Encoder, HeError> {
        let top = par.context_at_level(0).map_err(fhe_err)?.clone();
        let t = 1u64 << params.ring_bits;
        let q_mod_t = par.moduli().iter().fold(1u64, |acc, &p| acc.wrapping_mul(p)) & (t - 1);
        let neg_t_inv = top
            .moduli_operators()
            .iter()
            .zip(top.moduli())
            .map(|(p, &q)| p.inv(q - t).ok_or_else(|| HeError::Params("t is not invertible".into())))
            .collect::<Result<_, _>>()?;
        Ok(Encoder { top, t_mask: t - 1, q_mod_t, neg_t_inv })
    }

    pub(super) fn encode(&self, m: &[u64]) -> Result<Poly, HeError> {
        let scaled: Zeroizing<Vec<u64>> =
            Zeroizing::new(m.iter().map(|&x| x.wrapping_mul(self.q_mod_t) & self.t_mask).collect());
        let mut rns = Zeroizing::new(Vec::with_capacity(scaled.len() * self.neg_t_inv.len()));
        for (p, &d) in self.top.moduli_operators().iter().zip(&self.neg_t_inv) {
            rns.extend(scaled.iter().map(|&x| p.mul(x, d)));
        }
        Poly::try_convert_from(rns.as_slice(), &self.top, false, Representation::PowerBasis).map_err(fhe_err_math)
    }
}

/// A client's public key as the server holds it, checked to be a fresh seeded encryption of
/// zero's exact encoding at the top level (the client cannot choose its uniform part).
pub struct ClientKey {
    par: Arc<BfvParameters>,
    /// The key's two polynomials `(c0, a)`, NTT form, top level.
    pk: [Poly; 2],
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientKey { .. }")
    }
}

impl ClientKey {
    /// Parses the client's public key for `params`; anything but the canonical seeded encoding
    /// of the expected size is refused.
    pub fn parse(params: &HeParams, bytes: &[u8]) -> Result<ClientKey, HeError> {
        let bad = |reason: String| HeError::Key(reason);
        let expected = params.public_key_bytes();
        if bytes.len() as u64 != expected {
            return Err(bad(format!("{} bytes, expected {expected} (a seeded key)", bytes.len())));
        }
        let par = super::build(params)?;
        let top = par.context_at_level(0).map_err(fhe_err)?;
        let (mut c0, seed) = super::codec::read_public_key(bytes, top, params.degree).map_err(bad)?;
        c0.change_representation(Representation::Ntt);
        let a = Poly::random_from_seed(top, Representation::Ntt, seed);
        Ok(ClientKey { par, pk: [c0, a] })
    }
}

/// Parses one request ciphertext: exactly the canonical encoding of a fresh seeded ciphertext
/// at the top level ([`super::codec::read_request`]), so its uniform half is the expansion of a
/// seed, never a crafted value. Both polynomials in NTT form.
fn parse_request(par: &Arc<BfvParameters>, params: &HeParams, bytes: &[u8]) -> Result<Ciphertext, String> {
    let expected = params.request_ct_bytes();
    if bytes.len() as u64 != expected {
        return Err(format!("{} bytes, expected {expected} (a fresh seeded ciphertext)", bytes.len()));
    }
    let top = par.context_at_level(0).map_err(|e| e.to_string())?;
    let (mut c0, seed) = super::codec::read_request(bytes, top, params.degree)?;
    c0.change_representation(Representation::Ntt);
    let mut a = Poly::random_from_seed(top, Representation::Ntt, seed);
    // SAFETY (in `fhe`'s sense): the expansion of the client's public seed.
    unsafe { a.allow_variable_time_computations() };
    Ciphertext::new(vec![c0, a], par).map_err(|e| e.to_string())
}

/// The server's side of a layer: its weights encoded for `tiling`.
pub struct HeServer {
    params: HeParams,
    par: Arc<BfvParameters>,
    /// Kernel polynomials in NTT form, `[kernel group][channel tile]`.
    pub(super) kernels: Vec<Poly>,
    encoder: Encoder,
}

impl std::fmt::Debug for HeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeServer {{ kernels: {} <redacted> }}", self.kernels.len())
    }
}

/// The request-independent part of one response ([`HeServer::prepare`]), used once by
/// [`HeServer::answer`]. Secret: it holds the server's mask.
pub struct Prepared {
    parts: Vec<Part>,
}

/// One output ciphertext's part of a [`Prepared`]: a fresh encryption of zero under the
/// client's key `(pk₀·u + e₁, pk₁·u + e₂)`, less the mask's encoding, plus the flood, kept as
/// its NTT-form products with `u` (`blind`) and its coefficient-domain terms
/// (`add`: `e₁ + flood − ⌊q·s/t⌋` and `e₂`), which [`HeServer::finish`] adds where each domain is
/// at hand, so no term is transformed on its own.
struct Part {
    /// `pk₀·u` and `pk₁·u`, NTT form, top level.
    blind: [Poly; 2],
    /// `e₁ + flood − ⌊q·s/t⌋` and `e₂`, coefficient domain, top level.
    add: [Poly; 2],
    /// The server's mask `s` of the output polynomial (its share).
    mask: Vec<u64>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Prepared {{ outputs: {} <redacted> }}", self.parts.len())
    }
}

impl HeServer {
    /// Encodes the weights `[M, C, KH, KW]` (signed) for `tiling`.
    pub fn new(params: &HeParams, tiling: &Tiling, weights: &[i64]) -> Result<Self, HeError> {
        if let Some(w) = weights.iter().find(|w| w.unsigned_abs() >= 1 << WEIGHT_BITS) {
            return Err(HeError::WeightRange { bits: 64 - w.unsigned_abs().leading_zeros() });
        }
        let par = super::build(params)?;
        let ctx = par.context_at_level(0).map_err(fhe_err)?;
        let (groups, tiles) = (tiling.kernel_groups(), tiling.channel_tiles());
        // Each kernel made, lifted to every prime and transformed by one task, so no kernel
        // waits in memory as signed integers.
        let kernels = crate::in_compute_pool(|| {
            (0..groups * tiles)
                .into_par_iter()
                .map(|i| {
                    let k = tiling.encode_kernel(weights, i / tiles, i % tiles);
                    let lifted = lift(&k, ctx.moduli());
                    let mut p = Poly::try_convert_from(lifted, ctx, false, Representation::PowerBasis)
                        .map_err(|e| HeError::Fhe(e.to_string()))?;
                    p.change_representation(Representation::Ntt);
                    Ok(p)
                })
                .collect::<Result<Vec<_>, HeError>>()
        })?;
        let encoder = Encoder::new(params, &par)?;
        Ok(HeServer { params: *params, par, kernels, encoder })
    }

    /// Answers the client's ciphertexts: `Enc(W·r − s)` per output polynomial, re-randomised
    /// with a fresh encryption of zero under the client's public key `key` (so `c1` is
    /// pseudorandom), flooded and modulus-switched. Returns the response and the server's
    /// share `s` of the stride-1 outputs. Refuses any request ciphertext that is not a fresh
    /// seeded one of the expected size. [`HeServer::prepare`] then [`HeServer::answer`].
    pub fn respond<R: RngCore + CryptoRng + Send>(
        &self,
        key: &ClientKey,
        tiling: &Tiling,
        request: &[Vec<u8>],
        rng: &mut R,
    ) -> Result<(Vec<Vec<u8>>, Vec<u64>), HeError> {
        let prepared = self.prepare(key, tiling, rng)?;
        self.answer(key, tiling, request, prepared)
    }

    /// The part of a response that does not depend on the request, made while the client
    /// encrypts it: per output ciphertext the flooding noise, a fresh encryption of zero under
    /// `key` less the server's mask `s`, and `s`. Most of a response's work (the encryption's
    /// sampling and transforms, the noise's) is here.
    pub fn prepare<R: RngCore + CryptoRng>(
        &self,
        key: &ClientKey,
        tiling: &Tiling,
        rng: &mut R,
    ) -> Result<Prepared, HeError> {
        if !Arc::ptr_eq(&key.par, &self.par) {
            return Err(HeError::Key("made for other parameters".into()));
        }
        let top = self.par.context_at_level(0).map_err(fhe_err)?;
        let t_mask = (1u64 << self.params.ring_bits) - 1;
        // One task per output ciphertext, each with its own generator seeded from `rng`.
        let seeds: Vec<[u8; 32]> = (0..tiling.output_cts()).map(|_| rng.random()).collect();
        let parts = crate::in_compute_pool(|| {
            seeds
                .into_par_iter()
                .map(|seed| {
                    // The draws in `fhe`'s order: the flood, then `PublicKey::try_encrypt`'s
                    // `u`, `e₁`, `e₂` (centred binomial), then the mask.
                    let mut rng = ChaCha20Rng::from_seed(seed);
                    let mut add0 = self.flood(&mut rng)?;
                    let small = |rng: &mut ChaCha20Rng, repr| {
                        Poly::small(top, repr, super::VARIANCE, rng).map(Zeroizing::new).map_err(fhe_err_math)
                    };
                    let u = small(&mut rng, Representation::Ntt)?;
                    let e1 = small(&mut rng, Representation::PowerBasis)?;
                    // Kept in the part as drawn (the part holds the blind and the mask in the
                    // clear too), not copied out of a zeroizing wrapper.
                    let e2 = Poly::small(top, Representation::PowerBasis, super::VARIANCE, &mut rng)
                        .map_err(fhe_err_math)?;
                    let mask: Vec<u64> = (0..self.params.degree).map(|_| rng.random::<u64>() & t_mask).collect();
                    add0 += &*e1;
                    add0 -= &*Zeroizing::new(self.encoder.encode(&mask)?);
                    let blind = [&*u * &key.pk[0], &*u * &key.pk[1]];
                    Ok(Part { blind, add: [add0, e2], mask })
                })
                .collect::<Result<Vec<_>, HeError>>()
        })?;
        Ok(Prepared { parts })
    }

    /// [`HeServer::respond`]'s request-dependent part: `W·r` per output polynomial plus the
    /// [`Prepared`] part, switched down. Returns the response and the server's share.
    pub fn answer(
        &self,
        key: &ClientKey,
        tiling: &Tiling,
        request: &[Vec<u8>],
        prepared: Prepared,
    ) -> Result<(Vec<Vec<u8>>, Vec<u64>), HeError> {
        let expected = tiling.input_cts();
        if request.len() != expected {
            return Err(HeError::Count { expected, got: request.len() });
        }
        if !Arc::ptr_eq(&key.par, &self.par) {
            return Err(HeError::Key("made for other parameters".into()));
        }
        if prepared.parts.len() != tiling.output_cts() {
            return Err(HeError::Key("the prepared response is for another layer".into()));
        }
        let inputs = crate::in_compute_pool(|| {
            request
                .par_iter()
                .enumerate()
                .map(|(index, bytes)| {
                    parse_request(&self.par, &self.params, bytes).map_err(|reason| HeError::Message {
                        index,
                        expected,
                        reason,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })?;
        let (st, ct_tiles) = (tiling.spatial_tiles(), tiling.channel_tiles());
        let outputs = crate::in_compute_pool(|| {
            prepared
                .parts
                .into_par_iter()
                .enumerate()
                .map(|(i, Part { blind, add, mask })| {
                    let (kg, s) = (i / st, i % st);
                    // `Σ_c r_c·W_c` per polynomial of the ciphertexts, the channel tiles' products
                    // summed in 128 bits and reduced once (`fhe-math`'s `dot_product`), where a
                    // product and a sum per tile each reduced and allocated.
                    let polys = (0..inputs[s].len())
                        .map(|j| {
                            let rs = (0..ct_tiles).map(|c| &inputs[c * st + s][j]);
                            let ws = (0..ct_tiles).map(|c| &self.kernels[kg * ct_tiles + c]);
                            dot_product(rs, ws).map_err(fhe_err_math)
                        })
                        .collect::<Result<Vec<Poly>, HeError>>()?;
                    Ok((self.finish(polys, &blind, &add)?, mask))
                })
                .collect::<Result<Vec<_>, HeError>>()
        })?;
        let (response, masks): (Vec<_>, Vec<_>) = outputs.into_iter().unzip();
        Ok((response, tiling.decode_output(&masks)))
    }

    /// The last steps of a response ciphertext from its products `W·r` (NTT form, top level):
    /// plus the blind's products, then, in the coefficient domain, plus its other terms (the
    /// noises and the flood, less the mask), switched down to the response primes, and written
    /// there ([`super::codec::write_response`]). One inverse transform per polynomial and none
    /// after, where the textbook way transforms the flood, the encryption's noises and the mask
    /// into NTT form, `fhe`'s `switch_to_level` transforms at every level it passes, and
    /// `to_bytes` transforms back to the coefficient domain to write: the same bytes (a test
    /// checks it).
    fn finish(&self, mut polys: Vec<Poly>, blind: &[Poly; 2], add: &[Poly; 2]) -> Result<Vec<u8>, HeError> {
        let level = self.params.response_level();
        let down = self.par.context_at_level(level).map_err(fhe_err)?;
        for ((p, b), a) in polys.iter_mut().zip(blind).zip(add) {
            *p += b;
            p.change_representation(Representation::PowerBasis);
            *p += a;
            p.switch_down_to(down).map_err(|e| HeError::Fhe(e.to_string()))?;
        }
        Ok(super::codec::write_response(&polys, level))
    }

    /// Noise uniform in `[−2^σ, 2^σ)` per coefficient, in the coefficient domain at the top
    /// level: the integer `a + 2^62·b + 2^124·c` (`a, b` uniform in `[0, 2^62)`, `c` uniform
    /// signed with the leftover bits) reduced modulo each prime, without a transform.
    fn flood<R: RngCore>(&self, rng: &mut R) -> Result<Poly, HeError> {
        let ctx = self.par.context_at_level(0).map_err(fhe_err)?;
        let n = self.params.degree;
        let limbs = flood_limbs(self.params.flood_bits, n, rng);
        let mut rns = Vec::with_capacity(ctx.moduli().len() * n);
        for q in ctx.moduli_operators() {
            // 2^(62·k) mod q for each limb k, and the top limb's offset that makes it unsigned.
            let radix: Vec<u64> = (0..limbs.len())
                .scan(1u64, |r, _| {
                    let now = *r;
                    *r = q.mul(*r, q.reduce(1 << 62));
                    Some(now)
                })
                .collect();
            let offset = q.reduce(TOP_OFFSET as u64);
            let top = limbs.len() - 1;
            rns.extend((0..n).map(|i| {
                limbs.iter().enumerate().fold(0u64, |acc, (k, limb)| {
                    // Constant time: no branch on the secret sign.
                    let digit = if k == top {
                        q.sub(q.reduce((limb[i] + TOP_OFFSET) as u64), offset)
                    } else {
                        q.reduce(limb[i] as u64)
                    };
                    q.add(acc, q.mul(digit, radix[k]))
                })
            }));
        }
        Poly::try_convert_from(rns, ctx, false, Representation::PowerBasis).map_err(|e| HeError::Fhe(e.to_string()))
    }
}

/// The signed coefficients `k` (each of magnitude below every prime: `|w| < 2^WEIGHT_BITS`)
/// modulo each prime of `moduli` in turn: `w`, or `q + w` for a negative `w`, chosen by a mask,
/// not a branch (constant time in the weights). The same residues as `fhe-math`'s conversion
/// from `&[i64]`, which reduces every coefficient through 128 bits (a tenth of the server's CPU
/// on the ResNet-18 shape; docs/decisions.md).
fn lift(k: &[i64], moduli: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(k.len() * moduli.len());
    for &q in moduli {
        out.extend(k.iter().map(|&w| (w as u64).wrapping_add(q & ((w >> 63) as u64))));
    }
    out
}

/// Added to the flood's top limb (below `2^61` in magnitude) to reduce it as an unsigned value.
const TOP_OFFSET: i64 = 1 << 61;

/// The flood's limbs, lowest first: `a, b, …` uniform in `[0, 2^62)` and the top one uniform in
/// `[−2^(top−1), 2^(top−1))` with the bits `σ + 1` leaves; drawn top limb first.
fn flood_limbs<R: RngCore>(flood_bits: u32, n: usize, rng: &mut R) -> Vec<Vec<i64>> {
    let sigma = flood_bits + 1;
    let limbs = sigma.div_ceil(62) as usize;
    let mut out: Vec<Vec<i64>> = (0..limbs)
        .rev()
        .map(|limb| {
            if limb + 1 == limbs {
                let top = sigma - 62 * limb as u32;
                (0..n).map(|_| rng.random_range(-(1i64 << (top - 1))..(1i64 << (top - 1)))).collect()
            } else {
                (0..n).map(|_| (rng.random::<u64>() >> 2) as i64).collect()
            }
        })
        .collect();
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::he::HeClient;
    use crate::he::pack::ConvGeom;
    use fhe::bfv::{Encoding, Plaintext, PublicKey};
    use fhe_traits::{DeserializeParametrized, FheEncoder, FheEncrypter, Serialize};
    use rand::SeedableRng;

    /// The kernels' lift to the primes is `fhe-math`'s conversion of signed coefficients, at
    /// the weight bound's extremes, zero and random weights of every magnitude.
    #[test]
    fn lifted_kernels_equal_fhe_maths_conversion() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        let top = (1i64 << WEIGHT_BITS) - 1;
        for ring_bits in [61u8, 40] {
            let params = HeParams::for_layer(ring_bits, 4).expect("params");
            let par = super::super::build(&params).unwrap();
            let ctx = par.context_at_level(0).unwrap();
            let mut k: Vec<i64> = (0..params.degree)
                .map(|i| {
                    let bits = rng.random_range(0..=WEIGHT_BITS);
                    rng.random_range(-(1i64 << bits) + 1..1i64 << bits) * if i % 5 == 0 { 0 } else { 1 }
                })
                .collect();
            k[..4].copy_from_slice(&[top, -top, 1, -1]);
            let want = Poly::try_convert_from(k.as_slice(), ctx, false, Representation::PowerBasis).unwrap();
            let got = Poly::try_convert_from(lift(&k, ctx.moduli()), ctx, false, Representation::PowerBasis).unwrap();
            assert_eq!(got, want, "ℓ = {ring_bits}");
        }
    }

    /// One ciphertext per input, and (the second geometry) inputs over several ciphertexts whose
    /// products are summed across channel tiles.
    #[test]
    fn conv_layer_shares_add_up_to_the_ring_convolution() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let small = ConvGeom { c: 3, h: 10, w: 10, m: 4, kh: 3, kw: 3 };
        let tiled = ConvGeom { c: 5, h: 66, w: 66, m: 3, kh: 3, kw: 3 };
        for (ring_bits, geom) in [(61u8, small), (37, small), (61, tiled), (37, tiled)] {
            let n = HeParams::for_layer(ring_bits, 1).expect("params").degree;
            let tiling = Tiling::choose(geom, n).expect("fits");
            assert_eq!(tiling.channel_tiles() > 1, geom.c == tiled.c, "ℓ={ring_bits}: {geom:?}");
            let params = HeParams::for_layer(ring_bits, tiling.channel_tiles()).expect("params");
            let mask = (1u64 << ring_bits) - 1;
            let r: Vec<u64> = (0..geom.c * geom.h * geom.w).map(|_| rng.random::<u64>() & mask).collect();
            let w: Vec<i64> = (0..geom.m * geom.c * 9).map(|_| rng.random_range(-(1 << 20)..(1 << 20))).collect();
            let client = HeClient::new(&params, &mut rng).unwrap();
            let key = ClientKey::parse(&params, &client.public_key(&mut rng)).unwrap();
            let server = HeServer::new(&params, &tiling, &w).unwrap();
            let req = client.encrypt(&tiling, &r, &mut rng).unwrap();
            let (resp, s) = server.respond(&key, &tiling, &req, &mut rng).unwrap();
            let c = client.decrypt(&tiling, &resp).unwrap();
            // Reference: direct ring convolution.
            for m in 0..geom.m {
                for i in 0..geom.out_h() {
                    for j in 0..geom.out_w() {
                        let mut acc = 0u64;
                        for ch in 0..geom.c {
                            for l in 0..3 {
                                for l2 in 0..3 {
                                    let wv = w[((m * geom.c + ch) * 3 + l) * 3 + l2] as u64;
                                    acc = acc.wrapping_add(wv.wrapping_mul(r[(ch * geom.h + i + l) * geom.w + j + l2]));
                                }
                            }
                        }
                        let at = (m * geom.out_h() + i) * geom.out_w() + j;
                        assert_eq!(c[at].wrapping_add(s[at]) & mask, acc & mask, "ℓ={ring_bits}, {geom:?} at {at}");
                    }
                }
            }
        }
    }

    /// Weights at the public bound and inputs at the ring's extremes: the noise bound holds.
    #[test]
    fn dense_layer_at_the_weight_bound_decrypts_exactly() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
        let ring_bits = 61u8;
        let geom = ConvGeom { c: 20_000, h: 1, w: 1, m: 3, kh: 1, kw: 1 };
        let n = HeParams::for_layer(ring_bits, 1).unwrap().degree;
        let tiling = Tiling::choose(geom, n).unwrap();
        assert!(tiling.channel_tiles() > 1);
        let params = HeParams::for_layer(ring_bits, tiling.channel_tiles()).unwrap();
        let mask = (1u64 << ring_bits) - 1;
        let top = (1i64 << WEIGHT_BITS) - 1;
        let r: Vec<u64> = (0..geom.c).map(|i| if i % 2 == 0 { mask } else { 1 << (ring_bits - 1) }).collect();
        let w: Vec<i64> = (0..geom.m * geom.c).map(|i| if i % 3 == 0 { -top } else { top }).collect();
        let client = HeClient::new(&params, &mut rng).unwrap();
        let key = ClientKey::parse(&params, &client.public_key(&mut rng)).unwrap();
        let server = HeServer::new(&params, &tiling, &w).unwrap();
        let req = client.encrypt(&tiling, &r, &mut rng).unwrap();
        let (resp, s) = server.respond(&key, &tiling, &req, &mut rng).unwrap();
        let c = client.decrypt(&tiling, &resp).unwrap();
        for m in 0..geom.m {
            let want = (0..geom.c).fold(0u64, |a, j| a.wrapping_add((w[m * geom.c + j] as u64).wrapping_mul(r[j])));
            assert_eq!(c[m].wrapping_add(s[m]) & mask, want & mask, "output {m}");
        }
        assert!(matches!(HeServer::new(&params, &tiling, &[top + 1, 0, 0]), Err(HeError::WeightRange { bits: 25 })));
    }

    /// The flood as the textbook builds it: each limb transformed, combined by Horner in NTT form.
    fn textbook_flood(server: &HeServer, rng: &mut impl RngCore) -> Poly {
        let ctx = server.par.context_at_level(0).unwrap();
        let n = server.params.degree;
        let limbs = flood_limbs(server.params.flood_bits, n, rng);
        let mut radix = vec![0u64; n];
        radix[0] = 1 << 62;
        let mut radix = Poly::try_convert_from(radix.as_slice(), ctx, false, Representation::PowerBasis).unwrap();
        radix.change_representation(Representation::Ntt);
        limbs.iter().rev().fold(Poly::zero(ctx, Representation::Ntt), |acc, limb| {
            let mut p = Poly::try_convert_from(limb.as_slice(), ctx, false, Representation::PowerBasis).unwrap();
            p.change_representation(Representation::Ntt);
            &(&acc * &radix) + &p
        })
    }

    /// A response made the fast way (the blind's products in NTT form, its noises, the flood
    /// and the mask in the coefficient domain, one inverse transform, written from there) has
    /// exactly the bytes of the textbook way from the same draws: the flood in NTT form added to
    /// `c0`, `fhe`'s `PublicKey::try_encrypt` of zero less the mask's `Plaintext` added as a
    /// ciphertext, `fhe`'s `switch_to_level` and `to_bytes`.
    #[test]
    fn responses_equal_the_textbook_construction() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        for (ring_bits, tiles) in [(40u8, 1), (61, 3)] {
            let geom = ConvGeom { c: 5, h: 12, w: 12, m: 6, kh: 3, kw: 3 };
            let params = HeParams::for_layer(ring_bits, tiles).unwrap();
            let tiling = Tiling::choose(geom, params.degree).unwrap();
            let mask = (1u64 << ring_bits) - 1;
            let r: Vec<u64> = (0..geom.c * geom.h * geom.w).map(|_| rng.random::<u64>() & mask).collect();
            let w: Vec<i64> = (0..geom.m * geom.c * 9).map(|_| rng.random_range(-(1 << 23)..(1 << 23))).collect();
            let client = HeClient::new(&params, &mut rng).unwrap();
            let pk_bytes = client.public_key(&mut rng);
            let key = ClientKey::parse(&params, &pk_bytes).unwrap();
            let server = HeServer::new(&params, &tiling, &w).unwrap();
            let req = client.encrypt(&tiling, &r, &mut rng).unwrap();

            let seed: [u8; 32] = rng.random();
            let mut fast = server.flood(&mut ChaCha20Rng::from_seed(seed)).unwrap();
            fast.change_representation(Representation::Ntt);
            assert_eq!(fast, textbook_flood(&server, &mut ChaCha20Rng::from_seed(seed)), "ℓ={ring_bits}");

            let seed: [u8; 32] = rng.random();
            let prepared = server.prepare(&key, &tiling, &mut ChaCha20Rng::from_seed(seed)).unwrap();
            let (resp, shares) = server.answer(&key, &tiling, &req, prepared).unwrap();
            // The textbook way, from the same draws (prepare's per-ciphertext seeds, in order).
            let pk = PublicKey::from_bytes(&pk_bytes, &server.par).unwrap();
            let zero = Plaintext::zero(Encoding::poly(), &server.par).unwrap();
            let mut seeds = ChaCha20Rng::from_seed(seed);
            let inputs: Vec<Ciphertext> = req.iter().map(|b| parse_request(&server.par, &params, b).unwrap()).collect();
            let (st, ct_tiles) = (tiling.spatial_tiles(), tiling.channel_tiles());
            let mut masks = Vec::new();
            for (i, bytes) in resp.iter().enumerate() {
                let mut part_rng = ChaCha20Rng::from_seed(seeds.random());
                let flood = textbook_flood(&server, &mut part_rng);
                let mut blind = pk.try_encrypt(&zero, &mut part_rng).unwrap();
                let m: Vec<u64> = (0..params.degree).map(|_| part_rng.random::<u64>() & mask).collect();
                blind -= &Plaintext::try_encode(m.as_slice(), Encoding::poly(), &server.par).unwrap();
                masks.push(m);
                let (kg, s) = (i / st, i % st);
                let mut polys: Vec<Poly> = inputs[s].iter().map(|p| p * &server.kernels[kg * ct_tiles]).collect();
                for c in 1..ct_tiles {
                    let k = &server.kernels[kg * ct_tiles + c];
                    polys.iter_mut().zip(inputs[c * st + s].iter()).for_each(|(a, p)| *a += &(p * k));
                }
                polys[0] += &flood;
                let mut ct = Ciphertext::new(polys, &server.par).unwrap();
                ct += &blind;
                ct.switch_to_level(params.response_level()).unwrap();
                assert!(ct.to_bytes() == *bytes, "ℓ={ring_bits}, response ciphertext {i}");
            }
            assert_eq!(shares, tiling.decode_output(&masks), "ℓ={ring_bits}: the server's share");
        }
    }

    /// A request of the right size that is not the one canonical encoding is refused: one
    /// coefficient not reduced modulo its prime (all ones at the prime's width), another
    /// representation tag, a variable-time flag cleared.
    #[test]
    fn a_non_canonical_request_is_refused() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(13);
        let params = HeParams::for_layer(39, 1).unwrap();
        let geom = ConvGeom { c: 2, h: 4, w: 4, m: 1, kh: 1, kw: 1 };
        let tiling = Tiling::choose(geom, params.degree).unwrap();
        let client = HeClient::new(&params, &mut rng).unwrap();
        let key = ClientKey::parse(&params, &client.public_key(&mut rng)).unwrap();
        let server = HeServer::new(&params, &tiling, &[3, -1]).unwrap();
        let good = client.encrypt(&tiling, &[5; 32], &mut rng).unwrap();
        assert!(server.respond(&key, &tiling, &good, &mut rng).is_ok());
        let header = good[0].len() - params.degree * params.primes * params.prime_bits / 8 - 2 - 34;
        let mut unreduced = good[0].clone();
        unreduced[header..header + 6].fill(0xff);
        unreduced[header + 6] |= 0x03;
        let at = good[0].iter().position(|&b| b == 0x08).unwrap();
        let mut tag = good[0].clone();
        tag[at + 1] = 0x01;
        let mut flag = good[0].clone();
        let end = flag.len() - 35;
        assert_eq!(flag[end], 0x01, "the variable-time flag's value");
        flag[end] = 0x00;
        for (what, bad) in [("unreduced", unreduced), ("representation", tag), ("flag", flag)] {
            let err = server.respond(&key, &tiling, &[bad], &mut rng).unwrap_err();
            assert!(matches!(err, HeError::Message { index: 0, .. }), "{what}: {err}");
        }
    }

    /// The cost model's ciphertext sizes are the serialized sizes.
    #[test]
    fn ciphertext_sizes_match_the_cost_model() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        for ring_bits in [61u8, 37, 20] {
            let params = HeParams::for_layer(ring_bits, 1).unwrap();
            let geom = ConvGeom { c: 4, h: 1, w: 1, m: 2, kh: 1, kw: 1 };
            let tiling = Tiling::choose(geom, params.degree).unwrap();
            let client = HeClient::new(&params, &mut rng).unwrap();
            let pk = client.public_key(&mut rng);
            let key = ClientKey::parse(&params, &pk).unwrap();
            let server = HeServer::new(&params, &tiling, &[1, -2, 3, 4, 5, 6, -7, 8]).unwrap();
            let req = client.encrypt(&tiling, &[1, 2, 3, 4], &mut rng).unwrap();
            let (resp, _) = server.respond(&key, &tiling, &req, &mut rng).unwrap();
            assert_eq!(pk.len() as u64, params.public_key_bytes(), "public key, ℓ={ring_bits} {params:?}");
            assert_eq!(req[0].len() as u64, params.request_ct_bytes(), "request, ℓ={ring_bits} {params:?}");
            assert_eq!(resp[0].len() as u64, params.response_ct_bytes(), "response, ℓ={ring_bits} {params:?}");
        }
    }
}
