//! TMMO on VAES with 256-bit words: two AES-128 blocks per instruction, for CPUs with VAES and
//! AVX2 but not AVX-512 (AMD Zen 3, Intel Alder Lake and later client cores), where
//! [`super::vaes`] cannot run. The same shape as that module: one `#[target_feature]` function
//! per batch, all blocks of a chunk round by round, both AES passes of TMMO and the XORs
//! between them in registers; the key schedule is that module's. Its output equals
//! [`super::Tmmo`]'s over the `aes` crate, bit for bit (tested in `hash`).

use std::arch::x86_64::*;

use super::Block;

/// Whether this CPU can run [`Vaes256Tmmo`] (AVX2 and VAES; AES-NI for the key schedule).
pub fn detected() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("vaes") && is_x86_feature_detected!("aes")
}

/// The AES-128 round keys of one hash key, each broadcast to both lanes of a 256-bit word.
#[derive(Clone, Copy)]
pub struct Vaes256Tmmo {
    rk: [__m256i; 11],
}

impl Vaes256Tmmo {
    /// The round keys of `key`, or `None` where the CPU lacks VAES or AVX2.
    pub fn new(key: [u8; 16]) -> Option<Self> {
        // SAFETY: the features the functions enable were detected on this CPU.
        detected().then(|| unsafe { Self { rk: broadcast(&super::vaes::expand(key)) } })
    }

    /// `H(xs[k], tweaks[k]) = π(π(x) ⊕ i) ⊕ π(x)` for every `k`, in place.
    pub fn hash(&self, xs: &mut [Block], tweaks: &[u128]) {
        assert_eq!(xs.len(), tweaks.len(), "one tweak per block");
        // SAFETY: `self` exists only where `detected()` held (see `new`).
        unsafe { self.hash_slice(xs, tweaks) }
    }

    #[target_feature(enable = "avx2,vaes")]
    fn hash_slice(&self, xs: &mut [Block], tweaks: &[u128]) {
        let mut at = 0;
        while xs.len() - at >= 16 {
            self.chunk::<8>(&mut xs[at..at + 16], &tweaks[at..at + 16]);
            at += 16;
        }
        if xs.len() - at >= 8 {
            self.chunk::<4>(&mut xs[at..at + 8], &tweaks[at..at + 8]);
            at += 8;
        }
        while xs.len() - at >= 2 {
            self.chunk::<1>(&mut xs[at..at + 2], &tweaks[at..at + 2]);
            at += 2;
        }
        if xs.len() > at {
            // One block left: pad it to two; the padding's hash is dropped.
            let (mut x, t) = ([xs[at], Block::ZERO], [tweaks[at], 0u128]);
            self.chunk::<1>(&mut x, &t);
            xs[at] = x[0];
        }
    }

    /// TMMO on exactly `2·M` blocks.
    #[inline]
    #[target_feature(enable = "avx2,vaes")]
    fn chunk<const M: usize>(&self, xs: &mut [Block], tweaks: &[u128]) {
        debug_assert!(xs.len() == 2 * M && tweaks.len() == 2 * M);
        // SAFETY: both slices hold 2·M 16-byte values (checked by the callers' slicing); the
        // loads and stores are unaligned, and `Block` is a transparent `u128`, so its memory is
        // the little-endian byte string the `aes` crate would encrypt.
        let load = |p: *const u128, i: usize| unsafe { _mm256_loadu_si256(p.add(2 * i).cast()) };
        let mut d: [__m256i; M] = std::array::from_fn(|i| load(xs.as_ptr().cast(), i));
        self.encrypt(&mut d);
        let pi = d;
        for (i, v) in d.iter_mut().enumerate() {
            *v = _mm256_xor_si256(*v, load(tweaks.as_ptr(), i));
        }
        self.encrypt(&mut d);
        for (i, v) in d.iter().enumerate() {
            // SAFETY: as above.
            unsafe { _mm256_storeu_si256(xs.as_mut_ptr().add(2 * i).cast(), _mm256_xor_si256(*v, pi[i])) };
        }
    }

    /// AES-128 on `2·M` blocks, round by round across all of them.
    #[inline]
    #[target_feature(enable = "avx2,vaes")]
    fn encrypt<const M: usize>(&self, d: &mut [__m256i; M]) {
        for v in d.iter_mut() {
            *v = _mm256_xor_si256(*v, self.rk[0]);
        }
        for k in &self.rk[1..10] {
            for v in d.iter_mut() {
                *v = _mm256_aesenc_epi128(*v, *k);
            }
        }
        for v in d.iter_mut() {
            *v = _mm256_aesenclast_epi128(*v, self.rk[10]);
        }
    }
}

#[target_feature(enable = "avx2")]
fn broadcast(rk: &[__m128i; 11]) -> [__m256i; 11] {
    rk.map(|k| _mm256_broadcastsi128_si256(k))
}

impl std::fmt::Debug for Vaes256Tmmo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vaes256Tmmo")
    }
}
