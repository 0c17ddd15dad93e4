//! `veilc run`: compile to a temporary folder, start `veil server` and `veil client` as two
//! processes on a free localhost port, print the prediction beside the float model's, and the
//! costs. Processes and files are cleaned up on every exit path (guards).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};

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

/// Removes the folder when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills the process when dropped (if it still runs).
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn veil_binary() -> Result<PathBuf, CliError> {
    let me = std::env::current_exe().map_err(CliError::internal)?;
    let path = me.with_file_name(format!("veil{}", std::env::consts::EXE_SUFFIX));
    if path.exists() {
        Ok(path)
    } else {
        Err(CliError::internal(anyhow!(
            "the runtime binary {} is missing; build both binaries with `cargo build --release --bins`",
            path.display()
        )))
    }
}

fn check(status: std::process::ExitStatus, what: &str) -> Result<(), CliError> {
    match status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(CliError::user(anyhow!("{what} rejected its input (see its message above)"))),
        _ => Err(CliError::internal(anyhow!("{what} failed ({status})"))),
    }
}

pub fn run(a: RunArgs) -> Result<(), CliError> {
    let veil = veil_binary()?;
    let x = veil_ir::npy::read_npy(&a.input)
        .with_context(|| format!("input {}", a.input.display()))
        .map_err(CliError::user)?;
    let mut compile = a.compile;
    if compile.input_bound.is_none() && compile.calibrate.is_none() {
        let b = x.data.iter().fold(1f32, |m, v| m.max(v.abs()));
        eprintln!(
            "compiling for |input| ≤ {b} (this input's largest magnitude; --input-bound or --calibrate for others)"
        );
        compile.input_bound = Some(b);
    }
    let (float, g, _) = compile.compile(&a.model)?;
    veil_ir::eval::encode_inputs(&g, std::slice::from_ref(&x))
        .with_context(|| format!("input {}", a.input.display()))
        .map_err(CliError::user)?;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let dir = TempDir(std::env::temp_dir().join(format!("veil-run-{}-{nanos}", std::process::id())));
    std::fs::create_dir_all(&dir.0).map_err(CliError::internal)?;
    let (plan, weights, _) = veil_ir::plan::encode(&g).map_err(CliError::internal)?;
    let p = |name: &str| dir.0.join(name);
    for (name, bytes) in [("model.plan", &plan), ("model.weights", &weights)] {
        std::fs::write(p(name), bytes).map_err(CliError::internal)?;
    }
    let quiet = |mut c: Command| -> Result<(), CliError> {
        let out = c.output().map_err(CliError::internal)?;
        if !out.status.success() {
            return Err(CliError::internal(anyhow!("{}", String::from_utf8_lossy(&out.stderr).trim())));
        }
        Ok(())
    };
    let mut keygen = Command::new(&veil);
    keygen.args(["keygen", "--out"]).arg(&dir.0);
    quiet(keygen)?;

    let t0 = Instant::now();
    let mut server = Command::new(&veil);
    server
        .arg("server")
        .arg("--plan")
        .arg(p("model.plan"))
        .arg("--weights")
        .arg(p("model.weights"))
        .args(["--listen", "127.0.0.1:0", "--sessions", "1"])
        .arg("--cert")
        .arg(p("server.crt"))
        .arg("--key")
        .arg(p("server.key"))
        .arg("--stats")
        .arg(p("server-stats.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut server = Reaper(server.spawn().map_err(CliError::internal)?);
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().expect("piped")).read_line(&mut line).map_err(CliError::internal)?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| CliError::internal(anyhow!("the server did not start (see its message above)")))?;
    let status = Command::new(&veil)
        .arg("client")
        .arg("--plan")
        .arg(p("model.plan"))
        .args(["--connect", addr])
        .arg("--server-cert")
        .arg(p("server.crt"))
        .arg("--input")
        .arg(&a.input)
        .arg("--output")
        .arg(p("y.npy"))
        .arg("--stats")
        .arg(p("stats.json"))
        .args(["--top", &a.top.to_string()])
        .status()
        .map_err(CliError::internal)?;
    check(status, "veil client")?;
    let wall = t0.elapsed();
    // The server exits after its one session; give it a moment, then the guard kills it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(s) = server.0.try_wait().map_err(CliError::internal)? {
            check(s, "veil server")?;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let reference = veil_ir::eval::run_float(&float, std::slice::from_ref(&x)).map_err(CliError::user)?;
    let secure = veil_ir::npy::read_npy(&p("y.npy")).map_err(CliError::internal)?;
    print_comparison(&secure, &reference[0]);
    let stats = std::fs::read_to_string(p("stats.json")).map_err(CliError::internal)?;
    if let Some(out) = &a.stats {
        veil_ir::npy::write_atomic(out, stats.as_bytes()).map_err(CliError::internal)?;
    }
    let stats: serde_json::Value = serde_json::from_str(&stats).map_err(CliError::internal)?;
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

fn print_costs(stats: &serde_json::Value) {
    let f = |v: &serde_json::Value, phase: &str, k: &str| v[phase][k].as_f64().unwrap_or(0.0);
    println!(
        "\n{:<28} {:<10} {:<11} {:>12} {:>12} {:>7} {:>12} {:>12} {:>7} {:>9}",
        "layer", "op", "protocol", "off c→s B", "off s→c B", "rounds", "on c→s B", "on s→c B", "rounds", "online ms"
    );
    let row = |name: &str, op: &str, proto: &str, v: &serde_json::Value| {
        println!(
            "{:<28} {:<10} {:<11} {:>12} {:>12} {:>7} {:>12} {:>12} {:>7} {:>9.2}",
            name.chars().take(28).collect::<String>(),
            op,
            proto,
            f(v, "offline", "bytes_client_to_server"),
            f(v, "offline", "bytes_server_to_client"),
            f(v, "offline", "rounds"),
            f(v, "online", "bytes_client_to_server"),
            f(v, "online", "bytes_server_to_client"),
            f(v, "online", "rounds"),
            f(v, "online", "seconds") * 1e3
        );
    };
    for l in stats["layers"].as_array().into_iter().flatten() {
        let total: f64 = ["offline", "online"]
            .iter()
            .map(|p| f(l, p, "bytes_client_to_server") + f(l, p, "bytes_server_to_client"))
            .sum();
        if total > 0.0 {
            row(
                l["name"].as_str().unwrap_or(""),
                l["op"].as_str().unwrap_or(""),
                l["protocol"].as_str().unwrap_or(""),
                l,
            );
        }
    }
    row("total", "", "", stats);
    println!(
        "offline {:.3} s, online {:.3} s (client's clock)",
        f(stats, "offline", "seconds"),
        f(stats, "online", "seconds")
    );
}
