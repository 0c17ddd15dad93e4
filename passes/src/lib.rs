//! # Veil passes
//!
//! One file per pass over the [`veil_ir::Graph`], each with one public
//! `run(&mut Graph, &Options) -> Result<Report, PassError>`. [`PIPELINE`] lists them in order;
//! [`run_pipeline`] runs them, times each, and (when asked) runs the verifier after each, where
//! a failure is a compiler bug.

mod assign_protocols;
pub mod cost;
mod emit;
pub mod error_bound;
mod fold_batchnorm;
mod fold_constants;
mod fuse_truncation;
mod normalize_linear;
mod options;
pub mod quantize;
pub mod range;
mod substitute_activations;
mod util;

use std::time::{Duration, Instant};

use veil_ir::{Graph, VerifyError};

pub use options::{Activation, LinearChoice, Objective, Options};

/// What a pass did, in a few human-readable lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub notes: Vec<String>,
}

impl Report {
    pub fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }
}

/// Why compilation stopped.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The model or the options cannot be compiled as asked (a user error).
    #[error("{pass}: {reason}")]
    Rejected { pass: &'static str, reason: String },
    /// A pass produced invalid IR (a compiler bug).
    #[error("internal error: the IR is invalid after pass {pass} (please report this)\n{source}")]
    Invalid { pass: &'static str, source: VerifyError },
}

impl PassError {
    pub fn is_user_error(&self) -> bool {
        matches!(self, PassError::Rejected { .. })
    }
}

type PassFn = fn(&mut Graph, &Options) -> Result<Report, PassError>;

/// The pipeline, in order.
pub const PIPELINE: &[(&str, PassFn)] = &[
    ("fold_constants", fold_constants::run),
    ("fold_batchnorm", fold_batchnorm::run),
    ("normalize_linear", normalize_linear::run),
    ("substitute_activations", substitute_activations::run),
    ("quantize", quantize::run),
    ("fuse_truncation", fuse_truncation::run),
    ("assign_protocols", assign_protocols::run),
    ("emit", emit::run),
];

/// Stage names accepted by `veilc ir --after`: `import` (the front end's output), then each pass.
pub fn stages() -> Vec<&'static str> {
    std::iter::once("import").chain(PIPELINE.iter().map(|(n, _)| *n)).collect()
}

/// One pass's run.
#[derive(Clone, Debug)]
pub struct PassRun {
    pub pass: &'static str,
    pub time: Duration,
    pub report: Report,
}

/// Runs the pipeline up to and including `until` (all of it for `None`, nothing for
/// `Some("import")`); with `verify`, checks the IR after every pass.
pub fn run_pipeline(
    g: &mut Graph,
    opts: &Options,
    until: Option<&str>,
    verify: bool,
) -> Result<Vec<PassRun>, PassError> {
    let mut runs = Vec::new();
    if until == Some("import") {
        return Ok(runs);
    }
    for &(pass, f) in PIPELINE {
        let start = Instant::now();
        let report = f(g, opts)?;
        runs.push(PassRun { pass, time: start.elapsed(), report });
        if verify {
            veil_ir::verify(g).map_err(|source| PassError::Invalid { pass, source })?;
        }
        if until == Some(pass) {
            break;
        }
    }
    Ok(runs)
}
