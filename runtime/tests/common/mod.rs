//! Shared by the process tests: compile bundled models into plan files, start `veil server`,
//! run `veil client`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use veil_compiler::onnx::ImportOptions;
use veil_compiler::{CompileOptions, Compiled};
use veil_passes::{Options, Stage};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

pub fn veil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_veil"))
}

/// A fresh folder with a server certificate, removed when dropped.
pub struct Workdir(pub PathBuf);

impl Workdir {
    pub fn new(tag: &str) -> Workdir {
        let dir = std::env::temp_dir().join(format!("veil-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(veil().arg("keygen").arg("--out").arg(&dir).output().unwrap().status.success());
        Workdir(dir)
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Bundled model `name` (dynamic batch set to `batch`) compiled with `opts` up to `until`
/// (`None`: the whole pipeline, verified and encoded).
pub fn compiled(name: &str, batch: usize, opts: &Options, until: Option<Stage>) -> Compiled {
    let opts = CompileOptions { import: ImportOptions { batch }, passes: opts.clone(), until, ..Default::default() };
    veil_compiler::compile(&root().join("models").join(format!("{name}.onnx")), &opts)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Compiles bundled model `name` into `dir/<plan>.plan` and `.weights`; returns the plan graph.
pub fn compile_as(name: &str, plan: &str, batch: usize, dir: &Path, opts: &Options) -> veil_ir::Graph {
    let c = compiled(name, batch, opts, None);
    let files = c.files.expect("the whole pipeline encodes");
    std::fs::write(dir.join(format!("{plan}.plan")), files.plan).unwrap();
    std::fs::write(dir.join(format!("{plan}.weights")), files.weights).unwrap();
    c.graph
}

pub fn compile(name: &str, dir: &Path, opts: &Options) -> veil_ir::Graph {
    compile_as(name, name, 1, dir, opts)
}

/// A running `veil server`, killed when dropped.
pub struct Server(pub std::process::Child, pub String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn start_server(dir: &Path, name: &str, sessions: usize) -> Server {
    start_server_on(dir, name, sessions, "127.0.0.1:0", &[])
}

/// `start_server` listening on `listen` (`HOST:PORT`), with `extra` flags.
pub fn start_server_on(dir: &Path, name: &str, sessions: usize, listen: &str, extra: &[&str]) -> Server {
    let mut child = veil()
        .arg("server")
        .arg("--plan")
        .arg(dir.join(format!("{name}.plan")))
        .arg("--weights")
        .arg(dir.join(format!("{name}.weights")))
        .args(["--listen", listen, "--sessions", &sessions.to_string()])
        .arg("--cert")
        .arg(dir.join("server.crt"))
        .arg("--key")
        .arg(dir.join("server.key"))
        .arg("--stats")
        .arg(dir.join("server-stats.json"))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on ").expect("the server prints its address").to_string();
    Server(child, addr)
}

/// `veil client` for `dir/<plan>.plan` on `input`, output in `dir/y.npy`, stats in
/// `dir/client-stats.json`.
pub fn client_command(dir: &Path, plan: &str, addr: &str, input: &Path) -> Command {
    let mut c = veil();
    c.arg("client")
        .arg("--plan")
        .arg(dir.join(format!("{plan}.plan")))
        .args(["--connect", addr])
        .arg("--server-cert")
        .arg(dir.join("server.crt"))
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(dir.join("y.npy"))
        .arg("--stats")
        .arg(dir.join("client-stats.json"));
    c
}

pub fn client(dir: &Path, plan: &str, addr: &str, input: &Path) -> std::process::Output {
    client_command(dir, plan, addr, input).output().unwrap()
}

/// Index of the largest entry of each row (last axis).
pub fn top1_rows(t: &veil_ir::Tensor) -> Vec<usize> {
    let classes = *t.shape.last().unwrap();
    t.data.chunks(classes).map(|r| r.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0).collect()
}
