//! The tweakable hash of half-gates garbling: TMMO under a fresh key per garbling.
//!
//! `H(x, i) = π(π(x) ⊕ i) ⊕ π(x)`, where π is AES-128 under a [`HashKey`] the garbler draws
//! for each garbling and sends to the evaluator. TMMO is the tweakable circular
//! correlation-robust hash of Guo, Katz, Wang and Yu ("Efficient and secure multiparty
//! computation from fixed-key block ciphers", S&P 2020, eprint 2019/074; emp-tool's `TCCRH`),
//! the property the half-gates proof needs, in the ideal-permutation model; two sequential AES
//! calls per hash, batched so AES-NI pipelines them.
//!
//! Contract for callers: under one key, a tweak hashes only the two labels of one wire (the
//! engine gives each half gate its own tweak, see `garble`), and a key is drawn fresh for every
//! garbling. A fresh key makes each
//! garbling its own instance of the proof (an independent permutation in the ideal-cipher
//! model), so offline work against one key helps against no other garbling, session or layer
//! (the multi-instance concern of Guo et al., CRYPTO 2020). `docs/decisions.md` explains the
//! choice over EMP's re-keyed MMO (MITCCRH) with measurements.
//!
//! The previous hash, `π(σ(x) ⊕ i) ⊕ σ(x) ⊕ i` under one public key, made the tweak an input
//! offset (`H(x, i) = H(x ⊕ σ⁻¹(i ⊕ i'), i')`) and is not tweakable; `hash_attacks.rs` keeps a
//! copy to show the tests detect it.

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use rand::CryptoRng;

use super::Block;

/// A tweakable hash `H(x, i)` on blocks, evaluated many at a time. The garbling engine is
/// generic over it so that benchmarks and tests can run other constructions through the same
/// code; the runtime uses only [`Tmmo`].
pub trait TweakableHash: Sync {
    /// `H(xs[k], tweaks[k])` for every `k`, in place of `xs`.
    fn hash_many<const N: usize>(&self, xs: &mut [Block; N], tweaks: [u128; N]);

    /// `H(x, tweak)`.
    fn hash(&self, x: Block, tweak: u128) -> Block {
        let mut xs = [x];
        self.hash_many(&mut xs, [tweak]);
        xs[0]
    }
}

/// The AES key of one garbling's hash. Public: the evaluator receives it with the tables.
/// Its freshness, not its secrecy, is what matters.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HashKey([u8; 16]);

impl HashKey {
    /// Bytes of a key on the wire.
    pub const BYTES: usize = 16;

    /// A fresh key from `rng` (a CSPRNG seeded by the OS outside tests).
    pub fn random(rng: &mut impl CryptoRng) -> Self {
        let mut k = [0u8; 16];
        rng.fill_bytes(&mut k);
        HashKey(k)
    }

    /// The key received on the wire (any 16 bytes are a key).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        HashKey(bytes)
    }

    /// The key's 16 wire bytes, sent to the evaluator with the tables.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0
    }
}

/// TMMO `π_K(π_K(x) ⊕ i) ⊕ π_K(x)` with its key schedule computed once: on VAES-512 where the
/// CPU has it (`super::vaes`, four blocks per instruction), else on VAES with 256-bit words
/// (`super::vaes256`, two), else through the `aes` crate (AES-NI, or its constant-time software
/// fallback). All give the same hash.
pub struct Tmmo {
    aes: Aes128,
    #[cfg(target_arch = "x86_64")]
    vaes: Option<super::vaes::VaesTmmo>,
    #[cfg(target_arch = "x86_64")]
    vaes256: Option<super::vaes256::Vaes256Tmmo>,
}

impl Tmmo {
    /// The hash under `key`, on the fastest AES this CPU has.
    pub fn new(key: HashKey) -> Self {
        #[cfg(target_arch = "x86_64")]
        let vaes = super::vaes::VaesTmmo::new(key.0);
        Self {
            aes: Aes128::new(&key.0.into()),
            #[cfg(target_arch = "x86_64")]
            vaes256: if vaes.is_none() { super::vaes256::Vaes256Tmmo::new(key.0) } else { None },
            #[cfg(target_arch = "x86_64")]
            vaes,
        }
    }

    /// The hash under `key` through the `aes` crate only (benchmarks and tests compare it with
    /// [`Tmmo::new`]'s).
    pub fn portable(key: HashKey) -> Self {
        Self {
            aes: Aes128::new(&key.0.into()),
            #[cfg(target_arch = "x86_64")]
            vaes: None,
            #[cfg(target_arch = "x86_64")]
            vaes256: None,
        }
    }

    /// The hash under `key` on VAES with 256-bit words even where VAES-512 exists, or `None`
    /// where the CPU lacks it (tests compare it with the others).
    pub fn vaes256_only(key: HashKey) -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        return super::vaes256::Vaes256Tmmo::new(key.0).map(|v| Self {
            aes: Aes128::new(&key.0.into()),
            vaes: None,
            vaes256: Some(v),
        });
        #[cfg(not(target_arch = "x86_64"))]
        None
    }

    /// Whether this instance hashes on VAES-512.
    pub fn uses_vaes(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        return self.vaes.is_some();
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// Whether this instance hashes on VAES with 256-bit words.
    pub fn uses_vaes256(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        return self.vaes256.is_some();
        #[cfg(not(target_arch = "x86_64"))]
        false
    }
}

