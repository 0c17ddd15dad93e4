//! The client's executor: holds the input, evaluates the garbled circuits, learns the output. A
//! loop over the plan's steps, each run by its [`Protocol`] ([`crate::proto::register`]).

use rand::{CryptoRng, RngCore};
use veil_ir::eval::{decode_value, encode_inputs};
use veil_ir::plan::Hash;
use veil_ir::{Graph, Tensor};

use super::contexts;
use super::step::{ClientIo, Protocol, Values};
use super::{ExecError, Measures, Progress, Quiet, enter, exchange_counts, measured, stats};
use crate::net::Meter;
use crate::net::script_check::ScriptCheck;
use crate::net::session::PartySession;
use crate::proto::he_linear::ClientKeys;
use crate::wire;
use veil_ir::schedule::script::{Phase, Sent, label};
use veil_ir::schedule::{Step, lower};

/// What the client learns.
#[derive(Debug)]
pub struct ClientResult {
    /// The plan's outputs in the order of `g.outputs`, decoded to floats (plaintext, client only).
    pub outputs: Vec<Tensor>,
    /// Per step and phase: the client's time and rounds, and the bytes each party counted as sent.
    pub stats: super::Stats,
}

/// Runs the plan `g` (hash `hash`) as the client on `inputs`: the offline phase, then the online.
pub async fn run<R: RngCore + CryptoRng + Send>(
    session: &mut impl PartySession,
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
    /// The channels and the OT, held to the end of the session (the OT sub-connection stays
    /// open like the server's).
    io: ClientIo,
    meter: Meter,
    steps: Vec<Step>,
    /// Debug builds: the script the channels check frames against.
    check: std::sync::Arc<ScriptCheck>,
    measures: Measures,
    values: Values,
    protocols: Vec<Box<dyn Protocol>>,
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

/// Runs the handshake and the offline phase of plan `g` (hash `hash`) as the client, keeping
/// the offline material in memory.
pub async fn offline<'g, R: RngCore + CryptoRng + Send>(
    session: &mut impl PartySession,
    g: &'g Graph,
    hash: &Hash,
    rng: &mut R,
    progress: &dyn Progress,
) -> Result<Preprocessed<'g>, ExecError> {
    offline_with_store(session, g, hash, rng, progress, None).await
}

/// [`offline`], with the garbled-circuit layers' tables and input labels written to `store`
/// (made for this plan's `hash`, fresh for this run) as they arrive; the online phase reads
/// them back chunk by chunk and the store's files are gone when the [`Preprocessed`] is (after
/// the online phase, or on any error). The rest (shares, masks, OT pads, HE keys, decoding
/// bits: a few ring elements per value) stays in memory.
pub async fn offline_with_store<'g, R: RngCore + CryptoRng + Send>(
    session: &mut impl PartySession,
    g: &'g Graph,
    hash: &Hash,
    rng: &mut R,
    progress: &dyn Progress,
    store: Option<crate::store::Store>,
) -> Result<Preprocessed<'g>, ExecError> {
    if let Some(s) = &store {
        s.check_plan(hash)?;
    }
    let steps = lower(g)?;
    let mut ch = session.channel().await?;
    ch.send(label::HANDSHAKE, &wire::hello(hash)).await?;
    let reply = ch.recv(label::HANDSHAKE, 4096).await?;
    wire::parse_hello_reply(&reply)
        .map_err(|reason| ExecError::Handshake(format!("the server refused the session: {reason}")))?;
    let mut ot_ch = session.channel().await?;
    let check = ScriptCheck::new(true);
    ch.check_script(check.clone());
    ot_ch.check_script(check.clone());
    let mut ot = session.ot_receiver(ot_ch);
    ot.set_extension(g.ot_extension);
    let meter = session.meter().clone();
    let mut io = ClientIo { ch, ot, he_keys: ClientKeys::default(), store: store.map(std::sync::Arc::new) };
    let mut measures: Measures = vec![Default::default(); steps.len()];
    let mut values = Values::new(g);
    let mut protocols: Vec<Box<dyn Protocol>> = steps.iter().map(|step| crate::proto::register(g, step)).collect();
    let mut sent = Sent::start();
    for (i, (&cx, p)) in contexts(g, &steps).iter().zip(&mut protocols).enumerate() {
        enter(&meter, &check, g, cx.step, Phase::Offline, &mut sent)?;
        progress.step("offline", i, steps.len(), &cx.node.name, cx.step.protocol());
        measured(&meter, &mut measures[i][0], p.client_offline(&mut io, cx, &mut values, rng)).await?;
    }
    progress.done("offline");
    Ok(Preprocessed { g, io, meter, steps, check, measures, values, protocols })
}

impl Preprocessed<'_> {
    /// Runs the online phase on `inputs` and learns the outputs.
    pub async fn online(self, inputs: &[Tensor], progress: &dyn Progress) -> Result<ClientResult, ExecError> {
        let Preprocessed { g, mut io, meter, steps, check, mut measures, mut values, mut protocols } = self;
        let encoded = encode_inputs(g, inputs)?;
        for (&v, (_, data)) in g.inputs.iter().zip(encoded) {
            values.plain[v.index()] = Some(data);
        }
        for (i, (&cx, p)) in contexts(g, &steps).iter().zip(&mut protocols).enumerate() {
            enter(&meter, &check, g, cx.step, Phase::Online, &mut Sent::all())?;
            progress.step("online", i, steps.len(), &cx.node.name, cx.step.protocol());
            measured(&meter, &mut measures[i][1], p.client_online(&mut io, cx, &mut values)).await?;
        }
        progress.done("online");
        check.end().map_err(crate::net::NetError::from)?;
        let peer = exchange_counts(&mut io.ch, &measures, true).await?;
        let outputs = g
            .outputs
            .iter()
            .map(|&v| match (&values.floats[v.index()], &values.plain[v.index()]) {
                (Some(t), _) => t.clone(),
                (None, Some(d)) => decode_value(g, v, &g.values[v].ty.shape, d),
                (None, None) => unreachable!("outputs are client values"),
            })
            .collect();
        Ok(ClientResult { outputs, stats: stats(g, &steps, &measures, &peer, true) })
    }
}
