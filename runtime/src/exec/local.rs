//! Ops each party applies to its own share (or the client to a plaintext value): data movement,
//! sums, local truncation and public/server shifts. Linear in the share, so the shares of the
//! result add up to the op applied to the value; constants are added by one party only.

use veil_ir::eval::decode_value;
use veil_ir::eval::{kernels, ring_ops};
use veil_ir::ring::{Ring, local_truncate};
use veil_ir::{ElemType, Graph, Node, Op, Tensor, TruncMode};

use super::step::{ClientIo, Csprng, Cx, Protocol, ServerIo, StepFuture, Values};

/// Whose data a local op transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The client's share of a shared value.
    Client,
    /// The server's share of a shared value.
    Server,
    /// A plaintext value the client holds alone.
    Plain,
}

/// Applies `node` to `args` (ring data of the inputs, shapes from the graph).
pub fn apply(g: &Graph, ring: Ring, node: &Node, args: &[&[u64]], role: Role) -> Vec<u64> {
    let shape = &g.values[node.inputs[0]].ty.shape;
    let x = args[0];
    let s_in = match g.values[node.inputs[0]].ty.elem {
        ElemType::Fixed { frac_bits } => frac_bits,
        _ => 0,
    };
    match &node.op {
        Op::Reshape { .. } => x.to_vec(),
        Op::Select { indices, .. } => indices.iter().map(|&i| x[i as usize]).collect(),
        Op::Transpose { perm } => kernels::transpose_data(x, shape, perm).1,
        Op::Concat { axis } => {
            let parts: Vec<(&[usize], &[u64])> =
                node.inputs.iter().zip(args).map(|(&v, a)| (g.values[v].ty.shape.as_slice(), *a)).collect();
            kernels::concat_data(&parts, *axis).1
        }
        Op::Pad { pads, value } => {
            let fill = if role == Role::Server { 0 } else { ring.encode(*value as f64, s_in).unwrap_or(0) };
            kernels::pad_data(x, shape, pads, fill).1
        }
        Op::SumPool { window } => ring_ops::window_sum(ring, x, shape, window, false).1,
        Op::Add | Op::Sub => {
            let sub = matches!(node.op, Op::Sub);
            x.iter()
                .zip(args[1])
                .map(|(&a, &b)| ring.reduce(if sub { a.wrapping_sub(b) } else { a.wrapping_add(b) }))
                .collect()
        }
        Op::Truncate { bits, mode: TruncMode::Local } => x
            .iter()
            .map(|&v| match role {
                Role::Client => local_truncate(ring, v, 0, *bits).0,
                Role::Server => local_truncate(ring, 0, v, *bits).1,
                Role::Plain => ring.truncate(v, *bits),
            })
            .collect(),
        Op::Truncate { bits, mode: TruncMode::Exact } => x.iter().map(|&v| ring.truncate(v, *bits)).collect(),
        Op::Relu => x.iter().map(|&v| if ring.to_signed(v) >= 0 { v } else { 0 }).collect(),
        Op::PlSigmoid => {
            let knots = veil_ir::eval::ring_ops::pl_sigmoid::knots(s_in);
            x.iter().map(|&v| veil_ir::eval::ring_ops::pl_sigmoid::eval_with(ring, v, s_in, &knots)).collect()
        }
        Op::PlGelu { .. } => x.iter().map(|&v| veil_ir::eval::ring_ops::pl_gelu::eval(ring, v, s_in)).collect(),
        Op::Rsqrt { eps } => x.iter().map(|&v| veil_ir::eval::ring_ops::rsqrt::eval(ring, v, s_in, *eps)).collect(),
        Op::Exp2 => {
            let knots = veil_ir::eval::ring_ops::exp2::knots(s_in);
            x.iter().map(|&v| veil_ir::eval::ring_ops::exp2::eval_with(ring, v, s_in, &knots)).collect()
        }
        Op::Reciprocal => x.iter().map(|&v| veil_ir::eval::ring_ops::reciprocal::eval(ring, v, s_in)).collect(),
        // The client's own plaintext only (the verifier's domain rule).
        Op::OneHot { depth } => veil_ir::eval::ring_ops::one_hot::eval(ring, x, s_in, *depth),
        // A zero point is a constant this party holds (public, for a plaintext value).
        Op::Round { zero_point, .. } => {
            let zero = zero_point.map(|z| (g.consts[z].shape.as_slice(), g.consts[z].qdata.as_slice()));
            ring_ops::round::eval_op(ring, x, shape, s_in, &node.op, zero)
        }
        Op::MaxPool { window } => ring_ops::window_sum(ring, x, shape, window, true).1,
        Op::Affine { scale, shift } => {
            // A public scale multiplies each share; a shift is added by one party only.
            let mut y = x.to_vec();
            if let Some(c) = scale {
                let (d, at) = (&g.consts[*c].qdata, kernels::broadcast_index(&g.consts[*c].shape, shape));
                y.iter_mut().enumerate().for_each(|(i, v)| *v = ring.reduce(v.wrapping_mul(d[at(i)] as u64)));
            }
            if let Some(c) = shift
                && role != Role::Client
            {
                let (d, at) = (&g.consts[*c].qdata, kernels::broadcast_index(&g.consts[*c].shape, shape));
                y.iter_mut().enumerate().for_each(|(i, v)| *v = ring.reduce(v.wrapping_add(d[at(i)] as u64)));
            }
            y
        }
        other => unreachable!("schedule::lower admits no local `{}`", other.mnemonic()),
    }
}

