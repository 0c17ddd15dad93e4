//! `veilc eval`: fixed-point accuracy against the float model over a data set.

use std::path::PathBuf;

use super::{CliError, CompileArgs, ModelArgs, emit, npz_inputs, npz_labels};

#[derive(clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    compile: CompileArgs,
    /// The data set (.npz).
    #[arg(long, value_name = "test.npz", help_heading = "Input")]
    data: PathBuf,
    /// Array of --data holding the inputs (a model of several inputs reads one array per input,
    /// named as the input).
    #[arg(long, default_value = "x", value_name = "KEY", help_heading = "Input")]
    x: String,
    /// Array of --data holding integer class labels (accuracy is reported when present).
    #[arg(long, default_value = "y", value_name = "KEY", help_heading = "Input")]
    y: String,
    /// Evaluate only the first N samples.
    #[arg(long, value_name = "N", help_heading = "Input")]
    limit: Option<usize>,
    /// Seed of the simulated share masks (sample i uses SEED + i).
    #[arg(long, default_value_t = 0, help_heading = "Input")]
    seed: u64,
    /// Print the report as one JSON object on stdout instead of the text (`samples`,
    /// `accuracy`, `top1_agreement`, errors, `ring_bits`).
    #[arg(long, help_heading = "Output")]
    json: bool,
}

pub fn run(a: EvalArgs) -> Result<(), CliError> {
    let super::Compiled { float, fixed, budget, precision, .. } = a.compile.compile(&a.model)?;
    // One tensor per input per sample.
    let mut xs = npz_inputs(&a.data, &a.x, &float)?;
    let k = float.inputs.len().max(1);
    if let Some(n) = a.limit {
        xs.truncate(n * k);
    }
    let labels = npz_labels(&a.data, &a.y, xs.len() / k)?;
    let report = veil_compiler::evaluate(&float, &fixed, &xs, labels.as_deref(), a.seed).map_err(CliError::user)?;
    let text = if a.json {
        let mut v = serde_json::to_value(&report).map_err(CliError::internal)?;
        // F is the inputs' scale (chosen by the precision search unless --frac-bits gave it).
        let frac = fixed.inputs.first().and_then(|&v| match fixed.values[v].ty.elem {
            veil_ir::ElemType::Fixed { frac_bits } => Some(frac_bits),
            _ => None,
        });
        v["frac_bits"] = frac.into();
        if let Some(c) = &precision {
            v["precision_error"] = c.error.into();
        }
        v["ring_bits"] = fixed.ring_bits.into();
        if let Some(b) = &budget {
            v["relu_budget"] = serde_json::to_value(b).map_err(CliError::internal)?;
        }
        serde_json::to_string(&v).map_err(CliError::internal)? + "\n"
    } else {
        let pct = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |x| format!("{:.2}%", 100.0 * x));
        budget.as_ref().map(|b| format!("{b}\n")).unwrap_or_default()
            + &format!(
                "samples          {}\nfloat accuracy   {}\nfixed accuracy   {}\ntop-1 agreement  {:.2}%\nmax |error|      {:.6}\nmean |error|     {:.6}\nCirca fault rate {:.4}%\nring             {} bits\nnarrow overflows {}\n",
                report.samples,
                pct(report.float_accuracy),
                pct(report.accuracy),
                100.0 * report.top1_agreement,
                report.max_abs_error,
                report.mean_abs_error,
                100.0 * report.circa_fault_rate,
                fixed.ring_bits.unwrap_or(0),
                report.narrow_overflows,
            )
    };
    emit(None, text.as_bytes())
}
