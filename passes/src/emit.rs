//! `emit`: the last pass. Encodes the plan (public: the program, no weights) and the weights
//! (server only, bound to the plan's hash) exactly as `veilc compile` writes them, reports their
//! sizes and the plan's hash, and checks the plan against the two-party runtime's schedule (a
//! plan the runtime cannot run yet, such as a polynomial of degree 3, is still emitted for the
//! simulator, with a note naming the step).
//!
//! Requires a quantized graph; changes nothing.

use veil_ir::Graph;

use crate::{Options, PassError, Report};

pub fn run(g: &mut Graph, _: &Options) -> Result<Report, PassError> {
    let (plan, weights, hash) =
        veil_ir::plan::encode(g).map_err(|e| PassError::Rejected { pass: crate::Pass::Emit, reason: e.to_string() })?;
    let mut report = Report::default();
    report.note(format!(
        "plan {} bytes (hash {}), weights {} bytes",
        plan.len(),
        &veil_ir::plan::hex(&hash)[..16],
        weights.len()
    ));
    if let Err(e) = veil_ir::schedule::lower(g) {
        report.note(format!("the two-party runtime cannot run this plan yet: {e}"));
    }
    Ok(report)
}
