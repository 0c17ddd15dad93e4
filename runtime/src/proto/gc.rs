//! A garbled-circuit layer: `n` instances of one circuit (exact ReLU, MaxPool window, Circa's
//! sign test) between the server (garbler) and the client (evaluator), docs/protocols.md's Delphi
//! flow with the output decoded only by the server.
//!
//! Offline: the server draws a fresh Δ and a fresh hash key; the client's input labels come from
//! correlated OT with correlation Δ (the OT's `m0` is the wire's zero-label), the server's from
//! its CSPRNG; the server garbles and streams the tables in chunks of [`CHUNK`] instances (one
//! frame each), the hash key ahead of the first chunk's tables, garbling chunk `k + 1` on the
//! compute pool while chunk `k` is sent.
//! Online: the server sends the labels of its input bits, the client evaluates and returns the
//! output colour bits (packed), the server decodes.
//!
//! Wire format (all counted by the meter, so the cost model can predict it exactly):
//! - offline, server → client: `⌈n / CHUNK⌉` frames of [`GcSpec::table_bytes`] per instance
//!   (half-gates `32·ands`, three halves `⌈197·ands/8⌉`: `Tables::to_bytes` per instance), the first
//!   with the 16-byte hash key in front (no frame when `n = 0`);
//! - online, server → client: one frame of `16·server_wires` bytes per instance;
//! - online, client → server: one frame of `⌈n·outputs / 8⌉` bytes.

use std::sync::Arc;

use crate::exec::ExecError;
use crate::exec::step::{ClientIo, Csprng, Cx, Protocol, ServerIo, StepFuture, Values, take};
use crate::proto::mul::random_ring;
use crate::store::{Slot, Store};
use rand::{CryptoRng, RngCore};
use veil_ir::circuit::{Circuit, to_bits};
use veil_ir::schedule::ShiftedRead;
use veil_ir::schedule::script::label;
use veil_ir::{Garbling, ValueId};

use crate::garble::three_halves::Tables;
use crate::garble::{Batch, Block, Delta, HashKey, Tmmo, colours, label, random_labels};
use crate::net::{Channel, NetError};
use crate::ot::{OtReceive, OtSend};
use crate::wire::{blocks_to_bytes, bytes_to_blocks, pack_bits, unpack_bits};

/// Instances per table frame: bounds the memory of a garbling step.
pub use veil_ir::schedule::GC_CHUNK as CHUNK;

/// A circuit and which of its input groups the server provides (the rest are the client's).
#[derive(Debug, Clone, Copy)]
pub struct GcSpec<'c> {
    /// The circuit garbled per instance (one per element or window).
    pub circuit: &'c Circuit,
    /// Per input group of `circuit`, in order: `true` when the server (garbler) provides it.
    pub server_groups: &'c [bool],
    /// The plan's garbling scheme.
    pub garbling: Garbling,
}

impl GcSpec<'_> {
    fn wires(&self, server: bool) -> usize {
        self.circuit
            .inputs
            .iter()
            .zip(self.server_groups)
            .filter(|(_, s)| **s == server)
            .map(|(w, _)| *w as usize)
            .sum()
    }

    /// Input wires per instance the server provides (labels it sends directly).
    pub fn server_wires(&self) -> usize {
        self.wires(true)
    }

    /// Input wires per instance the client provides (labels it gets by OT).
    pub fn client_wires(&self) -> usize {
        self.wires(false)
    }

    /// Bytes of garbled tables per instance ([`Garbling::table_bytes`]).
    pub fn table_bytes(&self) -> usize {
        self.garbling.table_bytes(self.circuit.and_count()) as usize
    }

    /// Input bits of one party for one instance, groups in order, LSB first.
    fn bits(&self, server: bool, values: &[u64]) -> Vec<bool> {
        let widths = self.circuit.inputs.iter().zip(self.server_groups).filter(|(_, s)| **s == server);
        assert_eq!(values.len(), widths.clone().count(), "one value per input group of the party");
        values.iter().zip(widths).flat_map(|(&v, (&w, _))| to_bits(v, w)).collect()
    }

    /// Interleaves the two parties' labels of one instance into circuit input order.
    fn merge(&self, server: &[Block], client: &[Block]) -> Vec<Block> {
        let (mut s, mut c) = (server.iter(), client.iter());
        let mut out = Vec::with_capacity(server.len() + client.len());
        for (&w, &is_server) in self.circuit.inputs.iter().zip(self.server_groups) {
            let src = if is_server { &mut s } else { &mut c };
            out.extend(src.by_ref().take(w as usize));
        }
        out
    }
}

