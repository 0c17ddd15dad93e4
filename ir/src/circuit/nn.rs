//! The circuits of Veil's garbled layers (docs/protocols.md), each reconstructing its operand from the
//! two parties' shares, computing on it, and re-masking the result for the client.

use super::arith::shift_down;
use super::{Builder, Circuit, Wire};

/// Arithmetic right shift by `f` of an `ℓ`-bit value: wiring plus sign extension (free).
fn shift_right(x: &[Wire], f: usize) -> Vec<Wire> {
    shifted(x, f, x.len())
}

/// `x` (signed) shifted right by `f` as `n` bits: wiring, the sign repeated above (free).
pub(super) fn shifted(x: &[Wire], f: usize, n: usize) -> Vec<Wire> {
    let top = x.len() - 1;
    (0..n).map(|i| x[(i + f).min(top)]).collect()
}

/// `z` (signed) clamped to the bounds (`None`: that side does not bind), compared in `z`'s
/// width, in which they must fit: about `2·|z|` ANDs per bound.
pub(super) fn clamp(b: &mut Builder, mut z: Vec<Wire>, lo: Option<i64>, hi: Option<i64>) -> Vec<Wire> {
    let n = z.len();
    let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
    if let Some(lo) = lo {
        let c = b.constant(lo as u64 & mask, n);
        let below = b.less_signed(&z, &c);
        z = b.mux(below, &c, &z);
    }
    if let Some(hi) = hi {
        let c = b.constant(hi as u64 & mask, n);
        let above = b.less_signed(&c, &z);
        z = b.mux(above, &c, &z);
    }
    z
}

/// Exact ReLU with fused truncation and output mask (Delphi with truncation in the circuit).
/// Inputs: `y_s` (server share, ℓ bits), `y_c` (client share, ℓ bits), `r` (client's mask for
/// the next layer, ℓ bits). Output: `(ReLU(y) >> f) − r mod 2^ℓ` where `y = y_s + y_c` and `>>`
/// is the arithmetic (floor) shift. ANDs: (ℓ − 1) + (ℓ − f − 1) + (ℓ − 1).
pub fn relu_trunc_mask(ell: u32, f: u32) -> Circuit {
    relu_trunc_mask_narrow(ell, ell, f)
}

/// [`relu_trunc_mask`] reading its operand in `w ≤ ℓ` bits: inputs `y_s` and `y_c` are the
/// shares' low `w` bits (`y mod 2^w` is their sum mod 2^w, a free narrowing), `r` has ℓ bits.
/// Output: `(ReLU(y') >> f) − r mod 2^ℓ` with `y'` the `w`-bit value `y mod 2^w` read as signed,
/// which is `y` whenever `|y| < 2^(w−1)` (the simulator reads it so: `schedule::narrowed_reads`). ANDs: (w − 1) +
/// (w − f − 1) + (ℓ − 1): the server's online labels and the first two terms shrink with `w`.
pub fn relu_trunc_mask_narrow(w: u32, ell: u32, f: u32) -> Circuit {
    assert!(f < w && w <= ell, "narrow ReLU: f < w ≤ ℓ (w = {w}, ℓ = {ell}, f = {f})");
    let (mut b, io) = Builder::new(&[w, w, ell]);
    let y = b.add(&io[0], &io[1], false);
    let sign = y[w as usize - 1];
    let keep = b.not(sign);
    let shifted = shift_right(&y, f as usize);
    let zero = b.zero();
    // ReLU: keep the shifted value when non-negative; its bits above w − f − 1 are the sign
    // (0 when kept), so they are constant zero, up to the ℓ bits of the output.
    let relu: Vec<Wire> = (0..ell as usize)
        .map(|i| if i + 1 + (f as usize) < w as usize { b.and(shifted[i], keep) } else { zero })
        .collect();
    let out = b.sub(&relu, &io[2]);
    b.finish(out)
}

/// Exact truncation on its own (no activation to fuse into), with the output mask: inputs as
/// for [`relu_trunc_mask`], output `(y >> f) − r mod 2^ℓ` with `>>` the arithmetic (floor)
/// shift, exactly the simulator's `truncate`. ANDs: 2(ℓ − 1). Used for `--exact-truncation`,
/// where no truncation may run locally on shares.
pub fn trunc_mask(ell: u32, f: u32) -> Circuit {
    trunc_mask_narrow(ell, ell, f)
}

