//! `veil`: the two-party runtime. `veil server` holds a plan and its weights and serves clients;
//! `veil client` holds a plan and an input and learns the prediction; `veil keygen` makes the
//! server's TLS certificate, which clients pin with `--server-cert`.
//!
//! Exit codes: 0 success, 1 a named file or input rejected (missing, unreadable, malformed, wrong
//! shape, plan mismatch), 2 an internal error, a failed write, the network or the peer.

// A binary: results go to stdout and status to stderr by design (the library never prints).
#![allow(clippy::print_stdout, clippy::print_stderr)]

// The `test-hooks` feature (fault injection, transcript capture, HE noise measurement) is for
// tests only. Cargo unifies features across a build, so a release build that includes the test
// crates would otherwise link the hooks into this binary.
#[cfg(all(feature = "test-hooks", not(debug_assertions)))]
compile_error!(
    "the `test-hooks` feature must never reach a release `veil` binary: build it with \
     `cargo build --release --bins` (only the tests' dev-dependencies enable the feature), and run \
     release tests per package (`cargo test --release -p veil-tests --test NAME`)"
);

// The same for the insecure ideal OT (`ot::ideal`, a test-only stand-in without cryptography):
// the binary never constructs it, and a release binary may not even contain it.
#[cfg(all(feature = "insecure-ideal-ot", not(debug_assertions)))]
compile_error!(
    "the `insecure-ideal-ot` feature (an OT without security, for tests) must never reach a release \
     `veil` binary: build it with `cargo build --release --bins`, without that feature"
);

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::{Parser, Subcommand};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use veil_ir::plan::{Hash, Plan, attach_weights, decode_plan};
use veil_runtime::exec::{self, ExecError, Stats};
use veil_runtime::net::admission::{self, Admission};
use veil_runtime::net::link::LinkSpec;
use veil_runtime::net::quic::{Identity, Listener, connect};
use veil_runtime::proto::he_weights::EncodedWeights;

#[derive(Parser)]
#[command(name = "veil", version, about = "Veil runtime: run a compiled plan between a server and a client")]
#[command(long_about = "Veil runtime: run a compiled plan between a server (weights) and a client (input).\n\n\
Exit codes: 0 success, 1 a named file or input rejected (missing, unreadable, malformed, wrong \
shape, plan mismatch), 2 an internal error, a failed write, the network or the peer.")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a fresh self-signed server certificate and key (`DIR/server.crt`, `DIR/server.key`).
    Keygen {
        /// Folder for the pair (created, mode 0700, if missing). The key is written mode 0600,
        /// the certificate 0644, whatever the umask.
        #[arg(short, long, value_name = "DIR")]
        out: PathBuf,
        /// Replace a key pair that already exists in DIR.
        #[arg(long)]
        force: bool,
    },
    /// Serve a plan to clients, one session each (several at once, bounded).
    #[command(long_about = "Serve a plan to clients, one session each (several at once, bounded).\n\n\
Clients connect over QUIC with TLS 1.3 and pin this server's certificate (`--cert`). A new \
connection must send its hello within --hello-timeout seconds; one address may hold at most \
--max-sessions-per-address sessions (running or waiting for one of the --max-clients slots) and \
its further connections are refused with a message; a session's connection is closed as soon as \
the session ends, well or not.")]
    Server(ServerArgs),
    /// Run a plan against a server on an input and print the prediction.
    Client(ClientArgs),
    /// Relay a client's connection to a server over an emulated link (bandwidth, delay), for
    /// benchmarks where `tc netem` is unavailable. Prints `relaying on ADDR` first.
    Relay(RelayArgs),
}

#[derive(clap::Args)]
struct RelayArgs {
    /// Address clients connect to, `HOST:PORT` (a name or an IP; port 0: any free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: String,
    /// The server's address, `HOST:PORT`.
    #[arg(long, value_name = "ADDR")]
    forward: String,
    /// Bandwidth each way, Mbit/s.
    #[arg(long, default_value_t = 100.0, value_name = "MBIT")]
    bandwidth: f64,
    /// Round-trip time added, milliseconds.
    #[arg(long, default_value_t = 40.0, value_name = "MS")]
    rtt: f64,
}

