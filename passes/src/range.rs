//! Range analysis for `quantize`: a bound on `|value|` for every value of a float graph.
//!
//! With calibration inputs, the bound is twice the largest magnitude seen (one bit of headroom
//! for inputs the calibration set did not contain). Without, it is a worst-case interval bound
//! propagated from `|input| ≤ input_bound`: sound, but loose for deep networks.

use veil_ir::{Const, Graph, Op, Tensor};

use crate::{Options, PassError};

/// Where the bounds came from (for the report).
#[derive(Clone, Debug, PartialEq)]
pub enum RangeSource {
    /// `input_bound`: twice the largest calibration input magnitude.
    Calibration {
        /// Number of calibration inputs.
        samples: usize,
        /// The bound on `|input|` the ranges assume.
        input_bound: f32,
    },
    /// Worst-case intervals from `|input| ≤ input_bound` (no calibration).
    WorstCase {
        /// The bound on `|input|` the ranges assume: `--input-bound`.
        input_bound: f32,
    },
}

impl RangeSource {
    /// The bound on |input| under which the ranges hold.
    pub fn input_bound(&self) -> f32 {
        match self {
            RangeSource::Calibration { input_bound, .. } | RangeSource::WorstCase { input_bound } => *input_bound,
        }
    }
}

/// The bound of `1/√x` without an `ε`: nothing bounds it below the fixed-point saturation, so
/// the widest value a ring holds at a usual scale (compilation then asks for a narrower range).
const RSQRT_UNBOUNDED: f64 = 1e9;

fn max_abs(xs: &[f32]) -> f64 {
    xs.iter().fold(0f64, |m, &x| m.max((x as f64).abs()))
}

/// Bounds on `|value|`, indexed by value handle.
pub fn bounds(g: &Graph, opts: &Options) -> Result<(Vec<f64>, RangeSource), PassError> {
    if opts.calibration.is_empty() {
        return Ok((
            worst_case_values(g, opts.input_bound as f64),
            RangeSource::WorstCase { input_bound: opts.input_bound },
        ));
    }
    let reject = |reason: String| PassError::Rejected { pass: crate::Pass::Quantize, reason };
    let k = g.inputs.len();
    if k == 0 || !opts.calibration.len().is_multiple_of(k) {
        return Err(reject(format!(
            "{} calibration tensor(s) for a model with {k} input(s): each sample needs one per input",
            opts.calibration.len()
        )));
    }
    // The samples run in parallel; each gives its own per-value maxima (a maximum does not
    // depend on the order it is taken in).
    use rayon::prelude::*;
    let samples: Vec<&[Tensor]> = opts.calibration_samples(k).collect();
    let per_sample = crate::parallel::install(|| {
        samples
            .par_iter()
            .enumerate()
            .map(|(i, x)| {
                let env = veil_ir::eval::run_float_values(g, x)
                    .map_err(|e| reject(format!("calibration sample {i}: {e}")))?;
                Ok(env.iter().map(|t| t.as_ref().map_or(0.0, |t| 2.0 * max_abs(&t.data))).collect::<Vec<f64>>())
            })
            .collect::<Result<Vec<_>, PassError>>()
    })?;
    let mut b = vec![0f64; g.values.len()];
    for sample in per_sample {
        b.iter_mut().zip(sample).for_each(|(b, s)| *b = b.max(s));
    }
    let input_bound = 2.0 * opts.calibration.iter().map(|t| max_abs(&t.data)).fold(0.0, f64::max) as f32;
    Ok((b, RangeSource::Calibration { samples: samples.len(), input_bound }))
}

