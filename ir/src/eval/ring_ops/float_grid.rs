//! The rounding onto a small float type's grid that [`crate::Op::Round`] computes in fixed point
//! with a [`FloatGrid`]: for `z` at scale `s` (read signed), `a = |z|` with its leading one at
//! bit `t`; the grid's spacing there is `2^p` with `p = max(t, min_exp + s) − mantissa` (the
//! subnormals' below `2^min_exp`). Where `p > 0`, `a` is rounded to a multiple of `2^p` by the
//! mode (ties to even, or toward +∞, −∞ or zero, of the signed value) and the sign put back;
//! where `p ≤ 0` the grid is finer than the scale and `z` stays. Then clamped to the bounds
//! ([`super::clip_bounds`]) as a Clip clamps. That is the mode's rounding of the real value
//! `z·2^−s` onto the grid ([`FloatGrid::round`]), exactly, for every value the scale holds; the
//! garbled circuit ([`crate::circuit::float_grid_trunc_mask_narrow`]) computes the same bits.

use crate::ring::Ring;
use crate::{FloatGrid, RoundMode};

/// Whether the magnitude goes up to the next multiple of the spacing, for the remainder's top
/// bit `half`, whether a lower remainder bit is set (`below`), the quotient's low bit and the
/// sign: to nearest with ties to even, `ceil`/`floor` of the signed value, or toward zero.
pub fn magnitude_up(mode: RoundMode, half: bool, below: bool, q_odd: bool, negative: bool) -> bool {
    let any = half || below;
    match mode {
        RoundMode::HalfEven => half && (below || q_odd),
        RoundMode::Ceil => any && !negative,
        RoundMode::Floor => any && negative,
        RoundMode::TowardZero => false,
    }
}

/// The float semantics: `x` rounded onto `grid` by `mode`, beyond the bounds (the type's largest
/// finite value) saturated or, for a non-saturating cast, NaN or an infinity of its sign
/// ([`crate::Overflow`]); NaN stays NaN (0 for a type without it), an infinity is beyond the
/// bounds.
pub fn real(x: f64, mode: RoundMode, grid: FloatGrid, (min, max): (Option<f32>, Option<f32>)) -> f64 {
    if x.is_nan() {
        return if grid.overflow == crate::Overflow::SaturateNoNan { 0.0 } else { x };
    }
    let r = grid.round(x, mode);
    let (lo, hi) = (min.map_or(f64::NEG_INFINITY, f64::from), max.map_or(f64::INFINITY, f64::from));
    if r >= lo && r <= hi {
        return r;
    }
    match grid.overflow {
        crate::Overflow::Saturate | crate::Overflow::SaturateNoNan => r.clamp(lo, hi),
        crate::Overflow::Nan => f64::NAN,
        crate::Overflow::Infinity => f64::INFINITY.copysign(r),
    }
}