/// What the server keeps between the phases.
pub struct GarblerState {
    delta: Delta,
    /// Zero-labels of the server's input wires, instance-major.
    server_zero: Vec<Block>,
    /// Decoding bits, instance-major.
    decode: Vec<bool>,
    n: usize,
}

impl std::fmt::Debug for GarblerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GarblerState {{ instances: {}, labels: <redacted> }}", self.n)
    }
}

/// What the client keeps between the phases.
pub struct EvaluatorState {
    /// The garbling's hash key (public; all zero when there is no instance to evaluate).
    key: HashKey,
    material: Material,
    n: usize,
    /// Output decoding bits, when the client decodes ([`recv_decoding`]).
    decode: Option<Vec<bool>>,
}

impl std::fmt::Debug for EvaluatorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EvaluatorState {{ instances: {}, labels: <redacted> }}", self.n)
    }
}

/// Where the client keeps a batch's tables and input labels between the phases.
enum Material {
    /// In memory: the tables and the client's input labels.
    Memory { tables: MemoryTables, client_labels: Vec<Block> },
    /// In the preprocessing store, one record per chunk of [`CHUNK`] instances: chunk `c`'s
    /// client labels are record `c`, its tables record `chunks + c`.
    Stored { store: Arc<Store>, slot: Slot },
}

/// A batch's tables in the client's memory, per scheme.
enum MemoryTables {
    /// Half-gates: two ciphertexts per AND, instance-major.
    HalfGates(Vec<[Block; 2]>),
    /// Three halves: one [`Tables`] per instance.
    ThreeHalves(Vec<Tables>),
}

/// Server, offline: garbles `n` instances under a fresh hash key with AND-gate tweaks from
/// `gate_offset` (the caller advances it by `n · ands`, so tweaks do not repeat in a session
/// either).
pub async fn garble_offline<R: RngCore + CryptoRng + Send>(
    ch: &mut Channel,
    ot: &mut impl OtSend,
    spec: GcSpec<'_>,
    n: usize,
    gate_offset: u64,
    rng: &mut R,
) -> Result<GarblerState, NetError> {
    let key = HashKey::random(rng);
    let h = Arc::new(Tmmo::new(key));
    let delta = Delta::random(rng);
    let (sw, cw) = (spec.server_wires(), spec.client_wires());
    let client_zero = ot.correlated(label::GC_INPUT_OT, delta.block(), n * cw).await?;
    let server_zero = random_labels(rng, n * sw);
    let circuit = Arc::new(spec.circuit.clone());
    let ands = spec.circuit.and_count() as u64;
    let scheme = spec.garbling;
    // Chunk `start`'s garbling, started on the compute pool (`seed`: three halves' random bits).
    let start_chunk = |start: usize, seed: [u8; 32]| {
        let inputs: Vec<Vec<Block>> = (start..(start + CHUNK).min(n))
            .map(|i| spec.merge(&server_zero[i * sw..(i + 1) * sw], &client_zero[i * cw..(i + 1) * cw]))
            .collect();
        let (c, h, offset) = (circuit.clone(), h.clone(), gate_offset + start as u64 * ands);
        let head = (start == 0).then_some(key);
        crate::compute_spawn(move || garble_chunk(scheme, &c, &h, delta, &inputs, offset, head, seed))
    };
    let mut decode = Vec::with_capacity(n * spec.circuit.outputs.len());
    // Chunk k + 1 garbles while chunk k is sent.
    // Three halves' random bits: a fresh seed per chunk from the server's CSPRNG.
    let seed = |rng: &mut R| {
        let mut s = [0u8; 32];
        if scheme == Garbling::ThreeHalves {
            rng.fill_bytes(&mut s);
        }
        s
    };
    let mut next = (n > 0).then(|| start_chunk(0, seed(rng)));
    let mut start = 0;
    while let Some(job) = next.take() {
        let (bytes, chunk_decode) = job.await;
        start += CHUNK;
        if start < n {
            next = Some(start_chunk(start, seed(rng)));
        }
        decode.extend(chunk_decode);
        ch.send(label::GC_TABLES, &bytes).await?;
    }
    Ok(GarblerState { delta, server_zero, decode, n })
}

