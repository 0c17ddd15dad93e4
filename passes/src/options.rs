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
    /// By the cost model, per layer, under the network profile and objective (the default).
    Auto,
    /// Always a garbled circuit.
    Gc,
    /// Over OT for every ReLU with a fused exact truncation, every Clip to `[0, hi]`, every
    /// MaxPool of a ReLU's output, every Circa stochastic ReLU, every LeakyReLU and every exact
    /// truncation that fuses into no reader.
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

/// The garbling scheme of the plan's garbled circuits (`--garbling`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GarblingChoice {
    /// By the cost model for the network profile ([`crate::garbling::choose`]).
    Auto,
    /// Half-gates, two ciphertexts per AND (the default).
    HalfGates,
    /// Three halves, 23 % fewer table bytes, slower to garble and evaluate.
    ThreeHalves,
}

impl std::str::FromStr for GarblingChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(GarblingChoice::Auto),
            "half-gates" => Ok(GarblingChoice::HalfGates),
            "three-halves" => Ok(GarblingChoice::ThreeHalves),
            _ => Err(format!("unknown garbling {s:?} (expected half-gates, three-halves or auto)")),
        }
    }
}

/// The OT extension of the plan's chosen-input OT batches (`--ot-extension`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtExtensionChoice {
    /// By the cost model for the network profile ([`crate::ot_extension::choose`]).
    Auto,
    /// IKNP, 16 bytes per OT and more, fast to compute (the default).
    Iknp,
    /// Silent OT, a bit per OT and a few hundred KB per batch, slower to compute.
    Silent,
}

impl std::str::FromStr for OtExtensionChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(OtExtensionChoice::Auto),
            "iknp" => Ok(OtExtensionChoice::Iknp),
            "silent" => Ok(OtExtensionChoice::Silent),
            _ => Err(format!("unknown OT extension {s:?} (expected iknp, silent or auto)")),
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
    /// Budget, per Circa sign test, for faults from share wrap-around in its test ring (beyond
    /// the near-zero faults of `circa_error_bits`): `quantize` picks the narrowest test ring
    /// meeting it. In (0, 1); see [`parse_fault_rate`].
    pub circa_fault_rate: f64,
    /// Fractional bits F of activations and weights.
    pub frac_bits: u8,
    /// Per-node fractional bits, by node name, in place of `frac_bits` for that node: the scale
    /// its operands are lowered to and its weights quantized at (graph inputs stay at
    /// `frac_bits`). The precision search sets it where a layer's lower `F` narrows the ring
    /// (`crate::precision_layers`).
    pub layer_frac_bits: BTreeMap<String, u8>,
    /// Ring width ℓ (`None`: chosen by `quantize`).
    pub ring_bits: Option<u8>,
    /// Bits of margin above calibrated ranges (after their ×2 headroom): the automatic ring
    /// (where no local truncation needs its 40 bits), each narrowed read and each Circa test
    /// ring hold values `2^range_margin_bits` times beyond what calibration saw. Fewer bits,
    /// fewer bytes; data that exceeds them wraps, which `veilc eval` counts
    /// (`narrow overflows`). Unused with worst-case ranges, which are sound.
    pub range_margin_bits: u8,
    /// Fractional bits the weights of dense and convolution layers get beyond their layer's
    /// `F` (at most 8): weights are mostly below 1 in magnitude and activations above, so at the
    /// same relative precision the weights want more fractional bits. `None`: 0, and the
    /// precision search ([`crate::precision::choose`]) tries 0 and 2 and keeps the narrower ring.
    pub weight_extra_bits: Option<u8>,
    /// Calibration inputs for range analysis (empty: worst-case bounds): one tensor per graph
    /// input per sample, a sample's inputs consecutive and in the graph's order (for a
    /// one-input model, one tensor per sample); see [`Options::calibration_samples`].
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
    /// The garbling scheme (`HalfGates`, the default; `Auto`: the cost model).
    pub garbling: GarblingChoice,
    /// The OT extension of the chosen-input OT batches (`Iknp`, the default; `Auto`: the cost
    /// model).
    pub ot_extension: OtExtensionChoice,
    /// Every truncation exact, in a garbled circuit (fused into the next one where it can be,
    /// else its own): no local share truncation, whose ±1 error depends on the secret value and
    /// reaches the revealed output; Circa, whose sign faults do the same, is refused. The
    /// output is then a deterministic function of the input and weights (docs/threat-model.md).
    pub exact_truncation: bool,
    /// The truncation before each garbled ReLU and MaxPool rounds stochastically
    /// ([`veil_ir::TruncMode::Stochastic`]): each party shifts its own share and the circuit
    /// reads `bits` fewer bits of each, saving that many AND gates and online server labels per
    /// element. The result is `⌊x / 2^bits⌋` or one more, unbiased, as a local truncation's,
    /// and like it not a deterministic function of the input; refused with `exact_truncation`.
    pub stochastic_truncation: bool,
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
            circa_fault_rate: crate::quantize::CIRCA_FAULT_RATE,
            frac_bits: 12,
            layer_frac_bits: BTreeMap::new(),
            ring_bits: None,
            range_margin_bits: crate::quantize::CALIBRATED_MARGIN_BITS,
            weight_extra_bits: None,
            calibration: Vec::new(),
            input_bound: 1.0,
            network: crate::cost::Network::LAN,
            objective: Objective::Online,
            linear_offline: LinearChoice::Auto,
            nonlinear: NonlinearChoice::Auto,
            garbling: GarblingChoice::HalfGates,
            ot_extension: OtExtensionChoice::Iknp,
            exact_truncation: false,
            stochastic_truncation: false,
        }
    }
}

/// A probability in (0, 1) written as a decimal (`1e-6`, `0.001`) or a power of two (`2^-20`,
/// also with `−`).
pub fn parse_fault_rate(s: &str) -> Result<f64, String> {
    let t = s.trim().replace('−', "-");
    let p = match t.strip_prefix("2^") {
        Some(e) => e.parse::<i32>().map(|e| f64::from(e).exp2()).map_err(|_| format!("{s:?}: expected 2^-N")),
        None => t.parse::<f64>().map_err(|_| format!("{s:?}: expected a probability such as 1e-6 or 2^-20")),
    }?;
    if p > 0.0 && p < 1.0 { Ok(p) } else { Err(format!("{s:?}: a fault rate must be in (0, 1)")) }
}

impl Options {
    /// The calibration samples of a graph with `inputs` inputs: each the inputs of one run.
    pub fn calibration_samples(&self, inputs: usize) -> std::slice::ChunksExact<'_, Tensor> {
        self.calibration.chunks_exact(inputs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_fault_rate;

    #[test]
    fn fault_rates_parse_as_decimals_or_powers_of_two() {
        assert_eq!(parse_fault_rate("2^-20"), Ok(1.0 / 1048576.0));
        assert_eq!(parse_fault_rate("2^−6"), Ok(1.0 / 64.0));
        assert_eq!(parse_fault_rate("1e-6"), Ok(1e-6));
        for bad in ["0", "1", "2^0", "2^3", "-1e-3", "nan", "2^-x", "", "1e-6x"] {
            assert!(parse_fault_rate(bad).is_err(), "{bad:?}");
        }
    }
}
