//! The message script of a protocol step: every message the two parties exchange in one phase,
//! in order, with its direction, exact size and label (docs/protocols.md, message by message).
//!
//! This is the one description of the wire traffic: the compiler's cost model is a fold over
//! the scripts (`veil_passes::cost`), and in debug builds the runtime checks every frame it sends
//! or receives against the script of the step it is in (`veil_runtime::net::script_check`).
//!
//! Veil's own messages are frames ([`Wire::Frame`]: a 4-byte length prefix and a payload whose
//! size follows from the plan: ring elements, labels, packed bits, BFV ciphertexts whose
//! serialized size [`crate::he_pack`] computes). Oblivious transfer runs inside `cryprot-ot`
//! (IKNP) on its own streams ([`Wire::Ot`]): 16 bytes per OT from the receiver (plus 16 from the
//! sender for correlated OT) and a few bytes of stream headers per batch, padded to 128 OTs; the
//! session's first batch also carries the base OTs. Those library constants were measured and
//! are pinned with the crate versions. Each batch is framed by a one-byte go-ahead and a
//! one-byte done frame from the receiver (the client), which carry the batch's label.
//! Random-choice OTs come from silent OT (`cryprot-ot`'s `silent_ot`, one instance per
//! direction), whose bytes per batch grow with the logarithm of its size ([`silent_bytes`]); a
//! batch larger than [`SILENT_RUN`] runs as several runs of the library ([`silent_runs`]).

use super::{GC_CHUNK, GcBatch, Kind, LinearOffline, Step, circa_ot, clip_ot, dense_dims, leaky_ot, relu_ot, trunc_ot};
use crate::he_pack::{HeParams, Layer};
use crate::{Graph, ValueId};

/// Bytes of one frame's length prefix.
pub const FRAME_PREFIX: u64 = 4;
/// Bytes of a wire label.
const LABEL: u64 = 16;
/// Bytes of a ring element on the wire.
const ELEM: u64 = 8;
/// Bytes of a garbling's hash key, sent ahead of its first table chunk.
const HASH_KEY: u64 = 16;

/// OT extension batches are padded to this many OTs.
const OT_BATCH: u64 = 128;
/// The session's base OTs (with the first extension batch), bytes each way.
const BASE_OT: (u64, u64) = (97, 4110);
/// Stream headers of one random-OT batch (receiver → sender, sender → receiver).
const ROT_HEADERS: (u64, u64) = (9, 9);
/// Stream headers of one correlated-OT batch.
const COT_HEADERS: (u64, u64) = (17, 17);
/// Punctured-PRF trees of a silent-OT batch (the library's noise weight for batches of at
/// least 1024 OTs at 128-bit security).
const SILENT_TREES: u64 = 248;
/// A silent-OT batch's constant bytes from the receiver (stream headers).
const SILENT_RECEIVER_HEADERS: u64 = 21;
/// A silent-OT batch's constant bytes from the sender (headers and the code's seed material).
const SILENT_SENDER_HEADERS: u64 = 8205;
/// An instance's first silent-OT batch: its IKNP base OTs, bytes from the receiver and sender.
const SILENT_BASE_OT: (u64, u64) = (99, 4112);
/// The most random-choice OTs one run of the silent-OT library makes: a larger batch runs as
/// [`silent_runs`]. The library's dual encoding walks the whole batch with random accesses, and
/// its rate falls by 2.7× once a batch's buffers outgrow the cache: 9.7 M OTs/s at 2^16–2^19
/// against 3.6 M/s at 2^21–2^22 on the development machine (32 MiB L3; `cargo bench -p
/// veil-runtime --bench silent_batch`). A run's fixed bytes (its base OTs and trees, about
/// 160 kB) make 2^19 the largest size in the fast range the better one on the wire.
pub const SILENT_RUN: u64 = 1 << 19;

/// The runs a silent-OT batch of `n` OTs is made in, in order: `⌈n / SILENT_RUN⌉` runs (one for
/// `n = 0`) of sizes differing by at most one, the larger first. The runtime's `ot::silent`
/// runs exactly these.
pub fn silent_runs(n: u64) -> impl Iterator<Item = u64> {
    let k = n.div_ceil(SILENT_RUN).max(1);
    (0..k).map(move |i| n / k + u64::from(i < n % k))
}

