//! `assign_protocols`: chooses, for each dense layer on shared values, how its offline
//! correlation `W·c − m` is produced: HE (BFV, coefficient encoding) or OT (Gilboa products,
//! `n_in·ℓ` random OTs and `n_in·n_out·ℓ(ℓ+1)/2` bits). HE's cost is set by whole ciphertexts, so
//! OT wins on small layers (a classifier head) and HE on large ones; the cost model decides per
//! layer under the chosen network profile and objective (`--linear-offline he|ot` forces one).
//! Both protocols leave the online phase unchanged (local), so under `--objective online` the
//! choice falls to the total. Convolutions always use HE.
//!
//! Requires a quantized graph (after `fuse_truncation`); preserves semantics exactly (both
//! protocols compute the same shares' sum). Writes [`veil_ir::Graph::over_ot`].

use veil_ir::schedule::{Kind, LinearOffline, Step};
use veil_ir::{Domain, Garbling, Graph, Op, OtExtension, TruncMode};

use veil_ir::schedule::script::Phase;

use crate::cost::{Sent, Traffic, cpu_seconds};
use crate::{GarblingChoice, LinearChoice, NonlinearChoice, Objective, Options, OtExtensionChoice, PassError, Report};

/// Predicted `(offline, online)` seconds of running `node` as `offline` (marginal: the session's
/// one-time messages, base OTs and HE public keys, count as sent).
fn predicted(g: &Graph, opts: &Options, step: &Step) -> (f64, f64) {
    let off = Traffic::of_step(g, step, Phase::Offline, &mut Sent::all());
    let on = Traffic::of_step(g, step, Phase::Online, &mut Sent::all());
    let (cpu_off, cpu_on) = cpu_seconds(g, step);
    (opts.network.seconds(&off) + cpu_off, opts.network.seconds(&on) + cpu_on)
}

pub fn run(g: &mut Graph, opts: &Options) -> Result<Report, PassError> {
    g.over_ot.clear();
    // Choices below read exact truncations; a rerun starts from them again.
    for n in g.body.clone() {
        if let Op::Truncate { bits, mode: TruncMode::Stochastic } = g.nodes[n].op {
            g.nodes[n].op = Op::Truncate { bits, mode: TruncMode::Exact };
        }
    }
    let candidates: Vec<_> = g
        .live_nodes()
        .filter(|(_, n)| {
            matches!(n.op, Op::Dense { .. })
                && matches!(g.values[n.inputs[0]].domain, Domain::Shared | Domain::Client)
                && n.op.consts().first().is_some_and(|&w| g.consts[w].domain == Domain::Server)
        })
        .map(|(id, _)| id)
        .collect();
    let mut report = Report::default();
    for id in candidates {
        let step = |offline| Step { node: id, kind: Kind::Linear { offline } };
        let (he, ot) = (predicted(g, opts, &step(LinearOffline::He)), predicted(g, opts, &step(LinearOffline::Ot)));
        let key = |(off, on): (f64, f64)| match opts.objective {
            Objective::Online => (on, off + on),
            Objective::Total => (off + on, on),
        };
        let use_ot = match opts.linear_offline {
            LinearChoice::He => false,
            LinearChoice::Ot => true,
            LinearChoice::Auto => key(ot).partial_cmp(&key(he)).is_some_and(|o| o.is_lt()),
        };
        if use_ot {
            g.over_ot.push(id);
        }
        report.note(format!(
            "{:?}: offline by {} (predicted offline: HE {:.1} ms, OT {:.1} ms)",
            g.nodes[id].name,
            if use_ot { "OT" } else { "HE" },
            he.0 * 1e3,
            ot.0 * 1e3
        ));
    }
    relus(g, opts, &mut report);
    narrowed(g, &mut report);
    if opts.stochastic_truncation {
        stochastic(g, &mut report);
    }
    garbling(g, opts, &mut report);
    ot_extension(g, opts, &mut report);
    crate::he_ring::choose(g, opts, &mut report);
    Ok(report)
}