#[derive(clap::Args)]
struct ServerArgs {
    /// The compiled plan (`veilc compile ... -o NAME` writes NAME.plan), the same file the
    /// clients use.
    #[arg(long, value_name = "PLAN")]
    plan: PathBuf,
    /// The weights file written beside the plan (NAME.weights, server only).
    #[arg(long, value_name = "WEIGHTS")]
    weights: PathBuf,
    /// Address to listen on, `HOST:PORT` (a name such as `localhost` or an IP; port 0: any
    /// free port, printed on the first line of stdout).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4433")]
    listen: String,
    /// The certificate from `veil keygen` (PEM; clients pin it).
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// The certificate's private key from `veil keygen` (PEM).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Sessions run at once; further clients wait.
    #[arg(long, default_value_t = 4, value_name = "N", help_heading = "Limits")]
    max_clients: usize,
    /// Sessions one client address (an IPv4 address or an IPv6 /64) may hold at once, running
    /// or waiting for a slot; its further connections are refused with a message.
    #[arg(long, default_value_t = 2, value_name = "N", help_heading = "Limits")]
    max_sessions_per_address: usize,
    /// Seconds a new connection has to send its hello; one that sends none is closed.
    #[arg(long, default_value_t = 10, value_name = "S", help_heading = "Limits")]
    hello_timeout: u64,
    /// Exit after this many sessions (default: serve forever).
    #[arg(long, value_name = "N")]
    sessions: Option<usize>,
    /// Write the last session's stats as JSON (`-`: standard output).
    #[arg(long, value_name = "FILE")]
    stats: Option<PathBuf>,
    /// Report as JSON lines on stdout instead of text: first `{"listening": ADDR}`, then one
    /// object per finished session (`session`, `peer`, `ok`, `seconds`, and the --stats schema
    /// `offline`, `online`, `layers`, or `error`). Other messages stay on stderr.
    #[arg(long)]
    json: bool,
    /// Receive timeout in seconds (after the hello).
    #[arg(long, default_value_t = 120, value_name = "S", help_heading = "Limits")]
    timeout: u64,
    /// Seconds to wait for a client's input after the offline phase (clients that preprocess).
    #[arg(long, default_value_t = 600, value_name = "S", help_heading = "Limits")]
    input_wait: u64,
    /// Megabytes of memory for the HE layers' weights encoded once at start (polynomials in NTT
    /// form, shared by every session; the plan's first layers that fit). Layers past it are
    /// encoded in each session, as with 0.
    #[arg(long, default_value_t = 2048, value_name = "MB", help_heading = "Limits")]
    he_cache: u64,
}

