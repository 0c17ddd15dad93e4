//! # Veil runtime
//!
//! The two-party runtime. Protocols are synchronous cores without I/O, one folder each; the
//! executors and the `veil` binary tie them to the transport. Today: the garbling engine.

pub mod exec;
pub mod garble;
pub mod he;
pub mod net;
pub mod ot;
pub mod proto;
