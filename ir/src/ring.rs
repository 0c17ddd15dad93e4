//! Arithmetic in the ring Z_2^ℓ (ℓ ≤ 61, stored in `u64`), and the share-level primitives whose
//! results depend on how a value is split: local truncation and Circa's truncated sign test.
//!
//! These functions are the single definition of those semantics: the fixed-point simulator
//! calls them on simulated shares, and the runtime must compute exactly the same on real ones.

use crate::op::CircaVariant;

/// The ring Z_2^bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ring {
    /// Width ℓ in bits, 2 ≤ ℓ ≤ [`MAX_RING_BITS`].
    pub bits: u8,
}

/// Largest ring width: the BFV plaintext modulus 2^ℓ must stay below 2^62 (docs/protocols.md).
pub const MAX_RING_BITS: u8 = 61;

impl Ring {
    /// The ring Z_2^`bits`; panics unless 2 ≤ `bits` ≤ [`MAX_RING_BITS`] (a verified graph's width always is).
    pub fn new(bits: u8) -> Self {
        assert!((2..=MAX_RING_BITS).contains(&bits), "ring width {bits} out of range");
        Self { bits }
    }

    /// `2^ℓ − 1`: the low ℓ bits set.
    pub fn mask(self) -> u64 {
        (1u64 << self.bits) - 1
    }

    /// `x mod 2^ℓ`.
    pub fn reduce(self, x: u64) -> u64 {
        x & self.mask()
    }

    /// The ring element of a signed integer.
    pub fn from_signed(self, v: i64) -> u64 {
        (v as u64) & self.mask()
    }

    /// The two's-complement value of a ring element, in `[−2^(ℓ−1), 2^(ℓ−1))`.
    pub fn to_signed(self, x: u64) -> i64 {
        let x = self.reduce(x);
        if x >> (self.bits - 1) == 1 { (x as i64) - (1i64 << self.bits) } else { x as i64 }
    }

    /// `round(x · 2^frac)` as a ring element, or `None` if it does not fit in ℓ − 1 bits + sign.
    pub fn encode(self, x: f64, frac: u8) -> Option<u64> {
        let v = (x * (frac as f64).exp2()).round();
        let lim = ((self.bits - 1) as f64).exp2();
        (v.is_finite() && v > -lim && v < lim).then(|| self.from_signed(v as i64))
    }

    /// The real value of a ring element at scale `frac`.
    pub fn decode(self, x: u64, frac: u8) -> f64 {
        self.to_signed(x) as f64 / (frac as f64).exp2()
    }

    /// `⌊x / 2^bits⌋` on the signed value (what a garbled circuit computes: the shift is wiring).
    pub fn truncate(self, x: u64, bits: u8) -> u64 {
        self.from_signed(self.to_signed(x) >> bits)
    }
}

/// Local truncation of shares `x = x_c + x_s` (SecureML): the client shifts its share, the server
/// shifts the negation of its own and negates back. The shares reconstruct `⌊x / 2^k⌋` or one
/// more, except with probability about `2^(bits(|x|) + 1 − ℓ)`, when they are off by `2^(ℓ−k)`.
pub fn local_truncate(ring: Ring, x_c: u64, x_s: u64, k: u8) -> (u64, u64) {
    (truncate_share(ring, x_c, k, true), truncate_share(ring, x_s, k, false))
}

/// One party's half of [`local_truncate`]: the client's share `x` shifted right by `k`, or the
/// server's negated, shifted and negated back (so the server rounds up), in `ring`.
pub fn truncate_share(ring: Ring, x: u64, k: u8, client: bool) -> u64 {
    if client { ring.reduce(x) >> k } else { ring.reduce((ring.reduce(x.wrapping_neg()) >> k).wrapping_neg()) }
}

