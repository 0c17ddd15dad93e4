//! The seam between the executors and the protocols: a [`Protocol`] runs one schedule step for
//! either party, and [`crate::proto::register`] maps each [`veil_ir::schedule::Kind`] to one.
//!
//! Each executor is a loop over the plan's steps: it enters the step (position, script check,
//! progress), calls the party's offline method, which keeps its state in the protocol object,
//! and later the party's online method, which reads its input shares from [`Values`] and writes
//! its output share there. Everything protocol-specific (messages, algebra, states) lives in the
//! protocol's module under `proto/`, both parties side by side.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rand::{CryptoRng, RngCore};
use veil_ir::ring::Ring;
use veil_ir::schedule::Step;
use veil_ir::{Graph, Node, Tensor, ValueId};

use super::ExecError;
use crate::net::Channel;
use crate::ot::{SessionOtReceiver, SessionOtSender};
use crate::proto::he_linear::{ClientKeys, ServerAhead, ServerKeys};

/// A party's randomness (a CSPRNG), as a trait object.
pub trait Csprng: RngCore + CryptoRng + Send {}
impl<T: RngCore + CryptoRng + Send> Csprng for T {}

/// What a step method returns: a boxed future (so protocols are trait objects).
pub type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ExecError>> + Send + 'a>>;

/// The position of a step in the plan.
#[derive(Debug, Clone, Copy)]
pub struct Cx<'a> {
    /// The plan (both parties hold the same graph; only the server's has weights).
    pub g: &'a Graph,
    /// The step's index in the lowered plan.
    pub index: usize,
    /// The lowered step being run.
    pub step: &'a Step,
    /// The step's node in `g` (`g.nodes[step.node]`).
    pub node: &'a Node,
    /// The plan's share ring, `Z_{2^ring_bits}`.
    pub ring: Ring,
    /// The first AND-gate tweak of the step: garbled-circuit tweaks never repeat in a session
    /// (the executors advance it by [`Step::and_gates`]).
    pub gate_offset: u64,
}

impl Cx<'_> {
    /// Elements of value `v`.
    pub fn len(&self, v: ValueId) -> usize {
        self.g.values[v].ty.shape.iter().product()
    }
}

/// The server's connection to the client for the whole session.
pub struct ServerIo {
    /// The session's first channel: the hello, the steps' framed messages but OT's, the counts.
    pub ch: Channel,
    /// The OT sender (the garbler's side); its go-ahead frames use the session's second channel.
    pub ot: SessionOtSender,
    /// The client's HE public keys, received with the first layer of each parameter set.
    pub he_keys: ServerKeys,
    /// The next HE layer's work, made ahead of its step.
    pub he_ahead: ServerAhead,
    /// How long to wait for the client's input (the first shared value online).
    pub input_wait: Duration,
}

/// The client's connection to the server for the whole session.
pub struct ClientIo {
    /// The session's first channel: the hello, the steps' framed messages but OT's, the counts.
    pub ch: Channel,
    /// The OT receiver (the evaluator's side); its go-ahead frames use the second channel.
    pub ot: SessionOtReceiver,
    /// The client's HE secret keys, one per parameter set.
    pub he_keys: ClientKeys,
    /// Where garbled-circuit layers keep their material between the phases: `None` in memory,
    /// else the preprocessing store (`veil client --preprocess-dir`).
    pub store: Option<std::sync::Arc<crate::store::Store>>,
}

impl std::fmt::Debug for ServerIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerIo(<redacted>)")
    }
}

impl std::fmt::Debug for ClientIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientIo(<redacted>)")
    }
}

/// One party's values by [`ValueId`]: its shares of shared values and, on the client, the
/// plaintext client-domain values (ring-encoded, or floats after post-processing).
pub struct Values {
    /// This party's additive share (ring elements) of each shared value, once known. Secret.
    pub share: Vec<Option<Vec<u64>>>,
    /// Client only: client-domain values in plaintext, ring-encoded (inputs, revealed outputs).
    pub plain: Vec<Option<Vec<u64>>>,
    /// Client only: client-domain values as floats, after a float post-processing step.
    pub floats: Vec<Option<Tensor>>,
}

impl std::fmt::Debug for Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Values {{ values: {}, <redacted> }}", self.share.len())
    }
}

impl Values {
    /// No value known yet, for graph `g`.
    pub fn new(g: &Graph) -> Values {
        let n = g.values.len();
        Values { share: vec![None; n], plain: vec![None; n], floats: vec![None; n] }
    }

    /// The party's share of `v` (set by an earlier step: the schedule is in order).
    pub fn share(&self, v: ValueId) -> &[u64] {
        self.share[v.index()].as_deref().expect("shared input")
    }

    /// Sets the party's share of `v`.
    pub fn set_share(&mut self, v: ValueId, s: Vec<u64>) {
        self.share[v.index()] = Some(s);
    }
}

/// One step of the plan for both parties. The offline methods keep what the online phase needs
/// in `self`; the online methods consume it. Steps without a phase's work keep the default.
pub trait Protocol: Send {
    /// Server, offline.
    fn server_offline<'a>(
        &'a mut self,
        _io: &'a mut ServerIo,
        _cx: Cx<'a>,
        _rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    /// Server, online: reads its input shares from `values`, writes its output share.
    fn server_online<'a>(
        &'a mut self,
        _io: &'a mut ServerIo,
        _cx: Cx<'a>,
        _values: &'a mut Values,
        _rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    /// Client, offline: its share of the step's output is known now (a fresh mask, `W·c − m`,
    /// or a local function of such), so it writes it to `values` here.
    fn client_offline<'a>(
        &'a mut self,
        _io: &'a mut ClientIo,
        _cx: Cx<'a>,
        _values: &'a mut Values,
        _rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    /// Client, online.
    fn client_online<'a>(&'a mut self, _io: &'a mut ClientIo, _cx: Cx<'a>, _values: &'a mut Values) -> StepFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

/// The offline state of a step between the phases: `None` before the offline phase and after
/// the online phase consumed it.
pub(crate) fn take<T>(state: &mut Option<T>) -> T {
    state.take().expect("the offline phase ran before the online phase")
}
