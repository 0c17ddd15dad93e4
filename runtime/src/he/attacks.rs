//! A curious client attacks the HE linear layer (docs/threat-model.md, "HE linear layers"): each test
//! plays the client, with its own secret key and request in hand, and tries to learn the
//! weights from the server's responses. Each attack worked against the responses before they
//! were re-randomised under the client's public key (`c1` was `ModSwitch(Σ a_c·K_c)`).

use fhe::bfv::{BfvParameters, Ciphertext};
use fhe_math::rq::{Poly, Representation, traits::TryConvertFrom};
use fhe_traits::{DeserializeParametrized, Serialize};
use num_bigint::BigUint;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::sync::Arc;

use super::pack::{ConvGeom, Tiling};
use super::{ClientKey, HeClient, HeError, HeParams, HeServer, WEIGHT_BITS};

/// A dense layer `C → M` at ring `ℓ`, its parameters and tiling.
fn dense(c: usize, m: usize, ring_bits: u8) -> (HeParams, Tiling) {
    let geom = ConvGeom { c, h: 1, w: 1, m, kh: 1, kw: 1 };
    let n = HeParams::for_layer(ring_bits, 1).expect("params").degree;
    let tiling = Tiling::choose(geom, n).expect("fits");
    (HeParams::for_layer(ring_bits, tiling.channel_tiles()).expect("params"), tiling)
}

fn weights(rng: &mut ChaCha20Rng, len: usize, bits: u32) -> Vec<i64> {
    (0..len).map(|_| rng.random_range(-(1i64 << bits) + 1..1i64 << bits)).collect()
}

fn mask(rng: &mut ChaCha20Rng, len: usize, ring_bits: u8) -> Vec<u64> {
    (0..len).map(|_| rng.random::<u64>() & ((1u64 << ring_bits) - 1)).collect()
}

/// The client's session: its key, the server's view of its public key.
fn session(params: &HeParams, rng: &mut ChaCha20Rng) -> (HeClient, ClientKey) {
    let client = HeClient::new(params, rng).unwrap();
    let key = ClientKey::parse(params, &client.public_key(rng)).unwrap();
    (client, key)
}

fn parse(par: &Arc<BfvParameters>, bytes: &[u8]) -> Ciphertext {
    Ciphertext::from_bytes(bytes, par).expect("a ciphertext")
}

/// How many of the RNS coefficients of `a` and `b` are equal.
fn equal_coeffs(a: &Poly, b: &Poly) -> usize {
    a.coefficients().iter().zip(b.coefficients().iter()).filter(|(x, y)| x == y).count()
}

#[test]
fn two_responses_to_one_request_share_no_component() {
    let mut rng = ChaCha20Rng::seed_from_u64(31);
    let (params, tiling) = dense(300, 20, 40);
    let (client, key) = session(&params, &mut rng);
    let server = HeServer::new(&params, &tiling, &weights(&mut rng, 300 * 20, 12)).unwrap();
    let req = client.encrypt(&tiling, &mask(&mut rng, 300, 40), &mut rng).unwrap();
    let (a, _) = server.respond(&key, &tiling, &req, &mut rng).unwrap();
    let (b, _) = server.respond(&key, &tiling, &req, &mut rng).unwrap();
    let par = super::build(&params).unwrap();
    for (x, y) in a.iter().zip(&b) {
        let (x, y) = (parse(&par, x), parse(&par, y));
        let total = x[0].coefficients().len();
        // Uniform residues modulo ~50-bit primes: a chance match has probability ~2^−49.
        assert_eq!(equal_coeffs(&x[0], &y[0]), 0, "c0 repeats");
        assert_eq!(equal_coeffs(&x[1], &y[1]), 0, "c1 repeats ({total} coefficients compared)");
    }
}

/// The client recomputes `ModSwitch(Σ a_c·K_c)` for a guess `K` of the kernel polynomials
/// (it knows every `a_c`: they expand the seeds it drew) and compares it with the response's
/// `c1`. Before re-randomisation the true weights matched every coefficient and any other
/// guess matched none: a perfect test of any guess.
#[test]
fn recomputing_c1_from_a_weight_guess_matches_nothing() {
    let mut rng = ChaCha20Rng::seed_from_u64(32);
    let (params, tiling) = dense(256, 16, 37);
    let (client, key) = session(&params, &mut rng);
    let truth = weights(&mut rng, 256 * 16, 10);
    let other = weights(&mut rng, 256 * 16, 10);
    let server = HeServer::new(&params, &tiling, &truth).unwrap();
    let req = client.encrypt(&tiling, &mask(&mut rng, 256, 37), &mut rng).unwrap();
    let (resp, _) = server.respond(&key, &tiling, &req, &mut rng).unwrap();
    let par = super::build(&params).unwrap();
    let a: Vec<Poly> = req.iter().map(|r| parse(&par, r)[1].clone()).collect();
    for guess in [&truth, &other] {
        let kernels = HeServer::new(&params, &tiling, guess).unwrap().kernels;
        let (st, ct) = (tiling.spatial_tiles(), tiling.channel_tiles());
        for (i, bytes) in resp.iter().enumerate() {
            let (kg, s) = (i / st, i % st);
            let mut c1 = &a[s] * &kernels[kg * ct];
            for c in 1..ct {
                c1 += &(&a[c * st + s] * &kernels[kg * ct + c]);
            }
            let zero = Poly::zero(c1.ctx(), Representation::Ntt);
            let mut guess_ct = Ciphertext::new(vec![zero, c1], &par).unwrap();
            guess_ct.switch_to_level(params.response_level()).unwrap();
            let got = parse(&par, bytes);
            assert_eq!(equal_coeffs(&guess_ct[1], &got[1]), 0, "a weight guess reproduces c1 of response {i}");
        }
    }
}

