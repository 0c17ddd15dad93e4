//! Softmax and LogSoftmax written out: ONNX's own function bodies (what `onnx` expands them to)
//! and models that write `exp(x − max) / Σ exp(x − max)` by hand. Before import, each such chain
//! becomes one Softmax or LogSoftmax node, which then runs on the client at the end of the model
//! exactly like the op (`ops::post`); in the middle of a model it gets the op's refusal, which
//! names it, instead of one for its `Exp`.
//!
//! Recognised, over one axis `a` (`axes = [a]`, `keepdims = 1`, as an attribute or a constant
//! input), with `c = x − ReduceMax(x)` or just `c = x`:
//! - Softmax: `Exp(c) / ReduceSum(Exp(c))`;
//! - LogSoftmax: `c − Log(ReduceSum(Exp(c)))`.
//!
//! Every intermediate must be read only inside the chain (and be no graph output), so nothing
//! else loses a value. The max subtraction does not change either function, so the fused op
//! computes what the chain does. Below opset 13 only `a = −1` is fused, where the op's legacy
//! 2-D coercion does not apply.

use super::{Attr, View, become_op, remove};
use crate::onnx::proto::GraphProto;

impl<'a> View<'a> {
    /// `c = x − ReduceMax(x)` over `axis` with `c` read `uses` times: `x` and the two nodes;
    /// otherwise `c` itself and none.
    fn centred(&self, c: &'a str, axis: i64, uses: usize) -> (&'a str, Vec<usize>) {
        let found = self.made_by(c, "Sub", uses).and_then(|sub| {
            let [x, m] = self.nodes[sub].input.as_slice() else { return None };
            let max = self.made_by(m, "ReduceMax", 1)?;
            (self.nodes[max].input.first() == Some(x) && self.axis(max) == Some(axis))
                .then(|| (x.as_str(), vec![max, sub]))
        });
        found.unwrap_or((c, Vec::new()))
    }

    /// `Exp(c)` read `uses` times and summed over one axis by `sum`: `(c, axis, exp)`.
    fn exp_sum(&self, e: &'a str, sum: usize, uses: usize) -> Option<(&'a str, i64, usize)> {
        let exp = self.made_by(e, "Exp", uses)?;
        (self.nodes[sum].input.first().map(String::as_str) == Some(e)).then_some(())?;
        Some((self.nodes[exp].input.first()?.as_str(), self.axis(sum)?, exp))
    }

    /// A written-out Softmax or LogSoftmax ending at node `i`: the fused op's type, its operand,
    /// its axis, and the chain's other nodes.
    fn chain(&self, i: usize) -> Option<(&'static str, &'a str, i64, Vec<usize>)> {
        let n = &self.nodes[i];
        let [a, b] = n.input.as_slice() else { return None };
        match n.op_type() {
            "Div" => {
                let sum = self.made_by(b, "ReduceSum", 1)?;
                let (c, axis, exp) = self.exp_sum(a, sum, 2)?;
                let (x, mut parts) = self.centred(c, axis, 1);
                parts.extend([exp, sum]);
                Some(("Softmax", x, axis, parts))
            }
            "Sub" => {
                let log = self.made_by(b, "Log", 1)?;
                let sum = self.made_by(self.nodes[log].input.first()?, "ReduceSum", 1)?;
                let (c, axis, exp) = self.exp_sum(self.nodes[sum].input.first()?, sum, 1)?;
                (c == a.as_str()).then_some(())?;
                let (x, mut parts) = self.centred(c, axis, 2);
                parts.extend([exp, sum, log]);
                Some(("LogSoftmax", x, axis, parts))
            }
            _ => None,
        }
    }
}

/// Replaces each written-out Softmax or LogSoftmax in `graph` by the op (under the model's
/// default opset `opset`); returns how many.
pub fn fuse(graph: &mut GraphProto, opset: i64) -> usize {
    let (replace, drop) = {
        let view = View::of(graph);
        let mut replace = Vec::new();
        let mut drop = vec![false; graph.node.len()];
        for i in 0..graph.node.len() {
            if matches!(graph.node[i].domain(), "" | "ai.onnx")
                && let Some((op, x, axis, parts)) = view.chain(i)
                && (opset >= 13 || axis == -1)
                && !parts.iter().any(|&p| drop[p])
            {
                parts.iter().for_each(|&p| drop[p] = true);
                replace.push((i, op, x.to_string(), axis));
            }
        }
        (replace, drop)
    };
    let count = replace.len();
    for (i, op, x, axis) in replace {
        become_op(&mut graph.node[i], op, vec![x], Some(("axis", Attr::Int(axis))));
    }
    remove(graph, &drop);
    count
}
