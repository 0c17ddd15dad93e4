//! `veilc run`: compile to a temporary folder, start `veil server` and `veil client` as two
//! processes on a free localhost port ([`super::procs`]), print the prediction beside the float
//! model's, and the costs.

use std::path::PathBuf;

use anyhow::Context;
use veil_ir::stats::{Phase, Stats};

use super::procs::{Job, Outcome, TempDir, run_two_processes, veil_binary};
use super::{CliError, CompileArgs, ModelArgs};

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    compile: CompileArgs,
    /// The input tensor (`.npy`).
    #[arg(long, value_name = "x.npy")]
    input: PathBuf,
    /// Classes to print.
    #[arg(long, default_value_t = 3, value_name = "K")]
    top: usize,
    /// Also write the client's stats JSON here.
    #[arg(long, value_name = "FILE")]
    stats: Option<PathBuf>,
}

pub fn run(a: RunArgs) -> Result<(), CliError> {
    veil_binary()?; // before compiling: a missing runtime binary is the first thing to report
    let x = veil_ir::npy::read_npy(&a.input)
        .with_context(|| format!("input {}", a.input.display()))
        .map_err(CliError::user)?;
    let mut compile = a.compile;
    compile.bound_from_input(&x);
    let super::Compiled { float, fixed: g, budget, files, .. } = compile.compile(&a.model)?;
    let veil_compiler::PlanFiles { plan, weights, .. } =
        files.ok_or_else(|| CliError::internal(anyhow::anyhow!("the whole pipeline ran but no plan was encoded")))?;
    if let Some(b) = &budget {
        eprint!("{b}");
    }
    veil_ir::eval::encode_inputs(&g, std::slice::from_ref(&x))
        .with_context(|| format!("input {}", a.input.display()))
        .map_err(CliError::user)?;
    let dir = TempDir::new("run")?;
    let job = Job {
        dir: &dir,
        plan: &plan,
        weights: &weights,
        input: &a.input,
        link: None,
        client_args: vec!["--top".into(), a.top.to_string()],
        show_client: true,
    };
    let Outcome { output: secure, stats, wall } = run_two_processes(&job)?;
    let reference = veil_ir::eval::run_float(&float, std::slice::from_ref(&x)).map_err(CliError::user)?;
    print_comparison(&secure, &reference[0]);
    if let Some(out) = &a.stats {
        veil_ir::npy::write_atomic(out, stats.as_bytes()).map_err(CliError::internal)?;
    }
    let stats: Stats = serde_json::from_str(&stats).map_err(CliError::internal)?;
    print_costs(&stats);
    println!("wall time, both processes: {:.2} s", wall.as_secs_f64());
    Ok(())
}

fn top1(t: &veil_ir::Tensor) -> usize {
    let classes = *t.shape.last().unwrap_or(&1);
    t.data[..classes.min(t.data.len())].iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i)
}

fn print_comparison(secure: &veil_ir::Tensor, float: &veil_ir::Tensor) {
    let max_err = secure.data.iter().zip(&float.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    println!(
        "two-party prediction: class {}   plaintext float model: class {}   max |difference| {max_err:.6}",
        top1(secure),
        top1(float)
    );
}

fn print_costs(stats: &Stats) {
    println!(
        "\n{:<28} {:<10} {:<11} {:>12} {:>12} {:>7} {:>12} {:>12} {:>7} {:>9}",
        "layer", "op", "protocol", "off c→s B", "off s→c B", "rounds", "on c→s B", "on s→c B", "rounds", "online ms"
    );
    let row = |name: &str, op: &str, proto: &str, (off, on): (&Phase, &Phase)| {
        println!(
            "{:<28} {:<10} {:<11} {:>12} {:>12} {:>7} {:>12} {:>12} {:>7} {:>9.2}",
            name.chars().take(28).collect::<String>(),
            op,
            proto,
            off.bytes_client_to_server,
            off.bytes_server_to_client,
            off.rounds,
            on.bytes_client_to_server,
            on.bytes_server_to_client,
            on.rounds,
            on.seconds * 1e3
        );
    };
    for l in &stats.layers {
        if l.offline.bytes() > 0 || l.online.bytes() > 0 {
            row(&l.name, &l.op, &l.protocol, (&l.offline, &l.online));
        }
    }
    row("total", "", "", (&stats.offline, &stats.online));
    println!("offline {:.3} s, online {:.3} s (client's clock)", stats.offline.seconds, stats.online.seconds);
}