/// Keeps the narrowed operand widths `quantize` chose ([`veil_ir::Graph::narrow_bits`]) for the
/// garbled ReLUs, MaxPools, Clips, roundings and truncations that stay in garbled circuits, and
/// for the ReLUs over OT whose comparison can read narrowed
/// ([`veil_ir::schedule::relu_ot_width`]: those with a fused truncation); the others over OT read
/// the whole ring. Says what they are.
fn narrowed(g: &mut Graph, report: &mut Report) {
    let keep = |g: &Graph, n: veil_ir::NodeId| {
        !g.over_ot.contains(&n)
            || matches!(g.nodes[n].op, Op::Relu)
                && veil_ir::schedule::relu_ot_width(g, n, veil_ir::schedule::fused(g, g.nodes[n].inputs[0]).1).is_some()
    };
    let listed = std::mem::take(&mut g.narrow_bits);
    g.narrow_bits = listed.into_iter().filter(|&(n, _)| keep(g, n)).collect();
    if let (Some(lo), Some(hi)) = (g.narrow_bits.iter().map(|b| b.1).min(), g.narrow_bits.iter().map(|b| b.1).max()) {
        report.note(format!(
            "{} layer(s) (garbled ReLU, MaxPool, Clip, rounding, truncation; ReLU over OT) read their operand in {lo}..={hi} of the ring's {} bits (its range and margin)",
            g.narrow_bits.len(),
            g.ring_bits.unwrap_or(0)
        ));
    }
}

/// `--stochastic-truncation`: the exact truncations fused into garbled ReLUs and MaxPools on
/// shared values become stochastic ([`TruncMode::Stochastic`]) where the circuit's width leaves
/// at least three bits after the shift; the others stay exact.
fn stochastic(g: &mut Graph, report: &mut Report) {
    let (mut n, mut saved) = (0usize, 0u64);
    let readers: Vec<_> =
        g.live_nodes().filter(|(_, n)| matches!(n.op, Op::Relu | Op::MaxPool { .. })).map(|(id, _)| id).collect();
    for id in readers {
        if let Some((t, bits)) = make_stochastic(g, id) {
            n += 1;
            saved += u64::from(bits) * g.values[g.nodes[t].output].ty.len() as u64;
        }
    }
    report.note(format!(
        "--stochastic-truncation: {n} truncation(s) round stochastically in their garbled ReLU or MaxPool ({saved} share \
         bits fewer into the circuits)"
    ));
}

/// Makes the exact truncation fused into garbled ReLU or MaxPool `id` stochastic where
/// [`veil_ir::schedule::shifted_read`] allows it (on shared values, not over OT) with at least
/// three bits left after the shift: the truncation node and its bits, if it did.
fn make_stochastic(g: &mut Graph, id: veil_ir::NodeId) -> Option<(veil_ir::NodeId, u8)> {
    let v = g.nodes[id].inputs[0];
    let t = match g.values[v].def {
        veil_ir::Def::Node(t) => t,
        veil_ir::Def::Input(_) => return None,
    };
    let Op::Truncate { bits, mode: TruncMode::Exact } = g.nodes[t].op else { return None };
    g.nodes[t].op = Op::Truncate { bits, mode: TruncMode::Stochastic };
    if veil_ir::schedule::shifted_read(g, id).is_some() {
        return Some((t, bits));
    }
    g.nodes[t].op = Op::Truncate { bits, mode: TruncMode::Exact };
    None
}

