//! Oblivious transfer, via `cryprot-ot` (semi-honest IKNP OT extension over base OTs); we do not
//! implement OT ourselves.
//!
//! - [`OtSender::correlated`] / [`OtReceiver::correlated`]: correlated OT with one global
//!   correlation Δ. The sender gets `m0`, the receiver `m0 ⊕ b·Δ`. With Δ the garbler's free-XOR
//!   offset, `m0` *is* the zero-label of a client input wire and the client obtains the label of
//!   its bit `b`: no separate chosen-message step.
//! - [`OtSender::random`] / [`OtReceiver::random`]: random OT, the base of chosen-message OT
//!   (mask the messages with the random pads) and of the arithmetic correlations.
//! - [`OtSender::rand_choice`] / [`OtReceiver::rand_choice`], and the same with the roles
//!   swapped (`rand_choice_reversed`): random-choice random OT from silent OT ([`silent`]), the
//!   correlations of the OT-based non-linear protocols.
//!
//! `cryprot-ot` needs batches that are multiples of 128; we pad and drop the excess. Before each
//! batch the receiver sends a one-byte go-ahead on the pair's channel, so a batch never starts
//! before the peer has finished the previous one (docs/protocols.md, "OT": otherwise it can stall),
//! and after it a one-byte done, so the sender never moves on to send bulk data on another stream
//! while the receiver still waits for OT bytes: QUIC's connection-wide flow-control window would
//! fill with data the receiver is not reading yet, and both would wait forever.
//! Every batch runs under the session's receive timeout plus a little per OT ([`batch_timeout`])
//! and is metered ([`crate::net::meter`]).
//!
//! The chosen-input batches ([`OtSender::correlated`], [`OtSender::random`]) run by IKNP or, if
//! the plan says so ([`OtExtension::Silent`], `veilc --ot-extension`), by silent OT with random
//! choices, derandomised: the receiver sends `d = b ⊕ c` (its bit XOR the random choice, one
//! bit per OT, uniform to the sender) as the batch's done frame, and the sender swaps the pads
//! (random OT) or adds `d·Δ` to its `m0` (correlated OT) where `d = 1` ([`silent`]).
//!
//! The protocols call OT through the traits [`OtSend`] and [`OtReceive`] (the OT backend):
//! [`OtSender`] / [`OtReceiver`] above are the real implementation, and the one the executors
//! use. `ideal` (feature `insecure-ideal-ot`, and this crate's unit tests) is a trusted-dealer
//! stand-in without cryptography or traffic, for protocol tests over [`crate::net::memory`].
//! `cryprot-ot` itself runs only over a QUIC `cryprot_net::Connection`, so real OT needs QUIC.

#[cfg(any(test, feature = "insecure-ideal-ot"))]
pub mod ideal;
pub mod silent;

pub use silent::RandChoice;

use std::time::Duration;

use cryprot_core::Block as CBlock;
use cryprot_net::Connection;
use cryprot_ot::extension::{SemiHonestOtExtensionReceiver, SemiHonestOtExtensionSender};
use cryprot_ot::{CotReceiver, CotSender, RotReceiver, RotSender};
use subtle::Choice;
use veil_ir::OtExtension;

use crate::garble::Block;
use crate::net::meter::metered;
use crate::net::{Channel, NetError};

const BATCH: usize = 128;

/// The OT sender's side, as the protocols use it (the garbler / server).
///
/// Contract: the n-th call pairs with the n-th call of the peer's [`OtReceive`], same kind
/// (correlated or random), `count` equal to the receiver's number of choice bits.
pub trait OtSend: Send {
    /// `count` correlated OTs with correlation `delta`: returns the `m0`s (the receiver gets
    /// `m0 ⊕ b·Δ`).
    fn correlated(
        &mut self,
        step: &str,
        delta: Block,
        count: usize,
    ) -> impl Future<Output = Result<Vec<Block>, NetError>> + Send;

    /// `count` random OTs: returns both pads of each (the receiver gets the pad of its choice).
    fn random(&mut self, step: &str, count: usize) -> impl Future<Output = Result<Vec<[Block; 2]>, NetError>> + Send;

