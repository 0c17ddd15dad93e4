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
use veil_ir::schedule::{Kind, LinearOffline, Step, Unsupported, lower};
use veil_ir::{Graph, NodeId};

/// Bytes of one frame's length prefix.
const FRAME: u64 = 4;
/// Bytes of a wire label.
const LABEL: u64 = 16;
/// Bytes of a ring element on the wire.
const ELEM: u64 = 8;
/// Bytes of a garbling's hash key, sent ahead of its first table chunk.
const HASH_KEY: u64 = 16;

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
    /// The traffic of `messages`, in order (frames with their length prefix).
    pub(crate) fn of(messages: &[Msg]) -> Traffic {
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
    /// Estimated CPU seconds per phase ([`cpu_seconds`]).
    pub offline_cpu_seconds: f64,
    pub online_cpu_seconds: f64,
}

/// Predicted costs of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanCost {
    pub layers: Vec<LayerCost>,
    pub offline: Traffic,
    pub online: Traffic,
    pub offline_cpu_seconds: f64,
    pub online_cpu_seconds: f64,
}

impl PlanCost {
    /// Predicted seconds `(offline, online)` under `net`: network time plus CPU time.
    pub fn seconds(&self, net: &Network) -> (f64, f64) {
        (net.seconds(&self.offline) + self.offline_cpu_seconds, net.seconds(&self.online) + self.online_cpu_seconds)
    }
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
        Kind::Linear { .. } | Kind::Local | Kind::Client => Vec::new(),
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

/// A garbled-circuit layer's offline messages: labels by correlated OT, then table frames (the
/// first with the garbling's hash key in front).
fn gc_offline(n: u64, circuit: &veil_ir::circuit::Circuit, client_wires: u64, first: &mut bool) -> Vec<Msg> {
    let mut v = ot_batch(n * client_wires, true, first);
    let per = 32 * circuit.and_count() as u64;
    let chunk = veil_ir::schedule::GC_CHUNK as u64;
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        let key = if start == 0 { HASH_KEY } else { 0 };
        v.push(Msg::Frame(Dir::ServerToClient, key + len * per));
        start += len;
    }
    v
}

/// Bytes of the server's message for `n` OT products in ring `bits`.
fn product_bytes(bits: u64, n: u64) -> u64 {
    (n * bits * (bits + 1) / 2).div_ceil(8)
}

/// One-time messages of a session that earlier steps may already have sent: the base OTs (with
/// the first OT batch) and the client's HE public key per parameter set (with the first layer
/// that uses the set).
#[derive(Debug, Clone)]
pub struct Sent {
    /// No OT ran yet: the next batch carries the base OTs.
    first_ot: bool,
    /// Parameter sets whose public key was sent; `None`: price as if every key were sent.
    he_keys: Option<Vec<veil_ir::he_pack::HeParams>>,
}

impl Sent {
    /// A session's start: nothing sent yet.
    pub fn start() -> Sent {
        Sent { first_ot: true, he_keys: Some(Vec::new()) }
    }

    /// Marginal costs: every one-time message counts as already sent.
    pub fn all() -> Sent {
        Sent { first_ot: false, he_keys: None }
    }

    /// Whether the public key of `p` still has to be sent (and records it as sent).
    fn he_key(&mut self, p: &veil_ir::he_pack::HeParams) -> bool {
        match &mut self.he_keys {
            Some(keys) if !keys.contains(p) => {
                keys.push(*p);
                true
            }
            _ => false,
        }
    }
}

