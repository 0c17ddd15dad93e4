//! Which Clips run over OT ([`super::Kind::ClipOt`]) and their public counts. A Clip to
//! `[0, hi]` (ReLU6, Hardtanh's positive half, a quantised activation's clamp) is two ReLUs over
//! OT in turn: `z = ReLU(y) >> f` with the truncation fused, then `min(z, hi) = hi − ReLU(hi −
//! z)`. Exact, equal to the garbled `clip_trunc_mask` and to the simulator's clamp, because
//! `0 ≤ z < 2^(ℓ−1)` and `0 ≤ hi < 2^(ℓ−1)` keep `hi − z` inside the signed range. A Clip with a
//! lower bound of 0 and no upper bound (or one beyond the ring) is a ReLU, and runs as one.
//!
//! A Clip to `[lo, hi]` with `lo ≠ 0` (Hardtanh) is `z = lo + ReLU(y − lo·2^f) >> f`, then the
//! same `hi − ReLU(hi − z)`: exact only where `y − lo·2^f` and `hi − z` cannot wrap, which
//! depends on the values' ranges (near the ring's end it wraps, and the circuit gets it right).
//! The plan carries no ranges (nor the weights they come from), so that proof is the
//! compiler's: [`kind`] (what needs no proof) is what `assign_protocols` may list unconditionally,
//! [`listed`] what the schedule runs for a Clip the plan lists, and `assign_protocols` lists one
//! with `lo ≠ 0` only after its range analysis proved both cannot wrap (docs/decisions.md).

use super::relu_ot;
use super::script::Dir;
use super::{Kind, fused};
use crate::ring::Ring;
use crate::{ElemType, Graph, Node, NodeId, Op};

/// A Clip bound in the ring at the scale of the node's operand, as the simulator encodes it:
/// `None` for no bound or one outside the ring (which never binds), else the signed value.
fn bound(g: &Graph, node: &Node, b: Option<f32>) -> Option<i64> {
    let ring = Ring::new(g.ring_bits?);
    let s = match g.values[node.inputs[0]].ty.elem {
        ElemType::Fixed { frac_bits } => frac_bits,
        _ => 0,
    };
    b.and_then(|b| ring.encode(b as f64, s)).map(|e| ring.to_signed(e))
}

/// The lower bound of Clip `node` in the ring (`None`: none, or below the ring, never binding).
pub fn lower_bound(g: &Graph, node: &Node) -> Option<i64> {
    match node.op {
        Op::Clip { min, .. } => bound(g, node, min),
        _ => None,
    }
}

/// How Clip node `id` runs over OT when no range analysis is needed: [`Kind::ClipOt`] for
/// bounds `[0, hi]` with `hi ≥ 0`, [`Kind::ReluOt`] when the upper bound never binds; `None` when
/// the Clip cannot run over OT exactly without a proof on its values' range (another lower
/// bound, a negative upper one, or no ring yet).
pub fn kind(g: &Graph, id: NodeId) -> Option<Kind> {
    let node = &g.nodes[id];
    match (listed(g, id)?, lower_bound(g, node)) {
        (k, Some(0)) => Some(k),
        _ => None,
    }
}

/// How Clip node `id` runs when the plan lists it in `over_ot`: as [`kind`], and for a lower
/// bound `lo ≠ 0` with an upper bound `hi ≥ lo` (both in the ring), [`Kind::ClipOt`] with `lo`,
/// which is exact only where the compiler proved that `y − lo·2^f` and `hi − z` cannot wrap.
pub fn listed(g: &Graph, id: NodeId) -> Option<Kind> {
    let node = &g.nodes[id];
    let Op::Clip { max, .. } = node.op else { return None };
    let ell = u32::from(g.ring_bits?);
    let ring = Ring::new(g.ring_bits?);
    let (input, shift) = fused(g, node.inputs[0]);
    let lo = lower_bound(g, node)?;
    if u32::from(shift) >= ell {
        return None;
    }
    match (max, bound(g, node, max)) {
        (None, _) if lo == 0 => Some(Kind::ReluOt { input, shift, width: ell as u8, out: ell as u8 }),
        (Some(m), None) if m > 0.0 && lo == 0 => Some(Kind::ReluOt { input, shift, width: ell as u8, out: ell as u8 }),
        (Some(_), Some(hi)) if hi >= lo && (lo == 0 || hi.abs_diff(lo) < 1 << (ell - 1)) => {
            Some(Kind::ClipOt { input, shift, lo: ring.from_signed(lo), hi: ring.from_signed(hi) })
        }
        _ => None,
    }
}

/// Random-choice OTs per element with the server sending, both ReLUs (one batch); the client
/// sends [`rots_reversed`].
pub fn rots(ell: u32, shift: u32) -> u64 {
    relu_ot::rots(ell, shift) + relu_ot::rots(ell, 0)
}

/// Random-choice OTs per element with the client sending, both ReLUs (one batch).
pub fn rots_reversed(ell: u32, shift: u32) -> u64 {
    relu_ot::rots_reversed(ell, shift) + relu_ot::rots_reversed(ell, 0)
}

/// The online flights for `n` elements: the first ReLU's, then the second's.
pub fn flights(ell: u32, shift: u32, n: u64) -> Vec<(Dir, u64)> {
    let mut v = relu_ot::flights(ell, ell, shift, n);
    v.extend(relu_ot::flights(ell, ell, 0, n));
    v
}

/// Bytes the client keeps between the phases for `n` elements, its output shares aside: both
/// ReLUs' hashed-down OTs ([`relu_ot::client_bytes`]) and the first one's output mask (8 B each;
/// its share of `hi − z` is the mask's negation, recomputed online).
pub fn client_bytes(ell: u32, shift: u32, n: u64) -> u64 {
    relu_ot::client_bytes(ell, ell, shift, n) + 8 * n + relu_ot::client_bytes(ell, ell, 0, n)
}
