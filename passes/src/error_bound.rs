//! A sound bound on how far a fixed-point graph's outputs can be from exact real arithmetic.
//!
//! Propagates, per value, a bound `e` on `|decoded fixed − real|` in real units, alongside the
//! magnitude bound of [`crate::range`]: input rounding (half an ulp), weight and bias rounding,
//! truncation (under one ulp of the output scale, exact or local), and Circa's sign
//! faults (which zero or pass values of magnitude under `2^(drop_bits − s)`). Local truncation
//! wraps are failures, not rounding, and are excluded (the simulator counts them). This is the
//! tolerance the tests hold the simulator to: it is derived from the scales, never tuned.
//!
//! Two sources for the magnitudes the propagation multiplies errors by:
//! - [`error_bounds`]: worst-case intervals from `|input| ≤ input_bound`, sound for every such
//!   input. The inverse square root's operand (a variance) may then be as small as `0`, where
//!   `1/√(x + ε)` has slope `½·ε^(−3/2)` (1.6·10⁷ for `ε = 10⁻⁵`): sound but loose by many orders
//!   of magnitude for any graph with a normalisation.
//! - [`calibrated_error_bounds`]: the real values on calibration inputs, with the headroom
//!   `quantize` gives calibrated ranges (twice the largest magnitude), and each inverse square
//!   root's operand at least half the smallest value seen. Sound for the calibration inputs
//!   (and any input whose values stay within those ranges), not for every input.

use veil_ir::eval::EvalError;
use veil_ir::{Const, ElemType, Graph, Op, Tensor, poly_scales};

use crate::range::worst_case_values;

fn ulp(frac: u32) -> f64 {
    (-(frac as f64)).exp2()
}

/// Error bounds indexed by value handle, for inputs with `|x| ≤ input_bound` (each input is
/// rounded to its scale), from worst-case magnitudes (see the module doc).
pub fn error_bounds(g: &Graph, input_bound: f64) -> Vec<f64> {
    let floors = vec![0.0; g.values.len()];
    propagate(g, &worst_case_values(g, input_bound), &floors)
}

/// Error bounds indexed by value handle for the inputs `samples` (one tensor per graph input
/// per sample, as [`crate::Options::calibration`]), from their real values ([`veil_ir::eval::run_real_values`]):
/// magnitudes twice the largest seen, inverse square roots' operands at least half the
/// smallest seen (see the module doc). Without samples, [`error_bounds`] for the graph's input
/// bound (1 if it records none).
pub fn calibrated_error_bounds(g: &Graph, samples: &[Tensor]) -> Result<Vec<f64>, EvalError> {
    if samples.is_empty() {
        return Ok(error_bounds(g, g.input_bound.unwrap_or(1.0) as f64));
    }
    use rayon::prelude::*;
    let samples: Vec<&[Tensor]> = samples.chunks_exact(g.inputs.len().max(1)).collect();
    let per_sample = crate::parallel::install(|| {
        samples
            .par_iter()
            .map(|x| {
                let env = veil_ir::eval::run_real_values(g, x)?;
                Ok(env
                    .iter()
                    .map(|t| {
                        t.as_ref().map_or((0.0, f64::INFINITY), |t| {
                            t.data
                                .iter()
                                .fold((0f64, f64::INFINITY), |(m, lo), &v| (m.max((v as f64).abs()), lo.min(v as f64)))
                        })
                    })
                    .collect::<Vec<_>>())
            })
            .collect::<Result<Vec<_>, EvalError>>()
    })?;
    let (mut mag, mut low) = (vec![0f64; g.values.len()], vec![f64::INFINITY; g.values.len()]);
    for sample in per_sample {
        for (i, (m, lo)) in sample.into_iter().enumerate() {
            mag[i] = mag[i].max(2.0 * m);
            low[i] = low[i].min(lo);
        }
    }
    let floors: Vec<f64> = low.iter().map(|&lo| if lo.is_finite() { (0.5 * lo).max(0.0) } else { 0.0 }).collect();
    Ok(propagate(g, &mag, &floors))
}