/// The labels of the messages: the step texts the runtime passes to its channel, which its
/// errors name.
pub mod label {
    /// Online, client → server: `x − r`, one ring element per input element.
    pub const SHARE: &str = "sharing the input";
    /// Online, server → client: the server's share of the output.
    pub const REVEAL: &str = "revealing the output";
    /// Offline, client → server: the BFV public key, once per parameter set in a session.
    pub const HE_PUBLIC_KEY: &str = "HE linear layer: public key";
    /// Offline, client → server: the client's mask, encrypted (one frame per batch element).
    pub const HE_REQUEST: &str = "HE linear layer: encrypted mask";
    /// Offline, server → client: the masked product ciphertexts (one frame per batch element).
    pub const HE_RESPONSE: &str = "HE linear layer: response";
    /// Offline: the random OTs of a Gilboa dense layer, one per bit of the client's mask.
    pub const DENSE_OT: &str = "dense layer correlation (OT)";
    /// Offline, server → client: a Gilboa dense layer's corrections (one frame per batch element).
    pub const DENSE: &str = "dense layer correlation";
    /// Offline: the client's garbled-circuit input labels by correlated OT.
    pub const GC_INPUT_OT: &str = "garbled-circuit input labels (OT)";
    /// Offline, server → client: garbled tables, [`crate::schedule::GC_CHUNK`] instances per frame.
    pub const GC_TABLES: &str = "garbled tables";
    /// Online, server → client: the labels of the server's circuit inputs.
    pub const GC_SERVER_LABELS: &str = "server's garbled-circuit input labels";
    /// Online, client → server: the output wires' colour bits, packed.
    pub const GC_COLOURS: &str = "garbled-circuit output colours";
    /// Offline, server → client: Circa's output decoding bits, packed.
    pub const GC_DECODING: &str = "garbled-circuit output decoding";
    /// Offline: the random OTs of bit-times-share products (Circa, polynomials), `ℓ` per element.
    pub const PRODUCT_OT: &str = "multiplication correlations (OT)";
    /// Offline, server → client: the corrections of those products.
    pub const PRODUCT: &str = "multiplication correlations";
    /// Offline: Circa's random OTs, one per element.
    pub const CIRCA_OT: &str = "Circa: bit-times-share correlations (OT)";
    /// Online, client → server: Circa's derandomised choice bits, packed.
    pub const CIRCA_CHOICES: &str = "Circa: derandomised choices";
    /// Online, server → client: Circa's two masked ring elements per element.
    pub const CIRCA_PRODUCTS: &str = "Circa: masked products";
    /// Online, client → server: Circa's output re-shared, one ring element per element.
    pub const CIRCA_RESHARE: &str = "Circa: re-sharing";
    /// Offline client → server, then online server → client: a masked share, one ring element per element.
    pub const POLY_MASKED: &str = "polynomial activation: masked share";
    /// Online, client → server: the polynomial's output re-shared, one ring element per element.
    pub const POLY_RESHARE: &str = "polynomial activation: re-sharing";
    /// Offline client → server and online server → client: a party's shares of both operands of
    /// a product minus its Beaver triple's `(a, b)`, two ring elements per output element.
    pub const MUL_MASKED: &str = "secret product: masked operands";
    /// Online, client → server: the client's share of a secret product minus its output mask.
    pub const MUL_RESHARE: &str = "secret product: re-sharing";
    /// Offline: the random OTs of a matrix triple's two cross products, one per bit of each
    /// entry of the client's `U` (then of its `V`).
    pub const MATMUL_OT: &str = "matrix product correlations (OT)";
    /// Offline, server → client: the corrections of a matrix triple's cross products, one
    /// frame per row of the client's operand (`U`'s rows, then `V`'s columns).
    pub const MATMUL_PRODUCT: &str = "matrix product correlations";
    /// Offline client → server and online server → client: a party's shares of both operands of
    /// a matrix product minus its triple's `(U, V)`, `m·k + k·n` ring elements per batch element.
    pub const MATMUL_MASKED: &str = "matrix product: masked operands";
    /// Online, client → server: the client's share of a matrix product minus its output mask.
    pub const MATMUL_RESHARE: &str = "matrix product: re-sharing";
    /// Offline: a ReLU over OT's random-choice OTs from silent OT, server-sent then client-sent.
    pub const RELU_OT_OTS: &str = "ReLU over OT: random-choice OTs (silent)";
    /// Online, alternating from the client: a ReLU over OT's flights (derandomised choices,
    /// comparison tables, AND openings, products; [`crate::schedule::relu_ot::flights`]).
    pub const RELU_OT: &str = "ReLU over OT: comparisons and products";
    /// Offline: a MaxPool over OT's random-choice OTs (all levels of its max tree) from silent
    /// OT, server-sent then client-sent.
    pub const MAXPOOL_OT_OTS: &str = "MaxPool over OT: random-choice OTs (silent)";
    /// Online, alternating from the client: a MaxPool over OT's flights, one shift-0 ReLU over
    /// OT per level of its max tree ([`crate::schedule::relu_ot::max_levels`]).
    pub const MAXPOOL_OT: &str = "MaxPool over OT: max tree";
    /// Offline: a Clip over OT's random-choice OTs (both of its ReLUs) from silent OT,
    /// server-sent then client-sent.
    pub const CLIP_OT_OTS: &str = "Clip over OT: random-choice OTs (silent)";
    /// Online, alternating from the client: a Clip over OT's flights, its two ReLUs over OT in
    /// turn ([`crate::schedule::clip_ot::flights`]).
    pub const CLIP_OT: &str = "Clip over OT: two ReLUs";
    /// Offline: a LeakyReLU over OT's random-choice OTs (its truncations' and its select's) from
    /// silent OT, server-sent then client-sent.
    pub const LEAKY_OT_OTS: &str = "LeakyReLU over OT: random-choice OTs (silent)";
    /// Online, alternating from the client: a LeakyReLU over OT's flights, its truncations and
    /// its select in turn ([`crate::schedule::leaky_ot::flights`]).
    pub const LEAKY_OT: &str = "LeakyReLU over OT: truncations and select";
    /// Offline: an exact truncation over OT's random-choice OTs from silent OT, server-sent then
    /// client-sent.
    pub const TRUNC_OT_OTS: &str = "truncation over OT: random-choice OTs (silent)";
    /// Online, alternating from the client: an exact truncation over OT's flights (its wrap and
    /// low comparisons, then the client's products; [`crate::schedule::trunc_ot::flights`]).
    pub const TRUNC_OT: &str = "truncation over OT: comparisons and products";
    /// Offline: Circa over OT's random-choice OTs from silent OT, server-sent then client-sent.
    pub const CIRCA_OVER_OT_OTS: &str = "Circa over OT: random-choice OTs (silent)";
    /// Online, alternating from the client: Circa over OT's flights (its sign test's comparison
    /// on `m − k` bits, then the products; [`crate::schedule::circa_ot::flights`]).
    pub const CIRCA_OVER_OT: &str = "Circa over OT: sign test and products";
    /// Bit-to-arithmetic conversion, its OT (`proto::mul`; no plan step uses it yet).
    pub const B2A_OT: &str = "bit to arithmetic (OT)";
    /// Bit-to-arithmetic conversion, its correction message (no plan step uses it yet).
    pub const B2A: &str = "bit to arithmetic";
    /// Outside the steps' scripts: the client's hello and the server's reply.
    pub const HANDSHAKE: &str = "handshake";
    /// Outside the steps' scripts: the closing exchange of per-step sent-byte counts.
    pub const TRAFFIC_COUNTS: &str = "exchanging the traffic counts";
}

