//! `fuse_truncation`: runs truncations inside the garbled circuit that follows them.
//!
//! Requires a graph after `quantize`. A local `truncate` whose only reader is a ReLU, MaxPool,
//! Clip or LeakyReLU (ops that run in a garbled circuit) becomes exact: the circuit adds the
//! shares, shifts by wiring and computes the op, so the truncation costs nothing and has no
//! rounding error or wrap risk. Other truncations stay local and are counted in the report,
//! except with [`Options::exact_truncation`]: then they become exact too and run in a garbled
//! circuit of their own (`trunc_mask`, about 2ℓ AND gates per element), because a local
//! truncation's ±1 error depends on the secret value and reaches the revealed output; Circa's
//! stochastic ReLU is refused under that option for the same reason.
//! Changes semantics only by removing the local truncations' ±1 error.
//!
//! A local truncation is correct only when the client's share is uniformly random: with a
//! client share of 0, every positive value wraps (`ir/src/ring.rs` `local_truncate`). Values
//! that may have a client share the plan fixes ([`fixed_client_shares`]: a `pad`'s fill, the
//! constant positions of a Concat with a constant, a public zero scale, and local ops on those)
//! have their truncations made exact, whatever the options.

use veil_ir::{Domain, Graph, Op, TruncMode};

use crate::{Options, PassError, Report};

/// Whether a truncation producing `out` fuses into the garbled circuit that reads it: the
/// schedule's own rule ([`veil_ir::schedule::fuses_into_reader`]), so the pass and the lowering
/// cannot disagree. `quantize` asks this too, to know whether any truncation will stay local.
pub fn fuses(g: &Graph, out: veil_ir::ValueId) -> bool {
    veil_ir::schedule::fuses_into_reader(g, out)
}

/// Whether a truncation producing `out` stays local (each party shifts its own share) under
/// `opts`: it does not fuse and exact truncation was not asked for.
pub fn stays_local(g: &Graph, out: veil_ir::ValueId, opts: &Options) -> bool {
    !opts.exact_truncation && !fuses(g, out)
}

pub fn run(g: &mut Graph, opts: &Options) -> Result<Report, PassError> {
    if opts.exact_truncation && opts.stochastic_truncation {
        return Err(PassError::Rejected {
            pass: crate::Pass::FuseTruncation,
            reason: "--exact-truncation and --stochastic-truncation ask for opposite truncations; give one".into(),
        });
    }
    if opts.exact_truncation
        && let Some((_, n)) = g.live_nodes().find(|(_, n)| matches!(n.op, Op::StochasticRelu { .. }))
    {
        return Err(PassError::Rejected {
            pass: crate::Pass::FuseTruncation,
            reason: format!(
                "node {:?}: Circa's stochastic ReLU errs with a probability that depends on the secret value, and \
                 the output reveals it, so --exact-truncation refuses it; use --activation relu or poly for this layer",
                n.name
            ),
        });
    }
    let (mut fused, mut own, mut local, mut local_elems, mut unmasked) = (0, 0, 0, 0, 0);
    let fixed = fixed_client_shares(g);
    for n in g.body.clone() {
        let Op::Truncate { bits, mode: TruncMode::Local } = g.nodes[n].op else { continue };
        let out = g.nodes[n].output;
        if fuses(g, out) {
            g.nodes[n].op = Op::Truncate { bits, mode: TruncMode::Exact };
            fused += 1;
        } else if fixed[g.nodes[n].inputs[0].index()] {
            g.nodes[n].op = Op::Truncate { bits, mode: TruncMode::Exact };
            own += 1;
            unmasked += 1;
        } else if opts.exact_truncation {
            g.nodes[n].op = Op::Truncate { bits, mode: TruncMode::Exact };
            own += 1;
        } else {
            local += 1;
            local_elems += g.values[out].ty.len();
        }
    }
    let mut report = Report::default();
    if opts.exact_truncation {
        report.note(format!(
            "--exact-truncation: {fused} truncation(s) fused into garbled circuits, {own} exact in their own; none local"
        ));
    } else if fused + local > 0 {
        report
            .note(format!("{fused} truncation(s) fused into garbled circuits; {local} local ({local_elems} elements)"));
    }
    if unmasked > 0 && !opts.exact_truncation {
        report.note(format!(
            "{unmasked} truncation(s) exact in their own circuit: their operand may have a client share the plan fixes (a pad's fill, a concatenated constant), which a local truncation would wrap"
        ));
    }
    Ok(report)
}

/// By value: whether some element may have a client share the plan fixes rather than a random
/// one. Sources: a `pad` (its fill is a constant on both shares, as are the constant positions
/// of a Concat with a constant, which pads a zero and selects it) and an `affine` by a public
/// scale with a zero in it. Local ops carry it (`select`, `reshape`, `transpose`, `concat`,
/// window sums, public affines, local truncations: if any operand has it; `add` and `sub`: if
/// all do, since one random share randomises the sum). Protocol outputs (linear layers, Beaver
/// products, garbled and OT layers) are freshly masked.
pub fn fixed_client_shares(g: &Graph) -> Vec<bool> {
    let mut fixed = vec![false; g.values.len()];
    let public = |c: veil_ir::Const| g.consts[c].domain == Domain::Public;
    for (_, n) in g.live_nodes() {
        let any = n.inputs.iter().any(|v| fixed[v.index()]);
        let all = !n.inputs.is_empty() && n.inputs.iter().all(|v| fixed[v.index()]);
        fixed[n.output.index()] = match &n.op {
            Op::Pad { .. } => true,
            Op::Affine { scale: Some(c), .. } if public(*c) && g.consts[*c].data.contains(&0.0) => true,
            Op::Affine { scale, .. } if scale.is_none_or(public) => any,
            Op::Select { .. }
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Concat { .. }
            | Op::SumPool { .. }
            | Op::AvgPool { .. }
            | Op::Truncate { mode: TruncMode::Local, .. } => any,
            Op::Add | Op::Sub => all,
            _ => false,
        };
    }
    fixed
}