/// One chunk of instances garbled under `scheme` (zero-labels `inputs`, instance 0 at gate
/// offset `offset`; three halves' random bits from `seed`): its table frame, with the hash key
/// in front when `head` is given, and its decoding bits.
#[allow(clippy::too_many_arguments)]
fn garble_chunk(
    scheme: Garbling,
    circuit: &Circuit,
    h: &Tmmo,
    delta: Delta,
    inputs: &[Vec<Block>],
    offset: u64,
    head: Option<HashKey>,
    seed: [u8; 32],
) -> (Vec<u8>, Vec<bool>) {
    let batch = Batch::new(circuit, offset);
    let per = scheme.table_bytes(circuit.and_count()) as usize;
    let mut bytes = Vec::with_capacity(HashKey::BYTES + inputs.len() * per);
    if let Some(key) = head {
        bytes.extend_from_slice(&key.to_bytes());
    }
    let mut decode = Vec::with_capacity(inputs.len() * circuit.outputs.len());
    match scheme {
        Garbling::HalfGates => {
            for g in batch.garble(h, delta, inputs) {
                bytes.extend(blocks_to_bytes(g.tables.iter().flatten().copied()));
                decode.extend(g.decode);
            }
        }
        Garbling::ThreeHalves => {
            for g in batch.garble_three_halves(h, delta, inputs, seed) {
                bytes.extend(g.tables.to_bytes());
                decode.extend(g.decode);
            }
        }
    }
    (bytes, decode)
}

/// The three-halves tables of `count` instances from a frame or record of exactly `count`
/// times [`GcSpec::table_bytes`] (a length that does not fit is the protocol error of `ch`).
fn three_halves_tables(ch: &Channel, spec: GcSpec<'_>, bytes: &[u8], count: usize) -> Result<Vec<Tables>, NetError> {
    let (per, ands) = (spec.table_bytes(), spec.circuit.and_count());
    (0..count)
        .map(|j| {
            Tables::from_bytes(bytes.get(j * per..(j + 1) * per).unwrap_or(&[]), ands)
                .map_err(|e| NetError::Malformed { step: ch.meter().locate(label::GC_TABLES), reason: e.to_string() })
        })
        .collect()
}

/// Client, offline: receives the tables and its input labels for `client_inputs` (per
/// instance, one value per client input group), and keeps them in memory.
pub async fn evaluate_offline(
    ch: &mut Channel,
    ot: &mut impl OtReceive,
    spec: GcSpec<'_>,
    client_inputs: &[Vec<u64>],
) -> Result<EvaluatorState, ExecError> {
    evaluate_offline_to(ch, ot, spec, client_inputs, None).await
}

/// [`evaluate_offline`], with the labels and each table frame written to `store`'s `slot` as
/// they arrive when `store` is given (and there is an instance), instead of kept in memory.
pub async fn evaluate_offline_to(
    ch: &mut Channel,
    ot: &mut impl OtReceive,
    spec: GcSpec<'_>,
    client_inputs: &[Vec<u64>],
    store: Option<(&Arc<Store>, Slot)>,
) -> Result<EvaluatorState, ExecError> {
    let n = client_inputs.len();
    let bits: Vec<bool> = client_inputs.iter().flat_map(|v| spec.bits(false, v)).collect();
    let mut client_labels = ot.correlated(label::GC_INPUT_OT, &bits).await?;
    drop(bits);
    let store = store.filter(|_| n > 0);
    let mut writer = match store {
        Some((s, slot)) => {
            let mut w = s.writer(slot)?;
            let cw = spec.client_wires();
            for start in (0..n).step_by(CHUNK) {
                let end = (start + CHUNK).min(n);
                w.record(&blocks_to_bytes(client_labels[start * cw..end * cw].iter().copied()))?;
            }
            client_labels = Vec::new();
            Some(w)
        }
        None => None,
    };
    let mut tables = match (spec.garbling, writer.is_some()) {
        (_, true) => MemoryTables::HalfGates(Vec::new()),
        (Garbling::HalfGates, false) => MemoryTables::HalfGates(Vec::with_capacity(n * spec.circuit.and_count())),
        (Garbling::ThreeHalves, false) => MemoryTables::ThreeHalves(Vec::with_capacity(n)),
    };
    let mut key = HashKey::from_bytes([0; 16]);
    for start in (0..n).step_by(CHUNK) {
        let head = if start == 0 { HashKey::BYTES } else { 0 };
        let count = (start + CHUNK).min(n) - start;
        let len = head + count * spec.table_bytes();
        let bytes = ch.recv_exact(label::GC_TABLES, len).await?;
        let (k, rest) = bytes.split_at(head);
        // Only the first frame carries the key.
        if let Ok(k) = <[u8; 16]>::try_from(k) {
            key = HashKey::from_bytes(k);
        }
        match (&mut writer, &mut tables) {
            (Some(w), _) => w.record(rest)?,
            (None, MemoryTables::HalfGates(t)) => t.extend(bytes_to_blocks(rest).chunks_exact(2).map(|p| [p[0], p[1]])),
            (None, MemoryTables::ThreeHalves(t)) => t.extend(three_halves_tables(ch, spec, rest, count)?),
        }
    }
    let material = match (writer, store) {
        (Some(w), Some((s, slot))) => {
            w.finish()?;
            Material::Stored { store: s.clone(), slot }
        }
        _ => Material::Memory { tables, client_labels },
    };
    Ok(EvaluatorState { key, material, n, decode: None })
}

