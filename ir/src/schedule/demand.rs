//! The bits of each value that its readers need: a ring width per value, for the protocols that
//! can run in a narrower ring than the plan's ℓ (docs/decisions.md, "Ring width per layer").
//!
//! Reducing both shares modulo `2^k` is a ring homomorphism, so every integer-linear step (sums,
//! public or server-constant scales and shifts, data movement, dense and convolution layers)
//! computes its output modulo `2^k` from its operands modulo `2^k` alone. A value whose readers
//! each read only its low `k` bits (narrowed reads, [`super::narrowed_reads`]), directly or
//! through such steps, therefore needs its shares correct modulo `2^k` only: an HE layer
//! producing it may use the plaintext modulus `2^k` ([`crate::he_pack::Layer::of`]). Every other
//! reader (comparisons over all ℓ bits, local truncations, products of two shares, reveals) needs
//! all ℓ bits. The rule is a function of the public plan, so both parties and the cost model
//! derive the same widths.

use std::collections::HashMap;

use super::narrowed_reads;
use crate::{Graph, NodeId, Op, ValueId};

/// The bits of each value its live readers need, indexed by value: at most ℓ, 0 for a value no
/// live node reads and no output reveals.
pub fn demanded_bits(g: &Graph) -> Vec<u8> {
    let ell = g.ring_bits.unwrap_or(64);
    let narrowed: HashMap<NodeId, u8> = narrowed_reads(g).into_iter().collect();
    let mut need = vec![0u8; g.values.len()];
    for &v in &g.outputs {
        need[v.index()] = ell;
    }
    let body: Vec<(NodeId, &crate::Node)> = g.live_nodes().collect();
    for &(id, node) in body.iter().rev() {
        let out = need[node.output.index()];
        for (k, &v) in node.inputs.iter().enumerate() {
            let bits = match narrowed.get(&id) {
                Some(&w) if k == 0 => w,
                _ if integer_linear(&node.op) => out,
                _ => ell,
            };
            let slot = &mut need[v.index()];
            *slot = (*slot).max(bits);
        }
    }
    need
}

/// The bits of `v` its readers need ([`demanded_bits`]).
pub fn demanded(g: &Graph, v: ValueId) -> u8 {
    demanded_bits(g)[v.index()]
}

/// Whether `op`'s output modulo `2^k` is a function of its operands modulo `2^k`, for every `k`,
/// whatever protocol computes it exactly in the ring: sums and differences, affine maps with
/// integer (public or server) constants, data movement and zero or constant padding, sum pools,
/// and dense and convolution layers with integer weights.
fn integer_linear(op: &Op) -> bool {
    matches!(
        op,
        Op::Add
            | Op::Sub
            | Op::Affine { .. }
            | Op::SumPool { .. }
            | Op::Select { .. }
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Concat { .. }
            | Op::Pad { .. }
            | Op::Dense { .. }
            | Op::Conv2d { .. }
    )
}
