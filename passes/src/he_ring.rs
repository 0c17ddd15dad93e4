//! The plaintext ring of each HE layer (written to [`veil_ir::Graph::narrow_bits`] by
//! `assign_protocols`): `2^ℓ`, or `2^k` where every reader of the layer's output needs it modulo
//! `2^k` only ([`veil_ir::schedule::demand`]) and the cost model predicts the narrower
//! parameters faster.
//!
//! A narrower plaintext modulus shrinks the BFV parameters only in steps
//! ([`veil_ir::he_pack::Layer::narrower_width`]): fewer bits per prime once `k + 1` drops below
//! the plan's prime size (ℓ = 61 plans use 62-bit primes and often twice the degree), one
//! response prime instead of two once `k` is small. Each distinct parameter set costs the session
//! its setup and a public key (layers share a key set, [`HeParams::key_set`], across their
//! packings), so the layers whose narrower sets coincide are priced together: a set is used
//! where the whole plan's predicted offline time falls with it.

use veil_ir::he_pack::{HeParams, Layer};
use veil_ir::schedule::{Kind, LinearOffline, lower};
use veil_ir::{Graph, NodeId, Op};

use crate::cost::plan_cost;
use crate::{Options, Report};

/// Chooses the narrower plaintext widths (see the module doc), replacing any chosen before.
pub(crate) fn choose(g: &mut Graph, opts: &Options, report: &mut Report) {
    g.narrow_bits.retain(|&(n, _)| !matches!(g.nodes[n].op, Op::Dense { .. } | Op::Conv2d { .. }));
    let Some(ell) = g.ring_bits else { return };
    let Ok(steps) = lower(g) else { return };
    let demand = veil_ir::schedule::demand::demanded_bits(g);
    // Per narrower key set, in order of first use: its layers and their widths.
    let mut sets: Vec<(HeParams, Vec<(NodeId, u8)>)> = Vec::new();
    for step in steps.iter().filter(|s| matches!(s.kind, Kind::Linear { offline: LinearOffline::He })) {
        let node = &g.nodes[step.node];
        let Some(k) = Layer::narrower_width(g, node, demand[node.output.index()]) else { continue };
        let Some(params) = Layer::with_width(g, node, k).map(|l| l.params.key_set()) else { continue };
        match sets.iter_mut().find(|(p, _)| *p == params) {
            Some((_, layers)) => layers.push((step.node, k)),
            None => sets.push((params, vec![(step.node, k)])),
        }
    }
    // Each set in turn, kept where the whole plan's predicted offline time falls (the online
    // phase does not change): that counts the set's setup and public key, and the setup of
    // the set its layers leave if no other layer uses it.
    let offline = |g: &Graph| plan_cost(g).ok().map(|c| c.seconds(&opts.network).0);
    let Some(start) = offline(g) else { return };
    let mut best = start;
    let mut chosen: Vec<(NodeId, u8)> = Vec::new();
    for (_, layers) in &sets {
        g.narrow_bits.extend(layers.iter().copied());
        match offline(g) {
            Some(t) if t < best => {
                best = t;
                chosen.extend(layers.iter().copied());
            }
            _ => g.narrow_bits.truncate(g.narrow_bits.len() - layers.len()),
        }
    }
    if chosen.is_empty() {
        return;
    }
    let (lo, hi) = (chosen.iter().map(|c| c.1).min().unwrap_or(ell), chosen.iter().map(|c| c.1).max().unwrap_or(ell));
    report.note(format!(
        "{} HE layer(s) compute modulo 2^{lo}..=2^{hi}, not 2^{ell}: their outputs are read in no more bits (predicted offline {:.1} ms less)",
        chosen.len(),
        (start - best) * 1e3
    ));
}
