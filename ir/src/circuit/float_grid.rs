//! The garbled circuit of [`crate::Op::Round`] with a [`FloatGrid`]: rounding onto a small float
//! type's grid (a `Cast` to FLOAT8E4M3FN and its kin) with the fused truncation and the output
//! mask.

use super::nn::{clamp, shifted};
use super::round::round_width;
use super::{Builder, Circuit, Wire};
use crate::{FloatGrid, RoundMode};

/// Whether [`float_grid_trunc_mask_narrow`] can round onto `grid` at scale `s` in `width` bits:
/// the subnormals' spacing `2^(min_exp + s − mantissa)` must lie below the top bit, so that a
/// rounded value keeps its sign.
pub fn float_grid_fits(width: u32, s: u32, grid: FloatGrid) -> bool {
    i64::from(grid.min_exp) + i64::from(s) - i64::from(grid.mantissa) <= i64::from(width) - 2
}

/// Rounding onto `grid` with fused truncation and output mask, reading the operand in `w ≤ ℓ`
/// bits as [`super::round_trunc_mask_narrow`] does: for `z = y' >> f` at scale `s`, the rounding
/// [`crate::eval::ring_ops::float_grid::eval`] computes, bit for bit, in [`round_width`] bits,
/// clamped to the bounds, sign-extended to ℓ and masked.
///
/// The circuit takes `a = |z|`, marks the bits below the grid's spacing (`i < p` holds where a
/// one of `a` lies above bit `i + mantissa`, or `i < min_exp + s − mantissa`: one prefix OR
/// from the top), reads the remainder's top bit, the OR of the others and the quotient's low
/// bit through that mask (the positions `p − 1` and `p` are where the mask steps, so their
/// indicators are XORs of neighbours, free), clears the low bits, adds the carry at `p`, and
/// puts the sign back. ANDs: about eleven per bit of the width, plus the clamp and the mask.
pub fn float_grid_trunc_mask_narrow(
    w: u32,
    ell: u32,
    f: u32,
    s: u32,
    mode: RoundMode,
    grid: FloatGrid,
    (lo, hi): (Option<i64>, Option<i64>),
) -> Circuit {
    assert!(f < w && w <= ell, "float grid: f < w ≤ ℓ (w = {w}, ℓ = {ell}, f = {f})");
    let width = round_width(w, ell);
    assert!(float_grid_fits(width, s, grid), "float grid: {grid:?} at scale {s} does not fit {width} bits");
    assert!(super::clip_bounds_fit(width, lo, hi), "float grid: bounds {lo:?}, {hi:?} outside {width} bits");
    let (mut b, io) = Builder::new(&[w, w, ell]);
    let y = b.add(&io[0], &io[1], false);
    let n = width as usize;
    let z = shifted(&y, f as usize, n);
    let zero = b.zero();
    let one = b.not(zero);
    let negative = z[n - 1];
    // a = |z| = (z ⊕ neg) + neg, n bits unsigned.
    let a = increment_if(&mut b, z.iter().map(|&v| (v, negative)).collect(), negative);
    // above[j]: a one of `a` at bit j or higher.
    let mut above = vec![zero; n + 1];
    for j in (0..n).rev() {
        above[j] = if j + 1 == n { a[j] } else { b.or(a[j], above[j + 1]) };
    }
    let m = usize::from(grid.mantissa);
    let sub_p = i64::from(grid.min_exp) + i64::from(s) - grid.mantissa as i64;
    // low[i]: bit i lies below the spacing's bit p (low[n] = 0).
    let low: Vec<Wire> = (0..=n)
        .map(|i| {
            if (i as i64) < sub_p {
                one
            } else if i + m + 1 < n {
                above[i + m + 1]
            } else {
                zero
            }
        })
        .collect();
    // Bit p − 1 is where low steps down after i; bit p where it stepped before i.
    let mut half = zero;
    let mut q_odd = zero;
    let mut below: Option<Wire> = None;
    for i in 0..n {
        let at_half = b.xor(low[i], low[i + 1]);
        let t = b.and(a[i], at_half);
        half = b.xor(half, t);
        if i > 0 {
            let at_lsb = b.xor(low[i - 1], low[i]);
            let t = b.and(a[i], at_lsb);
            q_odd = b.xor(q_odd, t);
        }
        let t = b.and(a[i], low[i + 1]);
        below = Some(below.map_or(t, |acc| b.or(acc, t)));
    }
    let below = below.expect("n ≥ 1");
    let up = match mode {
        RoundMode::HalfEven => {
            let tie_or_more = b.or(below, q_odd);
            Some(b.and(half, tie_or_more))
        }
        RoundMode::TowardZero => None,
        RoundMode::Ceil | RoundMode::Floor => {
            let any = b.or(half, below);
            let sign = if mode == RoundMode::Ceil { b.not(negative) } else { negative };
            Some(b.and(any, sign))
        }
    };
    // The magnitude with the bits below p cleared, plus `up` at bit p (the carry runs up from
    // there: below p the cleared bits are zero).
    let mut mag = Vec::with_capacity(n);
    let mut carry = zero;
    for i in 0..n {
        let keep = b.not(low[i]);
        let kept = b.and(a[i], keep);
        let add = match up {
            Some(u) if i > 0 => {
                let at_lsb = b.xor(low[i - 1], low[i]);
                let t = b.and(u, at_lsb);
                b.xor(t, carry)
            }
            _ => carry,
        };
        mag.push(b.xor(kept, add));
        if i + 1 < n {
            carry = b.and(kept, add);
        }
    }
    // The sign back: (mag ⊕ neg) + neg.
    let rounded = increment_if(&mut b, mag.iter().map(|&v| (v, negative)).collect(), negative);
    let z = clamp(&mut b, rounded, lo, hi);
    let out = b.sub(&shifted(&z, 0, ell as usize), &io[2]);
    b.finish(out)
}

