//! The fixed-key AES hash of half-gates garbling.
//!
//! `H(x, i) = π(σ(x) ⊕ i) ⊕ σ(x) ⊕ i`, where π is AES-128 under a fixed public key and
//! `σ(x_L ‖ x_R) = (x_L ⊕ x_R) ‖ x_L` is the linear orthomorphism of Guo, Katz, Wang and Yu
//! ("Efficient and secure multiparty computation from fixed-key block ciphers", S&P 2020),
//! which makes this MMO-style hash tweakable circular correlation robust, the property
//! half-gates needs. One AES call per hash; calls are batched so AES-NI pipelines them.

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};

use super::Block;

/// The fixed public AES key (any constant works; this is the first 16 bytes of π).
const KEY: [u8; 16] = [0x24, 0x3f, 0x6a, 0x88, 0x85, 0xa3, 0x08, 0xd3, 0x13, 0x19, 0x8a, 0x2e, 0x03, 0x70, 0x73, 0x44];

/// The hash, with its key schedule computed once.
pub struct FixedKeyHash {
    aes: Aes128,
}

impl Default for FixedKeyHash {
    fn default() -> Self {
        Self { aes: Aes128::new(&KEY.into()) }
    }
}

#[inline(always)]
fn sigma(x: Block) -> Block {
    let (hi, lo) = ((x.0 >> 64) as u64, x.0 as u64);
    Block((((hi ^ lo) as u128) << 64) | hi as u128)
}

impl FixedKeyHash {
    /// `H(xs[k], tweaks[k])` for every `k`, in place of `xs`.
    #[inline]
    pub fn hash_many<const N: usize>(&self, xs: &mut [Block; N], tweaks: [u128; N]) {
        let mut pre = [Block::ZERO; N];
        let mut blocks = [GenericArray::default(); N];
        for k in 0..N {
            pre[k] = sigma(xs[k]) ^ Block(tweaks[k]);
            blocks[k] = GenericArray::from(pre[k].to_bytes());
        }
        self.aes.encrypt_blocks(&mut blocks);
        for k in 0..N {
            xs[k] = Block::from_bytes(blocks[k].into()) ^ pre[k];
        }
    }

    /// `H(x, tweak)`.
    pub fn hash(&self, x: Block, tweak: u128) -> Block {
        let mut xs = [x];
        self.hash_many(&mut xs, [tweak]);
        xs[0]
    }
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
