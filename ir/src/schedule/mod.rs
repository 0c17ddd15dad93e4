//! The plan as a list of protocol steps, computed identically by both parties (and by the
//! compiler's cost model) from the public plan: which nodes run where, which exact truncation is
//! fused into which circuit, which party provides each input group of each garbled circuit, and
//! ([`script`]) every message each step exchanges (docs/protocols.md describes the flows).

pub mod circa_ot;
pub mod clip_ot;
pub mod demand;
pub mod leaky_ot;
pub mod relu_ot;
pub mod script;
pub mod trunc_ot;

use crate::ElemType;
use crate::circuit::{
    Circuit, clip_bounds_fit, clip_trunc_mask_narrow, exp2_trunc_mask, float_grid_fits, float_grid_trunc_mask_narrow,
    leaky_relu_trunc_mask_narrow, max_trunc_mask_narrow, pl_gelu_trunc_mask, pl_sigmoid_trunc_mask,
    reciprocal_trunc_mask, relu_trunc_mask_narrow, round_trunc_mask_narrow, round_width, rsqrt_trunc_mask, sign_test,
    trunc_mask_narrow,
};
use crate::eval::LEAKY_ALPHA_BITS;
use crate::eval::ring_ops::window_taps;
use crate::ring::Ring;
use crate::{CircaVariant, Domain, Graph, NodeId, Op, TruncMode, ValueId};

/// Garbled instances per table frame (the runtime streams tables in frames of this many).
pub const GC_CHUNK: usize = 4096;

/// How the parties feed a garbled ReLU or MaxPool an operand whose truncation is stochastic
/// ([`TruncMode::Stochastic`]): each takes its share modulo `2^width` and shifts it right by
/// `bits` ([`crate::ring::truncate_share`]: the server rounds up), so the circuit reads
/// `width − bits` bits per share and adds them modulo `2^(width − bits)`
/// ([`crate::ring::stochastic_truncate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShiftedRead {
    /// The width the shares are read in: the narrowed one ([`Graph::narrow_bits`]) or ℓ.
    pub width: u8,
    /// Bits each party shifts out.
    pub bits: u8,
}

impl ShiftedRead {
    /// One party's input to the circuit from its share `x`.
    pub fn share(self, x: u64, client: bool) -> u64 {
        crate::ring::truncate_share(Ring::new(self.width), x, self.bits, client)
    }
}

