//! `veilc compile`: the plan (public) and the weights (server only), plus a summary.

use std::path::PathBuf;

use super::{CliError, CompileArgs, ModelArgs, emit};

#[derive(clap::Args)]
pub struct CompileCmd {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    compile: CompileArgs,
    /// Output folder for <name>.plan and <name>.weights (created if missing; the weights are
    /// written mode 0600).
    #[arg(short, long, value_name = "DIR", help_heading = "Output")]
    output: PathBuf,
    /// Print per-pass times.
    #[arg(long, help_heading = "Output")]
    timings: bool,
    /// Print the summary as JSON on stdout instead of the table (every layer, exact integers,
    /// the passes' notes and times).
    #[arg(long, help_heading = "Output")]
    json: bool,
    /// Print every column of the table with exact integers, whatever the terminal's width
    /// (by default the table fits $COLUMNS or the terminal, in human units).
    #[arg(long, help_heading = "Output", conflicts_with = "json")]
    wide: bool,
}

pub fn run(a: CompileCmd) -> Result<(), CliError> {
    // Flags first: a bad one must not leave files behind.
    let network = a.compile.network()?;
    let super::Compiled { fixed: g, runs, budget, files, precision, .. } = a.compile.compile(&a.model)?;
    let veil_compiler::PlanFiles { plan, weights, hash } = super::runnable(files)?;
    std::fs::create_dir_all(&a.output).map_err(|e| {
        CliError::internal(anyhow::Error::new(e).context(format!("cannot create {}", a.output.display())))
    })?;
    let stem = a.model.model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    let (plan_path, weights_path) = (a.output.join(format!("{stem}.plan")), a.output.join(format!("{stem}.weights")));
    emit(Some(&plan_path), &plan)?;
    // The weights are the server's secret: mode 0600 whatever the umask, never written through
    // a symbolic link.
    if let Err(e) = veil_ir::files::write_secret(&weights_path, &weights, true) {
        // Never leave a plan without its weights.
        let _ = std::fs::remove_file(&plan_path);
        return Err(CliError::internal(
            anyhow::Error::new(e).context(format!("cannot write {}", weights_path.display())),
        ));
    }
    let mut summary = veil_compiler::summarize(&g);
    summary.set_network(network);
    let text = if a.json {
        let mut v = serde_json::to_value(&summary).map_err(CliError::internal)?;
        v["plan"] = plan_path.display().to_string().into();
        v["weights"] = weights_path.display().to_string().into();
        v["plan_hash"] = veil_ir::plan::hex(&hash).into();
        if let Some(b) = &budget {
            v["relu_budget"] = serde_json::to_value(b).map_err(CliError::internal)?;
        }
        if let Some(c) = &precision {
            v["precision"] = serde_json::json!({
                "frac_bits": c.frac_bits, "weight_extra_bits": c.weight_extra_bits, "ring_bits": c.ring_bits, "error": c.error,
                "max_error": c.max_error, "samples": c.samples.to_string(),
                "layer_frac_bits": c.layer_frac_bits, "global_ring_bits": c.global_ring_bits,
            });
        }
        v["passes"] = runs
            .iter()
            .map(|r| serde_json::json!({"pass": r.pass.name(), "seconds": r.time.as_secs_f64(), "notes": r.report.notes}))
            .collect::<Vec<_>>()
            .into();
        serde_json::to_string_pretty(&v).map_err(CliError::internal)? + "\n"
    } else {
        let mut t = String::new();
        if let Some(c) = &precision {
            t += &format!("precision: {c}\n");
        }
        for r in &runs {
            for note in &r.report.notes {
                t += &format!("{}: {note}\n", r.pass);
            }
        }
        if let Some(b) = &budget {
            t += &format!("\n{b}");
        }
        if a.timings {
            t += "\npass timings:\n";
            for r in &runs {
                t += &format!("  {:<24} {:>9.3} ms\n", r.pass, r.time.as_secs_f64() * 1e3);
            }
        }
        let fit = veil_ir::report::Fit::terminal(a.wide);
        t += &format!("\n{}", summary.render(fit));
        let size = |n: usize| if a.wide { format!("{n} B") } else { veil_ir::report::units::bytes(n as u64) };
        t += &format!(
            "wrote {} ({}, hash {})\n  and {} ({})\n",
            plan_path.display(),
            size(plan.len()),
            &veil_ir::plan::hex(&hash)[..16],
            weights_path.display(),
            size(weights.len())
        );
        t
    };
    emit(None, text.as_bytes())
}
