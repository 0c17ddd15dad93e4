//! The per-layer summary `veilc compile` prints: op, shape, scale, protocol, ReLUs, AND gates.
//!
//! Protocols here follow the op kind (PROTOCOLS.md): linear layers with secret weights in HE
//! (offline) and plaintext online, GC for comparisons, Beaver products for polynomials, local
//! steps on shares. The cost-model-driven `assign_protocols` pass will refine this choice.

use serde::Serialize;
use veil_ir::{Domain, ElemType, Graph, Op, TruncMode, circuit};

/// One row of the summary.
#[derive(Clone, Debug, Serialize)]
pub struct LayerRow {
    pub name: String,
    pub op: &'static str,
    pub shape: Vec<usize>,
    /// Fixed-point scale of the output (fractional bits).
    pub scale: Option<u8>,
    pub protocol: &'static str,
    pub relus: usize,
    /// AND gates of the layer's garbled circuits (all elements).
    pub and_gates: usize,
    /// Predicted offline bytes (the cost model; the runtime measures the same).
    pub offline: veil_passes::cost::Traffic,
    /// Predicted online traffic (the cost model; the runtime measures the same).
    pub online: veil_passes::cost::Traffic,
}

/// The summary of a compiled (fixed-point) graph.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub model: String,
    pub ring_bits: u8,
    pub layers: Vec<LayerRow>,
    pub relus: usize,
    pub and_gates: usize,
    /// Garbled-table bytes with half-gates (two 16-byte ciphertexts per AND).
    pub garbled_bytes: usize,
    /// Predicted offline bytes of the whole plan; `None` when the runtime cannot run the plan.
    pub offline: Option<veil_passes::cost::Traffic>,
    /// Predicted online traffic of the whole plan; `None` when the runtime cannot run the plan.
    pub online: Option<veil_passes::cost::Traffic>,
    /// Why the runtime cannot run the plan, if it cannot.
    pub unsupported: Option<String>,
    /// The network profile of the predicted times.
    pub network: veil_passes::cost::Network,
    /// Predicted time per phase: network plus CPU.
    pub predicted_seconds: Option<PhaseSeconds>,
    /// Predicted network time (bytes at the bandwidth, half a round trip per flight) per phase.
    pub predicted_network_seconds: Option<PhaseSeconds>,
    /// Estimated CPU time per phase (the cost model's measured rates on exact counts).
    pub predicted_cpu_seconds: Option<PhaseSeconds>,
}

/// Predicted seconds of each phase.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct PhaseSeconds {
    pub offline: f64,
    pub online: f64,
}

impl Summary {
    fn with_network(mut self, n: veil_passes::cost::Network) -> Self {
        self.set_network(n);
        self
    }

    /// Sets the network profile and recomputes the predicted times.
    pub fn set_network(&mut self, n: veil_passes::cost::Network) {
        self.network = n;
        self.predicted_network_seconds = match (&self.offline, &self.online) {
            (Some(off), Some(on)) => Some(PhaseSeconds { offline: n.seconds(off), online: n.seconds(on) }),
            _ => None,
        };
        self.predicted_seconds = match (self.predicted_network_seconds, self.predicted_cpu_seconds) {
            (Some(a), Some(b)) => Some(PhaseSeconds { offline: a.offline + b.offline, online: a.online + b.online }),
            _ => None,
        };
    }
}

fn protocol(g: &Graph, id: veil_ir::NodeId, op: &Op) -> &'static str {
    let secret = |cs: Vec<veil_ir::Const>| cs.iter().any(|&c| g.consts[c].domain == Domain::Server);
    match op {
        Op::Dense { .. } if g.ot_linear.contains(&id) => "OT offline, local online",
        Op::Dense { .. } | Op::Conv2d { .. } => "HE offline, local online",
        Op::Affine { .. } if secret(op.consts()) => "HE offline, local online",
        Op::Relu | Op::MaxPool { .. } | Op::Clip { .. } | Op::LeakyRelu { .. } => "GC",
        Op::StochasticRelu { .. } => "GC sign test + OT product",
        Op::Poly { .. } => "Beaver square",
        Op::Truncate { mode: TruncMode::Exact, .. } if standalone_truncation(g, id) => "GC (exact truncation)",
        Op::Truncate { mode: TruncMode::Exact, .. } => "fused into next GC",
        Op::Reveal => "reveal to client",
        Op::Softmax { .. } | Op::LogSoftmax { .. } | Op::ArgMax { .. } => "client",
        _ => "local",
    }
}

/// Whether node `id` is an exact truncation with a garbled circuit of its own
/// (`--exact-truncation`), not fused into the circuit of the op that reads it.
fn standalone_truncation(g: &Graph, id: veil_ir::NodeId) -> bool {
    let n = &g.nodes[id];
    matches!(n.op, Op::Truncate { mode: TruncMode::Exact, .. })
        && g.values[n.output].domain == Domain::Shared
        && !veil_ir::schedule::fuses_into_reader(g, n.output)
}

