//! The fixed-point simulator: what the two-party runtime computes, in plaintext.
//!
//! Every op runs in the ring Z_2^ℓ exactly as the runtime's protocols will. Where the result
//! depends on how a value is split into shares (local truncation, Circa's sign test), the
//! simulator splits it with a uniformly random mask drawn from a seeded generator and applies
//! the same share-level function ([`crate::ring`]) the runtime uses, so the simulated faults have
//! the runtime's distribution.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha12Rng;

use super::EvalError;
use super::{kernels, ring_ops};
use crate::graph::Graph;
use crate::op::{Const, Op, TruncMode};
use crate::ring::{Ring, circa_near_zero, circa_nonnegative, local_truncate, stochastic_truncate};
use crate::tensor::Tensor;
use crate::types::ElemType;

/// Fractional bits of the LeakyReLU slope inside its garbled circuit.
pub const LEAKY_ALPHA_BITS: u8 = 16;

/// A value during simulation: ring elements (fixed point) or floats (client-side results).
#[derive(Clone, Debug)]
enum Val {
    Ring(Vec<usize>, Vec<u64>),
    Float(Tensor),
}

/// What [`run_fixed`] returns: the decoded outputs, and how often the share-dependent steps
/// deviated from exact arithmetic.
#[derive(Clone, Debug)]
pub struct FixedRun {
    /// The graph outputs decoded to `f32`, in output order.
    pub outputs: Vec<Tensor>,
    /// Circa sign tests that read a value's sign wrongly (both kinds).
    pub circa_faults: usize,
    /// Of those, the faults outside the near-zero window that Circa errs in by design: share
    /// wrap-around in the sign test's ring ([`crate::ring::circa_wrap_probability`] bounds their
    /// rate for values within the range analysis's bound).
    pub circa_wrap_faults: usize,
    /// Circa sign tests performed.
    pub circa_tests: usize,
    /// Local truncations whose result was off by more than one (a wrap: the failure case).
    pub truncation_wraps: usize,
    /// Elements read narrowed ([`crate::Graph::narrow_bits`]) whose value did not fit the
    /// narrowed width: the circuit (and this simulation) used the value wrapped into it, a wrong
    /// result. Calibrated ranges plus their margin (`veilc --range-margin-bits`) are meant to
    /// keep this 0; data beyond them shows here.
    pub narrow_overflows: usize,
}

/// Ring data with its shape.
pub type RingTensor = (Vec<usize>, Vec<u64>);

/// Checks float `inputs` against the graph (count, shapes, finite values, the compiled input
/// bound) and encodes each at its input's scale: what the client feeds the runtime.
pub fn encode_inputs(g: &Graph, inputs: &[Tensor]) -> Result<Vec<RingTensor>, EvalError> {
    let ring = Ring::new(g.ring_bits.ok_or(EvalError::NotFixed)?);
    super::check_inputs(g, inputs, true)?;
    let mut out = Vec::with_capacity(inputs.len());
    for (index, (&v, t)) in g.inputs.iter().zip(inputs).enumerate() {
        let value = &g.values[v];
        let ElemType::Fixed { frac_bits } = value.ty.elem else { return Err(EvalError::NotFixed) };
        if let Some(bound) = g.input_bound
            && let Some(at) = t.data.iter().position(|x| x.abs() > bound)
        {
            return Err(EvalError::OutOfBound { index, name: value.name.clone(), at, value: t.data[at], bound });
        }
        let mut data = Vec::with_capacity(t.data.len());
        for (at, &x) in t.data.iter().enumerate() {
            data.push(ring.encode(x as f64, frac_bits).ok_or(EvalError::InputRange {
                index,
                name: value.name.clone(),
                at,
                value: x,
            })?);
        }
        out.push((t.shape.clone(), data));
    }
    Ok(out)
}

/// Decodes a ring value at its fixed-point scale (unscaled for integer values).
pub fn decode_value(g: &Graph, v: crate::ValueId, shape: &[usize], data: &[u64]) -> Tensor {
    let ring = Ring::new(g.ring_bits.expect("quantized"));
    let fb = match g.values[v].ty.elem {
        ElemType::Fixed { frac_bits } => frac_bits,
        _ => 0,
    };
    Tensor { shape: shape.to_vec(), data: data.iter().map(|&x| ring.decode(x, fb) as f32).collect() }
}

