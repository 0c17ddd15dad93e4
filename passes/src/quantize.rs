//! `quantize`: turns the float graph into a fixed-point graph over Z_2^ℓ.
//!
//! Requires a verified float graph after `normalize_linear` (no `batchnorm`, no `avgpool`).
//! Produces a new graph with the same nodes (names kept) where:
//! - inputs are encoded at scale `F = --frac-bits`; weights are quantized at `F`, biases and
//!   shifts at their layer's output scale, so a linear layer's output has scale `s + F`; a node
//!   named in [`Options::layer_frac_bits`] uses its own `F` instead (for its weights and the
//!   scale it lowers its operands to; the precision search sets these, `precision_layers`);
//! - scales are lowered lazily: a `truncate` (local, until `fuse_truncation` fuses it) is
//!   inserted only before an op that needs scale `F` (linear layers, polynomials, both operands
//!   of a product, and the GC ops ReLU, MaxPool, Clip, LeakyReLU); outputs are revealed at
//!   whatever scale they have;
//! - operands of `add`/`sub`/`concat` are aligned by scaling the lower-scale operand up (an
//!   exact multiplication by a public power of two), never by rounding the other down;
//! - a Circa `stochastic_relu` tests the sign at its operand's scale `s` with
//!   `drop_bits = s − E` (`--circa-error-bits E`, default 5: sign errors only below 2^−E)
//!   unless `--drop-bits` gives the drop bits directly, in its own test ring Z_2^m: the smallest
//!   `m` whose wrap-around fault rate over the operand's bound (`ring::circa_wrap_probability`;
//!   for calibrated ranges, the bound times 2^M as below) is at most `--circa-fault-rate`
//!   (default 2^−20 per sign test), and at most ℓ;
//! - with `--exact-truncation` no truncation will stay local (`fuse_truncation` makes them all
//!   exact), which the ring choice below takes into account;
//! - the ring width ℓ is `--ring-bits`, or chosen from the widest value's bits: plus 40 (at most
//!   61) when a local truncation will remain (40 bits of headroom keep its wrap probability
//!   below 2^−39 per element); otherwise every truncation runs exactly in a garbled circuit and
//!   the ring only has to hold the values: no headroom for worst-case ranges (they are sound),
//!   M = `--range-margin-bits` (default 8) for calibrated ones (values may exceed what calibration saw), and 16 more for
//!   LeakyReLU's product with its 16-bit slope; and at least every Circa test ring. Circa's
//!   sign test needs no headroom of its own: in Z_2^m the shares' wrap-around cancels mod
//!   2^(m−k) (docs/decisions.md, "Circa's sign-test ring"). Narrower rings shrink every garbled
//!   circuit, label, OT correlation and HE ciphertext.
//!
//! A value that needs more than ℓ − 1 bits (bound from `range`) is refused, naming the node.
//! Changes semantics by rounding only: the fixed-point simulator measures by how much.

use veil_ir::ring::{MAX_RING_BITS, Ring, circa_wrap_probability};
use veil_ir::{CircaVariant, Const, Domain, ElemType, Graph, Op, TensorType, TruncMode, ValueId};

use crate::error_bound;
use crate::range::{self, RangeSource};
use crate::{Options, PassError, Report};

/// Default of [`Options::circa_error_bits`]: Circa's sign test may err below 2^−5.
pub const CIRCA_ERROR_BITS: u8 = 5;
/// Bits of headroom above the widest value when ℓ is chosen automatically and a local
/// truncation or Circa sign test remains.
pub const HEADROOM_BITS: u32 = 40;
/// Default of [`Options::range_margin_bits`]: bits of margin above calibrated ranges in plans
/// without local truncations, in narrowed reads and in Circa's test rings.
pub const CALIBRATED_MARGIN_BITS: u8 = 8;
/// Default of [`Options::circa_fault_rate`]: 2^−20 per sign test.
pub const CIRCA_FAULT_RATE: f64 = 1.0 / (1u64 << 20) as f64;

struct Builder<'a> {
    old: &'a Graph,
    g: Graph,
    map: Vec<Option<ValueId>>,
    /// Bound on |value| per new value.
    bound: Vec<f64>,
    frac: u8,
    /// Per-node `F` where it differs from `frac` ([`Options::layer_frac_bits`]).
    layer: &'a std::collections::BTreeMap<String, u8>,
    truncations: usize,
}

