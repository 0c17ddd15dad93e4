//! Attacks on the garbling hash: relations across tweaks that a tweakable circular
//! correlation-robust hash must not have. Each attack runs against [`Tmmo`] and against a copy
//! of a construction it breaks, so a test that could not detect the flaw fails here too.
//!
//! Found in review (issue 14, point 4): the hash Veil used until then, `π(σ(x) ⊕ i) ⊕ σ(x) ⊕ i`
//! under one public key, has `H(x, i) = H(x ⊕ σ⁻¹(i ⊕ i'), i')`: the tweak only offsets the input.

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use rand::{Rng, RngCore, SeedableRng};

use super::{Block, HashKey, Tmmo, TweakableHash};

/// The old hash, verbatim: `π(σ(x) ⊕ i) ⊕ σ(x) ⊕ i` under the old public key.
struct OldMmo(Aes128);

const OLD_KEY: [u8; 16] =
    [0x24, 0x3f, 0x6a, 0x88, 0x85, 0xa3, 0x08, 0xd3, 0x13, 0x19, 0x8a, 0x2e, 0x03, 0x70, 0x73, 0x44];

fn sigma(x: Block) -> Block {
    let (hi, lo) = ((x.0 >> 64) as u64, x.0 as u64);
    Block((((hi ^ lo) as u128) << 64) | hi as u128)
}

fn sigma_inv(y: Block) -> Block {
    let (hi, lo) = ((y.0 >> 64) as u64, y.0 as u64);
    Block(((lo as u128) << 64) | (hi ^ lo) as u128)
}

fn aes(a: &Aes128, x: Block) -> Block {
    let mut b = GenericArray::from(x.to_bytes());
    a.encrypt_block(&mut b);
    Block::from_bytes(b.into())
}

impl TweakableHash for OldMmo {
    fn hash_many<const N: usize>(&self, xs: &mut [Block; N], tweaks: [u128; N]) {
        for (x, t) in xs.iter_mut().zip(tweaks) {
            let pre = sigma(*x) ^ Block(t);
            *x = aes(&self.0, pre) ^ pre;
        }
    }
}

/// A naive "tweak": MMO with the tweak xored onto the output, `π(x) ⊕ x ⊕ i`.
struct OutputTweakMmo(Aes128);

impl TweakableHash for OutputTweakMmo {
    fn hash_many<const N: usize>(&self, xs: &mut [Block; N], tweaks: [u128; N]) {
        for (x, t) in xs.iter_mut().zip(tweaks) {
            *x = aes(&self.0, *x) ^ *x ^ Block(t);
        }
    }
}

fn rng(seed: u64) -> rand_chacha::ChaCha12Rng {
    rand_chacha::ChaCha12Rng::seed_from_u64(seed)
}

fn block(rng: &mut impl RngCore) -> Block {
    Block(rng.random())
}

fn tmmo(rng: &mut rand_chacha::ChaCha12Rng) -> Tmmo {
    Tmmo::new(HashKey::random(rng))
}

/// How often, over `trials` random `(x, i, i')` with `i ≠ i'`, the input-offset relation
/// `H(x, i) = H(x ⊕ σ⁻¹(i ⊕ i'), i')` holds.
fn offset_relation_rate(h: &impl TweakableHash, trials: usize, seed: u64) -> f64 {
    let mut r = rng(seed);
    let hits = (0..trials)
        .filter(|_| {
            let (x, i, j) = (block(&mut r), r.random::<u128>(), r.random::<u128>());
            h.hash(x, i) == h.hash(x ^ sigma_inv(Block(i ^ j)), j)
        })
        .count();
    hits as f64 / trials as f64
}

#[test]
fn the_tweak_is_not_an_input_offset() {
    let old = OldMmo(Aes128::new(&OLD_KEY.into()));
    assert_eq!(offset_relation_rate(&old, 1000, 1), 1.0, "the old hash has the relation (the test can see it)");
    assert_eq!(offset_relation_rate(&tmmo(&mut rng(2)), 1000, 1), 0.0, "TMMO must not");
}

