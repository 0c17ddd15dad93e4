//! The inverse square root that [`crate::Op::Rsqrt`] computes in fixed point: integer square
//! root and division, no approximation beyond their floors.
//!
//! For `z` at scale `s` (read signed) and `ε` encoded at that scale as `e = round(ε·2^s)`
//! (saturated below `2^(ℓ−1)`): `U = max(z + e, 1)`, exact in ℓ + 1 bits (a non-positive
//! argument saturates to the smallest positive one, `2^−s`); with `p = s mod 2` and the even
//! scale `S = s + p`, `u = U·2^p` is the argument at scale `S`, and
//! `y = ⌊2^S / ⌊√u⌋⌋ mod 2^ℓ` at scale `S/2`: `2^(S/2) / √u = 1/√(U·2^−s)`. Both floors
//! together err by less than `1/√a · 1/⌊√u⌋ + 2^(−S/2)` for the argument `a = U·2^−s`
//! ([`max_error`]), so precision comes from a high input scale: the output scale is half the
//! input's.

use crate::ring::Ring;

/// The scale of the output for an operand at scale `s`: `⌈s/2⌉`.
pub fn output_scale(s: u8) -> u8 {
    s.div_ceil(2)
}

/// `ε` at scale `s` as the non-negative integer the op adds: `round(ε·2^s)`, saturated to
/// `[0, 2^(ℓ−1) − 1]` (the circuit uses the same constant).
pub fn epsilon_code(ring: Ring, eps: f32, s: u8) -> u64 {
    let top = (1u64 << (ring.bits - 1)) - 1;
    let q = (eps as f64 * (s as f64).exp2()).round();
    if q.is_nan() || q <= 0.0 {
        0
    } else if q >= top as f64 {
        top
    } else {
        q as u64
    }
}

/// `⌊√u⌋` for any `u`, by the digit-by-digit method the circuit uses.
pub fn isqrt(u: u64) -> u64 {
    u.isqrt()
}

/// `1/√(z + ε)` at output scale [`output_scale`]`(s)` for `z` at scale `s`, as a ring element.
pub fn eval(ring: Ring, z: u64, s: u8, eps: f32) -> u64 {
    let t = ring.to_signed(z) as i128 + epsilon_code(ring, eps, s) as i128;
    let p = s % 2;
    let u = (t.max(1) as u64) << p;
    let r = isqrt(u);
    ring.reduce((1u64 << (s + p)) / r)
}

