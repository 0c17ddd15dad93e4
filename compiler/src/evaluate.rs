//! Accuracy of a compiled model against its float reference over a labelled data set: what
//! `veilc eval` prints.

use serde::Serialize;
use veil_ir::{Graph, Tensor};

/// One evaluation's results. Accuracy fields are present when labels are.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// Number of inputs evaluated.
    pub samples: usize,
    /// Accuracy of the float model against the labels (fraction correct).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float_accuracy: Option<f64>,
    /// Accuracy of the fixed-point simulation against the labels (fraction correct).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Fraction of samples whose top-1 class under fixed point equals the float model's.
    pub top1_agreement: f64,
    /// Largest |fixed − float| over all output elements.
    pub max_abs_error: f64,
    /// Mean |fixed − float| over all output elements.
    pub mean_abs_error: f64,
    /// Fraction of Circa sign tests that read the sign wrongly (0 without Circa).
    pub circa_fault_rate: f64,
    /// Local truncations that wrapped (should be 0).
    pub truncation_wraps: usize,
    /// Elements of narrowed reads whose value exceeded the narrowed width (should be 0; see
    /// [`veil_ir::eval::FixedRun::narrow_overflows`]).
    pub narrow_overflows: usize,
}

fn argmax(t: &Tensor) -> usize {
    (0..t.data.len()).max_by(|&a, &b| t.data[a].total_cmp(&t.data[b])).unwrap_or(0)
}

/// Runs `float` (the imported model) and `fixed` (the compiled one) on every sample of `xs`, one
/// tensor per model input per sample (a sample's inputs consecutive, as
/// `veil_passes::Options::calibration` holds them); `labels[i]` is sample `i`'s class. Sample
/// `i` uses simulation seed `seed + i`.
pub fn evaluate(
    float: &Graph,
    fixed: &Graph,
    xs: &[Tensor],
    labels: Option<&[i64]>,
    seed: u64,
) -> Result<EvalReport, veil_ir::eval::EvalError> {
    let (mut agree, mut float_ok, mut fixed_ok) = (0usize, 0usize, 0usize);
    let (mut max_err, mut sum_err, mut count) = (0f64, 0f64, 0usize);
    let (mut faults, mut tests, mut wraps, mut overflows) = (0usize, 0usize, 0usize, 0usize);
    let k = float.inputs.len().max(1);
    let samples = xs.len() / k;
    for (i, x) in xs.chunks_exact(k).enumerate() {
        let f = veil_ir::eval::run_float(float, x)?;
        let r = veil_ir::eval::run_fixed(fixed, x, seed.wrapping_add(i as u64))?;
        faults += r.circa_faults;
        tests += r.circa_tests;
        wraps += r.truncation_wraps;
        overflows += r.narrow_overflows;
        for (a, b) in r.outputs.iter().zip(&f) {
            for (p, q) in a.data.iter().zip(&b.data) {
                let e = (*p as f64 - *q as f64).abs();
                max_err = max_err.max(e);
                sum_err += e;
                count += 1;
            }
        }
        let (cf, cx) = (argmax(&f[0]), argmax(&r.outputs[0]));
        agree += usize::from(cf == cx);
        if let Some(l) = labels {
            float_ok += usize::from(cf as i64 == l[i]);
            fixed_ok += usize::from(cx as i64 == l[i]);
        }
    }
    let n = samples.max(1) as f64;
    Ok(EvalReport {
        samples,
        float_accuracy: labels.map(|_| float_ok as f64 / n),
        accuracy: labels.map(|_| fixed_ok as f64 / n),
        top1_agreement: agree as f64 / n,
        max_abs_error: max_err,
        mean_abs_error: sum_err / count.max(1) as f64,
        circa_fault_rate: if tests == 0 { 0.0 } else { faults as f64 / tests as f64 },
        truncation_wraps: wraps,
        narrow_overflows: overflows,
    })
}