/// How one step runs.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A client-domain value enters sharing: the client's share is a fresh mask, and online
    /// the client sends `x − r`.
    Share {
        /// The client-domain value being shared.
        value: ValueId,
    },
    /// Dense / Conv2d with server weights: the correlation `W·c − m` offline (HE, or OT for the
    /// dense layers `assign_protocols` chose), local online.
    Linear {
        /// How the offline correlation is produced.
        offline: LinearOffline,
    },
    /// An exact element-wise activation (ReLU, Clip, LeakyReLU) in a garbled circuit, with the
    /// preceding exact truncation fused (`shift` bits) and the client's output mask; or an exact
    /// truncation on its own (`--exact-truncation`: a `truncate` node, circuit `trunc_mask`).
    Activation {
        /// The value whose shares enter the circuit (the fused truncation's operand, if any).
        input: ValueId,
        /// Bits of the exact truncation done inside the circuit (0: none).
        shift: u8,
        /// How the parties shift their shares first, for a ReLU after a stochastic truncation.
        read: Option<ShiftedRead>,
        /// One instance, run per element.
        circuit: Circuit,
    },
    /// An exact ReLU with the preceding exact truncation fused (`shift` bits, possibly 0) over
    /// random-choice OT instead of a garbled circuit (the nodes `assign_protocols` chose, listed
    /// in [`Graph::over_ot`]): the same output and share convention as the circuit
    /// `relu_trunc_mask` (docs/protocols.md, "ReLU over OT").
    ReluOt {
        /// The value whose shares enter the comparison (the fused truncation's operand).
        input: ValueId,
        /// Bits of the exact truncation fused in, `0 ≤ shift < ℓ`.
        shift: u8,
        /// The width the comparison reads the shares in: ℓ, or with a fused truncation the
        /// narrowed width of [`Graph::narrow_bits`] (`shift + 2 < width ≤ ℓ`), as a garbled
        /// ReLU reads them ([`relu_ot_width`]).
        width: u8,
        /// The bits of the output ring: the products and output shares are taken modulo
        /// `2^out`, all the output's readers read ([`relu_ot_out`]).
        out: u8,
    },
    /// A Clip to `[lo, hi]` (ReLU6 and kin with `lo = 0`, Hardtanh's `[−1, 1]`) with the
    /// preceding exact truncation fused (`shift` bits, possibly 0) over random-choice OT (the
    /// nodes `assign_protocols` chose, listed in [`Graph::over_ot`]): two ReLUs over OT in turn,
    /// `z = lo + ReLU(y − lo·2^f) >> f`, then `hi − ReLU(hi − z)` ([`clip_ot`]), equal to
    /// `clip_trunc_mask` because `lo = 0 ≤ hi` keeps every intermediate from wrapping, or, for
    /// `lo ≠ 0`, because the compiler's range analysis proved it before listing the Clip. The
    /// client's output share is fixed offline.
    ClipOt {
        /// The value whose shares enter the first comparison (the fused truncation's operand).
        input: ValueId,
        /// Bits of the exact truncation fused in, `0 ≤ shift < ℓ`.
        shift: u8,
        /// The lower bound in the ring, at the clipped value's scale (two's complement).
        lo: u64,
        /// The upper bound in the ring, at the clipped value's scale, `lo ≤ hi < 2^(ℓ−1)`.
        hi: u64,
    },
    /// A LeakyReLU with the preceding exact truncation fused (`shift` bits, possibly 0) over
    /// random-choice OT (the nodes `assign_protocols` chose, listed in [`Graph::over_ot`]): `z`
    /// by a truncation over OT, `t = (alpha·z) >> 16` by another, then `t + keep(z)·(z − t)` by a
    /// shift-0 ReLU over OT used as a select ([`leaky_ot`]); exact (equal to
    /// `leaky_relu_trunc_mask`) for any slope. The client's output share is fixed offline.
    LeakyReluOt {
        /// The value whose shares enter the first truncation (the fused truncation's operand).
        input: ValueId,
        /// Bits of the exact truncation fused in, `0 ≤ shift < ℓ`.
        shift: u8,
        /// The slope in the ring at 16 fractional bits, as the simulator encodes it.
        alpha: u64,
    },
    /// An exact truncation `y >> shift` (arithmetic, of a value of either sign) that fuses into no
    /// reader, over random-choice OT instead of the circuit `trunc_mask` (the nodes
    /// `assign_protocols` chose, listed in [`Graph::over_ot`]): the wrap of the shares' sum and the
    /// low bits' carry by two comparisons, turned into values by products the client sends
    /// ([`trunc_ot`]). The same output and share convention as the circuit: the client's output
    /// share is its offline mask.
    TruncOt {
        /// The truncated value.
        input: ValueId,
        /// Bits shifted out, `1 ≤ shift < ℓ`.
        shift: u8,
    },
    /// MaxPool without a fused truncation over random-choice OT (the nodes `assign_protocols`
    /// chose, listed in [`Graph::over_ot`]): a max tree, each level one batch of shift-0 ReLUs
    /// over OT on differences, `max(a, b) = b + ReLU(a − b)` ([`relu_ot::max_levels`]). Exact
    /// only for a [`nonnegative`] operand (no difference wraps); the client's output share is
    /// fixed offline (docs/protocols.md, "ReLU over OT").
    MaxPoolOt {
        /// The pooled value (no truncation fused).
        input: ValueId,
        /// Per output element, the flat indices of its window's inputs.
        windows: Vec<Vec<usize>>,
        /// The width the comparisons read the differences' shares in ([`maxpool_ot_width`]).
        width: u8,
    },
    /// MaxPool over shared windows with the preceding exact truncation fused; one circuit per
    /// window size (border windows are smaller).
    MaxPool {
        /// The value whose shares enter the circuits (the fused truncation's operand, if any).
        input: ValueId,
        /// Bits of the exact truncation done inside the circuit (0: none).
        shift: u8,
        /// How the parties shift their shares first, after a stochastic truncation.
        read: Option<ShiftedRead>,
        /// Per output element, the flat indices of its window's inputs.
        windows: Vec<Vec<usize>>,
        /// `(window size, circuit)` for each distinct window size, ascending.
        circuits: Vec<(usize, Circuit)>,
    },
    /// Circa's stochastic ReLU: sign test on truncated shares in a garbled circuit, then the
    /// product with the value from OT correlations.
    Circa {
        /// The value whose sign is tested.
        input: ValueId,
        /// Low bits `k` dropped from the shares before the test; `k < m − 1`.
        drop_bits: u8,
        /// Which way the test may err.
        variant: CircaVariant,
        /// Width m ≤ ℓ of the ring the test reads the shares in (each party reduces its share
        /// mod 2^m first).
        test_bits: u8,
        /// The sign test on `m − k` bits ([`crate::circuit::sign_test`]), one instance per element.
        circuit: Circuit,
    },
    /// Circa's stochastic ReLU over random-choice OT instead of a garbled sign test (the nodes
    /// `assign_protocols` chose, listed in [`Graph::over_ot`]): a shift-0 ReLU over OT whose
    /// comparison reads the sign test's `m − k` bits ([`circa_ot`]), so the output equals the
    /// garbled protocol's, `y·b` with `b` [`crate::ring::circa_nonnegative`] of the shares, with
    /// the client's output share its offline mask (docs/protocols.md, "Circa over OT").
    CircaOt {
        /// The value whose sign is tested.
        input: ValueId,
        /// Low bits `k` dropped from the shares before the test; `k < m − 1`.
        drop_bits: u8,
        /// Which way the test may err.
        variant: CircaVariant,
        /// Width m ≤ ℓ of the ring the test reads the shares in.
        test_bits: u8,
    },
    /// `a·y² + b·y + c` with a Beaver square pair.
    Poly,
    /// `a·b` of two shared values (the second broadcast to the first) with one Beaver triple per
    /// output element.
    Mul,
    /// `a·b` of two shared matrices (`[.., m, k]` by `[.., k, n]`) with one matrix Beaver
    /// triple per batch element.
    MatMul,
    /// Each party transforms its own share (data movement, sums, local truncation, shifts).
    Local,
    /// The server sends its share; the client reconstructs.
    Reveal,
    /// A client-domain op the client computes alone.
    Client,
}

