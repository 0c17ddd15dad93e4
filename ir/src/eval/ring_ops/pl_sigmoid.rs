//! The piecewise-linear sigmoid that [`crate::Op::PlSigmoid`] computes in fixed point: chords
//! of the logistic function `σ` through knots every quarter on `[0, 8)`, `1` from 8 on, and
//! `1 − y(|x|)` for negative `x`.
//!
//! For `a = |x|` at scale `s` (read unsigned, so `|−2^(ℓ−1)|` is `2^(ℓ−1)`): the top bits of
//! `a` below 8 pick the segment `j = ⌊a·2^J⌋` (`J` = [`segment_bits`]`(s)`, 2 from `s = 2` on),
//! the knots are `K_j = round(σ(j/2^J)·2^s)`, and `y = K_j + ⌊(K_(j+1) − K_j)·d / 2^(s−J)⌋`
//! for the bits `d` below. Chords of `σ` lie within `max|σ''|·h²/8` of it (`h = 1/4`), so the
//! approximation errs by less than [`PL_SIGMOID_MAX_ERROR`], plus the rounding (a knot's half
//! unit and the floor: 1.5 units of `2^−s`). The circuit
//! ([`crate::circuit::pl_sigmoid_trunc_mask`]) shares the interpolation with `exp2`.
//!
//! Until session 31 the sigmoid was PLAN (Amin, Curtis and Hayes-Gill, 1997: four segments
//! with power-of-two slopes, within 0.019): cheaper by about a third, 25 times coarser, which
//! recurrent models compound.

use crate::ring::Ring;

/// Segments per unit of `|x|`, as a power of two.
pub const SEGMENT_BITS: u8 = 2;
/// `|x|` from which the result is 1 (as a power of two: 8).
pub const RANGE_BITS: u8 = 3;

/// Largest `|real(x) − σ(x)|` over all `x` (the chords' sag near `|x| ≈ 1.3`; checked on a fine
/// grid by a test).
pub const PL_SIGMOID_MAX_ERROR: f64 = 7.6e-4;

/// The segment bits at scale `s`: [`SEGMENT_BITS`], or `s` when that is smaller.
pub fn segment_bits(s: u8) -> u8 {
    s.min(SEGMENT_BITS)
}

fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The knots `K_j = round(σ(j/2^J)·2^s)` for `j = 0..=8·2^J`.
pub fn knots(s: u8) -> Vec<u64> {
    let per = (1u32 << segment_bits(s)) as f64;
    let n = 1u32 << (RANGE_BITS + segment_bits(s));
    (0..=n).map(|j| (logistic(j as f64 / per) * (s as f64).exp2()).round() as u64).collect()
}

/// The approximation at scale `s` (input and output), as a ring element.
pub fn eval(ring: Ring, x: u64, s: u8) -> u64 {
    eval_with(ring, x, s, &knots(s))
}

/// [`eval`] with the knots already computed (`knots(s)`).
pub fn eval_with(ring: Ring, x: u64, s: u8, knots: &[u64]) -> u64 {
    let neg = ring.to_signed(x) < 0;
    let a = if neg { ring.reduce(x.wrapping_neg()) } else { x };
    let one = 1u64 << s;
    let y = if a >> (s + RANGE_BITS) != 0 {
        one
    } else {
        let low = s - segment_bits(s);
        let (j, d) = ((a >> low) as usize, a & ((1u64 << low) - 1));
        knots[j] + (((knots[j + 1] - knots[j]) as u128 * d as u128) >> low) as u64
    };
    ring.reduce(if neg { one - y } else { y })
}

/// The approximation in real arithmetic (no rounding): what `eval` computes as `s` grows.
pub fn real(x: f64) -> f64 {
    let a = x.abs();
    let per = (1u32 << SEGMENT_BITS) as f64;
    let y = if a >= (1u32 << RANGE_BITS) as f64 {
        1.0
    } else {
        let t = a * per;
        let j = t.floor();
        let (k0, k1) = (logistic(j / per), logistic((j + 1.0) / per));
        k0 + (k1 - k0) * (t - j)
    };
    if x < 0.0 { 1.0 - y } else { y }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stated error is the approximation's: within it everywhere on a fine grid, and tight
    /// (some point comes within 2·10⁻⁵ of it).
    #[test]
    fn the_stated_maximum_error_holds_and_is_tight() {
        let worst = (-1_000_000..=1_000_000)
            .map(|i| i as f64 * 1e-5)
            .map(|x| (real(x) - logistic(x)).abs())
            .fold(0f64, f64::max);
        assert!(worst <= PL_SIGMOID_MAX_ERROR && worst > PL_SIGMOID_MAX_ERROR - 2e-5, "{worst}");
    }

    /// The float interpreter keeps the model's logistic function; its approximated mode (the
    /// precision search's reference) gives the piecewise-linear one.
    #[test]
    fn the_float_interpreter_is_exact_and_its_approximated_mode_is_not() {
        let mut g = crate::Graph::new("s");
        let x = g.add_input("x", crate::TensorType::f32(vec![1, 5]));
        let y = g.add_node("s", "y", crate::Op::PlSigmoid, &[x]).unwrap();
        g.outputs.push(y);
        let xs = [-6.0f32, -2.0, 0.3, 2.375, 4.1];
        let t = crate::Tensor::new(vec![1, 5], xs.to_vec()).unwrap();
        let exact = crate::eval::run_float(&g, std::slice::from_ref(&t)).unwrap().remove(0);
        let approx = crate::eval::run_float_approximated(&g, &[t]).unwrap().remove(0);
        for (i, &v) in xs.iter().enumerate() {
            assert_eq!(exact.data[i], logistic(v as f64) as f32);
            assert_eq!(approx.data[i], real(v as f64) as f32);
        }
        assert_ne!(exact.data, approx.data);
    }

    /// Every operand of small rings at several scales, against the real approximation within
    /// the stated rounding; exactly 1 (and 0) from 8 on; symmetric.
    #[test]
    fn fixed_point_follows_the_real_approximation() {
        for (ell, s) in [(16u8, 10u8), (14, 6), (12, 1), (10, 0), (18, 12)] {
            let ring = Ring::new(ell);
            let ulp = (-(s as f64)).exp2();
            let k = knots(s);
            for q in 0..1u64 << ell {
                let x = ring.decode(q, s);
                let y = ring.decode(eval_with(ring, q, s, &k), s);
                let want = if s >= SEGMENT_BITS { real(x) } else { coarse(x, s) };
                assert!((y - want).abs() <= 1.5 * ulp + 1e-12, "ℓ={ell} s={s} x={x}: {y} vs {want}");
                if x.abs() >= 8.0 {
                    assert_eq!(y, if x > 0.0 { 1.0 } else { 0.0 }, "x={x}");
                }
                let minus = ring.reduce(q.wrapping_neg());
                if q != 0 && ring.to_signed(q) != -(1i64 << (ell - 1)) {
                    assert_eq!(eval_with(ring, minus, s, &k), ring.reduce((1u64 << s) - eval_with(ring, q, s, &k)));
                }
            }
        }
    }

    /// [`real`] with `2^s` segments per unit (what a scale below [`SEGMENT_BITS`] allows).
    fn coarse(x: f64, s: u8) -> f64 {
        let (a, per) = (x.abs(), (s as f64).exp2());
        let y = if a >= 8.0 {
            1.0
        } else {
            let j = (a * per).floor();
            let (k0, k1) = (logistic(j / per), logistic((j + 1.0) / per));
            k0 + (k1 - k0) * (a * per - j)
        };
        if x < 0.0 { 1.0 - y } else { y }
    }
}