/// A phase of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Input-independent preprocessing.
    Offline,
    /// With the client's input.
    Online,
}

impl Phase {
    /// `"offline"` or `"online"`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Offline => "offline",
            Phase::Online => "online",
        }
    }
}

/// Who sends a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Sent by the client, received by the server.
    ClientToServer,
    /// Sent by the server, received by the client.
    ServerToClient,
}

impl std::fmt::Display for Dir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dir::ClientToServer => "client→server",
            Dir::ServerToClient => "server→client",
        })
    }
}

/// How a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wire {
    /// One Veil frame: [`FRAME_PREFIX`] bytes of length, then `bytes` of payload.
    Frame,
    /// Bytes of the OT library on its own streams (all of one direction of one OT batch; not
    /// framed by Veil, so the runtime can count but not check them one by one).
    Ot,
}

/// One message of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Message {
    /// The phase the message belongs to.
    pub phase: Phase,
    /// Who sends it.
    pub dir: Dir,
    /// Payload bytes of a frame; all bytes of an OT stream entry.
    pub bytes: u64,
    /// What it carries; the runtime's errors name it (one of [`label`]).
    pub label: &'static str,
    /// A Veil frame, or OT library traffic.
    pub wire: Wire,
}

impl Message {
    /// Bytes on the wire (with a frame's length prefix).
    pub fn wire_bytes(&self) -> u64 {
        match self.wire {
            Wire::Frame => FRAME_PREFIX + self.bytes,
            Wire::Ot => self.bytes,
        }
    }
}

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.wire {
            Wire::Frame => write!(f, "{} frame {:?} of {} bytes", self.dir, self.label, self.bytes),
            Wire::Ot => write!(f, "{} OT stream bytes {:?} ({})", self.dir, self.label, self.bytes),
        }
    }
}

