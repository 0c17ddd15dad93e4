//! The cost model: per protocol step of a plan ([`veil_ir::schedule`]), bytes each way and
//! rounds per phase as a fold over the step's message script ([`veil_ir::schedule::script`],
//! the one description of what each step sends), and estimated CPU time ([`cpu_seconds`]).
//!
//! Bytes are exact for both phases; the runtime's per-layer stats must equal them
//! (`tests/tests/two_party.rs` checks it). Online rounds are exact; offline rounds are counted by
//! the same rule but OT internals may add flights the script does not model.

use serde::Serialize;
use veil_ir::Graph;
use veil_ir::NodeId;
use veil_ir::schedule::script::{self, Dir, Message, Phase};
use veil_ir::schedule::{Kind, LinearOffline, Step, Unsupported, lower};

pub use veil_ir::schedule::script::Sent;

/// Traffic of one phase of one layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// Bytes the client sends, frame prefixes and OT streams included.
    pub bytes_client_to_server: u64,
    /// Bytes the server sends, frame prefixes and OT streams included.
    pub bytes_server_to_client: u64,
    /// Flights: runs of messages in one direction (see [`Traffic::of`]).
    pub rounds: u64,
}

impl Traffic {
    /// The traffic of `messages`, in order. The rounds rule (the runtime's meter counts the
    /// same way): a round is a flight, a run of messages in one direction within a step; each
    /// change of direction starts the next, and a message of no bytes is no flight.
    pub fn of(messages: &[Message]) -> Traffic {
        let mut t = Traffic::default();
        let mut last = None;
        for m in messages {
            let bytes = m.wire_bytes();
            if bytes == 0 {
                continue;
            }
            if last != Some(m.dir) {
                t.rounds += 1;
                last = Some(m.dir);
            }
            match m.dir {
                Dir::ClientToServer => t.bytes_client_to_server += bytes,
                Dir::ServerToClient => t.bytes_server_to_client += bytes,
            }
        }
        t
    }

    /// The traffic of `step` in `phase` (its script's, given what the session `sent` before).
    pub fn of_step(g: &Graph, step: &Step, phase: Phase, sent: &mut Sent) -> Traffic {
        Traffic::of(&script::script(g, step, phase, sent))
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
    /// The step's main node (not serialized).
    #[serde(skip)]
    pub node: NodeId,
    /// The node's name (ONNX node name).
    pub name: String,
    /// The op's mnemonic (`conv2d`, `relu`, ...).
    pub op: &'static str,
    /// The step's protocol label ([`Step::protocol`]), as the runtime's stats print it.
    pub protocol: &'static str,
    /// Predicted offline traffic (exact bytes).
    pub offline: Traffic,
    /// Predicted online traffic (exact bytes and rounds).
    pub online: Traffic,
    /// Estimated CPU seconds per phase ([`cpu_seconds`]).
    pub offline_cpu_seconds: f64,
    /// Estimated online CPU seconds ([`cpu_seconds`]).
    pub online_cpu_seconds: f64,
}

/// Predicted costs of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanCost {
    /// One entry per protocol step, in execution order.
    pub layers: Vec<LayerCost>,
    /// Offline traffic: the sum of the steps'.
    pub offline: Traffic,
    /// Online traffic: the sum of the steps'.
    pub online: Traffic,
    /// Estimated offline CPU seconds: the sum of the steps'.
    pub offline_cpu_seconds: f64,
    /// Estimated online CPU seconds: the sum of the steps'.
    pub online_cpu_seconds: f64,
}

impl PlanCost {
    /// Predicted seconds `(offline, online)` under `net`: network time plus CPU time.
    pub fn seconds(&self, net: &Network) -> (f64, f64) {
        (net.seconds(&self.offline) + self.offline_cpu_seconds, net.seconds(&self.online) + self.online_cpu_seconds)
    }
}

