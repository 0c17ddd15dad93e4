//! `RNN`, `GRU` and `LSTM`, unrolled over their (static) sequence length into ops the IR
//! already has: dense layers, the piecewise-linear sigmoid on shares (`pl_sigmoid`; tanh is
//! `2·σ(2x) − 1`), products of two shared values (Beaver) and data movement.
//!
//! Per direction, the input's projection `X·Wᵀ + b` for every step is one dense layer over the
//! `[T·B, I]` rows (one linear layer, however long the sequence); each step then adds the
//! recurrent projection `H·Rᵀ` (one dense layer per step, on the previous step's output, so the
//! steps run one after another) and applies ONNX's equations with the default activations:
//! - RNN: `H = tanh(x + H·Rᵀ)`;
//! - GRU (gates z, r, h): `z = σ(…)`, `r = σ(…)`, `h̃ = tanh(x_h + (r ⊙ H)·R_hᵀ + Rb_h)`, or with
//!   `linear_before_reset` `tanh(x_h + r ⊙ (H·R_hᵀ + Rb_h))`, then `H = h̃ + z ⊙ (H − h̃)`;
//! - LSTM (gates i, o, f, c): `C = f ⊙ C + i ⊙ tanh(…)`, `H = o ⊙ tanh(C)`.
//!
//! The initial state is zero (absent or given as zeros), so the first step has no recurrent
//! term. An LSTM's peepholes `P ⊙ C` are dense layers with the diagonal weight. Refused by
//! name: other activations, `clip`, `input_forget`, a non-zero or computed initial state, and
//! `sequence_lens` shorter than the sequence. Both layouts and all
//! three directions are supported; `Y`, `Y_h` and `Y_c` are stacked as ONNX lays them out.

use veil_ir::{Op, ValueId};

use super::nn::tanh_value;
use super::{arg, konst, opt_const};
use crate::onnx::consts::CTensor;
use crate::onnx::import::{Ctx, Importer, Sym};

/// The longest sequence unrolled (each step is a few dozen IR nodes and one round trip).
pub const MAX_STEPS: usize = 4096;

#[derive(Clone, Copy, PartialEq)]
enum Cell {
    Rnn,
    Gru { linear_before_reset: bool },
    Lstm,
}

impl Cell {
    fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Gru { .. } => 3,
            Cell::Lstm => 4,
        }
    }

    fn default_activations(self) -> &'static [&'static str] {
        match self {
            Cell::Rnn => &["Tanh"],
            Cell::Gru { .. } => &["Sigmoid", "Tanh"],
            Cell::Lstm => &["Sigmoid", "Tanh", "Tanh"],
        }
    }
}

/// The node's shapes and weights.
struct Layer<'a> {
    cell: Cell,
    /// Sequence length, batch, hidden size.
    t: usize,
    b: usize,
    hs: usize,
    w: &'a CTensor,
    r: &'a CTensor,
    /// `[D, 2·G·Hs]`: `Wb` then `Rb` per direction (zeros when absent).
    bias: Vec<f32>,
    /// An LSTM's peephole weights `[D, 3·Hs]` (`P_i`, `P_o`, `P_f`), when given and not zero.
    peepholes: Option<Vec<f32>>,
    name: String,
}

impl Layer<'_> {
    /// Rows `[from, to)` of direction `d`'s `[G·Hs, k]` block of `m`.
    fn rows(&self, m: &CTensor, d: usize, (from, to): (usize, usize)) -> Vec<f32> {
        let k = m.shape[2];
        let g = self.cell.gates() * self.hs;
        m.floats()[(d * g + from) * k..(d * g + to) * k].to_vec()
    }

    /// Bias entries `[from, to)` of direction `d`'s `Wb` (`recurrent`: `Rb`).
    fn bias(&self, d: usize, recurrent: bool, (from, to): (usize, usize)) -> Vec<f32> {
        let g = self.cell.gates() * self.hs;
        let at = d * 2 * g + usize::from(recurrent) * g;
        self.bias[at + from..at + to].to_vec()
    }
}

