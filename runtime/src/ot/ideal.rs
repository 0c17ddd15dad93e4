//! **Insecure** ideal OT, for tests only: a trusted dealer in one process hands both parties
//! correct correlated- and random-OT outputs, with no cryptography and no traffic.
//!
//! It is compiled only with the cargo feature `insecure-ideal-ot` (off by default, never in the
//! `veil` binary's features; a release `veil` with it does not compile, see `src/main.rs`) and
//! into this crate's own unit tests. Making a pair prints a warning once per process, as fault
//! injection does. The dealer runs in the sender's half, which sees the receiver's choice bits:
//! nothing here may carry a real session.
//!
//! It implements the protocols' OT traits ([`OtSend`], [`OtReceive`]) with the same contract as
//! the real OT: the n-th call on one side pairs with the n-th on the other. A call whose kind or
//! size does not match its partner's is an error on both sides, not a wrong answer. Since no
//! bytes move, a session metered with the ideal OT counts only its framed messages (the real OT
//! adds its own streams and one-byte go-ahead and done frames per batch).

use std::sync::Once;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tokio::sync::{mpsc, oneshot};

use super::{DEFAULT_OT_TIMEOUT, OtReceive, OtSend, RandChoice};
use crate::garble::Block;
use crate::net::{Channel, NetError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Correlated,
    Random,
    /// Random-choice OT, the OT sender sending.
    RandChoice,
    /// Random-choice OT, the OT receiver sending.
    RandChoiceReversed,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Correlated => "correlated",
            Kind::Random => "random",
            Kind::RandChoice => "random-choice",
            Kind::RandChoiceReversed => "reversed random-choice",
        })
    }
}

/// One batch the receiver asks for: its choice bits (for the random-choice kinds, `count`
/// unused bits), and where its outputs go.
struct Request {
    kind: Kind,
    bits: Vec<bool>,
    reply: oneshot::Sender<Reply>,
}

/// The receiver's outputs of one batch, by kind.
enum Reply {
    /// Correlated and random OT: the pad of each choice.
    Chosen(Vec<Block>),
    /// Random-choice OT: the choices and their pads.
    RandChoice(RandChoice),
    /// Reversed random-choice OT: both pads of each.
    Pads(Vec<[Block; 2]>),
}

/// The sender's half (and the dealer).
pub struct IdealOtSender {
    requests: mpsc::UnboundedReceiver<Request>,
    rng: ChaCha20Rng,
    timeout: Duration,
}

/// The receiver's half.
pub struct IdealOtReceiver {
    requests: mpsc::UnboundedSender<Request>,
    timeout: Duration,
}

impl std::fmt::Debug for IdealOtSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdealOtSender(<insecure, test-only>)")
    }
}

impl std::fmt::Debug for IdealOtReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdealOtReceiver(<insecure, test-only>)")
    }
}

// Intended: an insecure OT in use must show on stderr whoever the caller is (not a log level).
#[allow(clippy::print_stderr)]
fn warn_once() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        eprintln!(
            "warning: oblivious transfer is the insecure ideal functionality (feature `insecure-ideal-ot`, a \
             test-only stand-in with no security)"
        )
    });
}

/// A connected (sender, receiver) pair whose outputs are drawn from a generator seeded with
/// `seed` (so a test is reproducible). Calls wait at most [`DEFAULT_OT_TIMEOUT`] for the peer.
pub fn pair(seed: u64) -> (IdealOtSender, IdealOtReceiver) {
    warn_once();
    let (tx, rx) = mpsc::unbounded_channel();
    (
        IdealOtSender { requests: rx, rng: ChaCha20Rng::seed_from_u64(seed), timeout: DEFAULT_OT_TIMEOUT },
        IdealOtReceiver { requests: tx, timeout: DEFAULT_OT_TIMEOUT },
    )
}

impl IdealOtSender {
    /// Sets how long a call waits for the receiver's matching call; returns the previous value.
    pub fn set_timeout(&mut self, timeout: Duration) -> Duration {
        std::mem::replace(&mut self.timeout, timeout)
    }

