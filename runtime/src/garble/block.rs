//! 128-bit wire labels.

use std::ops::{BitXor, BitXorAssign};

/// A 128-bit block: a wire label, a table entry, or the global offset Δ. Its `Debug` is
/// redacted: labels are secrets.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct Block(pub u128);

impl Block {
    /// The all-zero block (XOR's identity).
    pub const ZERO: Block = Block(0);

    /// The point-and-permute colour bit.
    #[inline(always)]
    pub fn lsb(self) -> bool {
        self.0 & 1 == 1
    }

    /// `self` when `bit`, else zero (branch-free).
    #[inline(always)]
    pub fn select(self, bit: bool) -> Block {
        Block(self.0 & (bit as u128).wrapping_neg())
    }

    /// The 16 wire bytes, little-endian.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_le_bytes()
    }

    /// The block of 16 little-endian wire bytes (inverse of [`Block::to_bytes`]).
    pub fn from_bytes(b: [u8; 16]) -> Block {
        Block(u128::from_le_bytes(b))
    }
}

impl BitXor for Block {
    type Output = Block;
    #[inline(always)]
    fn bitxor(self, rhs: Block) -> Block {
        Block(self.0 ^ rhs.0)
    }
}

impl BitXorAssign for Block {
    #[inline(always)]
    fn bitxor_assign(&mut self, rhs: Block) {
        self.0 ^= rhs.0;
    }
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Block(<redacted>)")
    }
}
