//! The inverse square root circuit: [`crate::eval::ring_ops::rsqrt`] bit for bit, with the
//! fused truncation and the client's output mask, like the activations in [`super::nn`].

use super::arith::widen;
use super::{Builder, Circuit, Wire};

/// `⌊√u⌋` of the unsigned `u` (an even number `2h` of wires; `h` output wires), digit by digit:
/// per root bit, from the top, the remainder takes two more bits of `u` and keeps
/// `rem − (4·root + 1)` when that is non-negative, which sets the bit. After `j` bits the
/// remainder is below `2^(j+1)`, so step `j` works on `j + 3` bits: `h² + 5h` ANDs in all.
fn isqrt(b: &mut Builder, u: &[Wire]) -> Vec<Wire> {
    let h = u.len() / 2;
    let (zero, one) = {
        let z = b.zero();
        (z, b.not(z))
    };
    // Most significant first while building; reversed at the end.
    let mut root_msb: Vec<Wire> = Vec::with_capacity(h);
    let mut rem: Vec<Wire> = Vec::new();
    for j in 0..h {
        let w = j + 3;
        let pair = [u[2 * (h - 1 - j)], u[2 * (h - 1 - j) + 1]];
        let shifted: Vec<Wire> = pair.iter().copied().chain(rem.iter().copied()).collect();
        let cur = widen(b, &shifted, w + 1);
        // trial = 4·root + 1: bit 0 one, bit 1 zero, then the root (least significant first).
        let trial: Vec<Wire> = [one, zero].into_iter().chain(root_msb.iter().rev().copied()).collect();
        let trial = widen(b, &trial, w + 1);
        let d = b.sub(&cur, &trial);
        let ge = b.not(d[w]);
        let kept = b.mux(ge, &d[..j + 2], &cur[..j + 2]);
        rem = kept;
        root_msb.push(ge);
    }
    root_msb.into_iter().rev().collect()
}

/// `⌊2^big_s / r⌋` for `r ≥ 1` (`h` wires), all `big_s + 1` quotient bits, by long division:
/// `big_s + 1` steps of an `(h + 1)`-bit subtraction and an `h`-bit selection.
pub(super) fn reciprocal(b: &mut Builder, r: &[Wire], big_s: usize) -> Vec<Wire> {
    let h = r.len();
    let (zero, one) = {
        let z = b.zero();
        (z, b.not(z))
    };
    let divisor = widen(b, r, h + 2);
    let mut rem: Vec<Wire> = vec![zero; h];
    let mut q_msb = Vec::with_capacity(big_s + 1);
    for i in (0..=big_s).rev() {
        let bit = if i == big_s { one } else { zero };
        let cur: Vec<Wire> = std::iter::once(bit).chain(rem.iter().copied()).collect();
        let cur = widen(b, &cur, h + 2);
        let d = b.sub(&cur, &divisor);
        let ge = b.not(d[h + 1]);
        rem = b.mux(ge, &d[..h], &cur[..h]);
        q_msb.push(ge);
    }
    q_msb.into_iter().rev().collect()
}

