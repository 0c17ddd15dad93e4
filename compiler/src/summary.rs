//! The per-layer summary `veilc compile` prints: op, shape, scale, protocol, ReLUs, AND gates.
//!
//! Protocols and AND gates are read from the plan's steps ([`veil_ir::schedule::node_steps`]),
//! which are what the runtime runs: a node's protocol is its step's ([`Step::protocol`]), its AND
//! gates those of the step's garbled batches (every instance, border windows of a padded
//! MaxPool with their smaller circuits). A node the runtime cannot run shows as "unsupported";
//! an exact truncation fused into its reader's circuit has no step of its own.
//!
//! A node whose steps differ (a convolution's `share` then `HE`) is one row whose protocol joins
//! them ([`veil_ir::stats::join_protocols`]: `HE+share`), as `veilc run` prints it.
//!
//! [`Step::protocol`]: veil_ir::schedule::Step::protocol

use serde::Serialize;
use veil_ir::report::{Cell, Column, Fit, Table, units};
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
    /// The protocols of the node's steps, joined (`HE+share`), `fused into next step`, or
    /// `unsupported`.
    pub protocol: String,
    /// Activations of a ReLU, LeakyReLU or stochastic ReLU (0 for other ops).
    pub relus: usize,
    /// AND gates of the layer's garbled circuits (all elements).
    pub and_gates: usize,
    /// Predicted offline bytes (the cost model; the runtime measures the same).
    pub offline: veil_passes::cost::Traffic,
    /// Predicted online traffic (the cost model; the runtime measures the same).
    pub online: veil_passes::cost::Traffic,
    /// Estimated CPU seconds per phase, both parties' work on the critical path (the cost
    /// model's rates, [`veil_passes::cost::cpu`]; `veil client --stats` measures the time).
    pub predicted_cpu_seconds: PhaseSeconds,
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
    /// Garbled-table bytes under the plan's scheme (half-gates: two 16-byte ciphertexts per AND).
    pub garbled_bytes: usize,
    /// The plan's garbling scheme (left out of the JSON when half-gates, the default).
    #[serde(skip_serializing_if = "is_default_garbling")]
    pub garbling: veil_ir::Garbling,
    /// The plan's OT extension for chosen-input batches (left out of the JSON when IKNP, the
    /// default).
    #[serde(skip_serializing_if = "is_default_ot_extension")]
    pub ot_extension: veil_ir::OtExtension,
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

fn is_default_garbling(g: &veil_ir::Garbling) -> bool {
    *g == veil_ir::Garbling::default()
}

fn is_default_ot_extension(e: &veil_ir::OtExtension) -> bool {
    *e == veil_ir::OtExtension::default()
}