/// A bound on `|ỹ − 1/√(x + ε)|` in real units, where `ỹ` is the fixed-point result for an
/// operand at scale `s` decoded as `x'` with `|x' − x| ≤ ex`, for a real `x ≥ floor ≥ 0` (a
/// variance, `floor` a lower bound on it: 0 when nothing better is known): the argument moves
/// by at most `ex` plus `ε`'s rounding, through the slope `½·a^(−3/2)` at the smallest argument
/// either side can reach, plus the two floors (both shrink as the argument grows). Both results
/// are positive and the fixed-point one is at most `2^(S/2)`, so the bound is never above
/// `max(2^(S/2), 1/√(floor + ε))`: what it is when `ex` exceeds the argument. Infinite only
/// when `ε = 0` and `floor = 0` (nothing then bounds the real function).
pub fn max_error(s: u8, eps: f32, ex: f64, floor: f64) -> f64 {
    let ring = Ring::new(crate::ring::MAX_RING_BITS);
    let (eps, scale) = (eps as f64, (s as f64).exp2());
    let eq = epsilon_code(ring, eps as f32, s) as f64 / scale;
    let floor = floor.max(0.0);
    // The decoded argument is at least max(floor + eq − ex, 2^−s) (the saturation), the real
    // one floor + ε.
    let lo = (floor + eps).min((floor + eq - ex).max(1.0 / scale));
    if lo <= 0.0 {
        return f64::INFINITY;
    }
    let big = ((s + s % 2) as f64).exp2();
    let slope = 0.5 * lo.powf(-1.5) * (ex + (eq - eps).abs());
    let floors = lo.powf(-0.5) / (lo * big).sqrt().floor().max(1.0) + 1.0 / big.sqrt();
    let cap = big.sqrt().max((floor + eps).powf(-0.5));
    (slope + floors).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a float computation on every operand of a small ring, at both parities of `s`:
    /// within the stated floors of `1/√(x + ε)`, and saturated for non-positive arguments.
    #[test]
    fn follows_the_real_function_within_its_floors() {
        for (bits, s, eps) in [(14u8, 8u8, 1e-2f32), (14, 7, 0.0), (16, 12, 1e-3)] {
            let ring = Ring::new(bits);
            let so = output_scale(s);
            for z in 0..(1u64 << bits) {
                let x = ring.decode(z, s);
                let got = ring.decode(eval(ring, z, s, eps), so);
                let e = epsilon_code(ring, eps, s) as f64 / (s as f64).exp2();
                let a = (x + e).max((-(s as f64)).exp2());
                let want = 1.0 / a.sqrt();
                // The two floors: 1/√a·1/⌊√u⌋ for the root, one output ulp for the division.
                let r = (a * ((s + s % 2) as f64).exp2()).sqrt().floor();
                let tol = 1.0 / a.sqrt() / r + (-(so as f64)).exp2();
                if ring.to_signed(z) >= 0 {
                    if eps > 0.0 {
                        assert!(tol <= max_error(s, eps, 0.0, 0.0), "x={x}: the stated bound is below the floors");
                    }
                    assert!((got - want).abs() <= tol, "bits={bits} s={s} x={x}: {got} vs {want} (tol {tol})");
                }
                assert!(got > 0.0 && got <= (so as f64).exp2(), "x={x}: {got}");
            }
        }
    }

    /// With a lower bound on the real operand, every decoded operand within `ex` of a real one
    /// above it gives a result within the stated bound of the real function, also with `ε = 0`
    /// (which only a floor makes finite); the floor tightens the bound by orders of magnitude.
    #[test]
    fn the_bound_holds_above_a_floor_and_is_tight_with_one() {
        let (bits, s) = (16u8, 10u8);
        let ring = Ring::new(bits);
        let so = output_scale(s);
        for (eps, floor, ex) in [(1e-3f32, 0.5f64, 0.01f64), (0.0, 0.25, 0.004), (1e-5, 2.0, 0.05)] {
            let bound = max_error(s, eps, ex, floor);
            assert!(bound.is_finite() && bound < 1.0, "eps={eps} floor={floor}: {bound}");
            let steps = (ex * (s as f64).exp2()) as i64;
            for z in 0..(1i64 << (bits - 1)) - steps {
                let x = z as f64 / (s as f64).exp2();
                if x < floor {
                    continue;
                }
                let want = 1.0 / (x + eps as f64).sqrt();
                for d in [-steps, 0, steps] {
                    let got = ring.decode(eval(ring, ring.from_signed(z + d), s, eps), so);
                    assert!((got - want).abs() <= bound, "eps={eps} x={x} d={d}: {got} vs {want} (bound {bound})");
                }
            }
        }
        assert!(max_error(24, 1e-5, 1e-4, 0.0) > 1e3 * max_error(24, 1e-5, 1e-4, 0.1));
        assert_eq!(max_error(24, 0.0, 1e-4, 0.0), f64::INFINITY);
        // An operand error beyond the argument leaves only the cap: the largest result.
        assert_eq!(max_error(24, 1e-5, 1.0, 0.0), 4096.0f64.max(1e-5f64.powf(-0.5)));
    }

    #[test]
    fn known_values() {
        let ring = Ring::new(41);
        // 1/√4 = 0.5 and 1/√0.25 = 2 exactly, at an even and an odd scale.
        for s in [24u8, 23] {
            let so = output_scale(s);
            assert_eq!(ring.decode(eval(ring, ring.encode(4.0, s).unwrap(), s, 0.0), so), 0.5);
            assert_eq!(ring.decode(eval(ring, ring.encode(0.25, s).unwrap(), s, 0.0), so), 2.0);
        }
        // A negative or zero argument saturates at 2^(S/2) (ε = 0), or 1/√ε.
        assert_eq!(ring.decode(eval(ring, ring.from_signed(-5), 24, 0.0), 12), 4096.0);
        let at_eps = ring.decode(eval(ring, 0, 24, 1e-6), 12);
        assert!((at_eps - 1000.0).abs() < 40.0, "{at_eps}");
        assert_eq!(isqrt(u64::MAX), (1 << 32) - 1);
    }
}