/// Predicted costs of every step of the plan `g`.
pub fn plan_cost(g: &Graph) -> Result<PlanCost, Unsupported> {
    let (mut offline_total, mut online_total) = (Traffic::default(), Traffic::default());
    let mut sent = Sent::start();
    // HE parameter sets already set up in the session (the first layer of each pays for it).
    let mut he_params = Vec::new();
    let layers = lower(g)?
        .iter()
        .map(|step| {
            let node = &g.nodes[step.node];
            let offline = Traffic::of_step(g, step, Phase::Offline, &mut sent);
            let online = Traffic::of_step(g, step, Phase::Online, &mut sent);
            let (mut cpu_off, cpu_on) = cpu_seconds(g, step);
            if let Kind::Linear { offline: LinearOffline::He } = step.kind
                && let Some(l) = veil_ir::he_pack::Layer::of(g, node)
                && !he_params.contains(&l.params.key_set())
            {
                he_params.push(l.params.key_set());
                cpu_off += cpu::HE_SESSION_S;
            }
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

/// The CPU-time model: throughputs measured on the 2-core development machine (release build)
/// by `cargo bench -p veil-runtime` (garble, protocols, he) and fitted to `veil client --stats`
/// per-layer times (the OT dense correlation, silent OT, ReLUs over OT online). Estimates, not exact counts: the cost model's bytes and
/// rounds are exact, its seconds are these rates applied to exact counts.
pub mod cpu {
    /// AND gates garbled per second (server, offline).
    pub const GARBLE_ANDS_PER_S: f64 = 16.1e6;
    /// AND gates evaluated per second (client, online).
    pub const EVAL_ANDS_PER_S: f64 = 33.9e6;
    /// AND gates garbled per second with three halves: half-gates' rate times 0.56, the middle
    /// of the lockstep ratios 0.48–0.64 measured in one run with half-gates (`cargo bench --bench
    /// garble`, docs/decisions.md).
    pub const GARBLE_3H_ANDS_PER_S: f64 = 9.0e6;
    /// AND gates evaluated per second with three halves: half-gates' rate times 0.545 (lockstep
    /// ratios 0.53–0.56, as above).
    pub const EVAL_3H_ANDS_PER_S: f64 = 18.5e6;
    /// Random OTs per second (IKNP, both parties).
    pub const RANDOM_OTS_PER_S: f64 = 17.5e6;
    /// Correlated OTs per second.
    pub const CORRELATED_OTS_PER_S: f64 = 11.2e6;
    /// BFV encryption of the client's mask, per polynomial coefficient and prime (client).
    ///
    /// The HE rates are session 25's `cargo bench -p veil-runtime --bench he` on the 2-core
    /// machine (ℓ = 40, N = 8192, 4 primes; both cores, as the runtime runs them), per
    /// coefficient and prime: the 64→64 convolution at 64×64 encrypts 64 ciphertexts in 26 ms,
    /// prepares 64 responses in 64 ms, answers 4,096 products in 228 ms and decrypts in 24 ms;
    /// its kernels take 452 ms to encode. With them, ResNet-32's 33 HE layers predict 1.33 s
    /// and the ResNet-18 shape's 21 predict 12.6 s of offline time; `veil client --stats`
    /// measured 1.53 and 12.75 s on loopback (the rates before, fitted when the products ran
    /// outside the NTT domain, predicted 9.5 and 200 s).
    pub const HE_ENCRYPT_S_PER_COEFF: f64 = 12e-9;
    /// BFV plaintext products, per input × output ciphertext pair, per coefficient and prime
    /// (server): the answer's products in the NTT domain, summed over channel tiles.
    pub const HE_PRODUCT_S_PER_COEFF: f64 = 1.7e-9;
    /// The kernels' encoding (lift, transform), per product polynomial, coefficient and prime
    /// (server): priced per session, as for a layer past `veil server --he-cache`; a layer the
    /// server encoded at start does without it.
    pub const HE_KERNEL_S_PER_COEFF: f64 = 3.4e-9;
    /// The request-independent part of each response (server): an encryption of zero under the
    /// client's public key (circuit privacy) and the flooding noise, per coefficient and prime.
    pub const HE_RERANDOMISE_S_PER_COEFF: f64 = 30e-9;
    /// BFV decryption, per coefficient and response prime (client).
    pub const HE_DECRYPT_S_PER_COEFF: f64 = 23e-9;
    /// BFV per layer and batch element, whatever its size: keys, messages, the steps' set-up
    /// (the constant of a least-squares fit to the 54 HE layers' measured times above, 19–33 ms).
    pub const HE_LAYER_S: f64 = 0.02;
    /// BFV per parameter set and session, paid by its first layer in [`super::plan_cost`] (the
    /// parameters' transform tables and the client's keys): the first HE layer of the bundled
    /// MLP and of ResNet-32 take 85–110 ms more than the next of their size (session 25,
    /// `veil client --stats`). A layer's marginal cost, which `assign_protocols` compares,
    /// leaves it out, like the session's one-time messages.
    pub const HE_SESSION_S: f64 = 0.09;
    /// Gilboa dense correlation: per weight and bit of the ring (PRG draws and bit packing on
    /// both sides, which run one after the other). Refitted in session 25 to the bundled MLP's
    /// dense layers over OT (`veilc run models/mlp.onnx --linear-offline ot --stats`): 77–80
    /// and 12 ms for its first two layers, where 50 ns predicted 177 and 29 ms.
    pub const OT_DENSE_S_PER_WEIGHT_BIT: f64 = 21e-9;
    /// Local ring arithmetic, per element of a linear layer's multiply-accumulate (the server's
    /// online convolution on both cores; `veilc simulate` runs the ResNet-18 shape's 2.2 G of
    /// them in 1.3 s of one core, session 25).
    pub const RING_MAC_S: f64 = 0.3e-9;
    /// Random-choice OTs per second from silent OT, end to end in a session (both parties).
    /// Fitted to ResNet-32's ReLU layers over OT (ℓ = 40, f = 13: 98 random-choice OTs per ReLU,
    /// 29.7 M in all) in `veilc run models/bench/resnet32.onnx --nonlinear ot --stats`: 4.8 and
    /// 6.6 s of offline time with batches run in library runs of at most `SILENT_RUN` OTs
    /// (session 15, other builds loading the machine), 6.2 and 4.5 M/s; 9.6 s (3.1 M/s) when a
    /// layer's batch ran as one (session 11), 1.2e6 before the x86-64-v2 build. The library
    /// alone does 9.7 M/s in runs of 2^16–2^19 OTs (`cargo bench -p veil-runtime --bench
    /// silent_batch`). Refitted in session 17 on the same command: 3.3 s on the idle machine
    /// (9.0 M/s) and 4.2 s with a build loading it (7.1 M/s); 7.5 M/s sits between.
    pub const SILENT_OTS_PER_S: f64 = 7.5e6;
    /// A ReLU over OT online, per element: table hashing, AND openings and products on both
    /// sides. Refitted in session 15 to ResNet-32's ReLU layers online (303,104 ReLUs, `veilc
    /// run models/bench/resnet32.onnx --nonlinear ot --stats`): 0.81 s on a quiet machine and
    /// 1.09–1.17 s with builds loading it, 2.7–3.9 µs per ReLU with the flights' loopback
    /// latency included. It was 8 µs, fitted to cifar_cnn before session 13 moved the OTs'
    /// hashing offline; priced per element for the truncation, LeakyReLU and Clip kinds too.
    /// Refitted in session 25 (`veil client --stats`, the online phase less [`RING_MAC_S`]'s
    /// share): ResNet-32 0.47 s for 303,104 ReLUs (1.55 µs), the ResNet-18 shape 3.2 s for
    /// 2.23 M (1.43 µs); 3.5 µs predicted 2.2× and 2.9× their online phases.
    pub const RELU_OT_ONLINE_S: f64 = 1.5e-6;
}

/// AND gates per second `(garbled, evaluated)` under `scheme` ([`cpu`]).
pub fn and_rates(scheme: veil_ir::Garbling) -> (f64, f64) {
    match scheme {
        veil_ir::Garbling::HalfGates => (cpu::GARBLE_ANDS_PER_S, cpu::EVAL_ANDS_PER_S),
        veil_ir::Garbling::ThreeHalves => (cpu::GARBLE_3H_ANDS_PER_S, cpu::EVAL_3H_ANDS_PER_S),
    }
}

/// Chosen-input OTs per second under the plan's OT extension: IKNP's correlated or random
/// rate, or silent OT's (the derandomisation is a bit per OT, negligible).
fn chosen_ot_rate(g: &Graph, correlated: bool) -> f64 {
    use cpu::*;
    match (g.ot_extension, correlated) {
        (veil_ir::OtExtension::Silent, _) => SILENT_OTS_PER_S,
        (veil_ir::OtExtension::Iknp, true) => CORRELATED_OTS_PER_S,
        (veil_ir::OtExtension::Iknp, false) => RANDOM_OTS_PER_S,
    }
}

/// Estimated CPU seconds of one step `(offline, online)`: the sum of both parties' work on the
/// critical path (they mostly wait for each other).
pub fn cpu_seconds(g: &Graph, step: &Step) -> (f64, f64) {
    use cpu::*;
    let node = &g.nodes[step.node];
    let ell = g.ring_bits.unwrap_or(61) as f64;
    // Garbling and the client's input labels offline, evaluation online, per garbled batch.
    let gc = || {
        step.gc_batches(g).iter().fold((0.0, 0.0), |(off, on), b| {
            let a = b.and_gates() as f64;
            let labels = (b.instances as u64 * b.client_wires()) as f64;
            let (garble, eval) = and_rates(b.garbling);
            (off + (a / garble + labels / chosen_ot_rate(g, true)), on + a / eval)
        })
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
                    let ell = f64::from(veil_ir::schedule::dense_ot_bits(g, step.node));
                    (b * n_in) as f64 * ell / chosen_ot_rate(g, false) + macs * ell * OT_DENSE_S_PER_WEIGHT_BIT
                }
                LinearOffline::He => veil_ir::he_pack::Layer::of(g, node).map_or(0.0, |l| {
                    let p = &l.params;
                    let (n, ins, outs) = (p.degree as f64, l.tiling.input_cts() as f64, l.tiling.output_cts() as f64);
                    l.batch as f64
                        * (HE_LAYER_S
                            + ins * n * p.primes as f64 * HE_ENCRYPT_S_PER_COEFF
                            + l.tiling.products() as f64
                                * n
                                * p.primes as f64
                                * (HE_PRODUCT_S_PER_COEFF + HE_KERNEL_S_PER_COEFF)
                            + outs * n * p.primes as f64 * HE_RERANDOMISE_S_PER_COEFF
                            + outs * n * p.response_primes as f64 * HE_DECRYPT_S_PER_COEFF)
                }),
            };
            (off, online)
        }
        Kind::Activation { .. } | Kind::MaxPool { .. } => gc(),
        Kind::Circa { input, .. } => {
            let n = g.values[*input].ty.len();
            let (x, y) = gc();
            (x + (n as f64) * (ell + 1.0) / chosen_ot_rate(g, false), y)
        }
        Kind::Poly => (g.values[node.inputs[0]].ty.len() as f64 * ell / chosen_ot_rate(g, false), 0.0),
        Kind::Mul => (2.0 * g.values[node.output].ty.len() as f64 * ell / chosen_ot_rate(g, false), 0.0),
        Kind::MatMul => {
            // Two cross products of Gilboa vector OLEs (one OT per bit of each of the client's
            // `U` and `V` entries, a PRG word per weight bit), two local products online.
            let (batch, m, k, n) = veil_ir::schedule::matmul_dims(g, node);
            let (ots, macs) = ((batch * (m + n) * k) as f64 * ell, (batch * m * k * n) as f64);
            (ots / chosen_ot_rate(g, false) + 2.0 * macs * ell * OT_DENSE_S_PER_WEIGHT_BIT, 2.0 * macs * RING_MAC_S)
        }
        Kind::ReluOt { input, shift, width, .. } => {
            let n = g.values[*input].ty.len() as f64;
            let (ell, f) = (*width as u32, *shift as u32);
            let ots = n
                * (veil_ir::schedule::relu_ot::rots(ell, f) + veil_ir::schedule::relu_ot::rots_reversed(ell, f)) as f64;
            (ots / SILENT_OTS_PER_S, n * RELU_OT_ONLINE_S)
        }
        Kind::ClipOt { input, shift, .. } => {
            // Two ReLUs over OT per element, the second at shift 0.
            let n = g.values[*input].ty.len() as f64;
            let (ell, f) = (ell as u32, *shift as u32);
            let ots = n
                * (veil_ir::schedule::clip_ot::rots(ell, f) + veil_ir::schedule::clip_ot::rots_reversed(ell, f)) as f64;
            (ots / SILENT_OTS_PER_S, 2.0 * n * RELU_OT_ONLINE_S)
        }
        Kind::LeakyReluOt { input, shift, .. } => {
            // Up to two truncations and a shift-0 ReLU per element: priced as three ReLUs over OT.
            let n = g.values[*input].ty.len() as f64;
            let (ell, f) = (ell as u32, *shift as u32);
            let ots = n
                * (veil_ir::schedule::leaky_ot::rots(ell, f) + veil_ir::schedule::leaky_ot::rots_reversed(ell, f))
                    as f64;
            (ots / SILENT_OTS_PER_S, 3.0 * n * RELU_OT_ONLINE_S)
        }
        Kind::TruncOt { input, shift } => {
            // Two comparisons and two products per element: priced like one ReLU over OT.
            let n = g.values[*input].ty.len() as f64;
            let ots = n * (veil_ir::schedule::trunc_ot::rots(ell as u32, *shift as u32) + 2) as f64;
            (ots / SILENT_OTS_PER_S, n * RELU_OT_ONLINE_S)
        }
        Kind::CircaOt { input, drop_bits, test_bits, .. } => {
            // A shift-0 ReLU over OT with a narrower comparison: priced per element like one.
            let n = g.values[*input].ty.len() as f64;
            let w = veil_ir::schedule::circa_ot::width(*drop_bits, *test_bits);
            let ots = n * (veil_ir::schedule::circa_ot::rots(w) + veil_ir::schedule::circa_ot::rots_reversed(w)) as f64;
            (ots / SILENT_OTS_PER_S, n * RELU_OT_ONLINE_S)
        }
        Kind::MaxPoolOt { windows, width, .. } => {
            // One shift-0 ReLU over OT per max-tree pair, comparing `width` bits.
            let n = veil_ir::schedule::relu_ot::max_levels(windows).iter().sum::<u64>() as f64;
            let ell = *width as u32;
            let ots = n
                * (veil_ir::schedule::relu_ot::rots(ell, 0) + veil_ir::schedule::relu_ot::rots_reversed(ell, 0)) as f64;
            (ots / SILENT_OTS_PER_S, n * RELU_OT_ONLINE_S)
        }
        _ => (0.0, 0.0),
    }
}

/// A network profile: bandwidth shared by both directions and round-trip time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Network {
    /// Bandwidth in Mbit/s, shared by both directions.
    pub bandwidth_mbit_s: f64,
    /// Round-trip time in milliseconds; each flight costs half of it.
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