/// How a linear layer's offline correlation is produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinearOffline {
    /// BFV with coefficient encoding: the client's encrypted mask, the server's masked product.
    He,
    /// Gilboa products from random OT, one per bit of the client's mask (dense layers only).
    Ot,
}

/// One protocol step: its main node and how it runs.
#[derive(Debug, Clone)]
pub struct Step {
    /// The node the step runs (for a share step: the first node reading the shared value).
    pub node: NodeId,
    /// The protocol and its public parameters.
    pub kind: Kind,
}

/// Input groups of the element-wise activation circuits (ReLU, Clip, LeakyReLU, exact
/// truncation; [`crate::circuit::relu_trunc_mask`] and its kin) that the server provides: `y_s`;
/// the client provides `y_c` and its output mask `r`.
pub const ACTIVATION_SERVER_GROUPS: [bool; 3] = [true, false, false];

/// Input groups of the element-wise activation circuit of `op` that the server provides:
/// [`ACTIVATION_SERVER_GROUPS`], and for a rounding with a zero point its parity bit too
/// ([`crate::circuit::round_trunc_mask_narrow`]).
pub fn activation_server_groups(op: &Op) -> Vec<bool> {
    let mut v = ACTIVATION_SERVER_GROUPS.to_vec();
    if let Op::Round { zero_point: Some(_), .. } = op {
        v.push(true);
    }
    v
}

/// Input groups of Circa's sign test ([`crate::circuit::sign_test`]) that the server provides:
/// `t_s` and its random bit `σ`; the client provides `t_c`.
pub const CIRCA_SERVER_GROUPS: [bool; 3] = [false, true, true];

/// Input groups of a `k`-window max circuit ([`crate::circuit::max_trunc_mask`]) that the server
/// provides: its `k` shares; the client provides its `k` shares and its output mask.
pub fn maxpool_server_groups(k: usize) -> Vec<bool> {
    let mut v = vec![true; k];
    v.extend(vec![false; k + 1]);
    v
}

/// One batch of garbled instances of one circuit: the unit the runtime garbles, sends and
/// evaluates (a step has one, a MaxPool one per window size).
#[derive(Debug, Clone)]
pub struct GcBatch<'s> {
    /// The circuit garbled once per instance.
    pub circuit: &'s Circuit,
    /// Per input group of the circuit: whether the server provides it (else the client does).
    pub server_groups: Vec<bool>,
    /// Instances (elements, or windows of this size).
    pub instances: usize,
    /// The plan's garbling scheme ([`Graph::garbling`]).
    pub garbling: crate::Garbling,
}

impl GcBatch<'_> {
    fn wires(&self, server: bool) -> u64 {
        let groups = self.circuit.inputs.iter().zip(&self.server_groups);
        groups.filter(|(_, s)| **s == server).map(|(w, _)| *w as u64).sum()
    }

    /// Input wires per instance the server provides (their labels go online).
    pub fn server_wires(&self) -> u64 {
        self.wires(true)
    }

    /// Input wires per instance the client provides (their labels come by correlated OT).
    pub fn client_wires(&self) -> u64 {
        self.wires(false)
    }

    /// Bytes of one instance's garbled tables ([`crate::Garbling::table_bytes`]).
    pub fn table_bytes(&self) -> u64 {
        self.garbling.table_bytes(self.circuit.and_count())
    }

    /// AND gates of all instances: the batch's range of gate tweaks.
    pub fn and_gates(&self) -> u64 {
        (self.instances * self.circuit.and_count()) as u64
    }
}

