//! Compilation options shared by the passes.

use std::collections::BTreeMap;

use veil_ir::{CircaVariant, Tensor};

/// How a ReLU is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Exact ReLU in a garbled circuit.
    Relu,
    /// Circa's stochastic ReLU (sign test on truncated shares).
    Circa,
    /// The polynomial of [`Options::poly`].
    Poly,
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "relu" => Ok(Activation::Relu),
            "circa" => Ok(Activation::Circa),
            "poly" => Ok(Activation::Poly),
            _ => Err(format!("unknown activation {s:?} (expected relu, circa or poly)")),
        }
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Activation::Relu => "relu",
            Activation::Circa => "circa",
            Activation::Poly => "poly",
        })
    }
}

/// What `assign_protocols` minimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Objective {
    /// Predicted online latency, then total.
    Online,
    /// Predicted offline + online latency, then online.
    Total,
}

impl std::str::FromStr for Objective {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "online" => Ok(Objective::Online),
            "total" => Ok(Objective::Total),
            _ => Err(format!("unknown objective {s:?} (expected online or total)")),
        }
    }
}

/// How dense layers' offline correlations are produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinearChoice {
    /// By the cost model, per layer.
    Auto,
    /// Always HE.
    He,
    /// OT for every dense layer (convolutions keep HE).
    Ot,
}

impl std::str::FromStr for LinearChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(LinearChoice::Auto),
            "he" => Ok(LinearChoice::He),
            "ot" => Ok(LinearChoice::Ot),
            _ => Err(format!("unknown choice {s:?} (expected auto, he or ot)")),
        }
    }
}

/// How exact ReLUs with a fused truncation run: garbled circuits or the OT comparison protocol
/// (other non-linear layers always use garbled circuits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonlinearChoice {
    /// By the cost model, per layer.
    Auto,
    /// Always a garbled circuit (the default).
    Gc,
    /// Over OT for every ReLU with a fused exact truncation.
    Ot,
}

impl std::str::FromStr for NonlinearChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(NonlinearChoice::Auto),
            "gc" => Ok(NonlinearChoice::Gc),
            "ot" => Ok(NonlinearChoice::Ot),
            _ => Err(format!("unknown choice {s:?} (expected auto, gc or ot)")),
        }
    }
}

/// Everything a user can ask of the compiler.
#[derive(Clone, Debug)]
pub struct Options {
    /// Policy for every ReLU not named in `layer_activation`.
    pub activation: Activation,
    /// Per-node overrides, by ONNX node name.
    pub layer_activation: BTreeMap<String, Activation>,
    /// `[a, b, c]` of the replacement polynomial a·x² + b·x + c.
    pub poly: [f32; 3],
    /// Circa's dropped low bits (`None`: chosen per layer).
    pub drop_bits: Option<u8>,
    /// Without `drop_bits`, each Circa layer drops `s − circa_error_bits` bits of its scale-`s`
    /// operand, so its sign test may err only on values below 2^−circa_error_bits.
    pub circa_error_bits: u8,
    /// Which way Circa's sign test may err (`PosZero`: the default).
    pub circa_variant: CircaVariant,
    /// Fractional bits F of activations and weights.
    pub frac_bits: u8,
    /// Ring width ℓ (`None`: chosen by `quantize`).
    pub ring_bits: Option<u8>,
    /// Calibration inputs for range analysis (empty: worst-case bounds).
    pub calibration: Vec<Tensor>,
    /// Without calibration, the bound assumed on `|input|`.
    pub input_bound: f32,
    /// The network `assign_protocols` plans for.
    pub network: crate::cost::Network,
    /// What `assign_protocols` minimises.
    pub objective: Objective,
    /// Dense layers' offline protocol (`Auto`: the cost model decides).
    pub linear_offline: LinearChoice,
    /// Exact ReLUs' protocol (`Gc`: garbled circuits, the default; `Auto`: the cost model).
    pub nonlinear: NonlinearChoice,
    /// Every truncation exact, in a garbled circuit (fused into the next one where it can be,
    /// else its own): no local share truncation, whose ±1 error depends on the secret value and
    /// reaches the revealed output; Circa, whose sign faults do the same, is refused. The
    /// output is then a deterministic function of the input and weights (docs/threat-model.md).
    pub exact_truncation: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            activation: Activation::Relu,
            layer_activation: BTreeMap::new(),
            poly: [1.0, 1.0, 0.0],
            drop_bits: None,
            circa_error_bits: crate::quantize::CIRCA_ERROR_BITS,
            circa_variant: CircaVariant::PosZero,
            frac_bits: 12,
            ring_bits: None,
            calibration: Vec::new(),
            input_bound: 1.0,
            network: crate::cost::Network::LAN,
            objective: Objective::Online,
            linear_offline: LinearChoice::Auto,
            nonlinear: NonlinearChoice::Gc,
            exact_truncation: false,
        }
    }
}