/// Sets the plan's garbling scheme (`--garbling`; under `auto` the cost model's choice for the
/// network, [`crate::garbling::choose`]), after the ReLUs' protocols fix which steps garble.
fn garbling(g: &mut Graph, opts: &Options, report: &mut Report) {
    g.garbling = match opts.garbling {
        GarblingChoice::HalfGates => Garbling::HalfGates,
        GarblingChoice::ThreeHalves => Garbling::ThreeHalves,
        GarblingChoice::Auto => {
            let (pick, seconds) = crate::garbling::choose(g, &opts.network);
            if let Some([h, t]) = seconds.filter(|[h, _]| h.1 > 0.0) {
                report.note(format!(
                    "garbling: {pick} for {} Mbit/s (predicted garbled steps, offline + online: half-gates {:.1} + {:.1} ms, three-halves {:.1} + {:.1} ms)",
                    opts.network.bandwidth_mbit_s,
                    h.0 * 1e3,
                    h.1 * 1e3,
                    t.0 * 1e3,
                    t.1 * 1e3
                ));
            }
            pick
        }
    };
}

/// Sets the plan's OT extension for its chosen-input batches (`--ot-extension`; under `auto`
/// the cost model's choice for the network, [`crate::ot_extension::choose`]), last: it prices
/// the finished plan.
fn ot_extension(g: &mut Graph, opts: &Options, report: &mut Report) {
    g.ot_extension = match opts.ot_extension {
        OtExtensionChoice::Iknp => OtExtension::Iknp,
        OtExtensionChoice::Silent => OtExtension::Silent,
        OtExtensionChoice::Auto => {
            let (pick, seconds) = crate::ot_extension::choose(g, &opts.network);
            if let Some([i, s]) = seconds {
                report.note(format!(
                    "OT extension: {pick} for {} Mbit/s (predicted plan, offline + online: iknp {:.2} + {:.2} s, silent {:.2} + {:.2} s)",
                    opts.network.bandwidth_mbit_s, i.0, i.1, s.0, s.1
                ));
            }
            pick
        }
    };
}

/// Whether a Clip over OT with a lower bound `lo ≠ 0` (`kind`, from
/// [`veil_ir::schedule::clip_ot::listed`]) is exact for every input within the plan's input
/// bound: with `Y` a bound on the ring value of its operand `y` (the worst-case range of
/// [`crate::range::worst_case_values`] plus the fixed-point error of
/// [`crate::error_bound::error_bounds`], at the operand's scale), `y − lo·2^f` and `hi − z`
/// (`z` between `lo` and `max(lo, y >> f)`) stay in the signed range when
/// `Y + |lo|·2^f < 2^(ℓ−1)` and `|hi| + |lo| + Y/2^f < 2^(ℓ−1)`, with a margin. `false` without
/// an input bound or the constants' float values (nothing to prove it from).
fn clip_cannot_wrap(g: &Graph, kind: &Kind) -> bool {
    let Kind::ClipOt { input, shift, lo, hi } = *kind else { return false };
    let (Some(bits), Some(bound)) = (g.ring_bits, g.input_bound) else { return false };
    if g.consts.iter().any(|(_, c)| c.data.is_empty()) {
        return false;
    }
    let ring = veil_ir::ring::Ring::new(bits);
    let scale = match g.values[input].ty.elem {
        veil_ir::ElemType::Fixed { frac_bits } => frac_bits,
        _ => return false,
    };
    let (mag, err) = (
        crate::range::worst_case_values(g, bound as f64)[input.index()],
        crate::error_bound::error_bounds(g, bound as f64)[input.index()],
    );
    let y = (mag + err) * f64::from(scale).exp2() + 2.0;
    let (lo, hi) = (ring.to_signed(lo).unsigned_abs() as f64, ring.to_signed(hi).unsigned_abs() as f64);
    let limit = f64::from(bits - 1).exp2() - 4.0;
    let step = f64::from(shift).exp2();
    y + lo * step < limit && hi + lo + y / step + 1.0 < limit
}

