//! The reciprocal that [`crate::Op::Reciprocal`] computes in fixed point: `1/max(x, 1)`, a
//! Softmax's normaliser (its denominator is a sum of exponentials one of which is `e^0 = 1`).
//!
//! For `u` at scale `s` (read signed), `U = max(u, 2^s)` and `y = ⌊2^(2s) / U⌋` at scale `s`:
//! exact but for the floor (`y ≤ 2^s`, below one unit of `2^−s`), and `1/x` moves by at most
//! `|Δx|` where `x ≥ 1`, so an operand error passes through undiminished at worst.

use crate::ring::Ring;

/// `1/max(u, 1)` at scale `s` (input and output) for `u` at scale `s`, as a ring element.
pub fn eval(ring: Ring, u: u64, s: u8) -> u64 {
    let one = 1i64 << s;
    let big = ring.to_signed(u).max(one) as u128;
    ring.reduce(((1u128 << (2 * s as u32)) / big) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operand of small rings: within one unit below the real reciprocal, `1` at and
    /// below one.
    #[test]
    fn is_the_floor_of_the_reciprocal_on_every_operand() {
        for (ell, s) in [(14u8, 6u8), (12, 5), (16, 7)] {
            let ring = Ring::new(ell);
            for u in 0..1u64 << ell {
                let x = ring.decode(u, s);
                let y = ring.decode(eval(ring, u, s), s);
                let want = 1.0 / x.max(1.0);
                assert!(y <= want && want - y < (-(s as f64)).exp2(), "x={x}: {y} vs {want}");
            }
        }
    }
}