/// Worst-case bounds on `|value|` for `|input| ≤ input_bound`, by interval propagation over the
/// constants' float values (works on float and fixed-point graphs alike).
pub fn worst_case_values(g: &Graph, input_bound: f64) -> Vec<f64> {
    let mut b = vec![0f64; g.values.len()];
    for &v in &g.inputs {
        b[v.index()] = input_bound;
    }
    let cmax = |c: Const| max_abs(&g.consts[c].data);
    for (_, n) in g.live_nodes() {
        let x = n.inputs.first().map_or(0.0, |v| b[v.index()]);
        // Largest Σ|w| over one output channel's weights, plus that channel's |bias|.
        let linear = |w: Const, bias: Option<Const>| {
            let k = &g.consts[w];
            let m = k.shape[0];
            let per = k.data.len() / m.max(1);
            (0..m)
                .map(|o| {
                    let s: f64 = k.data[o * per..(o + 1) * per].iter().map(|&w| (w as f64).abs()).sum();
                    s * x + bias.map_or(0.0, |b| (g.consts[b].data[o] as f64).abs())
                })
                .fold(0f64, f64::max)
        };
        b[n.output.index()] = match &n.op {
            Op::Dense { weight, bias } | Op::Conv2d { weight, bias, .. } => linear(*weight, *bias),
            Op::Affine { scale, shift } => x * scale.map_or(1.0, cmax) + shift.map_or(0.0, cmax),
            Op::BatchNorm { scale, bias, mean, var, epsilon } => {
                let k = &g.consts[*var];
                let inv = k.data.iter().fold(0f64, |m, &v| m.max(1.0 / (v as f64 + *epsilon as f64).sqrt()));
                (x + cmax(*mean)) * inv * cmax(*scale) + cmax(*bias)
            }
            Op::Add | Op::Sub => n.inputs.iter().map(|v| b[v.index()]).sum(),
            Op::Mul => n.inputs.iter().map(|v| b[v.index()]).product(),
            // k products summed.
            Op::MatMul => {
                let k = g.values[n.inputs[0]].ty.shape.last().copied().unwrap_or(1) as f64;
                k * n.inputs.iter().map(|v| b[v.index()]).product::<f64>()
            }
            Op::Concat { .. } => n.inputs.iter().map(|v| b[v.index()]).fold(0.0, f64::max),
            Op::LeakyRelu { alpha } => x * (*alpha as f64).abs().max(1.0),
            Op::Clip { min: Some(lo), max: Some(hi) } => x.min((*lo as f64).abs().max((*hi as f64).abs())),
            Op::Poly { coeffs } => coeffs.iter().enumerate().map(|(i, &c)| (c as f64).abs() * x.powi(i as i32)).sum(),
            Op::SumPool { window } => x * (window.kernel[0] * window.kernel[1]) as f64,
            Op::Pad { value, .. } => x.max((*value as f64).abs()),
            Op::Softmax { .. } | Op::Sigmoid | Op::PlSigmoid | Op::Exp2 | Op::Reciprocal | Op::OneHot { .. } => 1.0,
            // A grid value no further from zero than the next power of two (or the subnormals'
            // spacing), within the bounds.
            Op::Round { min, max, grid: Some(grid), .. } => {
                let up = if x > 0.0 {
                    x.log2().ceil().exp2().max(f64::from(i32::from(grid.min_exp) - i32::from(grid.mantissa)).exp2())
                } else {
                    0.0
                };
                match (min, max) {
                    (Some(lo), Some(hi)) => up.min((*lo as f64).abs().max((*hi as f64).abs())),
                    _ => up,
                }
            }
            // An integer no further from zero than the nearest one beyond |x|, within the bounds.
            Op::Round { min, max, .. } => match (min, max) {
                (Some(lo), Some(hi)) => x.ceil().min((*lo as f64).abs().max((*hi as f64).abs())),
                _ => x.ceil(),
            },
            // ReLU(x) − h̃(|x|) with 0 ≤ h̃ ≤ 0.18: within max(|x|, 0.18).
            Op::PlGelu { .. } => x.max(0.18),
            // 1/√(x + ε) for a variance x ≥ 0: at most 1/√ε (`quantize` raises this to the
            // fixed-point maximum where that is larger, as when ε rounds to zero).
            Op::Rsqrt { eps } if *eps > 0.0 => 1.0 / (*eps as f64).sqrt(),
            Op::Rsqrt { .. } => RSQRT_UNBOUNDED,
            _ => x,
        };
    }
    b
}

/// Model inputs of `shape` (`[B, ...]`) cut from a data set `x` of shape `[N, ...]`, `B` items
/// at a time (a trailing partial batch is dropped).
pub fn samples(x: &Tensor, shape: &[usize]) -> Result<Vec<Tensor>, String> {
    if x.shape.len() != shape.len() || x.shape[1..] != shape[1..] {
        return Err(format!("data of shape {:?} does not hold model inputs of shape {shape:?}", x.shape));
    }
    let per: usize = shape.iter().product();
    Ok(x.data.chunks_exact(per.max(1)).map(|c| Tensor { shape: shape.to_vec(), data: c.to_vec() }).collect())
}
