//! Ops written out as chains of other ops, recognised on the ONNX graph before import and
//! replaced by the op they compute: Softmax and LogSoftmax ([`softmax`]), and the
//! comparison-and-select forms of Max, Min and LeakyRelu ([`select`]). Each chain's
//! intermediates must be read only inside it (and be no graph output), so nothing else loses a
//! value.

use std::collections::HashMap;

use super::consts;
use super::proto::{AttributeProto, GraphProto, NodeProto, attribute_proto::AttributeType};

mod select;
mod softmax;

/// Replaces every recognised chain in `graph` (under the model's default opset `opset`).
pub fn fuse(graph: &mut GraphProto, opset: i64) {
    softmax::fuse(graph, opset);
    select::fuse(graph);
}

/// Constant tensors by value name.
type Named<'a, T> = HashMap<&'a str, Vec<T>>;

/// What the pass sees of the graph.
pub(super) struct View<'a> {
    pub(super) nodes: &'a [NodeProto],
    /// Producer node of each value.
    producer: HashMap<&'a str, usize>,
    /// Readers of each value; a graph output counts as one more.
    readers: HashMap<&'a str, usize>,
    ints: HashMap<&'a str, Vec<i64>>,
    floats: HashMap<&'a str, Vec<f32>>,
}

impl<'a> View<'a> {
    pub(super) fn of(graph: &'a GraphProto) -> View<'a> {
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
        let (ints, floats) = constants(graph);
        View { nodes: &graph.node, producer, readers, ints, floats }
    }

    /// The node of type `op` producing `v`, if `v` has exactly `uses` readers.
    pub(super) fn made_by(&self, v: &str, op: &str, uses: usize) -> Option<usize> {
        let i = *self.producer.get(v)?;
        let n = &self.nodes[i];
        (n.op_type() == op
            && matches!(n.domain(), "" | "ai.onnx")
            && self.readers.get(v) == Some(&uses)
            && n.output.len() == 1)
            .then_some(i)
    }

    /// The single axis of a reduction with `keepdims = 1`.
    pub(super) fn axis(&self, i: usize) -> Option<i64> {
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

    /// Whether `v` is (through `CastLike`s) an initializer: the model's data, a weight, where a
    /// `Constant` node is part of the architecture (an attribute written out).
    pub(super) fn is_initializer(&self, v: &str) -> bool {
        match self.producer.get(v) {
            None => self.floats.contains_key(v) || self.ints.contains_key(v),
            Some(&i) => {
                let n = &self.nodes[i];
                n.op_type() == "CastLike" && n.input.first().is_some_and(|x| self.is_initializer(x))
            }
        }
    }

    /// The scalar float constant `v` is, through `CastLike`s: an initializer or a `Constant`.
    pub(super) fn scalar(&self, v: &str) -> Option<f32> {
        if let Some(f) = self.floats.get(v) {
            return (f.len() == 1).then(|| f[0]);
        }
        let n = &self.nodes[*self.producer.get(v)?];
        (n.op_type() == "CastLike").then_some(())?;
        self.scalar(n.input.first()?)
    }
}

/// The graph's constant tensors as integers and as floats: initializers and `Constant` nodes'
/// values.
fn constants(graph: &GraphProto) -> (Named<'_, i64>, Named<'_, f32>) {
    let mut all: Vec<(&str, consts::CTensor)> = Vec::new();
    for t in &graph.initializer {
        if let Ok(c) = consts::from_proto(t) {
            all.push((t.name(), c));
        }
    }
    for n in graph.node.iter().filter(|n| n.op_type() == "Constant") {
        let attr = |name: &str| n.attribute.iter().find(|a| a.name() == name);
        let c = match (attr("value").and_then(|a| a.t.as_ref()), attr("value_float"), attr("value_ints")) {
            (Some(t), ..) => consts::from_proto(t).ok(),
            (None, Some(f), _) => f.f.map(|f| consts::CTensor::f32(vec![], vec![f])),
            (None, None, Some(i)) => {
                Some(consts::CTensor::f32(vec![i.ints.len()], i.ints.iter().map(|&v| v as f32).collect()))
            }
            _ => None,
        };
        if let (Some(c), Some(o)) = (c, n.output.first()) {
            all.push((o.as_str(), c));
        }
    }
    let ints = all.iter().filter_map(|(n, c)| c.ints().ok().map(|v| (*n, v))).collect();
    let floats = all.iter().map(|(n, c)| (*n, c.floats())).collect();
    (ints, floats)
}

/// Turns node `n` into `op` on `inputs` with one integer or float attribute.
pub(super) fn become_op(n: &mut NodeProto, op: &str, inputs: Vec<String>, attr: Option<(&str, Attr)>) {
    n.op_type = Some(op.to_string());
    n.input = inputs;
    n.attribute = attr
        .map(|(name, v)| {
            let mut a = AttributeProto { name: Some(name.into()), ..Default::default() };
            match v {
                Attr::Int(i) => {
                    a.r#type = Some(AttributeType::Int as i32);
                    a.i = Some(i);
                }
                Attr::Float(f) => {
                    a.r#type = Some(AttributeType::Float as i32);
                    a.f = Some(f);
                }
            }
            a
        })
        .into_iter()
        .collect();
}

/// An attribute value for [`become_op`].
pub(super) enum Attr {
    Int(i64),
    Float(f32),
}

/// Removes the nodes marked in `drop`.
pub(super) fn remove(graph: &mut GraphProto, drop: &[bool]) {
    let mut k = 0;
    graph.node.retain(|_| {
        k += 1;
        !drop[k - 1]
    });
}
