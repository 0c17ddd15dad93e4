//! The client's side of an HE linear layer: its secret key, the encryption of its mask and the
//! decryption of the server's answer (see the module doc of [`super`]), each assembled from
//! `fhe-math` so that a ciphertext costs only the transforms its algebra needs.

use std::sync::Arc;

use fhe::bfv::{BfvParameters, PublicKey, SecretKey};
use fhe_math::rns::ScalingFactor;
use fhe_math::rq::scaler::Scaler;
use fhe_math::rq::{Context, Poly, Representation, traits::TryConvertFrom};
use fhe_traits::Serialize;
use num_bigint::BigUint;
use rand::{CryptoRng, Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use zeroize::Zeroizing;

use super::HeParams;
use super::layer::{Encoder, HeError, fhe_err, fhe_err_math};
use super::pack::Tiling;

/// The client's BFV secret key for one parameter set of one session.
pub struct HeClient {
    params: HeParams,
    par: Arc<BfvParameters>,
    pub(super) sk: SecretKey,
    /// The secret key in NTT form at the top level, for requests. Secret.
    s_top: Zeroizing<Poly>,
    encoder: Encoder,
    /// The secret key in NTT form at the response level, for responses. Secret.
    s_response: Zeroizing<Poly>,
    /// `fhe`'s decryption scaler at the response level: `⌊t·x/q⌉`, onto the first prime.
    scaler: Scaler,
}

impl std::fmt::Debug for HeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeClient { sk: <redacted> }")
    }
}

impl HeClient {
    /// A fresh secret key for parameter set `params` (one per set and session; it never leaves
    /// the client).
    pub fn new<R: RngCore + CryptoRng + Send>(params: &HeParams, rng: &mut R) -> Result<Self, HeError> {
        let par = super::build(params)?;
        let sk = SecretKey::random(&par, rng);
        let top = par.context_at_level(0).map_err(fhe_err)?;
        let coeffs = Zeroizing::new(
            super::codec::read_secret_key(&Zeroizing::new(sk.to_bytes()), params.degree)
                .map_err(|e| HeError::Fhe(format!("unexpected secret key serialization: {e}")))?,
        );
        let mut s_top = Zeroizing::new(
            Poly::try_convert_from(coeffs.as_slice(), top, false, Representation::PowerBasis).map_err(fhe_err_math)?,
        );
        s_top.change_representation(Representation::Ntt);
        let encoder = Encoder::new(params, &par)?;
        let response = par.context_at_level(params.response_level()).map_err(fhe_err)?;
        let mut s_response = Zeroizing::new(
            Poly::try_convert_from(coeffs.as_slice(), response, false, Representation::PowerBasis)
                .map_err(fhe_err_math)?,
        );
        s_response.change_representation(Representation::Ntt);
        let plain = Context::new_arc(&par.moduli()[..1], params.degree).map_err(fhe_err_math)?;
        let factor = ScalingFactor::new(&BigUint::from(1u64 << params.ring_bits), response.modulus());
        let scaler = Scaler::new(response, &plain, factor).map_err(fhe_err_math)?;
        Ok(HeClient { params: *params, par, sk, s_top, encoder, s_response, scaler })
    }

    /// `fhe`'s encoding of `m` ([`Encoder`]).
    fn encode(&self, m: &[u64]) -> Result<Poly, HeError> {
        self.encoder.encode(m)
    }

    /// A fresh public key for this secret key (a seeded encryption of zero, serialized): the
    /// server adds an encryption of zero under it to every response, so that no part of a
    /// response is a function of the weights and the client's own request.
    pub fn public_key<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Vec<u8> {
        PublicKey::new(&self.sk, rng).to_bytes()
    }

    /// Encrypts the client's share `r` (`[C, H, W]`, ring elements) packed by `tiling`; one
    /// serialized (seeded, so half size) ciphertext per input polynomial.
    ///
    /// `fhe`'s secret-key encryption, assembled here so that a request costs one transform:
    /// `c0 = e + ⌊q·m/t⌋ − a·s` with `a` the expansion of a fresh seed and `e` centred binomial
    /// of `fhe`'s variance, written from the coefficient domain ([`super::codec`]). `fhe`'s own
    /// transforms `m`, `e` and the key to NTT form and `c0` back to write it. Same ciphertext
    /// distribution, same bytes format (tests check both against `fhe`).
    pub fn encrypt<R: RngCore + CryptoRng + Send>(
        &self,
        tiling: &Tiling,
        r: &[u64],
        rng: &mut R,
    ) -> Result<Vec<Vec<u8>>, HeError> {
        let polys = tiling.encode_input(r);
        let top = self.par.context_at_level(0).map_err(fhe_err)?;
        // One task per ciphertext, each with its own generator seeded from `rng`.
        let seeds: Vec<[u8; 32]> = polys.iter().map(|_| rng.random()).collect();
        crate::in_compute_pool(|| {
            polys
                .par_iter()
                .zip(seeds)
                .map(|(m, seed)| {
                    let mut rng = ChaCha20Rng::from_seed(seed);
                    let a_seed: [u8; 32] = rng.random();
                    let mut c0 = Poly::small(top, Representation::PowerBasis, super::VARIANCE, &mut rng)
                        .map_err(fhe_err_math)?;
                    c0 += &*Zeroizing::new(self.encode(m)?);
                    let mut a_s = Zeroizing::new(Poly::random_from_seed(top, Representation::Ntt, a_seed));
                    *a_s *= &*self.s_top;
                    a_s.change_representation(Representation::PowerBasis);
                    c0 -= &*a_s;
                    Ok(super::codec::write_request(&c0, &a_seed))
                })
                .collect()
        })
    }

