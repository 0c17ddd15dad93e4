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