fn reject(reason: String) -> PassError {
    PassError::Rejected { pass: crate::Pass::Quantize, reason }
}

impl Builder<'_> {
    fn scale(&self, v: ValueId) -> u8 {
        match self.g.values[v].ty.elem {
            ElemType::Fixed { frac_bits } => frac_bits,
            _ => 0,
        }
    }

    fn add(&mut self, name: &str, out: &str, op: Op, inputs: &[ValueId], bound: f64) -> Result<ValueId, PassError> {
        let out = self.g.fresh_name(out);
        let v = self.g.add_node(name, out, op, inputs).map_err(|e| reject(format!("internal: {e}")))?;
        self.bound.resize(self.g.values.len(), 0.0);
        self.bound[v.index()] = bound;
        Ok(v)
    }

    /// Node `node`'s `F`: its own ([`Options::layer_frac_bits`]) or the plan's.
    fn frac_at(&self, node: &str) -> u8 {
        self.layer.get(node).copied().unwrap_or(self.frac)
    }

    /// `v` at scale at most node `node`'s `F`, truncating if needed.
    fn lower(&mut self, v: ValueId, node: &str) -> Result<ValueId, PassError> {
        self.lower_to(v, self.frac_at(node), node)
    }

    /// `v` at scale at most `to`, truncating if needed.
    fn lower_to(&mut self, v: ValueId, to: u8, node: &str) -> Result<ValueId, PassError> {
        let s = self.scale(v);
        if s <= to {
            return Ok(v);
        }
        self.truncations += 1;
        let out = format!("{}/t{}", self.g.values[v].name, s - to);
        let b = self.bound[v.index()];
        self.add(&format!("{node}/truncate"), &out, Op::Truncate { bits: s - to, mode: TruncMode::Local }, &[v], b)
    }

    /// `v` at scale exactly `to` (≥ its scale): multiplies by the public constant 2^(to − s).
    fn raise(&mut self, v: ValueId, to: u8, node: &str) -> Result<ValueId, PassError> {
        let s = self.scale(v);
        if s == to {
            return Ok(v);
        }
        let d = to - s;
        let c = self.g.add_const(format!("{node}.align"), vec![], Domain::Public, vec![1.0]);
        self.g.consts[c].frac_bits = Some(d);
        self.g.consts[c].qdata = vec![1i64 << d];
        let out = format!("{}/x2^{d}", self.g.values[v].name);
        let b = self.bound[v.index()];
        self.add(&format!("{node}/align"), &out, Op::Affine { scale: Some(c), shift: None }, &[v], b)
    }

    /// A quantized copy of float constant `c` at scale `frac`.
    fn quantize(&mut self, c: Const, frac: u32, node: &str) -> Result<Const, PassError> {
        let k = &self.old.consts[c];
        let m = (frac as f64).exp2();
        let lim = ((MAX_RING_BITS - 1) as f64).exp2();
        let mut q = Vec::with_capacity(k.data.len());
        for &x in &k.data {
            let v = (x as f64 * m).round();
            if v.is_nan() || v.abs() >= lim {
                return Err(reject(format!(
                    "node {node:?}: constant {:?} holds {x}, which does not fit {MAX_RING_BITS} bits at scale {frac}",
                    k.name
                )));
            }
            q.push(v as i64);
        }
        let frac_bits = u8::try_from(frac).map_err(|_| reject(format!("node {node:?}: scale {frac} is too large")))?;
        let n = self.g.add_const(k.name.clone(), k.shape.clone(), k.domain, k.data.clone());
        self.g.consts[n].frac_bits = Some(frac_bits);
        self.g.consts[n].qdata = q;
        Ok(n)
    }
}

/// Whether `n` is a truncation that will run exact in its own circuit: with `--exact-truncation`
/// (`fuse_truncation` makes every truncation exact), one its reader does not fuse.
fn standalone_exact(g: &Graph, n: &veil_ir::Node) -> bool {
    matches!(n.op, Op::Truncate { .. }) && !veil_ir::schedule::fuses_into_reader(g, n.output)
}

