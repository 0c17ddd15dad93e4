//! Linear layers under BFV (`fhe` crate), offline: the client learns `W·r − s`, the server keeps
//! `s`, and neither sees the other's secret (PROTOCOLS.md, "Linear layers").
//!
//! Sans-I/O: [`HeClient::encrypt`] turns the client's mask into ciphertext bytes,
//! [`HeServer::respond`] turns those and the weights into response bytes plus the server's share,
//! [`HeClient::decrypt`] turns the response into the client's share. Packing: [`pack`].
//!
//! **Plaintext modulus** t = 2^ℓ, coefficient encoding. Weights enter as signed polynomials
//! (centred, so noise grows with |w|, not with t).
//!
//! **Circuit privacy** by noise flooding: before returning, the server adds to every response
//! ciphertext a fresh uniformly random mask polynomial mod t (all N coefficients, so the
//! coefficients the client does not read reveal nothing either) and, to `c0`, a noise polynomial
//! uniform in `[−2^σ, 2^σ)` with σ = (bound on the weight-dependent noise) + 40. The decrypted
//! noise is then within statistical distance 2^−40·N of a distribution independent of the
//! weights, and the rest of the ciphertext is a fresh-looking encryption of a uniformly random
//! message. The response is then modulus-switched to the fewest primes that still decrypt: the
//! noise-to-modulus ratio is kept, so this costs no correctness, only the rounding noise of the
//! switch, which is computed from already flooded values.
//!
//! **Parameters** ([`HeParams::for_layer`]): the weight-dependent noise of `ct·K` is below
//! `t·‖K‖₁ + e·‖K‖₁` (the `t·k` term comes from `Δ·t ≢ q`); with `|w| < 2^24` (checked when the
//! weights are encoded) and at most `N·tiles` terms, its bound is public. The ciphertext modulus
//! is a product of primes above t (the `fhe` crate decrypts garbage otherwise), large enough
//! for `2t·2^σ` with margin, and N is the smallest power of two whose 128-bit-security bound on
//! log q (homomorphicencryption.org) admits it.

pub mod pack;

mod layer;

pub use layer::{HeClient, HeError, HeServer};

use std::sync::Arc;

use fhe::bfv::{BfvParameters, BfvParametersBuilder};

/// Weights must satisfy `|w| < 2^WEIGHT_BITS` (in the ring, read as signed).
pub const WEIGHT_BITS: u32 = 24;
/// Statistical security of the noise flooding, in bits.
pub const FLOOD_SECURITY: u32 = 40;

/// Largest log2 q for 128-bit security per degree (homomorphicencryption.org standard).
const MAX_LOG_Q: [(usize, u32); 4] = [(4096, 109), (8192, 218), (16384, 438), (32768, 881)];

/// BFV parameters of one linear layer: public, derived from the ring width and the packing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeParams {
    pub degree: usize,
    /// Bits of each ciphertext prime (all equal; each above the plaintext modulus).
    pub prime_bits: usize,
    pub primes: usize,
    /// Primes kept in a response after modulus switching.
    pub response_primes: usize,
    pub ring_bits: u8,
    /// σ: the flooding noise is uniform in `[−2^σ, 2^σ)`.
    pub flood_bits: u32,
}

impl HeParams {
    /// Parameters for a layer over ring `ring_bits` whose outputs each sum at most `terms`
    /// plaintext coefficient products; `None` if no supported degree has room.
    pub fn for_layer(ring_bits: u8, channel_tiles: usize) -> Option<HeParams> {
        let l = ring_bits as u32;
        for (degree, max_log_q) in MAX_LOG_Q {
            let terms = (degree * channel_tiles) as u64;
            let noise_bits = l + WEIGHT_BITS + (64 - terms.leading_zeros()) + 1;
            let flood_bits = noise_bits + FLOOD_SECURITY;
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

    /// The `fhe` parameter object.
    pub fn build(&self) -> Result<Arc<BfvParameters>, HeError> {
        BfvParametersBuilder::new()
            .set_degree(self.degree)
            .set_plaintext_modulus(1u64 << self.ring_bits)
            .set_moduli_sizes(&vec![self.prime_bits; self.primes])
            .build_arc()
            .map_err(|e| HeError::Params(e.to_string()))
    }

    /// The level a response is switched to.
    pub fn response_level(&self) -> usize {
        self.primes - self.response_primes
    }
}
