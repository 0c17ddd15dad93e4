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

use std::collections::HashMap;

use super::consts;
use super::proto::{AttributeProto, GraphProto, NodeProto, attribute_proto::AttributeType};

/// The graph's constant integer tensors: initializers and `Constant` nodes' values.
fn constant_ints(graph: &GraphProto) -> HashMap<&str, Vec<i64>> {
    let mut out = HashMap::new();
    for t in &graph.initializer {
        if let Ok(v) = consts::from_proto(t).and_then(|c| c.ints()) {
            out.insert(t.name(), v);
        }
    }
    for n in graph.node.iter().filter(|n| n.op_type() == "Constant") {
        let value = n.attribute.iter().find(|a| a.name() == "value").and_then(|a| a.t.as_ref());
        let ints = n.attribute.iter().find(|a| a.name() == "value_ints").map(|a| a.ints.clone());
        let v = value.and_then(|t| consts::from_proto(t).and_then(|c| c.ints()).ok()).or(ints);
        if let (Some(v), Some(o)) = (v, n.output.first()) {
            out.insert(o.as_str(), v);
        }
    }
    out
}

/// What the pass sees of the graph.
struct View<'a> {
    nodes: &'a [NodeProto],
    /// Producer node of each value.
    producer: HashMap<&'a str, usize>,
    /// Readers of each value; a graph output counts as one more.
    readers: HashMap<&'a str, usize>,
    ints: HashMap<&'a str, Vec<i64>>,
}

impl<'a> View<'a> {
    fn of(graph: &'a GraphProto) -> View<'a> {
        let mut producer = HashMap::new();
        let mut readers: HashMap<&str, usize> = HashMap::new();
        for (i, n) in graph.node.iter().enumerate() {
            for o in &n.output {
                producer.insert(o.as_str(), i);
            }
            for x in n.input.iter().filter(|x| !x.is_empty()) {
                *readers.entry(x.as_str()).or_default() += 1;
            }
        }
        for o in &graph.output {
            *readers.entry(o.name()).or_default() += 1;
        }
        View { nodes: &graph.node, producer, readers, ints: constant_ints(graph) }
    }

    /// The node of type `op` producing `v`, if `v` has exactly `uses` readers.
    fn made_by(&self, v: &str, op: &str, uses: usize) -> Option<usize> {
        let i = *self.producer.get(v)?;
        let n = &self.nodes[i];
        (n.op_type() == op
            && matches!(n.domain(), "" | "ai.onnx")
            && self.readers.get(v) == Some(&uses)
            && n.output.len() == 1)
            .then_some(i)
    }

    /// The single axis of a reduction with `keepdims = 1`.
    fn axis(&self, i: usize) -> Option<i64> {
        let n = &self.nodes[i];
        let attr = |name: &str| n.attribute.iter().find(|a| a.name() == name);
        if attr("keepdims").and_then(|a| a.i).unwrap_or(1) != 1 {
            return None;
        }
        let axes = match (attr("axes"), n.input.get(1).filter(|s| !s.is_empty())) {
            (Some(a), None) => a.ints.clone(),
            (None, Some(input)) => self.ints.get(input.as_str())?.clone(),
            _ => return None,
        };
        (axes.len() == 1).then(|| axes[0])
    }

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
        let n = &mut graph.node[i];
        n.op_type = Some(op.to_string());
        n.input = vec![x];
        n.attribute = vec![AttributeProto {
            name: Some("axis".into()),
            r#type: Some(AttributeType::Int as i32),
            i: Some(axis),
            ..Default::default()
        }];
    }
    let mut k = 0;
    graph.node.retain(|_| {
        k += 1;
        !drop[k - 1]
    });
    count
}
