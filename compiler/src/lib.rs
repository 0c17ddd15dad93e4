//! # Veil compiler
//!
//! The library entry point ([`compile()`]), the ONNX front end ([`onnx`]), the evaluation driver ([`evaluate()`]), the accuracy/cost
//! explorer and ReLU budget ([`explore`], [`plot`]) and the `veilc` binary.

mod compile;
mod evaluate;
pub mod explore;
pub mod onnx;
pub mod plot;
mod summary;

pub use compile::{CompileError, CompileOptions, Compiled, Model, PlanFiles, compile};
pub use evaluate::{EvalReport, evaluate};
pub use summary::{LayerRow, Summary, summarize};