    /// `count` random-choice OTs (silent OT): returns both pads of each; the receiver gets a
    /// random choice bit and its pad.
    fn rand_choice(
        &mut self,
        step: &str,
        count: usize,
    ) -> impl Future<Output = Result<Vec<[Block; 2]>, NetError>> + Send;

    /// `count` random-choice OTs with the roles swapped: the peer sends, this party gets a
    /// random choice bit and its pad per OT.
    fn rand_choice_reversed(
        &mut self,
        step: &str,
        count: usize,
    ) -> impl Future<Output = Result<RandChoice, NetError>> + Send;

    /// Hands back the results of [`OtSend::rand_choice`] and [`OtSend::rand_choice_reversed`]
    /// once they are hashed down, so the next batches write into memory already mapped rather
    /// than into fresh pages the kernel zeroes (by default they are dropped).
    fn recycle(&mut self, _pads: Vec<[Block; 2]>, _reversed: RandChoice) {}
}

/// The OT receiver's side, as the protocols use it (the evaluator / client); pairs with
/// [`OtSend`].
pub trait OtReceive: Send {
    /// Correlated OTs: returns `m0 ⊕ b·Δ` per choice bit.
    fn correlated(&mut self, step: &str, bits: &[bool]) -> impl Future<Output = Result<Vec<Block>, NetError>> + Send;

    /// Random OTs: returns the pad of each choice.
    fn random(&mut self, step: &str, bits: &[bool]) -> impl Future<Output = Result<Vec<Block>, NetError>> + Send;

    /// `count` random-choice OTs (silent OT): a random choice bit and its pad per OT.
    fn rand_choice(&mut self, step: &str, count: usize) -> impl Future<Output = Result<RandChoice, NetError>> + Send;

    /// `count` random-choice OTs with the roles swapped: this party sends, gets both pads.
    fn rand_choice_reversed(
        &mut self,
        step: &str,
        count: usize,
    ) -> impl Future<Output = Result<Vec<[Block; 2]>, NetError>> + Send;

    /// See [`OtSend::recycle`]: the results of [`OtReceive::rand_choice`] and
    /// [`OtReceive::rand_choice_reversed`].
    fn recycle(&mut self, _ots: RandChoice, _reversed: Vec<[Block; 2]>) {}
}

fn to_c(b: Block) -> CBlock {
    CBlock::from(b.0)
}

fn from_c(b: CBlock) -> Block {
    Block(u128::from(b))
}

fn padded(n: usize) -> usize {
    n.div_ceil(BATCH).max(1) * BATCH
}

async fn timed<T, E: std::fmt::Display>(
    step: &str,
    timeout: Duration,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, NetError> {
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Err(NetError::Timeout { step: step.into(), secs: timeout.as_secs() }),
        Ok(Err(e)) => Err(NetError::Ot { step: step.into(), reason: e.to_string() }),
        Ok(Ok(v)) => Ok(v),
    }
}

/// The OT sender of a session (the garbler / server side of our protocols).
pub struct OtSender {
    ot: SemiHonestOtExtensionSender,
    silent: silent::Silent,
    sync: Channel,
    extension: OtExtension,
}

impl OtSender {
    /// An OT extension instance on sub-connection `conn`, synchronised over `sync`.
    pub fn new(mut conn: Connection, sync: Channel) -> Self {
        let silent = silent::Silent::new(&mut conn, true);
        OtSender { ot: SemiHonestOtExtensionSender::new(conn), silent, sync, extension: OtExtension::Iknp }
    }

    /// Runs the chosen-input batches ([`OtSender::correlated`], [`OtSender::random`]) by
    /// `extension` from now on (the plan's; both parties must agree).
    pub fn set_extension(&mut self, extension: OtExtension) {
        self.extension = extension;
    }

    async fn go_ahead(&mut self, step: &str) -> Result<(), NetError> {
        self.sync.recv_exact(step, 1).await?;
        Ok(())
    }

