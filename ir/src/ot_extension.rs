//! How a plan extends oblivious transfers with *chosen* inputs (`veilc --ot-extension`): the
//! client's garbled-circuit input labels (correlated OT), the Gilboa products of dense layers
//! over OT, Circa's and the polynomial and product steps' correlations (random OT). The OT-based
//! non-linear protocols always use silent random-choice OT; this is about the others.

use serde::{Deserialize, Serialize};

/// The OT extension of the chosen-input OT batches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OtExtension {
    /// IKNP (`cryprot-ot`'s semi-honest extension): 16 bytes per OT from the receiver (and 16
    /// more from the sender for correlated OT), fast to compute: the choice where bandwidth is
    /// cheap.
    #[default]
    Iknp,
    /// Silent OT (`cryprot-ot`'s `silent_ot`): random-choice OTs whose traffic grows with the
    /// logarithm of the batch, derandomised with one bit per OT (the receiver's choice XOR the
    /// random one, sent in the batch's done frame), at a few times IKNP's CPU: the choice where
    /// bandwidth is dear.
    Silent,
}

impl OtExtension {
    /// The name `--ot-extension` and the plan's text form use.
    pub fn name(self) -> &'static str {
        match self {
            OtExtension::Iknp => "iknp",
            OtExtension::Silent => "silent",
        }
    }
}

impl std::fmt::Display for OtExtension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for OtExtension {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "iknp" => Ok(OtExtension::Iknp),
            "silent" => Ok(OtExtension::Silent),
            _ => Err(format!("unknown OT extension {s:?} (expected iknp or silent)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OtExtension;

    #[test]
    fn names_round_trip() {
        for e in [OtExtension::Iknp, OtExtension::Silent] {
            assert_eq!(e.name().parse::<OtExtension>(), Ok(e));
        }
        assert!("iknpp".parse::<OtExtension>().unwrap_err().contains("iknp or silent"));
    }
}