/// Predicted seconds of each phase.
#[derive(Clone, Copy, Debug, Default, Serialize)]
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
            let (off, on, cpu): &mut (veil_passes::cost::Traffic, veil_passes::cost::Traffic, PhaseSeconds) =
                per_node.entry(l.node).or_default();
            for (t, add) in [(off, &l.offline), (on, &l.online)] {
                t.bytes_client_to_server += add.bytes_client_to_server;
                t.bytes_server_to_client += add.bytes_server_to_client;
                t.rounds += add.rounds;
            }
            cpu.offline += l.offline_cpu_seconds;
            cpu.online += l.online_cpu_seconds;
        }
    }
    let mut layers = Vec::new();
    let mut shared_inputs = Vec::new();
    for (id, n) in g.live_nodes() {
        let out = &g.values[n.output];
        let (protocol, and_gates) = match veil_ir::schedule::node_steps(g, id, &mut shared_inputs) {
            Ok(steps) if steps.is_empty() => ("fused into next step".into(), 0),
            Ok(steps) => (
                veil_ir::stats::join_protocols(steps.iter().map(|s| s.protocol())),
                steps.iter().map(|s| s.and_gates(g)).sum::<u64>() as usize,
            ),
            Err(_) => ("unsupported".into(), 0),
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
            predicted_cpu_seconds: per_node.get(&id).map(|t| t.2).unwrap_or_default(),
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
        garbled_bytes: veil_ir::schedule::lower(g).map_or(g.garbling.table_bytes(and_gates) as usize, |steps| {
            steps.iter().flat_map(|s| s.gc_batches(g)).map(|b| b.instances * b.table_bytes() as usize).sum()
        }),
        garbling: g.garbling,
        ot_extension: g.ot_extension,
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

impl Summary {
    /// The per-layer table and the totals, fitted to `fit` ([`veil_ir::report::Table`]): human
    /// units, or exact integers under [`Fit::Wide`].
    pub fn render(&self, fit: Fit) -> String {
        let mut t = Table::new(vec![
            Column::name("layer"),
            Column::text("op", 90),
            Column::text("shape", 30),
            Column::number("scale", 10),
            Column::text("protocol", 80),
            Column::number("ReLUs", 35),
            Column::number("AND gates", 60),
            Column::number("off c→s", 40).unit("B"),
            Column::number("off s→c", 70).unit("B"),
            Column::number("on c→s", 50).unit("B"),
            Column::number("on s→c", 65).unit("B"),
            Column::number("rounds", 45),
        ]);
        for l in &self.layers {
            t.row(vec![
                Cell::text(&l.name),
                Cell::text(l.op),
                Cell::text(format!("{:?}", l.shape).replace(' ', "")),
                Cell::text(l.scale.map_or("-".into(), |s| s.to_string())),
                Cell::text(&l.protocol),
                Cell::count(l.relus as u64),
                Cell::count(l.and_gates as u64),
                Cell::bytes(l.offline.bytes_client_to_server),
                Cell::bytes(l.offline.bytes_server_to_client),
                Cell::bytes(l.online.bytes_client_to_server),
                Cell::bytes(l.online.bytes_server_to_client),
                Cell::count(l.online.rounds),
            ]);
        }
        let wide = fit == Fit::Wide;
        let b = |n: u64| if wide { format!("{n} B") } else { units::bytes(n) };
        let c = |n: u64| if wide { n.to_string() } else { units::count(n) };
        let s = |x: f64| if wide { format!("{x:.6} s") } else { units::seconds(x) };
        let mut out = t.render(fit);
        out += &format!(
            "total: {} ReLUs, {} AND gates ({} of garbled tables{}), ring {} bits{}\n",
            c(self.relus as u64),
            c(self.and_gates as u64),
            b(self.garbled_bytes as u64),
            if self.garbling == veil_ir::Garbling::default() { String::new() } else { format!(", {}", self.garbling) },
            self.ring_bits,
            if self.ot_extension == veil_ir::OtExtension::default() {
                String::new()
            } else {
                format!(", {} OT extension", self.ot_extension)
            }
        );
        match (&self.offline, &self.online, &self.unsupported) {
            (Some(off), Some(on), _) => {
                out += &format!(
                    "predicted offline: {} client→server, {} server→client, {} rounds\n",
                    b(off.bytes_client_to_server),
                    b(off.bytes_server_to_client),
                    off.rounds
                );
                out += &format!(
                    "predicted online:  {} client→server, {} server→client, {} rounds\n",
                    b(on.bytes_client_to_server),
                    b(on.bytes_server_to_client),
                    on.rounds
                );
                if let (Some(p), Some(n), Some(cpu)) =
                    (self.predicted_seconds, self.predicted_network_seconds, self.predicted_cpu_seconds)
                {
                    out += &format!(
                        "predicted time at {} Mbit/s, {} ms RTT:\n  offline {} (network {} + CPU {})\n  online  {} (network {} + CPU {})\n",
                        self.network.bandwidth_mbit_s,
                        self.network.rtt_ms,
                        s(p.offline),
                        s(n.offline),
                        s(cpu.offline),
                        s(p.online),
                        s(n.online),
                        s(cpu.online)
                    );
                }
            }
            (_, _, Some(why)) => out += &format!("the two-party runtime cannot run this plan yet: {why}\n"),
            _ => {}
        }
        out
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
    /// "HE", although the runtime refused it. Since session 14 `normalize_linear` runs such a
    /// per-channel scale as a diagonal dense layer: no affine is left, the summary reports
    /// nothing unsupported, and the layer's protocol is a dense layer's.
    #[test]
    fn a_secret_scale_affine_on_shares_runs_as_a_diagonal_dense_layer() {
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
        let text = veil_ir::print::to_text(&g);
        assert!(!g.live_nodes().any(|(_, n)| matches!(n.op, Op::Affine { .. })), "{text}");
        let (_, node) = g.live_nodes().find(|(_, n)| n.name == "scale").expect("the scale node");
        let Op::Dense { weight, .. } = &node.op else { panic!("not a dense layer:\n{text}") };
        let c = &g.consts[*weight];
        assert_eq!((c.shape.as_slice(), c.domain), (&[3usize, 3][..], Domain::Server), "{text}");
        assert_eq!(c.data, vec![1.5, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 2.0], "{text}");
        let summary = summarize(&g);
        assert!(summary.unsupported.is_none(), "{summary:?}");
        let row = summary.layers.iter().find(|l| l.name == "scale").expect("a row for the scale");
        assert!(row.protocol == "HE" || row.protocol == "OT (Gilboa)", "{}", row.protocol);
    }
}