/// Server, online: sends the labels of its inputs (per instance, one value per server input
/// group).
pub async fn send_labels(
    ch: &mut Channel,
    spec: GcSpec<'_>,
    state: &GarblerState,
    server_inputs: &[Vec<u64>],
) -> Result<(), NetError> {
    assert_eq!(server_inputs.len(), state.n, "one input per instance");
    let sw = spec.server_wires();
    let labels = server_inputs.iter().enumerate().flat_map(|(i, v)| {
        let zero = &state.server_zero[i * sw..(i + 1) * sw];
        spec.bits(true, v).into_iter().zip(zero).map(|(b, &z)| label(z, b, state.delta)).collect::<Vec<_>>()
    });
    ch.send(label::GC_SERVER_LABELS, &blocks_to_bytes(labels)).await
}

/// Server, online: sends its input labels, receives the colour bits, and returns each
/// instance's decoded output.
pub async fn garble_online(
    ch: &mut Channel,
    spec: GcSpec<'_>,
    state: GarblerState,
    server_inputs: &[Vec<u64>],
) -> Result<Vec<u64>, NetError> {
    send_labels(ch, spec, &state, server_inputs).await?;
    let outs = spec.circuit.outputs.len();
    let packed = ch.recv_exact(label::GC_COLOURS, (state.n * outs).div_ceil(8)).await?;
    Ok((0..state.n)
        .map(|i| {
            (0..outs).fold(0u64, |acc, k| {
                let j = i * outs + k;
                let bit = (packed[j / 8] >> (j % 8)) & 1 == 1;
                acc | (u64::from(bit ^ state.decode[j]) << k)
            })
        })
        .collect())
}

/// Server, offline: hands the output decoding bits to the client, for circuits whose output
/// (masked by a server input) the client decodes itself.
pub async fn send_decoding(ch: &mut Channel, state: &GarblerState) -> Result<(), NetError> {
    ch.send(label::GC_DECODING, &pack_bits(&state.decode)).await
}

/// Client, offline: receives the decoding bits of [`send_decoding`].
pub async fn recv_decoding(ch: &mut Channel, state: &mut EvaluatorState, outputs: usize) -> Result<(), NetError> {
    let n = state.n * outputs;
    let packed = ch.recv_exact(label::GC_DECODING, n.div_ceil(8)).await?;
    state.decode = Some(unpack_bits(&packed, n));
    Ok(())
}