/// Runs the pass (see the module doc); a graph that already has a ring width is left as it is.
pub fn run(g: &mut Graph, opts: &Options) -> Result<Report, PassError> {
    run_with_bounds(g, opts, None)
}

/// [`run`] with the value bounds already computed by [`range::bounds`] for this graph and
/// `opts` (they do not depend on `opts.frac_bits`: the precision search computes them once for
/// every `F` it tries); `None` computes them.
pub fn run_with_bounds(
    g: &mut Graph,
    opts: &Options,
    bounds: Option<&(Vec<f64>, RangeSource)>,
) -> Result<Report, PassError> {
    run_detailed(g, opts, bounds).map(|(report, _)| report)
}

/// [`run_with_bounds`], also returning the values that set the ring width: those needing the
/// most bits when ℓ is their bits plus the headroom (chosen automatically and not raised by
/// the largest scale or a Circa test ring), else `None`.
pub fn run_detailed(
    g: &mut Graph,
    opts: &Options,
    bounds: Option<&(Vec<f64>, RangeSource)>,
) -> Result<(Report, Option<Vec<ValueId>>), PassError> {
    if g.ring_bits.is_some() {
        return Ok((Report::default(), None));
    }
    let frac = opts.frac_bits;
    if !(1..=30).contains(&frac) {
        return Err(reject(format!("--frac-bits {frac} is outside 1..=30")));
    }
    if let Some(e) = opts.weight_extra_bits.filter(|&e| e > 8) {
        return Err(reject(format!("the weights' extra fractional bits {e} are outside 0..=8")));
    }
    if opts.range_margin_bits > 30 {
        return Err(reject(format!("--range-margin-bits {} is outside 0..=30", opts.range_margin_bits)));
    }
    for (name, &f) in &opts.layer_frac_bits {
        if !(1..=30).contains(&f) {
            return Err(reject(format!("node {name:?}: its fractional bits {f} are outside 1..=30")));
        }
        if !g.live_nodes().any(|(_, n)| n.name == *name) {
            return Err(reject(format!(
                "per-layer fractional bits name {name:?}, but the graph has no node by that name"
            )));
        }
    }
    let p = opts.circa_fault_rate;
    if !(p > 0.0 && p < 1.0) {
        return Err(reject(format!("--circa-fault-rate {p} is outside (0, 1)")));
    }
    let (old_bounds, source) = match bounds {
        Some(b) => b.clone(),
        None => range::bounds(g, opts)?,
    };
    let mut b = Builder {
        old: g,
        g: Graph::new(g.name.clone()),
        map: vec![None; g.values.len()],
        bound: Vec::new(),
        frac,
        layer: &opts.layer_frac_bits,
        truncations: 0,
    };
    b.g.raw_inputs = g.raw_inputs.clone();
    for &v in &g.inputs {
        let value = &g.values[v];
        let nv = b.g.add_input(
            value.name.clone(),
            TensorType { elem: ElemType::Fixed { frac_bits: frac }, shape: value.ty.shape.clone() },
        );
        b.bound.resize(b.g.values.len(), 0.0);
        b.bound[nv.index()] = old_bounds[v.index()];
        b.map[v.index()] = Some(nv);
    }
    for (_, node) in g.live_nodes() {
        let name = node.name.as_str();
        let bound = old_bounds[node.output.index()];
        let mut ins: Vec<ValueId> =
            node.inputs.iter().map(|v| b.map[v.index()].expect("operands come first")).collect();
        let op = match &node.op {
            Op::Dense { weight, bias } | Op::Conv2d { weight, bias, .. } => {
                ins[0] = b.lower(ins[0], name)?;
                let (s, f) =
                    (b.scale(ins[0]) as u32, b.frac_at(name) as u32 + u32::from(opts.weight_extra_bits.unwrap_or(0)));
                let w = b.quantize(*weight, f, name)?;
                let bq = bias.map(|c| b.quantize(c, s + f, name)).transpose()?;
                match node.op.clone() {
                    Op::Dense { .. } => Op::Dense { weight: w, bias: bq },
                    Op::Conv2d { window, groups, .. } => Op::Conv2d { weight: w, bias: bq, window, groups },
                    _ => unreachable!("matched above"),
                }
            }
            Op::Affine { scale, shift } => {
                if scale.is_some() {
                    ins[0] = b.lower(ins[0], name)?;
                }
                let (s, f) = (b.scale(ins[0]) as u32, b.frac_at(name) as u32);
                let out = s + if scale.is_some() { f } else { 0 };
                let sq = scale.map(|c| b.quantize(c, f, name)).transpose()?;
                let tq = shift.map(|c| b.quantize(c, out, name)).transpose()?;
                Op::Affine { scale: sq, shift: tq }
            }
            Op::Add | Op::Sub | Op::Concat { .. } => {
                let top = ins.iter().map(|&v| b.scale(v)).max().unwrap_or(frac);
                for v in &mut ins {
                    *v = b.raise(*v, top, name)?;
                }
                node.op.clone()
            }
            Op::Relu
            | Op::MaxPool { .. }
            | Op::Clip { .. }
            | Op::LeakyRelu { .. }
            | Op::Poly { .. }
            | Op::PlSigmoid
            | Op::PlGelu { .. }
            | Op::Exp2
            | Op::Reciprocal
            | Op::OneHot { .. } => {
                ins[0] = b.lower(ins[0], name)?;
                node.op.clone()
            }
            // The zero point is an integer: scale 0.
            Op::Round { mode, min, max, zero_point, grid } => {
                ins[0] = b.lower(ins[0], name)?;
                let zero_point = zero_point.map(|c| b.quantize(c, 0, name)).transpose()?;
                Op::Round { mode: *mode, min: *min, max: *max, zero_point, grid: *grid }
            }
            Op::Mul | Op::MatMul => {
                for v in &mut ins {
                    *v = b.lower(*v, name)?;
                }
                node.op.clone()
            }
            // The output scale is half the operand's: the operand keeps up to 2F, so the result
            // lands at F with a root of about F significant bits.
            Op::Rsqrt { eps } => {
                ins[0] = b.lower_to(ins[0], b.frac_at(name).saturating_mul(2), name)?;
                let s = b.scale(ins[0]);
                let out_name = g.values[node.output].name.clone();
                let at_zero = veil_ir::eval::ring_ops::rsqrt::eval(Ring::new(MAX_RING_BITS), 0, s, *eps);
                let top = Ring::new(MAX_RING_BITS).decode(at_zero, veil_ir::eval::ring_ops::rsqrt::output_scale(s));
                let nv = b.add(name, &out_name, node.op.clone(), &ins, bound.max(top))?;
                b.map[node.output.index()] = Some(nv);
                continue;
            }
            Op::StochasticRelu { drop_bits, variant, .. } => {
                let s = b.scale(ins[0]);
                let k = drop_bits.unwrap_or(s.saturating_sub(opts.circa_error_bits).max(1));
                let margin = margin_bits(&source, opts);
                let m = test_ring(b.bound[ins[0].index()], s, margin, k, *variant, p);
                Op::StochasticRelu { drop_bits: Some(k), variant: *variant, test_bits: Some(m) }
            }
            Op::BatchNorm { .. } | Op::AvgPool { .. } => {
                return Err(reject(format!("node {name:?}: {} must be removed before quantize", node.op.mnemonic())));
            }
            Op::Truncate { .. } => return Err(reject(format!("node {name:?}: the graph is already fixed-point"))),
            other => other.clone(),
        };
        let out_name = g.values[node.output].name.clone();
        let nv = b.add(name, &out_name, op, &ins, bound)?;
        b.map[node.output.index()] = Some(nv);
    }
    b.g.outputs = g.outputs.iter().map(|v| b.map[v.index()].expect("outputs are live")).collect();

    // Bits each value needs: magnitude at its scale, plus the sign; in execution order, so the
    // first value that does not fit is the one reported.
    let order: Vec<ValueId> = b.g.inputs.iter().copied().chain(b.g.body.iter().map(|&n| b.g.nodes[n].output)).collect();
    let needs: Vec<(ValueId, u32, u8)> = order
        .iter()
        .filter_map(|&v| match b.g.values[v].ty.elem {
            ElemType::Fixed { frac_bits } => {
                let mag = b.bound[v.index()] * (frac_bits as f64).exp2();
                Some((v, (mag + 1.0).log2().ceil() as u32 + 1, frac_bits))
            }
            _ => None,
        })
        .collect();
    let &(widest, need, _) = needs.iter().max_by_key(|(_, n, _)| *n).unwrap_or(&(ValueId::from_index(0), 2, 0));
    let node_of = |g: &Graph, v: ValueId| {
        g.producer(v).map_or_else(|| format!("input {:?}", g.values[v].name), |n| format!("node {:?}", n.name))
    };
    let mut set_by_widest = false;
    let ring = match opts.ring_bits {
        Some(l) if !(2..=MAX_RING_BITS).contains(&l) => {
            return Err(reject(format!("--ring-bits {l} is outside 2..={MAX_RING_BITS}")));
        }
        Some(l) => l as u32,
        // At least two bits above the largest scale: truncations shift by up to that much.
        None => {
            let top_scale = needs.iter().map(|&(_, _, s)| s as u32).max().unwrap_or(0);
            let tests = test_rings(&b.g).map(u32::from).max().unwrap_or(0);
            let wanted = need + headroom(&b.g, &source, opts);
            set_by_widest = wanted > (top_scale + 2).max(tests) && wanted < MAX_RING_BITS as u32;
            wanted.max(top_scale + 2).max(tests).min(MAX_RING_BITS as u32)
        }
    };
    let hint = match source {
        RangeSource::WorstCase { .. } => {
            "; calibrate with --calibrate data.npz (worst-case bounds are loose) or lower --frac-bits"
        }
        RangeSource::Calibration { .. } => "; lower --frac-bits",
    };
    if let Some(&(at, bits, scale)) = needs.iter().find(|(_, n, _)| *n > ring) {
        return Err(reject(format!(
            "{} needs {bits} bits (|value| up to {:.3e} at scale {scale}) but the ring has {ring}{hint}",
            node_of(&b.g, at),
            b.bound[at.index()],
        )));
    }
    // LeakyReLU multiplies its negative operand by the slope at LEAKY_ALPHA_BITS fractional
    // bits before truncating: the product must fit (the automatic ring adds those bits).
    for (_, n) in b.g.live_nodes() {
        let Op::LeakyRelu { alpha } = n.op else { continue };
        let slope =
            ((alpha.abs() as f64) * f64::from(veil_ir::eval::LEAKY_ALPHA_BITS).exp2() + 1.0).log2().ceil() as u32 + 1;
        let out = needs.iter().find(|(v, _, _)| *v == n.output).map_or(0, |&(_, bits, _)| bits);
        let bits = slope.max(out + veil_ir::eval::LEAKY_ALPHA_BITS as u32);
        if bits > ring {
            return Err(reject(format!(
                "node {:?} (LeakyRelu, slope {alpha}) needs {bits} bits for its product with the slope at {} fractional bits but the ring has {ring}; raise --ring-bits or leave it unset",
                n.name,
                veil_ir::eval::LEAKY_ALPHA_BITS
            )));
        }
    }
    // A test ring never exceeds ℓ (only a narrower --ring-bits clamps it: the note says what the
    // fault rate then is).
    let (mut tests, mut clamped, mut widths) = (0, 0.0f64, (u8::MAX, 0u8));
    for n in b.g.body.clone() {
        let Op::StochasticRelu { drop_bits: Some(k), variant, test_bits: Some(want) } = b.g.nodes[n].op else {
            continue;
        };
        let m = want.min(ring as u8);
        if m < want {
            let x = b.bound[b.g.nodes[n].inputs[0].index()] * f64::from(b.scale(b.g.nodes[n].inputs[0])).exp2();
            clamped = clamped.max(circa_wrap_probability(Ring::new(m.max(2)), x.ceil() as u64, k, variant));
        }
        b.g.nodes[n].op = Op::StochasticRelu { drop_bits: Some(k), variant, test_bits: Some(m) };
        tests += 1;
        widths = (widths.0.min(m), widths.1.max(m));
    }
    // Each exact ReLU's and MaxPool's circuits read their operand (its truncation's, which fuses
    // in) in the bits that operand needs plus the ranges' margin, where that is below ℓ: the
    // shares' low bits are a sharing of the value mod 2^w, so the narrowing is free (issue 17).
    // Not under a chosen --ring-bits, whose width the user set for every value.
    b.g.narrow_bits.clear();
    if opts.ring_bits.is_none() {
        let margin = margin_bits(&source, opts);
        let need_of = |v: ValueId| needs.iter().find(|(u, _, _)| *u == v).map(|&(_, bits, _)| bits);
        b.g.narrow_bits =
            b.g.live_nodes()
                .filter(|(_, n)| {
                    (matches!(
                        n.op,
                        Op::Relu | Op::LeakyRelu { .. } | Op::MaxPool { .. } | Op::Clip { .. } | Op::Round { .. }
                    ) || (opts.exact_truncation && standalone_exact(&b.g, n)))
                        && b.g.values[n.inputs[0]].domain == Domain::Shared
                })
                .filter_map(|(id, n)| {
                    let u = n.inputs[0];
                    // A truncation reads its own operand; the others read through the truncation
                    // that fuses into them.
                    let fused_in = !matches!(n.op, Op::Truncate { .. });
                    let (operand, shift) =
                        b.g.producer(u)
                            .filter(|_| fused_in)
                            .and_then(|t| match t.op {
                                Op::Truncate { bits, .. } => Some((t.inputs[0], u32::from(bits))),
                                _ => None,
                            })
                            .unwrap_or((u, 0));
                    // A Clip compares with its bounds in the narrow width: they must fit, with a
                    // bit to spare, above the shift.
                    let scale = match b.g.values[u].ty.elem {
                        ElemType::Fixed { frac_bits } => i32::from(frac_bits),
                        _ => 0,
                    };
                    let bounds = match n.op {
                        Op::Clip { min, max } | Op::Round { min, max, .. } => [min, max]
                            .iter()
                            .flatten()
                            .map(|&c| {
                                let q = (f64::from(c).abs() * f64::from(scale).exp2()).ceil();
                                (q.max(1.0).log2().floor() as u32 + 1) + shift + 2
                            })
                            .max()
                            .unwrap_or(0),
                        _ => 0,
                    };
                    // A rounding needs a bit above the point it rounds at, a truncation three above
                    // its shift.
                    let least = match n.op {
                        Op::Round { .. } => shift + scale as u32 + 2,
                        Op::Truncate { bits, .. } => u32::from(bits) + 3,
                        _ => 0,
                    };
                    let w = (need_of(operand)?.max(need_of(u)?) + margin).max(shift + 3).max(bounds).max(least);
                    (w < ring).then_some((id, w as u8))
                })
                .collect();
    }
    let widest_at = node_of(&b.g, widest);
    b.g.ring_bits = Some(ring as u8);
    b.g.input_bound = Some(source.input_bound());
    let mut report = Report::default();
    report.note(match source {
        RangeSource::Calibration { samples, input_bound } => {
            format!("ranges from {samples} calibration sample(s), ×2 headroom; inputs must satisfy |x| ≤ {input_bound}")
        }
        RangeSource::WorstCase { input_bound } => format!("worst-case ranges for |input| ≤ {input_bound}"),
    });
    report.note(format!(
        "F = {frac} fractional bits, ring ℓ = {ring} bits; widest value needs {need} bits ({widest_at})"
    ));
    if !opts.layer_frac_bits.is_empty() {
        let mut own: Vec<String> = opts.layer_frac_bits.iter().map(|(n, f)| format!("{n} {f}")).collect();
        let more = own.len().saturating_sub(6);
        own.truncate(6);
        let more = if more > 0 { format!(", and {more} more") } else { String::new() };
        report.note(format!("per-layer F in {} node(s): {}{more}", opts.layer_frac_bits.len(), own.join(", ")));
    }
    report.note(format!("inserted {} truncation(s)", b.truncations));
    if tests > 0 {
        report.note(format!(
            "{tests} Circa sign test(s) in test rings of {}..={} bits (fault budget {p:.3e} per test from share wrap-around)",
            widths.0, widths.1
        ));
    }
    if clamped > p {
        report.note(format!(
            "--ring-bits {ring} narrows a Circa test ring: its wrap-around fault rate is up to {clamped:.3e}"
        ));
    }
    if needs_headroom(&b.g, opts) {
        if ring < need + HEADROOM_BITS {
            report.note(format!("a local truncation would wrap with probability up to 2^-{} per element", ring - need));
        }
    } else {
        report.note("every truncation runs in a garbled circuit: the ring needs no headroom for local truncations");
    }
    if b.g.live_nodes().any(|(_, n)| matches!(n.op, Op::Rsqrt { .. })) {
        report.note(normalisation_note(&b.g, &source, opts));
    }
    let widest_values =
        set_by_widest.then(|| needs.iter().filter(|(_, n, _)| *n == need).map(|&(v, _, _)| v).collect());
    *g = b.g;
    Ok((report, widest_values))
}

