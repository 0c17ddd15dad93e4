//! `veilc bench`: compiles models under activation policies and runs each plan between a
//! `veil server` and a `veil client` process, on loopback and over an emulated WAN (`veil
//! relay`: bandwidth and delay shaped in user space, because `tc netem` needs a kernel module
//! many machines and containers lack). Prints, per model, policy and network, the measured
//! offline and online seconds, bytes each way and rounds, beside the cost model's predicted
//! time (network plus CPU), bytes per ReLU, the garbling and evaluation rates of the run
//! (AND gates per second of the garbled steps) and the client's storage between the phases
//! (predicted from the scripts). Plans are calibrated on the model's sample input, so x²+x compiles for every
//! bundled model.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use serde::Serialize;

use super::procs::{Job, TempDir, run_two_processes, veil_binary};
use super::{CliError, ModelArgs};
use veil_passes::cost::Network;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// ONNX models; each one's input is `inputs/<name>.npy` beside it (as in `models/`), or
    /// uniform random in [−1, 1] when there is none.
    #[arg(required = true, value_name = "MODEL.onnx")]
    models: Vec<PathBuf>,
    /// Activation policies to compare.
    #[arg(long, value_delimiter = ',', default_value = "relu,circa,poly", value_name = "relu,circa,poly")]
    policies: Vec<veil_passes::Activation>,
    /// Exact ReLUs' protocol (`veilc compile --nonlinear`): garbled circuits, over OT, or the
    /// cost model's choice per layer; a row's policy names it (`relu+ot`) unless it is `gc`,
    /// `+3h` marks plans garbled with three halves and `+silent` plans whose
    /// chosen-input OTs are silent.
    #[arg(long, default_value = "auto", value_name = "gc|ot|auto")]
    nonlinear: veil_passes::NonlinearChoice,
    /// Garbled circuits' scheme (`veilc compile --garbling`; `auto` chooses for the LAN profile).
    #[arg(long, default_value = "half-gates", value_name = "half-gates|three-halves|auto")]
    garbling: veil_passes::GarblingChoice,
    /// The chosen-input OT batches' extension (`veilc compile --ot-extension`; `auto` chooses
    /// for the LAN profile).
    #[arg(long, default_value = "iknp", value_name = "iknp|silent|auto")]
    ot_extension: veil_passes::OtExtensionChoice,
    /// Every truncation exact (`veilc compile --exact-truncation`); a row's policy then ends in
    /// `+exact`, as it does where the compiler chose exact truncations as the faster plan.
    #[arg(long)]
    exact_truncation: bool,
    /// Stochastic truncation in the garbled ReLUs and MaxPools (`veilc compile
    /// --stochastic-truncation`); a row's policy then ends in `+sr`.
    #[arg(long, conflicts_with = "exact_truncation")]
    stochastic_truncation: bool,
    /// Keep unfused truncations local (`veilc compile --local-truncation`); without it a row
    /// compiles as `veilc compile` does, exact where that is predicted faster.
    #[arg(long, conflicts_with_all = ["exact_truncation", "stochastic_truncation"])]
    local_truncation: bool,
    /// Bits of margin above the calibrated ranges (`veilc compile --range-margin-bits`; plans
    /// here are calibrated on the model's sample input).
    #[arg(long, default_value_t = veil_passes::quantize::CALIBRATED_MARGIN_BITS, value_name = "M")]
    range_margin_bits: u8,
    /// Networks: `loopback` (no shaping) and `wan` (emulated: --bandwidth, --rtt).
    #[arg(long, value_delimiter = ',', default_value = "loopback,wan", value_parser = ["loopback", "wan"], value_name = "loopback,wan")]
    network: Vec<String>,
    /// Emulated WAN bandwidth each way, Mbit/s.
    #[arg(long, default_value_t = 100.0, value_name = "MBIT_S")]
    bandwidth: f64,
    /// Emulated WAN round-trip time, ms.
    #[arg(long, default_value_t = 40.0, value_name = "MS")]
    rtt: f64,
    /// Print the rows as JSON on stdout (an array, one object per model, policy and network,
    /// then one per policy the compiler refused, with `refused`) instead of the table; progress
    /// stays on stderr.
    #[arg(long, conflicts_with = "wide")]
    json: bool,
    /// Print every column of the table with exact values, whatever the terminal's width.
    #[arg(long)]
    wide: bool,
}

