//! Which LeakyReLUs run over OT ([`super::Kind::LeakyReluOt`]) and their public counts. The
//! simulator's fixed-point LeakyReLU of `z = y >> f` (the fused truncation) is `z` for `z ≥ 0`,
//! else `(z·a mod 2^ℓ) >> 16` with `a = round(α·2^16)` (`crate::eval::LEAKY_ALPHA_BITS`; the
//! product may wrap, and the circuit `leaky_relu_trunc_mask` wraps with it). Over OT it is
//! composed, exactly, for any `α`: `z` by a truncation over OT ([`super::trunc_ot`], none at
//! `f = 0`), `t = (a·z) >> 16` by a second one on the locally scaled shares, and
//! `out = t + keep(z)·(z − t)` by a shift-0 ReLU over OT whose comparison reads `z` and whose
//! products move `z − t` (a select, [`super::relu_ot`]). The client's output share is fixed
//! offline (its masks of `t` and of the select).

use super::script::Dir;
use super::{Kind, fused, relu_ot, trunc_ot};
use crate::eval::LEAKY_ALPHA_BITS;
use crate::ring::Ring;
use crate::{Graph, NodeId, Op};

/// How LeakyReLU node `id` runs over OT: [`Kind::LeakyReluOt`] when the fused shift is below
/// `ℓ`, the ring is wider than the slope's 16 fractional bits and the slope encodes in it (as the
/// simulator requires); `None` otherwise.
pub fn kind(g: &Graph, id: NodeId) -> Option<Kind> {
    let node = &g.nodes[id];
    let Op::LeakyRelu { alpha } = node.op else { return None };
    let ell = g.ring_bits?;
    let (input, shift) = fused(g, node.inputs[0]);
    if shift >= ell || ell <= LEAKY_ALPHA_BITS {
        return None;
    }
    let alpha = Ring::new(ell).encode(alpha as f64, LEAKY_ALPHA_BITS)?;
    Some(Kind::LeakyReluOt { input, shift, alpha })
}

/// The parts in order, as `(shift, is a truncation)`: the fused truncation (if any), the slope's
/// truncation, the select.
fn parts(shift: u32) -> Vec<(u32, bool)> {
    let mut v = Vec::new();
    if shift > 0 {
        v.push((shift, true));
    }
    v.extend([(u32::from(LEAKY_ALPHA_BITS), true), (0, false)]);
    v
}

/// Random-choice OTs per element with the server sending, all parts (one batch).
pub fn rots(ell: u32, shift: u32) -> u64 {
    parts(shift).into_iter().map(|(f, t)| if t { trunc_ot::rots(ell, f) } else { relu_ot::rots(ell, 0) }).sum()
}

/// Random-choice OTs per element with the client sending, all parts (one batch).
pub fn rots_reversed(ell: u32, shift: u32) -> u64 {
    parts(shift)
        .into_iter()
        .map(|(_, t)| if t { trunc_ot::ROTS_REVERSED } else { relu_ot::rots_reversed(ell, 0) })
        .sum()
}

/// The online flights for `n` elements: each part's in turn.
pub fn flights(ell: u32, shift: u32, n: u64) -> Vec<(Dir, u64)> {
    parts(shift)
        .into_iter()
        .flat_map(|(f, t)| if t { trunc_ot::flights(ell, f, n) } else { relu_ot::flights(ell, ell, 0, n) })
        .collect()
}

/// Bytes the client keeps between the phases for `n` elements, its output shares aside: each
/// part's hashed-down OTs and each part's output mask (8 B each: the fused truncation's is its
/// share of `z`, the slope truncation's and the select's add up to its output share).
pub fn client_bytes(ell: u32, shift: u32, n: u64) -> u64 {
    parts(shift)
        .into_iter()
        .map(|(f, t)| 8 * n + if t { trunc_ot::client_bytes(ell, f, n) } else { relu_ot::client_bytes(ell, ell, 0, n) })
        .sum()
}