    /// `count` correlated OTs with correlation `delta`: returns the `m0`s.
    pub async fn correlated(&mut self, step: &str, delta: Block, count: usize) -> Result<Vec<Block>, NetError> {
        if self.extension == OtExtension::Silent {
            return self.correlated_silent(step, delta, count).await;
        }
        self.go_ahead(step).await?;
        let timeout = batch_timeout(&self.sync, count);
        let meter = self.sync.meter().clone();
        let d = to_c(delta);
        let out =
            timed(&meter.locate(step), timeout, metered(&meter, self.ot.correlated_send(padded(count), |_| d))).await?;
        self.sync.recv_exact(step, 1).await?;
        Ok(out.into_iter().take(count).map(from_c).collect())
    }

    /// `count` random OTs: returns both pads of each.
    pub async fn random(&mut self, step: &str, count: usize) -> Result<Vec<[Block; 2]>, NetError> {
        if self.extension == OtExtension::Silent {
            return self.random_silent(step, count).await;
        }
        self.go_ahead(step).await?;
        let timeout = batch_timeout(&self.sync, count);
        let meter = self.sync.meter().clone();
        let out = timed(&meter.locate(step), timeout, metered(&meter, self.ot.send(padded(count)))).await?;
        self.sync.recv_exact(step, 1).await?;
        Ok(out.into_iter().take(count).map(|[a, b]| [from_c(a), from_c(b)]).collect())
    }
}

impl OtSend for OtSender {
    fn correlated(
        &mut self,
        step: &str,
        delta: Block,
        count: usize,
    ) -> impl Future<Output = Result<Vec<Block>, NetError>> + Send {
        OtSender::correlated(self, step, delta, count)
    }

    fn random(&mut self, step: &str, count: usize) -> impl Future<Output = Result<Vec<[Block; 2]>, NetError>> + Send {
        OtSender::random(self, step, count)
    }

    fn rand_choice(
        &mut self,
        step: &str,
        count: usize,
    ) -> impl Future<Output = Result<Vec<[Block; 2]>, NetError>> + Send {
        OtSender::rand_choice(self, step, count)
    }

    fn rand_choice_reversed(
        &mut self,
        step: &str,
        count: usize,
    ) -> impl Future<Output = Result<RandChoice, NetError>> + Send {
        OtSender::rand_choice_reversed(self, step, count)
    }

    fn recycle(&mut self, pads: Vec<[Block; 2]>, reversed: RandChoice) {
        self.silent.recycle(pads, reversed);
    }
}

/// Timeout of one batch of the ideal OT (tests).
pub const DEFAULT_OT_TIMEOUT: Duration = crate::net::DEFAULT_TIMEOUT;

/// Time a batch may take per OT beyond the session's receive timeout: a batch is one exchange
/// whose computing grows with its size. 2 µs, a sixth of silent OT's rate on this machine.
pub const OT_BATCH_TIME_PER_OT: Duration = Duration::from_nanos(2000);

/// The timeout of a batch of `count` OTs synchronised over `sync`: the session's receive
/// timeout (`--timeout`), plus [`OT_BATCH_TIME_PER_OT`] per OT. A peer that stalls inside a
/// batch holds this party about as long as one that stalls between messages.
fn batch_timeout(sync: &Channel, count: usize) -> Duration {
    sync.timeout().saturating_add(OT_BATCH_TIME_PER_OT.saturating_mul(u32::try_from(count).unwrap_or(u32::MAX)))
}

/// The OT receiver of a session (the evaluator / client side).
pub struct OtReceiver {
    ot: SemiHonestOtExtensionReceiver,
    silent: silent::Silent,
    sync: Channel,
    extension: OtExtension,
}

impl OtReceiver {
    /// An OT extension receiver on sub-connection `conn`, synchronised over `sync`.
    pub fn new(mut conn: Connection, sync: Channel) -> Self {
        let silent = silent::Silent::new(&mut conn, false);
        OtReceiver { ot: SemiHonestOtExtensionReceiver::new(conn), silent, sync, extension: OtExtension::Iknp }
    }

    /// See [`OtSender::set_extension`].
    pub fn set_extension(&mut self, extension: OtExtension) {
        self.extension = extension;
    }

