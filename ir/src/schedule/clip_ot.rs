//! Which Clips run over OT ([`super::Kind::ClipOt`]) and their public counts. A Clip to
//! `[0, hi]` (ReLU6, Hardtanh's positive half, a quantised activation's clamp) is two ReLUs over
//! OT in turn: `z = ReLU(y) >> f` with the truncation fused, then `min(z, hi) = hi − ReLU(hi −
//! z)`. Exact, equal to the garbled `clip_trunc_mask` and to the simulator's clamp, because
//! `0 ≤ z < 2^(ℓ−1)` and `0 ≤ hi < 2^(ℓ−1)` keep `hi − z` inside the signed range. A Clip whose
//! lower bound is not 0 stays a garbled circuit: `lo + ReLU(x − lo)` wraps for `x` within `|lo|`
//! of the ring's end, which the circuit gets right (docs/decisions.md). A Clip with a lower
//! bound of 0 and no upper bound (or one beyond the ring) is a ReLU, and runs as one.

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

/// How Clip node `id` runs over OT: [`Kind::ClipOt`] for bounds `[0, hi]` with `hi ≥ 0`,
/// [`Kind::ReluOt`] when the upper bound never binds; `None` when the Clip cannot run over OT
/// exactly (another lower bound, a negative upper one, or no ring yet).
pub fn kind(g: &Graph, id: NodeId) -> Option<Kind> {
    let node = &g.nodes[id];
    let Op::Clip { max, .. } = node.op else { return None };
    let ell = u32::from(g.ring_bits?);
    let (input, shift) = fused(g, node.inputs[0]);
    if lower_bound(g, node) != Some(0) || u32::from(shift) >= ell {
        return None;
    }
    match (max, bound(g, node, max)) {
        (None, _) => Some(Kind::ReluOt { input, shift }),
        (Some(m), None) if m > 0.0 => Some(Kind::ReluOt { input, shift }),
        (Some(_), Some(hi)) if hi >= 0 => Some(Kind::ClipOt { input, shift, hi: hi as u64 }),
        _ => None,
    }
}

/// Random-choice OTs per element with the server sending, both ReLUs (one batch); the client
/// sends two per element.
pub fn rots(ell: u32, shift: u32) -> u64 {
    relu_ot::rots(ell, shift) + relu_ot::rots(ell, 0)
}

/// The online flights for `n` elements: the first ReLU's, then the second's.
pub fn flights(ell: u32, shift: u32, n: u64) -> Vec<(Dir, u64)> {
    let mut v = relu_ot::flights(ell, shift, n);
    v.extend(relu_ot::flights(ell, 0, n));
    v
}

/// Bytes the client keeps between the phases for `n` elements, its output shares aside: both
/// ReLUs' hashed-down OTs ([`relu_ot::client_bytes`]) and the first one's output mask (8 B each;
/// its share of `hi − z` is the mask's negation, recomputed online).
pub fn client_bytes(ell: u32, shift: u32, n: u64) -> u64 {
    relu_ot::client_bytes(ell, shift, n) + 8 * n + relu_ot::client_bytes(ell, 0, n)
}