/// [`trunc_mask`] reading its operand in `w ≤ ℓ` bits, as [`relu_trunc_mask_narrow`] does:
/// `(y' >> f) − r mod 2^ℓ` with `y'` the `w`-bit value `y mod 2^w` read as signed, the shifted
/// value sign-extended to ℓ bits (wiring) before the mask. ANDs: (w − 1) + (ℓ − 1).
pub fn trunc_mask_narrow(w: u32, ell: u32, f: u32) -> Circuit {
    assert!(f < w && w <= ell, "narrow truncation: f < w ≤ ℓ (w = {w}, ℓ = {ell}, f = {f})");
    let (mut b, io) = Builder::new(&[w, w, ell]);
    let y = b.add(&io[0], &io[1], false);
    let z = shifted(&y, f as usize, ell as usize);
    let out = b.sub(&z, &io[2]);
    b.finish(out)
}

/// Reconstructs `y = y_s + y_c` from the first two ℓ-bit inputs and shifts it right by `f`.
pub(super) fn reconstruct(b: &mut Builder, io: &[Vec<Wire>], f: u32) -> Vec<Wire> {
    let y = b.add(&io[0], &io[1], false);
    shift_right(&y, f as usize)
}

/// Clip with fused truncation and output mask: `clamp(y >> f, lo, hi) − r`, where `lo`/`hi` are
/// the bounds already encoded in the ring (`None`: that side does not bind). Inputs as for
/// [`relu_trunc_mask`].
pub fn clip_trunc_mask(ell: u32, f: u32, lo: Option<i64>, hi: Option<i64>) -> Circuit {
    clip_trunc_mask_narrow(ell, ell, f, lo, hi)
}

/// Whether Clip bounds (`None`: that side does not bind) are signed `w`-bit values, as
/// [`clip_trunc_mask_narrow`] compares them.
pub fn clip_bounds_fit(w: u32, lo: Option<i64>, hi: Option<i64>) -> bool {
    let fits = |c: i64| (-(1i64 << (w - 1))..(1i64 << (w - 1))).contains(&c);
    lo.is_none_or(fits) && hi.is_none_or(fits)
}

/// [`clip_trunc_mask`] reading its operand in `w ≤ ℓ` bits, as [`relu_trunc_mask_narrow`] does:
/// the clamp of `y' >> f` with `y'` the `w`-bit value `y mod 2^w` read as signed, compared in `w`
/// bits and sign-extended to ℓ before the mask. The bounds must fit in `w` signed bits (the
/// compiler narrows a Clip only where they fit with room: `quantize`). ANDs: about
/// `(w − 1) + 2·2w + (ℓ − 1)`.
pub fn clip_trunc_mask_narrow(w: u32, ell: u32, f: u32, lo: Option<i64>, hi: Option<i64>) -> Circuit {
    assert!(f < w && w <= ell, "narrow clip: f < w ≤ ℓ (w = {w}, ℓ = {ell}, f = {f})");
    assert!(clip_bounds_fit(w, lo, hi), "narrow clip: bounds {lo:?}, {hi:?} outside {w} bits");
    let (mut b, io) = Builder::new(&[w, w, ell]);
    let y = b.add(&io[0], &io[1], false);
    let z = clamp(&mut b, shift_right(&y, f as usize), lo, hi);
    let out = b.sub(&shifted(&z, 0, ell as usize), &io[2]);
    b.finish(out)
}

/// LeakyReLU with fused truncation and output mask: for `z = y >> f`, `z` when `z ≥ 0`, else
/// `(z · alpha_q mod 2^ℓ) >> alpha_bits` (arithmetic), minus `r`; `alpha_q = round(α·2^alpha_bits)`
/// as the simulator computes it. Inputs as for [`relu_trunc_mask`].
pub fn leaky_relu_trunc_mask(ell: u32, f: u32, alpha_q: i64, alpha_bits: u32) -> Circuit {
    leaky_relu_trunc_mask_narrow(ell, ell, f, alpha_q, alpha_bits)
}