    /// The receiver's next batch, checked against ours.
    async fn next(&mut self, step: &str, kind: Kind, count: usize) -> Result<Request, NetError> {
        let req = match tokio::time::timeout(self.timeout, self.requests.recv()).await {
            Err(_) => return Err(NetError::Timeout { step: step.into(), secs: self.timeout.as_secs() }),
            Ok(None) => return Err(NetError::Ot { step: step.into(), reason: "the receiver is gone".into() }),
            Ok(Some(req)) => req,
        };
        if req.kind != kind || req.bits.len() != count {
            let reason =
                format!("the receiver asked for {} {} OTs, the sender for {count} {kind}", req.bits.len(), req.kind);
            return Err(NetError::Ot { step: step.into(), reason });
        }
        Ok(req)
    }

    fn block(&mut self) -> Block {
        Block(self.rng.random())
    }
}

impl IdealOtReceiver {
    /// Sets how long a call waits for the sender's matching call; returns the previous value.
    pub fn set_timeout(&mut self, timeout: Duration) -> Duration {
        std::mem::replace(&mut self.timeout, timeout)
    }

    async fn ask(&mut self, step: &str, kind: Kind, bits: &[bool]) -> Result<Reply, NetError> {
        let (reply, answer) = oneshot::channel();
        let gone = |reason: &str| NetError::Ot { step: step.into(), reason: reason.into() };
        self.requests.send(Request { kind, bits: bits.to_vec(), reply }).map_err(|_| gone("the sender is gone"))?;
        match tokio::time::timeout(self.timeout, answer).await {
            Err(_) => Err(NetError::Timeout { step: step.into(), secs: self.timeout.as_secs() }),
            Ok(Err(_)) => Err(gone("the sender refused the batch or is gone")),
            Ok(Ok(out)) => Ok(out),
        }
    }
}

impl OtSend for IdealOtSender {
    async fn correlated(&mut self, step: &str, delta: Block, count: usize) -> Result<Vec<Block>, NetError> {
        let req = self.next(step, Kind::Correlated, count).await?;
        let m0: Vec<Block> = (0..count).map(|_| self.block()).collect();
        let chosen = m0.iter().zip(&req.bits).map(|(&m, &b)| if b { m ^ delta } else { m }).collect();
        // A receiver gone by now fails at its own end.
        let _ = req.reply.send(Reply::Chosen(chosen));
        Ok(m0)
    }

    async fn random(&mut self, step: &str, count: usize) -> Result<Vec<[Block; 2]>, NetError> {
        let req = self.next(step, Kind::Random, count).await?;
        let pads: Vec<[Block; 2]> = (0..count).map(|_| [self.block(), self.block()]).collect();
        let _ = req.reply.send(Reply::Chosen(pads.iter().zip(&req.bits).map(|(p, &b)| p[b as usize]).collect()));
        Ok(pads)
    }

    async fn rand_choice(&mut self, step: &str, count: usize) -> Result<Vec<[Block; 2]>, NetError> {
        let req = self.next(step, Kind::RandChoice, count).await?;
        let (pads, theirs) = self.deal(count);
        let _ = req.reply.send(Reply::RandChoice(theirs));
        Ok(pads)
    }

    async fn rand_choice_reversed(&mut self, step: &str, count: usize) -> Result<RandChoice, NetError> {
        let req = self.next(step, Kind::RandChoiceReversed, count).await?;
        let (pads, mine) = self.deal(count);
        let _ = req.reply.send(Reply::Pads(pads));
        Ok(mine)
    }
}

impl IdealOtSender {
    /// `count` random-choice OTs: both pads, and the receiving half.
    fn deal(&mut self, count: usize) -> (Vec<[Block; 2]>, RandChoice) {
        let pads: Vec<[Block; 2]> = (0..count).map(|_| [self.block(), self.block()]).collect();
        let choices: Vec<bool> = (0..count).map(|_| self.rng.random()).collect();
        let chosen = pads.iter().zip(&choices).map(|(p, &c)| p[c as usize]).collect();
        (pads, RandChoice { choices, pads: chosen })
    }
}

fn wrong_reply(step: &str) -> NetError {
    NetError::Ot { step: step.into(), reason: "the dealer answered a different kind of batch".into() }
}