impl Step {
    /// The garbled batches of the step, in the order the runtime runs them (none for steps
    /// without a garbled circuit).
    pub fn gc_batches<'s>(&'s self, g: &Graph) -> Vec<GcBatch<'s>> {
        let elems = |v: ValueId| g.values[v].ty.shape.iter().product::<usize>();
        match &self.kind {
            Kind::Activation { input, circuit, .. } => {
                vec![GcBatch {
                    circuit,
                    server_groups: activation_server_groups(&g.nodes[self.node].op),
                    instances: elems(*input),
                    garbling: g.garbling,
                }]
            }
            Kind::MaxPool { windows, circuits, .. } => circuits
                .iter()
                .map(|(k, circuit)| GcBatch {
                    circuit,
                    server_groups: maxpool_server_groups(*k),
                    instances: windows.iter().filter(|w| w.len() == *k).count(),
                    garbling: g.garbling,
                })
                .collect(),
            Kind::Circa { input, circuit, .. } => {
                vec![GcBatch {
                    circuit,
                    server_groups: CIRCA_SERVER_GROUPS.to_vec(),
                    instances: elems(*input),
                    garbling: g.garbling,
                }]
            }
            _ => Vec::new(),
        }
    }

    /// AND gates of the step's garbled circuits, all instances: the range of gate tweaks it
    /// consumes (the next garbled step's tweaks start after it, so none repeats in a session).
    pub fn and_gates(&self, g: &Graph) -> u64 {
        self.gc_batches(g).iter().map(GcBatch::and_gates).sum()
    }

    /// The protocol name the stats and the summary print.
    pub fn protocol(&self) -> &'static str {
        match self.kind {
            Kind::Share { .. } => "share",
            Kind::Linear { offline: LinearOffline::He } => "HE",
            Kind::Linear { offline: LinearOffline::Ot } => "OT (Gilboa)",
            Kind::Activation { .. } | Kind::MaxPool { .. } => "GC",
            Kind::ReluOt { .. } => "OT (millionaire)",
            Kind::MaxPoolOt { .. } => "OT (max tree)",
            Kind::ClipOt { .. } => "OT (clip)",
            Kind::TruncOt { .. } => "OT (truncation)",
            Kind::LeakyReluOt { .. } => "OT (leaky ReLU)",
            Kind::Circa { .. } => "GC+OT (Circa)",
            Kind::CircaOt { .. } => "OT (Circa)",
            Kind::Poly | Kind::Mul => "SS (Beaver)",
            Kind::MatMul => "SS (matrix Beaver)",
            Kind::Local => "local",
            Kind::Reveal => "reveal",
            Kind::Client => "client",
        }
    }
}

/// The plan uses something the runtime cannot run yet.
#[derive(Clone, Debug, thiserror::Error)]
#[error("node {node:?} ({op}): {reason}")]
pub struct Unsupported {
    /// Name of the node the runtime cannot run.
    pub node: String,
    /// Mnemonic of its op.
    pub op: &'static str,
    /// What is missing.
    pub reason: String,
}

/// Whether the exact truncation producing `v` runs inside the protocol of its only reader (a
/// ReLU, Clip, LeakyReLU, MaxPool, sigmoid, Gelu, rsqrt or rounding, garbled or over OT) rather than in a
/// circuit of its own. `fuse_truncation` decides by this same rule.
pub fn fuses_into_reader(g: &Graph, v: ValueId) -> bool {
    g.has_single_user(v)
        && matches!(
            g.nodes[g.users(v)[0]].op,
            Op::Relu
                | Op::MaxPool { .. }
                | Op::Clip { .. }
                | Op::LeakyRelu { .. }
                | Op::PlSigmoid
                | Op::PlGelu { .. }
                | Op::Rsqrt { .. }
                | Op::Round { .. }
                | Op::Exp2
                | Op::Reciprocal
        )
}

/// The operand a garbled-circuit op reads and the truncation fused into it: `(input of the
/// exact truncation, its bits)` when the truncation producing `v` fuses into this reader, else
/// `(v, 0)`.
pub fn fused(g: &Graph, v: ValueId) -> (ValueId, u8) {
    match g.producer(v).map(|n| &n.op) {
        Some(Op::Truncate { bits, mode: TruncMode::Exact }) if fuses_into_reader(g, v) => {
            (g.producer(v).expect("checked").inputs[0], *bits)
        }
        _ => (v, 0),
    }
}

/// The stochastic truncation producing `v` ([`TruncMode::Stochastic`]) when it fuses into its
/// only reader, a ReLU or MaxPool on shared values not over OT: `(its operand, its bits)`.
pub fn stochastic_fused(g: &Graph, v: ValueId) -> Option<(ValueId, u8)> {
    let t = g.producer(v)?;
    let Op::Truncate { bits, mode: TruncMode::Stochastic } = t.op else { return None };
    let reader = *g.users(v).first()?;
    let ok = g.has_single_user(v)
        && matches!(g.nodes[reader].op, Op::Relu | Op::MaxPool { .. })
        && !g.over_ot.contains(&reader)
        && g.values[t.inputs[0]].domain == Domain::Shared;
    ok.then_some((t.inputs[0], bits))
}

/// For a ReLU or MaxPool `id` after a stochastic truncation ([`stochastic_fused`]), the
/// truncation's operand and how the parties read it: in the node's narrowed width or ℓ, which
/// must leave at least three bits after the shift (`None` otherwise: the compiler does not make
/// such a truncation stochastic, and the verifier refuses a plan that has one).
pub fn shifted_read(g: &Graph, id: NodeId) -> Option<(ValueId, ShiftedRead)> {
    let (input, bits) = stochastic_fused(g, g.nodes[id].inputs[0])?;
    let width = narrow_bits(g, id).or(g.ring_bits)?;
    (width >= bits.saturating_add(3)).then_some((input, ShiftedRead { width, bits }))
}