/// Runs a quantized graph on float `inputs` (encoded at each input's scale); `seed` drives the
/// simulated share masks.
pub fn run_fixed(g: &Graph, inputs: &[Tensor], seed: u64) -> Result<FixedRun, EvalError> {
    let ring = Ring::new(g.ring_bits.ok_or(EvalError::NotFixed)?);
    let mut rng = ChaCha12Rng::seed_from_u64(seed);
    let mut run = FixedRun {
        outputs: Vec::new(),
        circa_faults: 0,
        circa_wrap_faults: 0,
        circa_tests: 0,
        truncation_wraps: 0,
        narrow_overflows: 0,
    };
    let mut env: Vec<Option<Val>> = vec![None; g.values.len()];
    for (&v, (shape, data)) in g.inputs.iter().zip(encode_inputs(g, inputs)?) {
        env[v.index()] = Some(Val::Ring(shape, data));
    }
    let q = |c: Const| -> Result<&[i64], EvalError> {
        let k = &g.consts[c];
        if k.qdata.len() != k.shape.iter().product::<usize>() {
            return Err(EvalError::MissingConstant { name: k.name.clone() });
        }
        Ok(&k.qdata)
    };
    let narrowed = crate::schedule::narrowed_reads(g);
    for (id, node) in g.live_nodes() {
        let scale = |v: crate::ValueId| match g.values[v].ty.elem {
            ElemType::Fixed { frac_bits } => frac_bits,
            _ => 0,
        };
        let s_in = node.inputs.first().map_or(0, |&v| scale(v));
        let args: Vec<&Val> =
            node.inputs.iter().map(|v| env[v.index()].as_ref().expect("verified: defined earlier")).collect();
        let (shape, x) = match args[0] {
            Val::Ring(s, d) => (s.clone(), d.as_slice()),
            Val::Float(_) => (Vec::new(), &[][..]),
        };
        // A garbled ReLU's or MaxPool's circuits read this operand in fewer bits
        // (`Graph::narrow_bits`, `schedule::narrowed_reads`).
        let narrow_x = narrowed.iter().find(|&&(n, _)| n == id).map(|&(_, w)| {
            let narrow = Ring::new(w);
            x.iter().map(|&v| ring.reduce(narrow.to_signed(narrow.reduce(v)) as u64)).collect::<Vec<u64>>()
        });
        if let Some(n) = &narrow_x {
            run.narrow_overflows += n.iter().zip(x).filter(|(a, b)| a != b).count();
        }
        let x = narrow_x.as_deref().unwrap_or(x);
        let map = |f: &mut dyn FnMut(u64) -> u64| Val::Ring(shape.clone(), x.iter().map(|&v| f(v)).collect());
        let decoded = || -> Tensor {
            match args[0] {
                Val::Ring(s, d) => {
                    Tensor { shape: s.clone(), data: d.iter().map(|&v| ring.decode(v, s_in) as f32).collect() }
                }
                Val::Float(t) => t.clone(),
            }
        };
        let out = match &node.op {
            Op::Dense { weight, bias } => {
                let (w, b) = (q(*weight)?, bias.map(q).transpose()?);
                let n = g.consts[*weight].shape[0];
                let (s, d) = ring_ops::dense(ring, x, &shape, (w, n, b));
                Val::Ring(s, d)
            }
            Op::Conv2d { weight, bias, window, groups } => {
                let m = g.consts[*weight].shape[0];
                let (s, d) =
                    ring_ops::conv2d(ring, x, &shape, (q(*weight)?, m, bias.map(q).transpose()?), window, *groups);
                Val::Ring(s, d)
            }
            Op::Affine { scale, shift } => {
                let mut y = x.to_vec();
                if let Some(c) = scale {
                    let (d, at) = (q(*c)?, kernels::broadcast_index(&g.consts[*c].shape, &shape));
                    y.iter_mut().enumerate().for_each(|(i, v)| *v = ring.reduce(v.wrapping_mul(d[at(i)] as u64)));
                }
                if let Some(c) = shift {
                    let (d, at) = (q(*c)?, kernels::broadcast_index(&g.consts[*c].shape, &shape));
                    y.iter_mut().enumerate().for_each(|(i, v)| *v = ring.reduce(v.wrapping_add(d[at(i)] as u64)));
                }
                Val::Ring(shape.clone(), y)
            }
            Op::Add | Op::Sub => {
                let Val::Ring(_, y) = args[1] else { unreachable!("verified: same types") };
                let sub = matches!(node.op, Op::Sub);
                let d = x
                    .iter()
                    .zip(y)
                    .map(|(&a, &b)| ring.reduce(if sub { a.wrapping_sub(b) } else { a.wrapping_add(b) }))
                    .collect();
                Val::Ring(shape.clone(), d)
            }
            Op::Mul => {
                let Val::Ring(y_shape, y) = args[1] else { unreachable!("verified: fixed-point operands") };
                let at = kernels::broadcast_index(y_shape, &shape);
                Val::Ring(
                    shape.clone(),
                    x.iter().enumerate().map(|(i, &a)| ring.reduce(a.wrapping_mul(y[at(i)]))).collect(),
                )
            }
            Op::MatMul => {
                let Val::Ring(y_shape, y) = args[1] else { unreachable!("verified: fixed-point operands") };
                let dims = kernels::matmul_dims(&shape, y_shape);
                let sums = kernels::matmul(x, y, dims, 0u64, |s, a, b| s.wrapping_add(a.wrapping_mul(b)));
                let mut out_shape = shape.clone();
                *out_shape.last_mut().expect("verified: rank ≥ 2") = dims.3;
                Val::Ring(out_shape, sums.into_iter().map(|v| ring.reduce(v)).collect())
            }
            Op::Relu => map(&mut |v| if ring.to_signed(v) >= 0 { v } else { 0 }),
            Op::PlSigmoid => {
                let knots = ring_ops::pl_sigmoid::knots(s_in);
                map(&mut |v| ring_ops::pl_sigmoid::eval_with(ring, v, s_in, &knots))
            }
            Op::PlGelu { .. } => map(&mut |v| ring_ops::pl_gelu::eval(ring, v, s_in)),
            Op::Rsqrt { eps } => map(&mut |v| ring_ops::rsqrt::eval(ring, v, s_in, *eps)),
            Op::Exp2 => {
                let knots = ring_ops::exp2::knots(s_in);
                map(&mut |v| ring_ops::exp2::eval_with(ring, v, s_in, &knots))
            }
            Op::Reciprocal => map(&mut |v| ring_ops::reciprocal::eval(ring, v, s_in)),
            Op::OneHot { depth } => {
                Val::Ring([&shape[..], &[*depth]].concat(), ring_ops::one_hot::eval(ring, x, s_in, *depth))
            }
            Op::Round { zero_point, .. } => {
                let zero = zero_point.map(|z| q(z).map(|d| (g.consts[z].shape.as_slice(), d))).transpose()?;
                Val::Ring(shape.clone(), ring_ops::round::eval_op(ring, x, &shape, s_in, &node.op, zero))
            }
            Op::StochasticRelu { drop_bits, variant, test_bits } => {
                let k = drop_bits.expect("verified: chosen by quantize");
                let test = test_bits.map_or(ring, Ring::new);
                let (mut tests, mut faults, mut wraps) = (0, 0, 0);
                let y = map(&mut |v| {
                    let m = ring.reduce(rng.next_u64());
                    let nonneg = circa_nonnegative(test, m, ring.reduce(v.wrapping_sub(m)), k, *variant);
                    let x = ring.to_signed(v);
                    tests += 1;
                    if nonneg != (x >= 0) {
                        faults += 1;
                        wraps += usize::from(!circa_near_zero(x, k, *variant));
                    }
                    if nonneg { v } else { 0 }
                });
                run.circa_tests += tests;
                run.circa_faults += faults;
                run.circa_wrap_faults += wraps;
                y
            }
            Op::LeakyRelu { alpha } => {
                let a = ring.encode(*alpha as f64, LEAKY_ALPHA_BITS).ok_or_else(|| EvalError::SlopeRange {
                    node: node.name.clone(),
                    alpha: *alpha,
                    ring_bits: ring.bits,
                })?;
                map(&mut |v| {
                    if ring.to_signed(v) >= 0 { v } else { ring.truncate(v.wrapping_mul(a), LEAKY_ALPHA_BITS) }
                })
            }
            Op::Clip { min, max } => {
                let (lo, hi) = ring_ops::clip_bounds(ring, *min, *max, s_in);
                map(&mut |v| ring.from_signed(ring.to_signed(v).clamp(lo, hi)))
            }
            Op::Poly { coeffs } => {
                let qc = ring_ops::poly_coeffs(ring, coeffs, s_in);
                map(&mut |v| {
                    let (mut acc, mut pow) = (0u64, 1u64);
                    for &c in &qc {
                        acc = acc.wrapping_add(c.wrapping_mul(pow));
                        pow = pow.wrapping_mul(v);
                    }
                    ring.reduce(acc)
                })
            }
            Op::MaxPool { window } => {
                let (s, d) = ring_ops::window_sum(ring, x, &shape, window, true);
                Val::Ring(s, d)
            }
            Op::SumPool { window } => {
                let (s, d) = ring_ops::window_sum(ring, x, &shape, window, false);
                Val::Ring(s, d)
            }
            Op::Truncate { bits, mode: TruncMode::Exact } => map(&mut |v| ring.truncate(v, *bits)),
            // The client's own plaintext (before it is shared): it shifts the value itself.
            Op::Truncate { bits, .. } if g.values[node.output].domain == crate::types::Domain::Client => {
                map(&mut |v| ring.truncate(v, *bits))
            }
            Op::Truncate { bits, mode: TruncMode::Stochastic } => {
                // The circuit that reads it adds the shifted shares of the (narrowed) operand
                // in w − bits bits (`ring::stochastic_truncate`), from a uniform client share.
                let w = narrowed.iter().find(|&&(n, _)| n == id).map_or(ring.bits, |&(_, w)| w);
                let narrow = Ring::new(w);
                map(&mut |v| {
                    let m = narrow.reduce(rng.next_u64());
                    let t = stochastic_truncate(w, m, narrow.reduce(v.wrapping_sub(m)), *bits);
                    ring.from_signed(t)
                })
            }
            Op::Truncate { bits, mode: TruncMode::Local } => {
                let mut wraps = 0;
                let y = map(&mut |v| {
                    let m = ring.reduce(rng.next_u64());
                    let (a, b) = local_truncate(ring, m, ring.reduce(v.wrapping_sub(m)), *bits);
                    let t = ring.reduce(a.wrapping_add(b));
                    let off = ring.to_signed(t.wrapping_sub(ring.truncate(v, *bits)));
                    wraps += usize::from(!(0..=1).contains(&off));
                    t
                });
                run.truncation_wraps += wraps;
                y
            }
            // After client-side post-processing (a softmax's probabilities), movement is on floats.
            Op::Reshape { shape: s } => match args[0] {
                Val::Float(t) => Val::Float(Tensor { shape: s.clone(), data: t.data.clone() }),
                Val::Ring(..) => Val::Ring(s.clone(), x.to_vec()),
            },
            Op::Select { indices, shape: s } => Val::Ring(s.clone(), indices.iter().map(|&i| x[i as usize]).collect()),
            Op::Transpose { perm } => {
                let (s, d) = kernels::transpose_data(x, &shape, perm);
                Val::Ring(s, d)
            }
            Op::Concat { axis } => {
                let parts: Vec<(&[usize], &[u64])> = args
                    .iter()
                    .map(|a| match a {
                        Val::Ring(s, d) => (s.as_slice(), d.as_slice()),
                        Val::Float(_) => unreachable!("verified: same types"),
                    })
                    .collect();
                let (s, d) = kernels::concat_data(&parts, *axis);
                Val::Ring(s, d)
            }
            Op::Pad { pads, value } => {
                let fill = ring.encode(*value as f64, s_in).unwrap_or(0);
                let (s, d) = kernels::pad_data(x, &shape, pads, fill);
                Val::Ring(s, d)
            }
            Op::Reveal => args[0].clone(),
            Op::Softmax { axis, coerce_2d } => Val::Float(kernels::softmax(&decoded(), *axis, *coerce_2d, false)),
            Op::LogSoftmax { axis, coerce_2d } => Val::Float(kernels::softmax(&decoded(), *axis, *coerce_2d, true)),
            Op::Sigmoid => Val::Float(kernels::sigmoid(&decoded())),
            Op::ArgMax { axis, keepdims, select_last_index } => {
                Val::Float(kernels::argmax(&decoded(), *axis, *keepdims, *select_last_index))
            }
            Op::BatchNorm { .. } | Op::AvgPool { .. } => return Err(EvalError::NotFixed),
        };
        env[node.output.index()] = Some(out);
    }
    for &v in &g.outputs {
        let t = match env[v.index()].as_ref().expect("verified: outputs are live") {
            Val::Float(t) => t.clone(),
            Val::Ring(s, d) => {
                let fb = match g.values[v].ty.elem {
                    ElemType::Fixed { frac_bits } => frac_bits,
                    _ => 0,
                };
                Tensor { shape: s.clone(), data: d.iter().map(|&x| ring.decode(x, fb) as f32).collect() }
            }
        };
        run.outputs.push(t);
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use crate::op::{Op, TruncMode};
    use crate::types::{ElemType, TensorType};
    use crate::{Graph, Tensor};

    /// A truncation of the client's own plaintext (before it shares it, as the comparison of a
    /// padding mask does) is the client's exact shift in the runtime; the simulator must not
    /// model a random share there, or the two would differ by an ulp.
    #[test]
    fn a_truncation_of_the_clients_plaintext_is_exact() {
        let mut g = Graph::new("t");
        g.ring_bits = Some(30);
        let x = g.add_input("x", TensorType { elem: ElemType::Fixed { frac_bits: 8 }, shape: vec![256] });
        let y = g.add_node("t", "y", Op::Truncate { bits: 4, mode: TruncMode::Local }, &[x]).unwrap();
        g.outputs.push(y);
        let data: Vec<f32> = (0..256).map(|i| (i as f32 - 128.0) * 0.37 + 0.001).collect();
        let input = Tensor::new(vec![256], data.clone()).unwrap();
        for seed in 0..4 {
            let run = super::run_fixed(&g, std::slice::from_ref(&input), seed).unwrap();
            for (k, (&got, &v)) in run.outputs[0].data.iter().zip(&data).enumerate() {
                let q = (v as f64 * 256.0).round() as i64;
                assert_eq!(got as f64, (q >> 4) as f64 / 16.0, "element {k}, seed {seed}");
            }
        }
    }
}
