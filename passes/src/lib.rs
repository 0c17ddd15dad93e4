//! # Veil passes
//!
//! One file per pass over the [`veil_ir::Graph`], run in the order [`PASSES`] lists. Today only
//! the front end's output exists (`import`); the passes of DESIGN.md land with the passes issue.

/// Names accepted by `veilc ir --after`, in pipeline order.
pub const PASSES: &[&str] = &["import"];
