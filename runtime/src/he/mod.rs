//! Linear layers under BFV (`fhe` crate), offline: the client learns `W·r − s`, the server keeps
//! `s`, and neither sees the other's secret (docs/protocols.md, "Linear layer by HE").
//!
//! Sans-I/O: [`HeClient::encrypt`] turns the client's mask into ciphertext bytes,
//! [`HeServer::respond`] turns those and the weights into response bytes plus the server's share,
//! [`HeClient::decrypt`] turns the response into the client's share. Packing: [`pack`].
//!
//! **Plaintext modulus** t = 2^ℓ, coefficient encoding. Weights enter as signed polynomials
//! (centred, so noise grows with |w|, not with t).
//!
//! **Keys.** The client draws a BFV secret key per parameter set and session and sends the
//! server a public key (a seeded encryption of zero, so half a ciphertext) once, with the first
//! layer of the set ([`HeClient::public_key`], [`ClientKey`]).
//!
//! **Circuit privacy** (the client must learn `W·r − s` and nothing else about `W`). A request
//! is `(c0, a)` with `a` the expansion of a seed the client drew, so an answer `Σ K·ct` alone
//! would have `c1 = Σ a·K`, a function of the weights the client can invert or test guesses
//! against. The server therefore, for every response ciphertext:
//! 1. refuses requests that are not the canonical encoding of a fresh *seeded* ciphertext of the
//!    exact expected size (the client cannot choose `a`, e.g. as the product of the primes the
//!    switch drops, which returned the kernel in the clear);
//! 2. adds a fresh encryption of zero under the client's public key: `c1` gains `a_pk·u + e₂`
//!    with a fresh small `u`, pseudorandom under RLWE even to the holder of the secret key;
//! 3. subtracts a uniformly random mask polynomial mod t (all N coefficients), so the decrypted
//!    value is uniform and the server keeps the mask as its share;
//! 4. adds to `c0` noise uniform in `[−2^σ, 2^σ)`, σ from [`HeParams::for_layer`]'s smudging
//!    analysis: the weight-dependent noise `(e + ε)·K` and the public-key encryption's
//!    `e_pk·u + e₁ + e₂·s` are hidden up to statistical distance `2^−40` summed over every
//!    coefficient of every response a client can see under the query bound
//!    ([`pack::QUERY_BITS`]: `2^40` response ciphertexts per weights file);
//! 5. switches the modulus down to the response primes. The switch is a deterministic function
//!    of the flooded ciphertext, so its rounding (`r₀ + r₁·s`) adds no statistical distance.
//!
//! Steps 4 and 5 run in the coefficient domain after one inverse transform (the flood is drawn
//! there, reduced modulo each prime, never transformed), then one forward transform at the
//! response primes: the same ciphertext, bit for bit, as flooding in NTT form and `fhe`'s
//! level-by-level `switch_to_level` (a test checks it), for 40 % fewer transforms per response.
//! Requests are parsed, kernels encoded, and ciphertexts encrypted and decrypted in parallel.
//!
//! `fhe` encodes `m` as `⌊q·m/t⌋`, so the product with a plaintext kernel carries no `t·‖K‖₁`
//! term: the weight-dependent noise is `(e + ε)·K`, `|e + ε| ≤ 21`. The analysis covers
//! semi-honest clients; a malicious client could put large noise into `c0` (its phase is its
//! own choice) and learn from the noise of the answer, as in MUSE (USENIX Security 2021):
//! docs/threat-model.md says so.
//!
//! **Parameters** ([`HeParams::for_layer`]): with `|w| < 2^24` (checked when the weights are
//! encoded) and at most `N·tiles` terms per coefficient, the noise bound is public. The
//! ciphertext modulus is a product of primes above t (the `fhe` crate decrypts garbage
//! otherwise), large enough for `16·t·2^σ`, and N is the smallest power of two whose 128-bit
//! security bound on log q (homomorphicencryption.org) admits it.

pub use veil_ir::he_pack as pack;

#[cfg(test)]
mod attacks;
mod client;
mod codec;
mod layer;

pub use client::HeClient;
pub use layer::{ClientKey, HeError, HeServer, Prepared};

use std::sync::Arc;

use fhe::bfv::{BfvParameters, BfvParametersBuilder};

pub use veil_ir::he_pack::{FLOOD_SECURITY, HeParams, QUERY_BITS, WEIGHT_BITS};

/// The variance of the centred binomial noise of fresh encryptions (`fhe`'s default, set
/// explicitly because [`HeClient::encrypt`] draws its own).
pub(crate) const VARIANCE: usize = 10;

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
        .set_variance(VARIANCE)
        .set_plaintext_modulus(1u64 << p.ring_bits)
        .set_moduli_sizes(&vec![p.prime_bits; p.primes])
        .build_arc()
        .map_err(|e| HeError::Params(e.to_string()))?;
    // Two threads may build the same set at once: the first one cached wins, so that every
    // key, ciphertext and kernel of a parameter set shares one `Arc` (`fhe` asserts it).
    match CACHE.lock() {
        Ok(mut c) => Ok(c.entry(key).or_insert(par).clone()),
        Err(_) => Ok(par),
    }
}
