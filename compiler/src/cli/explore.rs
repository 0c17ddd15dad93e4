//! `veilc explore`: the accuracy/cost trade-off of a model's activations. Sweeps activation
//! policies and ReLU budgets ([`veil_compiler::explore::configs`]), predicts each one's costs
//! with the cost model and measures its accuracy with the simulator, writes `pareto.csv`,
//! `pareto.svg` and `pareto.png`, prints the Pareto front, and with `--verify K` runs K front
//! points between real `veil server` and `veil client` processes to set the predictions beside
//! measurements.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use veil_compiler::explore::{self, Config, Dataset, Point};
use veil_passes::cost::Network;

use super::procs::{Job, TempDir, run_two_processes, veil_binary};
use super::{CliError, ModelArgs, NetworkArgs, explore_error, npz_inputs, npz_labels};

#[derive(clap::Args)]
pub struct ExploreArgs {
    /// The ONNX model.
    #[arg(value_name = "MODEL.onnx")]
    model: PathBuf,
    /// The data set (.npz): inputs in array --x, integer labels in --y (without labels, the
    /// score is top-1 agreement with the float model).
    #[arg(long, value_name = "data.npz")]
    data: PathBuf,
    #[arg(long, default_value = "x", value_name = "KEY")]
    x: String,
    #[arg(long, default_value = "y", value_name = "KEY")]
    y: String,
    /// Measure accuracy on the first N samples only.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Calibrate value ranges on the first N samples.
    #[arg(long, default_value_t = 100, value_name = "N")]
    calibration_samples: usize,
    #[command(flatten)]
    net: NetworkArgs,
    /// The latency the front is drawn against: online, or offline + online.
    #[arg(long, default_value = "online", value_parser = ["online", "total"])]
    latency: String,
    /// Circa error bits E to sweep (each layer drops s − E bits; sign errors below 2^−E).
    #[arg(long, value_delimiter = ',', default_value = "8,5,3,1", value_name = "E,...")]
    circa_error_bits: Vec<u8>,
    /// Coefficients a,b,c of the replacement polynomial a·x² + b·x + c.
    #[arg(long, default_value = "1,1,0", value_name = "a,b,c", value_parser = super::parse_poly)]
    poly: [f32; 3],
    /// Fractional bits of activations and weights.
    #[arg(long, default_value_t = 12, value_name = "F")]
    frac_bits: u8,
    /// Models with at most this many ReLU layers get every subset of layers replaced by the
    /// polynomial; larger ones get the budgets keeping the k most important layers.
    #[arg(long, default_value_t = 4, value_name = "N")]
    max_subset_layers: usize,
    /// Output folder for pareto.csv, pareto.svg, pareto.png (and verify.csv).
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
    /// Run K points of the front between real `veil server` and `veil client` processes (on
    /// loopback for the lan profile, otherwise through `veil relay` shaped to the profile).
    #[arg(long, default_value_t = 0, value_name = "K")]
    verify: usize,
    /// Samples per verification run (one batch).
    #[arg(long, default_value_t = 100, value_name = "M")]
    verify_samples: usize,
    /// Print the report as JSON on stdout instead of the text: `importance`, `points` (every
    /// configuration, `front` marking the Pareto front), `refused`, `verification`, `files`.
    #[arg(long, conflicts_with = "wide")]
    json: bool,
    /// Print every column of the tables with exact values, whatever the terminal's width.
    #[arg(long)]
    wide: bool,
}

