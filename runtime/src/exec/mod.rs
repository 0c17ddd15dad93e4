//! Plan executors: each party walks the same [`veil_ir::schedule::lower`]ed plan, first offline (HE for
//! linear layers, garbling and OT, Beaver pairs: nothing depends on the input), then online.
//!
//! Invariant: the client's share of every shared value is known at the end of the offline
//! phase (a fresh mask, `W·c − m` from HE, a circuit's output mask, a sum or movement of such),
//! so online linear layers are local and only non-linear layers talk.
//!
//! Each executor is a loop over the steps: enter the step (`enter`), then call its
//! [`step::Protocol`] (from [`crate::proto::register`]) for the party and phase; the protocols
//! keep their offline state and read and write the party's shares ([`step::Values`]). The
//! executors run over any [`crate::net::session::PartySession`].
//!
//! Stats: each party meters what it sends per step and phase; at the end the parties exchange
//! their per-step sent counts, so both report every direction from the sender's count (the
//! number the compiler predicts). Rounds are the party's own flights.

pub mod client;
#[cfg(test)]
mod fixed_share_tests;
#[cfg(test)]
mod float_grid_tests;
pub mod local;
#[cfg(test)]
mod memory_tests;
#[cfg(test)]
mod onnx_model_tests;
pub mod server;
pub mod step;
#[cfg(test)]
mod store_tests;

use std::time::Duration;

use veil_ir::schedule::script::{self, Sent, label};

use crate::net::script_check::ScriptCheck;
use crate::net::{Channel, Meter, NetError, Traffic};

/// Each step's context, computed once per phase loop: its node, the ring, and its first AND-gate
/// tweak (the running sum of the earlier steps' AND gates, so tweaks never repeat in a session).
pub(crate) fn contexts<'a>(g: &'a veil_ir::Graph, steps: &'a [veil_ir::schedule::Step]) -> Vec<step::Cx<'a>> {
    let ring = veil_ir::ring::Ring::new(g.ring_bits.expect("quantized"));
    let mut gate_offset = 0u64;
    steps
        .iter()
        .enumerate()
        .map(|(index, step)| {
            let cx = step::Cx { g, index, step, node: &g.nodes[step.node], ring, gate_offset };
            gate_offset += step.and_gates(g);
            cx
        })
        .collect()
}

/// Enters `step` of `phase`: names the position in the session's `meter` (transport errors name
/// it) and, in debug builds, hands `check` the step's message script, which the party's channels
/// hold every frame to. `sent`: the session's one-time messages so far (offline phase).
pub(crate) fn enter(
    meter: &Meter,
    check: &ScriptCheck,
    g: &veil_ir::Graph,
    step: &veil_ir::schedule::Step,
    phase: script::Phase,
    sent: &mut Sent,
) -> Result<(), NetError> {
    let at = format!("{}, layer {:?} ({})", phase.name(), g.nodes[step.node].name, step.protocol());
    if cfg!(debug_assertions) {
        check.expect(at.clone(), script::script(g, step, phase, sent))?;
    }
    meter.enter(at);
    Ok(())
}

/// Watches a session's progress (the CLI's progress bar). The executors call [`Progress::step`]
/// as each step of a phase starts and [`Progress::done`] at the end of the phase.
pub trait Progress: Sync {
    /// Step `index` of `total` of `phase` (`"offline"` or `"online"`) starts.
    fn step(&self, _phase: &'static str, _index: usize, _total: usize, _name: &str, _protocol: &str) {}
    /// `phase` ended.
    fn done(&self, _phase: &'static str) {}
}

/// Reports nothing.
#[derive(Debug, Clone, Copy)]
pub struct Quiet;

impl Progress for Quiet {}

/// Why a session failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The transport failed or a peer's message broke the protocol (it names the step).
    #[error("{0}")]
    Net(#[from] NetError),
    /// An HE linear layer failed: no parameters fit, an HE operation, or one of its messages.
    #[error("{0}")]
    Layer(#[from] crate::proto::he_linear::LayerError),
    /// The plan has a node this runtime cannot run (found when lowering, before any message).
    #[error("the plan cannot run: {0}")]
    Unsupported(#[from] veil_ir::schedule::Unsupported),
    /// The server refused the client's hello, or its reply was malformed (client side; the text is
    /// sanitised).
    #[error("handshake: {0}")]
    Handshake(String),
    /// The client's preprocessing store failed, or refused a file (`--preprocess-dir`).
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    /// The client's inputs are refused before sharing: count, shape, non-finite or out of range.
    #[error("input: {0}")]
    Input(#[from] veil_ir::eval::EvalError),
}

/// The stats schema lives in [`veil_ir::stats`], shared with `veilc`, which reads the JSON back.
pub use veil_ir::stats::{LayerStats, Phase, Stats};

/// One party's raw measurements of one step and phase.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Measure {
    pub traffic: Traffic,
    pub time: Duration,
}

/// Per-step measurements of one party: `[step][phase]`.
pub(crate) type Measures = Vec<[Measure; 2]>;

/// Builds the stats from both parties' measurements (sent bytes from each sender).
pub(crate) fn stats(
    g: &veil_ir::Graph,
    steps: &[veil_ir::schedule::Step],
    own: &Measures,
    peer_sent: &[[u64; 2]],
    client: bool,
) -> Stats {
    let mut s = Stats { offline: Phase::default(), online: Phase::default(), layers: Vec::new() };
    for (i, step) in steps.iter().enumerate() {
        let node = &g.nodes[step.node];
        let phase = |p: usize| {
            let m = own[i][p];
            let (mine, theirs) = (m.traffic.bytes_sent, peer_sent[i][p]);
            let (c2s, s2c) = if client { (mine, theirs) } else { (theirs, mine) };
            Phase {
                seconds: m.time.as_secs_f64(),
                bytes_client_to_server: c2s,
                bytes_server_to_client: s2c,
                rounds: m.traffic.rounds,
            }
        };
        let (off, on) = (phase(0), phase(1));
        s.offline += off;
        s.online += on;
        s.layers.push(LayerStats {
            name: node.name.clone(),
            op: node.op.mnemonic().to_string(),
            protocol: step.protocol().to_string(),
            offline: off,
            online: on,
        });
    }
    s
}

/// Exchanges the per-step sent byte counts (after the online phase; not itself counted).
pub(crate) async fn exchange_counts(ch: &mut Channel, own: &Measures, client: bool) -> Result<Vec<[u64; 2]>, NetError> {
    let mine: Vec<u64> = own.iter().flat_map(|m| [m[0].traffic.bytes_sent, m[1].traffic.bytes_sent]).collect();
    let step = label::TRAFFIC_COUNTS;
    let theirs = if client {
        ch.send_u64s(step, &mine).await?;
        ch.recv_u64s(step, mine.len()).await?
    } else {
        let t = ch.recv_u64s(step, mine.len()).await?;
        ch.send_u64s(step, &mine).await?;
        t
    };
    Ok(theirs.chunks_exact(2).map(|c| [c[0], c[1]]).collect())
}

/// Runs `f` and records its time and traffic delta into `slot`.
pub(crate) async fn measured<T, E>(
    meter: &crate::net::Meter,
    slot: &mut Measure,
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let (t0, m0) = (std::time::Instant::now(), meter.snapshot());
    let out = f.await?;
    slot.time += t0.elapsed();
    let d = meter.snapshot() - m0;
    slot.traffic.bytes_sent += d.bytes_sent;
    slot.traffic.bytes_received += d.bytes_received;
    slot.traffic.rounds += d.rounds;
    Ok(out)
}