/// One measured configuration.
#[derive(Debug, Serialize)]
struct Row {
    model: String,
    policy: String,
    network: String,
    relus: usize,
    offline: veil_ir::stats::Phase,
    online: veil_ir::stats::Phase,
    /// The cost model's prediction for the profile: network plus CPU.
    predicted_online_seconds: f64,
    predicted_offline_seconds: f64,
    wall_seconds: f64,
    /// Bytes of the phase, both directions, per ReLU of the model (`null` without ReLUs): for
    /// ReLU-heavy models, what a non-linear layer costs on the wire (issue 17's metric).
    offline_bytes_per_relu: Option<f64>,
    /// The same for the online phase.
    online_bytes_per_relu: Option<f64>,
    /// AND gates of the plan's garbled circuits (all instances).
    and_gates: u64,
    /// Garbling rate of the run: the AND gates of the garbled steps over those steps' offline
    /// seconds as the client measured them (garbling, streaming the tables, the input-label
    /// OTs); `null` without garbled steps.
    garbled_and_per_second: Option<f64>,
    /// Evaluation rate: the same AND gates over those steps' online seconds (the server's
    /// labels, evaluation, the output bits).
    evaluated_and_per_second: Option<f64>,
    /// Bytes the client holds between the phases, predicted from the offline scripts
    /// (`veil_ir::schedule::script::client_storage`: garbled tables, its input labels, masks).
    client_storage_bytes: u64,
}

/// `(AND gates, garbling rate, evaluation rate)` of a run: the steps with garbled circuits,
/// their gates over their measured offline and online seconds (`stats.layers` has one entry
/// per step of `steps`, in order; `None` rates if it does not, or without garbled steps).
fn gc_rates(
    g: &veil_ir::Graph,
    steps: &[veil_ir::schedule::Step],
    stats: &veil_ir::stats::Stats,
) -> (u64, Option<f64>, Option<f64>) {
    let and_gates: u64 = steps.iter().map(|s| s.and_gates(g)).sum();
    if stats.layers.len() != steps.len() || and_gates == 0 {
        return (and_gates, None, None);
    }
    let (mut off, mut on) = (0.0, 0.0);
    for (s, l) in steps.iter().zip(&stats.layers) {
        if s.and_gates(g) > 0 {
            off += l.offline.seconds;
            on += l.online.seconds;
        }
    }
    let rate = |t: f64| (t > 0.0).then(|| and_gates as f64 / t);
    (and_gates, rate(off), rate(on))
}

/// `bytes / relus`, or `None` for a model without ReLUs.
fn per_relu(p: &veil_ir::stats::Phase, relus: usize) -> Option<f64> {
    (relus > 0).then(|| (p.bytes_client_to_server + p.bytes_server_to_client) as f64 / relus as f64)
}

fn input_for(model: &Path, g: &veil_ir::Graph) -> Result<veil_ir::Tensor, CliError> {
    let stem = model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let path = model.parent().unwrap_or(Path::new(".")).join("inputs").join(format!("{stem}.npy"));
    if path.exists() {
        return veil_ir::npy::read_npy_as(&path, g.raw_input(0)).map_err(CliError::user);
    }
    let [input] = g.inputs[..] else {
        return Err(CliError::user(anyhow!("{}: benchmarks take models with one input", model.display())));
    };
    let shape = g.values[input].ty.shape.clone();
    let n = shape.iter().product::<usize>();
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let data = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    veil_ir::Tensor::new(shape, data).ok_or_else(|| CliError::internal(anyhow!("input shape")))
}

