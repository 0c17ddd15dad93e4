//! The circuits of a Softmax on shares: the power of two of its exponentials
//! ([`crate::eval::ring_ops::exp2`]) and the reciprocal of their sum
//! ([`crate::eval::ring_ops::reciprocal`]), bit for bit, with the fused truncation and the
//! client's output mask like the activations in [`super::nn`].

use super::arith::{shift_down, widen};
use super::chords::chord;
use super::nn::reconstruct;
use super::rsqrt::reciprocal;
use super::{Builder, Circuit};

/// `2^min(z, 0)` ([`crate::eval::ring_ops::exp2::eval`], bit for bit) with fused truncation and
/// output mask: for `z = y >> f` at scale `s`, the result at scale `s` minus the client's mask.
/// Inputs as for [`super::relu_trunc_mask`]; needs `s + 2 ≤ ℓ`. The fraction's top bits select
/// a knot and a chord slope (table lookups), the rest multiplies the slope, and the sum shifts
/// right by `−⌊z/2^s⌋` (a barrel shifter; zero beyond `s + 1`). ANDs: 497 at ℓ = 41,
/// s = 12, about four exact ReLUs.
pub fn exp2_trunc_mask(ell: u32, f: u32, s: u8) -> Circuit {
    use crate::eval::ring_ops::exp2::{knots, segment_bits};
    let n = ell as usize;
    let su = s as usize;
    assert!(su + 2 <= n, "exp2 at scale {s} needs a ring wider than {} bits", su + 1);
    let (mut b, io) = Builder::new(&[ell, ell, ell]);
    let z = reconstruct(&mut b, &io, f);
    let zero = b.zero();
    let sign = z[n - 1];
    let jbits = segment_bits(s) as usize;
    let low = su - jbits;
    let a = knots(s);
    let mut p = chord(&mut b, &z[low..su], &z[..low], &a, su + 2);
    // k = −⌊z/2^s⌋ (for a negative z, at least 1), then p >> k.
    let high = &z[su..];
    let zeros = b.constant(0, high.len());
    let k = b.sub(&zeros, high);
    let stages = (64 - (su as u64 + 1).leading_zeros() as usize).min(k.len());
    for (t, &bit) in k.iter().enumerate().take(stages) {
        let shifted = shift_down(&p, 1 << t, zero);
        p = b.mux(bit, &shifted, &p);
    }
    if let Some((&first, rest)) = k[stages..].split_first() {
        let big = rest.iter().fold(first, |acc, &w| b.or(acc, w));
        let keep = b.not(big);
        p = p.iter().map(|&w| b.and(w, keep)).collect();
    }
    let p = widen(&mut b, &p, n);
    let one = b.constant(1u64 << s, n);
    let y = b.mux(sign, &p, &one);
    let out = b.sub(&y, &io[2]);
    b.finish(out)
}

