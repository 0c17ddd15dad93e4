//! The cost model, from exact counts: per protocol step of a plan ([`veil_ir::schedule`]), the
//! messages each party sends, hence bytes each way and rounds.
//!
//! Bytes are exact for both phases; the runtime's per-layer stats must equal them
//! (`tests/tests/two_party.rs` checks it). Veil's own messages are frames (a 4-byte length prefix
//! and a payload whose size follows from the plan: ring elements, labels, packed bits, BFV
//! ciphertexts whose serialized size `veil_ir::he_pack` computes). OT extension (`cryprot-ot`,
//! IKNP) costs 16 bytes per OT from the receiver (plus 16 from the sender for correlated OT) and a
//! few bytes of stream headers per batch, padded to 128 OTs; the session's first batch also
//! carries the base OTs. Those library constants were measured and are pinned with the crate
//! versions. A round is a flight of messages in one direction within a layer, as the runtime's
//! meter counts it; online rounds are exact, offline rounds are not predicted (OT internals).

use serde::Serialize;
use veil_ir::schedule::{Kind, Step, Unsupported, lower};
use veil_ir::{Graph, NodeId};

/// Bytes of one frame's length prefix.
const FRAME: u64 = 4;
/// Bytes of a wire label.
const LABEL: u64 = 16;
/// Bytes of a ring element on the wire.
const ELEM: u64 = 8;

/// OT extension batches are padded to this many OTs.
const OT_BATCH: u64 = 128;
/// The session's base OTs (with the first extension batch), bytes each way.
const BASE_OT: (u64, u64) = (97, 4110);
/// Stream headers of one random-OT batch (receiver → sender, sender → receiver).
const ROT_HEADERS: (u64, u64) = (9, 9);
/// Stream headers of one correlated-OT batch.
const COT_HEADERS: (u64, u64) = (17, 17);

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
    fn of(messages: &[Msg]) -> Traffic {
        let mut t = Traffic::default();
        let mut last = None;
        for &m in messages {
            let (d, bytes) = match m {
                Msg::Frame(d, payload) => (d, FRAME + payload),
                Msg::Raw(d, bytes) => (d, bytes),
            };
            if bytes == 0 {
                continue;
            }
            if last != Some(d) {
                t.rounds += 1;
                last = Some(d);
            }
            match d {
                Dir::ClientToServer => t.bytes_client_to_server += bytes,
                Dir::ServerToClient => t.bytes_server_to_client += bytes,
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
    pub offline: Traffic,
    pub online: Traffic,
}

/// Predicted costs of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanCost {
    pub layers: Vec<LayerCost>,
    pub offline: Traffic,
    pub online: Traffic,
}

/// A message: a Veil frame (payload size) or raw library bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg {
    Frame(Dir, u64),
    Raw(Dir, u64),
}

fn elems(g: &Graph, v: veil_ir::ValueId) -> u64 {
    g.values[v].ty.shape.iter().product::<usize>() as u64
}

/// The online messages of one step, in order.
pub fn online_messages(g: &Graph, step: &Step) -> Vec<Msg> {
    use Dir::*;
    use Msg::Frame;
    let node = &g.nodes[step.node];
    match &step.kind {
        Kind::Share { value } => vec![Frame(ClientToServer, ELEM * elems(g, *value))],
        Kind::Activation { input, circuit, .. } => {
            let n = elems(g, *input);
            let server_wires = circuit.inputs[0] as u64;
            vec![
                Frame(ServerToClient, LABEL * server_wires * n),
                Frame(ClientToServer, (n * circuit.outputs.len() as u64).div_ceil(8)),
            ]
        }
        Kind::MaxPool { windows, circuits, .. } => circuits
            .iter()
            .flat_map(|(k, c)| {
                let n = windows.iter().filter(|w| w.len() == *k).count() as u64;
                let server_wires: u64 = c.inputs[..*k].iter().map(|&w| w as u64).sum();
                [
                    Frame(ServerToClient, LABEL * server_wires * n),
                    Frame(ClientToServer, (n * c.outputs.len() as u64).div_ceil(8)),
                ]
            })
            .collect(),
        Kind::Circa { input, circuit, .. } => {
            let n = elems(g, *input);
            let server_wires = (circuit.inputs[1] + circuit.inputs[2]) as u64;
            vec![
                Frame(ServerToClient, LABEL * server_wires * n),
                Frame(ClientToServer, n.div_ceil(8)),
                Frame(ServerToClient, 2 * ELEM * n),
                Frame(ClientToServer, ELEM * n),
            ]
        }
        Kind::Poly => {
            let n = elems(g, node.inputs[0]);
            vec![Frame(ServerToClient, ELEM * n), Frame(ClientToServer, ELEM * n)]
        }
        Kind::Reveal => vec![Frame(ServerToClient, ELEM * elems(g, node.inputs[0]))],
        Kind::Linear | Kind::Local | Kind::Client => Vec::new(),
    }
}

/// One OT batch of `n` OTs (random or correlated), with the wrapper's go-ahead and done frames;
/// `first` adds the session's base OTs.
fn ot_batch(n: u64, correlated: bool, first: &mut bool) -> Vec<Msg> {
    use Dir::*;
    let m = n.div_ceil(OT_BATCH).max(1) * OT_BATCH;
    let mut v = vec![Msg::Frame(ClientToServer, 1)];
    if std::mem::take(first) {
        v.extend([Msg::Raw(ClientToServer, BASE_OT.0), Msg::Raw(ServerToClient, BASE_OT.1)]);
    }
    if correlated {
        v.extend([Msg::Raw(ClientToServer, 16 * m + COT_HEADERS.0), Msg::Raw(ServerToClient, 16 * m + COT_HEADERS.1)]);
    } else {
        v.extend([Msg::Raw(ClientToServer, 16 * m + ROT_HEADERS.0), Msg::Raw(ServerToClient, ROT_HEADERS.1)]);
    }
    v.push(Msg::Frame(ClientToServer, 1));
    v
}

