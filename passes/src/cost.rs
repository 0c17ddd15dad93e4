//! The cost model, from exact counts: per protocol step of a plan ([`veil_ir::schedule`]), the
//! messages each party sends, hence bytes each way and rounds.
//!
//! Today it predicts the **online** phase exactly: its messages are all Veil's own frames (a
//! 4-byte length prefix and a payload whose size follows from the plan), and the runtime's
//! per-layer stats must equal these numbers (`tests/tests/two_party.rs` checks it). A round is a
//! flight of messages in one direction within a layer, as the runtime's meter counts it.
//! The offline phase (HE ciphertexts, OT extension, garbled tables) comes next.

use serde::Serialize;
use veil_ir::schedule::{Kind, Step, Unsupported, lower};
use veil_ir::{Graph, NodeId};

/// Bytes of one frame's length prefix.
const FRAME: u64 = 4;
/// Bytes of a wire label.
const LABEL: u64 = 16;
/// Bytes of a ring element on the wire.
const ELEM: u64 = 8;

/// Who sends a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ClientToServer,
    ServerToClient,
}

/// Traffic of one phase of one layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    pub bytes_client_to_server: u64,
    pub bytes_server_to_client: u64,
    pub rounds: u64,
}

impl Traffic {
    fn of(messages: &[(Dir, u64)]) -> Traffic {
        let mut t = Traffic::default();
        let mut last = None;
        for &(d, payload) in messages {
            if last != Some(d) {
                t.rounds += 1;
                last = Some(d);
            }
            match d {
                Dir::ClientToServer => t.bytes_client_to_server += FRAME + payload,
                Dir::ServerToClient => t.bytes_server_to_client += FRAME + payload,
            }
        }
        t
    }

    fn add(&mut self, o: Traffic) {
        self.bytes_client_to_server += o.bytes_client_to_server;
        self.bytes_server_to_client += o.bytes_server_to_client;
        self.rounds += o.rounds;
    }
}

/// Predicted costs of one protocol step.
#[derive(Debug, Clone, Serialize)]
pub struct LayerCost {
    #[serde(skip)]
    pub node: NodeId,
    pub name: String,
    pub op: &'static str,
    pub protocol: &'static str,
    pub online: Traffic,
}

/// Predicted costs of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanCost {
    pub layers: Vec<LayerCost>,
    pub online: Traffic,
}

fn elems(g: &Graph, v: veil_ir::ValueId) -> u64 {
    g.values[v].ty.shape.iter().product::<usize>() as u64
}

/// The online messages of one step, in order.
pub fn online_messages(g: &Graph, step: &Step) -> Vec<(Dir, u64)> {
    use Dir::*;
    let node = &g.nodes[step.node];
    match &step.kind {
        Kind::Share { value } => vec![(ClientToServer, ELEM * elems(g, *value))],
        Kind::Relu { input, circuit, .. } => {
            let n = elems(g, *input);
            let server_wires = circuit.inputs[0] as u64;
            vec![
                (ServerToClient, LABEL * server_wires * n),
                (ClientToServer, (n * circuit.outputs.len() as u64).div_ceil(8)),
            ]
        }
        Kind::MaxPool { windows, circuits, .. } => circuits
            .iter()
            .flat_map(|(k, c)| {
                let n = windows.iter().filter(|w| w.len() == *k).count() as u64;
                let server_wires: u64 = c.inputs[..*k].iter().map(|&w| w as u64).sum();
                [(ServerToClient, LABEL * server_wires * n), (ClientToServer, (n * c.outputs.len() as u64).div_ceil(8))]
            })
            .collect(),
        Kind::Circa { input, circuit, .. } => {
            let n = elems(g, *input);
            let server_wires = (circuit.inputs[1] + circuit.inputs[2]) as u64;
            vec![
                (ServerToClient, LABEL * server_wires * n),
                (ClientToServer, n.div_ceil(8)),
                (ServerToClient, 2 * ELEM * n),
                (ClientToServer, ELEM * n),
            ]
        }
        Kind::Poly => {
            let n = elems(g, node.inputs[0]);
            vec![(ServerToClient, ELEM * n), (ClientToServer, ELEM * n)]
        }
        Kind::Reveal => vec![(ServerToClient, ELEM * elems(g, node.inputs[0]))],
        Kind::Linear | Kind::Local | Kind::Client => Vec::new(),
    }
}

/// Predicted costs of every step of the plan `g`.
pub fn plan_cost(g: &Graph) -> Result<PlanCost, Unsupported> {
    let mut total = Traffic::default();
    let layers = lower(g)?
        .iter()
        .map(|step| {
            let node = &g.nodes[step.node];
            let online = Traffic::of(&online_messages(g, step));
            total.add(online);
            LayerCost {
                node: step.node,
                name: node.name.clone(),
                op: node.op.mnemonic(),
                protocol: step.protocol(),
                online,
            }
        })
        .collect();
    Ok(PlanCost { layers, online: total })
}