impl OtReceive for IdealOtReceiver {
    async fn correlated(&mut self, step: &str, bits: &[bool]) -> Result<Vec<Block>, NetError> {
        match self.ask(step, Kind::Correlated, bits).await? {
            Reply::Chosen(v) => Ok(v),
            _ => Err(wrong_reply(step)),
        }
    }

    async fn random(&mut self, step: &str, bits: &[bool]) -> Result<Vec<Block>, NetError> {
        match self.ask(step, Kind::Random, bits).await? {
            Reply::Chosen(v) => Ok(v),
            _ => Err(wrong_reply(step)),
        }
    }

    async fn rand_choice(&mut self, step: &str, count: usize) -> Result<RandChoice, NetError> {
        match self.ask(step, Kind::RandChoice, &vec![false; count]).await? {
            Reply::RandChoice(v) => Ok(v),
            _ => Err(wrong_reply(step)),
        }
    }

    async fn rand_choice_reversed(&mut self, step: &str, count: usize) -> Result<Vec<[Block; 2]>, NetError> {
        match self.ask(step, Kind::RandChoiceReversed, &vec![false; count]).await? {
            Reply::Pads(v) => Ok(v),
            _ => Err(wrong_reply(step)),
        }
    }
}

/// An ideal OT half framed like the real OT: before and after each batch the receiver sends a
/// one-byte go-ahead and a one-byte done frame on `sync`, the sender waits for them (as
/// [`super::OtSender`] / [`super::OtReceiver`] do), so a session's framed messages, and the
/// script check of them, are those of a real session; only the OT library's own stream bytes
/// are missing.
pub struct Framed<T> {
    ot: T,
    sync: Channel,
    extension: veil_ir::OtExtension,
}

impl<T> std::fmt::Debug for Framed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Framed(<insecure, test-only>)")
    }
}

impl<T> Framed<T> {
    /// `ot`, synchronised over the channel `sync`.
    pub fn new(ot: T, sync: Channel) -> Framed<T> {
        Framed { ot, sync, extension: veil_ir::OtExtension::Iknp }
    }

    /// Frames the chosen-input batches as the real OT does under `extension` (silent OT's done
    /// frame carries a bit per OT; here zeros, the dealer needs none).
    pub fn set_extension(&mut self, extension: veil_ir::OtExtension) {
        self.extension = extension;
    }

    /// The done frame's length of a chosen-input batch of `count` OTs.
    fn done_len(&self, count: usize) -> usize {
        if self.extension == veil_ir::OtExtension::Silent { count.div_ceil(8) } else { 1 }
    }
}

impl OtSend for Framed<IdealOtSender> {
    async fn correlated(&mut self, step: &str, delta: Block, count: usize) -> Result<Vec<Block>, NetError> {
        self.sync.recv_exact(step, 1).await?;
        let out = self.ot.correlated(step, delta, count).await?;
        self.sync.recv_exact(step, self.done_len(count)).await?;
        Ok(out)
    }

    async fn random(&mut self, step: &str, count: usize) -> Result<Vec<[Block; 2]>, NetError> {
        self.sync.recv_exact(step, 1).await?;
        let out = self.ot.random(step, count).await?;
        self.sync.recv_exact(step, self.done_len(count)).await?;
        Ok(out)
    }

    async fn rand_choice(&mut self, step: &str, count: usize) -> Result<Vec<[Block; 2]>, NetError> {
        self.sync.recv_exact(step, 1).await?;
        let out = self.ot.rand_choice(step, count).await?;
        self.sync.recv_exact(step, 1).await?;
        Ok(out)
    }

    async fn rand_choice_reversed(&mut self, step: &str, count: usize) -> Result<RandChoice, NetError> {
        self.sync.recv_exact(step, 1).await?;
        let out = self.ot.rand_choice_reversed(step, count).await?;
        self.sync.recv_exact(step, 1).await?;
        Ok(out)
    }
}

impl OtReceive for Framed<IdealOtReceiver> {
    async fn correlated(&mut self, step: &str, bits: &[bool]) -> Result<Vec<Block>, NetError> {
        self.sync.send(step, &[1]).await?;
        let out = self.ot.correlated(step, bits).await?;
        self.sync.send(step, &vec![1; self.done_len(bits.len())]).await?;
        Ok(out)
    }