/// The offline messages of one step, in order, given what the session `sent` before.
pub fn offline_messages(g: &Graph, step: &Step, sent: &mut Sent) -> Vec<Msg> {
    use Dir::*;
    use Msg::Frame;
    let first = &mut sent.first_ot;
    let node = &g.nodes[step.node];
    let ell = g.ring_bits.unwrap_or(61) as u64;
    match &step.kind {
        Kind::Linear { offline: LinearOffline::Ot } => {
            let Some((batch, n_in, n_out)) = veil_ir::schedule::dense_dims(g, node) else { return Vec::new() };
            let (batch, n_in, n_out) = (batch as u64, n_in as u64, n_out as u64);
            let mut v = ot_batch(batch * n_in * ell, false, first);
            let per = (n_in * n_out * ell * (ell + 1) / 2).div_ceil(8);
            v.extend((0..batch).map(|_| Frame(ServerToClient, per)));
            v
        }
        Kind::Linear { offline: LinearOffline::He } => {
            let Some(l) = veil_ir::he_pack::Layer::of(g, node) else { return Vec::new() };
            let up = l.tiling.input_cts() as u64 * (4 + l.params.request_ct_bytes());
            let down = l.tiling.output_cts() as u64 * (4 + l.params.response_ct_bytes());
            let key = sent.he_key(&l.params).then(|| Frame(ClientToServer, l.params.public_key_bytes()));
            key.into_iter()
                .chain((0..l.batch).flat_map(|_| [Frame(ClientToServer, up), Frame(ServerToClient, down)]))
                .collect()
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
    let mut sent = Sent::start();
    let layers = lower(g)?
        .iter()
        .map(|step| {
            let node = &g.nodes[step.node];
            let offline = Traffic::of(&offline_messages(g, step, &mut sent));
            let online = Traffic::of(&online_messages(g, step));
            let (cpu_off, cpu_on) = cpu_seconds(g, step);
            offline_total.add(offline);
            online_total.add(online);
            LayerCost {
                node: step.node,
                name: node.name.clone(),
                op: node.op.mnemonic(),
                protocol: step.protocol(),
                offline,
                online,
                offline_cpu_seconds: cpu_off,
                online_cpu_seconds: cpu_on,
            }
        })
        .collect::<Vec<_>>();
    let offline_cpu_seconds = layers.iter().map(|l| l.offline_cpu_seconds).sum();
    let online_cpu_seconds = layers.iter().map(|l| l.online_cpu_seconds).sum();
    Ok(PlanCost { layers, offline: offline_total, online: online_total, offline_cpu_seconds, online_cpu_seconds })
}

/// The CPU-time model: throughputs measured on the 2-core development machine (release build,
/// one core per party) by `cargo bench -p veil-runtime` (garble, protocols, he) and, for the OT
/// dense correlation, by `veilc bench`. Estimates, not exact counts: the cost model's bytes and
/// rounds are exact, its seconds are these rates applied to exact counts.
pub mod cpu {
    /// AND gates garbled per second (server, offline).
    pub const GARBLE_ANDS_PER_S: f64 = 16.1e6;
    /// AND gates evaluated per second (client, online).
    pub const EVAL_ANDS_PER_S: f64 = 33.9e6;
    /// Random OTs per second (IKNP, both parties).
    pub const RANDOM_OTS_PER_S: f64 = 17.5e6;
    /// Correlated OTs per second.
    pub const CORRELATED_OTS_PER_S: f64 = 11.2e6;
    /// BFV encryption, per polynomial coefficient and prime (client).
    pub const HE_ENCRYPT_S_PER_COEFF: f64 = 0.22e-6;
    /// BFV plaintext products with flooding, per input × output ciphertext pair, per coefficient
    /// and prime (server).
    pub const HE_PRODUCT_S_PER_COEFF: f64 = 0.09e-6;
    /// The server's encryption of zero under the client's public key added to each response
    /// ciphertext (circuit privacy), per coefficient and prime.
    pub const HE_RERANDOMISE_S_PER_COEFF: f64 = 0.22e-6;
    /// BFV decryption, per coefficient and response prime (client).
    pub const HE_DECRYPT_S_PER_COEFF: f64 = 0.19e-6;
    /// BFV per layer and batch element, whatever its size: keys, kernel encoding, flooding
    /// noise (fitted to `veil client --stats` per-layer times of the bundled MLP's dense layers).
    pub const HE_LAYER_S: f64 = 0.025;
    /// Gilboa dense correlation: per weight and bit of the ring (PRG draws and bit packing on
    /// both sides, which run one after the other; fitted like [`HE_LAYER_S`]).
    pub const OT_DENSE_S_PER_WEIGHT_BIT: f64 = 50e-9;
    /// Local ring arithmetic, per element of a linear layer's multiply-accumulate.
    pub const RING_MAC_S: f64 = 1.5e-9;
}

/// Estimated CPU seconds of one step `(offline, online)`: the sum of both parties' work on the
/// critical path (they mostly wait for each other).
pub fn cpu_seconds(g: &Graph, step: &Step) -> (f64, f64) {
    use cpu::*;
    let node = &g.nodes[step.node];
    let ell = g.ring_bits.unwrap_or(61) as f64;
    let gc = |n: u64, ands: usize, client_wires: u64| {
        let a = (n * ands as u64) as f64;
        (a / GARBLE_ANDS_PER_S + (n * client_wires) as f64 / CORRELATED_OTS_PER_S, a / EVAL_ANDS_PER_S)
    };
    match &step.kind {
        Kind::Linear { offline } => {
            // Multiply-accumulates: each output element (batch included) takes one weight per
            // input it reads, i.e. the weight's elements per output channel (dense: n_in; conv:
            // in/groups × kh × kw; affine: 1).
            let macs = node.op.consts().first().map_or(0.0, |&w| {
                let shape = &g.consts[w].shape;
                let per_out = shape.iter().product::<usize>() / shape.first().copied().unwrap_or(1).max(1);
                (g.values[node.output].ty.len() * per_out) as f64
            });
            let online = macs * RING_MAC_S;
            let off = match offline {
                LinearOffline::Ot => {
                    let (b, n_in, _) = veil_ir::schedule::dense_dims(g, node).unwrap_or((1, 0, 0));
                    (b * n_in) as f64 * ell / RANDOM_OTS_PER_S + macs * ell * OT_DENSE_S_PER_WEIGHT_BIT
                }
                LinearOffline::He => veil_ir::he_pack::Layer::of(g, node).map_or(0.0, |l| {
                    let p = &l.params;
                    let (n, ins, outs) = (p.degree as f64, l.tiling.input_cts() as f64, l.tiling.output_cts() as f64);
                    l.batch as f64
                        * (HE_LAYER_S
                            + ins * n * p.primes as f64 * HE_ENCRYPT_S_PER_COEFF
                            + ins * outs * n * p.primes as f64 * HE_PRODUCT_S_PER_COEFF
                            + outs * n * p.primes as f64 * HE_RERANDOMISE_S_PER_COEFF
                            + outs * n * p.response_primes as f64 * HE_DECRYPT_S_PER_COEFF)
                }),
            };
            (off, online)
        }
        Kind::Activation { input, circuit, .. } => {
            gc(elems(g, *input), circuit.and_count(), (circuit.inputs[1] + circuit.inputs[2]) as u64)
        }
        Kind::MaxPool { windows, circuits, .. } => circuits.iter().fold((0.0, 0.0), |(a, b), (k, c)| {
            let n = windows.iter().filter(|w| w.len() == *k).count() as u64;
            let cw: u64 = c.inputs[*k..].iter().map(|&w| w as u64).sum();
            let (x, y) = gc(n, c.and_count(), cw);
            (a + x, b + y)
        }),
        Kind::Circa { input, circuit, .. } => {
            let n = elems(g, *input);
            let (x, y) = gc(n, circuit.and_count(), circuit.inputs[0] as u64);
            (x + (n as f64) * (ell + 1.0) / RANDOM_OTS_PER_S, y)
        }
        Kind::Poly => (elems(g, node.inputs[0]) as f64 * ell / RANDOM_OTS_PER_S, 0.0),
        _ => (0.0, 0.0),
    }
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

    /// Network time of `t`: its bytes at the bandwidth plus half a round trip per flight (CPU
    /// time is [`cpu_seconds`]).
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
