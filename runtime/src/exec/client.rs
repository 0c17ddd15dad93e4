//! The client's executor: holds the input, evaluates the garbled circuits, learns the output.

use rand::{CryptoRng, RngCore};
use veil_ir::eval::{decode_value, encode_inputs, kernels};
use veil_ir::plan::Hash;
use veil_ir::ring::Ring;
use veil_ir::{ElemType, Graph, Op, Tensor};

use super::local::{Role, apply};
use super::{ExecError, Measures, Progress, Quiet, enter, exchange_counts, linear, measured, stats};
use crate::net::quic::Session;
use crate::net::script_check::ScriptCheck;
use crate::net::{Channel, Meter};
use crate::ot::OtReceiver;
use crate::proto::gc::{self, EvaluatorState, GcSpec};
use crate::proto::{circa, matmul, poly};
use crate::wire;
use veil_ir::schedule::script::{Phase, Sent, label};
use veil_ir::schedule::{Kind, LinearOffline, Step, dense_dims, lower};

/// What the client learns.
#[derive(Debug)]
pub struct ClientResult {
    pub outputs: Vec<Tensor>,
    pub stats: super::Stats,
}

enum Offline {
    None,
    Gc(Vec<EvaluatorState>),
    Poly(poly::ClientState),
    Circa(circa::ClientState),
}

fn random(ring: Ring, n: usize, rng: &mut impl RngCore) -> Vec<u64> {
    (0..n).map(|_| ring.reduce(rng.next_u64())).collect()
}

/// Runs the plan `g` (hash `hash`) as the client on `inputs`: the offline phase, then the online.
pub async fn run<R: RngCore + CryptoRng + Send>(
    session: &mut Session,
    g: &Graph,
    hash: &Hash,
    inputs: &[Tensor],
    rng: &mut R,
) -> Result<ClientResult, ExecError> {
    encode_inputs(g, inputs)?;
    let pre = offline(session, g, hash, rng, &Quiet).await?;
    pre.online(inputs, &Quiet).await
}

/// The client after the offline phase: everything the online phase needs except the input
/// (`veil client --preprocess` holds this while it waits for the input).
pub struct Preprocessed<'g> {
    g: &'g Graph,
    ch: Channel,
    /// Held to the end of the session: the OT sub-connection stays open like the server's.
    _ot: OtReceiver,
    meter: Meter,
    steps: Vec<Step>,
    /// Debug builds: the script the channels check frames against.
    check: std::sync::Arc<ScriptCheck>,
    measures: Measures,
    share: Vec<Option<Vec<u64>>>,
    state: Vec<Offline>,
}

impl std::fmt::Debug for Preprocessed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Preprocessed {{ steps: {}, shares: <redacted> }}", self.steps.len())
    }
}

impl Preprocessed<'_> {
    /// The offline phase's time and the bytes the client sent in it (as the stats count them).
    pub fn offline_cost(&self) -> (f64, u64) {
        let secs = self.measures.iter().map(|m| m[0].time.as_secs_f64()).sum();
        (secs, self.measures.iter().map(|m| m[0].traffic.bytes_sent).sum())
    }
}