/// [`leaky_relu_trunc_mask`] reading its operand in `w ≤ ℓ` bits, as [`relu_trunc_mask_narrow`]
/// does: `z = y' >> f` has `w − f` signed bits, so its product with the slope has at most
/// `p = w − f + a` (`a`: the signed bits of `alpha_q`) and is computed in `min(p, ℓ)` bits; below
/// ℓ it cannot wrap, and its sign extension is the simulator's ℓ-bit product. The select runs in
/// the wider of the two results' widths and is sign-extended before the mask. Equal to the
/// simulator reading the operand narrowed for every operand; at `w = ℓ` the product is still
/// computed only as wide as it can get.
pub fn leaky_relu_trunc_mask_narrow(w: u32, ell: u32, f: u32, alpha_q: i64, alpha_bits: u32) -> Circuit {
    assert!(f < w && w <= ell, "narrow leaky ReLU: f < w ≤ ℓ (w = {w}, ℓ = {ell}, f = {f})");
    let (mut b, io) = Builder::new(&[w, w, ell]);
    let y = b.add(&io[0], &io[1], false);
    let a = 65 - alpha_q.unsigned_abs().leading_zeros().min(64);
    let p = (w - f + a).min(ell) as usize;
    let z = shifted(&y, f as usize, p);
    let prod = b.mul_const(&z, alpha_q as u64 & ((1u64 << p) - 1));
    let q = if p == ell as usize { p } else { p.saturating_sub(alpha_bits as usize).max((w - f) as usize) };
    let scaled = shifted(&prod, alpha_bits as usize, q);
    let neg = y[w as usize - 1];
    let chosen = b.mux(neg, &scaled, &z[..q]);
    let out = b.sub(&shifted(&chosen, 0, ell as usize), &io[2]);
    b.finish(out)
}

/// Circa's sign test on truncated shares. Inputs: `t_c`, `t_s` (the shares with their low
/// `drop_bits` bits dropped: `width = ℓ − drop_bits` bits each), and a random mask bit `m` (the
/// server's `σ` in the runtime: [`crate::schedule::CIRCA_SERVER_GROUPS`]).
/// Output: one bit, `[t_c + t_s ≥ 0 as a width-bit signed value] ⊕ m`, uniformly random to
/// whoever does not hold `m`. ANDs: width − 1 (only the carry into the top bit is needed).
pub fn sign_test(width: u32) -> Circuit {
    let (mut b, io) = Builder::new(&[width, width, 1]);
    let s = b.add(&io[0], &io[1], false);
    let nonneg = b.not(s[width as usize - 1]);
    let out = b.xor(nonneg, io[2][0]);
    b.finish(vec![out])
}

/// Max of `k` shared values with fused truncation and output mask (MaxPool over one window).
/// Inputs: `k` server shares, `k` client shares (ℓ bits each), then the client's mask `r`.
/// Output: `max_i((y_i) >> f) − r mod 2^ℓ`. ANDs: k(ℓ − 1) to reconstruct, (k − 1)(2ℓ) for the
/// comparisons and selections (ℓ for `a − b`, 1 for the sign fix, ℓ for the mux, minus
/// constant-carry savings), ℓ − 1 to mask.
pub fn max_trunc_mask(k: u32, ell: u32, f: u32) -> Circuit {
    max_trunc_mask_narrow(k, ell, ell, f)
}

/// [`max_trunc_mask`] reading each operand in `w ≤ ℓ` bits (the shares' low `w` bits; see
/// [`relu_trunc_mask_narrow`]): `max_i(y_i' >> f) − r mod 2^ℓ` with `y_i'` the `w`-bit value
/// `y_i mod 2^w` read as signed. The maximum is sign-extended to ℓ bits (wiring) before the mask.
pub fn max_trunc_mask_narrow(k: u32, w: u32, ell: u32, f: u32) -> Circuit {
    assert!(f < w && w <= ell, "narrow max: f < w ≤ ℓ (w = {w}, ℓ = {ell}, f = {f})");
    let mut widths = vec![w; 2 * k as usize];
    widths.push(ell);
    let (mut b, io) = Builder::new(&widths);
    let vals: Vec<Vec<Wire>> = (0..k as usize)
        .map(|i| {
            let y = b.add(&io[i], &io[k as usize + i], false);
            shift_right(&y, f as usize)
        })
        .collect();
    let mut best = vals[0].clone();
    for v in &vals[1..] {
        let lt = b.less_signed(&best, v);
        best = b.mux(lt, v, &best);
    }
    let out = b.sub(&shifted(&best, 0, ell as usize), &io[2 * k as usize]);
    b.finish(out)
}

