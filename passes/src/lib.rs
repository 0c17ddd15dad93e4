//! # Veil passes
//!
//! One file per pass over the [`veil_ir::Graph`], each with one public
//! `run(&mut Graph, &Options) -> Result<Report, PassError>`. [`Pass`] names them in order;
//! [`run_pipeline`] runs them, times each, and (when asked) runs the verifier after each, where
//! a failure is a compiler bug.

mod assign_protocols;
pub mod cost;
mod emit;
pub mod error_bound;
mod fold_batchnorm;
mod fold_constants;
mod fuse_truncation;
pub mod garbling;
mod he_ring;
mod normalize_linear;
mod options;
pub mod ot_extension;
mod parallel;
mod pipeline;
pub mod precision;
pub mod precision_layers;
pub mod quantize;
pub mod range;
mod substitute_activations;
mod util;

use veil_ir::VerifyError;

pub use fuse_truncation::fixed_client_shares;
pub use options::{
    Activation, GarblingChoice, LinearChoice, NonlinearChoice, Objective, Options, OtExtensionChoice, parse_fault_rate,
};
pub use pipeline::{Pass, PassRun, Stage, UnknownPass, run_pipeline, stages};

/// What a pass did, in a few human-readable lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// One line each, in the order the pass wrote them.
    pub notes: Vec<String>,
}

impl Report {
    /// Adds a line.
    pub fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }
}

/// Why compilation stopped.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The model or the options cannot be compiled as asked (a user error).
    #[error("{pass}: {reason}")]
    Rejected {
        /// The pass that refused.
        pass: Pass,
        /// Why, naming the node or option at fault.
        reason: String,
    },
    /// The precision search ([`precision::choose`]) found no `F` meeting the error target (a
    /// user error: the message names the best error reached and what to do).
    #[error("precision: {reason}")]
    Precision {
        /// The target, the best error and `F` reached, and what to do.
        reason: String,
    },
    /// A pass produced invalid IR (a compiler bug).
    #[error("internal error: the IR is invalid after pass {pass} (please report this)\n{source}")]
    Invalid {
        /// The pass after which the verifier failed.
        pass: Pass,
        /// Every violation the verifier found.
        source: VerifyError,
    },
}

impl PassError {
    /// Whether the input or options are at fault ([`PassError::Rejected`]) rather than the compiler.
    pub fn is_user_error(&self) -> bool {
        matches!(self, PassError::Rejected { .. } | PassError::Precision { .. })
    }
}
