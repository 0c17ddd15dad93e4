//! The server's executor: holds the weights, garbles, never sees the input or the output.

use rand::{CryptoRng, RngCore};
use veil_ir::plan::Hash;
use veil_ir::ring::Ring;
use veil_ir::{Graph, Op};

use super::client::frac;
use super::local::{Role, apply};
use super::{ExecError, Measures, Stats, enter, exchange_counts, linear, measured, stats};
use crate::net::quic::Session;
use crate::net::script_check::ScriptCheck;
use crate::ot::OtSender;
use crate::proto::gc::{self, GarblerState, GcSpec};
use crate::proto::{circa, matmul, poly};
use crate::wire;
use veil_ir::schedule::script::{Phase, Sent, label};
use veil_ir::schedule::{Kind, LinearOffline, dense_dims, lower};

enum Offline {
    None,
    Masks(Vec<u64>),
    Gc(Vec<GarblerState>),
    Poly(poly::ServerState),
    Circa(circa::ServerState),
}

/// Checks the client's hello against our plan; answers either way. The hello must arrive within
/// `hello_timeout` (a connection that sends none holds a session slot only that long); the
/// channel's own timeout applies again from the reply on.
async fn handshake(
    ch: &mut crate::net::Channel,
    hash: &Hash,
    hello_timeout: std::time::Duration,
) -> Result<(), ExecError> {
    let normal = ch.set_timeout(hello_timeout);
    let hello = ch.recv(label::HANDSHAKE, 64).await;
    ch.set_timeout(normal);
    let hello = hello?;
    let verdict = wire::check_hello(&hello, hash);
    ch.send(label::HANDSHAKE, &wire::hello_reply(&verdict)).await?;
    if verdict.is_err() {
        settle(ch, label::HANDSHAKE).await;
    }
    verdict.map_err(ExecError::Handshake)
}

/// After the session's last message: waits briefly until the client has acknowledged it, so a
/// server that exits next does not lose it. Best effort: a client that has already exited (and
/// may never send its acknowledgement) is not an error.
async fn settle(ch: &mut crate::net::Channel, step: &str) {
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), ch.finish(step)).await;
}