#[derive(clap::Args)]
struct ClientArgs {
    /// The compiled plan, the same file the server runs (its hash is checked in the handshake).
    #[arg(long, value_name = "PLAN")]
    plan: PathBuf,
    /// The server's address, `HOST:PORT` (a name such as `localhost` or an IP).
    #[arg(long, value_name = "ADDR")]
    connect: String,
    /// The server's certificate (pinned: no other is accepted).
    #[arg(long, value_name = "FILE")]
    server_cert: PathBuf,
    /// The input tensor (`.npy`); `-` reads it from standard input. For a model with several
    /// inputs, once per input in the model's order (files only).
    #[arg(long, value_name = "x.npy", required = true)]
    input: Vec<PathBuf>,
    /// Run the offline phase first and read the input only after it (from a file that may not
    /// exist yet, or from standard input with `--input -`); the phases are reported apart.
    #[arg(long)]
    preprocess: bool,
    /// Keep the offline phase's garbled tables and input labels in files in DIR (created if
    /// missing; files mode 0600, removed after the online phase or on any error) instead of in
    /// memory, and read them back layer by layer online: bounded client memory.
    #[arg(long, value_name = "DIR")]
    preprocess_dir: Option<PathBuf>,
    /// No progress bar and no cost line: only the prediction (and errors).
    #[arg(long, short)]
    quiet: bool,
    /// Write the output tensor (`.npy`).
    #[arg(long, value_name = "y.npy")]
    output: Option<PathBuf>,
    /// Write the session's stats as JSON (`-`: standard output).
    #[arg(long, value_name = "FILE")]
    stats: Option<PathBuf>,
    /// Print the report as JSON on stdout instead of the text: the prediction (`prediction`:
    /// shape, values, top class of each row) and the session's stats (`offline`, `online`,
    /// `layers`: the --stats schema). Progress and errors stay on stderr.
    #[arg(long)]
    json: bool,
    /// Classes to print.
    #[arg(long, default_value_t = 3, value_name = "K")]
    top: usize,
    /// Receive timeout in seconds.
    #[arg(long, default_value_t = 120, value_name = "S")]
    timeout: u64,
    /// With --preprocess: seconds to wait, after the offline phase, for an input file that does
    /// not exist yet (the server waits as long by default, its own --input-wait).
    #[arg(long, default_value_t = 600, value_name = "S")]
    input_wait: u64,
}

/// A failure with its exit code.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

fn user(e: impl Into<anyhow::Error>) -> Failure {
    Failure { code: 1, error: e.into() }
}

fn internal(e: impl Into<anyhow::Error>) -> Failure {
    Failure { code: 2, error: e.into() }
}

fn exec_failure(e: ExecError) -> Failure {
    match e {
        ExecError::Input(_) | ExecError::Unsupported(_) | ExecError::Handshake(_) => user(e),
        _ => internal(e),
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).with_context(|| format!("cannot read the {what} {}", path.display())).map_err(user)
}

/// Resolves `HOST:PORT`, a name or an IP. A name with several addresses gives its first IPv4
/// one (else its first): the same rule for `--listen` and `--connect`, so `localhost` on both
/// sides meets even where it also names `::1`.
fn resolve(addr: &str, flag: &str) -> Result<SocketAddr, Failure> {
    use std::net::ToSocketAddrs;
    let all: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .with_context(|| format!("{flag} {addr}: not an address or a known host name with a port (HOST:PORT)"))
        .map_err(user)?
        .collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| user(anyhow!("{flag} {addr}: the name resolves to no address")))
}

fn load_plan(path: &Path) -> Result<(Plan, Hash), Failure> {
    decode_plan(&read(path, "plan")?).with_context(|| format!("plan {}", path.display())).map_err(user)
}

fn write_json(path: &Path, stats: &Stats) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(stats).map_err(internal)? + "\n";
    veil_ir::npy::write_atomic(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
        .map_err(internal)
}

fn tokio_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    // cryprot-ot needs at least two worker threads.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().map_err(internal)
}

fn keygen(out: &Path, force: bool) -> Result<(), Failure> {
    let id = Identity::generate().map_err(internal)?;
    let mut dir = std::fs::DirBuilder::new();
    dir.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
    dir.create(out).with_context(|| format!("cannot create {}", out.display())).map_err(internal)?;
    let (crt, key) = (out.join("server.crt"), out.join("server.key"));
    let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    if !force && (exists(&crt) || exists(&key)) {
        return Err(user(anyhow!(
            "{} already holds a key pair (server.crt, server.key); pass --force to replace it",
            out.display()
        )));
    }
    // The key first, never clobbering without --force (the check above can race; this cannot).
    veil_ir::files::write_secret(&key, id.key_pem.as_bytes(), force).map_err(|e| {
        let f = if e.kind() == std::io::ErrorKind::AlreadyExists { user } else { internal };
        f(anyhow::Error::new(e).context(format!("cannot write {}", key.display())))
    })?;
    let cert = veil_ir::files::write_with_mode(&crt, id.cert_pem.as_bytes(), veil_ir::files::PUBLIC_MODE, force);
    if let Err(e) = cert {
        // Never leave a key without its certificate.
        let _ = std::fs::remove_file(&key);
        return Err(internal(anyhow::Error::new(e).context(format!("cannot write {}", crt.display()))));
    }
    println!("wrote {} (give it to clients) and {} (keep it on the server)", crt.display(), key.display());
    Ok(())
}

