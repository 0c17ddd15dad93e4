//! `precision`: chooses the fractional bits `F` so the simulated output error stays under a
//! target (`veilc compile --max-error E`).
//!
//! Not a pass of the pipeline but a driver of part of it: [`choose`] takes the float graph and
//! the options, runs the pipeline up to `substitute_activations` once (the float reference,
//! with the chosen activations' own float semantics, and a Sigmoid on shares as its
//! piecewise-linear approximation: no `F` removes an approximation's error, so the target
//! measures rounding only), then for `F` = [`MIN_FRAC_BITS`],
//! `F + 1`, ... runs `quantize` and `fuse_truncation` at that `F`, simulates the samples with
//! [`veil_ir::eval::run_fixed`] (seed 0, as `veilc simulate`), and stops at the first `F` whose
//! error is at most the target. The ring width ℓ grows with `F` (`quantize` picks it), so the
//! smallest such `F` is also the cheapest plan. Samples are simulated [`BATCH`] at a time, in
//! parallel, and an `F` stops at the first batch that misses the target: a refused `F` costs
//! one batch rather than every sample (the chosen `F` still runs them all).
//!
//! **Error**, per graph output `o`: `max |fixed − float|` over the samples and the output's
//! elements, divided by the **output range** `max − min` of the float output `o` over all
//! samples and elements (an output that is constant over the samples is held to the absolute
//! error instead); the model's error is the largest over its outputs. Client-side outputs
//! (softmax, argmax) are compared as decoded.
//!
//! **Samples**: the calibration inputs (`--calibrate`, at most [`MAX_SAMPLES`] of them, the first
//! ones); without calibration, [`RANDOM_SAMPLES`] inputs (every graph input) drawn uniformly in
//! `[−input_bound, input_bound]` from a fixed seed, so the choice is reproducible.
//!
//! The search stops without a choice when `quantize` refuses an `F` (the values no longer fit
//! the ring, at most 61 bits; a larger `F` needs more) or at `F` = 30 (quantize's limit): it is
//! then refused, naming the best error reached and its `F`. If the smallest `F` is already
//! refused, that refusal is returned as it is. Per-layer `F` follows in
//! [`crate::precision_layers`].
//!
//! **Weights' extra bits.** The whole search runs twice, with the weights of dense and
//! convolution layers at their layer's `F` and at `F + 2` ([`Options::weight_extra_bits`]), and
//! keeps the narrower ring (then the smaller error). Weights are mostly below 1 in magnitude and
//! activations above, so at equal relative precision the weights want more fractional bits; where
//! the weights' rounding dominates the error, `F + 2` on the weights lets the activations' `F`
//! drop by more, and every value after a linear layer (at the activation's scale plus the
//! weights') narrows: ResNet-32's ring 39 → 37 bits and its garbled ReLUs' reads with it.

use veil_ir::{Graph, Tensor};

use crate::{Options, Pass, PassError, run_pipeline};

/// Default target: 1 % of the output range.
pub const DEFAULT_MAX_ERROR: f64 = 0.01;
/// The first `F` tried.
pub const MIN_FRAC_BITS: u8 = 6;
/// The largest `F` `quantize` accepts.
pub const MAX_FRAC_BITS: u8 = 30;
/// Calibration samples simulated per `F`, at most.
pub const MAX_SAMPLES: usize = 32;
/// Random samples simulated per `F` without calibration data.
pub const RANDOM_SAMPLES: usize = 8;
/// Samples simulated at once (in parallel) before checking the target. Fixed, not the thread
/// count, so which samples a refused `F` was measured on does not depend on the machine.
pub const BATCH: usize = 4;

/// Where the samples came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Samples {
    /// The first `count` calibration inputs.
    Calibration {
        /// Inputs simulated (at most [`MAX_SAMPLES`]).
        count: usize,
    },
    /// `count` inputs uniform in `[−bound, bound]`.
    Random {
        /// Inputs simulated ([`RANDOM_SAMPLES`]).
        count: usize,
        /// The input bound (`--input-bound`).
        bound: f32,
    },
}

impl std::fmt::Display for Samples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Samples::Calibration { count } => write!(f, "{count} calibration sample(s)"),
            Samples::Random { count, bound } => write!(f, "{count} random input(s) with |x| ≤ {bound}"),
        }
    }
}

/// One `F` tried: the ring it got and the error reached, or why `quantize` refused it.
#[derive(Clone, Debug, PartialEq)]
pub struct Trial {
    /// The fractional bits tried.
    pub frac_bits: u8,
    /// `(ring bits, error as a fraction of the output range)`, or `quantize`'s refusal. For an
    /// `F` that missed the target, the error of the samples simulated until a batch missed it:
    /// a lower bound unless [`Trial::complete`].
    pub outcome: Result<(u8, f64), String>,
    /// Whether every sample was simulated at this `F`.
    pub complete: bool,
}