    /// Decrypts the server's response into the client's share of the stride-1 outputs.
    ///
    /// `fhe`'s decryption, assembled here so that a response costs one forward and one inverse
    /// transform: the phase `c0 + c1·s` with `c0` left in the coefficient domain it arrives in
    /// and the key transformed once per session, scaled by `fhe`'s own scaler and reduced as
    /// `fhe` does. `fhe`'s transforms `c0`, the key and the plaintext again per ciphertext.
    /// Same values (a test checks it against `fhe`'s `try_decrypt`).
    pub fn decrypt(&self, tiling: &Tiling, response: &[Vec<u8>]) -> Result<Vec<u64>, HeError> {
        let expected = tiling.output_cts();
        if response.len() != expected {
            return Err(HeError::Count { expected, got: response.len() });
        }
        let level = self.params.response_level();
        let ctx = self.par.context_at_level(level).map_err(fhe_err)?;
        let (t, q0) = (1u64 << self.params.ring_bits, self.par.moduli()[0]);
        let polys = crate::in_compute_pool(|| {
            response
                .par_iter()
                .enumerate()
                .map(|(index, bytes)| {
                    let bad = |reason: String| HeError::Message { index, expected, reason };
                    let mut c = super::codec::read_response(bytes, ctx, self.params.degree, 2, level).map_err(bad)?;
                    let mut c1 = Zeroizing::new(c.pop().expect("two polynomials"));
                    let mut phase = Zeroizing::new(c.pop().expect("two polynomials"));
                    c1.disallow_variable_time_computations();
                    phase.disallow_variable_time_computations();
                    c1.change_representation(Representation::Ntt);
                    *c1 *= &*self.s_response;
                    c1.change_representation(Representation::PowerBasis);
                    *phase += &*c1;
                    let d = Zeroizing::new(phase.scale(&self.scaler).map_err(|e| bad(e.to_string()))?);
                    // `fhe`'s reduction of the scaled value (centred modulo the first prime) into [0, t).
                    Ok(d.coefficients().iter().map(|&v| ((v + t) % q0) & (t - 1)).collect::<Vec<u64>>())
                })
                .collect::<Result<Vec<_>, HeError>>()
        })?;
        Ok(tiling.decode_output(&polys))
    }

