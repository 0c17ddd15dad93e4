//! Ops each party applies to its own share (or the client to a plaintext value): data movement,
//! sums, local truncation and public/server shifts. Linear in the share, so the shares of the
//! result add up to the op applied to the value; constants are added by one party only.

use veil_ir::eval::{kernels, ring_ops};
use veil_ir::ring::{Ring, local_truncate};
use veil_ir::{ElemType, Graph, Node, Op, TruncMode};

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