pub fn run(a: ExploreArgs) -> Result<(), CliError> {
    if a.verify > 0 {
        veil_binary()?;
    }
    let network = a.net.network()?;
    if a.verify_samples == 0 || a.calibration_samples == 0 {
        return Err(CliError::user(anyhow!("--verify-samples and --calibration-samples must be positive")));
    }
    let model = ModelArgs { model: a.model.clone(), batch: 1 };
    let float = model.import()?;
    let mut xs = npz_inputs(&a.data, &a.x, &float)?;
    if let Some(n) = a.limit {
        xs.truncate(n);
    }
    if xs.is_empty() {
        return Err(CliError::user(anyhow!("{}: no samples", a.data.display())));
    }
    let labels = npz_labels(&a.data, &a.y, xs.len())?;
    let labelled = labels.is_some();
    let data = Dataset { xs, labels };
    let base = veil_passes::Options {
        poly: a.poly,
        frac_bits: a.frac_bits,
        calibration: data.xs.iter().take(a.calibration_samples).cloned().collect(),
        network,
        ..veil_passes::Options::default()
    };
    let layers = explore::relu_layers(&float);
    if layers.is_empty() {
        return Err(CliError::user(anyhow!("{}: the model has no ReLU layers to explore", a.model.display())));
    }
    let bar = progress(layers.len() as u64 + 1, "importance");
    let (_, importance) = explore::importance(&float, &base, &data, 0).map_err(explore_error)?;
    bar.finish_and_clear();
    let by_importance: Vec<String> = explore::by_importance(&importance).iter().map(|l| l.name.clone()).collect();
    let configs = explore::configs(&by_importance, &a.circa_error_bits, a.max_subset_layers);
    let bar = progress(configs.len() as u64, "configurations");
    let mut points = Vec::new();
    let mut refused = Vec::new();
    for c in &configs {
        bar.set_message(c.label.clone());
        match explore::measure(&float, &c.options(&base), &data, 0) {
            Ok((g, r)) => points.push(explore::point(&c.label, &g, &r, network).map_err(explore_error)?),
            Err(e) if e.is_user_error() => refused.push(format!("{}: {e}", c.label)),
            Err(e) => return Err(explore_error(e)),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if points.is_empty() {
        return Err(CliError::user(anyhow!("no configuration compiled:\n  {}", refused.join("\n  "))));
    }
    let total = a.latency == "total";
    let latency = move |p: &Point| if total { p.predicted_total_seconds } else { p.predicted_online_seconds };
    explore::mark_front(&mut points, latency);

    std::fs::create_dir_all(&a.output).map_err(|e| {
        CliError::internal(anyhow::Error::new(e).context(format!("cannot create {}", a.output.display())))
    })?;
    let name = a.model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let score_name = if labelled { "accuracy" } else { "top-1 agreement" };
    let profile = describe(&network);
    let x_label = format!("predicted {} latency, {profile}", if total { "total (offline + online)" } else { "online" });
    let title = format!("{name}: {score_name} against predicted latency ({} samples)", data.xs.len());
    write_outputs(&a.output, &points, &title, &x_label, score_name, &latency)?;

    let fit = veil_ir::report::Fit::terminal(a.wide);
    let files = ["pareto.csv", "pareto.svg", "pareto.png"].map(|f| a.output.join(f).display().to_string());
    if !a.json {
        println!("layer importance ({score_name} lost when the layer alone becomes the polynomial):");
        print!("{}", importance_table(&importance, fit));
        println!("\nPareto front ({score_name} against predicted {} latency, {profile}):", a.latency);
        print!("{}", points_table(points.iter().filter(|p| p.front), score_name, fit));
        println!(
            "\n{} configurations ({} on the front)\nwrote {}",
            points.len(),
            points.iter().filter(|p| p.front).count(),
            files.join(", ")
        );
        for r in &refused {
            println!("refused by the compiler: {r}");
        }
    }
    let verification = if a.verify > 0 {
        let chosen = spread(&points, a.verify, &latency);
        verify(&a, &float, &data, &base, &configs, &chosen, network)?
    } else {
        Vec::new()
    };
    if a.json {
        let mut files = files.to_vec();
        if a.verify > 0 {
            files.push(a.output.join("verify.csv").display().to_string());
        }
        let v = serde_json::json!({
            "model": name, "score": score_name, "latency": a.latency, "network": network,
            "importance": importance, "points": points, "refused": refused,
            "verification": verification, "files": files,
        });
        let text = serde_json::to_string_pretty(&v).map_err(CliError::internal)? + "\n";
        super::emit(None, text.as_bytes())?;
    }
    Ok(())
}

fn importance_table(importance: &[explore::LayerImportance], fit: veil_ir::report::Fit) -> String {
    use veil_ir::report::{Cell, Column, Table};
    let mut t = Table::new(vec![Column::name("layer"), Column::number("ReLUs", 80), Column::number("drop", 90)]);
    for l in importance {
        t.row(vec![Cell::text(&l.name), Cell::count(l.relus as u64), Cell::text(format!("{:+.2}%", 100.0 * l.drop))]);
    }
    t.render(fit)
}

fn describe(n: &Network) -> String {
    if *n == Network::LAN {
        "LAN (1 Gbit/s, 0.2 ms RTT)".into()
    } else if *n == Network::WAN {
        "WAN (100 Mbit/s, 40 ms RTT)".into()
    } else {
        format!("{} Mbit/s, {} ms RTT", n.bandwidth_mbit_s, n.rtt_ms)
    }
}

fn progress(n: u64, what: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(n);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} {msg}") {
        bar.set_style(style);
    }
    bar.set_prefix(what);
    bar
}