/// `z` (at scale `s`) rounded onto `grid` by `mode` and clamped to `(lo, hi)` (signed, at scale
/// `s`), at scale `s`, as a ring element.
pub fn eval(ring: Ring, z: u64, s: u8, mode: RoundMode, grid: FloatGrid, (lo, hi): (i64, i64)) -> u64 {
    let x = ring.to_signed(z);
    let a = x.unsigned_abs();
    if a == 0 {
        return ring.from_signed(0i64.clamp(lo, hi));
    }
    let t = 63 - a.leading_zeros() as i32;
    let p = t.max(i32::from(grid.min_exp) + i32::from(s)) - i32::from(grid.mantissa);
    let rounded = if p <= 0 {
        x
    } else {
        let (a, p) = (u128::from(a), p as u32);
        let (q, r) = (a.checked_shr(p).unwrap_or(0), a & ((1u128 << p.min(127)) - 1));
        let half = (r >> (p - 1)) & 1 == 1;
        let below = r & ((1u128 << (p - 1)) - 1) != 0;
        let up = magnitude_up(mode, half, below, q & 1 == 1, x < 0);
        let mag = ((q + u128::from(up)) << p) as u64;
        ring.to_signed(ring.reduce(if x < 0 { mag.wrapping_neg() } else { mag }))
    };
    ring.from_signed(rounded.clamp(lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Overflow;

    const E4M3FN: FloatGrid = FloatGrid { mantissa: 3, min_exp: -6, overflow: Overflow::Saturate };
    const E2M1: FloatGrid = FloatGrid { mantissa: 1, min_exp: 0, overflow: Overflow::Saturate };
    const E8M0: FloatGrid = FloatGrid { mantissa: 0, min_exp: -127, overflow: Overflow::Saturate };

    /// Every value of a small ring at several scales rounds onto the grid as the real number
    /// it encodes does, by every mode, on several grids (including one whose subnormal spacing
    /// is coarser than the scale), without bounds.
    #[test]
    fn fixed_point_grid_rounding_equals_the_real_rounding_of_every_encoded_value() {
        let ring = Ring::new(14);
        let coarse = FloatGrid { mantissa: 2, min_exp: 1, overflow: Overflow::Saturate };
        for grid in [E4M3FN, E2M1, E8M0, coarse] {
            for s in [0u8, 3, 9] {
                for mode in [RoundMode::HalfEven, RoundMode::Floor, RoundMode::Ceil, RoundMode::TowardZero] {
                    for z in 0..1u64 << 14 {
                        let real = ring.decode(z, s);
                        let want = grid.round(real, mode) * f64::from(s).exp2();
                        let want = ring.reduce(want as i64 as u64);
                        let got = eval(ring, z, s, mode, grid, (i64::MIN, i64::MAX));
                        assert_eq!(got, want, "{grid:?} {mode:?} of {real} at scale {s}");
                    }
                }
            }
        }
    }

    /// The grid's values by hand: E4M3's spacing is 1/8 in [1, 2), 1/2 in [4, 8); E2M1's
    /// values are 0, 0.5, 1, 1.5, 2, 3, 4, 6; E8M0's the powers of two.
    #[test]
    fn the_grids_hold_the_types_values() {
        assert_eq!(E4M3FN.round(1.0625, RoundMode::HalfEven), 1.0);
        assert_eq!(E4M3FN.round(1.1875, RoundMode::HalfEven), 1.25);
        assert_eq!(E4M3FN.round(100.0, RoundMode::HalfEven), 96.0);
        assert_eq!(E4M3FN.round(-5.3, RoundMode::HalfEven), -5.5);
        assert_eq!(E4M3FN.round(2f64.powi(-9) * 1.4, RoundMode::HalfEven), 2f64.powi(-9));
        let e2m1: Vec<f64> = [0.2, 0.25, 0.8, 1.25, 1.75, 2.5, 3.4, 5.0, 5.5]
            .iter()
            .map(|&x| E2M1.round(x, RoundMode::HalfEven))
            .collect();
        assert_eq!(e2m1, [0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 4.0, 6.0]);
        assert_eq!(E8M0.round(1.1, RoundMode::Ceil), 2.0);
        assert_eq!(E8M0.round(0.124, RoundMode::Ceil), 0.125);
        assert_eq!(E8M0.round(1.1, RoundMode::TowardZero), 1.0);
        assert_eq!(E8M0.round(1.5, RoundMode::HalfEven), 2.0);
        assert_eq!(E8M0.round(1.49, RoundMode::HalfEven), 1.0);
    }
}

#[cfg(test)]
mod text {
    use crate::{FloatGrid, Overflow};

    /// The text IR's form reads back as the same grid, for each overflow rule.
    #[test]
    fn a_grid_reads_back_from_its_text() {
        for overflow in [Overflow::Saturate, Overflow::SaturateNoNan, Overflow::Nan, Overflow::Infinity] {
            let g = FloatGrid { mantissa: 3, min_exp: -6, overflow };
            assert_eq!(FloatGrid::parse(&g.as_text()), Some(g), "{}", g.as_text());
        }
        assert_eq!(FloatGrid::parse("m3e-6/what"), None);
        assert_eq!(FloatGrid::parse("3e-6"), None);
    }
}
