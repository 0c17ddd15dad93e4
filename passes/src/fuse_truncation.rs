//! `fuse_truncation`: runs truncations inside the garbled circuit that follows them.
//!
//! Requires a graph after `quantize`. A local `truncate` whose only reader is a ReLU, MaxPool,
//! Clip or LeakyReLU (ops that run in a garbled circuit) becomes exact: the circuit adds the
//! shares, shifts by wiring and computes the op, so the truncation costs nothing and has no
//! rounding error or wrap risk. Other truncations stay local and are counted in the report.
//! Changes semantics only by removing the local truncations' ±1 error.

use veil_ir::{Graph, Op, TruncMode};

use crate::{Options, PassError, Report};

/// Whether a truncation producing `out` fuses into the garbled circuit that reads it (its only
/// reader is a ReLU, MaxPool, Clip or LeakyReLU). `quantize` asks this too, to know whether
/// any truncation will stay local.
pub fn fuses(g: &Graph, out: veil_ir::ValueId) -> bool {
    g.has_single_user(out)
        && matches!(g.nodes[g.users(out)[0]].op, Op::Relu | Op::MaxPool { .. } | Op::Clip { .. } | Op::LeakyRelu { .. })
}

pub fn run(g: &mut Graph, _: &Options) -> Result<Report, PassError> {
    let (mut fused, mut local, mut local_elems) = (0, 0, 0);
    for n in g.body.clone() {
        let Op::Truncate { bits, mode: TruncMode::Local } = g.nodes[n].op else { continue };
        let out = g.nodes[n].output;
        if fuses(g, out) {
            g.nodes[n].op = Op::Truncate { bits, mode: TruncMode::Exact };
            fused += 1;
        } else {
            local += 1;
            local_elems += g.values[out].ty.len();
        }
    }
    let mut report = Report::default();
    if fused + local > 0 {
        report
            .note(format!("{fused} truncation(s) fused into garbled circuits; {local} local ({local_elems} elements)"));
    }
    Ok(report)
}
