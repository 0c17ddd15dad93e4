//! The server's executor: holds the weights, garbles, never sees the input or the output. A
//! loop over the plan's steps, each run by its [`Protocol`] ([`crate::proto::register`]).

use rand::{CryptoRng, RngCore};
use veil_ir::Graph;
use veil_ir::plan::Hash;

use super::contexts;
use super::step::{Protocol, ServerIo, Values};
use super::{ExecError, Measures, Stats, enter, exchange_counts, measured, stats};
use crate::net::script_check::ScriptCheck;
use crate::net::session::PartySession;
use crate::proto::he_linear::{ServerAhead, ServerKeys};
use crate::proto::he_weights::EncodedWeights;
use crate::wire;
use veil_ir::schedule::lower;
use veil_ir::schedule::script::{Phase, Sent, label};

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

/// Serves one session of plan `g` (hash `hash`, weights attached), encoding every HE layer's
/// kernels for the session.
pub async fn run<R: RngCore + CryptoRng + Send>(
    session: &mut impl PartySession,
    g: &Graph,
    hash: &Hash,
    rng: &mut R,
) -> Result<Stats, ExecError> {
    run_with(session, g, hash, &EncodedWeights::default(), rng).await
}

/// [`run`], taking the kernels of the HE layers in `weights` (encoded once for the process,
/// [`EncodedWeights::encode`] on the same plan) instead of encoding them.
pub async fn run_with<R: RngCore + CryptoRng + Send>(
    session: &mut impl PartySession,
    g: &Graph,
    hash: &Hash,
    weights: &EncodedWeights,
    rng: &mut R,
) -> Result<Stats, ExecError> {
    let steps = lower(g)?;
    let mut ch = session.channel().await?;
    handshake(&mut ch, hash, session.hello_timeout()).await?;
    let mut ot_ch = session.channel().await?;
    let check = ScriptCheck::new(false);
    ch.check_script(check.clone());
    ot_ch.check_script(check.clone());
    let mut ot = session.ot_sender(ot_ch);
    ot.set_extension(g.ot_extension);
    let meter = session.meter().clone();
    let he_ahead = ServerAhead::with_weights(&steps, weights.clone());
    let mut io = ServerIo { ch, ot, he_keys: ServerKeys::default(), he_ahead, input_wait: session.input_wait() };
    let mut measures: Measures = vec![Default::default(); steps.len()];
    let mut protocols: Vec<Box<dyn Protocol>> = steps.iter().map(|step| crate::proto::register(g, step)).collect();

    let cxs = contexts(g, &steps);

    // Offline.
    let mut sent = Sent::start();
    for (i, (&cx, p)) in cxs.iter().zip(&mut protocols).enumerate() {
        enter(&meter, &check, g, cx.step, Phase::Offline, &mut sent)?;
        measured(&meter, &mut measures[i][0], p.server_offline(&mut io, cx, rng)).await?;
    }

    // Online.
    let mut values = Values::new(g);
    for (i, (&cx, p)) in cxs.iter().zip(&mut protocols).enumerate() {
        enter(&meter, &check, g, cx.step, Phase::Online, &mut sent)?;
        measured(&meter, &mut measures[i][1], p.server_online(&mut io, cx, &mut values, rng)).await?;
    }
    let mut ch = io.ch;
    check.end().map_err(crate::net::NetError::from)?;
    let peer = exchange_counts(&mut ch, &measures, false).await?;
    settle(&mut ch, label::TRAFFIC_COUNTS).await;
    Ok(stats(g, &steps, &measures, &peer, false))
}
