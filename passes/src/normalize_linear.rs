//! `normalize_linear`: puts linear algebra in the forms the protocols run best.
//!
//! Requires a verified graph without `batchnorm` (run `fold_batchnorm` first). Does, in order:
//! 1. `avgpool` → `sumpool` followed by an `affine` multiplying by the public divisor (a scalar
//!    `1/(kh·kw)`, or a per-position map when padding is not counted);
//! 2. an `affine` whose constants are per output channel, after a `dense`/`conv2d` that nothing
//!    else reads, is folded into that layer's weights and bias (`MatMul` + `Add` bias, `Conv` +
//!    per-channel scale, ...);
//! 3. an `affine` that only multiplies by a scalar, followed (through reshapes, transposes and
//!    sum pools read by nothing else) by a `dense`/`conv2d`, is folded into that layer's weights
//!    (a global average pool before a classifier costs no truncation).
//!
//! 4. any other `affine` with per-channel constants (an input normalisation `(x − mean) / std`)
//!    read only by a `dense`/`conv2d` is folded into that layer: the weights are scaled per
//!    input channel, and the shift's contribution `W·t` joins the bias, or, where zero padding
//!    makes it vary with the output position, becomes a shift after the layer (local on shares).
//!    Without this, a secret scale on the client's input has no two-party protocol.
//!
//! 5. any `affine` left with a server-private scale (a LayerNormalization's `γ` with no linear
//!    layer right after it, ConvNeXt's layer scale) that varies along the last axis only
//!    becomes a `dense` with the diagonal weight `diag(scale)`, or one along the channels of
//!    `[N, C, H, W]` a depthwise 1×1 `conv2d`, with the shift as its bias: the linear-layer
//!    protocol then runs it, where an elementwise secret scale on shares has none.
//!
//! Preserves float semantics up to f32 rounding. Does not merge consecutive linear layers.

use veil_ir::{Const, Domain, Graph, NodeId, Op, ValueId, Window2d};

use crate::util::{derived_const, per_channel, public_const, sole_producer};
use crate::{Options, PassError, Report};

/// Output-channel axis of a linear layer's output.
fn channel_axis(op: &Op, rank: usize) -> Option<usize> {
    match op {
        Op::Conv2d { .. } => Some(1),
        Op::Dense { .. } => Some(rank - 1),
        _ => None,
    }
}

/// Replaces a linear layer's weight and bias (`scale` per output channel, then `shift`).
fn rescale_layer(g: &mut Graph, p: NodeId, scale: &[f32], shift: &[f32], tag: &str) {
    let (Op::Conv2d { weight, bias, .. } | Op::Dense { weight, bias }) = g.nodes[p].op.clone() else {
        unreachable!("called on linear layers")
    };
    let m = scale.len();
    let per = g.consts[weight].data.len() / m;
    let w: Vec<f32> = g.consts[weight].data.iter().enumerate().map(|(i, &v)| v * scale[i / per]).collect();
    let b: Vec<f32> = (0..m).map(|i| bias.map_or(0.0, |b| g.consts[b].data[i]) * scale[i] + shift[i]).collect();
    let name = g.nodes[p].name.clone();
    let wshape = g.consts[weight].shape.clone();
    let new_w = derived_const(g, weight, format!("{name}.weight+{tag}"), wshape, w);
    let new_b = derived_const(g, weight, format!("{name}.bias+{tag}"), vec![m], b);
    if let Op::Conv2d { weight, bias, .. } | Op::Dense { weight, bias } = &mut g.nodes[p].op {
        (*weight, *bias) = (new_w, Some(new_b));
    }
}

