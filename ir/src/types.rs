//! Value types: element type (float before quantisation), shape, and domain.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Element type of a tensor value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ElemType {
    /// IEEE single precision; every activation before `quantize`.
    F32,
    /// Two's-complement fixed point in the plan's ring Z_2^ℓ with `frac_bits` fractional bits.
    Fixed {
        /// Fractional bits `s`: real `x` is held as `round(x·2^s)`.
        frac_bits: u8,
    },
    /// Signed 64-bit integer (only class indices from a client-side `ArgMax`).
    I64,
}

impl fmt::Display for ElemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElemType::F32 => f.write_str("f32"),
            ElemType::Fixed { frac_bits } => write!(f, "fx{frac_bits}"),
            ElemType::I64 => f.write_str("i64"),
        }
    }
}

/// Who can see a value during the two-party execution.
///
/// Domains change only through explicit protocol steps (today: [`crate::Op::Reveal`]); every
/// other op derives its output's domain from its operands by [`Domain::join`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Domain {
    /// Known to both parties (part of the plan).
    Public,
    /// Known to the client only (its input, and what is revealed to it).
    Client,
    /// Known to the server only (weights).
    Server,
    /// Additively shared in Z_2^ℓ: neither party knows it.
    Shared,
}

impl Domain {
    /// The domain of a value computed from values in `self` and `other` without a protocol
    /// step: public operands do not change the other's domain, a party's own values stay its
    /// own, and anything mixing the two parties' secrets is shared.
    pub fn join(self, other: Domain) -> Domain {
        use Domain::*;
        match (self, other) {
            (Public, d) | (d, Public) => d,
            (a, b) if a == b => a,
            _ => Shared,
        }
    }

    /// The domain as printed in the text form (`public`, `client`, `server`, `shared`).
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Public => "public",
            Domain::Client => "client",
            Domain::Server => "server",
            Domain::Shared => "shared",
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Element type and static shape of a tensor. Shapes are always fully static in the IR.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TensorType {
    /// Element type.
    pub elem: ElemType,
    /// Dimensions, outermost first (NCHW for images); empty for a scalar.
    pub shape: Vec<usize>,
}

impl TensorType {
    /// An `f32` tensor type of `shape`.
    pub fn f32(shape: Vec<usize>) -> Self {
        Self { elem: ElemType::F32, shape }
    }

    /// Number of elements (1 for a scalar).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether some dimension is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.elem)?;
        for (i, d) in self.shape.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}