/// A local step ([`veil_ir::schedule::Kind::Local`]): each party applies the node to its own
/// shares, the client offline (its shares are known then), the server online.
#[derive(Debug)]
pub struct LocalStep;

impl Protocol for LocalStep {
    fn server_online<'a>(
        &'a mut self,
        _io: &'a mut ServerIo,
        cx: Cx<'a>,
        values: &'a mut Values,
        _rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        let args: Vec<&[u64]> = cx.node.inputs.iter().map(|&v| values.share(v)).collect();
        let out = apply(cx.g, cx.ring, cx.node, &args, Role::Server);
        values.set_share(cx.node.output, out);
        Box::pin(async { Ok(()) })
    }

    fn client_offline<'a>(
        &'a mut self,
        _io: &'a mut ClientIo,
        cx: Cx<'a>,
        values: &'a mut Values,
        _rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        let args: Vec<&[u64]> = cx.node.inputs.iter().map(|&v| values.share(v)).collect();
        let out = apply(cx.g, cx.ring, cx.node, &args, Role::Client);
        values.set_share(cx.node.output, out);
        Box::pin(async { Ok(()) })
    }
}

/// A client-domain step ([`veil_ir::schedule::Kind::Client`]): the client computes it alone,
/// online, on plaintext values.
#[derive(Debug)]
pub struct ClientDomain;

impl Protocol for ClientDomain {
    fn client_online<'a>(&'a mut self, _io: &'a mut ClientIo, cx: Cx<'a>, values: &'a mut Values) -> StepFuture<'a> {
        client_op(cx.g, cx.ring, cx.node, &mut values.plain, &mut values.floats);
        Box::pin(async { Ok(()) })
    }
}

/// A client-domain op on plaintext values (post-processing after `reveal`, or movement of the
/// client's input before sharing).
pub(crate) fn client_op(
    g: &Graph,
    ring: Ring,
    node: &veil_ir::Node,
    plain: &mut [Option<Vec<u64>>],
    floats: &mut [Option<Tensor>],
) {
    let v = node.inputs[0];
    let decoded = || -> Tensor {
        floats[v.index()].clone().unwrap_or_else(|| {
            decode_value(g, v, &g.values[v].ty.shape, plain[v.index()].as_ref().expect("client value"))
        })
    };
    let out = match &node.op {
        Op::Softmax { axis, coerce_2d } => kernels::softmax(&decoded(), *axis, *coerce_2d, false),
        Op::Sigmoid => kernels::sigmoid(&decoded()),
        Op::LogSoftmax { axis, coerce_2d } => kernels::softmax(&decoded(), *axis, *coerce_2d, true),
        Op::ArgMax { axis, keepdims, select_last_index } => {
            kernels::argmax(&decoded(), *axis, *keepdims, *select_last_index)
        }
        // Movement after post-processing (a softmax's probabilities) is on floats.
        Op::Reshape { shape } if floats[v.index()].is_some() => Tensor { shape: shape.clone(), data: decoded().data },
        _ => {
            let args: Vec<&[u64]> =
                node.inputs.iter().map(|v| plain[v.index()].as_deref().expect("client value")).collect();
            let d = apply(g, ring, node, &args, Role::Plain);
            plain[node.output.index()] = Some(d);
            return;
        }
    };
    floats[node.output.index()] = Some(out);
}