/// What [`choose`] picked.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// The smallest `F` meeting the target.
    pub frac_bits: u8,
    /// The weights' fractional bits beyond their layer's `F` ([`Options::weight_extra_bits`]).
    pub weight_extra_bits: u8,
    /// The ring width `quantize` chose (or `--ring-bits`), with [`Choice::layer_frac_bits`].
    pub ring_bits: u8,
    /// Nodes given a lower `F` than [`Choice::frac_bits`] because it narrows the ring
    /// ([`crate::precision_layers`]), with their `F`.
    pub layer_frac_bits: std::collections::BTreeMap<String, u8>,
    /// The ring width at the global `F` alone.
    pub global_ring_bits: u8,
    /// The error reached (a fraction of the output range, see the module doc).
    pub error: f64,
    /// The target it met.
    pub max_error: f64,
    /// The inputs the error was measured on.
    pub samples: Samples,
    /// Every `F` tried, in order.
    pub trials: Vec<Trial>,
}

impl std::fmt::Display for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let layers = match self.layer_frac_bits.len() {
            0 => String::new(),
            n => format!(
                " ({n} layer(s) at a lower F, {}..={}, narrowing ℓ from {} bits)",
                self.layer_frac_bits.values().min().copied().unwrap_or(0),
                self.layer_frac_bits.values().max().copied().unwrap_or(0),
                self.global_ring_bits
            ),
        };
        write!(
            f,
            "F = {} fractional bits{}, ring ℓ = {} bits{layers}: output error {:.3} % of the output range (target {} %, {} F tried, on {})",
            self.frac_bits,
            match self.weight_extra_bits {
                0 => String::new(),
                e => format!(" (weights {e} more)"),
            },
            self.ring_bits,
            self.error * 100.0,
            self.max_error * 100.0,
            self.trials.len(),
            self.samples
        )
    }
}

fn reject(reason: String) -> PassError {
    PassError::Precision { reason }
}

/// The passes after `quantize` that change what the simulator computes: `fuse_truncation`, and
/// with `--stochastic-truncation` `assign_protocols`, which makes the truncations of the garbled
/// ReLUs and MaxPools stochastic (the measured error is then the stochastic plan's).
pub(crate) fn after_quantize(g: &mut Graph, opts: &Options) -> Result<(), PassError> {
    Pass::FuseTruncation.run(g, opts)?;
    if opts.stochastic_truncation {
        Pass::AssignProtocols.run(g, opts)?;
    }
    Ok(())
}

/// Chooses `F` for float graph `float` under `opts` (whose `frac_bits` is ignored) so that the
/// simulated output error is at most `max_error` (a fraction of the output range, > 0). See the
/// module doc for the search, the error and the samples.
pub fn choose(float: &Graph, opts: &Options, max_error: f64) -> Result<Choice, PassError> {
    if !(max_error.is_finite() && max_error > 0.0) {
        return Err(reject(format!("--max-error must be a positive fraction of the output range, got {max_error}")));
    }
    let mut base = float.clone();
    run_pipeline(&mut base, opts, Some(Pass::SubstituteActivations.into()), false)?;
    let (xs, samples) = sample_inputs(&base, opts)?;
    use rayon::prelude::*;
    let reference: Vec<Vec<Tensor>> = crate::parallel::install(|| {
        xs.par_iter().map(|x| veil_ir::eval::run_float_approximated(&base, x)).collect::<Result<_, _>>()
    })
    .map_err(|e| reject(format!("the float reference does not run on the samples: {e}")))?;
    // The value bounds (calibration runs the float graph on every sample) are the same at every F.
    let bounds = crate::range::bounds(&base, opts)?;
    // Weights at 0 and 2 fractional bits beyond their layer's F (unless the options fix it):
    // the narrower ring wins, then the smaller error.
    let extras: Vec<u8> = opts.weight_extra_bits.map_or(vec![0, 2], |e| vec![e]);
    let mut best: Option<Choice> = None;
    let mut first_err = None;
    for extra in extras {
        let at = Options { weight_extra_bits: Some(extra), ..opts.clone() };
        match search(&base, &at, max_error, (&xs, &reference), &bounds, samples.clone()) {
            Ok(c) => {
                let better = best.as_ref().is_none_or(|b| (c.ring_bits, c.error) < (b.ring_bits, b.error));
                if better {
                    best = Some(c);
                }
            }
            Err(e) => first_err = first_err.or(Some(e)),
        }
    }
    best.ok_or_else(|| first_err.expect("one candidate at least"))
}