/// Whether the ring values of `v` are non-negative by construction: a ReLU's output, a Clip's
/// with a lower bound of at least 0, or a MaxPool of such (then the difference of two of them cannot wrap, which MaxPool over OT needs).
pub fn nonnegative(g: &Graph, v: ValueId) -> bool {
    match g.producer(v) {
        Some(n) if matches!(n.op, Op::Relu) => true,
        Some(n) if matches!(n.op, Op::MaxPool { .. }) => nonnegative(g, n.inputs[0]),
        Some(n) if matches!(n.op, Op::Clip { .. }) => clip_ot::lower_bound(g, n).is_some_and(|lo| lo >= 0),
        _ => false,
    }
}

/// Lowers a quantized plan graph into steps, refusing what the runtime does not support.
pub fn lower(g: &Graph) -> Result<Vec<Step>, Unsupported> {
    let mut steps = Vec::new();
    let mut shared_inputs: Vec<ValueId> = Vec::new();
    for (id, _) in g.live_nodes() {
        steps.extend(node_steps(g, id, &mut shared_inputs)?);
    }
    Ok(steps)
}

/// The steps of live node `id`, in order: a share step per client-domain input not shared by an
/// earlier node (`shared_inputs`, updated), then the node's own step; none for an exact
/// truncation fused into its reader's circuit. [`lower`] is this over the nodes in order.
pub fn node_steps(g: &Graph, id: NodeId, shared_inputs: &mut Vec<ValueId>) -> Result<Vec<Step>, Unsupported> {
    let ell = g.ring_bits.expect("decode_plan checks the ring") as u32;
    let node = &g.nodes[id];
    let mut steps = Vec::new();
    let out = &g.values[node.output];
    let bad = |reason: &str| Unsupported { node: node.name.clone(), op: node.op.mnemonic(), reason: reason.into() };
    if out.domain == Domain::Client || out.domain == Domain::Public {
        let kind = if matches!(node.op, Op::Reveal) { Kind::Reveal } else { Kind::Client };
        return Ok(vec![Step { node: id, kind }]);
    }
    for &v in &node.inputs {
        if g.values[v].domain == Domain::Client && !shared_inputs.contains(&v) {
            shared_inputs.push(v);
            steps.push(Step { node: id, kind: Kind::Share { value: v } });
        }
    }
    let kind = match &node.op {
        Op::Dense { .. } if g.over_ot.contains(&id) => Kind::Linear { offline: LinearOffline::Ot },
        Op::Dense { .. } | Op::Conv2d { .. } => Kind::Linear { offline: LinearOffline::He },
        Op::Truncate { mode: TruncMode::Exact, .. } if fuses_into_reader(g, node.output) => return Ok(steps),
        Op::Truncate { mode: TruncMode::Stochastic, .. } => {
            return match g.users(node.output).first().and_then(|&r| shifted_read(g, r)) {
                Some(_) => Ok(steps),
                None => Err(bad(
                    "a stochastic truncation runs only inside the garbled ReLU or MaxPool that reads it, in a width \
                     of at least its bits plus 3",
                )),
            };
        }
        Op::Truncate { mode: TruncMode::Exact, .. } if g.over_ot.contains(&id) => trunc_ot::kind(g, id)
            .ok_or_else(|| bad("an exact truncation over OT must shift by at least 1 and less than the ring width"))?,
        Op::Truncate { bits, mode: TruncMode::Exact } => {
            if *bits as u32 >= ell {
                return Err(bad("an exact truncation must shift by less than the ring width"));
            }
            // Narrowed (`Graph::narrow_bits`) where its operand's range allows.
            let w = narrow_bits(g, id).map_or(ell, u32::from);
            if w <= u32::from(*bits) {
                return Err(bad("a narrowed exact truncation needs more bits than it shifts"));
            }
            let circuit = trunc_mask_narrow(w, ell, *bits as u32);
            Kind::Activation { input: node.inputs[0], shift: *bits, read: None, circuit }
        }
        Op::Relu if g.over_ot.contains(&id) => match fused(g, node.inputs[0]) {
            (input, shift) if (shift as u32) < ell => {
                let width = relu_ot_width(g, id, shift).ok_or_else(|| {
                    bad("a narrowed ReLU over OT needs a fused truncation and more than two bits above its shift")
                })?;
                Kind::ReluOt { input, shift, width, out: relu_ot_out(g, id) }
            }
            _ => return Err(bad("a ReLU over OT must shift by less than the ring width")),
        },
        Op::MaxPool { window } if g.over_ot.contains(&id) => match fused(g, node.inputs[0]) {
            (input, 0) if nonnegative(g, input) => {
                let width = maxpool_ot_width(g, input);
                Kind::MaxPoolOt { input, windows: window_taps(&g.values[input].ty.shape, window), width }
            }
            _ => return Err(bad("a MaxPool over OT needs a ReLU's output without a fused truncation")),
        },
        Op::Clip { .. } if g.over_ot.contains(&id) => clip_ot::listed(g, id)
            .ok_or_else(|| bad("a Clip over OT needs a lower bound and an upper bound of at least it"))?,
        Op::LeakyRelu { .. } if g.over_ot.contains(&id) => leaky_ot::kind(g, id).ok_or_else(|| {
            bad("a LeakyReLU over OT needs a shift below the ring width, a ring wider than 16 bits and a slope that fits it")
        })?,
        Op::Relu if stochastic_fused(g, node.inputs[0]).is_some() => {
            let (input, read) = shifted_read(g, id)
                .ok_or_else(|| bad("a ReLU after a stochastic truncation needs a width of at least its bits plus 3"))?;
            let w = u32::from(read.width - read.bits);
            let circuit = relu_trunc_mask_narrow(w, output_bits(g, id, w), 0);
            Kind::Activation { input, shift: 0, read: Some(read), circuit }
        }
        Op::Relu
        | Op::Clip { .. }
        | Op::LeakyRelu { .. }
        | Op::PlSigmoid
        | Op::PlGelu { .. }
        | Op::Rsqrt { .. }
        | Op::Round { .. }
        | Op::Exp2
        | Op::Reciprocal => {
            let (input, shift) = fused(g, node.inputs[0]);
            // Narrowed ReLUs, LeakyReLUs, Clips and roundings only (`Graph::narrow_bits`; the
            // verifier refuses the other ops there).
            let w = narrow_bits(g, id).map(u32::from);
            if w.is_some_and(|w| w <= u32::from(shift) + 1) {
                return Err(bad("a narrowed ReLU needs more bits than its fused truncation plus two"));
            }
            let circuit = match node.op {
                // Its output masked in the bits its readers need ([`output_bits`]).
                Op::Relu => {
                    let w = w.unwrap_or(ell);
                    relu_trunc_mask_narrow(w, output_bits(g, id, w), u32::from(shift))
                }
                _ => activation_circuit(g, &node.op, node.inputs[0], shift, w.unwrap_or(ell)).ok_or_else(|| {
                    bad("LeakyReLU's slope does not fit the ring at 16 fractional bits, a narrowed Clip's bounds its width, or a rounding's scale the ring")
                })?,
            };
            Kind::Activation { input, shift, read: None, circuit }
        }
        Op::MaxPool { window } => {
            // After a stochastic truncation the shares arrive shifted, and the circuit reads
            // `width − bits` bits with nothing left to truncate.
            let read = shifted_read(g, id);
            let (input, shift) = read.map_or_else(|| fused(g, node.inputs[0]), |(input, _)| (input, 0));
            let read = read.map(|r| r.1);
            let windows = window_taps(&g.values[input].ty.shape, window);
            let mut sizes: Vec<usize> = windows.iter().map(Vec::len).collect();
            sizes.sort_unstable();
            sizes.dedup();
            if sizes.contains(&0) {
                return Err(bad("a pooling window covers no input"));
            }
            // Narrowed (`Graph::narrow_bits`) or reading all ℓ bits.
            let w = read.map_or_else(|| narrow_bits(g, id).map_or(ell, u32::from), |r| u32::from(r.width - r.bits));
            if w <= u32::from(shift) {
                return Err(bad("a narrowed MaxPool needs more bits than its fused truncation"));
            }
            let out = output_bits(g, id, w);
            let circuits =
                sizes.into_iter().map(|k| (k, max_trunc_mask_narrow(k as u32, w, out, shift as u32))).collect();
            Kind::MaxPool { input, shift, read, windows, circuits }
        }
        Op::Poly { coeffs } if coeffs.len() <= 3 => Kind::Poly,
        Op::Poly { .. } => return Err(bad("polynomials of degree above 2 are not supported by the runtime yet")),
        Op::Mul => Kind::Mul,
        Op::MatMul => Kind::MatMul,
        Op::Truncate { mode: TruncMode::Local, .. }
        | Op::Reshape { .. }
        | Op::Select { .. }
        | Op::Transpose { .. }
        | Op::Concat { .. }
        | Op::Pad { .. }
        | Op::SumPool { .. }
        | Op::Add
        | Op::Sub => Kind::Local,
        Op::Affine { scale: None, .. } => Kind::Local,
        Op::Affine { scale: Some(c), .. } if g.consts[*c].domain == Domain::Public => Kind::Local,
        Op::Affine { scale: Some(_), .. } => {
            return Err(bad("per-channel scales on shared values are not supported by the runtime yet"));
        }
        Op::StochasticRelu { drop_bits: Some(k), variant, test_bits }
            if g.over_ot.contains(&id)
                && test_bits.is_none_or(|m| u32::from(m) <= ell)
                && u32::from(*k) + 1 < test_bits.map_or(ell, u32::from) =>
        {
            let m = test_bits.map_or(ell, u32::from);
            Kind::CircaOt { input: node.inputs[0], drop_bits: *k, variant: *variant, test_bits: m as u8 }
        }
        Op::StochasticRelu { drop_bits: Some(k), variant, test_bits }
            if test_bits.is_none_or(|m| u32::from(m) <= ell)
                && u32::from(*k) + 1 < test_bits.map_or(ell, u32::from) =>
        {
            let m = test_bits.map_or(ell, u32::from);
            let (drop_bits, variant, test_bits) = (*k, *variant, m as u8);
            Kind::Circa { input: node.inputs[0], drop_bits, variant, test_bits, circuit: sign_test(m - u32::from(*k)) }
        }
        Op::StochasticRelu { .. } => {
            return Err(bad("the sign test needs drop bits below m − 1 and a test ring m no wider than ℓ"));
        }
        other => return Err(bad(&format!("no two-party protocol for `{}` on shared values", other.mnemonic()))),
    };
    steps.push(Step { node: id, kind });
    Ok(steps)
}

