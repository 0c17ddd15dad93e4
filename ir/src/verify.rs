//! The verifier: checks every structural invariant of a [`Graph`] and reports all violations.
//!
//! Contract: a graph that verifies can be printed, interpreted and (later) lowered to a plan
//! without panicking. A failure right after the front end or a pass is a compiler bug.
//!
//! Invariants checked:
//! 1. Every handle (graph inputs and outputs, body nodes, node operands and outputs, constants
//!    an op reads) addresses an existing entry.
//! 2. Graph input `i` is a value defined as `Def::Input(i)` in [`Domain::Client`].
//! 3. Each node appears in the body at most once, and its output value is defined by it.
//! 4. The body is in execution order: every operand is a graph input or the output of an
//!    earlier body node.
//! 5. Each node's output type is what [`crate::Op::infer`] gives for its operand types (which
//!    includes the op's arity, attribute and constant-shape rules).
//! 6. Each node's output domain is what [`crate::Op::output_domain`] gives: domains change only
//!    through explicit protocol steps.
//! 7. Graph outputs are live values in [`Domain::Client`] (revealed to the client).
//! 8. Live values have non-empty, unique names.
//! 9. A constant's data, when present, has exactly as many values as its shape, and so does its
//!    quantized data.
//! 10. A graph with fixed-point values has a ring width ℓ in `2..=61`.
//! 12. Every node in `over_ot` is a live `dense`, `relu`, `clip`, `leaky_relu`, `maxpool`,
//!     `stochastic_relu` or `truncate` node whose input is shared or the client's (the schedule
//!     refuses a MaxPool over OT on an operand that may be negative, a Clip over OT without a
//!     lower bound, and a truncation or LeakyReLU it cannot run over OT).
//! 14. Every entry of `narrow_bits` names a live `relu`, `leaky_relu`, `maxpool`, `clip` or `round` node, or a
//!     `truncate` its reader does not fuse (exact, or local until `fuse_truncation`) with `w`
//!     above its bits, on shared values, once, with a width `w` of at least 3 bits and below ℓ;
//!     not in `over_ot`, but for a ReLU over OT with a fused truncation and `w` more than two bits
//!     above its shift (`schedule::relu_ot_width`). An entry for a `dense` or `conv2d` node is an
//!     HE layer's plaintext width: the node is live, under HE (server weights, not in
//!     `over_ot`), listed once, with `3 ≤ k < ℓ` and `k` at least the bits its output's readers
//!     need (`schedule::demand`), so the narrower modulus changes no result.
//! 15. Every live stochastic `truncate` is read only by a garbled `relu` or `maxpool` on shared
//!     values (not in `over_ot`), whose width (narrowed or ℓ) is at least the truncation's bits + 3.
//! 11. Every value's and constant's element count is at most [`MAX_ELEMENTS`] (checked without
//!     overflow, before any typing rule runs, so a hostile plan cannot make them overflow).
//! 13. No node reads an empty tensor (kernels and protocols divide by dimensions); a graph
//!     output may be empty, as ONNX allows (a slice past the end).
//! 16. Every entry of `raw_inputs` names a graph input, once.

use std::collections::HashMap;
use std::fmt;

use crate::graph::{Def, Graph, ValueId};
use crate::types::Domain;

/// One broken invariant, with where it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The node (by name) or item the violation is about.
    pub location: String,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// All the invariants a graph broke.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct VerifyError {
    /// Every violation found, in the order the checks ran (never empty).
    pub violations: Vec<Violation>,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IR verification failed with {} violation(s)", self.violations.len())?;
        for v in &self.violations {
            write!(f, "\n  {v}")?;
        }
        Ok(())
    }
}

/// Largest element count of any tensor in a graph (2^40).
pub const MAX_ELEMENTS: usize = 1 << 40;

fn elements(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&n| n <= MAX_ELEMENTS)
}

