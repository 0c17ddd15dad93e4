//! # Veil compiler
//!
//! The ONNX front end ([`onnx`]), the evaluation driver ([`evaluate()`]), the accuracy/cost
//! explorer and ReLU budget ([`explore`], [`plot`]) and the `veilc` binary.

mod evaluate;
pub mod explore;
pub mod onnx;
pub mod plot;
mod summary;

pub use evaluate::{EvalReport, evaluate};
pub use summary::{LayerRow, Summary, summarize};