/// The nodes whose first operand the simulator reads narrowed, with the width: for each ReLU or
/// MaxPool of [`Graph::narrow_bits`], its fused exact truncation if it has one (the circuit
/// narrows the truncation's operand), else the node itself. Reading `y` in `w` bits is `y mod 2^w` taken as
/// a signed `w`-bit value, exactly what the narrowed circuit reconstructs from the shares.
pub fn narrowed_reads(g: &Graph) -> Vec<(NodeId, u8)> {
    g.narrow_bits
        .iter()
        // A truncation's entry applies once it runs exact in its own circuit (`--exact-truncation`
        // makes it so in `fuse_truncation`, after `quantize` lists it).
        .filter(|&&(id, _)| !matches!(g.nodes[id].op, Op::Truncate { mode: TruncMode::Local, .. }))
        // An HE layer's entry is its plaintext width, not a narrowed read.
        .filter(|&&(id, _)| !matches!(g.nodes[id].op, Op::Dense { .. } | Op::Conv2d { .. }))
        .filter_map(|&(id, w)| {
            let &v = g.nodes[id].inputs.first()?;
            Some(match g.values[v].def {
                crate::Def::Node(t) if fused(g, v).0 != v || stochastic_fused(g, v).is_some() => (t, w),
                _ => (id, w),
            })
        })
        .collect()
}

