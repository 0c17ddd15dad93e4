//! The garbled circuit of [`crate::Op::Round`]: rounding to an integer with the fused
//! truncation and the output mask.

use super::nn::{clamp, shifted};
use super::{Builder, Circuit};
use crate::RoundMode;

/// Rounding with fused truncation and output mask: for `z = y >> f` at scale `s` (`y = y_s +
/// y_c`, the arithmetic shift), `round(z) − r mod 2^ℓ` with `round` as
/// [`crate::eval::ring_ops::round::eval`] computes it, bit for bit: `q = z >> s` plus one when
/// the mode rounds up (read from the remainder's top bit, the OR of its lower bits, `q`'s low
/// bit and the sign), shifted back up by `s`, then clamped to the bounds `(lo, hi)` (signed
/// ℓ-bit values at scale `s`; `None`: that side does not bind) as a Clip's circuit clamps.
/// Inputs as for [`super::relu_trunc_mask`]. ANDs: (ℓ − 1) to add the shares, at most
/// (s − 2) + 2 for the rounding bit, (ℓ − f − s − 1) to add it, about 2ℓ per bound, (ℓ − 1)
/// for the mask.
pub fn round_trunc_mask(ell: u32, f: u32, s: u32, mode: RoundMode, bounds: (Option<i64>, Option<i64>)) -> Circuit {
    round_trunc_mask_narrow(ell, ell, f, s, mode, bounds, false)
}

/// The width [`round_trunc_mask_narrow`] rounds and clamps in, for an operand read in `w` of
/// ℓ bits: one bit more than the operand where the ring has it (rounding the largest `w`-bit
/// value up cannot wrap there, as it cannot in the simulator's ℓ bits), else ℓ.
pub fn round_width(w: u32, ell: u32) -> u32 {
    if w < ell { w + 1 } else { ell }
}

