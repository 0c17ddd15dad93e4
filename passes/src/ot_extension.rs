//! The OT extension of a plan's chosen-input OT batches (`--ot-extension`, written to
//! [`veil_ir::Graph::ot_extension`] by `assign_protocols`): IKNP, silent OT, or the cost
//! model's choice for the network.
//!
//! The model for `auto`: the whole plan priced under each ([`crate::cost::plan_cost`]: the
//! scripts' exact bytes and rounds, and CPU at IKNP's or silent OT's rate per OT), and the one
//! of the smaller predicted offline + online seconds on the network is chosen. The batches are
//! offline, so the online phase is the same under both; IKNP sends 16–32 bytes per OT and
//! computes several times faster, so it wins on fast links and silent OT on slow ones.

use veil_ir::{Graph, OtExtension};

use crate::cost::{Network, plan_cost};

/// Predicted `(offline, online)` seconds of `g` under `ext` on `net` (`None`: the plan cannot
/// be priced).
pub fn seconds(g: &Graph, ext: OtExtension, net: &Network) -> Option<(f64, f64)> {
    let mut g = g.clone();
    g.ot_extension = ext;
    plan_cost(&g).ok().map(|c| c.seconds(net))
}

/// The extension `auto` picks for `g` on `net`, with both predictions `[iknp, silent]` (IKNP
/// when the plan cannot be priced, has no chosen-input batch, or on a tie).
pub fn choose(g: &Graph, net: &Network) -> (OtExtension, Option<[(f64, f64); 2]>) {
    let (Some(i), Some(s)) = (seconds(g, OtExtension::Iknp, net), seconds(g, OtExtension::Silent, net)) else {
        return (OtExtension::Iknp, None);
    };
    let pick = if s.0 + s.1 < i.0 + i.1 { OtExtension::Silent } else { OtExtension::Iknp };
    (pick, Some([i, s]))
}
