//! The per-layer summary `veilc compile` prints: op, shape, scale, protocol, ReLUs, AND gates.
//!
//! Protocols and AND gates are read from the plan's steps ([`veil_ir::schedule::node_steps`]),
//! which are what the runtime runs: a node's protocol is its step's ([`Step::protocol`]), its AND
//! gates those of the step's garbled batches (every instance, border windows of a padded
//! MaxPool with their smaller circuits). A node the runtime cannot run shows as "unsupported";
//! an exact truncation fused into its reader's circuit has no step of its own.
//!
//! [`Step::protocol`]: veil_ir::schedule::Step::protocol

use serde::Serialize;
use veil_ir::{ElemType, Graph, Op};

/// One row of the summary.
#[derive(Clone, Debug, Serialize)]
pub struct LayerRow {
    /// ONNX node name.
    pub name: String,
    /// The op's mnemonic.
    pub op: &'static str,
    /// Shape of the output.
    pub shape: Vec<usize>,
    /// Fixed-point scale of the output (fractional bits).
    pub scale: Option<u8>,
    /// Protocol of the node's step, `fused into next GC`, or `unsupported`.
    pub protocol: &'static str,
    /// Activations of a ReLU, LeakyReLU or stochastic ReLU (0 for other ops).
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
    /// The graph's name.
    pub model: String,
    /// Ring width ℓ.
    pub ring_bits: u8,
    /// One row per live node, in execution order.
    pub layers: Vec<LayerRow>,
    /// ReLU-like activations of all layers.
    pub relus: usize,
    /// AND gates of all layers.
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

/// Builds the summary; `ring_bits` must be set (a compiled graph).
pub fn summarize(g: &Graph) -> Summary {
    let ell = g.ring_bits.unwrap_or(61) as u32;
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
    let mut shared_inputs = Vec::new();
    for (id, n) in g.live_nodes() {
        let out = &g.values[n.output];
        let (protocol, and_gates) = match veil_ir::schedule::node_steps(g, id, &mut shared_inputs) {
            Ok(steps) => match steps.last() {
                Some(step) => (step.protocol(), steps.iter().map(|s| s.and_gates(g)).sum::<u64>() as usize),
                None => ("fused into next GC", 0),
            },
            Err(_) => ("unsupported", 0),
        };
        let relus = match n.op {
            Op::Relu | Op::LeakyRelu { .. } | Op::StochasticRelu { .. } => out.ty.len(),
            _ => 0,
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
            protocol,
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

#[cfg(test)]
mod tests {
    use super::*;
    use veil_ir::{Domain, TensorType, Window2d};
    use veil_passes::{Options, run_pipeline};

    fn compiled(g: &mut Graph) {
        run_pipeline(g, &Options { input_bound: 4.0, ..Options::default() }, None, true).unwrap();
    }

    /// Found in review (issue 15): the summary priced every window of a padded MaxPool with the
    /// full window's circuit, although border windows cover fewer taps and the runtime garbles
    /// a smaller circuit for them.
    #[test]
    fn a_padded_maxpool_counts_the_smaller_circuits_of_its_border_windows() {
        let mut g = Graph::new("pool");
        let x = g.add_input("x", TensorType::f32(vec![1, 1, 4, 4]));
        let w = g.add_const("w", vec![1, 1, 1, 1], Domain::Server, vec![0.75]);
        let one = Window2d { kernel: [1, 1], strides: [1, 1], pads: [0; 4], dilations: [1, 1] };
        let y = g.add_node("conv", "y", Op::Conv2d { weight: w, bias: None, window: one, groups: 1 }, &[x]).unwrap();
        let window = Window2d { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1] };
        let p = g.add_node("pool", "p", Op::MaxPool { window }, &[y]).unwrap();
        let out = g.add_node("reveal", "out", Op::Reveal, &[p]).unwrap();
        g.outputs.push(out);
        compiled(&mut g);
        let ell = g.ring_bits.unwrap() as u32;
        let (_, pool) = g.live_nodes().find(|(_, n)| matches!(n.op, Op::MaxPool { .. })).unwrap();
        let shift = veil_ir::schedule::fused(&g, pool.inputs[0]).1 as u32;
        let row = summarize(&g).layers.into_iter().find(|l| l.op == "maxpool").unwrap();
        // 4×4 outputs of a 3×3 window with one pad: 4 corners of 4 taps, 8 edges of 6, 4 inner of 9.
        let ands = |k| veil_ir::circuit::max_trunc_mask(k, ell, shift).and_count();
        assert_eq!(row.and_gates, 4 * ands(4) + 8 * ands(6) + 4 * ands(9));
        assert!(row.and_gates < 16 * ands(9));
        assert_eq!(row.protocol, "GC");
    }

    /// Found in review (issue 15): the summary labelled an affine with a secret (server) scale
    /// "HE", although the runtime refuses it.
    #[test]
    fn a_secret_scale_affine_on_shares_is_unsupported_not_he() {
        let mut g = Graph::new("affine");
        let x = g.add_input("x", TensorType::f32(vec![1, 2, 2, 2]));
        let w = g.add_const("w", vec![3, 8], Domain::Server, (0..24).map(|i| i as f32 / 32.0).collect());
        let flat = g.add_node("flat", "f", Op::Reshape { shape: vec![1, 8] }, &[x]).unwrap();
        let y = g.add_node("fc", "y", Op::Dense { weight: w, bias: None }, &[flat]).unwrap();
        let r = g.add_node("relu", "r", Op::Relu, &[y]).unwrap();
        let s = g.add_const("s", vec![3], Domain::Server, vec![1.5, 0.5, 2.0]);
        let a = g.add_node("scale", "a", Op::Affine { scale: Some(s), shift: None }, &[r]).unwrap();
        let out = g.add_node("reveal", "out", Op::Reveal, &[a]).unwrap();
        g.outputs.push(out);
        compiled(&mut g);
        let summary = summarize(&g);
        let Some(row) = summary.layers.iter().find(|l| l.op == "affine") else {
            panic!("the pipeline kept no affine:\n{}", veil_ir::print::to_text(&g))
        };
        assert_eq!(row.protocol, "unsupported");
        assert!(summary.unsupported.as_deref().is_some_and(|u| u.contains("per-channel scales")), "{summary:?}");
    }
}