/// One-time messages of a session that earlier steps may already have sent: the base OTs (with
/// the first OT batch) and the client's HE public key per parameter set (with the first layer
/// that uses the set).
#[derive(Debug, Clone)]
pub struct Sent {
    /// No OT ran yet: the next batch carries the base OTs.
    first_ot: bool,
    /// No silent-OT batch ran yet with the server sending, with the client sending: the next
    /// batch of that direction carries its instance's base OTs.
    first_silent: [bool; 2],
    /// Parameter sets whose public key was sent; `None`: price as if every key were sent.
    he_keys: Option<Vec<HeParams>>,
}

impl Sent {
    /// A session's start: nothing sent yet.
    pub fn start() -> Sent {
        Sent { first_ot: true, first_silent: [true; 2], he_keys: Some(Vec::new()) }
    }

    /// Marginal costs: every one-time message counts as already sent.
    pub fn all() -> Sent {
        Sent { first_ot: false, first_silent: [false; 2], he_keys: None }
    }

    /// Whether the public key of `p` still has to be sent (and records it as sent).
    fn he_key(&mut self, p: &HeParams) -> bool {
        match &mut self.he_keys {
            Some(keys) if !keys.contains(p) => {
                keys.push(*p);
                true
            }
            _ => false,
        }
    }
}

/// The messages of `step` in `phase`, in order, given what the session `sent` before (updated;
/// the online phase sends no one-time message).
pub fn script(g: &Graph, step: &Step, phase: Phase, sent: &mut Sent) -> Vec<Message> {
    let mut s = Script { phase, ext: g.ot_extension, messages: Vec::new() };
    match phase {
        Phase::Offline => offline(g, step, sent, &mut s),
        Phase::Online => online(g, step, &mut s),
    }
    s.messages
}

/// A script being written.
struct Script {
    phase: Phase,
    /// The extension of the chosen-input OT batches ([`Script::ot_batch`]).
    ext: crate::OtExtension,
    messages: Vec<Message>,
}

impl Script {
    fn frame(&mut self, dir: Dir, bytes: u64, label: &'static str) {
        self.messages.push(Message { phase: self.phase, dir, bytes, label, wire: Wire::Frame });
    }

    fn ot_bytes(&mut self, dir: Dir, bytes: u64, label: &'static str) {
        self.messages.push(Message { phase: self.phase, dir, bytes, label, wire: Wire::Ot });
    }

    /// One OT batch of `n` OTs with the client's chosen bits (random or correlated): the
    /// go-ahead frame, the library's traffic (with the session's base OTs if none ran yet), the
    /// done frame. With silent OT ([`crate::OtExtension::Silent`]): a silent batch in the
    /// server-sends direction (the same instance as the ReLUs' over OT, so its first batch
    /// carries that instance's base OTs), whose done frame carries the derandomising bits,
    /// `⌈n/8⌉` bytes.
    fn ot_batch(&mut self, n: u64, correlated: bool, label: &'static str, sent: &mut Sent) {
        use Dir::*;
        if self.ext == crate::OtExtension::Silent {
            self.frame(ClientToServer, 1, label);
            self.silent_runs(n, false, label, sent);
            self.frame(ClientToServer, n.div_ceil(8), label);
            return;
        }
        let m = n.div_ceil(OT_BATCH).max(1) * OT_BATCH;
        self.frame(ClientToServer, 1, label);
        if std::mem::take(&mut sent.first_ot) {
            self.ot_bytes(ClientToServer, BASE_OT.0, label);
            self.ot_bytes(ServerToClient, BASE_OT.1, label);
        }
        if correlated {
            self.ot_bytes(ClientToServer, 16 * m + COT_HEADERS.0, label);
            self.ot_bytes(ServerToClient, 16 * m + COT_HEADERS.1, label);
        } else {
            self.ot_bytes(ClientToServer, 16 * m + ROT_HEADERS.0, label);
            self.ot_bytes(ServerToClient, ROT_HEADERS.1, label);
        }
        self.frame(ClientToServer, 1, label);
    }

    /// One silent-OT batch of `n` random-choice OTs, sent by the server (`reversed`: by the
    /// client): the go-ahead frame, the library's traffic, the done frame (see [`silent_bytes`]).
    fn silent_batch(&mut self, n: u64, reversed: bool, label: &'static str, sent: &mut Sent) {
        use Dir::*;
        self.frame(ClientToServer, 1, label);
        self.silent_runs(n, reversed, label, sent);
        self.frame(ClientToServer, 1, label);
    }