/// The sign of `z`, its magnitude `|z|` (ℓ bits) and `|z|` one bit wider (so that
/// `|−2^(ℓ−1)|` compares as unsigned), for the piecewise-linear activations.
fn magnitude(b: &mut Builder, z: &[Wire]) -> (Wire, Vec<Wire>, Vec<Wire>) {
    let sign = z[z.len() - 1];
    let zeros = b.constant(0, z.len());
    let neg = b.sub(&zeros, z);
    let a = b.mux(sign, &neg, z);
    let wide = a.iter().copied().chain([b.zero()]).collect();
    (sign, a, wide)
}

/// The piecewise-linear sigmoid ([`crate::eval::ring_ops::pl_sigmoid`], bit for bit) with fused
/// truncation and output mask: for `z = y >> f` at scale `s`, `pl_sigmoid(z) − r`. Inputs as
/// for [`relu_trunc_mask`]; needs `s + 4 ≤ ℓ`. `|z|` is read unsigned, so `z = −2^(ℓ−1)` agrees
/// with the simulator too; any of its bits from `8·2^s` up gives 1, else a chord through the
/// knots ([`super::chords::chord`]). ANDs: 841 at ℓ = 41, `s = 12` (was about 14ℓ = 574 for
/// PLAN's four segments with power-of-two slopes, 25 times coarser).
pub fn pl_sigmoid_trunc_mask(ell: u32, f: u32, s: u8) -> Circuit {
    use crate::eval::ring_ops::pl_sigmoid::{RANGE_BITS, knots, segment_bits};
    let n = ell as usize;
    let (su, top) = (s as usize, (s + RANGE_BITS) as usize);
    assert!(top < n, "the sigmoid at scale {s} needs a ring wider than {} bits", top);
    let (mut b, io) = Builder::new(&[ell, ell, ell]);
    let z = reconstruct(&mut b, &io, f);
    let (sign, a, _) = magnitude(&mut b, &z);
    let low = su - segment_bits(s) as usize;
    let y = super::chords::chord(&mut b, &a[low..top], &a[..low], &knots(s), su + 1);
    let y = super::arith::widen(&mut b, &y, n);
    let one = b.constant(1u64 << s, n);
    let big = a[top + 1..].iter().fold(a[top], |acc, &w| b.or(acc, w));
    let y = b.mux(big, &one, &y);
    let flipped = b.sub(&one, &y);
    let out = b.mux(sign, &flipped, &y);
    let out = b.sub(&out, &io[2]);
    b.finish(out)
}