/// The tweakable circular correlation-robustness game: the adversary queries
/// `O(x, i, b) = H(x ⊕ Δ, i) ⊕ b·Δ` (real, secret random Δ) or a random function (ideal) on
/// distinct `(x, i)`, and guesses which. This adversary asks `O(x, i, 0)` and
/// `O(x ⊕ σ⁻¹(i ⊕ i'), i', 0)` and says "real" when they are equal. Returns its advantage
/// `|P(real | real) − P(real | ideal)|` over `games` games.
fn tccr_advantage(h: &impl TweakableHash, games: usize, seed: u64) -> f64 {
    let mut r = rng(seed);
    let (mut real_said_real, mut ideal_said_real, mut real_games) = (0usize, 0usize, 0usize);
    for _ in 0..games {
        let real_world = r.random::<bool>();
        let delta = Block(r.random::<u128>() | 1);
        let oracle = |x: Block, i: u128, r: &mut rand_chacha::ChaCha12Rng| {
            if real_world { h.hash(x ^ delta, i) } else { block(r) }
        };
        let (x, i, j) = (block(&mut r), r.random::<u128>(), r.random::<u128>());
        let a = oracle(x, i, &mut r);
        let b = oracle(x ^ sigma_inv(Block(i ^ j)), j, &mut r);
        let says_real = a == b;
        if real_world {
            real_games += 1;
            real_said_real += usize::from(says_real);
        } else {
            ideal_said_real += usize::from(says_real);
        }
    }
    let ideal_games = games - real_games;
    (real_said_real as f64 / real_games as f64 - ideal_said_real as f64 / ideal_games as f64).abs()
}

#[test]
fn the_tccr_game_is_won_against_the_old_hash_and_lost_against_tmmo() {
    let old = OldMmo(Aes128::new(&OLD_KEY.into()));
    assert!(tccr_advantage(&old, 400, 3) > 0.8, "the old hash is distinguished from random");
    assert!(tccr_advantage(&tmmo(&mut rng(4)), 400, 3) < 0.05, "TMMO is not, by this adversary");
}

/// How often `H(x ⊕ d, i) ⊕ H(x, i)` is the same for two random tweaks (a difference that
/// does not depend on the tweak lets one gate's tables predict another's).
fn tweak_free_difference_rate(h: &impl TweakableHash, trials: usize, seed: u64) -> f64 {
    let mut r = rng(seed);
    let hits = (0..trials)
        .filter(|_| {
            let (x, d, i, j) = (block(&mut r), block(&mut r), r.random::<u128>(), r.random::<u128>());
            h.hash(x ^ d, i) ^ h.hash(x, i) == h.hash(x ^ d, j) ^ h.hash(x, j)
        })
        .count();
    hits as f64 / trials as f64
}

/// How often `H(x, i) ⊕ H(x, i')` is the same for two random inputs (a tweak difference that
/// does not depend on the input).
fn input_free_tweak_difference_rate(h: &impl TweakableHash, trials: usize, seed: u64) -> f64 {
    let mut r = rng(seed);
    let hits = (0..trials)
        .filter(|_| {
            let (x, y, i, j) = (block(&mut r), block(&mut r), r.random::<u128>(), r.random::<u128>());
            h.hash(x, i) ^ h.hash(x, j) == h.hash(y, i) ^ h.hash(y, j)
        })
        .count();
    hits as f64 / trials as f64
}

#[test]
fn no_simple_relation_across_tweaks() {
    let naive = OutputTweakMmo(Aes128::new(&OLD_KEY.into()));
    assert_eq!(tweak_free_difference_rate(&naive, 1000, 5), 1.0, "the naive tweak shows (the test can see it)");
    assert_eq!(input_free_tweak_difference_rate(&naive, 1000, 6), 1.0, "the naive tweak shows");
    let h = tmmo(&mut rng(7));
    assert_eq!(tweak_free_difference_rate(&h, 1000, 5), 0.0);
    assert_eq!(input_free_tweak_difference_rate(&h, 1000, 6), 0.0);
    // Adjacent tweaks, as two half gates of one AND gate use them, and a one-bit input change.
    let mut r = rng(8);
    for _ in 0..1000 {
        let (x, i) = (block(&mut r), r.random::<u128>() & !1);
        let d = Block(1u128 << r.random_range(0..128));
        assert_ne!(h.hash(x ^ d, i) ^ h.hash(x, i), h.hash(x ^ d, i | 1) ^ h.hash(x, i | 1));
        assert_ne!(h.hash(x, i), h.hash(x, i | 1));
    }
}