/// Runs the handshake and the offline phase of plan `g` (hash `hash`) as the client.
pub async fn offline<'g, R: RngCore + CryptoRng + Send>(
    session: &mut Session,
    g: &'g Graph,
    hash: &Hash,
    rng: &mut R,
    progress: &dyn Progress,
) -> Result<Preprocessed<'g>, ExecError> {
    let steps = lower(g)?;
    let ring = Ring::new(g.ring_bits.expect("quantized"));
    let mut ch = session.channel().await?;
    ch.send(label::HANDSHAKE, &wire::hello(hash)).await?;
    let reply = ch.recv(label::HANDSHAKE, 4096).await?;
    wire::parse_hello_reply(&reply)
        .map_err(|reason| ExecError::Handshake(format!("the server refused the session: {reason}")))?;
    let mut ot_ch = session.channel().await?;
    let check = ScriptCheck::new(true);
    ch.check_script(check.clone());
    ot_ch.check_script(check.clone());
    let mut ot = OtReceiver::new(session.ot_connection(), ot_ch);
    let meter = session.meter().clone();
    let mut measures: Measures = vec![Default::default(); steps.len()];
    let mut share: Vec<Option<Vec<u64>>> = vec![None; g.values.len()];
    let mut state: Vec<Offline> = Vec::with_capacity(steps.len());
    let len = |v: veil_ir::ValueId| g.values[v].ty.shape.iter().product::<usize>();
    let mut he_keys = linear::ClientKeys::default();
    let mut sent = Sent::start();

    // Offline.
    for (i, step) in steps.iter().enumerate() {
        let node = &g.nodes[step.node];
        let slot = &mut measures[i][0];
        enter(&meter, &check, g, step, Phase::Offline, &mut sent)?;
        progress.step("offline", i, steps.len(), &node.name, step.protocol());
        let st = match &step.kind {
            Kind::Share { value } => {
                share[value.index()] = Some(random(ring, len(*value), rng));
                Offline::None
            }
            Kind::Linear { offline } => {
                let c = share[node.inputs[0].index()].as_ref().expect("shared input");
                let out = match offline {
                    LinearOffline::He => {
                        let layer = linear::layout(g, node)?;
                        measured(&meter, slot, linear::client_offline(&mut ch, &mut he_keys, &layer, c, rng)).await?
                    }
                    LinearOffline::Ot => {
                        let (_, n_in, n_out) = dense_dims(g, node).expect("OT offline is for dense layers");
                        measured(&meter, slot, matmul::dense_client(&mut ch, &mut ot, ring, c, n_in, n_out)).await?
                    }
                };
                share[node.output.index()] = Some(out);
                Offline::None
            }
            Kind::Activation { input, .. } => {
                let c = share[input.index()].as_ref().expect("shared input");
                let r = random(ring, c.len(), rng);
                let ins: Vec<Vec<u64>> = c.iter().zip(&r).map(|(&y, &m)| vec![y, m]).collect();
                let b = &step.gc_batches(g)[0];
                let spec = GcSpec { circuit: b.circuit, server_groups: &b.server_groups };
                let st = measured(&meter, slot, gc::evaluate_offline(&mut ch, &mut ot, spec, &ins)).await?;
                share[node.output.index()] = Some(r);
                Offline::Gc(vec![st])
            }
            Kind::MaxPool { input, windows, circuits, .. } => {
                let c = share[input.index()].as_ref().expect("shared input");
                let r = random(ring, windows.len(), rng);
                let mut sts = Vec::new();
                for ((k, _), b) in circuits.iter().zip(step.gc_batches(g)) {
                    let spec = GcSpec { circuit: b.circuit, server_groups: &b.server_groups };
                    let ins: Vec<Vec<u64>> = windows
                        .iter()
                        .zip(&r)
                        .filter(|(w, _)| w.len() == *k)
                        .map(|(w, &m)| w.iter().map(|&t| c[t]).chain([m]).collect())
                        .collect();
                    sts.push(measured(&meter, slot, gc::evaluate_offline(&mut ch, &mut ot, spec, &ins)).await?);
                }
                share[node.output.index()] = Some(r);
                Offline::Gc(sts)
            }
            Kind::Circa { drop_bits, variant, circuit, .. } => {
                let c = share[node.inputs[0].index()].as_ref().expect("shared input");
                let r = random(ring, c.len(), rng);
                let kv = (*drop_bits, *variant);
                let f = circa::client_offline(&mut ch, &mut ot, ring, circuit, kv, c, r.clone(), rng);
                let st = measured(&meter, slot, f).await?;
                share[node.output.index()] = Some(r);
                Offline::Circa(st)
            }
            Kind::Poly => {
                let c = share[node.inputs[0].index()].as_ref().expect("shared input");
                let st = measured(&meter, slot, poly::client_offline(&mut ch, &mut ot, ring, c, rng)).await?;
                share[node.output.index()] = Some(st.output_share().to_vec());
                Offline::Poly(st)
            }
            Kind::Local => {
                let args: Vec<&[u64]> =
                    node.inputs.iter().map(|v| share[v.index()].as_deref().expect("shared input")).collect();
                let out = apply(g, ring, node, &args, Role::Client);
                share[node.output.index()] = Some(out);
                Offline::None
            }
            Kind::Reveal | Kind::Client => Offline::None,
        };
        state.push(st);
    }

    progress.done("offline");
    Ok(Preprocessed { g, ch, _ot: ot, meter, steps, check, measures, share, state })
}