/// `1/√(z + ε)` ([`crate::eval::ring_ops::rsqrt::eval`], bit for bit) with fused truncation and
/// output mask: for `z = y >> f` at scale `s`, `⌊2^S / ⌊√(max(z + e, 1)·2^p)⌋⌋ − r mod 2^ℓ`
/// (`p = s mod 2`, `S = s + p`, `e` the simulator's encoding of `eps`). Inputs as for
/// [`super::relu_trunc_mask`]. `z + e` is formed in ℓ + 1 bits, so it cannot wrap. ANDs: about
/// `h² + 5h` for the root and `(S + 1)(2h + 1)` for the division (`h = ⌈(ℓ + p)/2⌉`), and a
/// few ℓ around them: 1,805 at ℓ = 41, s = 24, about eleven exact ReLUs, once per row.
pub fn rsqrt_trunc_mask(ell: u32, f: u32, s: u8, eps: f32) -> Circuit {
    use crate::eval::ring_ops::rsqrt::epsilon_code;
    let ring = crate::ring::Ring::new(ell as u8);
    let n = ell as usize;
    let (mut b, io) = Builder::new(&[ell, ell, ell]);
    let y = b.add(&io[0], &io[1], false);
    let z: Vec<Wire> = (0..n).map(|i| if i + (f as usize) < n { y[i + f as usize] } else { y[n - 1] }).collect();
    // t = z + e in ℓ + 1 bits (z sign-extended), then U = max(t, 1).
    let wide: Vec<Wire> = z.iter().copied().chain([z[n - 1]]).collect();
    let e = b.constant(epsilon_code(ring, eps, s), n + 1);
    let t = b.add(&wide, &e, false);
    let one = b.constant(1, n + 1);
    let below = b.less_signed(&t, &one);
    let u_big = b.mux(below, &one, &t);
    // U < 2^ℓ: its top wire is zero. u = U·2^p, padded to an even width.
    let p = (s % 2) as usize;
    let zero = b.zero();
    let mut u: Vec<Wire> = std::iter::repeat_n(zero, p).chain(u_big[..n].iter().copied()).collect();
    if u.len() % 2 == 1 {
        u.push(zero);
    }
    let r = isqrt(&mut b, &u);
    let q = reciprocal(&mut b, &r, s as usize + p);
    let q = widen(&mut b, &q, n);
    let out = b.sub(&q, &io[2]);
    b.finish(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::ring_ops::rsqrt;
    use crate::ring::Ring;

    fn check(ell: u8, f: u32, s: u8, eps: f32, vals: &[u64]) {
        let r = Ring::new(ell);
        let c = rsqrt_trunc_mask(ell as u32, f, s, eps);
        for (k, &y) in vals.iter().enumerate() {
            let share = (y.rotate_left(11) ^ k as u64).wrapping_mul(0x9e37_79b9) & r.mask();
            let mask = share.rotate_left(7) & r.mask();
            let (y_s, y_c) = (share, r.reduce(y.wrapping_sub(share)));
            let want = r.reduce(rsqrt::eval(r, r.truncate(y, f as u8), s, eps).wrapping_sub(mask));
            assert_eq!(c.eval_u64(&[y_s, y_c, mask]), want, "ℓ={ell} f={f} s={s} eps={eps} y={}", r.to_signed(y));
        }
    }

    /// Every value of small rings, both parities of `s`, with and without `ε`, with and
    /// without a fused truncation, and quotients wider than the ring (which wrap alike).
    #[test]
    fn agrees_with_the_simulator_on_every_value_of_small_rings() {
        for (ell, f, s, eps) in
            [(12u8, 0u32, 8u8, 0.0f32), (12, 3, 7, 0.01), (11, 2, 6, 0.5), (10, 0, 9, 0.0), (12, 1, 4, 3.0)]
        {
            let all: Vec<u64> = (0..1u64 << ell).collect();
            check(ell, f, s, eps, &all);
        }
    }

    /// Edge and random values at ℓ = 41 and 61, scales as `quantize` picks them.
    #[test]
    fn agrees_with_the_simulator_at_full_width() {
        for (ell, f, s, eps) in [(41u8, 12u32, 24u8, 1e-6f32), (41, 0, 23, 1e-5), (61, 12, 24, 0.0)] {
            let r = Ring::new(ell);
            let mut vals: Vec<u64> =
                [0i64, 1, -1, 2, 3, 4, 15, 16, 17, (1 << (ell - 1)) - 1, -(1 << (ell - 1)), 1 << (ell - 2), 1 << 24]
                    .iter()
                    .map(|&x| r.from_signed(x))
                    .collect();
            let mut st = 0x9e37_79b9_7f4a_7c15u64 ^ ell as u64;
            for i in 0..400 {
                st = st.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                // Mostly small non-negative values (variances), some anywhere in the ring.
                let v = if i % 4 == 0 { st ^ (st >> 29) } else { (st >> 30) >> (st % 30) };
                vals.push(r.reduce(v));
            }
            check(ell, f, s, eps, &vals);
        }
    }

    #[test]
    fn and_count_is_as_documented() {
        let c = rsqrt_trunc_mask(41, 12, 24, 1e-6);
        assert_eq!(c.and_count(), 1805);
    }
}
