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

pub use veil_ir::he_pack as pack;

mod layer;

pub use layer::{HeClient, HeError, HeServer};

use std::sync::Arc;

use fhe::bfv::{BfvParameters, BfvParametersBuilder};

pub use veil_ir::he_pack::{FLOOD_SECURITY, HeParams, WEIGHT_BITS};

/// The `fhe` parameter object of [`HeParams`]. Building one (prime search, NTT tables) takes
/// tens of milliseconds, so each distinct parameter set is built once per process and shared:
/// parameters are public, and keys are never cached.
pub fn build(p: &HeParams) -> Result<Arc<BfvParameters>, HeError> {
    type Key = (usize, u8, usize, usize);
    static CACHE: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<Key, Arc<BfvParameters>>>> =
        std::sync::LazyLock::new(Default::default);
    let key = (p.degree, p.ring_bits, p.prime_bits, p.primes);
    if let Some(par) = CACHE.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(par);
    }
    let par = BfvParametersBuilder::new()
        .set_degree(p.degree)
        .set_plaintext_modulus(1u64 << p.ring_bits)
        .set_moduli_sizes(&vec![p.prime_bits; p.primes])
        .build_arc()
        .map_err(|e| HeError::Params(e.to_string()))?;
    if let Ok(mut c) = CACHE.lock() {
        c.insert(key, par.clone());
    }
    Ok(par)
}
