//! The float interpreter.

use super::EvalError;
use super::kernels::{self, Pool};
use crate::graph::Graph;
use crate::op::{Const, Op};
use crate::tensor::Tensor;

/// Runs a verified float graph on `inputs` (one per graph input, in order) and returns the graph
/// outputs in order.
pub fn run_float(g: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
    let env = run_float_values(g, inputs)?;
    Ok(g.outputs.iter().map(|v| env[v.index()].clone().expect("verified: outputs are live")).collect())
}

/// [`run_float`] on any IEEE inputs, NaN and infinities included, which each op's float
/// semantics carry as f32 arithmetic does (a Cast to an 8-bit float saturates an infinity, a
/// comparison with NaN is false, ...): the reference for ONNX's own test cases, which feed them.
/// Veil's fixed-point values are finite, so everything else ([`run_float`], calibration, the two
/// parties) refuses such inputs.
pub fn run_float_ieee(g: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
    let env = values(g, inputs, Mode::Float, false)?;
    Ok(g.outputs.iter().map(|v| env[v.index()].clone().expect("verified: outputs are live")).collect())
}

/// Like [`run_float`], but returns every value, indexed by value handle (`None` for values no
/// live node defines): what range analysis calibrates on.
pub fn run_float_values(g: &Graph, inputs: &[Tensor]) -> Result<Vec<Option<Tensor>>, EvalError> {
    values(g, inputs, Mode::Float, true)
}

/// Every value of a fixed-point graph in real arithmetic, indexed by value handle: the
/// constants' float values, each `truncate` as the identity (the rounding it stands for is
/// what the fixed-point simulator adds), every other op as in [`run_float`]. This is the
/// "real" value that [`super::run_fixed`] approximates and that error bounds
/// are about; a float graph gives what [`run_float_values`] gives.
pub fn run_real_values(g: &Graph, inputs: &[Tensor]) -> Result<Vec<Option<Tensor>>, EvalError> {
    values(g, inputs, Mode::Real, true)
}

/// Like [`run_float`], but with the approximations the two parties compute in place of the
/// functions they approximate ([`Op::PlSigmoid`] as the piecewise-linear sigmoid in real
/// arithmetic): the float reference against which only fixed-point rounding remains, what the
/// precision search measures.
pub fn run_float_approximated(g: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
    let env = values(g, inputs, Mode::Approximated, true)?;
    Ok(g.outputs.iter().map(|v| env[v.index()].clone().expect("verified: outputs are live")).collect())
}

/// What [`values`] computes beyond a float graph's semantics.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// A float graph's semantics.
    Float,
    /// The approximations in place of the functions they approximate.
    Approximated,
    /// Truncations as identities.
    Real,
}