/// `(v ⊕ x) + c` over the pairs `(v, x)`, `c` one wire: the conditional negation's halves.
fn increment_if(b: &mut Builder, bits: Vec<(Wire, Wire)>, c: Wire) -> Vec<Wire> {
    let mut carry = c;
    let n = bits.len();
    let mut out = Vec::with_capacity(n);
    for (i, (v, x)) in bits.into_iter().enumerate() {
        let t = b.xor(v, x);
        out.push(b.xor(t, carry));
        if i + 1 < n {
            carry = b.and(t, carry);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Overflow;
    use crate::eval::ring_ops::float_grid;
    use crate::ring::Ring;

    /// Over every value of a 12-bit ring, read narrowed or not, split into shares and masked,
    /// each mode on several grids and scales, with and without a saturating clamp: the
    /// simulator's rounding of the truncated value.
    #[test]
    fn the_circuit_rounds_onto_the_grid_as_the_simulator_does() {
        let ring = Ring::new(12);
        let grids = [
            FloatGrid { mantissa: 3, min_exp: -6, overflow: Overflow::Saturate },
            FloatGrid { mantissa: 1, min_exp: 0, overflow: Overflow::Saturate },
            FloatGrid { mantissa: 0, min_exp: -127, overflow: Overflow::Saturate },
            FloatGrid { mantissa: 2, min_exp: 1, overflow: Overflow::Saturate },
        ];
        for w in [12u32, 9] {
            let narrow = Ring::new(w as u8);
            for grid in grids {
                for (f, s) in [(0u32, 0u32), (0, 4), (2, 3), (1, 6)] {
                    for mode in [RoundMode::HalfEven, RoundMode::Floor, RoundMode::Ceil, RoundMode::TowardZero] {
                        for bounds in [(None, None), (Some(-(6i64 << s)), Some(6i64 << s))] {
                            let width = round_width(w, 12);
                            if !float_grid_fits(width, s, grid)
                                || !crate::circuit::clip_bounds_fit(width, bounds.0, bounds.1)
                            {
                                continue;
                            }
                            let c = float_grid_trunc_mask_narrow(w, 12, f, s, mode, grid, bounds);
                            let sim = (bounds.0.unwrap_or(i64::MIN), bounds.1.unwrap_or(i64::MAX));
                            for y in 0..1u64 << 12 {
                                let ys = ring.reduce(y.wrapping_mul(0x9e37_79b9) ^ 0x5a5);
                                let yc = ring.reduce(y.wrapping_sub(ys));
                                let read = ring.from_signed(narrow.to_signed(narrow.reduce(y)));
                                let t = ring.truncate(read, f as u8);
                                let want = float_grid::eval(ring, t, s as u8, mode, grid, sim);
                                let got = c.eval_u64(&[narrow.reduce(ys), narrow.reduce(yc), 0]);
                                assert_eq!(got, want, "w {w} {grid:?} {mode:?} f {f} s {s} {bounds:?} y {y}");
                            }
                        }
                    }
                }
            }
        }
    }
}