/// The search of [`choose`] with the weights' extra bits `opts.weight_extra_bits`: the smallest
/// global `F` meeting the target, then per-layer `F` ([`crate::precision_layers::refine`]).
fn search(
    base: &Graph,
    opts: &Options,
    max_error: f64,
    (xs, reference): (&[Vec<Tensor>], &[Vec<Tensor>]),
    bounds: &(Vec<f64>, crate::range::RangeSource),
    samples: Samples,
) -> Result<Choice, PassError> {
    let mut trials = Vec::new();
    for frac in MIN_FRAC_BITS..=MAX_FRAC_BITS {
        let at = Options { frac_bits: frac, ..opts.clone() };
        let mut g = base.clone();
        let quantized =
            crate::quantize::run_with_bounds(&mut g, &at, Some(bounds)).and_then(|_| after_quantize(&mut g, &at));
        match quantized {
            Err(PassError::Rejected { reason, .. }) if !trials.is_empty() => {
                trials.push(Trial { frac_bits: frac, outcome: Err(reason), complete: false });
                break;
            }
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        let ring = g.ring_bits.expect("quantized");
        let (error, complete) = measure_until(&g, xs, reference, max_error)?;
        trials.push(Trial { frac_bits: frac, outcome: Ok((ring, error)), complete });
        if error <= max_error {
            let m = crate::precision_layers::Measure { xs, reference, max_error };
            // With --ring-bits nothing narrows: `quantize` reports no widest values and the
            // refinement stops at once.
            let layers = crate::precision_layers::refine(base, opts, bounds, (frac, ring, error), &m)?;
            return Ok(Choice {
                frac_bits: frac,
                weight_extra_bits: opts.weight_extra_bits.unwrap_or(0),
                ring_bits: layers.ring_bits,
                layer_frac_bits: layers.frac_bits,
                global_ring_bits: ring,
                error: layers.error,
                max_error,
                samples,
                trials,
            });
        }
    }
    let (best_f, best, complete) = trials
        .iter()
        .filter_map(|t| t.outcome.as_ref().ok().map(|&(_, e)| (t.frac_bits, e, t.complete)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("the first trial ran");
    let at_least = if complete { "" } else { "at least " };
    let why = match trials.last().map(|t| &t.outcome) {
        Some(Err(reason)) => format!("F = {} is refused ({reason})", trials.last().map_or(0, |t| t.frac_bits)),
        _ => format!("F stops at {MAX_FRAC_BITS}"),
    };
    Err(reject(format!(
        "no F reaches an output error of {} % of the output range on {samples}: the best is {at_least}{:.3} % at F = {best_f}, and {why}; \
         allow a larger --max-error, or give --frac-bits to compile at a chosen F anyway",
        max_error * 100.0,
        best * 100.0
    )))
}

/// The inputs the error is measured on, one `Vec` (every graph input) per sample (see the
/// module doc).
fn sample_inputs(g: &Graph, opts: &Options) -> Result<(Vec<Vec<Tensor>>, Samples), PassError> {
    if !opts.calibration.is_empty() {
        let xs: Vec<Vec<Tensor>> =
            opts.calibration_samples(g.inputs.len()).take(MAX_SAMPLES).map(<[Tensor]>::to_vec).collect();
        let count = xs.len();
        return Ok((xs, Samples::Calibration { count }));
    }
    let bound = opts.input_bound;
    if !(bound.is_finite() && bound > 0.0) {
        return Err(reject(format!("--input-bound must be a positive number, got {bound}")));
    }
    let mut state = 0x5eed_u64;
    let xs = (0..RANDOM_SAMPLES)
        .map(|_| {
            g.inputs
                .iter()
                .map(|&v| {
                    let shape = g.values[v].ty.shape.clone();
                    let n: usize = shape.iter().product();
                    let data = (0..n).map(|_| ((2.0 * unit(&mut state) - 1.0) * bound as f64) as f32).collect();
                    Tensor { shape, data }
                })
                .collect()
        })
        .collect();
    Ok((xs, Samples::Random { count: RANDOM_SAMPLES, bound }))
}

/// A uniform number in [0, 1) from a splitmix64 state (deterministic, no dependency).
fn unit(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The error of quantized graph `g` on `xs` against the float outputs `reference`, as a
/// fraction of each output's range (see the module doc).
/// `xs[i]` holds sample `i`'s inputs.
pub fn measure(g: &Graph, xs: &[Vec<Tensor>], reference: &[Vec<Tensor>]) -> Result<f64, PassError> {
    measure_until(g, xs, reference, f64::INFINITY).map(|(error, _)| error)
}

/// [`measure`], simulating [`BATCH`] samples at a time in parallel and stopping after the first
/// batch whose error exceeds `max_error`. Returns the error of the samples simulated and whether
/// that was all of them (if not, the error is a lower bound, already above `max_error`).
pub fn measure_until(
    g: &Graph,
    xs: &[Vec<Tensor>],
    reference: &[Vec<Tensor>],
    max_error: f64,
) -> Result<(f64, bool), PassError> {
    use rayon::prelude::*;
    let ranges = output_ranges(reference);
    let mut worst = 0f64;
    for (b, batch) in xs.chunks(BATCH).enumerate() {
        let errors = crate::parallel::install(|| {
            batch
                .par_iter()
                .zip(&reference[b * BATCH..])
                .map(|(x, want)| {
                    let run = veil_ir::eval::run_fixed(g, x, 0)
                        .map_err(|e| reject(format!("the simulator does not run on the samples: {e}")))?;
                    Ok(sample_error(&run.outputs, want, &ranges))
                })
                .collect::<Result<Vec<f64>, PassError>>()
        })?;
        worst = errors.into_iter().fold(worst, f64::max);
        if worst > max_error {
            return Ok((worst, (b + 1) * BATCH >= xs.len()));
        }
    }
    Ok((worst, true))
}

/// `max` over outputs of `max |a − b| / (max b − min b)` (absolute where `b` is constant);
/// non-finite values count as an infinite error. `a[i][o]` is sample `i`'s output `o`.
pub fn relative_error(a: &[Vec<Tensor>], b: &[Vec<Tensor>]) -> f64 {
    let ranges = output_ranges(b);
    a.iter().zip(b).map(|(ai, bi)| sample_error(ai, bi, &ranges)).fold(0f64, f64::max)
}

/// Per output `o`, `max − min` of `b[i][o]` over every sample `i` and element.
fn output_ranges(b: &[Vec<Tensor>]) -> Vec<f64> {
    let outputs = b.first().map_or(0, Vec::len);
    (0..outputs)
        .map(|o| {
            let values = b.iter().flat_map(|bi| bi[o].data.iter().map(|&y| y as f64));
            let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| (lo.min(y), hi.max(y)));
            hi - lo
        })
        .collect()
}

/// One sample's error: `max` over outputs of `max |a − b|`, divided by the output's range where
/// it is positive; infinite if a value is not finite.
fn sample_error(a: &[Tensor], b: &[Tensor], ranges: &[f64]) -> f64 {
    a.iter().zip(b).zip(ranges).fold(0f64, |worst, ((ao, bo), &range)| {
        let err = ao.data.iter().zip(&bo.data).fold(0f64, |err, (&x, &y)| {
            let (x, y) = (x as f64, y as f64);
            if x.is_finite() && y.is_finite() { err.max((x - y).abs()) } else { f64::INFINITY }
        });
        worst.max(if range > 0.0 { err / range } else { err })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(data: &[f32]) -> Tensor {
        Tensor { shape: vec![data.len()], data: data.to_vec() }
    }

    #[test]
    fn the_error_is_relative_to_each_outputs_range_over_all_samples() {
        // Output 0: float values span 0..4 over the two samples, worst deviation 0.2 → 5 %.
        // Output 1: constant 3, deviation 0.01 → absolute 0.01.
        let b = vec![vec![t(&[0.0, 1.0]), t(&[3.0])], vec![t(&[4.0, 2.0]), t(&[3.0])]];
        let a = vec![vec![t(&[0.1, 1.0]), t(&[3.01])], vec![t(&[4.0, 1.8]), t(&[3.0])]];
        assert!((relative_error(&a, &b) - 0.05).abs() < 1e-6, "{}", relative_error(&a, &b));
        let a = vec![vec![t(&[0.0, 1.0]), t(&[3.5])], b[1].clone()];
        assert!((relative_error(&a, &b) - 0.5).abs() < 1e-6);
        let a = vec![vec![t(&[f32::NAN, 1.0]), t(&[3.0])], b[1].clone()];
        assert_eq!(relative_error(&a, &b), f64::INFINITY);
    }

    #[test]
    fn random_samples_are_uniform_within_the_bound_and_reproducible() {
        let mut s = 1u64;
        let v: Vec<f64> = (0..10_000).map(|_| unit(&mut s)).collect();
        assert!(v.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        let mut s2 = 1u64;
        assert_eq!(unit(&mut s2), v[0]);
    }
}