/// The `RNN`, `GRU` or `LSTM` node: see the module doc.
pub fn recurrent(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let cell = match ctx.node.op_type() {
        "RNN" => Cell::Rnn,
        "GRU" => Cell::Gru { linear_before_reset: ctx.attrs.int_or("linear_before_reset", 0)? != 0 },
        _ => Cell::Lstm,
    };
    refuse_unsupported(ctx, inputs, cell)?;
    let x = imp.value(arg(inputs, 0)?)?;
    let layout = ctx.attrs.int_or("layout", 0)?;
    let [a0, a1, isz] = imp.ty(x).shape[..] else {
        return Err(format!("X must be [seq_length, batch, input_size], got {:?}", imp.ty(x).shape));
    };
    let (t, b) = match layout {
        0 => (a0, a1),
        1 => (a1, a0),
        other => return Err(format!("layout = {other} is not 0 or 1")),
    };
    if t > MAX_STEPS {
        return Err(format!("a sequence of {t} steps is longer than the {MAX_STEPS} Veil unrolls"));
    }
    let directions: &[bool] = match ctx.attrs.string("direction")?.as_deref().unwrap_or("forward") {
        "forward" => &[false],
        "reverse" => &[true],
        "bidirectional" => &[false, true],
        other => return Err(format!("direction {other:?} is not forward, reverse or bidirectional")),
    };
    let nd = directions.len();
    let (w, r) = (konst(inputs, 1, "W")?, konst(inputs, 2, "R")?);
    let g = cell.gates();
    let hs = match w.shape[..] {
        [d, rows, i] if d == nd && i == isz && rows % g == 0 && rows > 0 => rows / g,
        _ => return Err(format!("W has shape {:?}, expected [{nd}, {g}·hidden_size, {isz}]", w.shape)),
    };
    if let Some(h) = ctx.attrs.int("hidden_size")?
        && h != hs as i64
    {
        return Err(format!("hidden_size = {h} does not match W's {hs}"));
    }
    if r.shape != [nd, g * hs, hs] {
        return Err(format!("R has shape {:?}, expected [{nd}, {}, {hs}]", r.shape, g * hs));
    }
    let bias = match opt_const(inputs, 3, "B")? {
        Some(bt) if bt.shape == [nd, 2 * g * hs] => bt.floats(),
        Some(bt) => return Err(format!("B has shape {:?}, expected [{nd}, {}]", bt.shape, 2 * g * hs)),
        None => vec![0.0; nd * 2 * g * hs],
    };
    if let Some(lens) = opt_const(inputs, 4, "sequence_lens")?
        && lens.ints()?.iter().any(|&l| l != t as i64)
    {
        return Err(format!("sequence_lens must be the whole sequence ({t}) for every batch element"));
    }
    let peepholes = match opt_const(inputs, 7, "P")? {
        Some(p) if cell == Cell::Lstm && p.shape != [nd, 3 * hs] => {
            return Err(format!("P has shape {:?}, expected [{nd}, {}]", p.shape, 3 * hs));
        }
        Some(p) if p.floats().iter().any(|&v| v != 0.0) => Some(p.floats()),
        _ => None,
    };
    let layer = Layer { cell, t, b, hs, w, r, bias, peepholes, name: ctx.name.clone() };
    // Time-major rows [T·B, I].
    let xt = match layout {
        0 => x,
        _ => imp.add(&ctx.name, &format!("{}/time_major", ctx.name), Op::Transpose { perm: vec![1, 0, 2] }, &[x])?,
    };
    let rows = imp.add(&ctx.name, &format!("{}/rows", ctx.name), Op::Reshape { shape: vec![t * b, isz] }, &[xt])?;
    // Per direction, the states in time order (H, and C for an LSTM).
    let mut hs_by_dir = Vec::with_capacity(nd);
    let mut last = Vec::with_capacity(nd);
    for (d, &reverse) in directions.iter().enumerate() {
        let (h, c) = direction(imp, &layer, rows, d, reverse)?;
        let final_step = if reverse { 0 } else { t - 1 };
        last.push((h[final_step], c.as_ref().map(|c| c[final_step])));
        hs_by_dir.push(h);
    }
    let mut outs = Vec::with_capacity(ctx.node.output.len());
    for (k, out) in ctx.node.output.iter().enumerate() {
        let parts: Vec<ValueId> = match k {
            0 => (0..t).flat_map(|s| hs_by_dir.iter().map(move |h| h[s])).collect(),
            1 => last.iter().map(|l| l.0).collect(),
            _ => last.iter().filter_map(|l| l.1).collect(),
        };
        if out.is_empty() || parts.is_empty() {
            outs.push(Sym::Value(parts.first().copied().unwrap_or(rows)));
            continue;
        }
        outs.push(Sym::Value(stack(imp, ctx, out, &parts, k == 0, (t, nd, b, hs), layout != 0)?));
    }
    Ok(outs)
}

