//! # Veil runtime
//!
//! The two-party runtime. Protocols are synchronous cores without I/O, one folder each; the
//! executors and the `veil` binary tie them to the transport.

pub mod exec;
pub mod garble;
pub mod he;
pub mod net;
pub mod ot;
pub mod progress;
pub mod proto;

/// Runs CPU-heavy work (garbling, HE) from async code without starving the tokio worker it runs
/// on: on a multi-threaded runtime the worker's other tasks (QUIC I/O, stream managers) move to
/// another thread meanwhile.
pub(crate) fn compute<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