/// Serves one session of plan `g` (hash `hash`, weights attached).
pub async fn run<R: RngCore + CryptoRng + Send>(
    session: &mut Session,
    g: &Graph,
    hash: &Hash,
    rng: &mut R,
) -> Result<Stats, ExecError> {
    let steps = lower(g)?;
    let ring = Ring::new(g.ring_bits.expect("quantized"));
    let mut ch = session.channel().await?;
    handshake(&mut ch, hash, session.hello_timeout()).await?;
    let mut ot_ch = session.channel().await?;
    let check = ScriptCheck::new(false);
    ch.check_script(check.clone());
    ot_ch.check_script(check.clone());
    let mut ot = OtSender::new(session.ot_connection(), ot_ch);
    let meter = session.meter().clone();
    let mut measures: Measures = vec![Default::default(); steps.len()];
    let mut state: Vec<Offline> = Vec::with_capacity(steps.len());
    let len = |v: veil_ir::ValueId| g.values[v].ty.shape.iter().product::<usize>();

    // Offline.
    let mut he_keys = linear::ServerKeys::default();
    let mut gate_offset = 0u64;
    let mut sent = Sent::start();
    for (i, step) in steps.iter().enumerate() {
        let node = &g.nodes[step.node];
        let slot = &mut measures[i][0];
        enter(&meter, &check, g, step, Phase::Offline, &mut sent)?;
        let st = match &step.kind {
            Kind::Linear { offline: LinearOffline::He } => {
                let layer = linear::layout(g, node)?;
                Offline::Masks(
                    measured(&meter, slot, linear::server_offline(&mut ch, &mut he_keys, g, node, &layer, rng)).await?,
                )
            }
            Kind::Linear { offline: LinearOffline::Ot } => {
                let (batch, n_in, n_out) = dense_dims(g, node).expect("OT offline is for dense layers");
                let Op::Dense { weight, .. } = &node.op else { unreachable!("dense") };
                let w = &g.consts[*weight].qdata;
                let f = matmul::dense_server(&mut ch, &mut ot, ring, w, batch, n_in, n_out);
                Offline::Masks(measured(&meter, slot, f).await?)
            }
            Kind::Activation { .. } | Kind::MaxPool { .. } => {
                let mut sts = Vec::new();
                let mut off = gate_offset;
                for b in step.gc_batches(g) {
                    let spec = GcSpec { circuit: b.circuit, server_groups: &b.server_groups };
                    let f = gc::garble_offline(&mut ch, &mut ot, spec, b.instances, off, rng);
                    sts.push(measured(&meter, slot, f).await?);
                    off += b.and_gates();
                }
                Offline::Gc(sts)
            }
            Kind::Circa { input, circuit, .. } => {
                let f = circa::server_offline(&mut ch, &mut ot, ring, circuit, len(*input), gate_offset, rng);
                Offline::Circa(measured(&meter, slot, f).await?)
            }
            Kind::Poly => {
                let n = len(node.inputs[0]);
                Offline::Poly(measured(&meter, slot, poly::server_offline(&mut ch, &mut ot, ring, n, rng)).await?)
            }
            _ => Offline::None,
        };
        gate_offset += step.and_gates(g);
        state.push(st);
    }

    // Online.
    let input_wait = session.input_wait();
    let mut share: Vec<Option<Vec<u64>>> = vec![None; g.values.len()];
    for (i, (step, st)) in steps.iter().zip(state).enumerate() {
        let node = &g.nodes[step.node];
        let slot = &mut measures[i][1];
        enter(&meter, &check, g, step, Phase::Online, &mut sent)?;
        let input = |share: &[Option<Vec<u64>>], v: veil_ir::ValueId| share[v.index()].clone().expect("shared input");
        match (&step.kind, st) {
            (Kind::Share { value }, _) => {
                // The first input may come late: the client can preprocess before it has it.
                let first = share.iter().all(Option::is_none);
                let normal = first.then(|| ch.set_timeout(input_wait));
                let got = measured(&meter, slot, ch.recv_u64s(label::SHARE, len(*value))).await;
                if let Some(t) = normal {
                    ch.set_timeout(t);
                }
                let d = got?;
                share[value.index()] = Some(d);
            }
            (Kind::Linear { .. }, Offline::Masks(m)) => {
                let s = input(&share, node.inputs[0]);
                share[node.output.index()] = Some(linear::server_online(g, ring, node, &s, &m));
            }
            (Kind::Activation { input: v, .. }, Offline::Gc(mut sts)) => {
                let b = &step.gc_batches(g)[0];
                let spec = GcSpec { circuit: b.circuit, server_groups: &b.server_groups };
                let s = input(&share, *v);
                let ins: Vec<Vec<u64>> = s.iter().map(|&x| vec![x]).collect();
                let st = sts.pop().expect("one batch");
                share[node.output.index()] =
                    Some(measured(&meter, slot, gc::garble_online(&mut ch, spec, st, &ins)).await?);
            }
            (Kind::MaxPool { input: v, windows, circuits, .. }, Offline::Gc(sts)) => {
                let s = input(&share, *v);
                let mut out = vec![0u64; windows.len()];
                for (((k, _), b), st) in circuits.iter().zip(step.gc_batches(g)).zip(sts) {
                    let spec = GcSpec { circuit: b.circuit, server_groups: &b.server_groups };
                    let idx: Vec<usize> = (0..windows.len()).filter(|&w| windows[w].len() == *k).collect();
                    let ins: Vec<Vec<u64>> = idx.iter().map(|&w| windows[w].iter().map(|&t| s[t]).collect()).collect();
                    let o = measured(&meter, slot, gc::garble_online(&mut ch, spec, st, &ins)).await?;
                    for (&w, v) in idx.iter().zip(o) {
                        out[w] = v;
                    }
                }
                share[node.output.index()] = Some(out);
            }
            (Kind::Circa { input: v, drop_bits, circuit, .. }, Offline::Circa(st)) => {
                let s = input(&share, *v);
                let f = circa::server_online(&mut ch, ring, (*drop_bits, circuit), st, &s, rng);
                share[node.output.index()] = Some(measured(&meter, slot, f).await?);
            }
            (Kind::Poly, Offline::Poly(st)) => {
                let Op::Poly { coeffs } = &node.op else { unreachable!("poly step") };
                let q = poly::coefficients(ring, coeffs, frac(g, node.inputs[0]));
                let s = input(&share, node.inputs[0]);
                share[node.output.index()] =
                    Some(measured(&meter, slot, poly::server_online(&mut ch, ring, q, &s, st)).await?);
            }
            (Kind::Local, _) => {
                let args: Vec<Vec<u64>> = node.inputs.iter().map(|&v| input(&share, v)).collect();
                let refs: Vec<&[u64]> = args.iter().map(Vec::as_slice).collect();
                share[node.output.index()] = Some(apply(g, ring, node, &refs, Role::Server));
            }
            (Kind::Reveal, _) => {
                let s = input(&share, node.inputs[0]);
                measured(&meter, slot, ch.send_u64s(label::REVEAL, &s)).await?;
            }
            _ => {}
        }
    }
    check.end().map_err(crate::net::NetError::from)?;
    let peer = exchange_counts(&mut ch, &measures, false).await?;
    settle(&mut ch, label::TRAFFIC_COUNTS).await;
    Ok(stats(g, &steps, &measures, &peer, false))
}
