//! Small helpers shared by passes.

use veil_ir::{Const, Domain, Graph, NodeId, ValueId};

/// The producer of `v` if it is a live node whose output only `v`'s reader uses.
pub fn sole_producer(g: &Graph, v: ValueId) -> Option<NodeId> {
    let n = g.def_node(v)?;
    (g.has_single_user(v) && g.position(n).is_some()).then_some(n)
}

/// A new constant holding `data`, in the domain of `like` (weights stay the server's).
pub fn derived_const(g: &mut Graph, like: Const, name: String, shape: Vec<usize>, data: Vec<f32>) -> Const {
    let domain = g.consts[like].domain;
    g.add_const(name, shape, domain, data)
}

/// A new public constant.
pub fn public_const(g: &mut Graph, name: String, shape: Vec<usize>, data: Vec<f32>) -> Const {
    g.add_const(name, shape, Domain::Public, data)
}

/// Per-channel values of a constant broadcast over a tensor of `shape` along `axis`, if the
/// constant varies along no other axis. A scalar gives `channels` copies.
pub fn per_channel(g: &Graph, c: Const, shape: &[usize], axis: usize) -> Option<Vec<f32>> {
    let k = &g.consts[c];
    let off = shape.len().checked_sub(k.shape.len())?;
    let channels = shape[axis];
    let mut varies_on = None;
    for (i, &d) in k.shape.iter().enumerate() {
        if d != 1 {
            if off + i != axis {
                return None;
            }
            varies_on = Some(d);
        }
    }
    match varies_on {
        None => Some(vec![k.data[0]; channels]),
        Some(d) if d == channels => Some(k.data.clone()),
        Some(_) => None,
    }
}
