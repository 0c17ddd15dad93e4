//! # Veil compiler
//!
//! The ONNX front end ([`onnx`]), the evaluation driver ([`evaluate()`]) and the `veilc` binary.

mod evaluate;
pub mod onnx;
mod summary;

pub use evaluate::{EvalReport, evaluate};
pub use summary::{LayerRow, Summary, summarize};
