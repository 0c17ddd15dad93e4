//! The piecewise-linear Gelu that [`crate::Op::PlGelu`] computes in fixed point.
//!
//! `Gelu(x) = x·Φ(x) = ReLU(x) − h(|x|)` with `h(a) = a·Φ(−a)`: `h` is even in `x`, at most
//! 0.17 (at `a ≈ 0.75`) and below 0.006 from `a = 2.875` on, so five line segments of `h` on
//! `a = |x|` and zero beyond give the whole function. Slopes are ±2^−k, so a circuit needs only
//! wiring for them (a shift of `a`), an adder per intercept and a comparison per segment start.
//! Segment `i` covers `THRESHOLDS[i − 1] ≤ a < THRESHOLDS[i]` (`THRESHOLDS[−1] = 0`) with
//! `h̃(a) = INTERCEPTS[i] ± (a >> SHIFTS[i])` (`−` where `NEGATIVE[i]`); `h̃(a) = 0` from the last
//! threshold on. The segments were fitted (minimax per segment, starts on a grid of 1/8, so they
//! are exact at 3 or more fractional bits) against the exact Gelu; the largest distance of the
//! result from both the exact (erf) Gelu and ONNX's tanh form is [`PL_GELU_MAX_ERROR`].

use crate::ring::Ring;

/// Right shifts of `a = |x|` per segment (the slope of `h̃` is ±2^−shift), the lowest first.
pub const SHIFTS: [u32; 5] = [1, 2, 6, 3, 5];
/// Whether the segment's slope is negative (`h̃ = intercept − (a >> shift)`).
pub const NEGATIVE: [bool; 5] = [false, false, false, true, true];
/// Segment ends (`a <`), lowest first; from the last one on, `h̃ = 0` (Gelu is ReLU).
pub const THRESHOLDS: [f64; 5] = [0.125, 0.5, 1.0, 2.0, 2.875];
/// Intercepts per segment (multiples of 2^−12), lowest first.
pub const INTERCEPTS: [f64; 5] = [-13.0 / 4096.0, 133.0 / 4096.0, 618.0 / 4096.0, 1186.0 / 4096.0, 412.0 / 4096.0];

/// Largest `|real(x) − Gelu(x)|` over all `x`, for the exact Gelu and for ONNX's tanh form
/// (at `x ≈ ±1`, the third segment's end; checked on a fine grid by a test).
pub const PL_GELU_MAX_ERROR: f64 = 0.0079;

/// A Lipschitz constant of Gelu (both forms; the largest slope is ≈ 1.129 at `x ≈ √2`): an
/// operand error `e` moves the exact function by at most `GELU_LIPSCHITZ · e`.
pub const GELU_LIPSCHITZ: f64 = 1.13;

/// A constant at scale `s` as a ring element (rounded, negative ones in two's complement; the
/// circuit uses the same).
pub fn constant(ring: Ring, c: f64, s: u8) -> u64 {
    ring.from_signed((c * (s as f64).exp2()).round() as i64)
}

/// `h̃(a)` at scale `s` for `a` read as an unsigned ℓ-bit value (`|x|`, which may be `2^(ℓ−1)`).
fn h(ring: Ring, a: u64, s: u8) -> u64 {
    let c = |v: f64| constant(ring, v, s);
    let mut y = 0;
    for i in (0..SHIFTS.len()).rev() {
        if a < c(THRESHOLDS[i]) {
            let (k, p) = (c(INTERCEPTS[i]), a >> SHIFTS[i]);
            y = ring.reduce(if NEGATIVE[i] { k.wrapping_sub(p) } else { k.wrapping_add(p) });
        }
    }
    y
}

/// The approximation at scale `s` (input and output), as a ring element: `ReLU(x) − h̃(|x|)`,
/// with `|x|` of the most negative value `2^(ℓ−1)` read unsigned.
pub fn eval(ring: Ring, x: u64, s: u8) -> u64 {
    let neg = ring.to_signed(x) < 0;
    let a = if neg { ring.reduce(x.wrapping_neg()) } else { x };
    let relu = if neg { 0 } else { x };
    ring.reduce(relu.wrapping_sub(h(ring, a, s)))
}

/// The approximation in real arithmetic (no rounding): what `eval` computes as `s` grows.
pub fn real(x: f64) -> f64 {
    let a = x.abs();
    let mut y = 0.0;
    for i in (0..SHIFTS.len()).rev() {
        if a < THRESHOLDS[i] {
            let p = a / (SHIFTS[i] as f64).exp2();
            y = if NEGATIVE[i] { INTERCEPTS[i] - p } else { INTERCEPTS[i] + p };
        }
    }
    x.max(0.0) - y
}

/// The exact Gelu, `x·Φ(x) = x·(1 + erf(x/√2))/2`.
pub fn exact(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
}

/// ONNX's `approximate = "tanh"` form, `x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))/2`.
pub fn tanh_form(x: f64) -> f64 {
    0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> impl Iterator<Item = f64> {
        (-1_000_000..=1_000_000).map(|i| i as f64 * 1e-5)
    }

    /// The stated error is the approximation's: within it everywhere on a fine grid of
    /// [−10, 10] (beyond, `h` is below 10⁻²⁰ and the approximation is ReLU), for both forms,
    /// and tight for the exact one (some point comes within 10⁻³ of it).
    #[test]
    fn the_stated_maximum_error_holds_and_is_tight() {
        let worst = |f: fn(f64) -> f64| grid().map(|x| (real(x) - f(x)).abs()).fold(0f64, f64::max);
        let (erf, tanh) = (worst(exact), worst(tanh_form));
        assert!(erf <= PL_GELU_MAX_ERROR && erf > PL_GELU_MAX_ERROR - 1e-3, "{erf}");
        assert!(tanh <= PL_GELU_MAX_ERROR, "{tanh}");
        // The reference functions themselves, at points computed independently.
        assert!((exact(1.0) - 0.841_344_746_068_542_9).abs() < 1e-15);
        assert!((exact(-2.0) + 0.045_500_263_896_358_42).abs() < 1e-15);
        assert!((tanh_form(1.0) - 0.841_191_990_608_276_8).abs() < 1e-12);
    }

    /// Both forms are `GELU_LIPSCHITZ`-Lipschitz (the error bound relies on it).
    #[test]
    fn the_stated_slope_bound_holds() {
        for f in [exact as fn(f64) -> f64, tanh_form] {
            let steep = grid().step_by(10).map(|x| ((f(x + 1e-4) - f(x)) / 1e-4).abs()).fold(0f64, f64::max);
            assert!(steep <= GELU_LIPSCHITZ && steep > 1.12, "{steep}");
        }
    }

    /// The fixed-point form is the real one within the rounding of the shift and constants.
    #[test]
    fn fixed_point_follows_the_real_approximation() {
        for (ring, s) in [(Ring::new(30), 12u8), (Ring::new(20), 3)] {
            for i in -7000..=7000 {
                let q = ring.encode(i as f64 / 1000.0, s).unwrap();
                let got = ring.decode(eval(ring, q, s), s);
                let xr = ring.decode(q, s);
                assert!((got - real(xr)).abs() <= 2.0 * 2f64.powi(-(s as i32)), "x={xr} s={s}: {got}");
            }
        }
    }
}
