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
//! A batch runs the library once per run of at most `SILENT_RUN` OTs (the library slows down
//! 2.7× past it; `veil_ir::schedule::script::silent_runs`), each run padded to [`padded`] OTs
//! (the library's code needs a minimum size); the excess is dropped. Pads are fresh per batch and never reused by the protocols.

use cryprot_core::Block as CBlock;
use cryprot_core::aes_hash::FIXED_KEY_HASH;
use cryprot_net::Connection;
use cryprot_ot::silent_ot::{SemiHonestSilentOtReceiver, SemiHonestSilentOtSender};

use super::{OtReceiver, OtSender, batch_timeout, from_c, timed};
use crate::garble::Block;
use crate::net::meter::metered;
use crate::net::{Channel, NetError};

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

/// Where a batch runs: its position in the session (for errors), the session's meter and the
/// batch's timeout ([`batch_timeout`]).
pub(super) struct Batch {
    locate: String,
    meter: crate::net::Meter,
    timeout: std::time::Duration,
}

impl Batch {
    /// A batch of `count` OTs of `step`, synchronised over `sync`.
    fn of(sync: &Channel, step: &str, count: usize) -> Batch {
        let meter = sync.meter().clone();
        Batch { locate: meter.locate(step), timeout: batch_timeout(sync, count), meter }
    }

    /// Runs `fut`, the library's half of the batch, timed and metered.
    async fn run<T, E: std::fmt::Display>(self, fut: impl Future<Output = Result<T, E>>) -> Result<T, NetError> {
        timed(&self.locate, self.timeout, metered(&self.meter, fut)).await
    }
}

/// One party's two silent-OT instances (one per direction), and the library's working buffer.
///
/// The buffer is kept across runs and directions (a party runs one batch at a time): the
/// library's own `random_send`, `rand_choice_receive` and `correlated_*` allocate it afresh per
/// run, and the kernel then zeroes every page of it again (a twentieth of the server's CPU on
/// ResNet-32). The library overwrites the whole buffer in each run (its point-function
/// expansion writes every entry), so nothing of an earlier run survives into a later one; the
/// tests' correlations across runs would break if it did.
///
/// The results of random-choice batches come back the same way once the protocol has hashed
/// them down ([`Silent::recycle`]): a ResNet-18 layer's pads are half a gigabyte.
pub(super) struct Silent {
    send: SemiHonestSilentOtSender,
    recv: SemiHonestSilentOtReceiver,
    buf: Vec<CBlock>,
    spare_pairs: Vec<[Block; 2]>,
    spare_choice: RandChoice,
}

impl Silent {
    /// The instances on two new sub-connections of `conn`; `ot_sender` says which half of the
    /// session this is (see the module doc for the pairing).
    pub(super) fn new(conn: &mut Connection, ot_sender: bool) -> Silent {
        let (first, second) = (conn.sub_connection(), conn.sub_connection());
        let (s, r) = if ot_sender { (first, second) } else { (second, first) };
        Silent {
            send: SemiHonestSilentOtSender::new(s),
            recv: SemiHonestSilentOtReceiver::new(r),
            buf: Vec::new(),
            spare_pairs: Vec::new(),
            spare_choice: RandChoice::default(),
        }
    }

    /// Keeps the allocations of a finished batch's results for the next ones.
    pub(super) fn recycle(&mut self, pairs: Vec<[Block; 2]>, choice: RandChoice) {
        if pairs.capacity() > self.spare_pairs.capacity() {
            self.spare_pairs = pairs;
        }
        if choice.pads.capacity() > self.spare_choice.pads.capacity() {
            self.spare_choice = choice;
        }
    }

    /// `count` random-choice OTs, this party sending: both pads of each.
    async fn send(&mut self, at: Batch, count: usize) -> Result<Vec<[Block; 2]>, NetError> {
        at.run(async {
            let mut out = std::mem::take(&mut self.spare_pairs);
            out.clear();
            out.reserve(count);
            for run in runs(count) {
                let n = padded(run);
                let delta = CBlock::from(rand::random::<u128>());
                let buf = sized(&mut self.buf, n);
                self.send.correlated_send_into(n, delta, buf).await?;
                let correlated = &self.buf[..run];
                crate::compute(|| random_pads(correlated, delta, &mut out));
            }
            Ok::<_, cryprot_ot::silent_ot::Error>(out)
        })
        .await
    }