pub fn run(a: BenchArgs) -> Result<(), CliError> {
    veil_binary()?;
    if !(a.bandwidth.is_finite() && a.bandwidth > 0.0 && a.rtt.is_finite() && a.rtt >= 0.0) {
        return Err(CliError::user(anyhow!("--bandwidth must be positive and --rtt non-negative")));
    }
    let wan = Network { bandwidth_mbit_s: a.bandwidth, rtt_ms: a.rtt };
    let mut rows = Vec::new();
    let mut refused = Vec::new();
    for model in &a.models {
        let margs = ModelArgs { model: model.clone(), batch: 1 };
        let float = margs.import()?;
        let x = input_for(model, &float)?;
        let input_dir = TempDir::new("bench-input")?;
        let input = input_dir.join("x.npy");
        std::fs::write(&input, veil_ir::npy::encode_npy(&x, veil_ir::ElemType::F32)).map_err(CliError::internal)?;
        let name = model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        for &policy in &a.policies {
            let opts = veil_passes::Options {
                activation: policy,
                nonlinear: a.nonlinear,
                garbling: a.garbling,
                ot_extension: a.ot_extension,
                exact_truncation: a.exact_truncation,
                stochastic_truncation: a.stochastic_truncation,
                calibration: vec![x.clone()],
                range_margin_bits: a.range_margin_bits,
                ..veil_passes::Options::default()
            };
            let opts = veil_compiler::CompileOptions {
                passes: opts,
                verify: false,
                choose_truncation: !a.local_truncation,
                ..Default::default()
            };
            let (g, files, chose_exact) = match veil_compiler::compile(&float, &opts) {
                Ok(veil_compiler::Compiled { unsupported: Some(u), .. }) => {
                    eprintln!("{name} {policy}: the plan cannot run between two parties: {u}");
                    refused.push(
                        serde_json::json!({"model": name, "policy": policy.to_string(), "refused": u.to_string()}),
                    );
                    continue;
                }
                Ok(veil_compiler::Compiled { graph, files: Some(files), chose_exact_truncation, .. }) => {
                    (graph, files, chose_exact_truncation)
                }
                Ok(_) => return Err(CliError::internal(anyhow!("the whole pipeline ran but no plan was encoded"))),
                Err(e @ veil_compiler::CompileError::Encode(_)) => return Err(e.into()),
                Err(e) => {
                    eprintln!("{name} {policy}: refused by the compiler: {e}");
                    refused.push(
                        serde_json::json!({"model": name, "policy": policy.to_string(), "refused": e.to_string()}),
                    );
                    continue;
                }
            };
            let cost = veil_passes::cost::plan_cost(&g).map_err(|e| CliError::user(anyhow!(e)))?;
            let relus = g
                .live_nodes()
                .filter(|(_, n)| matches!(n.op, veil_ir::Op::Relu | veil_ir::Op::StochasticRelu { .. }))
                .map(|(_, n)| g.values[n.output].ty.len())
                .sum();
            let steps = veil_ir::schedule::lower(&g).map_err(|e| CliError::internal(anyhow!("{e}")))?;
            let client_storage_bytes: u64 =
                steps.iter().map(|s| veil_ir::schedule::script::client_storage(&g, s)).sum();
            let veil_compiler::PlanFiles { plan, weights, .. } = files;
            for net in &a.network {
                let (link, profile) = match net.as_str() {
                    "wan" => (Some((a.bandwidth, a.rtt)), wan),
                    _ => (None, Network::LAN),
                };
                let dir = TempDir::new("bench")?;
                let job = Job {
                    dir: &dir,
                    plan: &plan,
                    weights: &weights,
                    inputs: std::slice::from_ref(&input),
                    link,
                    client_args: vec!["--quiet".into()],
                    show_client: false,
                };
                let out = run_two_processes(&job)?;
                let stats: veil_ir::stats::Stats = serde_json::from_str(&out.stats).map_err(CliError::internal)?;
                let (and_gates, garbled_and_per_second, evaluated_and_per_second) = gc_rates(&g, &steps, &stats);
                let row = Row {
                    model: name.clone(),
                    policy: match a.nonlinear {
                        veil_passes::NonlinearChoice::Gc => policy.to_string(),
                        veil_passes::NonlinearChoice::Ot => format!("{policy}+ot"),
                        veil_passes::NonlinearChoice::Auto => format!("{policy}+auto"),
                    } + if g.garbling == veil_ir::Garbling::ThreeHalves { "+3h" } else { "" }
                        + if g.ot_extension == veil_ir::OtExtension::Silent { "+silent" } else { "" }
                        + if a.exact_truncation || chose_exact { "+exact" } else { "" }
                        + if a.stochastic_truncation { "+sr" } else { "" },
                    network: if link.is_some() { format!("wan {}/{}", a.bandwidth, a.rtt) } else { "loopback".into() },
                    relus,
                    offline: stats.offline,
                    online: stats.online,
                    predicted_online_seconds: cost.seconds(&profile).1,
                    predicted_offline_seconds: cost.seconds(&profile).0,
                    wall_seconds: out.wall.as_secs_f64(),
                    offline_bytes_per_relu: per_relu(&stats.offline, relus),
                    online_bytes_per_relu: per_relu(&stats.online, relus),
                    and_gates,
                    garbled_and_per_second,
                    evaluated_and_per_second,
                    client_storage_bytes,
                };
                eprintln!(
                    "measured {} {} on {}: online {}, offline {}",
                    row.model,
                    row.policy,
                    row.network,
                    veil_ir::report::units::seconds(row.online.seconds),
                    veil_ir::report::units::seconds(row.offline.seconds)
                );
                rows.push(row);
            }
        }
    }
    if a.json {
        let mut v = serde_json::to_value(&rows).map_err(CliError::internal)?;
        if let Some(list) = v.as_array_mut() {
            list.extend(refused);
        }
        let text = serde_json::to_string_pretty(&v).map_err(CliError::internal)? + "\n";
        return super::emit(None, text.as_bytes());
    }
    print!("{}", table(&rows, veil_ir::report::Fit::terminal(a.wide)));
    for r in &refused {
        println!("{} {}: refused by the compiler: {}", r["model"], r["policy"], r["refused"]);
    }
    println!(
        "\nloopback: no shaping; wan: `veil relay` ({} Mbit/s each way, {} ms RTT, drop-tail queue of two \
         bandwidth-delay products). pred: the cost model's online time for the profile (lan for loopback): \
         exact bytes and rounds at the profile's bandwidth and RTT, plus its CPU estimate.",
        a.bandwidth, a.rtt
    );
    Ok(())
}

