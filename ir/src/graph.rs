//! The graph: values, nodes, constants, and the execution order.

use serde::{Deserialize, Serialize};

use crate::arena::{Arena, Handle};
use crate::op::{Const, Constant, Op};
use crate::types::{Domain, TensorType};

/// Handle of a [`Value`] (printed `%k`).
pub type ValueId = Handle<Value>;
/// Handle of a [`Node`].
pub type NodeId = Handle<Node>;

/// Where a value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Def {
    /// The `i`-th graph input.
    Input(usize),
    /// The output of a node.
    Node(NodeId),
}

/// A tensor value in SSA form: defined once, by a graph input or a node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Value {
    /// Name from the model (ONNX value name) or made up by the pass that created it; unique.
    pub name: String,
    /// Element type and static shape.
    pub ty: TensorType,
    /// Who can see the value (the verifier checks it against [`Op::output_domain`]).
    pub domain: Domain,
    /// The graph input or node that defines it.
    pub def: Def,
}

/// One operation applied to values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Name from the model (ONNX node name, or `<OpType>_<index>` when the exporter gave none).
    pub name: String,
    /// What the node computes, with its constants and attributes.
    pub op: Op,
    /// Operand values, each defined earlier in the body; how many is fixed by `op`.
    pub inputs: Vec<ValueId>,
    /// The one value this node defines.
    pub output: ValueId,
}

/// A whole model.
///
/// Invariants (checked by [`crate::verify`]): see that module's doc.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// The model's name (printed on the text form's `graph` line).
    pub name: String,
    /// Every value ever created, live or dead, addressed by [`ValueId`].
    pub values: Arena<Value>,
    /// Every node ever created; only those in `body` are live.
    pub nodes: Arena<Node>,
    /// Constants (weights, biases, ...); their data never leaves the process.
    pub consts: Arena<Constant>,
    /// Graph inputs, in the model's order (all [`Domain::Client`]).
    pub inputs: Vec<ValueId>,
    /// Graph outputs, in the model's order (all [`Domain::Client`]).
    pub outputs: Vec<ValueId>,
    /// The live nodes in execution order: every operand is defined earlier.
    pub body: Vec<NodeId>,
    /// Width ℓ of the ring Z_2^ℓ of fixed-point values; set by `quantize`.
    pub ring_bits: Option<u8>,
    /// The bound on `|input|` that `quantize`'s ranges assume: inputs beyond it could overflow
    /// the ring, so the simulator and the runtime refuse them.
    pub input_bound: Option<f32>,
    /// Nodes that run over OT instead of their default protocol, chosen by `assign_protocols`:
    /// dense layers whose offline correlation comes from Gilboa products instead of HE, and
    /// ReLUs (and MaxPools of ReLU outputs) run by the OT comparison protocol instead of a
    /// garbled circuit (empty: HE and garbled circuits throughout). Named `ot_linear` before
    /// session 12, when it held dense layers only (the IR's JSON dump shows the new name).
    pub over_ot: Vec<NodeId>,
    /// The garbling scheme of every garbled circuit (`veilc --garbling`), chosen by
    /// `assign_protocols`; the text form prints it only when it is not the default.
    pub garbling: crate::Garbling,
    /// The OT extension of the chosen-input OT batches (`veilc --ot-extension`), chosen by
    /// `assign_protocols`; the text form prints it only when it is not the default.
    pub ot_extension: crate::OtExtension,
    /// Exact ReLUs, LeakyReLUs, MaxPools, Clips, roundings and exact truncations in garbled
    /// circuits whose circuits read their operand (the fused
    /// truncation's, if any) in `w < ℓ` bits, `(node, w)`: the shares' low `w` bits, a free
    /// narrowing, so the server's online labels and the circuits shrink with `w`. Set by
    /// `quantize` from the operand's range (kept by `assign_protocols` for the nodes that stay
    /// garbled); the simulator narrows the same reads (`schedule::narrowed_reads`), so an operand
    /// beyond `2^(w−1)` gives both the same wrapped result. Empty: every circuit reads ℓ bits.
    /// ReLUs over OT with a fused truncation read narrowed the same way
    /// (`schedule::relu_ot_width`). For a dense or convolution layer under HE, `(node, k)` is
    /// its plaintext modulus `2^k < 2^ℓ` (text form `he_bits=K`): its output is read only
    /// modulo `2^k` (`schedule::demand`), so computing it modulo `2^k` changes nothing; set by
    /// `assign_protocols` where the cost model predicts it faster.
    pub narrow_bits: Vec<(NodeId, u8)>,
    /// Graph inputs declared with an element type that `.npy` stores as raw bytes (ONNX's 2- and
    /// 4-bit integers, 8- and 4-bit floats, bfloat16), `(input index, type)`: the client reads
    /// such an input file as that type ([`crate::npy::read_npy_as`]). The values are reals like
    /// every other input's.
    pub raw_inputs: Vec<(usize, crate::RawDtype)>,
}

