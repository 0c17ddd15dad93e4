//! The power of two that [`crate::Op::Exp2`] computes in fixed point: `2^min(x, 0)`, the
//! exponential of a Softmax on shares (`e^(x − max x) = 2^((x − max x)·log₂e)`).
//!
//! For `z` at scale `s` (read signed; a non-negative one gives exactly `1`): `z = I·2^s + F`
//! with `I = ⌊z/2^s⌋ ≤ −1` and `0 ≤ F < 2^s`, so `2^(z/2^s) = 2^I · 2^(F/2^s)`. The fraction's
//! power is the chord through knots `A_j = round(2^(j/16)·2^s)` (the top four bits of `F` pick
//! the segment `j`, the rest `d` interpolate): `P = A_j + ⌊(A_(j+1) − A_j)·d / 2^(s−4)⌋`, in
//! `[2^s, 2^(s+1))`; the result is `⌊P / 2^(−I)⌋` (zero once `−I > s`). Chords of a convex
//! function lie above it by at most `(ln 2)²·2^f·h²/8` for segments of width `h = 1/16`, so the
//! approximation errs by less than [`EXP2_MAX_ERROR`], plus the floors (a few units of `2^−s`,
//! [`ROUNDING_ULPS`]).

use crate::ring::Ring;

/// How many top bits of the fraction pick a segment (at most `s`).
pub const SEGMENT_BITS: u8 = 4;

/// Largest `|real(x) − 2^x|` over all `x ≤ 0` (on the first segment below 0, at the middle of
/// the last chord; checked on a fine grid by a test).
pub const EXP2_MAX_ERROR: f64 = 2.4e-4;

/// A bound on `|eval − real|` in units of `2^−s`: half a unit from the knots, one from the
/// interpolation's floor and one from the final shift's.
pub const ROUNDING_ULPS: f64 = 2.5;

/// The segment bits at scale `s`: [`SEGMENT_BITS`], or `s` when that is smaller.
pub fn segment_bits(s: u8) -> u8 {
    s.min(SEGMENT_BITS)
}

/// The knots `A_j = round(2^(j/2^J)·2^s)` for `j = 0..=2^J` (`J` = [`segment_bits`]).
pub fn knots(s: u8) -> Vec<u64> {
    let j = segment_bits(s);
    let n = 1u32 << j;
    (0..=n).map(|i| ((i as f64 / n as f64).exp2() * (s as f64).exp2()).round() as u64).collect()
}

/// `2^min(z, 0)` at scale `s` (input and output) for `z` at scale `s`, as a ring element.
pub fn eval(ring: Ring, z: u64, s: u8) -> u64 {
    eval_with(ring, z, s, &knots(s))
}

/// [`eval`] with the knots already computed (`knots(s)`).
pub fn eval_with(ring: Ring, z: u64, s: u8, knots: &[u64]) -> u64 {
    let zs = ring.to_signed(z);
    if zs >= 0 {
        return ring.reduce(1u64 << s);
    }
    let i = zs >> s;
    let f = (zs - (i << s)) as u64;
    let low = s - segment_bits(s);
    let (j, d) = ((f >> low) as usize, f & ((1u64 << low) - 1));
    let p = knots[j] + (((knots[j + 1] - knots[j]) as u128 * d as u128) >> low) as u64;
    let k = i.unsigned_abs();
    ring.reduce(if k >= 64 { 0 } else { p >> k })
}

/// The approximation in real arithmetic (no rounding): what `eval` computes as `s` grows.
pub fn real(x: f64) -> f64 {
    if x >= 0.0 {
        return 1.0;
    }
    let n = (1u32 << SEGMENT_BITS) as f64;
    let i = x.floor();
    let t = (x - i) * n;
    let j = t.floor().min(n - 1.0);
    let (a, b) = ((j / n).exp2(), ((j + 1.0) / n).exp2());
    (a + (b - a) * (t - j)) * i.exp2()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stated error is the approximation's: within it on a fine grid, and tight.
    #[test]
    fn the_stated_maximum_error_holds_and_is_tight() {
        let worst =
            (0..=3_000_000).map(|i| -(i as f64) * 1e-5).map(|x| (real(x) - x.exp2()).abs()).fold(0f64, f64::max);
        assert!(worst <= EXP2_MAX_ERROR && worst > EXP2_MAX_ERROR - 2e-5, "{worst}");
        assert_eq!(real(0.0), 1.0);
        assert_eq!(real(3.0), 1.0);
        assert_eq!(real(-1.0), 0.5);
    }

    /// Every operand of small rings at several scales, against the real approximation within
    /// the stated rounding, and exact where it is exact: `1` from 0 on, powers of two at the
    /// integers.
    #[test]
    fn fixed_point_is_the_real_approximation_within_its_rounding() {
        for (ell, s) in [(14u8, 8u8), (16, 12), (12, 3), (10, 0), (13, 4)] {
            let ring = Ring::new(ell);
            let ulp = (-(s as f64)).exp2();
            for z in 0..1u64 << ell {
                let x = ring.decode(z, s);
                let y = ring.decode(eval(ring, z, s), s);
                assert!((y - real(x)).abs() <= ROUNDING_ULPS * ulp, "ℓ={ell} s={s} x={x}: {y} vs {}", real(x));
                if x >= 0.0 {
                    assert_eq!(y, 1.0);
                } else if x.fract() == 0.0 && x >= -(s as f64) {
                    assert_eq!(y, x.exp2(), "x={x}");
                }
            }
        }
    }
}