/// What the error bound on the outputs of a graph with inverse square roots is and what it
/// rests on: calibrated, it holds for the calibration inputs; worst case, it is sound but loose,
/// and the note says why.
fn normalisation_note(g: &Graph, source: &RangeSource, opts: &Options) -> String {
    let out = |e: &[f64]| g.outputs.iter().map(|v| e[v.index()]).fold(0f64, f64::max);
    match source {
        RangeSource::Calibration { samples, .. } => match error_bound::calibrated_error_bounds(g, &opts.calibration) {
            Ok(e) => format!(
                "error bound on the outputs {:.3e} for the {samples} calibration sample(s) (values within the ×2 \
                 ranges, each inverse square root's operand at least half the smallest seen)",
                out(&e)
            ),
            Err(e) => format!("no calibrated error bound: {e}"),
        },
        RangeSource::WorstCase { input_bound } => format!(
            "error bound on the outputs {:.3e} for |input| ≤ {input_bound}, loose: without --calibrate an inverse \
             square root's operand (a variance) may be as small as 0, where 1/√(x + ε) has slope ½·ε^(−3/2); \
             --calibrate for a bound that uses the smallest variance seen",
            out(&error_bound::error_bounds(g, *input_bound as f64))
        ),
    }
}

/// Whether a local truncation will remain after `fuse_truncation`.
fn needs_headroom(g: &Graph, opts: &Options) -> bool {
    g.live_nodes().any(|(_, n)| match n.op {
        Op::Truncate { .. } => crate::fuse_truncation::stays_local(g, n.output, opts),
        _ => false,
    })
}