    /// The receiving half of [`Silent::send`]: random choices and the pad of each.
    async fn receive(&mut self, at: Batch, count: usize) -> Result<RandChoice, NetError> {
        at.run(async {
            let mut out = std::mem::take(&mut self.spare_choice);
            out.choices.clear();
            out.pads.clear();
            out.choices.reserve(count);
            out.pads.reserve(count);
            for run in runs(count) {
                let n = padded(run);
                let buf = sized(&mut self.buf, n);
                let choices = self.recv.random_receive_into(n, buf).await?;
                out.extend(run, &self.buf, &choices);
            }
            Ok::<_, cryprot_ot::silent_ot::Error>(out)
        })
        .await
    }

    /// `count` correlated random-choice OTs with correlation `delta`, this party sending: the
    /// `m0` of each (the receiver gets `m0 ⊕ c·Δ` for its random `c`).
    async fn correlated_send(&mut self, at: Batch, count: usize, delta: Block) -> Result<Vec<Block>, NetError> {
        at.run(async {
            let mut out = Vec::with_capacity(count);
            for run in runs(count) {
                let n = padded(run);
                let buf = sized(&mut self.buf, n);
                self.send.correlated_send_into(n, super::to_c(delta), buf).await?;
                out.extend(self.buf.iter().take(run).map(|&b| from_c(b)));
            }
            Ok::<_, cryprot_ot::silent_ot::Error>(out)
        })
        .await
    }

    /// The receiving half of [`Silent::correlated_send`]: random choices and `m0 ⊕ c·Δ`.
    async fn correlated_receive(&mut self, at: Batch, count: usize) -> Result<RandChoice, NetError> {
        at.run(async {
            let mut out = RandChoice::with_capacity(count);
            for run in runs(count) {
                let n = padded(run);
                let buf = sized(&mut self.buf, n);
                let choices = self.recv.correlated_receive_into(n, buf).await?;
                out.extend(run, &self.buf, &choices);
            }
            Ok::<_, cryprot_ot::silent_ot::Error>(out)
        })
        .await
    }
}

/// The working buffer `buf`, sized for a run of `n` OTs (the library asserts the exact size). Its
/// allocation is kept; only entries beyond the last run's length are zeroed.
fn sized(buf: &mut Vec<CBlock>, n: usize) -> &mut Vec<CBlock> {
    let len = SemiHonestSilentOtSender::ots_buf_size(n);
    debug_assert_eq!(len, SemiHonestSilentOtReceiver::ots_buf_size(n));
    buf.resize(len, CBlock::ZERO);
    buf
}

/// Appends the random OTs of `correlated` (the sender's `q` of correlated OTs with correlation
/// `delta`) to `out`, as `cryprot-ot`'s semi-honest `random_sent_into` makes them from the same
/// correlated OTs: the lowest bit of `q` and `Δ` cleared (the receiver's choice rides there),
/// then `m_b = H(q' ⊕ b·Δ')` under the library's fixed-key correlation-robust hash. The library
/// function allocates its correlated buffer afresh; this one reads the kept buffer. The
/// receiving half is the library's own (`random_receive_into`), so a difference here breaks
/// every OT's correlation (the tests check each).
fn random_pads(correlated: &[CBlock], delta: CBlock, out: &mut Vec<[Block; 2]>) {
    const PAIRS: usize = 64;
    let d = delta & CBlock::MASK_LSB;
    let mut pairs = [CBlock::ZERO; 2 * PAIRS];
    for chunk in correlated.chunks(PAIRS) {
        let pairs = &mut pairs[..2 * chunk.len()];
        for (pair, &q) in pairs.chunks_exact_mut(2).zip(chunk) {
            let m = q & CBlock::MASK_LSB;
            pair[0] = m;
            pair[1] = m ^ d;
        }
        FIXED_KEY_HASH.cr_hash_slice_mut(pairs);
        out.extend(pairs.chunks_exact(2).map(|p| [from_c(p[0]), from_c(p[1])]));
    }
}

/// The library runs a batch of `count` OTs is made in (`schedule::script::silent_runs`: runs of
/// at most `SILENT_RUN` OTs, the library's fast range; the script counts their bytes).
fn runs(count: usize) -> impl Iterator<Item = usize> {
    veil_ir::schedule::script::silent_runs(count as u64).map(|n| n as usize)
}

impl RandChoice {
    /// Room for `count` OTs.
    fn with_capacity(count: usize) -> RandChoice {
        RandChoice { choices: Vec::with_capacity(count), pads: Vec::with_capacity(count) }
    }

    /// Appends the first `count` of a padded run's pads and choices.
    fn extend(&mut self, count: usize, pads: &[cryprot_core::Block], choices: &[subtle::Choice]) {
        self.choices.extend(choices.iter().take(count).map(|c| bool::from(*c)));
        self.pads.extend(pads.iter().take(count).map(|&b| from_c(b)));
    }
}

