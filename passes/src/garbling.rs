//! The garbling scheme of a plan (`--garbling`, written to [`veil_ir::Graph::garbling`] by
//! `assign_protocols`): half-gates, three halves, or the cost model's choice for the network.
//!
//! The model for `auto`: per garbled batch, the offline phase garbles chunk `k + 1` while chunk
//! `k` is sent (`runtime/src/proto/gc.rs`), so it costs the larger of the garbling CPU and the
//! tables' link time; the online phase evaluates (the online bytes are the same under both
//! schemes). `auto` picks the scheme of the smaller predicted offline + online seconds: three
//! halves sends 23 % fewer table bytes but garbles and evaluates more slowly ([`crate::cost::cpu`]),
//! so it wins where the link, not the CPU, bounds the offline phase.

use veil_ir::{Garbling, Graph};

use crate::cost::{Network, and_rates};

/// Predicted `(offline, online)` seconds of the garbled batches of `g` under `scheme` on `net`
/// (the model in the module doc; OT and the other steps are left out, they do not depend on
/// the scheme). `None` when the plan has a step the runtime cannot run.
pub fn garbled_seconds(g: &Graph, scheme: Garbling, net: &Network) -> Option<(f64, f64)> {
    let (garble, eval) = and_rates(scheme);
    let steps = veil_ir::schedule::lower(g).ok()?;
    Some(steps.iter().flat_map(|s| s.gc_batches(g)).fold((0.0, 0.0), |(off, on), b| {
        let ands = b.and_gates() as f64;
        let bytes = b.instances as f64 * scheme.table_bytes(b.circuit.and_count()) as f64;
        let link = 8.0 * bytes / (net.bandwidth_mbit_s * 1e6);
        (off + (ands / garble).max(link), on + ands / eval)
    }))
}

/// The scheme `auto` picks for `g` on `net`, with both schemes' predicted seconds
/// `[(half-gates), (three halves)]` (half-gates when the plan cannot be priced or on a tie).
pub fn choose(g: &Graph, net: &Network) -> (Garbling, Option<[(f64, f64); 2]>) {
    let (Some(h), Some(t)) =
        (garbled_seconds(g, Garbling::HalfGates, net), garbled_seconds(g, Garbling::ThreeHalves, net))
    else {
        return (Garbling::HalfGates, None);
    };
    let pick = if t.0 + t.1 < h.0 + h.1 { Garbling::ThreeHalves } else { Garbling::HalfGates };
    (pick, Some([h, t]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per AND of the ℓ = 61 exact ReLU on the LAN (1 Gbit/s): half-gates is link-bound at 256
    /// ns + 29.5 ns evaluating, three halves at 197 + 54 ns; at 10 Gbit/s both are CPU-bound and
    /// half-gates is faster (62 + 29.5 ns against 111 + 54 ns).
    #[test]
    fn three_halves_wins_where_the_link_bounds_the_offline_phase() {
        let per_and = |scheme: Garbling, mbit: f64| {
            let (garble, eval) = and_rates(scheme);
            let link = 8.0 * scheme.table_bytes(1000) as f64 / 1000.0 / (mbit * 1e6);
            (1.0 / garble).max(link) + 1.0 / eval
        };
        for mbit in [100.0, 1000.0] {
            assert!(per_and(Garbling::ThreeHalves, mbit) < per_and(Garbling::HalfGates, mbit), "{mbit} Mbit/s");
        }
        assert!(per_and(Garbling::HalfGates, 10_000.0) < per_and(Garbling::ThreeHalves, 10_000.0));
    }
}