impl TweakableHash for Tmmo {
    #[inline]
    fn hash_many<const N: usize>(&self, xs: &mut [Block; N], tweaks: [u128; N]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(v) = &self.vaes {
            v.hash(xs, &tweaks);
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(v) = &self.vaes256 {
            v.hash(xs, &tweaks);
            return;
        }
        let mut u: [GenericArray<u8, _>; N] = std::array::from_fn(|k| GenericArray::from(xs[k].to_bytes()));
        self.aes.encrypt_blocks(&mut u);
        let pi_x: [Block; N] = std::array::from_fn(|k| Block::from_bytes(u[k].into()));
        let mut v: [GenericArray<u8, _>; N] =
            std::array::from_fn(|k| GenericArray::from((pi_x[k] ^ Block(tweaks[k])).to_bytes()));
        self.aes.encrypt_blocks(&mut v);
        for k in 0..N {
            xs[k] = Block::from_bytes(v[k].into()) ^ pi_x[k];
        }
    }
}

/// Whether the CPU has VAES-512 (AVX-512F and VAES), which [`Tmmo::new`] then uses.
pub fn vaes_detected() -> bool {
    #[cfg(target_arch = "x86_64")]
    return super::vaes::detected();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the CPU has VAES with AVX2 (256-bit words), which [`Tmmo::new`] uses where it lacks
/// VAES-512.
pub fn vaes256_detected() -> bool {
    #[cfg(target_arch = "x86_64")]
    return super::vaes256::detected();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the CPU has AES-NI (the `aes` crate picks it at run time when present).
pub fn aes_ni_detected() -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        std::arch::is_x86_feature_detected!("aes")
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng};

    /// TMMO over the standard cipher: the FIPS-197 appendix C.1 vector gives `c = π(p)`, so
    /// `H(p, i)` must be `π(c ⊕ i) ⊕ c`.
    #[test]
    fn tmmo_is_the_formula_over_standard_aes() {
        let key: [u8; 16] = std::array::from_fn(|i| i as u8);
        let p: [u8; 16] = std::array::from_fn(|i| (i as u8) * 0x11);
        let c: [u8; 16] =
            [0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30, 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4, 0xc5, 0x5a];
        let aes = Aes128::new(&key.into());
        let h = Tmmo::new(HashKey::from_bytes(key));
        let tweak = 0x0123_4567_89ab_cdef_u128 << 40 | 7;
        let mut inner = GenericArray::from((Block::from_bytes(c) ^ Block(tweak)).to_bytes());
        aes.encrypt_block(&mut inner);
        let want = Block::from_bytes(inner.into()) ^ Block::from_bytes(c);
        assert_eq!(h.hash(Block::from_bytes(p), tweak), want);
        // And the FIPS vector itself holds for the cipher we call.
        let mut b = GenericArray::from(p);
        aes.encrypt_block(&mut b);
        assert_eq!(<[u8; 16]>::from(b), c);
    }

    /// The VAES hashes (512- and 256-bit words) are the `aes` crate's TMMO, bit for bit, for
    /// every batch length the engine uses and the odd ones (full chunks, half chunks, single
    /// words and a padded tail).
    #[test]
    fn vaes_equals_the_aes_crate() {
        let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(11);
        let key = HashKey::random(&mut rng);
        let (fast, portable) = (Tmmo::new(key), Tmmo::portable(key));
        assert_eq!(fast.uses_vaes(), vaes_detected());
        assert_eq!(fast.uses_vaes256(), vaes256_detected() && !vaes_detected());
        assert!(!portable.uses_vaes() && !portable.uses_vaes256());
        let narrow = Tmmo::vaes256_only(key);
        assert_eq!(narrow.is_some(), vaes256_detected());
        fn both<const N: usize>(a: &Tmmo, b: &Tmmo, rng: &mut impl RngCore) {
            let xs: [Block; N] =
                std::array::from_fn(|_| Block(u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())));
            let tweaks: [u128; N] = std::array::from_fn(|_| u128::from(rng.next_u64()) << 3);
            let (mut x, mut y) = (xs, xs);
            a.hash_many(&mut x, tweaks);
            b.hash_many(&mut y, tweaks);
            assert_eq!(x, y, "N = {N}");
            assert_ne!(x, xs);
        }
        let fastest = [Some(&fast), narrow.as_ref()];
        for h in fastest.into_iter().flatten().filter(|h| h.uses_vaes() || h.uses_vaes256()) {
            for _ in 0..50 {
                both::<1>(h, &portable, &mut rng);
                both::<2>(h, &portable, &mut rng);
                both::<3>(h, &portable, &mut rng);
                both::<4>(h, &portable, &mut rng);
                both::<7>(h, &portable, &mut rng);
                both::<8>(h, &portable, &mut rng);
                both::<16>(h, &portable, &mut rng);
                both::<25>(h, &portable, &mut rng);
                both::<32>(h, &portable, &mut rng);
                both::<53>(h, &portable, &mut rng);
                both::<64>(h, &portable, &mut rng);
            }
        }
    }

    #[test]
    fn batched_equals_one_at_a_time_and_keys_matter() {
        let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(3);
        let (k1, k2) = (HashKey::random(&mut rng), HashKey::random(&mut rng));
        let (h1, h2) = (Tmmo::new(k1), Tmmo::new(k2));
        let mut xs: [Block; 32] = std::array::from_fn(|_| Block(u128::from(rng.next_u64()) << 64 | 5));
        let tweaks: [u128; 32] = std::array::from_fn(|k| 1000 + k as u128 / 2);
        let one: Vec<Block> = xs.iter().zip(tweaks).map(|(&x, t)| h1.hash(x, t)).collect();
        let other: Vec<Block> = xs.iter().zip(tweaks).map(|(&x, t)| h2.hash(x, t)).collect();
        h1.hash_many(&mut xs, tweaks);
        assert_eq!(xs.as_slice(), one.as_slice());
        assert!(one.iter().zip(&other).all(|(a, b)| a != b), "another key, another hash");
    }
}