/// Client, online: receives the server's labels and evaluates every instance; returns the
/// output colour bits, instance-major. Stored material is read back one chunk at a time (and
/// its file is gone from the store's directory once opened).
pub async fn evaluate(
    ch: &mut Channel,
    spec: GcSpec<'_>,
    state: &EvaluatorState,
    gate_offset: u64,
) -> Result<Vec<bool>, ExecError> {
    let (sw, cw, n) = (spec.server_wires(), spec.client_wires(), state.n);
    let bytes = ch.recv_exact(label::GC_SERVER_LABELS, n * sw * 16).await?;
    let server_labels = bytes_to_blocks(&bytes);
    drop(bytes);
    let ands = spec.circuit.and_count();
    let h = Tmmo::new(state.key);
    let batch = Batch::new(spec.circuit, gate_offset);
    let (store, slot) = match &state.material {
        Material::Memory { tables, client_labels } => {
            let inputs =
                |i: usize| spec.merge(&server_labels[i * sw..(i + 1) * sw], &client_labels[i * cw..(i + 1) * cw]);
            let out = match tables {
                MemoryTables::HalfGates(tables) => {
                    let instances: Vec<(&[[Block; 2]], Vec<Block>)> =
                        (0..n).map(|i| (&tables[i * ands..(i + 1) * ands], inputs(i))).collect();
                    crate::compute(|| batch.evaluate(&h, &instances))
                }
                MemoryTables::ThreeHalves(tables) => {
                    let instances: Vec<(&Tables, Vec<Block>)> = (0..n).map(|i| (&tables[i], inputs(i))).collect();
                    crate::compute(|| batch.evaluate_three_halves(&h, &instances))
                }
            };
            return Ok(out.iter().flat_map(|o| colours(o)).collect());
        }
        Material::Stored { store, slot } => (store, *slot),
    };
    let file = store.open(slot)?;
    let chunks = n.div_ceil(CHUNK);
    let mut out = Vec::with_capacity(n * spec.circuit.outputs.len());
    file.read_ahead(0);
    file.read_ahead(chunks);
    // One chunk's buffers, reused: no fresh pages per chunk.
    let (mut buf, mut labels, mut tables) = (Vec::new(), Vec::new(), Vec::<[Block; 2]>::new());
    let half = |b: &[u8]| Block::from_bytes(b.try_into().expect("16 bytes"));
    for (c, start) in (0..n).step_by(CHUNK).enumerate() {
        let end = (start + CHUNK).min(n);
        // The next chunk's reads start now and overlap this chunk's evaluation.
        if c + 1 < chunks {
            file.read_ahead(c + 1);
            file.read_ahead(chunks + c + 1);
        }
        file.record_into(c, (end - start) * cw * 16, &mut buf)?;
        labels.clear();
        labels.extend(buf.chunks_exact(16).map(half));
        file.record_into(chunks + c, (end - start) * spec.table_bytes(), &mut buf)?;
        let inputs = |j: usize| {
            let i = start + j;
            spec.merge(&server_labels[i * sw..(i + 1) * sw], &labels[j * cw..(j + 1) * cw])
        };
        let chunk_batch = Batch::new(spec.circuit, batch.offset(start));
        let o = match spec.garbling {
            Garbling::HalfGates => {
                tables.clear();
                tables.extend(buf.chunks_exact(32).map(|p| [half(&p[..16]), half(&p[16..])]));
                let instances: Vec<(&[[Block; 2]], Vec<Block>)> =
                    (0..end - start).map(|j| (&tables[j * ands..(j + 1) * ands], inputs(j))).collect();
                crate::compute(|| chunk_batch.evaluate(&h, &instances))
            }
            Garbling::ThreeHalves => {
                let three = three_halves_tables(ch, spec, &buf, end - start)?;
                let instances: Vec<(&Tables, Vec<Block>)> = (0..end - start).map(|j| (&three[j], inputs(j))).collect();
                crate::compute(|| chunk_batch.evaluate_three_halves(&h, &instances))
            }
        };
        out.extend(o.iter().flat_map(|o| colours(o)));
    }
    Ok(out)
}

/// Client, online: evaluates and returns the colours to the server, which decodes.
pub async fn evaluate_online(
    ch: &mut Channel,
    spec: GcSpec<'_>,
    state: EvaluatorState,
    gate_offset: u64,
) -> Result<(), ExecError> {
    let bits = evaluate(ch, spec, &state, gate_offset).await?;
    Ok(ch.send(label::GC_COLOURS, &pack_bits(&bits)).await?)
}

/// Client, online: evaluates and decodes itself with the bits of [`recv_decoding`].
pub async fn evaluate_decode(
    ch: &mut Channel,
    spec: GcSpec<'_>,
    state: &EvaluatorState,
    gate_offset: u64,
) -> Result<Vec<bool>, ExecError> {
    let colours = evaluate(ch, spec, state, gate_offset).await?;
    let decode = state.decode.as_ref().expect("recv_decoding ran offline");
    Ok(colours.iter().zip(decode).map(|(c, d)| c ^ d).collect())
}