    /// The library's traffic of a silent-OT batch of `n` OTs, run by run ([`silent_runs`]), the
    /// server sending (`reversed`: the client): per run the receiver's bytes then the sender's.
    fn silent_runs(&mut self, n: u64, reversed: bool, label: &'static str, sent: &mut Sent) {
        use Dir::*;
        let (sender, receiver) =
            if reversed { (ClientToServer, ServerToClient) } else { (ServerToClient, ClientToServer) };
        for run in silent_runs(n) {
            let first = std::mem::take(&mut sent.first_silent[usize::from(reversed)]);
            let (to_sender, from_sender) = silent_run_bytes(run, first);
            self.ot_bytes(receiver, to_sender, label);
            self.ot_bytes(sender, from_sender, label);
        }
    }

    /// A garbled batch offline: the client's input labels by correlated OT, then the table
    /// frames of [`GC_CHUNK`] instances each (the first with the garbling's hash key in front),
    /// each instance's tables [`GcBatch::table_bytes`] long.
    fn gc_offline(&mut self, b: &GcBatch, sent: &mut Sent) {
        let n = b.instances as u64;
        self.ot_batch(n * b.client_wires(), true, label::GC_INPUT_OT, sent);
        let per = b.table_bytes();
        let chunk = GC_CHUNK as u64;
        let mut start = 0;
        while start < n {
            let len = chunk.min(n - start);
            let key = if start == 0 { HASH_KEY } else { 0 };
            self.frame(Dir::ServerToClient, key + len * per, label::GC_TABLES);
            start += len;
        }
    }

    /// A garbled batch online: the server's input labels, the client's output colour bits.
    fn gc_online(&mut self, b: &GcBatch) {
        let n = b.instances as u64;
        self.frame(Dir::ServerToClient, LABEL * b.server_wires() * n, label::GC_SERVER_LABELS);
        self.frame(Dir::ClientToServer, (n * b.circuit.outputs.len() as u64).div_ceil(8), label::GC_COLOURS);
    }
}

/// Bytes of a silent-OT batch of `n` requested random-choice OTs on the wire, over its
/// [`silent_runs`]: `(receiver → sender, sender → receiver)`, with the instance's base OTs if it
/// is its `first` batch.
pub fn silent_bytes(n: u64, first: bool) -> (u64, u64) {
    silent_runs(n).enumerate().fold((0, 0), |(r, s), (i, run)| {
        let (dr, ds) = silent_run_bytes(run, first && i == 0);
        (r + dr, s + ds)
    })
}

/// Bytes of one silent-OT run of `n` requested random-choice OTs on the wire:
/// `(receiver → sender, sender → receiver)`, with the instance's base OTs if it is its `first`.
/// The batch runs `padded = max(n, 1024)` rounded up to 128 OTs (the runtime's
/// `ot::silent::padded`); the library then expands [`SILENT_TREES`] punctured-PRF trees of depth
/// `d = ⌈log2 size⌉`, `size` the trees' even share of `2·padded` (at least 4), from
/// `248·d` base OTs by IKNP (rounded up to 128). Measured with cryprot-ot 0.3.0 (batches of
/// 1024 to 10^6 OTs, depths 4 to 13, sender-side counts): the receiver sends the IKNP matrix,
/// `16` bytes per base OT, plus [`SILENT_RECEIVER_HEADERS`]; the sender `32` bytes per tree
/// and level plus [`SILENT_SENDER_HEADERS`]; an instance's first batch adds its IKNP base OTs,
/// [`SILENT_BASE_OT`].
fn silent_run_bytes(n: u64, first: bool) -> (u64, u64) {
    let padded = n.max(1024).next_multiple_of(OT_BATCH);
    let size = (2 * padded).div_ceil(SILENT_TREES).next_multiple_of(2).max(4);
    let depth = u64::from(64 - (size - 1).leading_zeros());
    let base_ots = (SILENT_TREES * depth).next_multiple_of(OT_BATCH);
    let (extra_r, extra_s) = if first { SILENT_BASE_OT } else { (0, 0) };
    (16 * base_ots + SILENT_RECEIVER_HEADERS + extra_r, 32 * SILENT_TREES * depth + SILENT_SENDER_HEADERS + extra_s)
}

fn elems(g: &Graph, v: ValueId) -> u64 {
    g.values[v].ty.shape.iter().product::<usize>() as u64
}

/// `(batch, m, k, n)` of a matrix product node, as `u64`s.
fn matmul_dims(g: &Graph, node: &crate::Node) -> (u64, u64, u64, u64) {
    let (b, m, k, n) = super::matmul_dims(g, node);
    (b as u64, m as u64, k as u64, n as u64)
}

/// Bytes of the server's message for `n` OT products in ring `bits`.
fn product_bytes(bits: u64, n: u64) -> u64 {
    (n * bits * (bits + 1) / 2).div_ceil(8)
}

