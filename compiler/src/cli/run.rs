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
    /// The input tensor (`.npy`); for a model with several inputs, once per input in the
    /// model's order (`--input ids.npy --input mask.npy`).
    #[arg(long, value_name = "x.npy", required = true)]
    input: Vec<PathBuf>,
    /// Classes to print.
    #[arg(long, default_value_t = 3, value_name = "K")]
    top: usize,
    /// Also write the client's stats JSON here (`-`: standard output).
    #[arg(long, value_name = "FILE")]
    stats: Option<PathBuf>,
    /// Print the report as JSON on stdout instead of the text: the prediction, the float
    /// model's, the wall time, and the client's stats (the `--stats` schema, one entry per step);
    /// the client's own output is not shown.
    #[arg(long, conflicts_with = "wide")]
    json: bool,
    /// Print every column of the cost table with exact integers, whatever the terminal's width.
    #[arg(long)]
    wide: bool,
}

pub fn run(a: RunArgs) -> Result<(), CliError> {
    veil_binary()?; // before compiling: a missing runtime binary is the first thing to report
    let xs = a.model.read_inputs(&a.input)?;
    let mut compile = a.compile;
    compile.bound_from_input(&xs);
    let super::Compiled { float, fixed: g, budget, files, .. } = compile.compile(&a.model)?;
    let veil_compiler::PlanFiles { plan, weights, .. } = super::runnable(files)?;
    if let Some(b) = &budget {
        eprint!("{b}");
    }
    let names: Vec<String> = a.input.iter().map(|p| p.display().to_string()).collect();
    veil_ir::eval::encode_inputs(&g, &xs)
        .with_context(|| format!("input {}", names.join(", ")))
        .map_err(CliError::user)?;
    let dir = TempDir::new("run")?;
    let job = Job {
        dir: &dir,
        plan: &plan,
        weights: &weights,
        inputs: &a.input,
        link: None,
        client_args: vec!["--top".into(), a.top.to_string()],
        show_client: !a.json,
    };
    let Outcome { output: secure, stats, wall } = run_two_processes(&job)?;
    let reference = veil_ir::eval::run_float(&float, &xs).map_err(CliError::user)?;
    if let Some(out) = &a.stats {
        super::emit(Some(out), stats.as_bytes())?;
    }
    let stats: Stats = serde_json::from_str(&stats).map_err(CliError::internal)?;
    if a.json {
        let mut v = serde_json::to_value(&stats).map_err(CliError::internal)?;
        v["prediction"] = serde_json::json!({
            "class": secure.class_scores().map(|_| top1(&secure)), "shape": secure.shape, "values": secure.data,
        });
        v["float_reference"] = serde_json::json!({
            "class": secure.class_scores().map(|_| top1(&reference[0])),
            "max_abs_difference": max_abs_difference(&secure, &reference[0]),
        });
        v["wall_seconds"] = wall.as_secs_f64().into();
        let text = serde_json::to_string_pretty(&v).map_err(CliError::internal)? + "\n";
        return super::emit(None, text.as_bytes());
    }
    print_comparison(&secure, &reference[0]);
    print!("\n{}", costs_table(&stats, veil_ir::report::Fit::terminal(a.wide)));
    println!("wall time, both processes: {}", veil_ir::report::units::seconds(wall.as_secs_f64()));
    Ok(())
}

fn top1(t: &veil_ir::Tensor) -> usize {
    let classes = *t.shape.last().unwrap_or(&1);
    t.data[..classes.min(t.data.len())].iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i)
}

fn max_abs_difference(secure: &veil_ir::Tensor, float: &veil_ir::Tensor) -> f32 {
    secure.data.iter().zip(&float.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max)
}

fn print_comparison(secure: &veil_ir::Tensor, float: &veil_ir::Tensor) {
    if secure.class_scores().is_none() {
        println!(
            "two-party output {}   max |difference| from the float model {:.6}",
            secure.summary(),
            max_abs_difference(secure, float)
        );
        return;
    }
    println!(
        "two-party prediction: class {}   float model: class {}   max |difference| {:.6}",
        top1(secure),
        top1(float),
        max_abs_difference(secure, float)
    );
}

/// The client's costs, one row per layer ([`Stats::per_layer`]: a convolution's `share` and
/// `HE` steps are one `HE+share` row) with a cost, then the totals.
pub fn costs_table(stats: &Stats, fit: veil_ir::report::Fit) -> String {
    use veil_ir::report::{Cell, Column, Table};
    let mut t = Table::new(vec![
        Column::name("layer"),
        Column::text("op", 60),
        Column::text("protocol", 80),
        Column::number("off c→s", 40).unit("B"),
        Column::number("off s→c", 70).unit("B"),
        Column::number("off rounds", 20),
        Column::number("on c→s", 50).unit("B"),
        Column::number("on s→c", 65).unit("B"),
        Column::number("on rounds", 30),
        Column::number("on time", 75).unit("s"),
    ]);
    let mut row = |name: &str, op: &str, proto: &str, off: &Phase, on: &Phase| {
        t.row(vec![
            Cell::text(name),
            Cell::text(op),
            Cell::text(proto),
            Cell::bytes(off.bytes_client_to_server),
            Cell::bytes(off.bytes_server_to_client),
            Cell::count(off.rounds),
            Cell::bytes(on.bytes_client_to_server),
            Cell::bytes(on.bytes_server_to_client),
            Cell::count(on.rounds),
            Cell::seconds(on.seconds),
        ])
    };
    for l in stats.per_layer() {
        if l.offline.bytes() > 0 || l.online.bytes() > 0 {
            row(&l.name, &l.op, &l.protocol, &l.offline, &l.online);
        }
    }
    row("total", "", "", &stats.offline, &stats.online);
    let s = |x: f64| {
        if fit == veil_ir::report::Fit::Wide { format!("{x:.6} s") } else { veil_ir::report::units::seconds(x) }
    };
    t.render(fit)
        + &format!("offline {}, online {} (client's clock)\n", s(stats.offline.seconds), s(stats.online.seconds))
}
