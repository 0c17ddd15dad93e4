//! `veilc load`: one `veil server` process and N concurrent clients running a model over and
//! over for a while. Every result is checked against the simulator (bit for bit for plans with
//! exact activations, top-1 otherwise); the server's resident memory and open descriptors are
//! sampled every second (Linux `/proc`). Prints throughput, latency, failures, and whether
//! memory and descriptors stayed flat.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::anyhow;

use super::procs::{Reaper, TempDir, spawn_announcing, veil_binary};
use super::{CliError, CompileArgs, ModelArgs};

#[derive(clap::Args)]
pub struct LoadArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    compile: CompileArgs,
    /// The input every client sends (`.npy`).
    #[arg(long, value_name = "x.npy")]
    input: PathBuf,
    /// Concurrent clients (and the server's --max-clients and --max-sessions-per-address).
    #[arg(long, default_value_t = 8, value_name = "N")]
    clients: usize,
    /// How long to keep the clients going, in seconds.
    #[arg(long, default_value_t = 180, value_name = "S")]
    duration: u64,
    /// Print the report as JSON on stdout instead of the text (the checks still set the exit
    /// code).
    #[arg(long)]
    json: bool,
}

/// What one client process did.
struct Run {
    seconds: f64,
    /// `Ok(true)`: the output matched; `Ok(false)`: it did not; `Err`: the client failed.
    result: Result<bool, String>,
}

/// One sample of the server process.
#[derive(Clone, Copy, serde::Serialize)]
struct Sample {
    t: f64,
    rss_kib: u64,
    fds: usize,
}

fn sample(pid: u32, t0: Instant) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some(Sample { t: t0.elapsed().as_secs_f64(), rss_kib, fds })
}