fn refuse_unsupported(ctx: &Ctx, inputs: &[Option<Sym>], cell: Cell) -> Result<(), String> {
    if let Some(acts) = ctx.attrs.strings("activations")? {
        let want = cell.default_activations();
        let directions = acts.len() / want.len().max(1);
        let ok = !acts.is_empty()
            && acts.len() % want.len() == 0
            && acts.iter().enumerate().all(|(i, a)| a.eq_ignore_ascii_case(want[i % want.len()]));
        if !ok || directions > 2 {
            return Err(format!("activations {acts:?} are not supported: Veil runs the defaults {want:?}"));
        }
    }
    for attr in ["clip", "activation_alpha", "activation_beta"] {
        if ctx.attrs.has(attr) {
            return Err(format!("attribute {attr} is not supported"));
        }
    }
    if ctx.attrs.int_or("input_forget", 0)? != 0 {
        return Err("input_forget = 1 is not supported".into());
    }
    let zero_or_absent = |i: usize, what: &str| -> Result<(), String> {
        match inputs.get(i).and_then(Option::as_ref) {
            None => Ok(()),
            Some(Sym::Const(c)) if c.floats().iter().all(|&v| v == 0.0) => Ok(()),
            Some(_) => Err(format!("a non-zero or computed {what} is not supported (Veil starts from zeros)")),
        }
    };
    zero_or_absent(5, "initial_h")?;
    if cell == Cell::Lstm {
        zero_or_absent(6, "initial_c")?;
        if let Some(Some(Sym::Value(_))) = inputs.get(7) {
            return Err("computed peephole weights P are not supported (they must be weights)".into());
        }
    }
    Ok(())
}