    fn choices(bits: &[bool]) -> Vec<Choice> {
        let mut c: Vec<Choice> = bits.iter().map(|&b| Choice::from(b as u8)).collect();
        c.resize(padded(bits.len()), Choice::from(0));
        c
    }

    /// Correlated OTs: returns `m0 ⊕ b·Δ` per choice bit.
    pub async fn correlated(&mut self, step: &str, bits: &[bool]) -> Result<Vec<Block>, NetError> {
        if self.extension == OtExtension::Silent {
            return self.correlated_silent(step, bits).await;
        }
        self.sync.send(step, &[1]).await?;
        let meter = self.sync.meter().clone();
        let choices = Self::choices(bits);
        let timeout = batch_timeout(&self.sync, bits.len());
        let out = timed(&meter.locate(step), timeout, metered(&meter, self.ot.correlated_receive(&choices))).await?;
        self.sync.send(step, &[1]).await?;
        Ok(out.into_iter().take(bits.len()).map(from_c).collect())
    }

    /// Random OTs: returns the pad of each choice.
    pub async fn random(&mut self, step: &str, bits: &[bool]) -> Result<Vec<Block>, NetError> {
        if self.extension == OtExtension::Silent {
            return self.random_silent(step, bits).await;
        }
        self.sync.send(step, &[1]).await?;
        let meter = self.sync.meter().clone();
        let choices = Self::choices(bits);
        let timeout = batch_timeout(&self.sync, bits.len());
        let out = timed(&meter.locate(step), timeout, metered(&meter, self.ot.receive(&choices))).await?;
        self.sync.send(step, &[1]).await?;
        Ok(out.into_iter().take(bits.len()).map(from_c).collect())
    }
}

impl OtReceive for OtReceiver {
    fn correlated(&mut self, step: &str, bits: &[bool]) -> impl Future<Output = Result<Vec<Block>, NetError>> + Send {
        OtReceiver::correlated(self, step, bits)
    }

    fn random(&mut self, step: &str, bits: &[bool]) -> impl Future<Output = Result<Vec<Block>, NetError>> + Send {
        OtReceiver::random(self, step, bits)
    }

    fn rand_choice(&mut self, step: &str, count: usize) -> impl Future<Output = Result<RandChoice, NetError>> + Send {
        OtReceiver::rand_choice(self, step, count)
    }

    fn rand_choice_reversed(
        &mut self,
        step: &str,
        count: usize,
    ) -> impl Future<Output = Result<Vec<[Block; 2]>, NetError>> + Send {
        OtReceiver::rand_choice_reversed(self, step, count)
    }

    fn recycle(&mut self, ots: RandChoice, reversed: Vec<[Block; 2]>) {
        self.silent.recycle(reversed, ots);
    }
}

/// The OT sender a session's executor holds: the real OT, or (tests only, feature
/// `insecure-ideal-ot`) the ideal one framed like the real one (`ideal::Framed`).
pub enum SessionOtSender {
    /// Semi-honest OT extension over the session's QUIC sub-connections.
    Real(Box<OtSender>),
    /// INSECURE, tests only: the in-process trusted dealer, framed like the real OT.
    #[cfg(any(test, feature = "insecure-ideal-ot"))]
    Ideal(Box<ideal::Framed<ideal::IdealOtSender>>),
}

/// The OT receiver a session's executor holds (see [`SessionOtSender`]).
pub enum SessionOtReceiver {
    /// Semi-honest OT extension over the session's QUIC sub-connections.
    Real(Box<OtReceiver>),
    /// INSECURE, tests only: the in-process trusted dealer, framed like the real OT.
    #[cfg(any(test, feature = "insecure-ideal-ot"))]
    Ideal(ideal::Framed<ideal::IdealOtReceiver>),
}

impl SessionOtSender {
    /// See [`OtSender::set_extension`].
    pub fn set_extension(&mut self, extension: OtExtension) {
        match self {
            SessionOtSender::Real(o) => o.set_extension(extension),
            #[cfg(any(test, feature = "insecure-ideal-ot"))]
            SessionOtSender::Ideal(o) => o.set_extension(extension),
        }
    }
}