/// The width a ReLU over OT with a fused truncation of `shift` bits reads its operand's shares in:
/// its narrowed width ([`Graph::narrow_bits`]) or ℓ. Narrowed, the comparison covers the shares'
/// low `w` bits, and the truncation's wrap term is taken at `2^(w − shift)`, so the output is the
/// ReLU of the operand read as a signed `w`-bit value, as the simulator reads it
/// ([`narrowed_reads`]). `None` where the protocol cannot narrow: a plain ReLU (no fused
/// truncation, whose products would move the unreduced shares) or fewer than three bits above the
/// shift.
pub fn relu_ot_width(g: &Graph, id: NodeId, shift: u8) -> Option<u8> {
    match narrow_bits(g, id) {
        None => g.ring_bits,
        Some(w) => (shift > 0 && w > shift.saturating_add(2)).then_some(w),
    }
}

/// The bits a garbled ReLU's or MaxPool's circuit outputs and masks its result in: those its
/// output's readers need ([`demand::demanded`]; the client's mask and the server's share are
/// then correct modulo `2^out`, all any reader reads), at least the read width `w` (the
/// circuits' own constraint) and at most ℓ. Fewer AND gates in the mask's subtraction, fewer
/// client mask labels and output bits.
pub fn output_bits(g: &Graph, id: NodeId, w: u32) -> u32 {
    let ell = g.ring_bits.map_or(64, u32::from);
    u32::from(demand::demanded(g, g.nodes[id].output)).max(w).min(ell)
}

/// The output ring of ReLU over OT `id`: the bits its output's readers need
/// ([`demand::demanded`]), at least 2 and at most ℓ. The client's mask and the server's share
/// are then correct modulo `2^out`, all any reader reads; the products and the reversed OT move
/// `out`-bit values.
pub fn relu_ot_out(g: &Graph, id: NodeId) -> u8 {
    let ell = g.ring_bits.unwrap_or(64);
    demand::demanded(g, g.nodes[id].output).clamp(2, ell)
}

/// The ring of a dense layer's correlation over OT (Gilboa products): the bits its output's
/// readers need ([`demand::demanded`]), at least 2 and at most ℓ. The client's mask bits and the
/// server's message shrink with it (`k` OTs per input value, `k(k+1)/2` bits per weight); both
/// shares of the output are then correct modulo `2^k`, all any reader reads.
pub fn dense_ot_bits(g: &Graph, id: NodeId) -> u8 {
    let ell = g.ring_bits.unwrap_or(64);
    demand::demanded(g, g.nodes[id].output).clamp(2, ell)
}