fn server(a: ServerArgs) -> Result<(), Failure> {
    let (mut plan, hash) = load_plan(&a.plan)?;
    attach_weights(&mut plan, &hash, &read(&a.weights, "weights")?)
        .with_context(|| format!("weights {}", a.weights.display()))
        .map_err(user)?;
    let steps = veil_ir::schedule::lower(&plan.graph).map_err(|e| user(anyhow!(e)))?;
    let t0 = Instant::now();
    let (encoded, cov) = EncodedWeights::encode(&plan.graph, &steps, a.he_cache.saturating_mul(1 << 20))
        .with_context(|| format!("weights {}", a.weights.display()))
        .map_err(user)?;
    if cov.all_layers > 0 {
        use veil_ir::report::units::{bytes, seconds};
        eprintln!(
            "encoded the weights of {} of {} HE layers once, for every session: {} of {} (--he-cache), {}",
            cov.layers,
            cov.all_layers,
            bytes(cov.bytes),
            bytes(cov.all_bytes),
            seconds(t0.elapsed().as_secs_f64())
        );
    }
    let read_text = |p: &Path, what: &str| -> Result<String, Failure> {
        String::from_utf8(read(p, what)?).map_err(|_| user(anyhow!("the {what} {} is not PEM text", p.display())))
    };
    let id = Identity { cert_pem: read_text(&a.cert, "certificate")?, key_pem: read_text(&a.key, "key")? };
    let listen = resolve(&a.listen, "--listen")?;
    let graph = Arc::new(plan.graph);
    let rt = tokio_runtime()?;
    rt.block_on(async move {
        let timeout = Duration::from_secs(a.timeout);
        let input_wait = Duration::from_secs(a.input_wait);
        let hello_timeout = Duration::from_secs(a.hello_timeout);
        let mut listener = Listener::bind(listen, &id, timeout).map_err(internal)?;
        let local = listener.local_addr().map_err(internal)?;
        if a.json {
            println!("{}", serde_json::json!({ "listening": local.to_string() }));
        } else {
            println!("listening on {local}");
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let slots = Arc::new(tokio::sync::Semaphore::new(a.max_clients.max(1)));
        let admission = Admission::new(a.max_sessions_per_address);
        let mut tasks = tokio::task::JoinSet::new();
        let mut served = 0usize;
        // Connections are accepted at once and counted against their address; an admitted one
        // then waits for a session slot. A session's connection closes when its task ends.
        while a.sessions.is_none_or(|n| served < n) {
            let Some(conn) = listener.accept().await else { break };
            let mut session = match conn {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("connection failed: {e}");
                    continue;
                }
            };
            let ticket = match admission.admit(session.peer) {
                Ok(t) => t,
                Err(reason) => {
                    eprintln!("refused a connection from {}: {reason}", session.peer);
                    tokio::spawn(admission::refuse(session, reason));
                    continue;
                }
            };
            served += 1;
            session.set_input_wait(input_wait);
            session.set_hello_timeout(hello_timeout);
            let (graph, stats_path, slots, json) = (graph.clone(), a.stats.clone(), slots.clone(), a.json);
            let encoded = encoded.clone();
            tasks.spawn(async move {
                let _ticket = ticket;
                let Ok(_permit) = slots.acquire_owned().await else { return };
                let t0 = Instant::now();
                let mut rng = ChaCha20Rng::from_os_rng();
                let result = exec::server::run_with(&mut session, &graph, &hash, &encoded, &mut rng).await;
                let secs = t0.elapsed().as_secs_f64();
                if json {
                    print_session_json(served, &session.peer.to_string(), secs, &result);
                }
                match result {
                    Ok(stats) => {
                        use veil_ir::report::units::{bytes, seconds};
                        eprintln!(
                            "session {served} from {}: ok in {}, {} received, {} sent",
                            session.peer,
                            seconds(secs),
                            bytes(
                                stats
                                    .offline
                                    .bytes_client_to_server
                                    .saturating_add(stats.online.bytes_client_to_server)
                            ),
                            bytes(
                                stats
                                    .offline
                                    .bytes_server_to_client
                                    .saturating_add(stats.online.bytes_server_to_client)
                            )
                        );
                        if let Some(p) = stats_path
                            && let Err(f) = write_json(&p, &stats)
                        {
                            eprintln!("session {served}: {:#}", f.error);
                        }
                    }
                    Err(e) => eprintln!("session {served} from {}: failed after {secs:.2} s: {e}", session.peer),
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        Ok(())
    })
}

/// One line of `veil server --json`: a finished session.
fn print_session_json(n: usize, peer: &str, secs: f64, result: &Result<Stats, ExecError>) {
    use std::io::Write;
    let mut v = serde_json::json!({ "session": n, "peer": peer, "ok": result.is_ok(), "seconds": secs });
    match result.as_ref().map(serde_json::to_value) {
        Ok(Ok(serde_json::Value::Object(stats))) => {
            if let Some(o) = v.as_object_mut() {
                o.extend(stats);
            }
        }
        Ok(_) => v["error"] = "the stats did not serialize".into(),
        Err(e) => v["error"] = e.to_string().into(),
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}").and_then(|_| out.flush());
}

/// Reads and checks the client's inputs, one file per graph input (`-`: standard input, for
/// a one-input model).
fn read_inputs(paths: &[PathBuf], g: &veil_ir::Graph) -> Result<Vec<veil_ir::Tensor>, Failure> {
    if paths.len() != g.inputs.len() {
        let names: Vec<&str> = g.inputs.iter().map(|&v| g.values[v].name.as_str()).collect();
        return Err(user(anyhow!(
            "the plan has {} input(s) ({}); give --input once for each, in that order ({} given)",
            names.len(),
            names.join(", "),
            paths.len()
        )));
    }
    if paths.len() > 1 && paths.iter().any(|p| p.as_os_str() == "-") {
        return Err(user(anyhow!("--input - (standard input) is for plans with one input")));
    }
    let mut xs = Vec::with_capacity(paths.len());
    for (i, path) in paths.iter().enumerate() {
        xs.push(if path.as_os_str() == "-" {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
                .context("cannot read the input from standard input")
                .map_err(user)?;
            veil_ir::npy::decode_npy_as(&bytes, "standard input", g.raw_input(i))
                .context("input from standard input")
                .map_err(user)?
        } else {
            veil_ir::npy::read_npy_as(path, g.raw_input(i))
                .with_context(|| format!("input {}", path.display()))
                .map_err(user)?
        });
    }
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    veil_ir::eval::encode_inputs(g, &xs).with_context(|| format!("input {}", names.join(", "))).map_err(user)?;
    Ok(xs)
}

fn client(a: ClientArgs) -> Result<(), Failure> {
    let (plan, hash) = load_plan(&a.plan)?;
    let cert = String::from_utf8(read(&a.server_cert, "server certificate")?)
        .map_err(|_| user(anyhow!("the server certificate {} is not PEM text", a.server_cert.display())))?;
    veil_ir::schedule::lower(&plan.graph).map_err(|e| user(anyhow!(e)))?;
    let addr = resolve(&a.connect, "--connect")?;
    // Without --preprocess, check the input before connecting: a wrong shape is the user's
    // error, not the network's.
    let early = if a.preprocess { None } else { Some(read_inputs(&a.input, &plan.graph)?) };
    let store = match &a.preprocess_dir {
        Some(dir) => Some(
            veil_runtime::store::Store::create(dir, &hash, &mut ChaCha20Rng::from_os_rng())
                .context("--preprocess-dir")
                .map_err(user)?,
        ),
        None => None,
    };
    let bar = veil_runtime::progress::Bar::new(!a.quiet);
    let rt = tokio_runtime()?;
    let result = rt.block_on(async {
        let mut session = connect(addr, &cert, Duration::from_secs(a.timeout)).await.map_err(internal)?;
        // However the session ends (done, failed, or the user stops the client with Ctrl-C or
        // SIGTERM), the connection is closed before the process exits, so the server frees the
        // session at once instead of waiting for QUIC's idle timeout.
        let run = run_client(&mut session, &plan.graph, &hash, (early, store), &a, &bar);
        let result = tokio::select! {
            r = run => r,
            signal = interrupted() => Err(Failure {
                code: 128 + signal.0,
                error: anyhow!("stopped by {}; the connection to the server is closed", signal.1),
            }),
        };
        session.shutdown().await;
        result
    })?;
    report_client(&result, &a)
}

/// The signal that stops a client: (number, name).
async fn interrupted() -> (u8, &'static str) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => (15, "SIGTERM"),
            _ = int.recv() => (2, "SIGINT (Ctrl-C)"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        (2, "Ctrl-C")
    }
}

/// The client's two phases over `session` (the input read between them with `--preprocess`).
async fn run_client(
    session: &mut veil_runtime::net::quic::Session,
    graph: &veil_ir::Graph,
    hash: &Hash,
    (early, store): (Option<Vec<veil_ir::Tensor>>, Option<veil_runtime::store::Store>),
    a: &ClientArgs,
    bar: &veil_runtime::progress::Bar,
) -> Result<exec::client::ClientResult, Failure> {
    let mut rng = ChaCha20Rng::from_os_rng();
    let pre =
        exec::client::offline_with_store(session, graph, hash, &mut rng, bar, store).await.map_err(exec_failure)?;
    let x = match early {
        Some(x) => x,
        None => {
            if !a.quiet {
                let (secs, up) = pre.offline_cost();
                eprintln!("offline phase done in {secs:.3} s ({up} B sent); reading the input");
            }
            let paths = a.input.clone();
            for path in &paths {
                wait_for_input(path, Duration::from_secs(a.input_wait), a.quiet).await?;
            }
            // On a thread of its own: reading standard input blocks until the writer is done, and
            // the client must still answer Ctrl-C and SIGTERM meanwhile (`interrupted`). A thread
            // left blocked there does not keep the process from exiting.
            let (tx, rx) = tokio::sync::oneshot::channel();
            let g = graph.clone();
            std::thread::spawn(move || {
                let _ = tx.send(read_inputs(&paths, &g));
            });
            rx.await.map_err(|_| internal(anyhow!("the input reader stopped")))??
        }
    };
    pre.online(&x, bar).await.map_err(exec_failure)
}

/// With `--preprocess`, the input file may appear only after the offline phase: waits until it
/// exists and its size has stopped changing (two polls 100 ms apart), at most `wait`. Writers
/// should still create it atomically (write, then rename). Standard input needs no wait.
async fn wait_for_input(path: &Path, wait: Duration, quiet: bool) -> Result<(), Failure> {
    if path.as_os_str() == "-" || path.exists() {
        return Ok(());
    }
    if !quiet {
        eprintln!("waiting for {} (at most {} s)", path.display(), wait.as_secs());
    }
    let deadline = tokio::time::Instant::now() + wait;
    let mut last = None;
    loop {
        let size = std::fs::metadata(path).ok().map(|m| m.len());
        if size.is_some() && size == last {
            return Ok(());
        }
        last = size;
        if tokio::time::Instant::now() >= deadline {
            return Err(user(anyhow!(
                "the input {} did not appear within {} s of the offline phase (--input-wait)",
                path.display(),
                wait.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes the client's output and stats files and prints the prediction.
fn report_client(result: &exec::client::ClientResult, a: &ClientArgs) -> Result<(), Failure> {
    let out = &result.outputs[0];
    if let Some(p) = &a.output {
        let elem = veil_ir::ElemType::F32;
        veil_ir::npy::write_atomic(p, &veil_ir::npy::encode_npy(out, elem))
            .with_context(|| format!("cannot write {}", p.display()))
            .map_err(internal)?;
    }
    if let Some(p) = &a.stats {
        write_json(p, &result.stats)?;
    }
    if a.json {
        let mut v = serde_json::to_value(&result.stats).map_err(internal)?;
        // Classes only for class scores (`null` for a dense map, a scalar or a shape).
        let top: Option<Vec<usize>> =
            out.class_scores().map(|classes| out.data.chunks(classes).map(|r| ranked(r)[0]).collect());
        v["prediction"] = serde_json::json!({ "shape": out.shape, "values": out.data, "classes": top });
        println!("{}", serde_json::to_string_pretty(&v).map_err(internal)?);
        return Ok(());
    }
    print_prediction(out, a.top);
    if a.quiet {
        return Ok(());
    }
    use veil_ir::report::units::{bytes, seconds};
    for (name, p) in [("offline", &result.stats.offline), ("online", &result.stats.online)] {
        println!(
            "{name:<7} {:>8}: {} up, {} down, {} rounds",
            seconds(p.seconds),
            bytes(p.bytes_client_to_server),
            bytes(p.bytes_server_to_client),
            p.rounds
        );
    }
    Ok(())
}

fn relay(a: RelayArgs) -> Result<(), Failure> {
    if !(a.bandwidth.is_finite() && a.bandwidth > 0.0 && a.rtt.is_finite() && a.rtt >= 0.0) {
        return Err(user(anyhow!("--bandwidth must be positive and --rtt non-negative")));
    }
    let spec = LinkSpec::new(a.bandwidth, Duration::from_secs_f64(a.rtt / 1e3));
    let (listen, forward) = (resolve(&a.listen, "--listen")?, resolve(&a.forward, "--forward")?);
    tokio_runtime()?.block_on(async {
        let relay = veil_runtime::net::link::start(listen, forward, spec)
            .await
            .with_context(|| format!("cannot listen on {listen}"))
            .map_err(internal)?;
        println!("relaying on {} to {} ({} Mbit/s, {} ms RTT)", relay.local, a.forward, a.bandwidth, a.rtt);
        use std::io::Write;
        let _ = std::io::stdout().flush();
        relay.wait().await.context("relay").map_err(internal)
    })
}

/// The classes of one row of scores, best first.
fn ranked(scores: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    idx
}

/// Prints the top classes of the last axis (per batch row), with scores, for class scores;
/// a one-line summary for any other output (a dense map, a scalar, a shape).
fn print_prediction(out: &veil_ir::Tensor, top: usize) {
    let Some(classes) = out.class_scores() else {
        println!("output {}", out.summary());
        return;
    };
    for (row, scores) in out.data.chunks(classes.max(1)).enumerate() {
        let idx = ranked(scores);
        let best: Vec<String> = idx.iter().take(top).map(|&i| format!("{i} ({:.4})", scores[i])).collect();
        println!(
            "prediction{}: class {}   top {}: {}",
            if out.data.len() > classes { format!(" {row}") } else { String::new() },
            idx[0],
            top.min(scores.len()),
            best.join(", ")
        );
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Sized for the server's concurrent sessions (each can hold OT jobs blocked on its peer).
    veil_runtime::init_threads(match &args.command {
        Command::Server(a) => a.max_clients,
        _ => 1,
    });
    let result = match args.command {
        Command::Keygen { out, force } => keygen(&out, force),
        Command::Server(a) => server(a),
        Command::Client(a) => client(a),
        Command::Relay(a) => relay(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.error);
            for cause in f.error.chain().skip(1) {
                eprintln!("caused by: {cause}");
            }
            ExitCode::from(f.code)
        }
    }
}