impl SessionOtReceiver {
    /// See [`OtSender::set_extension`].
    pub fn set_extension(&mut self, extension: OtExtension) {
        match self {
            SessionOtReceiver::Real(o) => o.set_extension(extension),
            #[cfg(any(test, feature = "insecure-ideal-ot"))]
            SessionOtReceiver::Ideal(o) => o.set_extension(extension),
        }
    }
}

impl OtSend for SessionOtSender {
    async fn correlated(&mut self, step: &str, delta: Block, count: usize) -> Result<Vec<Block>, NetError> {
        match self {
            SessionOtSender::Real(o) => o.correlated(step, delta, count).await,
            #[cfg(any(test, feature = "insecure-ideal-ot"))]
            SessionOtSender::Ideal(o) => OtSend::correlated(o.as_mut(), step, delta, count).await,
        }
    }

    async fn random(&mut self, step: &str, count: usize) -> Result<Vec<[Block; 2]>, NetError> {
        match self {
            SessionOtSender::Real(o) => o.random(step, count).await,
            #[cfg(any(test, feature = "insecure-ideal-ot"))]
            SessionOtSender::Ideal(o) => OtSend::random(o.as_mut(), step, count).await,
        }
    }

    async fn rand_choice(&mut self, step: &str, count: usize) -> Result<Vec<[Block; 2]>, NetError> {
        match self {
            SessionOtSender::Real(o) => o.rand_choice(step, count).await,
            #[cfg(any(test, feature = "insecure-ideal-ot"))]
            SessionOtSender::Ideal(o) => OtSend::rand_choice(o.as_mut(), step, count).await,
        }
    }

    async fn rand_choice_reversed(&mut self, step: &str, count: usize) -> Result<RandChoice, NetError> {
        match self {
            SessionOtSender::Real(o) => o.rand_choice_reversed(step, count).await,
            #[cfg(any(test, feature = "insecure-ideal-ot"))]
            SessionOtSender::Ideal(o) => OtSend::rand_choice_reversed(o.as_mut(), step, count).await,
        }
    }

    fn recycle(&mut self, pads: Vec<[Block; 2]>, reversed: RandChoice) {
        match self {
            SessionOtSender::Real(o) => OtSend::recycle(o.as_mut(), pads, reversed),
            #[cfg(any(test, feature = "insecure-ideal-ot"))]
            SessionOtSender::Ideal(_) => {}
        }
    }
}

impl OtReceive for SessionOtReceiver {
    async fn correlated(&mut self, step: &str, bits: &[bool]) -> Result<Vec<Block>, NetError> {
        match self {
            SessionOtReceiver::Real(o) => o.correlated(step, bits).await,
            #[cfg(any(test, feature = "insecure-ideal-ot"))]
            SessionOtReceiver::Ideal(o) => OtReceive::correlated(o, step, bits).await,
        }
    }

    async fn random(&mut self, step: &str, bits: &[bool]) -> Result<Vec<Block>, NetError> {
        match self {
            SessionOtReceiver::Real(o) => o.random(step, bits).await,
            #[cfg(any(test, feature = "insecure-ideal-ot"))]
            SessionOtReceiver::Ideal(o) => OtReceive::random(o, step, bits).await,
        }
    }

    async fn rand_choice(&mut self, step: &str, count: usize) -> Result<RandChoice, NetError> {
        match self {
            SessionOtReceiver::Real(o) => o.rand_choice(step, count).await,
            #[cfg(any(test, feature = "insecure-ideal-ot"))]
            SessionOtReceiver::Ideal(o) => OtReceive::rand_choice(o, step, count).await,
        }
    }

    async fn rand_choice_reversed(&mut self, step: &str, count: usize) -> Result<Vec<[Block; 2]>, NetError> {
        match self {
            SessionOtReceiver::Real(o) => o.rand_choice_reversed(step, count).await,
            #[cfg(any(test, feature = "insecure-ideal-ot"))]
            SessionOtReceiver::Ideal(o) => OtReceive::rand_choice_reversed(o, step, count).await,
        }
    }