fn values(g: &Graph, inputs: &[Tensor], mode: Mode, finite: bool) -> Result<Vec<Option<Tensor>>, EvalError> {
    let approximated = mode == Mode::Approximated;
    super::check_inputs(g, inputs, finite)?;
    let mut env: Vec<Option<Tensor>> = vec![None; g.values.len()];
    for (&v, t) in g.inputs.iter().zip(inputs) {
        env[v.index()] = Some(t.clone());
    }
    let data = |c: Const| -> Result<&[f32], EvalError> {
        let k = &g.consts[c];
        if k.data.len() != k.shape.iter().product::<usize>() {
            return Err(EvalError::MissingConstant { name: k.name.clone() });
        }
        Ok(&k.data)
    };
    for (_, node) in g.live_nodes() {
        let args: Vec<&Tensor> =
            node.inputs.iter().map(|v| env[v.index()].as_ref().expect("verified: operands defined earlier")).collect();
        let x = args[0];
        let map =
            |f: &dyn Fn(f32) -> f32| Tensor { shape: x.shape.clone(), data: x.data.iter().map(|&v| f(v)).collect() };
        let out = match &node.op {
            Op::Dense { weight, bias } => {
                let n = g.consts[*weight].shape[0];
                kernels::dense(x, data(*weight)?, n, bias.map(data).transpose()?)
            }
            Op::Conv2d { weight, bias, window, groups } => {
                let m = g.consts[*weight].shape[0];
                kernels::conv2d(x, data(*weight)?, m, bias.map(data).transpose()?, window, *groups)
            }
            Op::Affine { scale, shift } => {
                let mut y = x.clone();
                if let Some(s) = scale {
                    let (d, at) = (data(*s)?, kernels::broadcast_index(&g.consts[*s].shape, &x.shape));
                    y.data.iter_mut().enumerate().for_each(|(i, v)| *v *= d[at(i)]);
                }
                if let Some(s) = shift {
                    let (d, at) = (data(*s)?, kernels::broadcast_index(&g.consts[*s].shape, &x.shape));
                    y.data.iter_mut().enumerate().for_each(|(i, v)| *v += d[at(i)]);
                }
                y
            }
            Op::BatchNorm { scale, bias, mean, var, epsilon } => {
                let (s, b, m, v) = (data(*scale)?, data(*bias)?, data(*mean)?, data(*var)?);
                let c = x.shape[1];
                let inner: usize = x.shape[2..].iter().product();
                let mut y = x.clone();
                for (i, e) in y.data.iter_mut().enumerate() {
                    let ch = (i / inner) % c;
                    let norm = (*e as f64 - m[ch] as f64) / (v[ch] as f64 + *epsilon as f64).sqrt();
                    *e = (norm * s[ch] as f64 + b[ch] as f64) as f32;
                }
                y
            }
            Op::Add | Op::Sub => {
                let sign = if matches!(node.op, Op::Add) { 1.0 } else { -1.0 };
                let data = x.data.iter().zip(&args[1].data).map(|(a, b)| a + sign * b).collect();
                Tensor { shape: x.shape.clone(), data }
            }
            Op::Mul => {
                let at = kernels::broadcast_index(&args[1].shape, &x.shape);
                let data = x.data.iter().enumerate().map(|(i, a)| a * args[1].data[at(i)]).collect();
                Tensor { shape: x.shape.clone(), data }
            }
            Op::MatMul => {
                let dims = kernels::matmul_dims(&x.shape, &args[1].shape);
                let sums = kernels::matmul(&x.data, &args[1].data, dims, 0f64, |s, a, b| s + a as f64 * b as f64);
                let mut shape = x.shape.clone();
                *shape.last_mut().expect("verified: rank ≥ 2") = dims.3;
                Tensor { shape, data: sums.into_iter().map(|v| v as f32).collect() }
            }
            Op::Relu | Op::StochasticRelu { .. } => map(&|v| v.max(0.0)),
            Op::PlSigmoid if approximated => map(&|v| super::ring_ops::pl_sigmoid::real(v as f64) as f32),
            Op::PlSigmoid => kernels::sigmoid(x),
            Op::PlGelu { .. } if approximated => map(&|v| super::ring_ops::pl_gelu::real(v as f64) as f32),
            Op::PlGelu { tanh: false } => map(&|v| super::ring_ops::pl_gelu::exact(v as f64) as f32),
            Op::PlGelu { tanh: true } => map(&|v| super::ring_ops::pl_gelu::tanh_form(v as f64) as f32),
            Op::LeakyRelu { alpha } => map(&|v| if v >= 0.0 { v } else { alpha * v }),
            Op::Rsqrt { eps } => map(&|v| 1.0 / (v + eps).sqrt()),
            Op::Exp2 if approximated => map(&|v| super::ring_ops::exp2::real(v as f64) as f32),
            Op::Exp2 => map(&|v| v.min(0.0).exp2()),
            Op::Reciprocal => map(&|v| 1.0 / v.max(1.0)),
            Op::OneHot { depth } => Tensor {
                shape: [&x.shape[..], &[*depth]].concat(),
                data: super::ring_ops::one_hot::real(&x.data, *depth),
            },
            Op::Round { mode, min, max, grid: Some(grid), .. } => {
                map(&|v| super::ring_ops::float_grid::real(v as f64, *mode, *grid, (*min, *max)) as f32)
            }
            Op::Round { mode, min, max, zero_point, grid: None } => {
                let clamp = |v: f32| v.max(min.unwrap_or(f32::NEG_INFINITY)).min(max.unwrap_or(f32::INFINITY));
                match zero_point {
                    None => map(&|v| clamp(mode.apply(v as f64) as f32)),
                    Some(z) => {
                        let (d, at) = (data(*z)?, kernels::broadcast_index(&g.consts[*z].shape, &x.shape));
                        let data = x.data.iter().enumerate().map(|(i, &v)| {
                            let p = d[at(i)] as f64;
                            clamp((mode.apply(v as f64 - p) + p) as f32)
                        });
                        Tensor { shape: x.shape.clone(), data: data.collect() }
                    }
                }
            }
            Op::Clip { min, max } => {
                map(&|v| v.max(min.unwrap_or(f32::NEG_INFINITY)).min(max.unwrap_or(f32::INFINITY)))
            }
            Op::Poly { coeffs } => map(&|v| coeffs.iter().rev().fold(0f64, |acc, &c| acc * v as f64 + c as f64) as f32),
            Op::MaxPool { window } => kernels::pool(x, window, Pool::Max),
            Op::AvgPool { window, count_include_pad } => {
                kernels::pool(x, window, Pool::Avg { count_include_pad: *count_include_pad })
            }
            Op::SumPool { window } => kernels::pool(x, window, Pool::Sum),
            Op::Reshape { shape } => Tensor { shape: shape.clone(), data: x.data.clone() },
            Op::Select { indices, shape } => {
                Tensor { shape: shape.clone(), data: indices.iter().map(|&i| x.data[i as usize]).collect() }
            }
            Op::Transpose { perm } => kernels::transpose(x, perm),
            Op::Concat { axis } => kernels::concat(&args, *axis),
            Op::Pad { pads, value } => kernels::pad(x, pads, *value),
            Op::Reveal => x.clone(),
            Op::Truncate { .. } if mode == Mode::Real => x.clone(),
            Op::Truncate { .. } => return Err(EvalError::NotFloat { node: node.name.clone() }),
            Op::Softmax { axis, coerce_2d } => kernels::softmax(x, *axis, *coerce_2d, false),
            Op::LogSoftmax { axis, coerce_2d } => kernels::softmax(x, *axis, *coerce_2d, true),
            Op::Sigmoid => kernels::sigmoid(x),
            Op::ArgMax { axis, keepdims, select_last_index } => {
                kernels::argmax(x, *axis, *keepdims, *select_last_index)
            }
        };
        env[node.output.index()] = Some(out);
    }
    Ok(env)
}