/// The piecewise-linear Gelu ([`crate::eval::ring_ops::pl_gelu`], bit for bit) with fused
/// truncation and output mask: for `z = y >> f` at scale `s`, `ReLU(z) − h̃(|z|) − r`. Inputs
/// as for [`relu_trunc_mask`]. `|z|` is compared unsigned (one bit wider), so `z = −2^(ℓ−1)`
/// agrees with the simulator too. ANDs: 21ℓ − 5 (per segment ℓ + 1 for the comparison, ℓ − 1
/// for the intercept's adder and ℓ for the selection; ℓ − 1 each to reconstruct, negate, ReLU
/// and subtract twice, ℓ to select `|z|`): 856 at ℓ = 41, about seven exact ReLUs.
pub fn pl_gelu_trunc_mask(ell: u32, f: u32, s: u8) -> Circuit {
    use crate::eval::ring_ops::pl_gelu::{INTERCEPTS, NEGATIVE, SHIFTS, THRESHOLDS, constant};
    let ring = crate::ring::Ring::new(ell as u8);
    let n = ell as usize;
    let (mut b, io) = Builder::new(&[ell, ell, ell]);
    let z = reconstruct(&mut b, &io, f);
    let (sign, a, wide) = magnitude(&mut b, &z);
    let zero = b.zero();
    let mut h = b.constant(0, n);
    for i in (0..SHIFTS.len()).rev() {
        let shifted = shift_down(&a, SHIFTS[i] as usize, zero);
        let c = b.constant(constant(ring, INTERCEPTS[i], s), n);
        let cand = if NEGATIVE[i] { b.sub(&c, &shifted) } else { b.add(&shifted, &c, false) };
        let t = b.constant(constant(ring, THRESHOLDS[i], s), n + 1);
        let below = b.less_signed(&wide, &t);
        h = b.mux(below, &cand, &h);
    }
    // ReLU(z): z where its sign is clear, whose top bit is then 0.
    let keep = b.not(sign);
    let relu: Vec<Wire> = (0..n).map(|j| if j + 1 < n { b.and(z[j], keep) } else { zero }).collect();
    let y = b.sub(&relu, &h);
    let out = b.sub(&y, &io[2]);
    b.finish(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::Ring;

    fn edge_and_random(ell: u8, n: usize) -> Vec<u64> {
        let r = Ring::new(ell);
        let mut v: Vec<u64> =
            [0i64, 1, -1, 2, -2, (1 << (ell - 1)) - 1, -(1 << (ell - 1)), 1 << (ell - 2), -(1 << (ell - 2))]
                .iter()
                .map(|&x| r.from_signed(x))
                .collect();
        let mut s = 0x9e3779b97f4a7c15u64 ^ ell as u64;
        for _ in 0..n {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            v.push(r.reduce(s ^ (s >> 31)));
        }
        v
    }

    #[test]
    fn adder_subtractor_and_comparison_agree_with_integers() {
        for ell in [8u8, 32, 61] {
            let r = Ring::new(ell);
            let n = ell as u32;
            let (mut b, io) = Builder::new(&[n, n]);
            let s = b.add(&io[0], &io[1], false);
            let add = b.finish(s);
            let (mut b, io) = Builder::new(&[n, n]);
            let d = b.sub(&io[0], &io[1]);
            let sub = b.finish(d);
            let (mut b, io) = Builder::new(&[n, n]);
            let lt = b.less_signed(&io[0], &io[1]);
            let less = b.finish(vec![lt]);
            assert_eq!(add.and_count(), n as usize - 1);
            let vals = edge_and_random(ell, 60);
            for &x in &vals {
                for &y in vals.iter().step_by(3) {
                    assert_eq!(add.eval_u64(&[x, y]), r.reduce(x.wrapping_add(y)), "ℓ={ell} {x}+{y}");
                    assert_eq!(sub.eval_u64(&[x, y]), r.reduce(x.wrapping_sub(y)), "ℓ={ell} {x}−{y}");
                    assert_eq!(less.eval_u64(&[x, y]) == 1, r.to_signed(x) < r.to_signed(y), "ℓ={ell} {x}<{y}");
                }
            }
        }
    }

    /// Checks circuit `c` (inputs: two `w`-bit shares, an ℓ-bit mask) against `want(y', mask)`
    /// for values inside the narrow range (its edges among them) and beyond it (where the
    /// narrowing wraps), split into shares several ways; `y'` is `y mod 2^w` read as a signed
    /// `w`-bit value, in the wide ring.
    fn check_narrow(c: &Circuit, w: u32, ell: u8, want: impl Fn(u64, u64) -> u64) {
        let (r, narrow) = (Ring::new(ell), Ring::new(w as u8));
        let mut vals: Vec<u64> =
            edge_and_random(w as u8, 40).iter().map(|&v| r.reduce(narrow.to_signed(v) as u64)).collect();
        vals.extend(edge_and_random(ell, 20));
        for &y in &vals {
            for &share in vals.iter().step_by(5) {
                let mask = share.rotate_left(7) & r.mask();
                let (y_s, y_c) = (share, r.reduce(y.wrapping_sub(share)));
                let y_narrow = r.reduce(narrow.to_signed(narrow.reduce(y)) as u64);
                let (a, b) = (narrow.reduce(y_s), narrow.reduce(y_c));
                assert_eq!(c.eval_u64(&[a, b, mask]), want(y_narrow, mask), "w={w} ℓ={ell} y={}", r.to_signed(y));
            }
        }
    }

    #[test]
    fn narrow_relu_equals_the_relu_of_the_narrowed_value() {
        for (w, ell, f) in [(10u32, 16u8, 4u32), (30, 41, 12), (16, 16, 3), (44, 61, 13)] {
            let r = Ring::new(ell);
            let c = relu_trunc_mask_narrow(w, ell as u32, f);
            assert_eq!(c.and_count() as u32, (w - 1) + (w - f - 1) + (ell as u32 - 1));
            check_narrow(&c, w, ell, |y, mask| {
                let relu = if r.to_signed(y) >= 0 { y } else { 0 };
                r.reduce(r.truncate(relu, f as u8).wrapping_sub(mask))
            });
        }
    }

    #[test]
    fn narrow_truncation_equals_the_floor_of_the_narrowed_value() {
        for (w, ell, f) in [(10u32, 16u8, 4u32), (30, 41, 12), (16, 16, 3), (44, 61, 13)] {
            let r = Ring::new(ell);
            let c = trunc_mask_narrow(w, ell as u32, f);
            assert_eq!(c.and_count() as u32, (w - 1) + (ell as u32 - 1));
            check_narrow(&c, w, ell, |y, mask| r.reduce(r.truncate(y, f as u8).wrapping_sub(mask)));
        }
    }

    #[test]
    fn narrow_leaky_relu_equals_the_leaky_relu_of_the_narrowed_value() {
        // Products below ℓ (computed narrower) and at ℓ (wrapping as the simulator's), positive,
        // steep and negative slopes, and w = ℓ (the unnarrowed circuit).
        for (w, ell, f, alpha) in [
            (10u32, 16u8, 4u32, 0.1f64),
            (30, 45, 12, 0.01),
            (16, 33, 3, 1.5),
            (20, 40, 6, -0.25),
            (44, 61, 13, 0.2),
            (24, 24, 5, 0.3),
        ] {
            let r = Ring::new(ell);
            let a = r.encode(alpha, 16).unwrap();
            let c = leaky_relu_trunc_mask_narrow(w, ell as u32, f, r.to_signed(a), 16);
            let full = leaky_relu_trunc_mask(ell as u32, f, r.to_signed(a), 16);
            assert!(c.and_count() <= full.and_count(), "w={w} ℓ={ell}: {} > {}", c.and_count(), full.and_count());
            check_narrow(&c, w, ell, |y, mask| {
                let v = r.truncate(y, f as u8);
                let out = if r.to_signed(v) >= 0 { v } else { r.truncate(v.wrapping_mul(a), 16) };
                r.reduce(out.wrapping_sub(mask))
            });
        }
        // Narrowing saves the product's high bits: at (30, 45, 12, 0.01) under 70 % of the ANDs
        // (231 of 336).
        let r = Ring::new(45);
        let a = r.to_signed(r.encode(0.01, 16).unwrap());
        let (narrow, full) = (leaky_relu_trunc_mask_narrow(30, 45, 12, a, 16), leaky_relu_trunc_mask(45, 12, a, 16));
        assert!(10 * narrow.and_count() < 7 * full.and_count(), "{} vs {}", narrow.and_count(), full.and_count());
    }

    #[test]
    fn narrow_clip_equals_the_clamp_of_the_narrowed_value() {
        for (w, ell, f, lo, hi) in [
            (10u32, 16u8, 4u32, Some(0i64), Some(20i64)),
            (30, 41, 12, Some(-3000), None),
            (44, 61, 13, None, Some(7 << 13)),
        ] {
            let r = Ring::new(ell);
            let c = clip_trunc_mask_narrow(w, ell as u32, f, lo, hi);
            check_narrow(&c, w, ell, |y, mask| {
                let z = r.to_signed(r.truncate(y, f as u8));
                let z = lo.map_or(z, |l| z.max(l));
                let z = hi.map_or(z, |h| z.min(h));
                r.reduce(r.from_signed(z).wrapping_sub(mask))
            });
        }
    }

    #[test]
    fn relu_with_truncation_and_mask_agrees_with_integers() {
        for (ell, f) in [(16u8, 4u32), (41, 12), (61, 12)] {
            let r = Ring::new(ell);
            let c = relu_trunc_mask(ell as u32, f);
            let vals = edge_and_random(ell, 40);
            for &y in &vals {
                for &share in vals.iter().step_by(5) {
                    let mask = share.rotate_left(7) & r.mask();
                    let (y_s, y_c) = (share, r.reduce(y.wrapping_sub(share)));
                    let want =
                        r.reduce(r.truncate(if r.to_signed(y) >= 0 { y } else { 0 }, f as u8).wrapping_sub(mask));
                    assert_eq!(c.eval_u64(&[y_s, y_c, mask]), want, "ℓ={ell} f={f} y={}", r.to_signed(y));
                }
            }
        }
    }

    #[test]
    fn pl_sigmoid_with_truncation_and_mask_agrees_with_the_simulator() {
        use crate::eval::ring_ops::pl_sigmoid;
        for (ell, f, s) in [(12u8, 0u32, 4u8), (12, 3, 5), (11, 2, 1), (12, 0, 8), (41, 12, 12), (61, 12, 14)] {
            let r = Ring::new(ell);
            let c = pl_sigmoid_trunc_mask(ell as u32, f, s);
            if (ell, s) == (41, 12) {
                assert_eq!(c.and_count(), 650, "as documented");
            }
            // Every value of the small ring, and edge plus random values of the wide ones.
            let vals: Vec<u64> = if ell <= 12 { (0..1u64 << ell).collect() } else { edge_and_random(ell, 300) };
            for (k, &y) in vals.iter().enumerate() {
                let share = (y.rotate_left(11) ^ k as u64).wrapping_mul(0x9e37_79b9) & r.mask();
                let mask = share.rotate_left(7) & r.mask();
                let (y_s, y_c) = (share, r.reduce(y.wrapping_sub(share)));
                let want = r.reduce(pl_sigmoid::eval(r, r.truncate(y, f as u8), s).wrapping_sub(mask));
                assert_eq!(c.eval_u64(&[y_s, y_c, mask]), want, "ℓ={ell} f={f} s={s} y={}", r.to_signed(y));
            }
        }
    }

    #[test]
    fn pl_gelu_with_truncation_and_mask_agrees_with_the_simulator() {
        use crate::eval::ring_ops::pl_gelu;
        for (ell, f, s) in [(12u8, 0u32, 4u8), (12, 3, 5), (11, 2, 2), (41, 12, 12), (61, 12, 14)] {
            let r = Ring::new(ell);
            let c = pl_gelu_trunc_mask(ell as u32, f, s);
            assert_eq!(c.and_count(), 21 * ell as usize - 5, "ℓ={ell}");
            // Every value of the small rings, and edge plus random values of the wide ones.
            let vals: Vec<u64> = if ell <= 12 { (0..1u64 << ell).collect() } else { edge_and_random(ell, 300) };
            for (k, &y) in vals.iter().enumerate() {
                let share = (y.rotate_left(11) ^ k as u64).wrapping_mul(0x9e37_79b9) & r.mask();
                let mask = share.rotate_left(7) & r.mask();
                let (y_s, y_c) = (share, r.reduce(y.wrapping_sub(share)));
                let want = r.reduce(pl_gelu::eval(r, r.truncate(y, f as u8), s).wrapping_sub(mask));
                assert_eq!(c.eval_u64(&[y_s, y_c, mask]), want, "ℓ={ell} f={f} s={s} y={}", r.to_signed(y));
            }
        }
    }

    #[test]
    fn sign_test_agrees_with_the_ring_primitive() {
        use crate::{CircaVariant, ring::circa_nonnegative};
        let (ell, k) = (40u8, 14u8);
        let r = Ring::new(ell);
        let c = sign_test((ell - k) as u32);
        assert_eq!(c.and_count(), (ell - k) as usize - 1);
        for &x in &edge_and_random(ell, 200) {
            for m in [0u64, 1] {
                let share = x.rotate_left(13) & r.mask();
                let (x_c, x_s) = (share, r.reduce(x.wrapping_sub(share)));
                let bit = c.eval_u64(&[x_c >> k, x_s >> k, m]);
                let want = circa_nonnegative(r, x_c, x_s, k, CircaVariant::PosZero);
                assert_eq!(bit ^ m == 1, want, "x={}", r.to_signed(x));
            }
        }
    }

    #[test]
    fn max_with_truncation_and_mask_agrees_with_integers() {
        let (ell, f, k) = (24u8, 6u32, 4u32);
        let r = Ring::new(ell);
        let c = max_trunc_mask(k, ell as u32, f);
        let vals = edge_and_random(ell, 40);
        for (i, w) in vals.windows(k as usize).enumerate() {
            let shares: Vec<u64> = (0..k as usize).map(|j| vals[(i * 7 + j) % vals.len()]).collect();
            let mut inputs: Vec<u64> = shares.clone();
            inputs.extend(w.iter().zip(&shares).map(|(&y, &s)| r.reduce(y.wrapping_sub(s))));
            let mask = vals[(i * 3) % vals.len()];
            inputs.push(mask);
            let best = w.iter().map(|&y| r.to_signed(r.truncate(y, f as u8))).max().unwrap();
            assert_eq!(c.eval_u64(&inputs), r.reduce(r.from_signed(best).wrapping_sub(mask)), "window {w:?}");
        }
    }

    #[test]
    fn narrow_max_equals_the_max_of_the_narrowed_values() {
        let (w, ell, f, k) = (14u32, 24u8, 6u32, 4u32);
        let (r, narrow) = (Ring::new(ell), Ring::new(w as u8));
        let c = max_trunc_mask_narrow(k, w, ell as u32, f);
        // Inside the narrow range and beyond it.
        let mut vals: Vec<u64> =
            edge_and_random(w as u8, 40).iter().map(|&v| r.from_signed(narrow.to_signed(v))).collect();
        vals.extend(edge_and_random(ell, 20));
        for (i, win) in vals.windows(k as usize).enumerate() {
            let shares: Vec<u64> = (0..k as usize).map(|j| vals[(i * 7 + j) % vals.len()]).collect();
            let mut inputs: Vec<u64> = shares.iter().map(|&s| narrow.reduce(s)).collect();
            inputs.extend(win.iter().zip(&shares).map(|(&y, &s)| narrow.reduce(y.wrapping_sub(s))));
            let mask = vals[(i * 3) % vals.len()];
            inputs.push(mask);
            let best = win
                .iter()
                .map(|&y| r.to_signed(r.truncate(r.from_signed(narrow.to_signed(narrow.reduce(y))), f as u8)))
                .max()
                .unwrap();
            assert_eq!(c.eval_u64(&inputs), r.reduce(r.from_signed(best).wrapping_sub(mask)), "window {win:?}");
        }
    }

    #[test]
    fn clip_and_leaky_relu_agree_with_the_simulator_semantics() {
        let (ell, f) = (32u8, 8u32);
        let r = Ring::new(ell);
        let (lo, hi) = (r.to_signed(r.encode(-1.5, 8).unwrap()), r.to_signed(r.encode(6.0, 8).unwrap()));
        let clip = clip_trunc_mask(ell as u32, f, Some(lo), Some(hi));
        let alpha_q = r.to_signed(r.encode(0.01, crate::eval::LEAKY_ALPHA_BITS).unwrap());
        let leaky = leaky_relu_trunc_mask(ell as u32, f, alpha_q, crate::eval::LEAKY_ALPHA_BITS as u32);
        let vals = edge_and_random(ell, 60);
        for &y in &vals {
            for &share in vals.iter().step_by(7) {
                let mask = share.rotate_left(5) & r.mask();
                let (y_s, y_c) = (share, r.reduce(y.wrapping_sub(share)));
                let z = r.truncate(y, f as u8);
                let want_clip = r.from_signed(r.to_signed(z).clamp(lo, hi));
                assert_eq!(
                    clip.eval_u64(&[y_s, y_c, mask]),
                    r.reduce(want_clip.wrapping_sub(mask)),
                    "clip y={}",
                    r.to_signed(y)
                );
                let a = r.from_signed(alpha_q);
                let want_leaky =
                    if r.to_signed(z) >= 0 { z } else { r.truncate(z.wrapping_mul(a), crate::eval::LEAKY_ALPHA_BITS) };
                assert_eq!(
                    leaky.eval_u64(&[y_s, y_c, mask]),
                    r.reduce(want_leaky.wrapping_sub(mask)),
                    "leaky y={}",
                    r.to_signed(y)
                );
            }
        }
    }

    #[test]
    fn exact_truncation_agrees_with_the_ring_floor_for_every_sharing() {
        for (ell, f) in [(16u8, 4u32), (37, 12), (61, 24)] {
            let r = Ring::new(ell);
            let c = trunc_mask(ell as u32, f);
            assert_eq!(c.and_count(), 2 * (ell as usize - 1));
            let vals = edge_and_random(ell, 40);
            for &y in &vals {
                for &share in vals.iter().step_by(3) {
                    let mask = share.rotate_left(11) & r.mask();
                    let (y_s, y_c) = (share, r.reduce(y.wrapping_sub(share)));
                    let want = r.reduce(r.truncate(y, f as u8).wrapping_sub(mask));
                    assert_eq!(c.eval_u64(&[y_s, y_c, mask]), want, "ℓ={ell} f={f} y={}", r.to_signed(y));
                }
            }
        }
    }

    #[test]
    fn relu_costs_far_less_than_delphis_18_kb() {
        // Half-gates: two 16-byte ciphertexts per AND.
        let c = relu_trunc_mask(61, 12);
        let bytes = 32 * c.and_count();
        assert_eq!(c.and_count(), 60 + 48 + 60);
        assert!(bytes < 18 * 1024, "{bytes} bytes");
    }
}