/// Writes pareto.csv, pareto.svg and pareto.png; on failure none of them is left behind.
fn write_outputs(
    dir: &Path,
    points: &[Point],
    title: &str,
    x_label: &str,
    score_name: &str,
    latency: &dyn Fn(&Point) -> f64,
) -> Result<(), CliError> {
    let (csv, svg, png) = (dir.join("pareto.csv"), dir.join("pareto.svg"), dir.join("pareto.png"));
    let (svg_tmp, png_tmp) = (dir.join(".pareto.tmp.svg"), dir.join(".pareto.tmp.png"));
    let y_label = format!("{score_name} (%), simulated");
    let spec = veil_compiler::plot::PlotSpec { title, x_label, y_label: &y_label, latency };
    let result = veil_compiler::plot::write(points, &spec, &svg_tmp, &png_tmp)
        .map_err(|e| CliError::internal(anyhow!("cannot draw the plot: {e}")))
        .and_then(|_| veil_ir::npy::write_atomic(&csv, csv_text(points).as_bytes()).map_err(CliError::internal))
        .and_then(|_| std::fs::rename(&svg_tmp, &svg).map_err(CliError::internal))
        .and_then(|_| std::fs::rename(&png_tmp, &png).map_err(CliError::internal));
    if result.is_err() {
        for p in [&svg_tmp, &png_tmp, &csv, &svg, &png] {
            let _ = std::fs::remove_file(p);
        }
    }
    result
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

fn csv_text(points: &[Point]) -> String {
    let mut t = String::from(
        "id,label,front,relus,exact_relus,circa_relus,poly_activations,and_gates,ring_bits,offline_bytes,online_bytes,\
         online_rounds,predicted_offline_seconds,predicted_online_seconds,predicted_total_seconds,score,\
         top1_agreement,circa_fault_rate\n",
    );
    for (i, p) in points.iter().enumerate() {
        t += &format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{:.6},{:.6},{:.6},{:.4},{:.4},{:.6}\n",
            i + 1,
            csv_field(&p.label),
            p.front,
            p.relus,
            p.exact_relus,
            p.circa_relus,
            p.poly_activations,
            p.and_gates,
            p.ring_bits,
            p.offline_bytes,
            p.online_bytes,
            p.online_rounds,
            p.predicted_offline_seconds,
            p.predicted_online_seconds,
            p.predicted_total_seconds,
            p.score,
            p.top1_agreement,
            p.circa_fault_rate
        );
    }
    t
}

fn points_table<'a>(points: impl Iterator<Item = &'a Point>, score_name: &str, fit: veil_ir::report::Fit) -> String {
    use veil_ir::report::{Cell, Column, Table};
    let mut t = Table::new(vec![
        Column::name("configuration"),
        Column::number("ReLUs", 55),
        Column::number("ring", 20),
        Column::number("online", 60).unit("B"),
        Column::number("offline", 45).unit("B"),
        Column::number("pred online", 80).unit("s"),
        Column::number("pred total", 65).unit("s"),
        Column::number(score_name, 90),
        Column::number("faults", 30),
    ]);
    let mut sorted: Vec<&Point> = points.collect();
    sorted.sort_by(|a, b| a.predicted_online_seconds.total_cmp(&b.predicted_online_seconds));
    for p in sorted {
        t.row(vec![
            Cell::text(&p.label),
            Cell::count(p.relus as u64),
            Cell::text(format!("{} bits", p.ring_bits)),
            Cell::bytes(p.online_bytes),
            Cell::bytes(p.offline_bytes),
            Cell::seconds(p.predicted_online_seconds),
            Cell::seconds(p.predicted_total_seconds),
            Cell::text(format!("{:.2}%", 100.0 * p.score)),
            Cell::text(format!("{:.2}%", 100.0 * p.circa_fault_rate)),
        ]);
    }
    t.render(fit)
}

/// One verified front point (`veilc explore --verify`).
#[derive(serde::Serialize)]
struct Verified {
    label: String,
    samples: usize,
    predicted_bytes: u64,
    measured_bytes: u64,
    predicted_offline_seconds: f64,
    measured_offline_seconds: f64,
    predicted_online_seconds: f64,
    measured_online_seconds: f64,
    simulated_score: f64,
    real_score: f64,
    outputs_identical: bool,
}