/// The propagation for magnitudes `mag` (bounds on the real `|value|`) and `floors` (lower
/// bounds on the real value, used for the inverse square root's operand), by value handle.
fn propagate(g: &Graph, mag: &[f64], floors: &[f64]) -> Vec<f64> {
    let mut e = vec![0f64; g.values.len()];
    let scale = |v: veil_ir::ValueId| match g.values[v].ty.elem {
        ElemType::Fixed { frac_bits } => frac_bits as u32,
        _ => 0,
    };
    for &v in &g.inputs {
        e[v.index()] = ulp(scale(v) + 1);
    }
    let half = |c: Const| ulp(g.consts[c].frac_bits.unwrap_or(60) as u32 + 1);
    let absmax = |c: Const| g.consts[c].data.iter().fold(0f64, |m, &x| m.max((x as f64).abs()));
    for (_, n) in g.live_nodes() {
        let x = n.inputs.first().copied();
        let (ex, bx, sx) = x.map_or((0.0, 0.0, 0), |v| (e[v.index()], mag[v.index()], scale(v)));
        let linear = |w: Const, bias: Option<Const>| {
            let k = &g.consts[w];
            let m = k.shape[0].max(1);
            let per = k.data.len() / m;
            let dw = half(w);
            (0..m)
                .map(|o| {
                    let l1: f64 = k.data[o * per..(o + 1) * per].iter().map(|&w| (w as f64).abs() + dw).sum();
                    l1 * ex + per as f64 * dw * bx + bias.map_or(0.0, half)
                })
                .fold(0f64, f64::max)
        };
        e[n.output.index()] = match &n.op {
            Op::Dense { weight, bias } | Op::Conv2d { weight, bias, .. } => linear(*weight, *bias),
            Op::Affine { scale: s, shift: t } => {
                s.map_or(ex, |s| (absmax(s) + half(s)) * ex + half(s) * bx) + t.map_or(0.0, half)
            }
            Op::Add | Op::Sub => n.inputs.iter().map(|v| e[v.index()]).sum(),
            // The approximation's own error, the operand's through slopes of at most 1/4 (both
            // the logistic function's and the segments'), and two ulps of rounding (the shift's
            // floor and the constants).
            Op::PlSigmoid => veil_ir::eval::ring_ops::PL_SIGMOID_MAX_ERROR + ex / 4.0 + 2.0 * ulp(sx),
            // Exact on its operand's fixed-point value; a step function, so an operand error of
            // `ex > 0` may cross up to ⌈ex⌉ of its unit jumps (the clamp only brings them closer).
            // Onto a float grid: the operand's error, and up to two of the grid's steps where the
            // operand's magnitude can reach (its spacing there, or the subnormals').
            Op::Round { grid: Some(grid), .. } if ex > 0.0 => {
                let top = (bx + ex).max(f64::MIN_POSITIVE).log2().floor() as i64;
                let step = (top.max(i64::from(grid.min_exp)) - i64::from(grid.mantissa)) as f64;
                ex + 2.0 * step.exp2()
            }
            Op::Round { grid: Some(_), .. } => 0.0,
            Op::Round { .. } => ex.ceil(),
            // The approximation's own error, the operand's through Gelu's slope (at most 1.13:
            // |g̃(x') − g(x)| ≤ |g̃(x') − g(x')| + |g(x') − g(x)|), and two ulps of rounding.
            Op::PlGelu { .. } => {
                use veil_ir::eval::ring_ops::pl_gelu::{GELU_LIPSCHITZ, PL_GELU_MAX_ERROR};
                PL_GELU_MAX_ERROR + GELU_LIPSCHITZ * ex + 2.0 * ulp(sx)
            }
            // The operand's error through the slope at the smallest argument (its floor plus ε),
            // ε's rounding and the two floors (the root's and the division's); infinite without
            // an ε or a floor.
            Op::Rsqrt { eps } => {
                let floor = x.map_or(0.0, |v| floors[v.index()]);
                let whole = veil_ir::eval::ring_ops::rsqrt::max_error(sx as u8, *eps, ex, floor);
                let rows = x.and_then(|v| per_row_rsqrt(g, &e, v, *eps, floor, sx));
                rows.map_or(whole, |r| r.min(whole))
            }
            // The approximation's own error, the operand's through the slope `ln 2·2^x ≤ ln 2`
            // (the clamp at 0 only brings them closer) and the rounding.
            Op::Exp2 => {
                use veil_ir::eval::ring_ops::exp2::{EXP2_MAX_ERROR, ROUNDING_ULPS};
                EXP2_MAX_ERROR + std::f64::consts::LN_2 * ex + ROUNDING_ULPS * ulp(sx)
            }
            // `1/max(x, 1)` moves by at most the operand's error (slope at most 1), plus the
            // quotient's floor.
            Op::Reciprocal => ex + ulp(sx),
            // Its integer operand, off by less than one half, still rounds to itself; beyond,
            // a row may light the wrong column.
            Op::OneHot { .. } => {
                if ex < 0.5 {
                    0.0
                } else {
                    1.0
                }
            }
            // Exact in the ring: |ab − a'b'| ≤ |a|·e_b + |b|·e_a + e_a·e_b.
            Op::Mul => {
                let (ey, by) = (e[n.inputs[1].index()], mag[n.inputs[1].index()]);
                bx * ey + by * ex + ex * ey
            }
            // The same for each of the k products summed.
            Op::MatMul => {
                let (ey, by) = (e[n.inputs[1].index()], mag[n.inputs[1].index()]);
                let k = g.values[n.inputs[0]].ty.shape.last().copied().unwrap_or(1) as f64;
                k * (bx * ey + by * ex + ex * ey)
            }
            Op::Concat { .. } => n.inputs.iter().map(|v| e[v.index()]).fold(0.0, f64::max),
            Op::SumPool { window } => ex * (window.kernel[0] * window.kernel[1]) as f64,
            // Exact gives ⌊x/2^k⌋, local that or one more: both within one ulp of x/2^k.
            Op::Truncate { bits, .. } => ex + ulp(sx - *bits as u32),
            Op::StochasticRelu { drop_bits, .. } => {
                ex + ulp(sx).max(0.0) * drop_bits.map_or(0.0, |k| (k as f64).exp2())
            }
            Op::LeakyRelu { alpha } => {
                let a = (*alpha as f64).abs();
                a.max(1.0) * ex + ulp(veil_ir::eval::LEAKY_ALPHA_BITS as u32 + 1) * bx + ulp(sx)
            }
            Op::Poly { coeffs } => {
                let (fc, _) = poly_scales(coeffs, sx as u8);
                let deg = coeffs.len() - 1;
                let r = bx + ex;
                let deriv: f64 = coeffs
                    .iter()
                    .enumerate()
                    .skip(1)
                    .map(|(i, &c)| i as f64 * (c as f64).abs() * r.powi(i as i32 - 1))
                    .sum();
                let rounding: f64 = (0..=deg).map(|i| ulp((deg - i) as u32 * sx + fc + 1) * r.powi(i as i32)).sum();
                let rounding = if fc == 0 && coeffs.iter().all(|c| c.fract() == 0.0) { 0.0 } else { rounding };
                deriv * ex + rounding
            }
            Op::LogSoftmax { .. } => 2.0 * ex,
            Op::ArgMax { .. } => f64::INFINITY,
            // Relu, MaxPool, Clip, movement, Reveal, Softmax and Sigmoid (1/4) are 1-Lipschitz.
            _ => ex,
        };
    }
    e
}