fn online(g: &Graph, step: &Step, s: &mut Script) {
    use Dir::*;
    let node = &g.nodes[step.node];
    match &step.kind {
        Kind::Share { value } => s.frame(ClientToServer, ELEM * elems(g, *value), label::SHARE),
        Kind::Activation { .. } | Kind::MaxPool { .. } => step.gc_batches(g).iter().for_each(|b| s.gc_online(b)),
        Kind::Circa { input, .. } => {
            let n = elems(g, *input);
            let b = &step.gc_batches(g)[0];
            s.frame(ServerToClient, LABEL * b.server_wires() * n, label::GC_SERVER_LABELS);
            s.frame(ClientToServer, n.div_ceil(8), label::CIRCA_CHOICES);
            s.frame(ServerToClient, 2 * ELEM * n, label::CIRCA_PRODUCTS);
            s.frame(ClientToServer, ELEM * n, label::CIRCA_RESHARE);
        }
        Kind::Poly => {
            let n = elems(g, node.inputs[0]);
            s.frame(ServerToClient, ELEM * n, label::POLY_MASKED);
            s.frame(ClientToServer, ELEM * n, label::POLY_RESHARE);
        }
        Kind::Mul => {
            let n = elems(g, node.output);
            s.frame(ServerToClient, 2 * ELEM * n, label::MUL_MASKED);
            s.frame(ClientToServer, ELEM * n, label::MUL_RESHARE);
        }
        Kind::MatMul => {
            let (batch, m, k, n) = matmul_dims(g, node);
            s.frame(ServerToClient, ELEM * batch * (m * k + k * n), label::MATMUL_MASKED);
            s.frame(ClientToServer, ELEM * batch * m * n, label::MATMUL_RESHARE);
        }
        Kind::ReluOt { input, shift, width, out } => {
            for (dir, bytes) in relu_ot::flights(*out as u32, *width as u32, *shift as u32, elems(g, *input)) {
                s.frame(dir, bytes, label::RELU_OT);
            }
        }
        Kind::MaxPoolOt { windows, width, .. } => {
            let ell = g.ring_bits.unwrap_or(61) as u32;
            for n in relu_ot::max_levels(windows) {
                for (dir, bytes) in relu_ot::flights(ell, *width as u32, 0, n) {
                    s.frame(dir, bytes, label::MAXPOOL_OT);
                }
            }
        }
        Kind::ClipOt { input, shift, .. } => {
            let ell = g.ring_bits.unwrap_or(61) as u32;
            for (dir, bytes) in clip_ot::flights(ell, *shift as u32, elems(g, *input)) {
                s.frame(dir, bytes, label::CLIP_OT);
            }
        }
        Kind::LeakyReluOt { input, shift, .. } => {
            let ell = g.ring_bits.unwrap_or(61) as u32;
            for (dir, bytes) in leaky_ot::flights(ell, *shift as u32, elems(g, *input)) {
                s.frame(dir, bytes, label::LEAKY_OT);
            }
        }
        Kind::TruncOt { input, shift } => {
            let ell = g.ring_bits.unwrap_or(61) as u32;
            for (dir, bytes) in trunc_ot::flights(ell, *shift as u32, elems(g, *input)) {
                s.frame(dir, bytes, label::TRUNC_OT);
            }
        }
        Kind::CircaOt { input, drop_bits, test_bits, .. } => {
            let ell = g.ring_bits.unwrap_or(61) as u32;
            for (dir, bytes) in circa_ot::flights(ell, circa_ot::width(*drop_bits, *test_bits), elems(g, *input)) {
                s.frame(dir, bytes, label::CIRCA_OVER_OT);
            }
        }
        Kind::Reveal => s.frame(ServerToClient, ELEM * elems(g, node.inputs[0]), label::REVEAL),
        Kind::Linear { .. } | Kind::Local | Kind::Client => {}
    }
}

