//! `veilc ir`: the lowered IR as text, JSON or Graphviz dot.

use std::path::PathBuf;

use clap::ValueEnum;

use super::{CliError, CompileArgs, ModelArgs, emit};

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
    Dot,
}

#[derive(clap::Args)]
pub struct IrArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    compile: CompileArgs,
    /// Show the graph after this pass.
    #[arg(long, default_value = "import", value_name = "PASS", help_heading = "Output")]
    after: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "text", help_heading = "Output")]
    format: Format,
    /// Write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE", help_heading = "Output")]
    output: Option<PathBuf>,
}

pub fn run(a: IrArgs) -> Result<(), CliError> {
    let stages = veil_passes::stages();
    if !stages.contains(&a.after.as_str()) {
        return Err(CliError::user(anyhow::anyhow!(
            "unknown pass {:?} for --after; passes: {}",
            a.after,
            stages.join(", ")
        )));
    }
    let mut g = a.model.import()?;
    let (opts, _) = a.compile.options(&g)?;
    veil_passes::run_pipeline(&mut g, &opts, Some(&a.after), true)?;
    let text = match a.format {
        Format::Text => veil_ir::print::to_text(&g),
        Format::Json => veil_ir::print::to_json(&g) + "\n",
        Format::Dot => veil_ir::print::to_dot(&g),
    };
    emit(a.output.as_ref(), text.as_bytes())
}