/// Step 1: one avgpool to sumpool + affine.
fn split_avgpool(g: &mut Graph, n: NodeId, window: Window2d, count_include_pad: bool) {
    let x = g.nodes[n].inputs[0];
    let out = g.nodes[n].output;
    let [_, _, h, w] = g.values[x].ty.shape[..] else { unreachable!("verified: pool input is 4-D") };
    let [_, _, oh, ow] = g.values[out].ty.shape[..] else { unreachable!("verified: pool output is 4-D") };
    let name = g.nodes[n].name.clone();
    let k = (window.kernel[0] * window.kernel[1]) as f32;
    let unpadded = window.pads == [0; 4];
    let scale = if count_include_pad || unpadded {
        public_const(g, format!("{name}.divisor"), vec![], vec![1.0 / k])
    } else {
        // Count the window's in-image taps per output position.
        let ones = veil_ir::Tensor { shape: vec![1, 1, h, w], data: vec![1.0; h * w] };
        let counts = veil_ir::eval::kernels::pool(&ones, &window, veil_ir::eval::kernels::Pool::Sum);
        public_const(g, format!("{name}.divisor"), vec![1, 1, oh, ow], counts.data.iter().map(|c| 1.0 / c).collect())
    };
    let pos = g.position(n).expect("live node");
    let sum_name = g.fresh_name(&format!("{}/sum", g.values[out].name));
    let sum =
        g.insert_node(pos, name.clone(), sum_name, Op::SumPool { window }, &[x]).expect("same window typed before");
    g.nodes[n].op = Op::Affine { scale: Some(scale), shift: None };
    g.nodes[n].inputs = vec![sum];
}

/// Step 2: folds the affine `n` into the linear layer producing its operand, if it can.
fn fold_backward(g: &mut Graph, n: NodeId, scale: Option<Const>, shift: Option<Const>) -> bool {
    let x = g.nodes[n].inputs[0];
    let Some(p) = sole_producer(g, x) else { return false };
    let shape = g.values[x].ty.shape.clone();
    let Some(axis) = channel_axis(&g.nodes[p].op, shape.len()) else { return false };
    let m = shape[axis];
    let s = match scale {
        Some(c) => per_channel(g, c, &shape, axis),
        None => Some(vec![1.0; m]),
    };
    let t = match shift {
        Some(c) => per_channel(g, c, &shape, axis),
        None => Some(vec![0.0; m]),
    };
    let (Some(s), Some(t)) = (s, t) else { return false };
    // Folding a public constant into secret weights is fine; the reverse cannot happen here.
    let tag = g.nodes[n].name.clone();
    rescale_layer(g, p, &s, &t, &tag);
    let out = g.nodes[n].output;
    g.replace_uses(out, x);
    g.remove_node(n);
    true
}

/// Step 3: folds a scalar-only affine into the next linear layer, through data movement.
fn fold_forward(g: &mut Graph, n: NodeId, scale: Const) -> bool {
    if g.consts[scale].data.len() != 1 {
        return false;
    }
    let factor = g.consts[scale].data[0];
    let mut v: ValueId = g.nodes[n].output;
    let target = loop {
        if !g.has_single_user(v) {
            return false;
        }
        let u = g.users(v)[0];
        match g.nodes[u].op {
            // A scalar factor commutes with data movement and with window sums.
            Op::Reshape { .. } | Op::Transpose { .. } | Op::SumPool { .. } => v = g.nodes[u].output,
            Op::Dense { .. } | Op::Conv2d { .. } => break u,
            _ => return false,
        }
    };
    // W·(s·x) + b = (s·W)·x + b, also through zero padding: only the weight changes.
    let (Op::Conv2d { weight, .. } | Op::Dense { weight, .. }) = g.nodes[target].op.clone() else {
        unreachable!("matched above")
    };
    let w: Vec<f32> = g.consts[weight].data.iter().map(|&v| v * factor).collect();
    let name = g.nodes[target].name.clone();
    let tag = g.nodes[n].name.clone();
    let wshape = g.consts[weight].shape.clone();
    let new_w = derived_const(g, weight, format!("{name}.weight+{tag}"), wshape, w);
    if let Op::Conv2d { weight, .. } | Op::Dense { weight, .. } = &mut g.nodes[target].op {
        *weight = new_w;
    }
    let (out, x) = (g.nodes[n].output, g.nodes[n].inputs[0]);
    g.replace_uses(out, x);
    g.remove_node(n);
    true
}