fn offline(g: &Graph, step: &Step, sent: &mut Sent, s: &mut Script) {
    use Dir::*;
    let node = &g.nodes[step.node];
    let ell = g.ring_bits.unwrap_or(61) as u64;
    match &step.kind {
        Kind::Linear { offline: LinearOffline::Ot } => {
            let Some((batch, n_in, n_out)) = dense_dims(g, node) else { return };
            let (batch, n_in, n_out) = (batch as u64, n_in as u64, n_out as u64);
            let ell = u64::from(super::dense_ot_bits(g, step.node));
            s.ot_batch(batch * n_in * ell, false, label::DENSE_OT, sent);
            let per = (n_in * n_out * ell * (ell + 1) / 2).div_ceil(8);
            (0..batch).for_each(|_| s.frame(ServerToClient, per, label::DENSE));
        }
        Kind::Linear { offline: LinearOffline::He } => {
            let Some(l) = Layer::of(g, node) else { return };
            let up = l.tiling.input_cts() as u64 * (4 + l.params.request_ct_bytes());
            let down = l.tiling.output_cts() as u64 * (4 + l.params.response_ct_bytes());
            if sent.he_key(&l.params.key_set()) {
                s.frame(ClientToServer, l.params.public_key_bytes(), label::HE_PUBLIC_KEY);
            }
            for _ in 0..l.batch {
                s.frame(ClientToServer, up, label::HE_REQUEST);
                s.frame(ServerToClient, down, label::HE_RESPONSE);
            }
        }
        Kind::Activation { .. } | Kind::MaxPool { .. } => {
            step.gc_batches(g).iter().for_each(|b| s.gc_offline(b, sent));
        }
        Kind::Circa { input, .. } => {
            let n = elems(g, *input);
            s.gc_offline(&step.gc_batches(g)[0], sent);
            s.frame(ServerToClient, n.div_ceil(8), label::GC_DECODING);
            s.ot_batch(n * ell, false, label::PRODUCT_OT, sent);
            s.frame(ServerToClient, product_bytes(ell, n), label::PRODUCT);
            s.ot_batch(n, false, label::CIRCA_OT, sent);
        }
        Kind::ReluOt { input, shift, width, .. } => {
            let n = elems(g, *input);
            s.silent_batch(n * relu_ot::rots(*width as u32, *shift as u32), false, label::RELU_OT_OTS, sent);
            s.silent_batch(n * relu_ot::rots_reversed(*width as u32, *shift as u32), true, label::RELU_OT_OTS, sent);
        }
        Kind::MaxPoolOt { windows, width, .. } => {
            let n: u64 = relu_ot::max_levels(windows).iter().sum();
            if n > 0 {
                s.silent_batch(n * relu_ot::rots(*width as u32, 0), false, label::MAXPOOL_OT_OTS, sent);
                s.silent_batch(n * relu_ot::rots_reversed(*width as u32, 0), true, label::MAXPOOL_OT_OTS, sent);
            }
        }
        Kind::ClipOt { input, shift, .. } => {
            let n = elems(g, *input);
            s.silent_batch(n * clip_ot::rots(ell as u32, *shift as u32), false, label::CLIP_OT_OTS, sent);
            s.silent_batch(n * clip_ot::rots_reversed(ell as u32, *shift as u32), true, label::CLIP_OT_OTS, sent);
        }
        Kind::LeakyReluOt { input, shift, .. } => {
            let n = elems(g, *input);
            s.silent_batch(n * leaky_ot::rots(ell as u32, *shift as u32), false, label::LEAKY_OT_OTS, sent);
            s.silent_batch(n * leaky_ot::rots_reversed(ell as u32, *shift as u32), true, label::LEAKY_OT_OTS, sent);
        }
        Kind::TruncOt { input, shift } => {
            let n = elems(g, *input);
            s.silent_batch(n * trunc_ot::rots(ell as u32, *shift as u32), false, label::TRUNC_OT_OTS, sent);
            s.silent_batch(n * trunc_ot::ROTS_REVERSED, true, label::TRUNC_OT_OTS, sent);
        }
        Kind::CircaOt { input, drop_bits, test_bits, .. } => {
            let n = elems(g, *input);
            s.silent_batch(
                n * circa_ot::rots(circa_ot::width(*drop_bits, *test_bits)),
                false,
                label::CIRCA_OVER_OT_OTS,
                sent,
            );
            let w = circa_ot::width(*drop_bits, *test_bits);
            s.silent_batch(n * circa_ot::rots_reversed(w), true, label::CIRCA_OVER_OT_OTS, sent);
        }
        Kind::Poly => {
            let n = elems(g, node.inputs[0]);
            s.ot_batch(n * ell, false, label::PRODUCT_OT, sent);
            s.frame(ServerToClient, product_bytes(ell, n), label::PRODUCT);
            s.frame(ClientToServer, ELEM * n, label::POLY_MASKED);
        }
        Kind::Mul => {
            let n = elems(g, node.output);
            for _ in 0..2 {
                s.ot_batch(n * ell, false, label::PRODUCT_OT, sent);
                s.frame(ServerToClient, product_bytes(ell, n), label::PRODUCT);
            }
            s.frame(ClientToServer, 2 * ELEM * n, label::MUL_MASKED);
        }
        Kind::MatMul => {
            let (batch, m, k, n) = matmul_dims(g, node);
            // U_c·V_s row by row of U_c, then (U_s·V_c)ᵀ column by column of V_c.
            for (rows, cols) in [(m, n), (n, m)] {
                s.ot_batch(batch * rows * k * ell, false, label::MATMUL_OT, sent);
                let per = product_bytes(ell, k * cols);
                (0..batch * rows).for_each(|_| s.frame(ServerToClient, per, label::MATMUL_PRODUCT));
            }
            s.frame(ClientToServer, ELEM * batch * (m * k + k * n), label::MATMUL_MASKED);
        }
        Kind::Share { .. } | Kind::Reveal | Kind::Local | Kind::Client => {}
    }
}