/// A garbled-circuit layer as a plan step: exact element-wise activations
/// ([`veil_ir::schedule::Kind::Activation`], one instance per element) and MaxPool
/// ([`veil_ir::schedule::Kind::MaxPool`], one instance per window, one batch per window size).
/// Instance `w` computes output element `w` from the input elements `windows[w]` (the server's
/// and the client's shares of each) and the client's output mask.
pub struct GcLayer {
    input: ValueId,
    windows: Vec<Vec<usize>>,
    /// Per batch of [`veil_ir::schedule::Step::gc_batches`], the windows it evaluates, in order.
    batches: Vec<Vec<usize>>,
    /// How each party shifts its share first (after a stochastic truncation), if it does.
    read: Option<ShiftedRead>,
    server: Option<Vec<GarblerState>>,
    client: Option<Vec<EvaluatorState>>,
}

impl std::fmt::Debug for GcLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GcLayer {{ windows: {}, batches: {}, states: <redacted> }}", self.windows.len(), self.batches.len())
    }
}

impl GcLayer {
    /// An element-wise layer on the `n` elements of `input`.
    pub fn elementwise(input: ValueId, n: usize) -> GcLayer {
        GcLayer::new(input, (0..n).map(|j| vec![j]).collect(), vec![(0..n).collect()])
    }

    /// A window layer: one batch per window size in `sizes` (the order of the step's circuits).
    pub fn windows(input: ValueId, windows: Vec<Vec<usize>>, sizes: impl IntoIterator<Item = usize>) -> GcLayer {
        let batches =
            sizes.into_iter().map(|k| (0..windows.len()).filter(|&w| windows[w].len() == k).collect()).collect();
        GcLayer::new(input, windows, batches)
    }

    fn new(input: ValueId, windows: Vec<Vec<usize>>, batches: Vec<Vec<usize>>) -> GcLayer {
        GcLayer { input, windows, batches, read: None, server: None, client: None }
    }

    /// The layer with its parties' shares shifted first as `read` says (`None`: as they are).
    pub fn reading(self, read: Option<ShiftedRead>) -> GcLayer {
        GcLayer { read, ..self }
    }

    /// Per instance of `batch`, the party's (the client's if `client`) shares of its window,
    /// shifted if the layer reads them so, with `extra` appended per window.
    fn inputs(&self, batch: &[usize], share: &[u64], client: bool, extra: Option<&[u64]>) -> Vec<Vec<u64>> {
        let read = |x: u64| self.read.map_or(x, |r| r.share(x, client));
        batch
            .iter()
            .map(|&w| self.windows[w].iter().map(|&t| read(share[t])).chain(extra.map(|e| e[w])).collect())
            .collect()
    }
}

/// The server's extra input of a rounding with a zero point (`Op::Round`'s `zero_point`): per
/// element, the parity of the zero point it broadcasts to (a weight: only the server has it).
fn zero_point_parity(g: &veil_ir::Graph, node: &veil_ir::Node) -> Option<Vec<u64>> {
    let veil_ir::Op::Round { zero_point: Some(z), .. } = node.op else { return None };
    let (c, shape) = (&g.consts[z], &g.values[node.inputs[0]].ty.shape);
    let odd = veil_ir::eval::ring_ops::round::zero_point_parities(&c.shape, &c.qdata, shape);
    Some(odd.into_iter().map(u64::from).collect())
}