/// Whether every node, value and list entry a graph refers to exists: node operands and
/// outputs, values' producers (each producing that value), and the nodes `body`, `over_ot` and
/// `narrow_bits` name.
fn references_resolve(g: &Graph) -> bool {
    let nodes_ok =
        g.nodes.iter().all(|(_, n)| n.inputs.iter().all(|&v| g.values.contains(v)) && g.values.contains(n.output));
    let values_ok = g.values.iter().all(|(v, value)| match value.def {
        Def::Node(n) => g.nodes.try_get(n).is_some_and(|node| node.output == v),
        Def::Input(_) => true,
    });
    let lists_ok =
        g.body.iter().chain(&g.over_ot).chain(g.narrow_bits.iter().map(|(n, _)| n)).all(|&n| g.nodes.contains(n))
            && g.outputs.iter().all(|&v| g.values.contains(v));
    nodes_ok && values_ok && lists_ok
}

/// Checks every invariant listed in the module doc; collects all violations.
pub fn verify(g: &Graph) -> Result<(), VerifyError> {
    let mut out = Vec::new();
    let mut bad = |location: String, message: String| out.push(Violation { location, message });
    let val = |v: ValueId| format!("%{}", v.index());

    // (11) sizes first: everything below multiplies shapes.
    let mut sizes_ok = true;
    for (v, value) in g.values.iter() {
        if elements(&value.ty.shape).is_none() {
            bad(val(v), format!("shape {:?} has more than 2^40 elements", value.ty.shape));
            sizes_ok = false;
        }
    }
    for (c, k) in g.consts.iter() {
        if elements(&k.shape).is_none() {
            bad(format!("@{} {:?}", c.index(), k.name), format!("shape {:?} has more than 2^40 elements", k.shape));
            sizes_ok = false;
        }
    }
    let op_sizes_ok = g.nodes.iter().all(|(_, n)| match &n.op {
        crate::Op::Reshape { shape } | crate::Op::Select { shape, .. } => elements(shape).is_some(),
        crate::Op::Pad { pads, .. } => pads.iter().all(|&p| p <= MAX_ELEMENTS),
        _ => true,
    });
    if !sizes_ok || !op_sizes_ok {
        if !op_sizes_ok {
            bad("graph".into(), "an op's shape or padding attribute exceeds 2^40 elements".into());
        }
        return Err(VerifyError { violations: out });
    }

    // (9) constants.
    for (c, k) in g.consts.iter() {
        let n: usize = k.shape.iter().product();
        if !k.data.is_empty() && k.data.len() != n {
            bad(format!("@{} {:?}", c.index(), k.name), format!("{} values for shape {:?}", k.data.len(), k.shape));
        }
    }

    // (14) Narrowed ReLU, MaxPool, Clip, rounding and exact truncation circuits (a truncation
    // in its own circuit, not fused into its reader; listed while still local, it is read
    // narrowed once exact: `schedule::narrowed_reads`).
    let mut seen = std::collections::HashSet::new();
    // The rules below that follow operands and producers (`schedule::demand`, fused truncations)
    // run only on a graph whose references resolve; the structural rules report the others.
    let sound = references_resolve(g);
    let demanded = (sound && !g.narrow_bits.is_empty() && g.ring_bits.is_some())
        .then(|| crate::schedule::demand::demanded_bits(g));
    for &(n, w) in &g.narrow_bits {
        let linear = g
            .nodes
            .try_get(n)
            .is_some_and(|node| matches!(node.op, crate::Op::Dense { .. } | crate::Op::Conv2d { .. }));
        if linear {
            // An HE layer's plaintext width: at least what its output's readers need.
            let ok = g.nodes.try_get(n).is_some_and(|node| {
                g.body.contains(&n)
                    && !g.over_ot.contains(&n)
                    && seen.insert(n)
                    && g.ring_bits.is_some_and(|l| (3..l).contains(&w))
                    && node
                        .op
                        .consts()
                        .first()
                        .and_then(|&c| g.consts.try_get(c))
                        .is_some_and(|c| c.domain == Domain::Server)
                    && demanded.as_ref().and_then(|d| d.get(node.output.index())).is_some_and(|&need| w >= need)
            });
            if !ok {
                bad(
                    format!("node #{}", n.index()),
                    format!(
                        "narrow_bits gives a plaintext width {w} to a layer that is not a live dense or convolution layer under HE, twice, outside 3..ℓ, or below the bits its output's readers need"
                    ),
                );
            }
            continue;
        }
        let ok = g.nodes.try_get(n).is_some_and(|node| {
            g.body.contains(&n)
                && match node.op {
                    crate::Op::Relu
                    | crate::Op::LeakyRelu { .. }
                    | crate::Op::MaxPool { .. }
                    | crate::Op::Clip { .. }
                    | crate::Op::Round { .. } => true,
                    crate::Op::Truncate { bits, mode: crate::TruncMode::Exact | crate::TruncMode::Local } => {
                        w > bits && !crate::schedule::fuses_into_reader(g, node.output)
                    }
                    _ => false,
                }
                && seen.insert(n)
                && g.ring_bits.is_some_and(|l| (3..l).contains(&w))
                && node.inputs.first().and_then(|&v| g.values.try_get(v)).is_some_and(|v| v.domain == Domain::Shared)
                && (!g.over_ot.contains(&n)
                    || sound
                        && matches!(node.op, crate::Op::Relu)
                        && crate::schedule::relu_ot_width(g, n, crate::schedule::fused(g, node.inputs[0]).1).is_some())
        });
        if !ok {
            bad(
                format!("node #{}", n.index()),
                format!(
                    "narrow_bits names a node that is not a live garbled ReLU, LeakyReLU, MaxPool, Clip, rounding or unfused truncation, or ReLU over OT with a fused truncation more than two bits below the width, on shared values, twice, or a width {w} outside 3..ℓ"
                ),
            );
        }
    }

    // (16) Declared raw input types.
    let mut named = std::collections::HashSet::new();
    for &(i, t) in &g.raw_inputs {
        if i >= g.inputs.len() || !named.insert(i) {
            bad(
                "graph".into(),
                format!("raw_inputs names input {i} ({t}), which is not a graph input or is named twice"),
            );
        }
    }

    // (12) OT-offline linear layers.
    for &n in &g.over_ot {
        let ok = g.nodes.try_get(n).is_some_and(|node| {
            g.body.contains(&n)
                && matches!(
                    node.op,
                    crate::Op::Dense { .. }
                        | crate::Op::Relu
                        | crate::Op::Clip { .. }
                        | crate::Op::LeakyRelu { .. }
                        | crate::Op::MaxPool { .. }
                        | crate::Op::StochasticRelu { .. }
                        | crate::Op::Truncate { .. }
                )
                && node
                    .inputs
                    .first()
                    .and_then(|&v| g.values.try_get(v))
                    .is_some_and(|v| matches!(v.domain, Domain::Shared | Domain::Client))
        });
        if !ok {
            bad(
                format!("node #{}", n.index()),
                "over_ot names a node that is not a live dense layer, ReLU, Clip, LeakyReLU, MaxPool, \
                 stochastic ReLU or truncation on shared values"
                    .into(),
            );
        }
    }

    // (10) ring width.
    let fixed = g.values.iter().any(|(_, v)| matches!(v.ty.elem, crate::ElemType::Fixed { .. }));
    match g.ring_bits {
        None if fixed => bad("graph".into(), "has fixed-point values but no ring width".into()),
        Some(b) if !(2..=crate::ring::MAX_RING_BITS).contains(&b) => {
            bad("graph".into(), format!("ring width {b} is outside 2..={}", crate::ring::MAX_RING_BITS))
        }
        _ => {}
    }
    for (c, k) in g.consts.iter() {
        let n: usize = k.shape.iter().product();
        if k.frac_bits.is_some() && !k.qdata.is_empty() && k.qdata.len() != n {
            bad(
                format!("@{} {:?}", c.index(), k.name),
                format!("{} quantized values for shape {:?}", k.qdata.len(), k.shape),
            );
        }
    }

    // (1, 2) graph inputs.
    let mut defined = vec![false; g.values.len()];
    for (i, &v) in g.inputs.iter().enumerate() {
        let Some(value) = g.values.try_get(v) else {
            bad(format!("input {i}"), format!("value {} does not exist", val(v)));
            continue;
        };
        if value.def != Def::Input(i) {
            bad(format!("input {i}"), format!("value {} is defined as {:?}", val(v), value.def));
        }
        if value.domain != Domain::Client {
            bad(format!("input {i}"), format!("domain is {}, expected client", value.domain));
        }
        defined[v.index()] = true;
    }

    // (1, 3, 4, 5, 6) body.
    let mut seen_node = vec![false; g.nodes.len()];
    for &n in &g.body {
        let Some(node) = g.nodes.try_get(n) else {
            bad("body".into(), format!("node [{}] does not exist", n.index()));
            continue;
        };
        let loc = format!("node {:?} ({})", node.name, node.op.mnemonic());
        if std::mem::replace(&mut seen_node[n.index()], true) {
            bad(loc.clone(), "appears twice in the body".into());
        }
        let mut operands_ok = true;
        for &v in &node.inputs {
            if !g.values.contains(v) {
                bad(loc.clone(), format!("operand {} does not exist", val(v)));
                operands_ok = false;
            } else if !defined[v.index()] {
                bad(loc.clone(), format!("operand {} is not defined before use", val(v)));
            }
        }
        for c in node.op.consts() {
            if !g.consts.contains(c) {
                bad(loc.clone(), format!("constant @{} does not exist", c.index()));
                operands_ok = false;
            }
        }
        let Some(output) = g.values.try_get(node.output) else {
            bad(loc, format!("output {} does not exist", val(node.output)));
            continue;
        };
        if output.def != Def::Node(n) {
            bad(loc.clone(), format!("output {} is defined as {:?}", val(node.output), output.def));
        }
        if operands_ok {
            let tys: Vec<_> = node.inputs.iter().map(|&v| &g.values[v].ty).collect();
            match node.op.infer(&tys, &g.consts) {
                Ok(ty) if ty != output.ty => {
                    bad(loc.clone(), format!("output type is {}, the op gives {ty}", output.ty));
                }
                Ok(_) => {}
                Err(e) => bad(loc.clone(), e),
            }
            let doms: Vec<_> = node.inputs.iter().map(|&v| g.values[v].domain).collect();
            match node.op.output_domain(&doms, &g.consts) {
                Ok(d) if d != output.domain => {
                    bad(loc.clone(), format!("output domain is {}, the operands give {d}", output.domain));
                }
                Ok(_) => {}
                Err(e) => bad(loc.clone(), e),
            }
            if let Some(&v) = node.inputs.iter().find(|&&v| g.values[v].ty.shape.contains(&0)) {
                bad(
                    loc.clone(),
                    format!(
                        "operand {} is empty (shape {:?}); only a graph output may be",
                        val(v),
                        g.values[v].ty.shape
                    ),
                );
            }
        }
        defined[node.output.index()] = true;
    }

    // (7) outputs.
    for (i, &v) in g.outputs.iter().enumerate() {
        match g.values.try_get(v) {
            None => bad(format!("output {i}"), format!("value {} does not exist", val(v))),
            Some(_) if !defined[v.index()] => bad(format!("output {i}"), format!("value {} is not live", val(v))),
            Some(value) if value.domain != Domain::Client => {
                bad(format!("output {i}"), format!("domain is {}, expected client (missing reveal?)", value.domain))
            }
            Some(_) => {}
        }
    }

    // (8) names of live values.
    let mut names: HashMap<&str, ValueId> = HashMap::new();
    for (v, value) in g.values.iter() {
        if !defined[v.index()] {
            continue;
        }
        if value.name.is_empty() {
            bad(val(v), "has an empty name".into());
        } else if let Some(prev) = names.insert(&value.name, v) {
            bad(val(v), format!("name {:?} is also used by {}", value.name, val(prev)));
        }
    }

    // (15) Stochastic truncations, read shifted by the garbled ReLU or MaxPool after them (on
    // a graph whose handles all check: the rule follows values to their readers).
    if !out.is_empty() {
        return Err(VerifyError { violations: out });
    }
    for (id, node) in g.live_nodes() {
        let crate::Op::Truncate { mode: crate::TruncMode::Stochastic, .. } = node.op else { continue };
        if g.users(node.output).first().and_then(|&r| crate::schedule::shifted_read(g, r)).is_none() {
            out.push(Violation {
                location: format!("node #{} {:?}", id.index(), node.name),
                message: "a stochastic truncation must be read only by a garbled ReLU or MaxPool on shared values, in a width of \
                 at least its bits plus 3"
                    .into(),
            });
        }
    }

    if out.is_empty() { Ok(()) } else { Err(VerifyError { violations: out }) }
}
