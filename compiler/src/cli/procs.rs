//! Running a compiled plan between a `veil server` and a `veil client` process on localhost,
//! optionally through a `veil relay` emulating a slower link (`veilc run`, `veilc bench`).
//! Processes and files are cleaned up on every exit path (guards).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::anyhow;

use super::CliError;

/// A fresh private temporary folder (mode 0700, a new random name: never a folder another
/// user prepared), removed when dropped. It holds the weights and the server's key.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Result<TempDir, CliError> {
        let prefix = format!("veil-{tag}-");
        let mut b = tempfile::Builder::new();
        b.prefix(&prefix);
        #[cfg(unix)]
        b.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
        let dir = b
            .tempdir()
            .map_err(|e| CliError::internal(anyhow::Error::new(e).context("cannot create a temporary folder")))?;
        Ok(TempDir(dir.keep()))
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills the process when dropped (if it still runs).
pub struct Reaper(pub Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `veil` binary beside this one.
pub fn veil_binary() -> Result<PathBuf, CliError> {
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

/// Starts `cmd` with stdout piped and returns it with its first line's text after `prefix`.
pub fn spawn_announcing(mut cmd: Command, prefix: &str, what: &str) -> Result<(Reaper, String), CliError> {
    let mut child = Reaper(cmd.stdout(Stdio::piped()).spawn().map_err(CliError::internal)?);
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().expect("piped")).read_line(&mut line).map_err(CliError::internal)?;
    let rest = line
        .trim()
        .strip_prefix(prefix)
        .ok_or_else(|| CliError::internal(anyhow!("{what} did not start (see its message above)")))?;
    let addr = rest.split_whitespace().next().unwrap_or_default().to_string();
    Ok((child, addr))
}

/// What to run and how.
pub struct Job<'a> {
    pub dir: &'a TempDir,
    pub plan: &'a [u8],
    pub weights: &'a [u8],
    /// The model's inputs, in the graph's order.
    pub inputs: &'a [std::path::PathBuf],
    /// Emulated link `(Mbit/s, RTT ms)` through `veil relay`; `None`: loopback.
    pub link: Option<(f64, f64)>,
    /// Extra arguments for `veil client`.
    pub client_args: Vec<String>,
    /// Show the client's output (prediction, progress) on this terminal.
    pub show_client: bool,
}

/// The client's output tensor, its stats JSON text, and the wall time of the two processes.
pub struct Outcome {
    pub output: veil_ir::Tensor,
    pub stats: String,
    pub wall: Duration,
}

/// Writes the plan and weights, makes a certificate, runs server (and relay) and client.
pub fn run_two_processes(job: &Job) -> Result<Outcome, CliError> {
    let veil = veil_binary()?;
    let p = |name: &str| job.dir.join(name);
    std::fs::write(p("model.plan"), job.plan).map_err(CliError::internal)?;
    veil_ir::files::write_secret(&p("model.weights"), job.weights, false).map_err(CliError::internal)?;
    let out = Command::new(&veil).args(["keygen", "--out"]).arg(&job.dir.0).output().map_err(CliError::internal)?;
    if !out.status.success() {
        return Err(CliError::internal(anyhow!("{}", String::from_utf8_lossy(&out.stderr).trim())));
    }
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
        .stderr(if job.show_client {
            Stdio::inherit()
        } else {
            // Kept quiet unless it fails: then its message is shown (below).
            std::fs::File::create(p("server.log")).map_err(CliError::internal)?.into()
        });
    let server_log = || {
        if !job.show_client {
            eprint!("{}", std::fs::read_to_string(p("server.log")).unwrap_or_default());
        }
    };
    let (mut server, server_addr) = spawn_announcing(server, "listening on ", "veil server").inspect_err(|_| {
        // The process may still be writing its message.
        std::thread::sleep(Duration::from_millis(200));
        server_log();
    })?;
    let (_relay, addr) = match job.link {
        None => (None, server_addr),
        Some((mbit, rtt)) => {
            let mut relay = Command::new(&veil);
            relay.args([
                "relay",
                "--forward",
                &server_addr,
                "--bandwidth",
                &mbit.to_string(),
                "--rtt",
                &rtt.to_string(),
            ]);
            let (r, a) = spawn_announcing(relay, "relaying on ", "veil relay")?;
            (Some(r), a)
        }
    };
    let mut client = Command::new(&veil);
    client
        .arg("client")
        .arg("--plan")
        .arg(p("model.plan"))
        .args(["--connect", &addr])
        .arg("--server-cert")
        .arg(p("server.crt"))
        .args(job.inputs.iter().flat_map(|i| [std::ffi::OsStr::new("--input"), i.as_os_str()]))
        .arg("--output")
        .arg(p("y.npy"))
        .arg("--stats")
        .arg(p("stats.json"))
        .args(&job.client_args);
    let status = if job.show_client {
        client.status().map_err(CliError::internal)?
    } else {
        let out = client.output().map_err(CliError::internal)?;
        if !out.status.success() {
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
        }
        out.status
    };
    check(status, "veil client")?;
    let wall = t0.elapsed();
    // The server exits after its one session; give it a moment, then the guard kills it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(s) = server.0.try_wait().map_err(CliError::internal)? {
            check(s, "veil server").inspect_err(|_| server_log())?;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = veil_ir::npy::read_npy(&p("y.npy")).map_err(CliError::internal)?;
    let stats = std::fs::read_to_string(p("stats.json")).map_err(CliError::internal)?;
    Ok(Outcome { output, stats, wall })
}