/// One direction's steps: the hidden states in time order, and an LSTM's cell states.
fn direction(
    imp: &mut Importer,
    l: &Layer,
    rows: ValueId,
    d: usize,
    reverse: bool,
) -> Result<(Vec<ValueId>, Option<Vec<ValueId>>), String> {
    let (g, hs, b, t) = (l.cell.gates(), l.hs, l.b, l.t);
    let isz = l.w.shape[2];
    // The input projection of every step, with the biases that sit outside the reset gate.
    let mut pbias = l.bias(d, false, (0, g * hs));
    let rb = l.bias(d, true, (0, g * hs));
    let inside = matches!(l.cell, Cell::Gru { linear_before_reset: true });
    for (k, v) in pbias.iter_mut().enumerate() {
        if !(inside && k >= 2 * hs) {
            *v += rb[k];
        }
    }
    let n = &l.name;
    let weight = imp.weight(&format!("{n}.W{d}"), vec![g * hs, isz], l.rows(l.w, d, (0, g * hs)));
    let bias = imp.weight(&format!("{n}.B{d}"), vec![g * hs], pbias);
    let proj = imp.add(n, &format!("{n}/d{d}/x_proj"), Op::Dense { weight, bias: Some(bias) }, &[rows])?;
    // Gate `k` of step time `time`: a [B, Hs] slice of the projection.
    let gate = |imp: &mut Importer, v: ValueId, row0: usize, k: usize, width: usize, what: &str| {
        let indices: Vec<u32> =
            (0..b).flat_map(|i| (0..hs).map(move |j| ((row0 + i) * width + k * hs + j) as u32)).collect();
        imp.add(n, what, Op::Select { indices, shape: vec![b, hs] }, &[v])
    };
    // The recurrent weights, once per direction: rows [from, to) of R (with a GRU's Rb_h inside
    // the reset gate as the bias of its h rows).
    let mut blocks = std::collections::HashMap::new();
    let spans: &[(usize, usize)] = match l.cell {
        Cell::Rnn => &[(0, hs)],
        Cell::Gru { linear_before_reset: false } => &[(0, 2 * hs), (2 * hs, 3 * hs)],
        Cell::Gru { linear_before_reset: true } => &[(0, 3 * hs)],
        Cell::Lstm => &[(0, 4 * hs)],
    };
    for &(from, to) in spans {
        let wr = imp.weight(&format!("{n}.R{d}.{from}"), vec![to - from, hs], l.rows(l.r, d, (from, to)));
        let br = inside.then(|| {
            let bias = [vec![0.0; 2 * hs], rb_h(l, d)].concat();
            imp.weight(&format!("{n}.Rb{d}"), vec![3 * hs], bias)
        });
        blocks.insert(from, (wr, br, to - from));
    }
    // An LSTM's peepholes as diagonal [Hs, Hs] weights, `P_i`, `P_o`, `P_f`.
    let peeps: Option<Vec<veil_ir::Const>> = l.peepholes.as_ref().map(|pv| {
        (0..3)
            .map(|k| {
                let mut diag = vec![0f32; hs * hs];
                (0..hs).for_each(|j| diag[j * hs + j] = pv[d * 3 * hs + k * hs + j]);
                imp.weight(&format!("{n}.P{d}.{k}"), vec![hs, hs], diag)
            })
            .collect()
    });
    let mut hs_out = vec![None; t];
    let mut cs_out = vec![None; t];
    let (mut h, mut c): (Option<ValueId>, Option<ValueId>) = (None, None);
    for step in 0..t {
        let time = if reverse { t - 1 - step } else { step };
        let p = |s: &str| format!("{n}/d{d}/t{time}/{s}");
        let x: Vec<ValueId> =
            (0..g).map(|k| gate(imp, proj, time * b, k, g * hs, &p(&format!("x{k}")))).collect::<Result<_, _>>()?;
        let add = |imp: &mut Importer, a: ValueId, b2: Option<ValueId>, what: &str| match b2 {
            Some(b2) => imp.add(n, &p(what), Op::Add, &[a, b2]),
            None => Ok(a),
        };
        let mul = |imp: &mut Importer, a: ValueId, b2: ValueId, what: &str| imp.add(n, &p(what), Op::Mul, &[a, b2]);
        let sigmoid = |imp: &mut Importer, a: ValueId, what: &str| imp.add(n, &p(what), Op::PlSigmoid, &[a]);
        // The recurrent projection of the previous state, rows [from, to) of R, split by gate.
        let recur = |imp: &mut Importer, v: ValueId, from: usize, what: &str| {
            let (weight, bias, width) = blocks[&from];
            let y = imp.add(n, &p(what), Op::Dense { weight, bias }, &[v])?;
            (0..width / hs)
                .map(|k| gate(imp, y, 0, k, width, &p(&format!("{what}{k}"))))
                .collect::<Result<Vec<_>, String>>()
        };
        let new_h = match l.cell {
            Cell::Rnn => {
                let rh = h.map(|h| recur(imp, h, 0, "h_proj")).transpose()?;
                let pre = add(imp, x[0], rh.map(|v| v[0]), "pre")?;
                tanh_value(imp, n, &p("h"), pre)?
            }
            Cell::Gru { linear_before_reset } => {
                let zr = match (h, linear_before_reset) {
                    (Some(h), false) => Some(recur(imp, h, 0, "zr_proj")?),
                    (Some(h), true) => Some(recur(imp, h, 0, "zrh_proj")?),
                    (None, _) => None,
                };
                let z_pre = add(imp, x[0], zr.as_ref().map(|v| v[0]), "z_pre")?;
                let z = sigmoid(imp, z_pre, "z")?;
                let r_pre = add(imp, x[1], zr.as_ref().map(|v| v[1]), "r_pre")?;
                let inner = match (h, linear_before_reset) {
                    (Some(h), false) => {
                        let r = sigmoid(imp, r_pre, "r")?;
                        let rh = mul(imp, r, h, "r_h")?;
                        Some(recur(imp, rh, 2 * hs, "h_proj")?[0])
                    }
                    (Some(_), true) => {
                        let r = sigmoid(imp, r_pre, "r")?;
                        Some(mul(imp, r, zr.as_ref().expect("computed")[2], "r_h")?)
                    }
                    // No state yet: (r ⊙ 0)·Rᵀ is zero; r ⊙ Rb_h is not: a dense layer with the
                    // diagonal weight Rb_h (the server's). Not `0·x + Rb_h` and a Beaver product:
                    // that value's client share is always 0, which a local truncation, made for
                    // uniformly random shares, then wraps (session 31: a 1-step GRU ended 0.7 off).
                    (None, true) if rb_h(l, d).iter().any(|&v| v != 0.0) => {
                        let r = sigmoid(imp, r_pre, "r")?;
                        let mut diag = vec![0f32; hs * hs];
                        rb_h(l, d).iter().enumerate().for_each(|(j, &v)| diag[j * hs + j] = v);
                        let rb = imp.weight(&format!("{n}.Rb{d}.h"), vec![hs, hs], diag);
                        Some(imp.add(n, &p("r_h"), Op::Dense { weight: rb, bias: None }, &[r])?)
                    }
                    (None, _) => None,
                };
                let h_pre = add(imp, x[2], inner, "h_pre")?;
                let cand = tanh_value(imp, n, &p("candidate"), h_pre)?;
                // H = h̃ + z ⊙ (H − h̃), with H = 0 at the first step.
                let diff = match h {
                    Some(h) => imp.add(n, &p("h_minus"), Op::Sub, &[h, cand])?,
                    None => {
                        let minus = imp.public(&format!("{n}.minus_one"), vec![], vec![-1.0]);
                        imp.add(n, &p("h_minus"), Op::Affine { scale: Some(minus), shift: None }, &[cand])?
                    }
                };
                let kept = mul(imp, z, diff, "z_diff")?;
                imp.add(n, &p("h"), Op::Add, &[cand, kept])?
            }
            Cell::Lstm => {
                let rh = h.map(|h| recur(imp, h, 0, "h_proj")).transpose()?;
                let pre = |imp: &mut Importer, k: usize, what: &str| add(imp, x[k], rh.as_ref().map(|v| v[k]), what);
                let (i_pre, o_pre, f_pre, c_pre) =
                    (pre(imp, 0, "i_pre")?, pre(imp, 1, "o_pre")?, pre(imp, 2, "f_pre")?, pre(imp, 3, "c_pre")?);
                // Peepholes: P ⊙ C as a dense layer with the diagonal weight (the server's).
                let peep =
                    |imp: &mut Importer, k: usize, v: Option<ValueId>, what: &str| -> Result<Option<ValueId>, String> {
                        match (&peeps, v) {
                            (Some(w), Some(v)) => {
                                Ok(Some(imp.add(n, &p(what), Op::Dense { weight: w[k], bias: None }, &[v])?))
                            }
                            _ => Ok(None),
                        }
                    };
                let pi = peep(imp, 0, c, "peep_i")?;
                let i_pre = add(imp, i_pre, pi, "i_peep")?;
                let i = sigmoid(imp, i_pre, "i")?;
                let cand = tanh_value(imp, n, &p("candidate"), c_pre)?;
                let ic = mul(imp, i, cand, "i_c")?;
                let new_c = match c {
                    Some(c) => {
                        let pf = peep(imp, 2, Some(c), "peep_f")?;
                        let f_pre = add(imp, f_pre, pf, "f_peep")?;
                        let f = sigmoid(imp, f_pre, "f")?;
                        let fc = mul(imp, f, c, "f_c")?;
                        imp.add(n, &p("c"), Op::Add, &[fc, ic])?
                    }
                    None => ic,
                };
                c = Some(new_c);
                cs_out[time] = Some(new_c);
                let po = peep(imp, 1, Some(new_c), "peep_o")?;
                let o_pre = add(imp, o_pre, po, "o_peep")?;
                let o = sigmoid(imp, o_pre, "o")?;
                let tc = tanh_value(imp, n, &p("tanh_c"), new_c)?;
                mul(imp, o, tc, "h")?
            }
        };
        h = Some(new_h);
        hs_out[time] = Some(new_h);
    }
    let hs_out = hs_out.into_iter().map(|v| v.expect("every step ran")).collect();
    let cs_out = (l.cell == Cell::Lstm).then(|| cs_out.into_iter().map(|v| v.expect("every step ran")).collect());
    Ok((hs_out, cs_out))
}