pub fn run(a: LoadArgs) -> Result<(), CliError> {
    let veil = veil_binary()?;
    if a.clients == 0 || a.duration == 0 {
        return Err(CliError::user(anyhow!("--clients and --duration must be positive")));
    }
    let x = a.model.read_input(&a.input)?;
    let LoadArgs { model, compile, input: _, clients, duration, json } = a;
    let a = Settings { model, clients, duration, json };
    let mut compile = compile;
    if compile.input_bound.is_none() && compile.calibrate.is_none() {
        compile.input_bound = Some(x.data.iter().fold(1f32, |m, v| m.max(v.abs())));
    }
    let super::Compiled { fixed: g, files, .. } = compile.compile(&a.model)?;
    let files = super::runnable(files)?;
    let exact = !g.live_nodes().any(|(_, n)| {
        matches!(
            n.op,
            veil_ir::Op::StochasticRelu { .. }
                | veil_ir::Op::Truncate { mode: veil_ir::TruncMode::Local | veil_ir::TruncMode::Stochastic, .. }
        )
    });
    let want = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).map_err(CliError::user)?.outputs.remove(0);
    let dir = TempDir::new("load")?;
    std::fs::write(dir.join("model.plan"), &files.plan).map_err(CliError::internal)?;
    veil_ir::files::write_secret(&dir.join("model.weights"), &files.weights, false).map_err(CliError::internal)?;
    let input = dir.join("x.npy");
    std::fs::write(&input, veil_ir::npy::encode_npy(&x, veil_ir::ElemType::F32)).map_err(CliError::internal)?;
    let out = Command::new(&veil).args(["keygen", "--out"]).arg(&dir.0).output().map_err(CliError::internal)?;
    if !out.status.success() {
        return Err(CliError::internal(anyhow!("{}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    let mut server = Command::new(&veil);
    server
        .arg("server")
        .arg("--plan")
        .arg(dir.join("model.plan"))
        .arg("--weights")
        .arg(dir.join("model.weights"))
        .args(["--listen", "127.0.0.1:0", "--max-clients", &a.clients.to_string()])
        // Every client comes from 127.0.0.1.
        .args(["--max-sessions-per-address", &a.clients.to_string()])
        .arg("--cert")
        .arg(dir.join("server.crt"))
        .arg("--key")
        .arg(dir.join("server.key"))
        .stderr(Stdio::null());
    let (server, addr): (Reaper, String) = spawn_announcing(server, "listening on ", "veil server")?;
    let pid = server.0.id();
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(a.duration);
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let monitor = {
        let (stop, samples) = (stop.clone(), samples.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(s) = sample(pid, t0) {
                    samples.lock().expect("samples").push(s);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    let bar = indicatif::ProgressBar::new(a.duration);
    let runs: Vec<Run> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..a.clients)
            .map(|i| {
                let (veil, dir, addr, input, want) = (&veil, &dir, &addr, &input, &want);
                scope.spawn(move || {
                    let mut runs = Vec::new();
                    let y = dir.join(&format!("y{i}.npy"));
                    while Instant::now() < deadline {
                        let start = Instant::now();
                        let out = Command::new(veil)
                            .arg("client")
                            .arg("--plan")
                            .arg(dir.join("model.plan"))
                            .args(["--connect", addr])
                            .arg("--server-cert")
                            .arg(dir.join("server.crt"))
                            .arg("--input")
                            .arg(input)
                            .arg("--output")
                            .arg(&y)
                            .arg("--quiet")
                            .output();
                        let result = match out {
                            Err(e) => Err(e.to_string()),
                            Ok(o) if !o.status.success() => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
                            Ok(_) => match veil_ir::npy::read_npy(&y) {
                                Err(e) => Err(e.to_string()),
                                Ok(got) if exact => Ok(got.data == want.data),
                                Ok(got) => Ok(top1(&got) == top1(want)),
                            },
                        };
                        runs.push(Run { seconds: start.elapsed().as_secs_f64(), result });
                    }
                    runs
                })
            })
            .collect();
        while Instant::now() < deadline {
            bar.set_position(t0.elapsed().as_secs().min(a.duration));
            std::thread::sleep(Duration::from_millis(200));
        }
        workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect()
    });
    bar.finish_and_clear();
    let wall = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = monitor.join();
    let alive = sample(pid, t0).is_some();
    drop(server);
    let samples = samples.lock().expect("samples").clone();
    report(&a, &runs, &samples, wall, exact, alive)
}

fn top1(t: &veil_ir::Tensor) -> usize {
    (0..t.data.len()).max_by(|&i, &j| t.data[i].total_cmp(&t.data[j])).unwrap_or(0)
}

/// The arguments `report` needs.
struct Settings {
    model: ModelArgs,
    clients: usize,
    duration: u64,
    json: bool,
}

fn report(a: &Settings, runs: &[Run], samples: &[Sample], wall: f64, exact: bool, alive: bool) -> Result<(), CliError> {
    let ok = runs.iter().filter(|r| matches!(r.result, Ok(true))).count();
    let wrong = runs.iter().filter(|r| matches!(r.result, Ok(false))).count();
    let failed: Vec<&String> = runs.iter().filter_map(|r| r.result.as_ref().err()).collect();
    let mut lat: Vec<f64> = runs.iter().filter(|r| r.result.is_ok()).map(|r| r.seconds).collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| if lat.is_empty() { 0.0 } else { lat[((lat.len() - 1) as f64 * p).round() as usize] };
    // Flatness: the peak of the last third against the peak of the middle third.
    let third = |k: usize| -> Vec<&Sample> {
        samples.iter().filter(|s| s.t >= wall * k as f64 / 3.0 && s.t < wall * (k + 1) as f64 / 3.0).collect()
    };
    let peak = |v: &[&Sample]| v.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let fds = |v: &[&Sample]| v.iter().map(|s| s.fds).max().unwrap_or(0);
    let (mid, last) = (third(1), third(2));
    let peak_rss = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let model = a.model.model.display().to_string();
    if !a.json {
        println!("load: {model}, {} concurrent clients for {wall:.0} s against one `veil server`", a.clients);
        println!(
            "  inferences        {} ({ok} correct{}, {wrong} wrong, {} failed)",
            runs.len(),
            if exact { ", bit for bit" } else { " top-1" },
            failed.len()
        );
        println!("  throughput        {:.1} inferences/minute", ok as f64 * 60.0 / wall);
        println!("  latency (client)  median {:.2} s, p90 {:.2} s, max {:.2} s", pct(0.5), pct(0.9), pct(1.0));
        if samples.is_empty() {
            println!("  server memory     not measured (no /proc)");
        } else {
            println!(
                "  server RSS        peak {:.0} MB; middle third {:.0} MB, last third {:.0} MB",
                peak_rss as f64 / 1024.0,
                peak(&mid) as f64 / 1024.0,
                peak(&last) as f64 / 1024.0
            );
            println!(
                "  server fds        first {}, middle third max {}, last third max {}, last {}",
                samples.first().map_or(0, |s| s.fds),
                fds(&mid),
                fds(&last),
                samples.last().map_or(0, |s| s.fds)
            );
        }
        println!("  server            {}", if alive { "still serving at the end" } else { "EXITED during the run" });
        for f in failed.iter().take(3) {
            println!("  failure: {f}");
        }
    }
    if a.json {
        let v = serde_json::json!({
            "model": model, "clients": a.clients, "seconds": wall, "inferences": runs.len(),
            "correct": ok, "wrong": wrong, "failed": failed.len(), "exact": exact,
            "inferences_per_minute": ok as f64 * 60.0 / wall,
            "latency_median_seconds": pct(0.5), "latency_p90_seconds": pct(0.9),
            "server_peak_rss_kib": peak_rss, "server_alive": alive, "samples": samples,
        });
        let text = serde_json::to_string_pretty(&v).map_err(CliError::internal)? + "\n";
        super::emit(None, text.as_bytes())?;
    }
    if wrong > 0 || !failed.is_empty() || !alive || ok == 0 {
        return Err(CliError::internal(anyhow!("the load run had wrong or failed inferences, or lost the server")));
    }
    Ok(())
}
