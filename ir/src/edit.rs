//! Editing helpers for passes: find users, redirect uses, insert and drop nodes.
//!
//! None of these renumber anything: handles stay valid, and dropped nodes simply leave the body.

use crate::graph::{BuildError, Def, Graph, NodeId, ValueId};
use crate::op::Op;

impl Graph {
    /// The live nodes that read `v`, in body order.
    pub fn users(&self, v: ValueId) -> Vec<NodeId> {
        self.body.iter().copied().filter(|&n| self.nodes[n].inputs.contains(&v)).collect()
    }

    /// Whether `v` is read by exactly one live node and is not a graph output.
    pub fn has_single_user(&self, v: ValueId) -> bool {
        self.users(v).len() == 1 && !self.outputs.contains(&v)
    }

    /// Makes every live reader of `old`, and the graph outputs, read `new` instead.
    pub fn replace_uses(&mut self, old: ValueId, new: ValueId) {
        for &n in &self.body {
            for v in &mut self.nodes[n].inputs {
                if *v == old {
                    *v = new;
                }
            }
        }
        for v in &mut self.outputs {
            if *v == old {
                *v = new;
            }
        }
    }

    /// Takes `n` out of the body (its slot and output value stay, unreferenced).
    pub fn remove_node(&mut self, n: NodeId) {
        self.body.retain(|&m| m != n);
    }

    /// Position of `n` in the body.
    pub fn position(&self, n: NodeId) -> Option<usize> {
        self.body.iter().position(|&m| m == n)
    }

    /// Inserts `op` applied to `inputs` into the body at `pos`, like [`Graph::add_node`].
    pub fn insert_node(
        &mut self,
        pos: usize,
        name: impl Into<String>,
        output_name: impl Into<String>,
        op: Op,
        inputs: &[ValueId],
    ) -> Result<ValueId, BuildError> {
        let v = self.add_node(name, output_name, op, inputs)?;
        let n = self.body.pop().expect("add_node appended a node");
        self.body.insert(pos.min(self.body.len()), n);
        Ok(v)
    }

    /// Removes live nodes whose output nobody reads (repeatedly); returns how many.
    pub fn remove_dead(&mut self) -> usize {
        let mut removed = 0;
        loop {
            let mut used = vec![false; self.values.len()];
            for &v in &self.outputs {
                used[v.index()] = true;
            }
            for &n in &self.body {
                for &v in &self.nodes[n].inputs {
                    used[v.index()] = true;
                }
            }
            let before = self.body.len();
            let nodes = &self.nodes;
            self.body.retain(|&n| used[nodes[n].output.index()]);
            if self.body.len() == before {
                return removed;
            }
            removed += before - self.body.len();
        }
    }

    /// Recomputes every live node's output domain from its operands, in body order, after a
    /// pass removed or rewired nodes: dropping a no-op `affine` on the client's input, say,
    /// gives the nodes after it back to the client. A `reveal` whose operand is now the
    /// client's is dropped. Ops that cannot take their new operands' domains keep the old one
    /// (the verifier then names them).
    pub fn refresh_domains(&mut self) {
        for n in self.body.clone() {
            let node = &self.nodes[n];
            let doms: Vec<_> = node.inputs.iter().map(|&v| self.values[v].domain).collect();
            if matches!(node.op, Op::Reveal) && doms == [crate::Domain::Client] {
                let (out, x) = (node.output, node.inputs[0]);
                self.replace_uses(out, x);
                self.remove_node(n);
                continue;
            }
            if let Ok(d) = node.op.output_domain(&doms, &self.consts) {
                let out = node.output;
                self.values[out].domain = d;
            }
        }
    }

    /// A value name not used by any value yet, based on `base`.
    pub fn fresh_name(&self, base: &str) -> String {
        let taken = |s: &str| self.values.iter().any(|(_, v)| v.name == s);
        if !taken(base) {
            return base.to_string();
        }
        (1..).map(|k| format!("{base}.{k}")).find(|s| !taken(s)).expect("an unbounded range finds a free name")
    }

    /// The node defining `v`, with its handle.
    pub fn def_node(&self, v: ValueId) -> Option<NodeId> {
        match self.values[v].def {
            Def::Node(n) => Some(n),
            Def::Input(_) => None,
        }
    }
}