/// Builds the summary; `ring_bits` must be set (a compiled graph).
pub fn summarize(g: &Graph) -> Summary {
    let ell = g.ring_bits.unwrap_or(61) as u32;
    let fused_shift = |v: veil_ir::ValueId| veil_ir::schedule::fused(g, v).1 as u32;
    let cost = veil_passes::cost::plan_cost(g);
    let mut per_node = std::collections::HashMap::new();
    if let Ok(c) = &cost {
        for l in &c.layers {
            let (off, on): &mut (veil_passes::cost::Traffic, veil_passes::cost::Traffic) =
                per_node.entry(l.node).or_default();
            for (t, add) in [(off, &l.offline), (on, &l.online)] {
                t.bytes_client_to_server += add.bytes_client_to_server;
                t.bytes_server_to_client += add.bytes_server_to_client;
                t.rounds += add.rounds;
            }
        }
    }
    let mut layers = Vec::new();
    for (id, n) in g.live_nodes() {
        let out = &g.values[n.output];
        let elems = out.ty.len();
        let (relus, and_gates) = match &n.op {
            Op::Relu | Op::Clip { .. } | Op::LeakyRelu { .. } => {
                let shift = fused_shift(n.inputs[0]) as u8;
                let ands =
                    veil_ir::schedule::activation_circuit(g, &n.op, n.inputs[0], shift).map_or(0, |c| c.and_count());
                (if matches!(n.op, Op::Clip { .. }) { 0 } else { elems }, elems * ands)
            }
            Op::StochasticRelu { drop_bits, .. } => {
                (elems, elems * circuit::sign_test(ell - drop_bits.unwrap_or(0) as u32).and_count())
            }
            Op::MaxPool { window } => {
                let k = (window.kernel[0] * window.kernel[1]) as u32;
                (0, elems * circuit::max_trunc_mask(k, ell, fused_shift(n.inputs[0])).and_count())
            }
            Op::Truncate { bits, .. } if standalone_truncation(g, id) => {
                (0, elems * circuit::trunc_mask(ell, *bits as u32).and_count())
            }
            _ => (0, 0),
        };
        let scale = match out.ty.elem {
            ElemType::Fixed { frac_bits } => Some(frac_bits),
            _ => None,
        };
        layers.push(LayerRow {
            name: n.name.clone(),
            op: n.op.mnemonic(),
            shape: out.ty.shape.clone(),
            scale,
            protocol: protocol(g, id, &n.op),
            relus,
            and_gates,
            offline: per_node.get(&id).map(|t| t.0).unwrap_or_default(),
            online: per_node.get(&id).map(|t| t.1).unwrap_or_default(),
        });
    }
    let relus = layers.iter().map(|l| l.relus).sum();
    let and_gates = layers.iter().map(|l| l.and_gates).sum();
    let (offline, online, cpu, unsupported) = match cost {
        Ok(c) => (
            Some(c.offline),
            Some(c.online),
            Some(PhaseSeconds { offline: c.offline_cpu_seconds, online: c.online_cpu_seconds }),
            None,
        ),
        Err(e) => (None, None, None, Some(e.to_string())),
    };
    Summary {
        model: g.name.clone(),
        ring_bits: ell as u8,
        layers,
        relus,
        and_gates,
        garbled_bytes: 32 * and_gates,
        offline,
        online,
        unsupported,
        network: veil_passes::cost::Network::LAN,
        predicted_seconds: None,
        predicted_network_seconds: None,
        predicted_cpu_seconds: cpu,
    }
    .with_network(veil_passes::cost::Network::LAN)
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<34} {:<16} {:<18} {:>5} {:<26} {:>8} {:>11} {:>12} {:>12} {:>12} {:>12} {:>6}",
            "layer",
            "op",
            "shape",
            "scale",
            "protocol",
            "ReLUs",
            "AND gates",
            "offline c→s",
            "offline s→c",
            "online c→s",
            "online s→c",
            "rounds"
        )?;
        for l in &self.layers {
            let shape = format!("{:?}", l.shape).replace(' ', "");
            let name = if l.name.chars().count() > 33 {
                format!("…{}", &l.name[l.name.len() - 32..])
            } else {
                l.name.clone()
            };
            writeln!(
                f,
                "{:<34} {:<16} {:<18} {:>5} {:<26} {:>8} {:>11} {:>12} {:>12} {:>12} {:>12} {:>6}",
                name,
                l.op,
                shape,
                l.scale.map_or("-".into(), |s| s.to_string()),
                l.protocol,
                l.relus,
                l.and_gates,
                l.offline.bytes_client_to_server,
                l.offline.bytes_server_to_client,
                l.online.bytes_client_to_server,
                l.online.bytes_server_to_client,
                l.online.rounds
            )?;
        }
        writeln!(
            f,
            "total: {} ReLUs, {} AND gates, {:.2} MB of garbled tables (half-gates), ring {} bits",
            self.relus,
            self.and_gates,
            self.garbled_bytes as f64 / 1e6,
            self.ring_bits
        )?;
        match (&self.offline, &self.online, &self.unsupported) {
            (Some(off), Some(t), _) => {
                writeln!(
                    f,
                    "predicted traffic: offline {} B client→server, {} B server→client; online {} B client→server, {} B server→client, {} rounds",
                    off.bytes_client_to_server,
                    off.bytes_server_to_client,
                    t.bytes_client_to_server,
                    t.bytes_server_to_client,
                    t.rounds
                )?;
                if let (Some(p), Some(n), Some(c)) =
                    (self.predicted_seconds, self.predicted_network_seconds, self.predicted_cpu_seconds)
                {
                    writeln!(
                        f,
                        "predicted time at {} Mbit/s, {} ms RTT: offline {:.3} s (network {:.3} + CPU {:.3}), online {:.3} s (network {:.3} + CPU {:.3})",
                        self.network.bandwidth_mbit_s,
                        self.network.rtt_ms,
                        p.offline,
                        n.offline,
                        c.offline,
                        p.online,
                        n.online,
                        c.online
                    )?;
                }
                Ok(())
            }
            (_, _, Some(why)) => writeln!(f, "the two-party runtime cannot run this plan yet: {why}"),
            _ => Ok(()),
        }
    }
}