impl Preprocessed<'_> {
    /// Runs the online phase on `inputs` and learns the outputs.
    pub async fn online(self, inputs: &[Tensor], progress: &dyn Progress) -> Result<ClientResult, ExecError> {
        let Preprocessed { g, mut ch, _ot, meter, steps, check, mut measures, share, state } = self;
        let ring = Ring::new(g.ring_bits.expect("quantized"));
        let encoded = encode_inputs(g, inputs)?;
        let mut plain: Vec<Option<Vec<u64>>> = vec![None; g.values.len()];
        let mut floats: Vec<Option<Tensor>> = vec![None; g.values.len()];
        for (&v, (_, data)) in g.inputs.iter().zip(encoded) {
            plain[v.index()] = Some(data);
        }
        let mut gate_offset = 0u64;
        for (i, (step, st)) in steps.iter().zip(state).enumerate() {
            let node = &g.nodes[step.node];
            let slot = &mut measures[i][1];
            enter(&meter, &check, g, step, Phase::Online, &mut Sent::all())?;
            progress.step("online", i, steps.len(), &node.name, step.protocol());
            match (&step.kind, st) {
                (Kind::Share { value }, _) => {
                    let x = plain[value.index()].as_ref().expect("client value");
                    let r = share[value.index()].as_ref().expect("mask");
                    let d: Vec<u64> = x.iter().zip(r).map(|(&x, &r)| ring.reduce(x.wrapping_sub(r))).collect();
                    measured(&meter, slot, ch.send_u64s(label::SHARE, &d)).await?;
                }
                (Kind::Activation { .. } | Kind::MaxPool { .. }, Offline::Gc(sts)) => {
                    let mut off = gate_offset;
                    for (b, st) in step.gc_batches(g).iter().zip(sts) {
                        let spec = GcSpec { circuit: b.circuit, server_groups: &b.server_groups };
                        measured(&meter, slot, gc::evaluate_online(&mut ch, spec, st, off)).await?;
                        off += b.and_gates();
                    }
                }
                (Kind::Circa { circuit, .. }, Offline::Circa(st)) => {
                    let c = share[node.inputs[0].index()].as_ref().expect("shared input");
                    measured(&meter, slot, circa::client_online(&mut ch, ring, circuit, st, c, gate_offset)).await?;
                }
                (Kind::Poly, Offline::Poly(st)) => {
                    let Op::Poly { coeffs } = &node.op else { unreachable!("poly step") };
                    let q = poly::coefficients(ring, coeffs, frac(g, node.inputs[0]));
                    let c = share[node.inputs[0].index()].as_ref().expect("shared input");
                    measured(&meter, slot, poly::client_online(&mut ch, ring, q, c, st)).await?;
                }
                (Kind::Reveal, _) => {
                    let v = node.inputs[0];
                    let c = share[v.index()].as_ref().expect("shared value");
                    let s = measured(&meter, slot, ch.recv_u64s(label::REVEAL, c.len())).await?;
                    plain[node.output.index()] =
                        Some(c.iter().zip(&s).map(|(&a, &b)| ring.reduce(a.wrapping_add(b))).collect());
                }
                (Kind::Client, _) => client_op(g, ring, node, &mut plain, &mut floats),
                _ => {}
            }
            gate_offset += step.and_gates(g);
        }
        progress.done("online");
        check.end().map_err(crate::net::NetError::from)?;
        let peer = exchange_counts(&mut ch, &measures, true).await?;
        let outputs = g
            .outputs
            .iter()
            .map(|&v| match (&floats[v.index()], &plain[v.index()]) {
                (Some(t), _) => t.clone(),
                (None, Some(d)) => decode_value(g, v, &g.values[v].ty.shape, d),
                (None, None) => unreachable!("outputs are client values"),
            })
            .collect();
        Ok(ClientResult { outputs, stats: stats(g, &steps, &measures, &peer, true) })
    }
}

pub(crate) fn frac(g: &Graph, v: veil_ir::ValueId) -> u8 {
    match g.values[v].ty.elem {
        ElemType::Fixed { frac_bits } => frac_bits,
        _ => 0,
    }
}

/// A client-domain op on plaintext values (post-processing after `reveal`, or movement of the
/// client's input before sharing).
fn client_op(
    g: &Graph,
    ring: Ring,
    node: &veil_ir::Node,
    plain: &mut [Option<Vec<u64>>],
    floats: &mut [Option<Tensor>],
) {
    let v = node.inputs[0];
    let decoded = || -> Tensor {
        floats[v.index()].clone().unwrap_or_else(|| {
            decode_value(g, v, &g.values[v].ty.shape, plain[v.index()].as_ref().expect("client value"))
        })
    };
    let out = match &node.op {
        Op::Softmax { axis, coerce_2d } => kernels::softmax(&decoded(), *axis, *coerce_2d, false),
        Op::LogSoftmax { axis, coerce_2d } => kernels::softmax(&decoded(), *axis, *coerce_2d, true),
        Op::ArgMax { axis, keepdims, select_last_index } => {
            kernels::argmax(&decoded(), *axis, *keepdims, *select_last_index)
        }
        // Movement after post-processing (a softmax's probabilities) is on floats.
        Op::Reshape { shape } if floats[v.index()].is_some() => Tensor { shape: shape.clone(), data: decoded().data },
        _ => {
            let args: Vec<&[u64]> =
                node.inputs.iter().map(|v| plain[v.index()].as_deref().expect("client value")).collect();
            let d = apply(g, ring, node, &args, Role::Plain);
            plain[node.output.index()] = Some(d);
            return;
        }
    };
    floats[node.output.index()] = Some(out);
}