/// The Circa sign tests' test ring widths as `quantize` chose them.
fn test_rings(g: &Graph) -> impl Iterator<Item = u8> + '_ {
    g.live_nodes().filter_map(|(_, n)| match n.op {
        Op::StochasticRelu { test_bits: Some(m), .. } => Some(m),
        _ => None,
    })
}

/// The smallest width `m` of the test ring for a Circa sign test dropping `k` bits of a value
/// with `|x| ≤ bound` at scale `scale` (the bound widened by 2^`margin`), such that its
/// wrap-around fault rate ([`circa_wrap_probability`]) is at most `p`; [`MAX_RING_BITS`] if
/// none is (the value check then refuses the plan, or the note reports the rate).
fn test_ring(bound: f64, scale: u8, margin: u32, k: u8, variant: CircaVariant, p: f64) -> u8 {
    let x = (bound * f64::from(u32::from(scale) + margin).exp2()).ceil();
    (k.saturating_add(2)..=MAX_RING_BITS)
        .find(|&m| x < ((m - 1) as f64).exp2() && circa_wrap_probability(Ring::new(m), x as u64, k, variant) <= p)
        .unwrap_or(MAX_RING_BITS)
}

/// Bits of margin above the ranges: [`Options::range_margin_bits`] over calibrated ones (values
/// may exceed what calibration saw), none over worst-case ones (they are sound).
fn margin_bits(source: &RangeSource, opts: &Options) -> u32 {
    match source {
        RangeSource::WorstCase { .. } => 0,
        RangeSource::Calibration { .. } => u32::from(opts.range_margin_bits),
    }
}

/// Bits the automatic ring adds above the widest value (see the module doc).
fn headroom(g: &Graph, source: &RangeSource, opts: &Options) -> u32 {
    if needs_headroom(g, opts) {
        return HEADROOM_BITS;
    }
    let margin = margin_bits(source, opts);
    let leaky = g.live_nodes().any(|(_, n)| matches!(n.op, Op::LeakyRelu { .. }));
    margin + if leaky { veil_ir::eval::LEAKY_ALPHA_BITS as u32 } else { 0 }
}