/// Pearson's χ² of the top 4 bits of `c1`'s residues modulo the first prime against uniform.
fn chi2_c1(par: &Arc<BfvParameters>, response: &[Vec<u8>]) -> f64 {
    let p = par.moduli()[0];
    let mut counts = [0u64; 16];
    for bytes in response {
        let mut c1 = parse(par, bytes)[1].clone();
        c1.change_representation(Representation::PowerBasis);
        let first = c1.coefficients();
        for &x in first.row(0) {
            counts[((x as u128 * 16) / p as u128) as usize] += 1;
        }
    }
    let n: u64 = counts.iter().sum();
    let e = n as f64 / 16.0;
    counts.iter().map(|&c| (c as f64 - e).powi(2) / e).sum()
}

/// All-zero weights and weights at the bound: `c1` is uniform in both cases (before, zero
/// weights gave `c1 = 0`, and any weights a `c1` the client could recompute).
#[test]
fn zero_and_real_weights_give_indistinguishable_c1() {
    let mut rng = ChaCha20Rng::seed_from_u64(33);
    let (params, tiling) = dense(128, 32, 40);
    let (client, key) = session(&params, &mut rng);
    let top = (1i64 << WEIGHT_BITS) - 1;
    let zero = vec![0i64; 128 * 32];
    let big: Vec<i64> = (0..128 * 32).map(|_| if rng.random::<bool>() { top } else { -top }).collect();
    let par = super::build(&params).unwrap();
    let mut stats = Vec::new();
    for w in [&zero, &big] {
        let server = HeServer::new(&params, &tiling, w).unwrap();
        let req = client.encrypt(&tiling, &mask(&mut rng, 128, 40), &mut rng).unwrap();
        let (resp, _) = server.respond(&key, &tiling, &req, &mut rng).unwrap();
        stats.push(chi2_c1(&par, &resp));
    }
    // 15 degrees of freedom: P(χ² > 60) < 10^−6 for uniform residues.
    assert!(stats.iter().all(|&x| x < 60.0), "c1 is not uniform: χ² = {stats:?}");
}

/// The crafted request of the review: `c0 = 0`, `c1 =` the product `P` of the primes the
/// server switches away. Answered, `ModSwitch(P·K)` was the kernel in the clear. Such a
/// ciphertext is not a seeded one of the expected size, so it is refused; so is a public key
/// that is not a seeded one.
#[test]
fn a_crafted_request_is_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(34);
    let (params, tiling) = dense(64, 8, 37);
    let (client, key) = session(&params, &mut rng);
    let server = HeServer::new(&params, &tiling, &weights(&mut rng, 64 * 8, 10)).unwrap();
    let par = super::build(&params).unwrap();
    let ctx = par.context_at_level(0).unwrap();
    let dropped: BigUint = par.moduli()[params.response_primes..].iter().map(|&q| BigUint::from(q)).product();
    let mut p = vec![BigUint::from(0u8); params.degree];
    p[0] = dropped;
    let mut c1 = Poly::try_convert_from(p.as_slice(), ctx, false, Representation::PowerBasis).unwrap();
    c1.change_representation(Representation::Ntt);
    let crafted = Ciphertext::new(vec![Poly::zero(ctx, Representation::Ntt), c1], &par).unwrap().to_bytes();
    let err = server.respond(&key, &tiling, &[crafted], &mut rng).unwrap_err();
    assert!(matches!(err, HeError::Message { index: 0, .. }), "{err}");

    // A well-formed request cut short, or with a byte appended, is refused too.
    let good = client.encrypt(&tiling, &mask(&mut rng, 64, 37), &mut rng).unwrap();
    for bad in [good[0][..good[0].len() - 1].to_vec(), [good[0].as_slice(), &[0]].concat()] {
        assert!(server.respond(&key, &tiling, &[bad], &mut rng).is_err());
    }
    assert!(server.respond(&key, &tiling, &good, &mut rng).is_ok());

    // A public key that is a full (unseeded) ciphertext, or cut short.
    let pk = client.public_key(&mut rng);
    assert!(ClientKey::parse(&params, &pk[..pk.len() - 1]).is_err());
    let full = Ciphertext::new(vec![Poly::zero(ctx, Representation::Ntt), Poly::zero(ctx, Representation::Ntt)], &par)
        .unwrap()
        .to_bytes();
    let mut unseeded = vec![0x0a];
    let mut len = full.len();
    while len >= 0x80 {
        unseeded.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    unseeded.push(len as u8);
    unseeded.extend(&full);
    assert!(fhe::bfv::PublicKey::from_bytes(&unseeded, &par).is_ok(), "the unseeded key parses in fhe");
    assert!(ClientKey::parse(&params, &unseeded).is_err(), "but Veil refuses it");
}
