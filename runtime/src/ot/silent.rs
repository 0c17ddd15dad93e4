//! Random-choice random OT from silent OT (`cryprot_ot::silent_ot`, semi-honest, expand-convolute
//! code): the sender gets both pads of each OT, the receiver a uniformly random choice bit and
//! the pad of it. Nobody chooses, so the OTs cost a few bits each on the wire; protocols
//! derandomise them online (docs/protocols.md, "ReLU over OT").
//!
//! Both directions exist: the session's OT sender (the server) also *receives* random-choice
//! OTs from the client ([`super::OtSend::rand_choice_reversed`]), since the OT-based non-linear
//! protocols need products where the server's bit selects a client value. Each direction is
//! its own silent-OT instance on its own sub-connection, made when the session's OT halves are
//! made: the OT sender's first sub-connection is its silent sender, its second its silent
//! receiver, and the OT receiver's the other way round, so the n-th sub-connections pair up.
//!
//! Batches are padded to [`padded`] OTs (the library's code needs a minimum size); the excess
//! is dropped. Pads are fresh per batch and never reused by the protocols.

use cryprot_net::Connection;
use cryprot_ot::RandChoiceRotReceiver;
use cryprot_ot::silent_ot::{SemiHonestSilentOtReceiver, SemiHonestSilentOtSender};

use super::{DEFAULT_OT_TIMEOUT, OtReceiver, OtSender, from_c, timed};
use crate::garble::Block;
use crate::net::NetError;
use crate::net::meter::metered;

/// The smallest silent-OT batch we run (smaller requests are padded to it).
pub const SILENT_MIN: usize = 1024;

/// The silent-OT batch size for `count` requested OTs: at least [`SILENT_MIN`], a multiple of 128.
pub fn padded(count: usize) -> usize {
    count.max(SILENT_MIN).next_multiple_of(128)
}

/// The receiver's half of a batch of random-choice OTs: per OT a random choice bit and the pad
/// of that choice. Secret: `Debug` shows only the length.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RandChoice {
    /// The choice bit of each OT (uniform, picked by the OT, not by the receiver).
    pub choices: Vec<bool>,
    /// The pad of each OT's choice.
    pub pads: Vec<Block>,
}

impl std::fmt::Debug for RandChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RandChoice {{ len: {}, <redacted> }}", self.pads.len())
    }
}

impl RandChoice {
    /// Number of OTs.
    pub fn len(&self) -> usize {
        self.pads.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.pads.is_empty()
    }
}

/// One party's two silent-OT instances (one per direction).
pub(super) struct Silent {
    send: SemiHonestSilentOtSender,
    recv: SemiHonestSilentOtReceiver,
}

impl Silent {
    /// The instances on two new sub-connections of `conn`; `ot_sender` says which half of the
    /// session this is (see the module doc for the pairing).
    pub(super) fn new(conn: &mut Connection, ot_sender: bool) -> Silent {
        let (first, second) = (conn.sub_connection(), conn.sub_connection());
        let (s, r) = if ot_sender { (first, second) } else { (second, first) };
        Silent { send: SemiHonestSilentOtSender::new(s), recv: SemiHonestSilentOtReceiver::new(r) }
    }

    async fn send(
        &mut self,
        locate: &str,
        meter: &crate::net::Meter,
        count: usize,
    ) -> Result<Vec<[Block; 2]>, NetError> {
        let out = timed(locate, DEFAULT_OT_TIMEOUT, metered(meter, self.send.random_send(padded(count)))).await?;
        Ok(out.iter().take(count).map(|&[a, b]| [from_c(a), from_c(b)]).collect())
    }

    async fn receive(&mut self, locate: &str, meter: &crate::net::Meter, count: usize) -> Result<RandChoice, NetError> {
        let (pads, choices) =
            timed(locate, DEFAULT_OT_TIMEOUT, metered(meter, self.recv.rand_choice_receive(padded(count)))).await?;
        Ok(RandChoice {
            choices: choices.iter().take(count).map(|c| bool::from(*c)).collect(),
            pads: pads.into_iter().take(count).map(from_c).collect(),
        })
    }
}

impl OtSender {
    /// `count` random-choice OTs with this party as the sender: both pads of each.
    pub async fn rand_choice(&mut self, step: &str, count: usize) -> Result<Vec<[Block; 2]>, NetError> {
        self.go_ahead(step).await?;
        let meter = self.sync.meter().clone();
        let out = self.silent.send(&meter.locate(step), &meter, count).await?;
        self.sync.recv_exact(step, 1).await?;
        Ok(out)
    }

    /// `count` random-choice OTs with the roles swapped (the client sends): random choices and
    /// their pads.
    pub async fn rand_choice_reversed(&mut self, step: &str, count: usize) -> Result<RandChoice, NetError> {
        self.go_ahead(step).await?;
        let meter = self.sync.meter().clone();
        let out = self.silent.receive(&meter.locate(step), &meter, count).await?;
        self.sync.recv_exact(step, 1).await?;
        Ok(out)
    }
}

impl OtReceiver {
    /// `count` random-choice OTs with this party as the receiver: random choices and their pads.
    pub async fn rand_choice(&mut self, step: &str, count: usize) -> Result<RandChoice, NetError> {
        self.sync.send(step, &[1]).await?;
        let meter = self.sync.meter().clone();
        let out = self.silent.receive(&meter.locate(step), &meter, count).await?;
        self.sync.send(step, &[1]).await?;
        Ok(out)
    }

    /// `count` random-choice OTs with the roles swapped (this party sends): both pads of each.
    pub async fn rand_choice_reversed(&mut self, step: &str, count: usize) -> Result<Vec<[Block; 2]>, NetError> {
        self.sync.send(step, &[1]).await?;
        let meter = self.sync.meter().clone();
        let out = self.silent.send(&meter.locate(step), &meter, count).await?;
        self.sync.send(step, &[1]).await?;
        Ok(out)
    }
}