/// `(k, e₀, e₁)` when `v` is a sum of `k` squares (`sumpool` of a `mul` whose operands are
/// truncations, or not, of one value), `e₀` and `e₁` the operands' error bounds.
fn sum_of_squares(g: &Graph, e: &[f64], v: veil_ir::ValueId) -> Option<(usize, f64, f64)> {
    let pool = g.producer(v)?;
    let Op::SumPool { window } = &pool.op else { return None };
    let product = g.producer(pool.inputs[0])?;
    if !matches!(product.op, Op::Mul) {
        return None;
    }
    let source = |mut u: veil_ir::ValueId| {
        while let Some(n) = g.producer(u).filter(|n| matches!(n.op, Op::Truncate { .. })) {
            u = n.inputs[0];
        }
        u
    };
    let (a, b) = (product.inputs[0], product.inputs[1]);
    (source(a) == source(b)).then(|| (window.kernel[0] * window.kernel[1], e[a.index()], e[b.index()]))
}

/// The inverse square root's error per row when its operand is a row's sum of squares
/// `S = Σaᵢ²` (a normalisation's) at least `floor`: a row's operand then errs by at most
/// `δ(S) = (e₀ + e₁)·Σ|aᵢ| + k·e₀·e₁ ≤ (e₀ + e₁)·√(k·S) + k·e₀·e₁` (Cauchy–Schwarz), which
/// grows like `√S` while the slope falls like `S^(−3/2)`: with `δ_f = δ(floor)`, `u = √(S/floor)`,
/// `δ(S) ≤ δ_f·u` and the argument is at least `u²·(floor − δ_f)`, so the slope term is largest at
/// `S = floor` when `floor − δ_f` exceeds `ε` and an ulp (its derivative in `u` is then negative),
/// and so is the smallest argument (for the floors). Far below the bound from the largest `|aᵢ|`
/// of the whole tensor, which pairs the widest row's magnitudes with the narrowest row's slope.
/// `None` when the operand is not such a sum or the condition fails.
fn per_row_rsqrt(g: &Graph, e: &[f64], v: veil_ir::ValueId, eps: f32, floor: f64, s: u32) -> Option<f64> {
    let (k, e0, e1) = sum_of_squares(g, e, v)?;
    let df = (e0 + e1) * (k as f64 * floor).sqrt() + k as f64 * e0 * e1;
    (floor - df > eps as f64 + ulp(s)).then(|| veil_ir::eval::ring_ops::rsqrt::max_error(s as u8, eps, df, floor))
}