/// Bytes the client keeps from the offline phase of `step` until its online phase (what a
/// preprocessing store would hold), predicted from the offline script: the garbled tables and
/// output decoding bits it receives (those frames' payloads, exact), its own input labels (16 B
/// per client input wire and instance, from the correlated OTs), and one ring element (8 B) per
/// element of each precomputed share: the output mask of a garbled step or of sharing the
/// input, the output share of a linear layer, Circa's mask, product share and OT pad (three,
/// plus its choice bits), a Beaver square pair (two), a product of two shared values (six: the
/// triple, the client's two openings and its output mask), a ReLU over OT (its output mask, and
/// its OTs hashed down, [`relu_ot::client_bytes`]: exact; a MaxPool over OT the same per level of
/// its max tree, plus per ReLU its difference share and mask, [`relu_ot::maxpool_client_bytes`];
/// a Clip over OT both ReLUs' and the first one's mask, [`clip_ot::client_bytes`]; Circa over OT its mask and
/// its OTs hashed down, [`circa_ot::client_bytes`]; a truncation over OT its mask and its OTs
/// hashed down, [`trunc_ot::client_bytes`]; a LeakyReLU over OT each part's, [`leaky_ot::client_bytes`]).
/// Local steps' shares are not counted (they are recomputed from those).
pub fn client_storage(g: &Graph, step: &Step) -> u64 {
    let received: u64 = script(g, step, Phase::Offline, &mut Sent::all())
        .iter()
        .filter(|m| m.dir == Dir::ServerToClient && matches!(m.label, label::GC_TABLES | label::GC_DECODING))
        .map(|m| m.bytes)
        .sum();
    let labels: u64 = step.gc_batches(g).iter().map(|b| LABEL * b.client_wires() * b.instances as u64).sum();
    let out = elems(g, g.nodes[step.node].output);
    let masks = match &step.kind {
        Kind::Share { value } => ELEM * elems(g, *value),
        Kind::Linear { .. } | Kind::Activation { .. } | Kind::MaxPool { .. } => ELEM * out,
        Kind::Circa { input, .. } => 3 * ELEM * elems(g, *input) + elems(g, *input).div_ceil(8),
        Kind::Poly => 2 * ELEM * out,
        Kind::Mul => 6 * ELEM * out,
        Kind::MatMul => {
            let (batch, m, k, n) = matmul_dims(g, &g.nodes[step.node]);
            ELEM * batch * (2 * (m * k + k * n) + 2 * m * n)
        }
        Kind::ReluOt { input, shift, width, out: ring } => {
            ELEM * out + relu_ot::client_bytes(*ring as u32, *width as u32, *shift as u32, elems(g, *input))
        }
        Kind::MaxPoolOt { windows, width, .. } => {
            ELEM * out + relu_ot::maxpool_client_bytes(g.ring_bits.unwrap_or(61) as u32, *width as u32, windows)
        }
        Kind::ClipOt { input, shift, .. } => {
            let ell = g.ring_bits.unwrap_or(61) as u32;
            ELEM * out + clip_ot::client_bytes(ell, *shift as u32, elems(g, *input))
        }
        Kind::LeakyReluOt { input, shift, .. } => {
            let ell = g.ring_bits.unwrap_or(61) as u32;
            ELEM * out + leaky_ot::client_bytes(ell, *shift as u32, elems(g, *input))
        }
        Kind::TruncOt { input, shift } => {
            let ell = g.ring_bits.unwrap_or(61) as u32;
            ELEM * out + trunc_ot::client_bytes(ell, *shift as u32, elems(g, *input))
        }
        Kind::CircaOt { input, drop_bits, test_bits, .. } => {
            let ell = g.ring_bits.unwrap_or(61) as u32;
            ELEM * out + circa_ot::client_bytes(ell, circa_ot::width(*drop_bits, *test_bits), elems(g, *input))
        }
        Kind::Local | Kind::Reveal | Kind::Client => 0,
    };
    received + labels + masks
}