    async fn random(&mut self, step: &str, bits: &[bool]) -> Result<Vec<Block>, NetError> {
        self.sync.send(step, &[1]).await?;
        let out = self.ot.random(step, bits).await?;
        self.sync.send(step, &vec![1; self.done_len(bits.len())]).await?;
        Ok(out)
    }

    async fn rand_choice(&mut self, step: &str, count: usize) -> Result<RandChoice, NetError> {
        self.sync.send(step, &[1]).await?;
        let out = self.ot.rand_choice(step, count).await?;
        self.sync.send(step, &[1]).await?;
        Ok(out)
    }

    async fn rand_choice_reversed(&mut self, step: &str, count: usize) -> Result<Vec<[Block; 2]>, NetError> {
        self.sync.send(step, &[1]).await?;
        let out = self.ot.rand_choice_reversed(step, count).await?;
        self.sync.send(step, &[1]).await?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Same correlations as the real OT's test (`super::super::tests`), and mismatched calls fail
    /// on both sides instead of answering.
    #[tokio::test]
    async fn ideal_ots_have_their_correlations_and_refuse_mismatched_batches() {
        let (mut s, mut r) = pair(9);
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let delta = Block(rng.random::<u128>() | 1);
        let bits: Vec<bool> = (0..1000).map(|_| rng.random()).collect();
        let (cot, m0) = tokio::join!(r.correlated("cot", &bits), s.correlated("cot", delta, bits.len()));
        let (rot, pads) = tokio::join!(r.random("rot", &bits), s.random("rot", bits.len()));
        let (cot, m0, rot, pads) = (cot.unwrap(), m0.unwrap(), rot.unwrap(), pads.unwrap());
        assert_eq!((cot.len(), rot.len()), (1000, 1000));
        for i in 0..bits.len() {
            assert_eq!(cot[i], if bits[i] { m0[i] ^ delta } else { m0[i] }, "COT {i}");
            assert_eq!(rot[i], pads[i][bits[i] as usize], "ROT {i}");
            assert_ne!(pads[i][0], pads[i][1]);
        }
        // Random-choice OTs, both directions: the chosen pad is the pad of the choice, and the
        // choices are not constant.
        let (rc, pads) = tokio::join!(r.rand_choice("rc", 1000), s.rand_choice("rc", 1000));
        let (pads2, rc2) = tokio::join!(r.rand_choice_reversed("rcr", 1000), s.rand_choice_reversed("rcr", 1000));
        for (rc, pads) in [(rc.unwrap(), pads.unwrap()), (rc2.unwrap(), pads2.unwrap())] {
            assert_eq!((rc.len(), pads.len()), (1000, 1000));
            for i in 0..1000 {
                assert_eq!(rc.pads[i], pads[i][rc.choices[i] as usize], "random-choice OT {i}");
            }
            let ones = rc.choices.iter().filter(|&&c| c).count();
            assert!((400..600).contains(&ones), "{ones} of 1000 choices are 1");
        }
        // A random batch against a correlated one, then a size mismatch.
        let (got, sent) = tokio::join!(r.random("mixed", &bits[..5]), s.correlated("mixed", delta, 5));
        assert!(got.unwrap_err().to_string().contains("refused"));
        assert_eq!(
            sent.unwrap_err().to_string(),
            "oblivious transfer (mixed): the receiver asked for 5 random OTs, the sender for 5 correlated"
        );
        let (got, sent) = tokio::join!(r.random("sizes", &bits[..5]), s.random("sizes", 6));
        assert!(got.is_err());
        assert!(sent.unwrap_err().to_string().contains("5 random OTs, the sender for 6 random"));
        // A silent peer times out; a dropped one is gone.
        s.set_timeout(Duration::from_millis(50));
        assert!(matches!(s.random("silence", 1).await, Err(NetError::Timeout { .. })));
        drop(s);
        assert!(r.random("alone", &bits[..1]).await.unwrap_err().to_string().contains("gone"));
    }
}
