//! # Veil compiler
//!
//! The ONNX front end ([`onnx`]), the evaluation driver ([`evaluate()`]) and the `veilc` binary.

mod evaluate;
pub mod onnx;

pub use evaluate::{EvalReport, evaluate};
