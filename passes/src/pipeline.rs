//! The pipeline: the passes by name ([`Pass`]), the stages a graph can be shown at ([`Stage`]),
//! and [`run_pipeline`], which runs them in order, times each and (when asked) verifies the IR
//! after each.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use veil_ir::Graph;

use crate::{Options, PassError, Report};

/// One pass of the pipeline; [`Pass::ALL`] lists them in pipeline order. The names
/// ([`Pass::name`], [`FromStr`], [`fmt::Display`]) are the CLI's (`veilc ir --after NAME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pass {
    /// `fold_constants`: drops no-op movement and arithmetic, merges chains.
    FoldConstants,
    /// `fold_batchnorm`: folds every `batchnorm` into the layer before it, or into an `affine`.
    FoldBatchnorm,
    /// `normalize_linear`: puts linear algebra in the forms the protocols run best.
    NormalizeLinear,
    /// `substitute_activations`: exact, Circa or polynomial per ReLU, per the policy.
    SubstituteActivations,
    /// `quantize`: float graph to fixed point over Z_2^ℓ.
    Quantize,
    /// `fuse_truncation`: runs truncations inside the garbled circuit that follows them.
    FuseTruncation,
    /// `assign_protocols`: HE or OT for each dense layer's offline correlation.
    AssignProtocols,
    /// `emit`: encodes the plan and weights and checks the runtime can run the plan.
    Emit,
}

type PassFn = fn(&mut Graph, &Options) -> Result<Report, PassError>;

impl Pass {
    /// Every pass, in pipeline order.
    pub const ALL: [Pass; 8] = [
        Pass::FoldConstants,
        Pass::FoldBatchnorm,
        Pass::NormalizeLinear,
        Pass::SubstituteActivations,
        Pass::Quantize,
        Pass::FuseTruncation,
        Pass::AssignProtocols,
        Pass::Emit,
    ];

    /// The pass's name (its file's name): `fold_constants`, ...
    pub fn name(self) -> &'static str {
        match self {
            Pass::FoldConstants => "fold_constants",
            Pass::FoldBatchnorm => "fold_batchnorm",
            Pass::NormalizeLinear => "normalize_linear",
            Pass::SubstituteActivations => "substitute_activations",
            Pass::Quantize => "quantize",
            Pass::FuseTruncation => "fuse_truncation",
            Pass::AssignProtocols => "assign_protocols",
            Pass::Emit => "emit",
        }
    }

    fn function(self) -> PassFn {
        match self {
            Pass::FoldConstants => crate::fold_constants::run,
            Pass::FoldBatchnorm => crate::fold_batchnorm::run,
            Pass::NormalizeLinear => crate::normalize_linear::run,
            Pass::SubstituteActivations => crate::substitute_activations::run,
            Pass::Quantize => crate::quantize::run,
            Pass::FuseTruncation => crate::fuse_truncation::run,
            Pass::AssignProtocols => crate::assign_protocols::run,
            Pass::Emit => crate::emit::run,
        }
    }

    /// Runs this pass alone on `g`. A pass expects the graph its predecessors leave (e.g.
    /// `quantize` a float graph with activations substituted); the result of running it on
    /// anything else is whatever its own checks make of it (a [`PassError::Rejected`] or IR
    /// that [`veil_ir::verify`] refuses), never undefined behaviour.
    pub fn run(self, g: &mut Graph, opts: &Options) -> Result<Report, PassError> {
        (self.function())(g, opts)
    }
}

impl fmt::Display for Pass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a pass (or a stage); the message lists the valid names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown pass {name:?}; valid names: {}", valid.join(", "))]
pub struct UnknownPass {
    /// The name given.
    pub name: String,
    /// Every valid name, in pipeline order (`import` first when a stage was asked for).
    pub valid: Vec<&'static str>,
}

impl FromStr for Pass {
    type Err = UnknownPass;
    fn from_str(s: &str) -> Result<Self, UnknownPass> {
        Pass::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownPass { name: s.to_string(), valid: Pass::ALL.iter().map(|p| p.name()).collect() })
    }
}

/// Where a graph can be looked at: as imported (`import`), or after a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// The front end's output, before any pass.
    Import,
    /// After the given pass (and all before it).
    After(Pass),
}

impl Stage {
    /// Every stage in order: `import`, then after each pass.
    pub fn all() -> impl Iterator<Item = Stage> {
        std::iter::once(Stage::Import).chain(Pass::ALL.into_iter().map(Stage::After))
    }

    /// `import` or the pass's name.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Import => "import",
            Stage::After(p) => p.name(),
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Stage {
    type Err = UnknownPass;
    fn from_str(s: &str) -> Result<Self, UnknownPass> {
        if s == "import" {
            return Ok(Stage::Import);
        }
        s.parse()
            .map(Stage::After)
            .map_err(|e: UnknownPass| UnknownPass { valid: Stage::all().map(Stage::name).collect(), ..e })
    }
}

impl From<Pass> for Stage {
    fn from(p: Pass) -> Self {
        Stage::After(p)
    }
}

/// Stage names accepted by `veilc ir --after`: `import` (the front end's output), then each pass.
pub fn stages() -> Vec<&'static str> {
    Stage::all().map(Stage::name).collect()
}

/// One pass's run.
#[derive(Clone, Debug)]
pub struct PassRun {
    /// The pass that ran.
    pub pass: Pass,
    /// Wall-clock time of the pass (without the verifier run after it).
    pub time: Duration,
    /// What the pass reported.
    pub report: Report,
}

/// Runs the pipeline up to and including `until` (all of it for `None`, nothing for
/// `Some(Stage::Import)`); with `verify`, checks the IR after every pass (a failure is
/// [`PassError::Invalid`], a compiler bug).
pub fn run_pipeline(
    g: &mut Graph,
    opts: &Options,
    until: Option<Stage>,
    verify: bool,
) -> Result<Vec<PassRun>, PassError> {
    let mut runs = Vec::new();
    let last = match until {
        Some(Stage::Import) => return Ok(runs),
        Some(Stage::After(p)) => p,
        None => Pass::Emit,
    };
    for pass in Pass::ALL.into_iter().filter(|&p| p <= last) {
        let start = Instant::now();
        let report = pass.run(g, opts)?;
        runs.push(PassRun { pass, time: start.elapsed(), report });
        if verify {
            veil_ir::verify(g).map_err(|source| PassError::Invalid { pass, source })?;
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_valid_ones() {
        for s in Stage::all() {
            assert_eq!(s.to_string().parse::<Stage>(), Ok(s));
        }
        for p in Pass::ALL {
            assert_eq!(p.to_string().parse::<Pass>(), Ok(p));
        }
        let e = "quantise".parse::<Stage>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown pass \"quantise\"; valid names: import, fold_constants, fold_batchnorm, normalize_linear, \
             substitute_activations, quantize, fuse_truncation, assign_protocols, emit"
        );
        assert!("import".parse::<Pass>().is_err(), "import is a stage, not a pass");
    }

    #[test]
    fn the_order_of_all_is_the_order_of_the_enum() {
        assert!(Pass::ALL.windows(2).all(|w| w[0] < w[1]));
    }
}