/// [`round_trunc_mask`] reading its operand in `w ≤ ℓ` bits, as [`super::relu_trunc_mask_narrow`]
/// does: the rounding of `y' >> f` with `y'` the `w`-bit value `y mod 2^w` read as signed,
/// rounded and clamped in [`round_width`] bits (the bounds must fit there) and sign-extended to
/// ℓ before the mask. Bit for bit what the simulator computes on the narrowed read
/// (`schedule::narrowed_reads`) for every operand.
///
/// With `zero_point` the circuit takes a fourth input, one bit: the parity of the zero point
/// `p` of [`crate::Op::Round`] (`round(z − p) + p`), with which a tie goes up when `q`'s low
/// bit differs from it (one XOR, no AND gate more).
pub fn round_trunc_mask_narrow(
    w: u32,
    ell: u32,
    f: u32,
    s: u32,
    mode: RoundMode,
    (lo, hi): (Option<i64>, Option<i64>),
    zero_point: bool,
) -> Circuit {
    assert!(f + s < w && w <= ell, "round: f + s < w ≤ ℓ (w = {w}, ℓ = {ell}, f = {f}, s = {s})");
    let width = round_width(w, ell);
    assert!(super::clip_bounds_fit(width, lo, hi), "round: bounds {lo:?}, {hi:?} outside {width} bits");
    assert!(!zero_point || mode == RoundMode::HalfEven, "round: a zero point needs ties to even");
    let widths: &[u32] = if zero_point { &[w, w, ell, 1] } else { &[w, w, ell] };
    let (mut b, io) = Builder::new(widths);
    let y = b.add(&io[0], &io[1], false);
    let n = width as usize;
    // z = y' >> f in `width` bits.
    let z = shifted(&y, f as usize, n);
    let s = s as usize;
    let zero = b.zero();
    let rounded = if s == 0 {
        z
    } else {
        let half = z[s - 1];
        let below = z[..s - 1].iter().copied().reduce(|acc, w| b.or(acc, w));
        let any = below.map_or(half, |w| b.or(half, w));
        let (q_odd, negative) = (z[s], z[n - 1]);
        let q_odd = if zero_point { b.xor(q_odd, io[3][0]) } else { q_odd };
        let up = match mode {
            RoundMode::Floor => None,
            RoundMode::Ceil => Some(any),
            RoundMode::TowardZero => Some(b.and(any, negative)),
            RoundMode::HalfEven => {
                let tie_or_more = below.map_or(q_odd, |w| b.or(w, q_odd));
                Some(b.and(half, tie_or_more))
            }
        };
        // q + up over the ℓ − s bits that stay, the low s bits zero.
        let mut out = vec![zero; s];
        let mut carry = up;
        for (i, &qi) in z[s..].iter().enumerate() {
            match carry {
                Some(c) => {
                    out.push(b.xor(qi, c));
                    carry = (s + i + 1 < n).then(|| b.and(qi, c));
                }
                None => out.push(qi),
            }
        }
        out
    };
    let z = clamp(&mut b, rounded, lo, hi);
    let out = b.sub(&shifted(&z, 0, ell as usize), &io[2]);
    b.finish(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::ring_ops::round;
    use crate::ring::Ring;

    /// Over every value of a 9-bit ring, split into shares and masked, each mode at several
    /// truncations and scales, without bounds and with a clamp, gives the simulator's rounding
    /// of the truncated value.
    /// Read narrowed, the circuit rounds `y mod 2^w` (signed) as the simulator does, in a
    /// wider ring, for every operand: the largest value rounding up does not wrap.
    #[test]
    fn the_narrowed_circuit_rounds_the_narrowed_value_as_the_simulator_does() {
        let (ring, w) = (Ring::new(12), 8u32);
        let narrow = Ring::new(w as u8);
        for mode in [RoundMode::HalfEven, RoundMode::Ceil, RoundMode::TowardZero] {
            for (f, s) in [(0, 2), (2, 3), (1, 0)] {
                for bounds in [(None, None), (Some(-40i64), Some(200i64))] {
                    let c = round_trunc_mask_narrow(w, 12, f, s, mode, bounds, false);
                    let sim = (bounds.0.unwrap_or(i64::MIN), bounds.1.unwrap_or(i64::MAX));
                    for y in 0..1u64 << 12 {
                        let ys = ring.reduce(y.wrapping_mul(0x9e37_79b9) ^ 0x5a5);
                        let yc = ring.reduce(y.wrapping_sub(ys));
                        let read = ring.from_signed(narrow.to_signed(narrow.reduce(y)));
                        let want = round::eval(ring, ring.truncate(read, f as u8), s as u8, mode, sim);
                        let got = c.eval_u64(&[narrow.reduce(ys), narrow.reduce(yc), 0]);
                        assert_eq!(got, want, "{mode:?}, f {f}, s {s}, {bounds:?}, y {y}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_circuit_rounds_every_value_as_the_simulator_does() {
        let ring = Ring::new(9);
        let mut state = 0x2545f4914f6cdd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ring.reduce(state)
        };
        for mode in [RoundMode::HalfEven, RoundMode::Floor, RoundMode::Ceil, RoundMode::TowardZero] {
            for (f, s) in [(0, 0), (0, 1), (0, 3), (2, 1), (3, 4), (1, 6)] {
                // Integers −3 and 2 at scale s (within the ring), and one side only.
                let (lo, hi) = ((-3i64 << s).max(-256), (2i64 << s).min(255));
                for bounds in [(None, None), (Some(lo), Some(hi)), (None, Some(hi)), (Some(lo), None)] {
                    let c = round_trunc_mask(9, f, s, mode, bounds);
                    let sim = (bounds.0.unwrap_or(i64::MIN), bounds.1.unwrap_or(i64::MAX));
                    for y in 0..1u64 << 9 {
                        let (ys, r) = (next(), next());
                        let yc = ring.reduce(y.wrapping_sub(ys));
                        let want = round::eval(ring, ring.truncate(y, f as u8), s as u8, mode, sim);
                        let got = c.eval_u64(&[ys, yc, r]);
                        assert_eq!(ring.reduce(got.wrapping_add(r)), want, "{mode:?}, f {f}, s {s}, {bounds:?}, y {y}");
                    }
                }
            }
        }
    }

    /// With the zero point's parity as a fourth input, the circuit rounds as the simulator's
    /// [`round::eval_with_zero`] for every value, both parities, narrowed or not, at no AND
    /// gate more.
    #[test]
    fn the_zero_points_parity_breaks_ties_as_the_simulator_does() {
        let ring = Ring::new(11);
        for w in [11u32, 8] {
            let narrow = Ring::new(w as u8);
            for (f, s) in [(0, 1), (2, 3), (1, 2)] {
                let bounds = (Some(-(9i64 << s)), Some(20i64 << s));
                let sim = (bounds.0.unwrap(), bounds.1.unwrap());
                let plain = round_trunc_mask_narrow(w, 11, f, s, RoundMode::HalfEven, bounds, false);
                let c = round_trunc_mask_narrow(w, 11, f, s, RoundMode::HalfEven, bounds, true);
                assert_eq!(c.and_count(), plain.and_count());
                for odd in [false, true] {
                    let mut moved = 0;
                    for y in 0..1u64 << 11 {
                        let ys = ring.reduce(y.wrapping_mul(0x9e37_79b9) ^ 0x3c3);
                        let yc = ring.reduce(y.wrapping_sub(ys));
                        let read = ring.from_signed(narrow.to_signed(narrow.reduce(y)));
                        let t = ring.truncate(read, f as u8);
                        let want = round::eval_with_zero(ring, t, s as u8, RoundMode::HalfEven, sim, odd);
                        let got = c.eval_u64(&[narrow.reduce(ys), narrow.reduce(yc), 0, u64::from(odd)]);
                        assert_eq!(got, want, "w {w}, f {f}, s {s}, odd {odd}, y {y}");
                        moved += usize::from(want != round::eval(ring, t, s as u8, RoundMode::HalfEven, sim));
                    }
                    assert_eq!(moved > 0, odd, "w {w}, f {f}, s {s}: {moved} ties moved");
                }
            }
        }
    }
}