/// What a garbled circuit reading stochastically truncated shares reconstructs
/// ([`crate::TruncMode::Stochastic`]): each party's share read in `w` bits and shifted by `k`
/// ([`truncate_share`]), added modulo `2^(w − k)` and taken as a signed `(w − k)`-bit value.
/// For `|x| < 2^(w−1) − 2^k` (`x = x_c + x_s` as a signed `w`-bit value) it is `⌊x / 2^k⌋` or
/// one more, never anything else: a local truncation's wrap is a multiple of `2^(w − k)`.
pub fn stochastic_truncate(w: u8, x_c: u64, x_s: u64, k: u8) -> i64 {
    let (ring, out) = (Ring::new(w), Ring::new(w - k));
    let (c, s) = (truncate_share(ring, x_c, k, true), truncate_share(ring, x_s, k, false));
    out.to_signed(out.reduce(c.wrapping_add(s)))
}

/// Circa's sign test on shares `x = x_c + x_s` with their low `drop_bits` bits dropped: `true`
/// when the circuit reads the value as non-negative. With `PosZero` the test is on `x` itself,
/// so some `x ∈ [0, 2^k)` read as negative (probability `(2^k − 1 − x)/2^k` with a uniform mask,
/// "about 1 − x/2^k", docs/fixed-point.md); with `NegPass` the client first adds `2^k`, so some
/// `x ∈ [−2^k, 0)` read as non-negative instead (probability `(x + 2^k + 1)/2^k`).
pub fn circa_nonnegative(ring: Ring, x_c: u64, x_s: u64, drop_bits: u8, variant: CircaVariant) -> bool {
    let offset = match variant {
        CircaVariant::PosZero => 0,
        CircaVariant::NegPass => 1u64 << drop_bits,
    };
    let t_c = ring.reduce(x_c.wrapping_add(offset)) >> drop_bits;
    let t_s = ring.reduce(x_s) >> drop_bits;
    let width = ring.bits - drop_bits;
    let sum = t_c.wrapping_add(t_s) & ((1u64 << width) - 1);
    sum >> (width - 1) == 0
}

/// Whether `x` lies in the window where Circa's sign test errs by design (docs/decisions.md):
/// `0 ≤ x < 2^k` with `PosZero`, `−2^k ≤ x < 0` with `NegPass`.
pub fn circa_near_zero(x: i64, drop_bits: u8, variant: CircaVariant) -> bool {
    let w = 1i64 << drop_bits;
    match variant {
        CircaVariant::PosZero => (0..w).contains(&x),
        CircaVariant::NegPass => (-w..0).contains(&x),
    }
}

/// The exact probability, over a uniform client share, that [`circa_nonnegative`] in `ring`
/// (the sign test's ring Z_2^m, `m = ring.bits`) reads the integer `x` wrongly, for any `x`
/// (also one that does not fit Z_2^m). With `u = (x + offset) mod 2^m`, `h = ⌊u / 2^k⌋` and
/// `u₀ = u mod 2^k`, the truncated shares sum to `h − c (mod 2^(m−k))`, where the lost carry `c`
/// is 1 with probability `(2^k − 1 − u₀)/2^k`; the test reads "non-negative" always for
/// `0 < h < 2^(m−k−1)`, never above, with probability `1 − P(c)` at `h = 0` and `P(c)` at
/// `h = 2^(m−k−1)` (docs/decisions.md, "Circa's sign-test ring").
pub fn circa_fault_probability(ring: Ring, x: i64, drop_bits: u8, variant: CircaVariant) -> f64 {
    let k = u32::from(drop_bits);
    let offset = match variant {
        CircaVariant::PosZero => 0,
        CircaVariant::NegPass => 1i64 << k,
    };
    let u = ring.from_signed(x.wrapping_add(offset));
    let (h, u0) = (u >> k, u & ((1u64 << k) - 1));
    let carry = ((1u64 << k) - 1 - u0) as f64 / (k as f64).exp2();
    let half = 1u64 << (u32::from(ring.bits) - k - 1);
    let pass = match h {
        0 => 1.0 - carry,
        h if h < half => 1.0,
        h if h == half => carry,
        _ => 0.0,
    };
    if x >= 0 { 1.0 - pass } else { pass }
}