/// Chooses, for each exact ReLU (any fused truncation), each Clip to `[0, hi]` (two ReLUs over
/// OT, [`veil_ir::schedule::clip_ot`]; a Clip to `[lo, hi]` with `lo ≠ 0` where
/// `clip_cannot_wrap` proves it exact; other Clips stay garbled) and each MaxPool of a ReLU's output
/// without a fused truncation ([`veil_ir::schedule::nonnegative`]: the max tree's differences
/// cannot wrap), a garbled circuit or the OT comparison protocol (`--nonlinear`; under `auto`
/// the cost model decides per layer like for dense layers), and likewise for each of Circa's
/// stochastic ReLUs (its sign test over OT on the test's `m − k` bits, or garbled). A MaxPool
/// with a fused truncation, or of a value that may be negative, stays a garbled circuit. Each
/// exact truncation that fuses into no reader (`--exact-truncation`) is priced the same way,
/// its circuit `trunc_mask` against the truncation over OT ([`veil_ir::schedule::trunc_ot`]), and
/// each LeakyReLU, its circuit against two truncations and a select over OT
/// ([`veil_ir::schedule::leaky_ot`]).
fn relus(g: &mut Graph, opts: &Options, report: &mut Report) {
    use veil_ir::schedule::{fused, nonnegative};
    let ell = g.ring_bits.unwrap_or(61) as u32;
    let candidates: Vec<_> = g
        .live_nodes()
        .filter(|(_, n)| g.values[n.output].domain == Domain::Shared)
        .filter_map(|(id, n)| match (&n.op, fused(g, n.inputs[0])) {
            (Op::Relu, (input, shift)) if (shift as u32) < ell => {
                let width = veil_ir::schedule::relu_ot_width(g, id, shift).unwrap_or(ell as u8);
                Some((id, Kind::ReluOt { input, shift, width, out: veil_ir::schedule::relu_ot_out(g, id) }))
            }
            (Op::Clip { .. }, _) => veil_ir::schedule::clip_ot::kind(g, id)
                .or_else(|| veil_ir::schedule::clip_ot::listed(g, id).filter(|k| clip_cannot_wrap(g, k)))
                .map(|k| (id, k)),
            (Op::Truncate { .. }, _) => veil_ir::schedule::trunc_ot::kind(g, id).map(|k| (id, k)),
            (Op::LeakyRelu { .. }, _) => veil_ir::schedule::leaky_ot::kind(g, id).map(|k| (id, k)),
            (Op::MaxPool { window }, (input, 0)) if nonnegative(g, input) => {
                let windows = veil_ir::eval::ring_ops::window_taps(&g.values[input].ty.shape, window);
                Some((id, Kind::MaxPoolOt { input, windows, width: veil_ir::schedule::maxpool_ot_width(g, input) }))
            }
            (&Op::StochasticRelu { drop_bits: Some(drop_bits), variant, test_bits: Some(test_bits) }, _)
                if u32::from(drop_bits) + 1 < u32::from(test_bits) && u32::from(test_bits) <= ell =>
            {
                Some((id, Kind::CircaOt { input: n.inputs[0], drop_bits, variant, test_bits }))
            }
            _ => None,
        })
        .collect();
    for (id, kind) in candidates {
        let what = match g.nodes[id].op {
            Op::Relu => "ReLU",
            Op::Clip { .. } => "Clip",
            Op::StochasticRelu { .. } => "Circa",
            Op::Truncate { .. } => "truncation",
            Op::LeakyRelu { .. } => "LeakyReLU",
            _ => "MaxPool",
        };
        // The circuit priced is the one the plan would run: with `--stochastic-truncation`, a
        // ReLU's or MaxPool's reading shifted shares.
        let trial = if opts.stochastic_truncation { make_stochastic(g, id) } else { None };
        let priced = match veil_ir::schedule::node_steps(g, id, &mut Vec::new()) {
            Ok(mut s) if !s.is_empty() => {
                let gc = s.pop().expect("nonempty");
                Some((predicted(g, opts, &gc), predicted(g, opts, &Step { node: id, kind })))
            }
            _ => None,
        };
        if let Some((t, bits)) = trial {
            g.nodes[t].op = Op::Truncate { bits, mode: TruncMode::Exact };
        }
        let Some((gc, ot)) = priced else { continue };
        let key = |(off, on): (f64, f64)| match opts.objective {
            Objective::Online => (on, off + on),
            Objective::Total => (off + on, on),
        };
        let use_ot = match opts.nonlinear {
            NonlinearChoice::Gc => false,
            NonlinearChoice::Ot => true,
            NonlinearChoice::Auto => key(ot).partial_cmp(&key(gc)).is_some_and(|o| o.is_lt()),
        };
        if use_ot {
            g.over_ot.push(id);
        }
        if opts.nonlinear != NonlinearChoice::Gc {
            report.note(format!(
                "{:?}: {what} by {} (predicted offline + online: GC {:.1} + {:.1} ms, OT {:.1} + {:.1} ms)",
                g.nodes[id].name,
                if use_ot { "OT" } else { "GC" },
                gc.0 * 1e3,
                gc.1 * 1e3,
                ot.0 * 1e3,
                ot.1 * 1e3
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_ir::{ElemType, TensorType, TruncMode};

    /// x (scale 12, |x| ≤ `bound`) → dense with weights 0.5 (scale 24) → truncate 12 (exact) →
    /// Clip [−1, 1] → reveal, ℓ = 40.
    fn hardtanh(bound: f32) -> (Graph, veil_ir::NodeId) {
        let mut g = Graph::new("hardtanh");
        let x = g.add_input("x", TensorType { elem: ElemType::Fixed { frac_bits: 12 }, shape: vec![1, 4] });
        let w = g.add_const("w", vec![4, 4], veil_ir::Domain::Server, vec![0.5; 16]);
        g.consts[w].frac_bits = Some(12);
        g.consts[w].qdata = vec![2048; 16];
        let h = g.add_node("fc", "h", Op::Dense { weight: w, bias: None }, &[x]).unwrap();
        g.values[h].ty.elem = ElemType::Fixed { frac_bits: 24 };
        let t = g.add_node("t", "t", Op::Truncate { bits: 12, mode: TruncMode::Exact }, &[h]).unwrap();
        g.values[t].ty.elem = ElemType::Fixed { frac_bits: 12 };
        let c = g.add_node("clip", "c", Op::Clip { min: Some(-1.0), max: Some(1.0) }, &[t]).unwrap();
        g.values[c].ty.elem = ElemType::Fixed { frac_bits: 12 };
        let y = g.add_node("reveal", "y", Op::Reveal, &[c]).unwrap();
        g.outputs.push(y);
        (g.ring_bits, g.input_bound) = (Some(40), Some(bound));
        let clip = g.live_nodes().find(|(_, n)| n.name == "clip").map(|(id, _)| id).unwrap();
        (g, clip)
    }

    /// The range proof for a Clip with a lower bound other than 0: with `|x| ≤ 1` the dense
    /// layer's values stay below 2·2^24, far inside ℓ = 40, so the Clip may run over OT; with
    /// `|x| ≤ 2^15` they reach 2^40 and `y + 2^24` could wrap, so it may not (nor without an input
    /// bound, or without the weights' float values to bound the layer with).
    #[test]
    fn a_clip_with_another_lower_bound_is_listed_only_where_its_range_is_proven() {
        let (g, clip) = hardtanh(1.0);
        let kind = veil_ir::schedule::clip_ot::listed(&g, clip).expect("both bounds in the ring");
        assert!(veil_ir::schedule::clip_ot::kind(&g, clip).is_none(), "lo ≠ 0 needs the proof");
        assert!(clip_cannot_wrap(&g, &kind));
        let (wide, _) = hardtanh(32768.0);
        assert!(!clip_cannot_wrap(&wide, &kind));
        let (mut unbounded, _) = hardtanh(1.0);
        unbounded.input_bound = None;
        assert!(!clip_cannot_wrap(&unbounded, &kind));
        let (mut stripped, _) = hardtanh(1.0);
        let ids: Vec<_> = stripped.consts.iter().map(|(id, _)| id).collect();
        ids.into_iter().for_each(|id| stripped.consts[id].data.clear());
        assert!(!clip_cannot_wrap(&stripped, &kind));
    }
}