/// A garbled-circuit layer's offline messages: labels by correlated OT, then table frames.
fn gc_offline(n: u64, circuit: &veil_ir::circuit::Circuit, client_wires: u64, first: &mut bool) -> Vec<Msg> {
    let mut v = ot_batch(n * client_wires, true, first);
    let per = 32 * circuit.and_count() as u64;
    let chunk = veil_ir::schedule::GC_CHUNK as u64;
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        v.push(Msg::Frame(Dir::ServerToClient, len * per));
        start += len;
    }
    v
}

/// Bytes of the server's message for `n` OT products in ring `bits`.
fn product_bytes(bits: u64, n: u64) -> u64 {
    (n * bits * (bits + 1) / 2).div_ceil(8)
}

/// The offline messages of one step, in order; `first` is whether no OT ran yet.
pub fn offline_messages(g: &Graph, step: &Step, first: &mut bool) -> Vec<Msg> {
    use Dir::*;
    use Msg::Frame;
    let node = &g.nodes[step.node];
    let ell = g.ring_bits.unwrap_or(61) as u64;
    match &step.kind {
        Kind::Linear => {
            let Some(l) = veil_ir::he_pack::Layer::of(g, node) else { return Vec::new() };
            let up = l.tiling.input_cts() as u64 * (4 + l.params.request_ct_bytes());
            let down = l.tiling.output_cts() as u64 * (4 + l.params.response_ct_bytes());
            (0..l.batch).flat_map(|_| [Frame(ClientToServer, up), Frame(ServerToClient, down)]).collect()
        }
        Kind::Activation { input, circuit, .. } => {
            let cw = (circuit.inputs[1] + circuit.inputs[2]) as u64;
            gc_offline(elems(g, *input), circuit, cw, first)
        }
        Kind::MaxPool { windows, circuits, .. } => circuits
            .iter()
            .flat_map(|(k, c)| {
                let n = windows.iter().filter(|w| w.len() == *k).count() as u64;
                let cw: u64 = c.inputs[*k..].iter().map(|&w| w as u64).sum();
                gc_offline(n, c, cw, first)
            })
            .collect(),
        Kind::Circa { input, circuit, .. } => {
            let n = elems(g, *input);
            let mut v = gc_offline(n, circuit, circuit.inputs[0] as u64, first);
            v.push(Frame(ServerToClient, n.div_ceil(8)));
            v.extend(ot_batch(n * ell, false, first));
            v.push(Frame(ServerToClient, product_bytes(ell, n)));
            v.extend(ot_batch(n, false, first));
            v
        }
        Kind::Poly => {
            let n = elems(g, node.inputs[0]);
            let mut v = ot_batch(n * ell, false, first);
            v.push(Frame(ServerToClient, product_bytes(ell, n)));
            v.push(Frame(ClientToServer, ELEM * n));
            v
        }
        Kind::Share { .. } | Kind::Reveal | Kind::Local | Kind::Client => Vec::new(),
    }
}

/// Predicted costs of every step of the plan `g`.
pub fn plan_cost(g: &Graph) -> Result<PlanCost, Unsupported> {
    let (mut offline_total, mut online_total) = (Traffic::default(), Traffic::default());
    let mut first_ot = true;
    let layers = lower(g)?
        .iter()
        .map(|step| {
            let node = &g.nodes[step.node];
            let offline = Traffic::of(&offline_messages(g, step, &mut first_ot));
            let online = Traffic::of(&online_messages(g, step));
            offline_total.add(offline);
            online_total.add(online);
            LayerCost {
                node: step.node,
                name: node.name.clone(),
                op: node.op.mnemonic(),
                protocol: step.protocol(),
                offline,
                online,
            }
        })
        .collect();
    Ok(PlanCost { layers, offline: offline_total, online: online_total })
}

/// A network profile: bandwidth shared by both directions and round-trip time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Network {
    pub bandwidth_mbit_s: f64,
    pub rtt_ms: f64,
}

impl Network {
    /// 1 Gbit/s, 0.2 ms round trip.
    pub const LAN: Network = Network { bandwidth_mbit_s: 1000.0, rtt_ms: 0.2 };
    /// 100 Mbit/s, 40 ms round trip.
    pub const WAN: Network = Network { bandwidth_mbit_s: 100.0, rtt_ms: 40.0 };

    /// Network time of `t`: its bytes at the bandwidth plus half a round trip per flight. CPU
    /// time is not included (yet).
    pub fn seconds(&self, t: &Traffic) -> f64 {
        let bits = 8.0 * (t.bytes_client_to_server + t.bytes_server_to_client) as f64;
        bits / (self.bandwidth_mbit_s * 1e6) + t.rounds as f64 * self.rtt_ms / 2000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_time_is_bytes_over_bandwidth_plus_half_a_round_trip_per_flight() {
        let t = Traffic { bytes_client_to_server: 125_000, bytes_server_to_client: 0, rounds: 4 };
        // 1 Mbit at 100 Mbit/s = 10 ms, four flights of 20 ms.
        assert!((Network::WAN.seconds(&t) - 0.09).abs() < 1e-12);
        assert!((Network::LAN.seconds(&t) - (0.001 + 0.0004)).abs() < 1e-12);
    }
}