/// The largest probability, over integers `|x| ≤ bound` outside the [`circa_near_zero`] window,
/// that Circa's sign test in `ring` (Z_2^m) reads `x` wrongly: its wrap-around fault rate. It is
/// 0 while `bound ≤ 2^(m−1) − 2^k + 1` (`NegPass`: `bound + 2^k < 2^(m−1)`), grows by 2^−k per
/// unit of `bound` over the last `2^k` below 2^(m−1), and is 1 once `bound ≥ 2^(m−1)` (the value
/// does not fit). Outside
/// the window [`circa_fault_probability`] is non-decreasing in `|x|` for `|x| < 2^(m−1)`, so the
/// maximum is at `±bound`.
pub fn circa_wrap_probability(ring: Ring, bound: u64, drop_bits: u8, variant: CircaVariant) -> f64 {
    if bound >= 1u64 << (ring.bits - 1) {
        return 1.0;
    }
    let b = bound as i64;
    [-b, b]
        .into_iter()
        .filter(|&x| !circa_near_zero(x, drop_bits, variant))
        .map(|x| circa_fault_probability(ring, x, drop_bits, variant))
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator for share masks in these tests.
    fn masks(n: usize, seed: u64) -> impl Iterator<Item = u64> {
        let mut s = seed;
        (0..n).map(move |_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            s ^ (s >> 29)
        })
    }

    #[test]
    fn signed_round_trip_and_edges() {
        let r = Ring::new(20);
        for v in [0i64, 1, -1, (1 << 19) - 1, -(1 << 19)] {
            assert_eq!(r.to_signed(r.from_signed(v)), v);
        }
        assert_eq!(r.encode(1.5, 4), Some(24));
        assert_eq!(r.to_signed(r.encode(-1.5, 4).unwrap()), -24);
        assert_eq!(r.encode((1 << 15) as f64, 4), None, "2^19 does not fit in 19 bits + sign");
        assert_eq!(r.to_signed(r.truncate(r.from_signed(-5), 1)), -3, "floor, not toward zero");
    }

    #[test]
    fn local_truncation_is_floor_or_one_more() {
        let r = Ring::new(40);
        for (i, m) in masks(20000, 7).enumerate() {
            let x = (i as i64 * 7919 % 200_001) - 100_000;
            let (x_c, x_s) = (r.reduce(m), r.reduce(r.from_signed(x).wrapping_sub(m)));
            let (a, b) = local_truncate(r, x_c, x_s, 6);
            let got = r.to_signed(a.wrapping_add(b));
            let floor = x >> 6;
            assert!(got == floor || got == floor + 1, "x={x} got={got} floor={floor}");
        }
    }

    #[test]
    fn stochastic_truncation_rounds_up_exactly_at_the_fraction_rate_and_never_wraps() {
        // Every mask of a 10-bit ring, for every value the width allows: the result is ⌊x/8⌋ or
        // one more, one more for exactly (x mod 8)/8 of the masks (unbiased), never a wrap.
        let (w, k) = (10u8, 3u8);
        let r = Ring::new(w);
        let lim = (1i64 << (w - 1)) - (1 << k);
        let mut wraps_locally = 0;
        for x in -lim..lim {
            let mut up = 0u64;
            for m in 0..1u64 << w {
                let (x_c, x_s) = (m, r.reduce(r.from_signed(x).wrapping_sub(m)));
                let got = stochastic_truncate(w, x_c, x_s, k);
                assert!(got == x >> k || got == (x >> k) + 1, "x={x} mask={m} got={got}");
                up += u64::from(got != x >> k);
                let (a, b) = local_truncate(r, x_c, x_s, k);
                wraps_locally += usize::from(!(0..=1).contains(&(r.to_signed(a.wrapping_add(b)) - (x >> k))));
            }
            assert_eq!(up, (x.rem_euclid(1 << k) as u64) << (w - k), "x={x}: rounds up for (x mod 2^k)/2^k of masks");
        }
        assert!(
            wraps_locally > 0,
            "the same shifts summed in the w-bit ring do wrap: the narrower sum is what saves them"
        );
    }

    #[test]
    fn circa_faults_only_small_positives_with_the_formula_rate() {
        let r = Ring::new(32);
        let k = 8;
        let trials = 20000;
        for (x, variant) in [(64i64, CircaVariant::PosZero), (-64, CircaVariant::NegPass)] {
            let faults = masks(trials, x as u64)
                .filter(|&m| {
                    let (x_c, x_s) = (r.reduce(m), r.reduce(r.from_signed(x).wrapping_sub(m)));
                    circa_nonnegative(r, x_c, x_s, k, variant) != (x >= 0)
                })
                .count();
            // PosZero at x = 64 reads negative when the carry is lost: 1 − 64/256 = 0.75.
            // NegPass at x = −64 tests v = x + 256 = 192 ∈ [0, 256), which reads non-negative (the
            // fault) unless the carry is lost: 192/256 = 0.75, i.e. (x + 2^k)/2^k.
            let p = 0.75;
            let rate = faults as f64 / trials as f64;
            let sd = (p * (1.0 - p) / trials as f64).sqrt();
            assert!((rate - p).abs() < 5.0 * sd, "{variant:?} x={x}: rate {rate}, expected {p}");
        }
        // Far from zero the test never errs.
        for m in masks(1000, 3) {
            for x in [300i64, 100_000, -300, -100_000] {
                let (x_c, x_s) = (r.reduce(m), r.reduce(r.from_signed(x).wrapping_sub(m)));
                assert_eq!(circa_nonnegative(r, x_c, x_s, k, CircaVariant::PosZero), x >= 0, "x={x}");
            }
        }
    }
    /// Every client share of a small ring, for every value in a range wider than the sign
    /// test's ring: the fault count over all shares is exactly the formula's probability, and
    /// the worst case over `|x| ≤ bound` is [`circa_wrap_probability`].
    #[test]
    fn circa_fault_probability_is_exact_over_every_share() {
        let (plan, k) = (Ring::new(10), 3u8);
        for m in [6u8, 8] {
            let test = Ring::new(m);
            for variant in [CircaVariant::PosZero, CircaVariant::NegPass] {
                let mut worst = vec![0.0f64; 1 << m];
                for x in -(1i64 << (m - 1))..(1i64 << (m - 1)) {
                    let faults = (0..1u64 << plan.bits)
                        .filter(|&c| {
                            let s = plan.reduce(plan.from_signed(x).wrapping_sub(c));
                            circa_nonnegative(test, c, s, k, variant) != (x >= 0)
                        })
                        .count();
                    let p = circa_fault_probability(test, x, k, variant);
                    assert_eq!(faults as f64, p * plan.mask().wrapping_add(1) as f64, "m={m} {variant:?} x={x}");
                    if !circa_near_zero(x, k, variant) {
                        let b = x.unsigned_abs() as usize;
                        worst[b] = worst[b].max(p);
                    }
                }
                let mut running = 0.0f64;
                for (b, w) in worst.iter().enumerate().take(1 << (m - 1)) {
                    running = running.max(*w);
                    assert_eq!(circa_wrap_probability(test, b as u64, k, variant), running, "m={m} {variant:?} b={b}");
                }
                assert_eq!(circa_wrap_probability(test, 1 << (m - 1), k, variant), 1.0);
                let clear = (1u64 << (m - 1)) - (1 << k) - 1 + 2 * u64::from(variant == CircaVariant::PosZero);
                assert_eq!(circa_wrap_probability(test, clear, k, variant), 0.0, "m={m} {variant:?}");
                assert!(circa_wrap_probability(test, clear + 1, k, variant) > 0.0, "m={m} {variant:?}");
            }
        }
    }
}