/// The derandomising bits of a batch: `d = b ⊕ c` per OT, packed, for the done frame.
fn flips(bits: &[bool], random: &RandChoice) -> Vec<u8> {
    let d: Vec<bool> = bits.iter().zip(&random.choices).map(|(&b, &c)| b ^ c).collect();
    crate::wire::pack_bits(&d)
}

impl OtSender {
    /// The receiver's derandomising bits, its done frame (`⌈count/8⌉` bytes).
    async fn flips(&mut self, step: &str, count: usize) -> Result<Vec<bool>, NetError> {
        let packed = self.sync.recv_exact(step, count.div_ceil(8)).await?;
        Ok(crate::wire::unpack_bits(&packed, count))
    }

    /// [`OtSender::correlated`] by silent OT: correlated random-choice OTs with correlation
    /// `delta`, then `m0 ⊕ d·Δ` per OT, so the receiver's `m0' ⊕ c·Δ` is `m0 ⊕ b·Δ`.
    pub(super) async fn correlated_silent(
        &mut self,
        step: &str,
        delta: Block,
        count: usize,
    ) -> Result<Vec<Block>, NetError> {
        self.go_ahead(step).await?;
        let m0 = self.silent.correlated_send(Batch::of(&self.sync, step, count), count, delta).await?;
        let d = self.flips(step, count).await?;
        Ok(m0.into_iter().zip(d).map(|(m, d)| if d { m ^ delta } else { m }).collect())
    }

    /// [`OtSender::random`] by silent OT: random-choice OTs, each pair swapped where `d = 1`,
    /// so the receiver's pad of `c` is the new pad of `b`.
    pub(super) async fn random_silent(&mut self, step: &str, count: usize) -> Result<Vec<[Block; 2]>, NetError> {
        self.go_ahead(step).await?;
        let pads = self.silent.send(Batch::of(&self.sync, step, count), count).await?;
        let d = self.flips(step, count).await?;
        Ok(pads.into_iter().zip(d).map(|([a, b], d)| if d { [b, a] } else { [a, b] }).collect())
    }

    /// `count` random-choice OTs with this party as the sender: both pads of each.
    pub async fn rand_choice(&mut self, step: &str, count: usize) -> Result<Vec<[Block; 2]>, NetError> {
        self.go_ahead(step).await?;
        let out = self.silent.send(Batch::of(&self.sync, step, count), count).await?;
        self.sync.recv_exact(step, 1).await?;
        Ok(out)
    }

    /// `count` random-choice OTs with the roles swapped (the client sends): random choices and
    /// their pads.
    pub async fn rand_choice_reversed(&mut self, step: &str, count: usize) -> Result<RandChoice, NetError> {
        self.go_ahead(step).await?;
        let out = self.silent.receive(Batch::of(&self.sync, step, count), count).await?;
        self.sync.recv_exact(step, 1).await?;
        Ok(out)
    }
}

impl OtReceiver {
    /// [`OtReceiver::correlated`] by silent OT (see [`OtSender::correlated_silent`]).
    pub(super) async fn correlated_silent(&mut self, step: &str, bits: &[bool]) -> Result<Vec<Block>, NetError> {
        self.sync.send(step, &[1]).await?;
        let random = self.silent.correlated_receive(Batch::of(&self.sync, step, bits.len()), bits.len()).await?;
        self.sync.send(step, &flips(bits, &random)).await?;
        Ok(random.pads)
    }

    /// [`OtReceiver::random`] by silent OT (see [`OtSender::random_silent`]).
    pub(super) async fn random_silent(&mut self, step: &str, bits: &[bool]) -> Result<Vec<Block>, NetError> {
        self.sync.send(step, &[1]).await?;
        let random = self.silent.receive(Batch::of(&self.sync, step, bits.len()), bits.len()).await?;
        self.sync.send(step, &flips(bits, &random)).await?;
        Ok(random.pads)
    }

    /// `count` random-choice OTs with this party as the receiver: random choices and their pads.
    pub async fn rand_choice(&mut self, step: &str, count: usize) -> Result<RandChoice, NetError> {
        self.sync.send(step, &[1]).await?;
        let out = self.silent.receive(Batch::of(&self.sync, step, count), count).await?;
        self.sync.send(step, &[1]).await?;
        Ok(out)
    }

    /// `count` random-choice OTs with the roles swapped (this party sends): both pads of each.
    pub async fn rand_choice_reversed(&mut self, step: &str, count: usize) -> Result<Vec<[Block; 2]>, NetError> {
        self.sync.send(step, &[1]).await?;
        let out = self.silent.send(Batch::of(&self.sync, step, count), count).await?;
        self.sync.send(step, &[1]).await?;
        Ok(out)
    }
}
