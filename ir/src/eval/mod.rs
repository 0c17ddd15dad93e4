//! Reference semantics: plaintext interpreters of the IR.
//!
//! [`run_float`] executes a float graph (before quantisation) exactly as each op's doc in
//! [`crate::Op`] defines it; it is the float reference that `veilc simulate --float` prints and
//! that tests compare against tract's inference.

mod float;
pub mod kernels;

pub use float::run_float;

/// The interpreter cannot run a graph on the given inputs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("the model takes {expected} input(s), got {got}")]
    InputCount { expected: usize, got: usize },
    #[error("input {index} ({name:?}) must have shape {expected:?}, got {got:?}")]
    InputShape { index: usize, name: String, expected: Vec<usize>, got: Vec<usize> },
    #[error("input {index} ({name:?}) holds a non-finite value at flat index {at}")]
    NonFinite { index: usize, name: String, at: usize },
    #[error("constant {name:?} has no data (a graph read from a plan needs its weights file)")]
    MissingConstant { name: String },
}
