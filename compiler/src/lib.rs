//! # Veil compiler
//!
//! The ONNX front end ([`onnx`]) and the pipeline driver behind the `veilc` binary.

pub mod onnx;