/// A node could not be added: its operands break the op's typing or domain rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{op} {name:?}: {reason}")]
pub struct BuildError {
    /// Name of the node that was refused.
    pub name: String,
    /// Mnemonic of its op (`conv2d`, `relu`, ...).
    pub op: &'static str,
    /// Which rule the operands break.
    pub reason: String,
}

impl Graph {
    /// The declared raw element type of graph input `i`, if it has one ([`Self::raw_inputs`]).
    pub fn raw_input(&self, i: usize) -> Option<crate::RawDtype> {
        self.raw_inputs.iter().find(|(k, _)| *k == i).map(|&(_, t)| t)
    }

    /// An empty graph named `name` (no ring width, no input bound).
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Self::default() }
    }

    /// Adds a client-private graph input.
    pub fn add_input(&mut self, name: impl Into<String>, ty: TensorType) -> ValueId {
        let v = self.values.append(Value {
            name: name.into(),
            ty,
            domain: Domain::Client,
            def: Def::Input(self.inputs.len()),
        });
        self.inputs.push(v);
        v
    }

    /// Adds a constant tensor; `data` is row-major and must match `shape`.
    pub fn add_const(&mut self, name: impl Into<String>, shape: Vec<usize>, domain: Domain, data: Vec<f32>) -> Const {
        debug_assert_eq!(data.len(), shape.iter().product::<usize>());
        self.consts.append(Constant { name: name.into(), shape, domain, data, frac_bits: None, qdata: Vec::new() })
    }

    /// Appends `op` applied to `inputs` at the end of the body and returns its output, typed by
    /// [`Op::infer`] and placed in its domain by [`Op::output_domain`].
    pub fn add_node(
        &mut self,
        name: impl Into<String>,
        output_name: impl Into<String>,
        op: Op,
        inputs: &[ValueId],
    ) -> Result<ValueId, BuildError> {
        let name = name.into();
        let err = |reason: String| BuildError { name: name.clone(), op: op.mnemonic(), reason };
        let tys: Vec<&TensorType> = inputs.iter().map(|&v| &self.values[v].ty).collect();
        let ty = op.infer(&tys, &self.consts).map_err(err)?;
        let doms: Vec<Domain> = inputs.iter().map(|&v| self.values[v].domain).collect();
        let domain = op.output_domain(&doms, &self.consts).map_err(err)?;
        let node = NodeId::from_index(self.nodes.len());
        let output = self.values.append(Value { name: output_name.into(), ty, domain, def: Def::Node(node) });
        self.nodes.append(Node { name, op, inputs: inputs.to_vec(), output });
        self.body.push(node);
        Ok(output)
    }

    /// The node defining `v`, if `v` is not a graph input.
    pub fn producer(&self, v: ValueId) -> Option<&Node> {
        match self.values[v].def {
            Def::Node(n) => Some(&self.nodes[n]),
            Def::Input(_) => None,
        }
    }

    /// The live nodes in execution order.
    pub fn live_nodes(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.body.iter().map(|&n| (n, &self.nodes[n]))
    }
}