/// The recurrent bias of a GRU's h gate, `Rb_h` (`[Hs]`).
fn rb_h(l: &Layer, d: usize) -> Vec<f32> {
    l.bias(d, true, (2 * l.hs, 3 * l.hs))
}

/// Stacks `[B, Hs]` states as ONNX's `Y` (`[T, D, B, Hs]`; layout 1: `[B, T, D, Hs]`) or
/// `Y_h`/`Y_c` (`[D, B, Hs]`; layout 1: `[B, D, Hs]`).
fn stack(
    imp: &mut Importer,
    ctx: &Ctx,
    out: &str,
    parts: &[ValueId],
    sequence: bool,
    (t, nd, b, hs): (usize, usize, usize, usize),
    batch_major: bool,
) -> Result<ValueId, String> {
    let n = &ctx.name;
    let lifted: Vec<ValueId> = parts
        .iter()
        .enumerate()
        .map(|(i, &v)| imp.add(n, &format!("{out}/part{i}"), Op::Reshape { shape: vec![1, b, hs] }, &[v]))
        .collect::<Result<_, _>>()?;
    let joined = match lifted[..] {
        [one] => one,
        _ => imp.add(n, &format!("{out}/stacked"), Op::Concat { axis: 0 }, &lifted)?,
    };
    let (shape, perm) = match sequence {
        true => (vec![t, nd, b, hs], vec![2, 0, 1, 3]),
        false => (vec![nd, b, hs], vec![1, 0, 2]),
    };
    if !batch_major {
        return imp.add(n, out, Op::Reshape { shape }, &[joined]);
    }
    let v = imp.add(n, &format!("{out}/time_major"), Op::Reshape { shape }, &[joined])?;
    imp.add(n, out, Op::Transpose { perm }, &[v])
}