/// Step 4: folds the per-channel affine `n` (`x·s + t`) into the linear layer that alone reads it.
fn fold_into_next(g: &mut Graph, n: NodeId, scale: Option<Const>, shift: Option<Const>) -> bool {
    let (out, x) = (g.nodes[n].output, g.nodes[n].inputs[0]);
    if !g.has_single_user(out) {
        return false;
    }
    let l = g.users(out)[0];
    let shape = g.values[x].ty.shape.clone();
    let (weight, bias, conv) = match &g.nodes[l].op {
        Op::Dense { weight, bias } => (*weight, *bias, None),
        Op::Conv2d { weight, bias, window, groups } => (*weight, *bias, Some((*window, *groups))),
        _ => return false,
    };
    let axis = if conv.is_some() { 1 } else { shape.len() - 1 };
    let channels = shape[axis];
    let s = scale.map_or(Some(vec![1.0; channels]), |c| per_channel(g, c, &shape, axis));
    let t = shift.map_or(Some(vec![0.0; channels]), |c| per_channel(g, c, &shape, axis));
    let (Some(s), Some(t)) = (s, t) else { return false };
    let w = g.consts[weight].data.clone();
    let wshape = g.consts[weight].shape.clone();
    let m = wshape[0];
    let per_out = w.len() / m;
    // The input channel each weight element multiplies.
    let in_channel = |i: usize| match conv {
        Some((_, groups)) => {
            let (cg, mg, taps) = (channels / groups, m / groups, per_out / (channels / groups));
            let (oc, ic) = (i / per_out, (i % per_out) / taps);
            (oc / mg) * cg + ic
        }
        None => i % per_out,
    };
    let scaled: Vec<f32> = w.iter().enumerate().map(|(i, &v)| v * s[in_channel(i)]).collect();
    // W·t, per output channel and (convolutions) position: the layer on a tensor of shifts.
    let contribution = match conv {
        Some((window, groups)) => {
            let [_, _, h, wd] = shape[..] else { unreachable!("verified: conv input is 4-D") };
            let data = (0..channels * h * wd).map(|i| t[i / (h * wd)]).collect();
            let shifts = veil_ir::Tensor { shape: vec![1, channels, h, wd], data };
            veil_ir::eval::kernels::conv2d(&shifts, &w, m, None, &window, groups)
        }
        None => veil_ir::eval::kernels::dense(&veil_ir::Tensor { shape: vec![1, channels], data: t }, &w, m, None),
    };
    let plane = contribution.data.len() / m;
    // Decided by the window alone, never by the weights' values: the plan is public.
    let uniform = conv.is_none_or(|(window, _)| window.pads == [0; 4]);
    let old_bias: Vec<f32> = bias.map_or(vec![0.0; m], |b| g.consts[b].data.clone());
    let name = g.nodes[l].name.clone();
    let tag = g.nodes[n].name.clone();
    let new_w = derived_const(g, weight, format!("{name}.weight+{tag}"), wshape, scaled);
    let new_bias =
        if uniform { (0..m).map(|c| old_bias[c] + contribution.data[c * plane]).collect() } else { old_bias };
    let new_b = derived_const(g, weight, format!("{name}.bias+{tag}"), vec![m], new_bias);
    if let Op::Conv2d { weight, bias, .. } | Op::Dense { weight, bias } = &mut g.nodes[l].op {
        (*weight, *bias) = (new_w, Some(new_b));
    }
    g.replace_uses(out, x);
    g.remove_node(n);
    if !uniform {
        // The layer, then its per-position shift: the layer moves into a new node before `l`,
        // and `l` becomes the shift (so `l`'s output, and every reader of it, stay as they were).
        let pos = g.position(l).expect("live node");
        let lout = g.nodes[l].output;
        let inner = g.fresh_name(&format!("{}/linear", g.values[lout].name));
        let op = g.nodes[l].op.clone();
        let v = g.insert_node(pos, name.clone(), inner, op, &[x]).expect("the same layer typed before");
        let k = derived_const(g, weight, format!("{name}.shift+{tag}"), contribution.shape.clone(), contribution.data);
        g.nodes[l].op = Op::Affine { scale: None, shift: Some(k) };
        g.nodes[l].inputs = vec![v];
    }
    true
}