    /// The noise, in bits, of each ciphertext of a response (tests only: circuit privacy).
    #[cfg(feature = "test-hooks")]
    pub fn noise_bits(&self, response: &[Vec<u8>]) -> Result<Vec<usize>, HeError> {
        use fhe::bfv::Ciphertext;
        use fhe_traits::DeserializeParametrized;
        response
            .iter()
            .map(|bytes| {
                let ct = Ciphertext::from_bytes(bytes, &self.par).map_err(fhe_err)?;
                // SAFETY: `measure_noise` is marked unsafe only because its running time
                // depends on the noise; this is a test hook, never run in a session.
                unsafe { self.sk.measure_noise(&ct) }.map_err(fhe_err)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::he::pack::ConvGeom;
    use crate::he::{ClientKey, HeServer};
    use fhe::bfv::{Ciphertext, Encoding};
    use fhe_traits::{DeserializeParametrized, FheDecoder, FheDecrypter};

    /// The client's own encryption is `fhe`'s: each request parses in `fhe` and re-serializes
    /// there to the same bytes, decrypts under `fhe` to the packed mask, and its phase less
    /// `⌊q·m/t⌋` is a small error, the same integer modulo every prime, centred binomial of
    /// variance about 10 (a missing or constant error fails).
    #[test]
    fn requests_are_fhe_ciphertexts_with_fresh_noise() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        for ring_bits in [61u8, 39, 20] {
            let params = HeParams::for_layer(ring_bits, 1).unwrap();
            let geom = ConvGeom { c: 3, h: 9, w: 9, m: 2, kh: 3, kw: 3 };
            let tiling = Tiling::choose(geom, params.degree).unwrap();
            let client = HeClient::new(&params, &mut rng).unwrap();
            let mask = (1u64 << ring_bits) - 1;
            let r: Vec<u64> = (0..geom.c * geom.h * geom.w).map(|_| rng.random::<u64>() & mask).collect();
            let req = client.encrypt(&tiling, &r, &mut rng).unwrap();
            let top = client.par.context_at_level(0).unwrap();
            let (mut sum, mut squares, mut count) = (0i64, 0i64, 0i64);
            for (bytes, m) in req.iter().zip(tiling.encode_input(&r)) {
                let ct = Ciphertext::from_bytes(bytes, &client.par).unwrap();
                assert!(ct.to_bytes() == *bytes, "fhe writes the same bytes, ℓ={ring_bits}");
                let pt = client.sk.try_decrypt(&ct).unwrap();
                let got = Vec::<u64>::try_decode(&pt, Encoding::poly()).unwrap();
                assert_eq!(got, m, "ℓ={ring_bits}");
                let mut phase = &ct[1] * &*client.s_top;
                phase += &ct[0];
                phase.change_representation(Representation::PowerBasis);
                let enc = client.encode(&m).unwrap();
                let (ph, en) = (phase.coefficients(), enc.coefficients());
                for j in 0..params.degree {
                    let mut e = None;
                    for (i, &q) in top.moduli().iter().enumerate() {
                        let d = (ph[[i, j]] + q - en[[i, j]]) % q;
                        let centred = if d > q / 2 { d as i64 - q as i64 } else { d as i64 };
                        assert!(centred.abs() <= 20, "error {centred} beyond the binomial's support");
                        assert!(e.is_none_or(|x| x == centred), "the error differs between primes");
                        e = Some(centred);
                    }
                    let e = e.unwrap();
                    (sum, squares, count) = (sum + e, squares + e * e, count + 1);
                }
            }
            let (mean, var) = (sum as f64 / count as f64, squares as f64 / count as f64);
            assert!(mean.abs() < 0.2 && (9.0..11.0).contains(&var), "error mean {mean}, variance {var}, ℓ={ring_bits}");
        }
    }

    /// The client's decryption is `fhe`'s: on real responses and on uniformly random
    /// ciphertexts at the response level (every phase, so every rounding and sign case), its
    /// values equal `fhe`'s `try_decrypt` and `try_decode`.
    #[test]
    fn decryption_equals_fhes() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(14);
        for ring_bits in [61u8, 40, 20] {
            let params = HeParams::for_layer(ring_bits, 1).unwrap();
            let geom = ConvGeom { c: 3, h: 8, w: 8, m: 3, kh: 3, kw: 3 };
            let tiling = Tiling::choose(geom, params.degree).unwrap();
            let client = HeClient::new(&params, &mut rng).unwrap();
            let key = ClientKey::parse(&params, &client.public_key(&mut rng)).unwrap();
            let w: Vec<i64> = (0..geom.m * geom.c * 9).map(|_| rng.random_range(-(1 << 20)..(1 << 20))).collect();
            let server = HeServer::new(&params, &tiling, &w).unwrap();
            let mask = (1u64 << ring_bits) - 1;
            let r: Vec<u64> = (0..geom.c * geom.h * geom.w).map(|_| rng.random::<u64>() & mask).collect();
            let (real, _) =
                server.respond(&key, &tiling, &client.encrypt(&tiling, &r, &mut rng).unwrap(), &mut rng).unwrap();
            let level = params.response_level();
            let ctx = client.par.context_at_level(level).unwrap();
            let random: Vec<Vec<u8>> = (0..tiling.output_cts())
                .map(|_| {
                    let polys: Vec<Poly> = (0..2)
                        .map(|_| {
                            let mut p = Poly::random(ctx, Representation::Ntt, &mut rng);
                            p.change_representation(Representation::PowerBasis);
                            p
                        })
                        .collect();
                    super::super::codec::write_response(&polys, level)
                })
                .collect();
            for resp in [real, random] {
                let by_fhe: Vec<Vec<u64>> = resp
                    .iter()
                    .map(|b| {
                        let pt = client.sk.try_decrypt(&Ciphertext::from_bytes(b, &client.par).unwrap()).unwrap();
                        Vec::<u64>::try_decode(&pt, Encoding::poly()).unwrap()
                    })
                    .collect();
                assert_eq!(client.decrypt(&tiling, &resp).unwrap(), tiling.decode_output(&by_fhe), "ℓ={ring_bits}");
            }
        }
    }

    /// The encoding is `⌊q·m/t⌋` modulo each prime, computed with big integers.
    #[test]
    fn the_encoding_is_floor_q_m_over_t() {
        use num_bigint::BigUint;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(12);
        for ring_bits in [61u8, 39, 13] {
            let params = HeParams::for_layer(ring_bits, 1).unwrap();
            let client = HeClient::new(&params, &mut rng).unwrap();
            let mask = (1u64 << ring_bits) - 1;
            let mut m: Vec<u64> = (0..params.degree).map(|_| rng.random::<u64>() & mask).collect();
            (m[0], m[1], m[2]) = (0, 1, mask);
            let enc = client.encode(&m).unwrap();
            let moduli = client.par.moduli();
            let q: BigUint = moduli.iter().map(|&p| BigUint::from(p)).product();
            for (j, &x) in m.iter().enumerate() {
                let want = (&q * BigUint::from(x)) >> ring_bits as usize;
                for (i, &p) in moduli.iter().enumerate() {
                    assert_eq!(BigUint::from(enc.coefficients()[[i, j]]), &want % p, "ℓ={ring_bits}, m={x}");
                }
            }
        }
    }
}
