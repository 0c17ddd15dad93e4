//! The rounding that [`crate::Op::Round`] computes in fixed point: for `z` at scale `s` (read
//! signed), `q = ⌊z / 2^s⌋` and the remainder `r = z mod 2^s`; the result is `(q + up)·2^s`
//! mod 2^ℓ at scale `s`, where `up` is `0` or `1` by the mode:
//! - `floor`: `0`;
//! - `ceil`: `r ≠ 0`;
//! - `toward_zero`: `r ≠ 0` and `z < 0`;
//! - `half_even`: `r > 2^(s−1)`, or `r = 2^(s−1)` and `q` odd; with a zero point `p`
//!   (`round(z − p) + p`), and `q` of the other parity than `p`.
//!
//! That is the mode's rounding of the real value `z·2^−s`, exactly, then clamped to the
//! bounds ([`super::clip_bounds`]) as a Clip clamps; the garbled circuit
//! ([`crate::circuit::round_trunc_mask`]) computes the same bits.

use crate::RoundMode;
use crate::ring::Ring;

/// Whether `q` goes up by one, for the remainder's top bit `half` (`r ≥ 2^(s−1)`), whether
/// any lower remainder bit is set (`below`), `q`'s low bit and the sign of `z`.
pub fn rounds_up(mode: RoundMode, half: bool, below: bool, q_odd: bool, negative: bool) -> bool {
    let any = half || below;
    match mode {
        RoundMode::Floor => false,
        RoundMode::Ceil => any,
        RoundMode::TowardZero => any && negative,
        RoundMode::HalfEven => half && (below || q_odd),
    }
}

/// `z` (at scale `s`) rounded by `mode` and clamped to `(lo, hi)` (signed, at scale `s`), at
/// scale `s`, as a ring element.
pub fn eval(ring: Ring, z: u64, s: u8, mode: RoundMode, bounds: (i64, i64)) -> u64 {
    eval_with_zero(ring, z, s, mode, bounds, false)
}

/// [`eval`] of `round(z − p) + p` for an integer zero point `p` that is odd if `odd`: a tie
/// goes to the neighbour of `p`'s parity (only `half_even` looks at it; adding an integer
/// commutes with the other modes' choice, which the operator's typing rule restricts).
pub fn eval_with_zero(ring: Ring, z: u64, s: u8, mode: RoundMode, (lo, hi): (i64, i64), odd: bool) -> u64 {
    let r = ring.to_signed(rounded(ring, z, s, mode, odd));
    ring.from_signed(r.clamp(lo, hi))
}

/// Per element of an operand of shape `shape`, whether the quantized zero point `qdata` (shape
/// `zshape`, at scale 0, broadcast to it) is odd: what [`eval_with_zero`] and the circuit's server
/// input bit read.
pub fn zero_point_parities(zshape: &[usize], qdata: &[i64], shape: &[usize]) -> Vec<bool> {
    let at = crate::eval::kernels::broadcast_index(zshape, shape);
    (0..shape.iter().product()).map(|i| qdata[at(i)] & 1 == 1).collect()
}

/// [`crate::Op::Round`] `op` on every element of `x` (shape `shape`, at scale `s`): onto its
/// float grid if it has one ([`super::float_grid::eval`]), else to integers with its zero
/// point's parities (`zero`: the zero point's shape and quantized data, which the caller holds),
/// clamped to its bounds. What the simulator and the runtime's local step both compute.
pub fn eval_op(
    ring: Ring,
    x: &[u64],
    shape: &[usize],
    s: u8,
    op: &crate::Op,
    zero: Option<(&[usize], &[i64])>,
) -> Vec<u64> {
    let crate::Op::Round { mode, min, max, grid, .. } = *op else {
        panic!("eval_op takes a round, not {}", op.mnemonic())
    };
    let bounds = super::clip_bounds(ring, min, max, s);
    if let Some(grid) = grid {
        return x.iter().map(|&v| super::float_grid::eval(ring, v, s, mode, grid, bounds)).collect();
    }
    let odd = match zero {
        Some((zshape, qdata)) => zero_point_parities(zshape, qdata, shape),
        None => vec![false; x.len()],
    };
    x.iter().zip(odd).map(|(&v, odd)| eval_with_zero(ring, v, s, mode, bounds, odd)).collect()
}

fn rounded(ring: Ring, z: u64, s: u8, mode: RoundMode, zero_odd: bool) -> u64 {
    if s == 0 {
        return z;
    }
    let x = ring.to_signed(z);
    let q = x >> s;
    let r = (x as u64) & ((1u64 << s) - 1);
    let half = r >> (s - 1) & 1 == 1;
    let below = r & ((1u64 << (s - 1)) - 1) != 0;
    let up = rounds_up(mode, half, below, (q & 1 == 1) != zero_odd, x < 0);
    ring.reduce(((q + i64::from(up)) as u64) << s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value of a small ring at several scales rounds as the real number it encodes
    /// does, by every mode (wrapping only where the rounded value leaves the ring).
    #[test]
    fn fixed_point_rounding_equals_the_real_rounding_of_every_encoded_value() {
        let ring = Ring::new(10);
        for s in 1..=4u8 {
            for mode in [RoundMode::HalfEven, RoundMode::Floor, RoundMode::Ceil, RoundMode::TowardZero] {
                for z in 0..1u64 << 10 {
                    let real = ring.decode(z, s);
                    let want = ring.reduce((mode.apply(real) * f64::from(s).exp2()) as i64 as u64);
                    assert_eq!(eval(ring, z, s, mode, (i64::MIN, i64::MAX)), want, "{mode:?} of {real} at scale {s}");
                }
            }
        }
    }

    /// With an odd zero point `p` the rounding is the real `round(x − p) + p` of every encoded
    /// value (ties to odd), and with an even one it is the plain rounding.
    #[test]
    fn a_zero_point_rounds_ties_to_its_parity() {
        let ring = Ring::new(10);
        for s in 1..=4u8 {
            for p in [-3.0f64, 1.0, 2.0, 7.0] {
                let odd = p.rem_euclid(2.0) == 1.0;
                let (mut ties, mut moved) = (0, 0);
                for z in 0..1u64 << 10 {
                    let real = ring.decode(z, s);
                    let exact = (RoundMode::HalfEven.apply(real - p) + p) * f64::from(s).exp2();
                    let want = ring.reduce(exact as i64 as u64);
                    let got = eval_with_zero(ring, z, s, RoundMode::HalfEven, (i64::MIN, i64::MAX), odd);
                    assert_eq!(got, want, "round({real} − {p}) + {p} at scale {s}");
                    ties += usize::from(real.fract().abs() == 0.5);
                    moved += usize::from(got != eval(ring, z, s, RoundMode::HalfEven, (i64::MIN, i64::MAX)));
                }
                // Every tie moves for an odd zero point (wrap-around aside), none for an even one.
                assert!(if odd { moved + 2 >= ties && moved > 0 } else { moved == 0 }, "p {p}: {moved} of {ties}");
            }
        }
    }
}