/// Step 5: a server-private per-channel `affine` as a diagonal linear layer: a `dense` with
/// weight `diag(scale)` when it varies along the last axis, else, on `[N, C, H, W]`, a
/// depthwise 1×1 `conv2d` when it varies along `C` (a layer scale). False (unchanged) when its
/// scale is not the server's or varies along other axes.
fn to_diagonal_layer(g: &mut Graph, n: NodeId, scale: Const, shift: Option<Const>) -> bool {
    if g.consts[scale].domain != Domain::Server {
        return false;
    }
    let shape = g.values[g.nodes[n].inputs[0]].ty.shape.clone();
    let Some(last) = shape.len().checked_sub(1) else { return false };
    let along = |g: &Graph, axis: usize| {
        let s = per_channel(g, scale, &shape, axis)?;
        match shift.map(|c| per_channel(g, c, &shape, axis)) {
            Some(None) => None,
            t => Some((s, t.flatten())),
        }
    };
    let tag = g.nodes[n].name.clone();
    let (op, s, t) = if let Some((s, t)) = along(g, last) {
        let c = s.len();
        let mut w = vec![0f32; c * c];
        for (i, &v) in s.iter().enumerate() {
            w[i * c + i] = v;
        }
        let weight = derived_const(g, scale, format!("{tag}.diagonal"), vec![c, c], w);
        (Op::Dense { weight, bias: None }, s, t)
    } else if shape.len() == 4
        && let Some((s, t)) = along(g, 1)
    {
        let c = s.len();
        let weight = derived_const(g, scale, format!("{tag}.diagonal"), vec![c, 1, 1, 1], s.clone());
        let window = Window2d { kernel: [1, 1], strides: [1, 1], pads: [0; 4], dilations: [1, 1] };
        (Op::Conv2d { weight, bias: None, window, groups: c }, s, t)
    } else {
        return false;
    };
    let bias = t.map(|t| derived_const(g, scale, format!("{tag}.diagonal_bias"), vec![s.len()], t));
    g.nodes[n].op = match op {
        Op::Dense { weight, .. } => Op::Dense { weight, bias },
        Op::Conv2d { weight, window, groups, .. } => Op::Conv2d { weight, bias, window, groups },
        other => other,
    };
    true
}

pub fn run(g: &mut Graph, _: &Options) -> Result<Report, PassError> {
    let mut report = Report::default();
    let mut pools = 0;
    for n in g.body.clone() {
        if let Op::AvgPool { window, count_include_pad } = g.nodes[n].op {
            split_avgpool(g, n, window, count_include_pad);
            pools += 1;
        }
    }
    let (mut back, mut fwd) = (0, 0);
    for n in g.body.clone() {
        if let Op::Affine { scale, shift } = g.nodes[n].op.clone() {
            if fold_backward(g, n, scale, shift) {
                back += 1;
            } else if let (Some(s), None) = (scale, shift)
                && fold_forward(g, n, s)
            {
                fwd += 1;
            } else if fold_into_next(g, n, scale, shift) {
                fwd += 1;
            }
        }
    }
    let mut diagonal = 0;
    for n in g.body.clone() {
        if let Op::Affine { scale: Some(s), shift } = g.nodes[n].op.clone()
            && g.position(n).is_some()
            && to_diagonal_layer(g, n, s, shift)
        {
            diagonal += 1;
        }
    }
    g.remove_dead();
    // A scale moved off the client's input leaves the data movement before the layer with
    // the client.
    g.refresh_domains();
    if pools > 0 {
        report.note(format!("split {pools} average pool(s) into sum pool and public divisor"));
    }
    if diagonal > 0 {
        report.note(format!("ran {diagonal} server-private elementwise scale(s) as diagonal linear layer(s)"));
    }
    if back + fwd > 0 {
        report.note(format!("folded {back} affine(s) into the preceding and {fwd} into the following linear layer"));
    }
    debug_assert!(g.consts.iter().all(|(_, c)| c.domain != Domain::Shared));
    Ok(report)
}