/// Up to `k` labels of front points spread along the latency axis: the fastest, the most
/// accurate, and evenly between.
fn spread(points: &[Point], k: usize, latency: &dyn Fn(&Point) -> f64) -> Vec<String> {
    let mut front: Vec<&Point> = points.iter().filter(|p| p.front).collect();
    front.sort_by(|a, b| latency(a).total_cmp(&latency(b)));
    let n = front.len();
    let mut idx: Vec<usize> = if k >= n {
        (0..n).collect()
    } else if k == 1 {
        vec![n - 1]
    } else {
        (0..k).map(|i| i * (n - 1) / (k - 1)).collect()
    };
    idx.dedup();
    idx.into_iter().map(|i| front[i].label.clone()).collect()
}

/// Runs each chosen configuration on `--verify-samples` samples (one batch) between two
/// processes and prints predicted against measured bytes and seconds, simulated against real
/// accuracy; writes verify.csv.
fn verify(
    a: &ExploreArgs,
    float1: &veil_ir::Graph,
    data: &Dataset,
    base: &veil_passes::Options,
    configs: &[Config],
    chosen: &[String],
    network: Network,
) -> Result<Vec<Verified>, CliError> {
    let m = a.verify_samples.min(data.xs.len());
    let float = ModelArgs { model: a.model.clone(), batch: m }.import()?;
    let [input] = float.inputs[..] else {
        return Err(CliError::user(anyhow!("verification runs models with one input")));
    };
    let shape = float.values[input].ty.shape.clone();
    let per: usize = float1.values[float1.inputs[0]].ty.len();
    // One batch of the first m samples, and the calibration samples in batches of m (padded by
    // repetition: ranges are maxima, so repeating samples changes none).
    let batch = |xs: &[veil_ir::Tensor]| {
        let mut d: Vec<f32> = xs.iter().flat_map(|t| t.data.iter().copied()).collect();
        while !d.len().is_multiple_of(per * m) {
            d.push(d[d.len() - per * xs.len()]);
        }
        let rows: Vec<usize> = std::iter::once(d.len() / per).chain(shape[1..].iter().copied()).collect();
        veil_passes::range::samples(&veil_ir::Tensor { shape: rows, data: d }, &shape)
    };
    let x = veil_ir::Tensor { shape: shape.clone(), data: data.xs[..m].iter().flat_map(|t| t.data.clone()).collect() };
    let calibration = batch(&base.calibration).map_err(|e| CliError::internal(anyhow!(e)))?;
    let dir = TempDir::new("explore-verify")?;
    let input_path = dir.join("x.npy");
    std::fs::write(&input_path, veil_ir::npy::encode_npy(&x, veil_ir::ElemType::F32)).map_err(CliError::internal)?;
    let link = (network != Network::LAN).then_some((network.bandwidth_mbit_s, network.rtt_ms));
    let mut verified = Vec::new();
    let mut csv = String::from(
        "label,samples,predicted_bytes,measured_bytes,predicted_offline_seconds,measured_offline_seconds,\
         predicted_online_seconds,measured_online_seconds,simulated_score,real_score,outputs_identical\n",
    );
    for label in chosen {
        let Some(c) = configs.iter().find(|c| &c.label == label) else { continue };
        let mut opts = c.options(base);
        opts.calibration = calibration.clone();
        let veil_compiler::Compiled { graph: g, files, unsupported, .. } =
            veil_compiler::compile(&float, &opts.into())?;
        let veil_compiler::PlanFiles { plan, weights, .. } = super::runnable(unsupported.map_or(Ok(files), Err))?;
        let cost = veil_passes::cost::plan_cost(&g).map_err(|e| CliError::user(anyhow!(e)))?;
        let (pred_off, pred_on) = cost.seconds(&network);
        let sim = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).map_err(CliError::user)?;
        let run_dir = TempDir::new("explore-run")?;
        let job = Job {
            dir: &run_dir,
            plan: &plan,
            weights: &weights,
            inputs: std::slice::from_ref(&input_path),
            link,
            client_args: vec!["--quiet".into()],
            show_client: false,
        };
        let out = run_two_processes(&job)?;
        let stats: veil_ir::stats::Stats = serde_json::from_str(&out.stats).map_err(CliError::internal)?;
        let measured_bytes = stats.offline.bytes().saturating_add(stats.online.bytes());
        let predicted_bytes = [cost.offline, cost.online]
            .iter()
            .map(|t| t.bytes_client_to_server + t.bytes_server_to_client)
            .sum::<u64>();
        let (sim_score, real_score) =
            (batch_score(&sim.outputs[0], data, m, float1)?, batch_score(&out.output, data, m, float1)?);
        let identical = sim.outputs[0].data == out.output.data;
        let (meas_off, meas_on) = (stats.offline.seconds, stats.online.seconds);
        csv += &format!(
            "{},{m},{predicted_bytes},{measured_bytes},{pred_off:.6},{meas_off:.6},{pred_on:.6},{meas_on:.6},{sim_score:.4},{real_score:.4},{identical}\n",
            csv_field(label)
        );
        verified.push(Verified {
            label: label.clone(),
            samples: m,
            predicted_bytes,
            measured_bytes,
            predicted_offline_seconds: pred_off,
            measured_offline_seconds: meas_off,
            predicted_online_seconds: pred_on,
            measured_online_seconds: meas_on,
            simulated_score: sim_score,
            real_score,
            outputs_identical: identical,
        });
    }
    let path = a.output.join("verify.csv");
    veil_ir::npy::write_atomic(&path, csv.as_bytes()).map_err(CliError::internal)?;
    if a.json {
        return Ok(verified);
    }
    println!(
        "\nverification: {} front point(s), one batch of {m} samples each, between `veil server` and `veil client` on {}",
        chosen.len(),
        if link.is_some() { format!("`veil relay` ({})", describe(&network)) } else { "loopback".into() }
    );
    print!("{}", verified_table(&verified, veil_ir::report::Fit::terminal(a.wide)));
    println!(
        "  bytes: the cost model's exact prediction against the client's meter; ratio: measured over predicted \
         seconds, offline + online; sim/real: the simulator's and the two parties' {} on the same batch.",
        if data.labels.is_some() { "accuracy" } else { "top-1 agreement" }
    );
    println!("wrote {}", path.display());
    Ok(verified)
}