/// The measured rows as a table.
fn table(rows: &[Row], fit: veil_ir::report::Fit) -> String {
    use veil_ir::report::{Cell, Column, Table};
    let mut t = Table::new(vec![
        Column::name("model"),
        Column::text("policy", 90),
        Column::text("network", 85),
        Column::number("ReLUs", 30),
        Column::number("offline", 70).unit("s"),
        Column::number("off ↑", 35).unit("B"),
        Column::number("off ↓", 45).unit("B"),
        Column::number("online", 80).unit("s"),
        Column::number("pred on", 60).unit("s"),
        Column::number("on ↑", 40).unit("B"),
        Column::number("on ↓", 50).unit("B"),
        Column::number("rounds", 55),
        Column::number("wall", 20).unit("s"),
        Column::number("off B/ReLU", 25),
        Column::number("on B/ReLU", 26),
        Column::number("gb AND/s", 24),
        Column::number("ev AND/s", 23),
        Column::number("client store", 27).unit("B"),
    ]);
    for r in rows {
        t.row(vec![
            Cell::text(&r.model),
            Cell::text(&r.policy),
            Cell::text(r.network.split(' ').next().unwrap_or("")),
            Cell::count(r.relus as u64),
            Cell::seconds(r.offline.seconds),
            Cell::bytes(r.offline.bytes_client_to_server),
            Cell::bytes(r.offline.bytes_server_to_client),
            Cell::seconds(r.online.seconds),
            Cell::seconds(r.predicted_online_seconds),
            Cell::bytes(r.online.bytes_client_to_server),
            Cell::bytes(r.online.bytes_server_to_client),
            Cell::count(r.online.rounds),
            Cell::seconds(r.wall_seconds),
            r.offline_bytes_per_relu.map_or_else(Cell::empty, |b| Cell::count(b.round() as u64)),
            r.online_bytes_per_relu.map_or_else(Cell::empty, |b| Cell::count(b.round() as u64)),
            r.garbled_and_per_second.map_or_else(Cell::empty, |x| Cell::count(x.round() as u64)),
            r.evaluated_and_per_second.map_or_else(Cell::empty, |x| Cell::count(x.round() as u64)),
            Cell::bytes(r.client_storage_bytes),
        ]);
    }
    t.render(fit)
}

#[cfg(test)]
mod tests {
    use super::per_relu;
    use veil_ir::stats::Phase;

    #[test]
    fn bytes_per_relu_counts_both_directions() {
        let p = Phase { seconds: 1.0, bytes_client_to_server: 300, bytes_server_to_client: 900, rounds: 2 };
        assert_eq!(per_relu(&p, 4), Some(300.0));
        assert_eq!(per_relu(&p, 0), None);
    }
}