/// The width a MaxPool over OT's comparisons read the differences of its operand's elements in:
/// `w − f` bits for the output of a ReLU that reads its operand in `w` bits and shifts it by `f`
/// (garbled or over OT, not after a stochastic truncation), whose every value is below
/// `2^(w − f − 1)` by construction, so every difference, and every difference of the maxima
/// after it, fits `w − f` bits as a signed value; ℓ for any other operand. Reading fewer bits
/// than a value holds is then exact whatever the input (no wrap to model), and a shift-0 ReLU
/// over OT may take its sign from them ([`relu_ot`]; the products still move the whole
/// difference).
pub fn maxpool_ot_width(g: &Graph, v: ValueId) -> u8 {
    let ell = g.ring_bits.unwrap_or(64);
    let Some(relu) = g.producer(v).filter(|n| matches!(n.op, Op::Relu)) else { return ell };
    let crate::Def::Node(id) = g.values[v].def else { return ell };
    if stochastic_fused(g, relu.inputs[0]).is_some() {
        return ell;
    }
    let w = narrow_bits(g, id).unwrap_or(ell);
    let f = fused(g, relu.inputs[0]).1;
    w.saturating_sub(f).clamp(2, ell)
}

/// The width `w < ℓ` a garbled ReLU's or MaxPool's circuits read their operand in
/// ([`Graph::narrow_bits`]), if narrowed.
pub fn narrow_bits(g: &Graph, id: NodeId) -> Option<u8> {
    g.narrow_bits.iter().find(|&&(n, _)| n == id).map(|&(_, w)| w)
}

/// The garbled circuit of an exact element-wise activation whose operand `v` (after the fused
/// truncation of `shift` bits) the simulator sees: constants are encoded exactly as the
/// simulator encodes them (a Clip bound outside the ring never binds). `None` for other ops.
/// `w` is the width the circuit reads the operand in: ℓ, or a ReLU's narrowed width.
pub fn activation_circuit(g: &Graph, op: &Op, v: ValueId, shift: u8, w: u32) -> Option<Circuit> {
    let ell = g.ring_bits? as u32;
    let ring = Ring::new(ell as u8);
    let (f, s) = (
        shift as u32,
        match g.values[v].ty.elem {
            ElemType::Fixed { frac_bits } => frac_bits,
            _ => 0,
        },
    );
    // A bound as the simulator encodes it (one outside the ring never binds).
    let enc = |b: Option<f32>| b.and_then(|b| ring.encode(b as f64, s)).map(|e| ring.to_signed(e));
    Some(match op {
        Op::Relu => relu_trunc_mask_narrow(w, ell, f),
        Op::PlSigmoid if u32::from(s) + 4 <= ell => pl_sigmoid_trunc_mask(ell, f, s),
        Op::PlGelu { .. } => pl_gelu_trunc_mask(ell, f, s),
        Op::Rsqrt { eps } => rsqrt_trunc_mask(ell, f, s, *eps),
        Op::Exp2 if u32::from(s) + 2 <= ell => exp2_trunc_mask(ell, f, s),
        Op::Reciprocal if u32::from(s) + 2 <= ell => reciprocal_trunc_mask(ell, f, s),
        // The circuit needs a bit above the rounding point; narrowed (`Graph::narrow_bits`), the
        // bounds must fit the width it clamps in.
        Op::Round { mode, min, max, grid: Some(grid), .. } => {
            let (lo, hi) = (enc(*min), enc(*max));
            let width = round_width(w, ell);
            (f < w && clip_bounds_fit(width, lo, hi) && float_grid_fits(width, s as u32, *grid))
                .then(|| float_grid_trunc_mask_narrow(w, ell, f, s as u32, *mode, *grid, (lo, hi)))?
        }
        Op::Round { mode, min, max, zero_point, grid: None } if f + u32::from(s) < w => {
            let (lo, hi) = (enc(*min), enc(*max));
            clip_bounds_fit(round_width(w, ell), lo, hi)
                .then(|| round_trunc_mask_narrow(w, ell, f, s as u32, *mode, (lo, hi), zero_point.is_some()))?
        }
        // Narrowed, the bounds must fit the width it compares in.
        Op::Clip { min, max } => {
            let (lo, hi) = (enc(*min), enc(*max));
            clip_bounds_fit(w, lo, hi).then(|| clip_trunc_mask_narrow(w, ell, f, lo, hi))?
        }
        Op::LeakyRelu { alpha } => {
            let a = ring.encode(*alpha as f64, LEAKY_ALPHA_BITS)?;
            leaky_relu_trunc_mask_narrow(w, ell, f, ring.to_signed(a), LEAKY_ALPHA_BITS as u32)
        }
        _ => return None,
    })
}

/// `(batch, m, k, n)` of a matrix product node (`[.., m, k]` by `[.., k, n]`).
pub fn matmul_dims(g: &Graph, node: &crate::Node) -> (usize, usize, usize, usize) {
    let shape = |i: usize| &g.values[node.inputs[i]].ty.shape;
    crate::eval::kernels::matmul_dims(shape(0), shape(1))
}

/// `(batch, inputs, outputs)` of a dense node (its weight is `outputs × inputs`).
pub fn dense_dims(g: &Graph, node: &crate::Node) -> Option<(usize, usize, usize)> {
    let Op::Dense { weight, .. } = &node.op else { return None };
    let (n_out, n_in) = match g.consts[*weight].shape[..] {
        [o, i] => (o, i),
        _ => return None,
    };
    let len: usize = g.values[node.inputs[0]].ty.shape.iter().product();
    Some((len / n_in.max(1), n_in, n_out))
}
