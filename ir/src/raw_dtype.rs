//! Element types numpy has no name for: ONNX's 2- and 4-bit integers, 8- and 4-bit floats and
//! bfloat16. `ml_dtypes` (what `onnx` and JAX use for them) saves such arrays in `.npy` as raw
//! bytes (`|V1`, or `|V2` for bfloat16), one element per byte and the 4- and 2-bit ones in its
//! low bits, so a reader must be told the type: a plan records it for each graph input declared
//! with one ([`crate::Graph::raw_inputs`]), and [`crate::npy::decode_npy_as`] reads the bytes as
//! that type.
//!
//! Decoding follows the ONNX specification of each type (docs/IR.md, "Float8 types"): `FN` types
//! have no infinities, `FNUZ` types no negative zero and a single NaN (`0x80`); E8M0 is a power of
//! two `2^(e − 127)` with NaN at `0xFF`. The values are exact in `f64`.

use serde::{Deserialize, Serialize};

/// An element type that `.npy` stores as raw bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RawDtype {
    /// Signed 2-bit integer, −2..=1.
    Int2,
    /// Unsigned 2-bit integer, 0..=3.
    Uint2,
    /// Signed 4-bit integer, −8..=7.
    Int4,
    /// Unsigned 4-bit integer, 0..=15.
    Uint4,
    /// 4-bit float: sign, 2 exponent bits (bias 1), 1 mantissa bit; ±6 at most, no NaN.
    Float4E2M1,
    /// 8-bit float: 4 exponent bits (bias 7), 3 mantissa bits; ±448, NaN, no infinity.
    Float8E4M3FN,
    /// 8-bit float: 4 exponent bits (bias 8), 3 mantissa bits; ±240, one NaN, no −0.
    Float8E4M3FNUZ,
    /// 8-bit float: 5 exponent bits (bias 15), 2 mantissa bits; IEEE infinities and NaNs.
    Float8E5M2,
    /// 8-bit float: 5 exponent bits (bias 16), 2 mantissa bits; one NaN, no −0.
    Float8E5M2FNUZ,
    /// 8-bit exponent only (a scale): `2^(e − 127)`, NaN at 255.
    Float8E8M0,
    /// The top half of an IEEE single.
    Bfloat16,
}

impl RawDtype {
    /// Every type, in the order above.
    pub const ALL: [RawDtype; 11] = [
        Self::Int2,
        Self::Uint2,
        Self::Int4,
        Self::Uint4,
        Self::Float4E2M1,
        Self::Float8E4M3FN,
        Self::Float8E4M3FNUZ,
        Self::Float8E5M2,
        Self::Float8E5M2FNUZ,
        Self::Float8E8M0,
        Self::Bfloat16,
    ];

    /// ONNX's name of the type (`TensorProto.DataType`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Int2 => "INT2",
            Self::Uint2 => "UINT2",
            Self::Int4 => "INT4",
            Self::Uint4 => "UINT4",
            Self::Float4E2M1 => "FLOAT4E2M1",
            Self::Float8E4M3FN => "FLOAT8E4M3FN",
            Self::Float8E4M3FNUZ => "FLOAT8E4M3FNUZ",
            Self::Float8E5M2 => "FLOAT8E5M2",
            Self::Float8E5M2FNUZ => "FLOAT8E5M2FNUZ",
            Self::Float8E8M0 => "FLOAT8E8M0",
            Self::Bfloat16 => "BFLOAT16",
        }
    }

    /// The type ONNX names `name`, if `.npy` stores it as raw bytes.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// Bytes per element in `.npy` (ml_dtypes keeps one 4- or 2-bit value per byte).
    pub fn bytes(self) -> usize {
        if self == Self::Bfloat16 { 2 } else { 1 }
    }

    /// Whether the type holds integers.
    pub fn is_integer(self) -> bool {
        matches!(self, Self::Int2 | Self::Uint2 | Self::Int4 | Self::Uint4)
    }

    /// The value of one element stored as `bits` (one byte, or bfloat16's two bytes read
    /// little-endian). NaN and the infinities come out as such.
    pub fn decode(self, bits: u16) -> f64 {
        let b = bits as u8;
        match self {
            Self::Int2 => f64::from(((b << 6) as i8) >> 6),
            Self::Uint2 => f64::from(b & 0b11),
            Self::Int4 => f64::from(((b << 4) as i8) >> 4),
            Self::Uint4 => f64::from(b & 0xF),
            Self::Float4E2M1 => minifloat(b & 0xF, 2, 1, 1, Special::None),
            Self::Float8E4M3FN => minifloat(b, 4, 3, 7, Special::AllOnesNan),
            Self::Float8E4M3FNUZ => minifloat(b, 4, 3, 8, Special::NegativeZeroNan),
            Self::Float8E5M2 => minifloat(b, 5, 2, 15, Special::Ieee),
            Self::Float8E5M2FNUZ => minifloat(b, 5, 2, 16, Special::NegativeZeroNan),
            Self::Float8E8M0 => {
                if b == 0xFF {
                    f64::NAN
                } else {
                    (f64::from(b) - 127.0).exp2()
                }
            }
            Self::Bfloat16 => f64::from(f32::from_bits(u32::from(bits) << 16)),
        }
    }
}