fn verified_table(rows: &[Verified], fit: veil_ir::report::Fit) -> String {
    use veil_ir::report::{Cell, Column, Table};
    let mut t = Table::new(vec![
        Column::name("configuration"),
        Column::number("pred bytes", 70).unit("B"),
        Column::number("meas bytes", 75).unit("B"),
        Column::number("pred off", 40).unit("s"),
        Column::number("meas off", 45).unit("s"),
        Column::number("pred on", 55).unit("s"),
        Column::number("meas on", 60).unit("s"),
        Column::number("ratio", 50),
        Column::number("sim", 80),
        Column::number("real", 85),
        Column::text("outputs", 65),
    ]);
    for r in rows {
        let ratio = (r.measured_offline_seconds + r.measured_online_seconds)
            / (r.predicted_offline_seconds + r.predicted_online_seconds);
        t.row(vec![
            Cell::text(&r.label),
            Cell::bytes(r.predicted_bytes),
            Cell::bytes(r.measured_bytes),
            Cell::seconds(r.predicted_offline_seconds),
            Cell::seconds(r.measured_offline_seconds),
            Cell::seconds(r.predicted_online_seconds),
            Cell::seconds(r.measured_online_seconds),
            Cell::text(format!("{ratio:.2}×")),
            Cell::text(format!("{:.2}%", 100.0 * r.simulated_score)),
            Cell::text(format!("{:.2}%", 100.0 * r.real_score)),
            Cell::text(if r.outputs_identical { "identical" } else { "differ" }),
        ]);
    }
    t.render(fit)
}

/// Accuracy (or top-1 agreement with the float model) of a batch of `m` outputs.
fn batch_score(out: &veil_ir::Tensor, data: &Dataset, m: usize, float: &veil_ir::Graph) -> Result<f64, CliError> {
    let classes = out.data.len() / m.max(1);
    let argmax = |row: &[f32]| (0..row.len()).max_by(|&i, &j| row[i].total_cmp(&row[j])).unwrap_or(0);
    let mut ok = 0usize;
    for (i, row) in out.data.chunks_exact(classes.max(1)).take(m).enumerate() {
        let want = match &data.labels {
            Some(l) => l[i] as usize,
            None => {
                let f = veil_ir::eval::run_float(float, std::slice::from_ref(&data.xs[i])).map_err(CliError::user)?;
                argmax(&f[0].data)
            }
        };
        ok += usize::from(argmax(row) == want);
    }
    Ok(ok as f64 / m.max(1) as f64)
}
