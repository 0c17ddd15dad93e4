//! The small enums of op attributes: how a rounding picks an integer, where a truncation runs,
//! which way a Circa ReLU errs.

use serde::{Deserialize, Serialize};

/// How [`crate::Op::Round`] picks an integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoundMode {
    /// The nearest integer, ties to the even one (ONNX `Round`, `QuantizeLinear`).
    HalfEven,
    /// The largest integer not above (ONNX `Floor`).
    Floor,
    /// The smallest integer not below (ONNX `Ceil`).
    Ceil,
    /// Toward zero (ONNX `Cast` from a float to an integer type).
    TowardZero,
}

impl RoundMode {
    /// The name the text IR prints and reads.
    pub fn as_str(self) -> &'static str {
        match self {
            RoundMode::HalfEven => "half_even",
            RoundMode::Floor => "floor",
            RoundMode::Ceil => "ceil",
            RoundMode::TowardZero => "toward_zero",
        }
    }

    /// [`RoundMode::as_str`]'s inverse.
    pub fn parse(s: &str) -> Option<RoundMode> {
        [RoundMode::HalfEven, RoundMode::Floor, RoundMode::Ceil, RoundMode::TowardZero]
            .into_iter()
            .find(|m| m.as_str() == s)
    }

    /// `x` rounded (reals).
    pub fn apply(self, x: f64) -> f64 {
        match self {
            RoundMode::HalfEven => x.round_ties_even(),
            RoundMode::Floor => x.floor(),
            RoundMode::Ceil => x.ceil(),
            RoundMode::TowardZero => x.trunc(),
        }
    }
}

/// Where a truncation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TruncMode {
    /// Fused into the following garbled circuit: exact floor division.
    Exact,
    /// Each party shifts its own share (SecureML): off by at most one, wraps with small probability.
    Local,
    /// Fused into the following garbled ReLU or MaxPool (`--stochastic-truncation`), which reads
    /// the shares shifted: each party takes its share in the circuit's width `w` (the narrowed
    /// one, [`crate::Graph::narrow_bits`], or ℓ) and shifts it as [`TruncMode::Local`] does, and
    /// the circuit adds the two in `w − bits` bits. The result is `⌊x / 2^bits⌋` or one more
    /// (one more with probability `(x mod 2^bits) / 2^bits`: unbiased rounding), and it cannot
    /// wrap, because the circuit computes modulo `2^(w − bits)`, where a local truncation's wrap
    /// vanishes. The circuit reads `bits` fewer bits per share: `bits` fewer AND gates and
    /// server labels per element than [`TruncMode::Exact`] (docs/decisions.md, "Stochastic
    /// truncation in garbled circuits").
    Stochastic,
}

/// Which way a stochastic ReLU errs (docs/fixed-point.md, Circa).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CircaVariant {
    /// Small positive values may be read as negative and become 0.
    PosZero,
    /// Small negative values may be read as positive and pass through.
    NegPass,
}

impl CircaVariant {
    /// The variant as printed in the text form (`pos-zero`, `neg-pass`).
    pub fn as_str(self) -> &'static str {
        match self {
            CircaVariant::PosZero => "pos-zero",
            CircaVariant::NegPass => "neg-pass",
        }
    }
}

/// A floating-point type's grid that [`crate::Op::Round`] rounds to instead of the integers: a
/// `Cast` to an 8- or 4-bit float type or to FLOAT8E8M0, a `QuantizeLinear` to an 8-bit float.
/// The grid holds `0` and, for every exponent `e ≥ min_exp`, the multiples of `2^(e − mantissa)`
/// in `[2^e, 2^(e+1)]`, and below `2^min_exp` the multiples of `2^(min_exp − mantissa)` (the
/// subnormals), with either sign; the op's bounds are the type's largest finite value.
/// A value is rounded onto it by the op's [`RoundMode`] (ONNX: to nearest, ties to even; FLOAT8E8M0
/// by its `round_mode`) and clamped to the bounds (saturated).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FloatGrid {
    /// Explicit mantissa bits (3 for E4M3, 2 for E5M2, 1 for E2M1, 0 for E8M0).
    pub mantissa: u8,
    /// The smallest normal exponent (−6 for E4M3FN, −14 for E5M2, 0 for E2M1, −127 for E8M0).
    pub min_exp: i16,
    /// What the float semantics make of a value beyond the bounds: ONNX's `saturate = 0` gives
    /// NaN or an infinity. Veil's fixed-point values are finite, so there they saturate.
    pub overflow: Overflow,
}

/// What a [`FloatGrid`] rounding makes of a value beyond its type's largest finite value, in
/// float semantics (in fixed point it always saturates).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Overflow {
    /// The largest finite value of that sign (ONNX's default, `saturate = 1`); NaN stays NaN.
    Saturate,
    /// As [`Overflow::Saturate`], for a type without NaN (FLOAT4E2M1): NaN becomes 0, as a
    /// saturating cast to an integer makes it.
    SaturateNoNan,
    /// NaN (`saturate = 0` for the types without infinities).
    Nan,
    /// An infinity of that sign (`saturate = 0` for FLOAT8E5M2).
    Infinity,
}

impl FloatGrid {
    /// The text IR's form, `m3e-6`, with `/nan` or `/inf` for a non-saturating overflow.
    pub fn as_text(self) -> String {
        let tail = match self.overflow {
            Overflow::Saturate => "",
            Overflow::SaturateNoNan => "/nonan",
            Overflow::Nan => "/nan",
            Overflow::Infinity => "/inf",
        };
        format!("m{}e{}{tail}", self.mantissa, self.min_exp)
    }

    /// [`FloatGrid::as_text`]'s inverse.
    pub fn parse(s: &str) -> Option<FloatGrid> {
        let (body, overflow) = match s.split_once('/') {
            None => (s, Overflow::Saturate),
            Some((b, "nan")) => (b, Overflow::Nan),
            Some((b, "inf")) => (b, Overflow::Infinity),
            Some((b, "nonan")) => (b, Overflow::SaturateNoNan),
            _ => return None,
        };
        let (m, e) = body.strip_prefix('m')?.split_once('e')?;
        Some(FloatGrid { mantissa: m.parse().ok()?, min_exp: e.parse().ok()?, overflow })
    }

    /// `x` rounded onto the grid by `mode` (reals; the bounds are the caller's). NaN and
    /// infinities stay as they are.
    pub fn round(self, x: f64, mode: RoundMode) -> f64 {
        if !x.is_finite() || x == 0.0 {
            return x;
        }
        let e = (x.abs().to_bits() >> 52) as i32 - 1023;
        let e = if x.abs() < f64::MIN_POSITIVE { x.abs().log2().floor() as i32 } else { e };
        let q = f64::from(e.max(i32::from(self.min_exp)) - i32::from(self.mantissa)).exp2();
        mode.apply(x / q) * q
    }
}