impl std::fmt::Display for RawDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a small float type keeps NaN and the infinities.
#[derive(Clone, Copy)]
enum Special {
    /// Every bit pattern is a number (FLOAT4E2M1).
    None,
    /// IEEE: the largest exponent is infinity (mantissa 0) or NaN.
    Ieee,
    /// NaN is the pattern with every exponent and mantissa bit set; no infinity.
    AllOnesNan,
    /// NaN is `1000…0` (the negative zero's pattern); no infinity.
    NegativeZeroNan,
}

/// A sign bit, `e` exponent bits (bias `bias`) and `m` mantissa bits in the low bits of `b`;
/// exponent 0 is subnormal.
fn minifloat(b: u8, e: u32, m: u32, bias: i32, special: Special) -> f64 {
    let sign = (b >> (e + m)) & 1;
    let exp = i32::from((b >> m) & ((1 << e) - 1) as u8);
    let man = f64::from(b & ((1 << m) - 1) as u8);
    let top = (1 << e) - 1;
    match special {
        Special::Ieee if exp == top => {
            return if man == 0.0 { if sign == 1 { f64::NEG_INFINITY } else { f64::INFINITY } } else { f64::NAN };
        }
        Special::AllOnesNan if exp == top && man == f64::from((1u32 << m) - 1) => return f64::NAN,
        Special::NegativeZeroNan if sign == 1 && exp == 0 && man == 0.0 => return f64::NAN,
        _ => {}
    }
    let scale = f64::from(1u32 << m);
    let magnitude = if exp == 0 {
        man / scale * f64::from(1 - bias).exp2()
    } else {
        (1.0 + man / scale) * f64::from(exp - bias).exp2()
    };
    if sign == 1 { -magnitude } else { magnitude }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ONNX specification's landmarks of each type: largest finite value, smallest
    /// subnormal, and where NaN and infinity live.
    #[test]
    fn each_type_has_the_specifications_extremes() {
        use RawDtype::*;
        let max = |t: RawDtype| (0..=255u16).map(|b| t.decode(b)).filter(|v| v.is_finite()).fold(f64::MIN, f64::max);
        let tiny = |t: RawDtype| (0..=255u16).map(|b| t.decode(b)).filter(|&v| v > 0.0).fold(f64::MAX, f64::min);
        assert_eq!((max(Float8E4M3FN), tiny(Float8E4M3FN)), (448.0, 2f64.powi(-9)));
        assert_eq!((max(Float8E4M3FNUZ), tiny(Float8E4M3FNUZ)), (240.0, 2f64.powi(-10)));
        assert_eq!((max(Float8E5M2), tiny(Float8E5M2)), (57344.0, 2f64.powi(-16)));
        assert_eq!((max(Float8E5M2FNUZ), tiny(Float8E5M2FNUZ)), (57344.0, 2f64.powi(-17)));
        assert_eq!((max(Float4E2M1), tiny(Float4E2M1)), (6.0, 0.5));
        assert_eq!((max(Float8E8M0), tiny(Float8E8M0)), (2f64.powi(127), 2f64.powi(-127)));
        assert!(Float8E4M3FN.decode(0x7F).is_nan() && Float8E4M3FN.decode(0xFF).is_nan());
        assert_eq!(Float8E4M3FN.decode(0x7E), 448.0);
        assert!(Float8E4M3FNUZ.decode(0x80).is_nan() && Float8E5M2FNUZ.decode(0x80).is_nan());
        assert_eq!(Float8E5M2.decode(0x7C), f64::INFINITY);
        assert_eq!(Float8E5M2.decode(0xFC), f64::NEG_INFINITY);
        assert!(Float8E5M2.decode(0x7D).is_nan() && Float8E8M0.decode(0xFF).is_nan());
        // Nothing else is NaN or infinite.
        let specials = |t: RawDtype| (0..=255u16).filter(|&b| !t.decode(b).is_finite()).count();
        assert_eq!(
            [Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ, Float8E8M0, Float4E2M1].map(specials),
            [2, 1, 8, 1, 1, 0]
        );
        assert_eq!(Bfloat16.decode(0x3F80), 1.0);
        assert_eq!(Bfloat16.decode(0xC0A0), -5.0);
    }

    #[test]
    fn small_integers_are_the_low_bits_sign_extended() {
        use RawDtype::*;
        let all = |t: RawDtype, n: u16| (0..n).map(|b| t.decode(b) as i64).collect::<Vec<_>>();
        assert_eq!(all(Int2, 4), [0, 1, -2, -1]);
        assert_eq!(all(Uint2, 4), [0, 1, 2, 3]);
        assert_eq!(all(Int4, 16), [0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1]);
        assert_eq!(all(Uint4, 16), (0..16).collect::<Vec<_>>());
        // ml_dtypes writes int4's −8 as 0x08 and numpy's int8 view would give 0xF8: both read −8.
        assert_eq!(Int4.decode(0xF8), -8.0);
        assert_eq!(RawDtype::from_name("float8e4m3fn"), Some(Float8E4M3FN));
    }
}