impl Protocol for GcLayer {
    fn server_offline<'a>(
        &'a mut self,
        io: &'a mut ServerIo,
        cx: Cx<'a>,
        mut rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        Box::pin(async move {
            let mut states = Vec::new();
            let mut off = cx.gate_offset;
            for b in cx.step.gc_batches(cx.g) {
                let spec = GcSpec { circuit: b.circuit, server_groups: &b.server_groups, garbling: b.garbling };
                states.push(garble_offline(&mut io.ch, &mut io.ot, spec, b.instances, off, &mut rng).await?);
                off += b.and_gates();
            }
            self.server = Some(states);
            Ok(())
        })
    }

    fn server_online<'a>(
        &'a mut self,
        io: &'a mut ServerIo,
        cx: Cx<'a>,
        values: &'a mut Values,
        _rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        Box::pin(async move {
            let states = take(&mut self.server);
            let s = values.share(self.input);
            let parity = zero_point_parity(cx.g, cx.node);
            let mut out = vec![0u64; self.windows.len()];
            for ((b, st), batch) in cx.step.gc_batches(cx.g).iter().zip(states).zip(&self.batches) {
                let spec = GcSpec { circuit: b.circuit, server_groups: &b.server_groups, garbling: b.garbling };
                let o = garble_online(&mut io.ch, spec, st, &self.inputs(batch, s, false, parity.as_deref())).await?;
                for (&w, v) in batch.iter().zip(o) {
                    out[w] = v;
                }
            }
            values.set_share(cx.node.output, out);
            Ok(())
        })
    }

    fn client_offline<'a>(
        &'a mut self,
        io: &'a mut ClientIo,
        cx: Cx<'a>,
        values: &'a mut Values,
        rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        Box::pin(async move {
            let r = random_ring(cx.ring, self.windows.len(), rng);
            let c = values.share(self.input);
            let mut states = Vec::new();
            for (part, (b, batch)) in cx.step.gc_batches(cx.g).iter().zip(&self.batches).enumerate() {
                let spec = GcSpec { circuit: b.circuit, server_groups: &b.server_groups, garbling: b.garbling };
                let ins = self.inputs(batch, c, true, Some(&r));
                let store = io.store.as_ref().map(|s| (s, Slot { step: cx.index, part }));
                states.push(evaluate_offline_to(&mut io.ch, &mut io.ot, spec, &ins, store).await?);
            }
            self.client = Some(states);
            values.set_share(cx.node.output, r);
            Ok(())
        })
    }

    fn client_online<'a>(&'a mut self, io: &'a mut ClientIo, cx: Cx<'a>, _values: &'a mut Values) -> StepFuture<'a> {
        Box::pin(async move {
            let mut off = cx.gate_offset;
            for (b, st) in cx.step.gc_batches(cx.g).iter().zip(take(&mut self.client)) {
                let spec = GcSpec { circuit: b.circuit, server_groups: &b.server_groups, garbling: b.garbling };
                evaluate_online(&mut io.ch, spec, st, off).await?;
                off += b.and_gates();
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::memory;
    use crate::ot::ideal;
    use rand::{Rng, SeedableRng};
    use std::time::Duration;
    use veil_ir::circuit::{max_trunc_mask, relu_trunc_mask, sign_test};

    /// `n` instances of `circuit` between the two parties in memory (ideal OT): every output
    /// decodes to the plaintext circuit's, and each direction carries exactly the documented
    /// frames (the ideal OT moves no bytes).
    async fn run(circuit: Circuit, server_groups: Vec<bool>, n: usize, edge: &[u64]) {
        run_with(circuit, server_groups, n, edge, None, Garbling::HalfGates).await
    }

    /// [`run`] under `garbling`, the client's material in `store` when given.
    async fn run_with(
        circuit: Circuit,
        server_groups: Vec<bool>,
        n: usize,
        edge: &[u64],
        store: Option<&Arc<Store>>,
        garbling: Garbling,
    ) {
        let (mut cc, mut sc) = memory::pair(Duration::from_secs(20));
        let (mut ot_s, mut ot_r) = ideal::pair(n as u64);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        let groups = circuit.inputs.clone();
        let inputs: Vec<Vec<u64>> = (0..n)
            .map(|i| {
                groups
                    .iter()
                    .map(|&w| {
                        let mask = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
                        let v = if i < edge.len() { edge[i] } else { rng.random::<u64>() };
                        v & mask
                    })
                    .collect()
            })
            .collect();
        let split = |server: bool| -> Vec<Vec<u64>> {
            inputs
                .iter()
                .map(|v| v.iter().zip(&server_groups).filter(|(_, s)| **s == server).map(|(x, _)| *x).collect())
                .collect()
        };
        let (sin, cin) = (split(true), split(false));
        let spec = GcSpec { circuit: &circuit, server_groups: &server_groups, garbling };
        let client = async {
            let slot = Slot { step: 0, part: 0 };
            let st = evaluate_offline_to(&mut cc, &mut ot_r, spec, &cin, store.map(|s| (s, slot))).await.unwrap();
            assert_eq!(matches!(st.material, Material::Stored { .. }), store.is_some());
            evaluate_online(&mut cc, spec, st, 1000).await.unwrap();
        };
        let server = async {
            let st = garble_offline(&mut sc, &mut ot_s, spec, n, 1000, &mut rng).await.unwrap();
            garble_online(&mut sc, spec, st, &sin).await.unwrap()
        };
        let ((), out) = tokio::join!(client, server);
        for (i, v) in inputs.iter().enumerate() {
            assert_eq!(out[i], circuit.eval_u64(v), "instance {i} inputs {v:?}");
        }
        // Exact wire sizes: tables offline, labels down and colours up online.
        let t = sc.meter().snapshot();
        let tables = (n.div_ceil(CHUNK) * 4 + HashKey::BYTES + n * spec.table_bytes()) as u64;
        assert_eq!(t.bytes_sent, tables + (4 + 16 * n * spec.server_wires()) as u64, "{t:?}");
        assert_eq!(t.bytes_received, (4 + (n * circuit.outputs.len()).div_ceil(8)) as u64, "{t:?}");
        assert_eq!(cc.meter().snapshot().bytes_received, t.bytes_sent);
    }

    #[tokio::test]
    async fn exact_relu_maxpool_and_sign_test_layers_decode_to_the_plain_circuit() {
        let l = 61u32;
        let top = 1u64 << (l - 1);
        let edge = [0, 1, (1 << l) - 1, top, top - 1, top + 1];
        run(relu_trunc_mask(l, 12), vec![true, false, false], 5000, &edge).await;
        run(max_trunc_mask(4, l, 12), vec![true, true, true, true, false, false, false, false, false], 300, &edge)
            .await;
        run(sign_test(42), vec![false, true, false], 700, &edge).await;
    }

    /// Two chunks and a partial third through the store: each chunk evaluates under its own
    /// tweaks and labels (a chunk read at the layer's first offset would decode wrongly).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stored_layer_evaluates_chunk_by_chunk() {
        for garbling in [Garbling::HalfGates, Garbling::ThreeHalves] {
            let dir = tempfile::tempdir().unwrap();
            let store =
                Arc::new(Store::create(dir.path(), &[1; 32], &mut rand_chacha::ChaCha20Rng::seed_from_u64(5)).unwrap());
            run_with(sign_test(20), vec![false, true, false], 2 * CHUNK + 7, &[0, 1], Some(&store), garbling).await;
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "opened online, so removed");
        }
    }

    /// Three halves in memory: every output decodes, and the tables are `⌈197·ands/8⌉` bytes per
    /// instance on the wire (checked in [`run_with`] against the meter).
    #[tokio::test]
    async fn three_halves_layers_decode_to_the_plain_circuit() {
        let l = 61u32;
        let top = 1u64 << (l - 1);
        let edge = [0, 1, (1 << l) - 1, top, top - 1, top + 1];
        let relu = relu_trunc_mask(l, 12);
        let spec = GcSpec { circuit: &relu, server_groups: &[true, false, false], garbling: Garbling::ThreeHalves };
        assert_eq!(spec.table_bytes(), (197 * relu.and_count()).div_ceil(8));
        run_with(relu.clone(), vec![true, false, false], 600, &edge, None, Garbling::ThreeHalves).await;
        let pool = max_trunc_mask(4, l, 12);
        let groups = vec![true, true, true, true, false, false, false, false, false];
        run_with(pool, groups, 40, &edge, None, Garbling::ThreeHalves).await;
    }

    /// A peer whose table frame is short gets the protocol error naming the step, no panic.
    #[tokio::test]
    async fn a_short_three_halves_table_frame_is_a_readable_error() {
        let (mut cc, mut sc) = memory::pair(Duration::from_secs(20));
        let (mut ot_s, mut ot_r) = ideal::pair(1);
        let c = sign_test(20);
        let spec = GcSpec { circuit: &c, server_groups: &[false, true, false], garbling: Garbling::ThreeHalves };
        let inputs = [vec![3, 0]];
        let client = evaluate_offline(&mut cc, &mut ot_r, spec, &inputs);
        let server = async {
            ot_s.correlated(label::GC_INPUT_OT, Block::from_bytes([1; 16]), spec.client_wires()).await.unwrap();
            let mut frame = HashKey::from_bytes([0; 16]).to_bytes().to_vec();
            frame.extend(vec![0u8; spec.table_bytes() - 1]);
            sc.send(label::GC_TABLES, &frame).await.unwrap();
        };
        let (res, ()) = tokio::join!(client, server);
        let e = res.unwrap_err().to_string();
        assert!(e.contains(label::GC_TABLES) && e.contains("expected"), "{e}");
    }
}
