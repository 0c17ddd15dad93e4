//! A comparison and a select, `Where(Less(a, b), p, q)`, as ONNX's function bodies of Clip and
//! LeakyRelu write them (and hand-written `torch.where(x < m, m, x)`):
//! - `Where(x < c, c, x)` and `Where(c < x, x, c)` are `Max(x, c)`; `Where(x < c, x, c)` and
//!   `Where(c < x, c, x)` are `Min(x, c)`, for any `c` (a constant bound, or a computed value:
//!   Max and Min of two values are supported);
//! - `Where(x < 0, α·x, x)` with a scalar `Constant` `α` (through `CastLike`; an attribute
//!   written out, as LeakyRelu's function body writes it) is `LeakyRelu(α)`, and with any other
//!   `α` (an initializer, which is a weight, or a per-channel slope, as PRelu's function body
//!   writes it) is `PRelu(x, α)`, which keeps the slope the server's (its lowering requires `α`
//!   constant and broadcast to `x`).
//!
//! Ties agree: where `x = c` both branches are equal, and at `x = 0`, `α·x = x`. The `Less` (and
//! the `Mul`) must have no other reader.

use super::{Attr, View, become_op, remove};
use crate::onnx::proto::GraphProto;

/// What a select is.
enum Select {
    /// `Max` or `Min` of the two values.
    Extremum(&'static str, String, String),
    /// `LeakyRelu(alpha)` of the value.
    Leaky(String, f32),
    /// `PRelu` of the value with the named slope.
    Prelu(String, String),
}

impl View<'_> {
    /// The select at node `i` and the nodes it replaces.
    fn select(&self, i: usize) -> Option<(Select, Vec<usize>)> {
        let n = &self.nodes[i];
        let [cond, p, q] = n.input.as_slice() else { return None };
        let less = self.made_by(cond, "Less", 1)?;
        let [a, b] = self.nodes[less].input.as_slice() else { return None };
        let extremum = match (p == b && q == a, p == a && q == b) {
            // a < b ? b : a
            (true, false) => Some("Max"),
            // a < b ? a : b
            (false, true) => Some("Min"),
            _ => None,
        };
        if let Some(op) = extremum {
            return Some((Select::Extremum(op, a.clone(), b.clone()), vec![less]));
        }
        // x < 0 ? α·x : x
        (q == a && self.scalar(b) == Some(0.0)).then_some(())?;
        let mul = self.made_by(p, "Mul", 1)?;
        let [u, v] = self.nodes[mul].input.as_slice() else { return None };
        let slope = if v == a {
            u
        } else if u == a {
            v
        } else {
            return None;
        };
        // A slope in an initializer is a weight: PRelu keeps it the server's, where LeakyRelu's
        // alpha would be in the plan.
        let select = match self.scalar(slope) {
            Some(alpha) if !self.is_initializer(slope) => Select::Leaky(a.clone(), alpha),
            _ => Select::Prelu(a.clone(), slope.clone()),
        };
        Some((select, vec![less, mul]))
    }
}

/// Replaces each recognised select in `graph`; returns how many.
pub fn fuse(graph: &mut GraphProto) -> usize {
    let (replace, drop) = {
        let view = View::of(graph);
        let mut replace = Vec::new();
        let mut drop = vec![false; graph.node.len()];
        for i in 0..graph.node.len() {
            if graph.node[i].op_type() == "Where"
                && matches!(graph.node[i].domain(), "" | "ai.onnx")
                && let Some((select, parts)) = view.select(i)
                && !parts.iter().any(|&p| drop[p])
            {
                parts.iter().for_each(|&p| drop[p] = true);
                replace.push((i, select));
            }
        }
        (replace, drop)
    };
    let count = replace.len();
    for (i, select) in replace {
        let n = &mut graph.node[i];
        match select {
            Select::Extremum(op, a, b) => become_op(n, op, vec![a, b], None),
            Select::Leaky(x, alpha) => become_op(n, "LeakyRelu", vec![x], Some(("alpha", Attr::Float(alpha)))),
            Select::Prelu(x, slope) => become_op(n, "PRelu", vec![x, slope], None),
        }
    }
    remove(graph, &drop);
    count
}
