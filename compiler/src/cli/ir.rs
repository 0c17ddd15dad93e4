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
    /// Show the graph after this pass, in pipeline order: import, fold_constants, fold_batchnorm,
    /// normalize_linear, substitute_activations, quantize, fuse_truncation, assign_protocols, emit.
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
    // Parsed here rather than by clap: an unknown name is a rejected input (exit code 1).
    let after: veil_passes::Stage = a.after.parse().map_err(|e| CliError::user(anyhow::anyhow!("--after: {e}")))?;
    let g = a.compile.compile_until(&a.model, Some(after))?.fixed;
    let text = match a.format {
        Format::Text => veil_ir::print::to_text(&g),
        Format::Json => veil_ir::print::to_json(&g) + "\n",
        Format::Dot => veil_ir::print::to_dot(&g),
    };
    emit(a.output.as_ref(), text.as_bytes())
}