/// `1/max(u, 1)` ([`crate::eval::ring_ops::reciprocal::eval`], bit for bit) with fused
/// truncation and output mask: for `u = y >> f` at scale `s`, `⌊2^(2s)/max(u, 2^s)⌋ − r`.
/// Inputs as for [`super::relu_trunc_mask`]; needs `s + 2 ≤ ℓ`. ANDs: about `(2s + 1)(2ℓ + 1)`
/// for the long division, 2,187 at ℓ = 41, s = 12, once per Softmax row.
pub fn reciprocal_trunc_mask(ell: u32, f: u32, s: u8) -> Circuit {
    let n = ell as usize;
    assert!(s as usize + 2 <= n, "a reciprocal at scale {s} needs a ring wider than {} bits", s + 1);
    let (mut b, io) = Builder::new(&[ell, ell, ell]);
    let u = reconstruct(&mut b, &io, f);
    let one = b.constant(1u64 << s, n);
    let below = b.less_signed(&u, &one);
    let big = b.mux(below, &one, &u);
    // U ≥ 2^s > 0: its top wire is zero.
    let q = reciprocal(&mut b, &big[..n - 1], 2 * s as usize);
    let q = widen(&mut b, &q, n);
    let out = b.sub(&q, &io[2]);
    b.finish(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::ring_ops::{exp2, reciprocal};
    use crate::ring::Ring;

    /// Shares, masks and the simulator's result for `y`, against the circuit.
    fn check(c: &Circuit, ell: u8, f: u32, vals: &[u64], sim: &dyn Fn(u64) -> u64) {
        let r = Ring::new(ell);
        for (k, &y) in vals.iter().enumerate() {
            let share = (y.rotate_left(11) ^ k as u64).wrapping_mul(0x9e37_79b9) & r.mask();
            let mask = share.rotate_left(7) & r.mask();
            let (y_s, y_c) = (share, r.reduce(y.wrapping_sub(share)));
            let want = r.reduce(sim(r.truncate(y, f as u8)).wrapping_sub(mask));
            assert_eq!(c.eval_u64(&[y_s, y_c, mask]), want, "ℓ={ell} f={f} y={}", r.to_signed(y));
        }
    }

    fn sample(ell: u8) -> Vec<u64> {
        let r = Ring::new(ell);
        let mut v: Vec<u64> = [0i64, 1, -1, 2, -2, (1 << (ell - 1)) - 1, -(1 << (ell - 1)), 1 << 12, -(1 << 12)]
            .iter()
            .map(|&x| r.from_signed(x))
            .collect();
        let mut st = 0x9e37_79b9_7f4a_7c15u64 ^ ell as u64;
        for i in 0..600 {
            st = st.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // Mostly small values either side of zero, some anywhere in the ring.
            let x = if i % 4 == 0 {
                st ^ (st >> 29)
            } else {
                ((st >> 30) >> (st % 34)).wrapping_mul(1 | ((st >> 63) * u64::MAX))
            };
            v.push(r.reduce(x));
        }
        v
    }

    /// Every value of small rings, with and without a fused truncation, scales from 0 (no
    /// fraction) to ones with every segment bit; edge and random values at full width.
    #[test]
    fn exp2_agrees_with_the_simulator() {
        for (ell, f, s) in [(12u8, 0u32, 6u8), (12, 3, 8), (11, 2, 0), (10, 0, 2), (12, 1, 4), (13, 0, 10)] {
            let c = exp2_trunc_mask(ell as u32, f, s);
            check(&c, ell, f, &(0..1u64 << ell).collect::<Vec<_>>(), &|z| exp2::eval(Ring::new(ell), z, s));
        }
        for (ell, f, s) in [(41u8, 12u32, 12u8), (41, 0, 16), (61, 14, 24)] {
            let c = exp2_trunc_mask(ell as u32, f, s);
            check(&c, ell, f, &sample(ell), &|z| exp2::eval(Ring::new(ell), z, s));
        }
    }

    #[test]
    fn reciprocal_agrees_with_the_simulator() {
        for (ell, f, s) in [(12u8, 0u32, 5u8), (12, 3, 4), (10, 0, 0), (11, 1, 3)] {
            let c = reciprocal_trunc_mask(ell as u32, f, s);
            check(&c, ell, f, &(0..1u64 << ell).collect::<Vec<_>>(), &|u| reciprocal::eval(Ring::new(ell), u, s));
        }
        for (ell, f, s) in [(41u8, 12u32, 12u8), (41, 0, 16), (61, 14, 24)] {
            let c = reciprocal_trunc_mask(ell as u32, f, s);
            check(&c, ell, f, &sample(ell), &|u| reciprocal::eval(Ring::new(ell), u, s));
        }
    }

    #[test]
    fn and_counts_are_as_documented() {
        assert_eq!(exp2_trunc_mask(41, 12, 12).and_count(), 497);
        assert_eq!(reciprocal_trunc_mask(41, 12, 12).and_count(), 2187);
    }
}