    fn recycle(&mut self, ots: RandChoice, reversed: Vec<[Block; 2]>) {
        match self {
            SessionOtReceiver::Real(o) => OtReceive::recycle(o.as_mut(), ots, reversed),
            #[cfg(any(test, feature = "insecure-ideal-ot"))]
            SessionOtReceiver::Ideal(_) => {}
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::net::quic::{Identity, Listener, Session, connect};
    use rand::{Rng, SeedableRng};

    /// A connected (client, server) session pair over QUIC on loopback.
    pub async fn session_pair() -> (Session, Session) {
        let id = Identity::generate().unwrap();
        let t = Duration::from_secs(20);
        let mut l = Listener::bind("127.0.0.1:0".parse().unwrap(), &id, t).unwrap();
        let addr = l.local_addr().unwrap();
        let (c, s) = tokio::join!(connect(addr, &id.cert_pem, t), async { l.accept().await.unwrap() });
        (c.unwrap(), s.unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn correlated_and_random_ots_have_their_correlations() {
        let (mut c, mut s) = session_pair().await;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let delta = Block(rng.random::<u128>() | 1);
        let bits: Vec<bool> = (0..1000).map(|_| rng.random()).collect();
        let (cc, sc) = (c.channel().await.unwrap(), s.channel().await.unwrap());
        let (mut recv, mut send) = (OtReceiver::new(c.ot_connection(), cc), OtSender::new(s.ot_connection(), sc));
        let b2 = bits.clone();
        let client = tokio::spawn(async move {
            let cot = recv.correlated("test cot", &b2).await.unwrap();
            let rot = recv.random("test rot", &b2).await.unwrap();
            (cot, rot)
        });
        let m0 = send.correlated("test cot", delta, bits.len()).await.unwrap();
        let pads = send.random("test rot", bits.len()).await.unwrap();
        let (cot, rot) = client.await.unwrap();
        for i in 0..bits.len() {
            assert_eq!(cot[i], if bits[i] { m0[i] ^ delta } else { m0[i] }, "COT {i}");
            assert_eq!(rot[i], pads[i][bits[i] as usize], "ROT {i}");
            assert_ne!(pads[i][0], pads[i][1]);
        }
        // The OT library's traffic reached the session meters: at least 16 B per OT each way
        // (IKNP's matrix from the receiver, the correlation from the sender).
        let (ts, tc) = (s.meter().snapshot(), c.meter().snapshot());
        assert!(tc.bytes_sent >= 2 * 1024 * 16, "{tc:?}");
        assert!(ts.bytes_sent >= 1024 * 16, "{ts:?}");
        // A receiver may not read the stream-id header of a stream it never polls, so the
        // sender's count is the authority for a direction (the stats report it); the receiver's
        // count differs by at most a few such headers.
        for (sent, received) in [(ts.bytes_sent, tc.bytes_received), (tc.bytes_sent, ts.bytes_received)] {
            assert!(received <= sent && sent - received <= 64, "sent {sent}, received {received}");
        }
    }

    /// Chosen-input OTs by silent OT (`OtExtension::Silent`) over QUIC: the correlations hold
    /// for the receiver's bits as with IKNP, and what the sender sees of the bits (the done
    /// frames, `d = b ⊕ c`) is uniform whatever they are: with all-zero and all-one bits
    /// alike, about half the `d` are 1 (a leak of `b` would make them all equal). A
    /// distinguisher that counts ones tells the two bit strings apart only on a control that
    /// sends `b` itself.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn silent_chosen_input_ots_have_their_correlations_and_hide_the_bits() {
        let (mut c, mut s) = session_pair().await;
        let (mut cc, sc) = (c.channel().await.unwrap(), s.channel().await.unwrap());
        let transcript = std::sync::Arc::new(crate::net::fault::Transcript::default());
        cc = crate::net::fault::layer(cc, None, Some(transcript.clone()));
        let (mut recv, mut send) = (OtReceiver::new(c.ot_connection(), cc), OtSender::new(s.ot_connection(), sc));
        recv.set_extension(OtExtension::Silent);
        send.set_extension(OtExtension::Silent);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let delta = Block(rng.random::<u128>() | 1);
        let mixed: Vec<bool> = (0..3000).map(|_| rng.random()).collect();
        let batches = [mixed.clone(), vec![false; 4000], vec![true; 4000]];
        let b2 = batches.clone();
        let client = tokio::spawn(async move {
            let cot = recv.correlated("cot", &b2[0]).await.unwrap();
            let zeros = recv.random("rot0", &b2[1]).await.unwrap();
            let ones = recv.random("rot1", &b2[2]).await.unwrap();
            (cot, zeros, ones)
        });
        let m0 = send.correlated("cot", delta, mixed.len()).await.unwrap();
        let p0 = send.random("rot0", 4000).await.unwrap();
        let p1 = send.random("rot1", 4000).await.unwrap();
        let (cot, r0, r1) = client.await.unwrap();
        for i in 0..mixed.len() {
            assert_eq!(cot[i], if mixed[i] { m0[i] ^ delta } else { m0[i] }, "COT {i}");
        }
        for (pads, got, bits) in [(&p0, &r0, &batches[1]), (&p1, &r1, &batches[2])] {
            for i in 0..bits.len() {
                assert_eq!(got[i], pads[i][bits[i] as usize], "ROT {i}");
                assert_ne!(pads[i][0], pads[i][1]);
            }
        }
        // The sender's view of each batch: its done frame (the last frame the client sent in it).
        let frames: Vec<_> = transcript.frames().into_iter().filter(|f| f.sent).collect();
        let done = |step: &str| frames.iter().rev().find(|f| f.step == step).unwrap().payload.clone();
        let ones = |packed: &[u8], n: usize| crate::wire::unpack_bits(packed, n).iter().filter(|&&b| b).count();
        for step in ["rot0", "rot1"] {
            let d = done(step);
            assert_eq!(d.len(), 500, "{step}: a bit per OT");
            let k = ones(&d, 4000);
            assert!((1800..2200).contains(&k), "{step}: {k} of 4000 derandomising bits are 1");
        }
        // Control: the same count on the bits themselves tells all-zero from all-one at once.
        let leak = |bits: &[bool]| crate::wire::pack_bits(bits);
        assert!(ones(&leak(&batches[1]), 4000) < 1800 && ones(&leak(&batches[2]), 4000) > 2200);
    }

    /// A peer that stalls inside an OT batch (its go-ahead sent, then silence on the library's
    /// streams) holds this party about the session's receive timeout, not a fixed two minutes:
    /// with a 1 s timeout the server's silent batch ends in under 5 s with a timeout naming
    /// the step, and its silent receive (the reversed direction) too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peer_stalling_inside_a_batch_holds_the_other_about_the_session_timeout() {
        let id = Identity::generate().unwrap();
        let t = Duration::from_secs(1);
        let mut l = Listener::bind("127.0.0.1:0".parse().unwrap(), &id, t).unwrap();
        let addr = l.local_addr().unwrap();
        let (c, s) = tokio::join!(connect(addr, &id.cert_pem, t), async { l.accept().await.unwrap() });
        let (mut c, mut s) = (c.unwrap(), s.unwrap());
        let (cc, sc) = (c.channel().await.unwrap(), s.channel().await.unwrap());
        let (mut recv, mut send) = (OtReceiver::new(c.ot_connection(), cc), OtSender::new(s.ot_connection(), sc));
        for step in ["stalled batch", "stalled reversed batch"] {
            // The stalling client: a go-ahead, then nothing.
            recv.sync.send(step, &[1]).await.unwrap();
            let start = std::time::Instant::now();
            let err = if step == "stalled batch" {
                send.rand_choice(step, 5000).await.map(|_| ()).unwrap_err()
            } else {
                send.rand_choice_reversed(step, 5000).await.map(|_| ()).unwrap_err()
            };
            let held = start.elapsed();
            assert!(matches!(err, NetError::Timeout { .. }), "{step}: {err}");
            assert!(err.to_string().contains(step), "{err}");
            assert!(held >= t && held < Duration::from_secs(5), "{step}: held {held:?}");
        }
        drop(c);
    }

    /// Silent random-choice OTs in both directions over QUIC: the receiving half's pad is the
    /// sender's pad of its choice, choices are balanced, and a small batch (padded inside) and an
    /// IKNP batch after it still work on the same session.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn silent_random_choice_ots_have_their_correlations_both_ways() {
        let (mut c, mut s) = session_pair().await;
        let (cc, sc) = (c.channel().await.unwrap(), s.channel().await.unwrap());
        let (mut recv, mut send) = (OtReceiver::new(c.ot_connection(), cc), OtSender::new(s.ot_connection(), sc));
        let client = tokio::spawn(async move {
            let a = recv.rand_choice("rc", 5000).await.unwrap();
            let b = recv.rand_choice_reversed("rcr", 3).await.unwrap();
            let rot = recv.random("rot", &[true, false]).await.unwrap();
            (a, b, rot)
        });
        let a = send.rand_choice("rc", 5000).await.unwrap();
        let b = send.rand_choice_reversed("rcr", 3).await.unwrap();
        let pads = send.random("rot", 2).await.unwrap();
        let (ra, rb, rot) = client.await.unwrap();
        for (pads, rc) in [(&a, &ra), (&rb, &b)] {
            assert_eq!(pads.len(), rc.len());
            for i in 0..pads.len() {
                assert_eq!(rc.pads[i], pads[i][rc.choices[i] as usize], "OT {i}");
                assert_ne!(pads[i][0], pads[i][1]);
            }
        }
        let ones = ra.choices.iter().filter(|&&c| c).count();
        assert!((2300..2700).contains(&ones), "{ones} of 5000 choices are 1");
        assert_eq!((rot[0], rot[1]), (pads[0][1], pads[1][0]));
    }

    /// A silent batch larger than one run of the library (`SILENT_RUN` OTs) runs as several
    /// (`silent_runs`), in both directions: every OT's correlation holds across the runs' seams,
    /// and the bytes each party sends are the script's (`silent_bytes`), counted by the sender as
    /// the stats count them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_silent_batch_beyond_one_run_runs_as_several_as_scripted() {
        use veil_ir::schedule::script::{SILENT_RUN, silent_bytes, silent_runs};
        let n = SILENT_RUN as usize + 3001;
        assert_eq!(silent_runs(n as u64).count(), 2);
        let (mut c, mut s) = session_pair().await;
        let (cc, sc) = (c.channel().await.unwrap(), s.channel().await.unwrap());
        let (mut recv, mut send) = (OtReceiver::new(c.ot_connection(), cc), OtSender::new(s.ot_connection(), sc));
        let client_meter = c.meter().clone();
        let client = tokio::spawn(async move {
            let t0 = client_meter.snapshot();
            let a = recv.rand_choice("rc", n).await.unwrap();
            let t1 = client_meter.snapshot();
            let b = recv.rand_choice_reversed("rcr", n).await.unwrap();
            let t2 = client_meter.snapshot();
            (a, b, [(t1 - t0).bytes_sent, (t2 - t1).bytes_sent])
        });
        let meter = s.meter().clone();
        let t0 = meter.snapshot();
        let a = send.rand_choice("rc", n).await.unwrap();
        let t1 = meter.snapshot();
        let b = send.rand_choice_reversed("rcr", n).await.unwrap();
        let t2 = meter.snapshot();
        let (ra, rb, client_sent) = client.await.unwrap();
        for (pads, rc) in [(&a, &ra), (&rb, &b)] {
            assert_eq!((pads.len(), rc.len()), (n, n));
            for i in 0..n {
                assert_eq!(rc.pads[i], pads[i][rc.choices[i] as usize], "OT {i}");
            }
        }
        // Each direction's first batch carries its instance's base OTs; the client also sends
        // each batch's go-ahead and done frames (a 4-byte length and 1 byte each).
        let (to_sender, from_sender) = silent_bytes(n as u64, true);
        let frames = 2 * 5;
        assert_eq!([(t1 - t0).bytes_sent, client_sent[0]], [from_sender, to_sender + frames], "server sending");
        assert_eq!([(t2 - t1).bytes_sent, client_sent[1]], [to_sender, from_sender + frames], "client sending");
    }
}
