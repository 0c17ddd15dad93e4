//! `veil server` and `veil client` as two real processes on localhost: the client's output equals
//! the simulator's bit for bit (exact ReLU and MaxPool in garbled circuits, HE linear layers),
//! both write the same stats, and a client with another plan is refused before any secret moves.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use veil_compiler::onnx::{ImportOptions, import_file};
use veil_passes::{Options, run_pipeline};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

fn veil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_veil"))
}

fn compile(name: &str, dir: &Path, opts: &Options) -> veil_ir::Graph {
    let mut g = import_file(&root().join("models").join(format!("{name}.onnx")), &ImportOptions::default()).unwrap();
    run_pipeline(&mut g, opts, None, true).unwrap();
    let (plan, weights, _) = veil_ir::plan::encode(&g).unwrap();
    std::fs::write(dir.join(format!("{name}.plan")), plan).unwrap();
    std::fs::write(dir.join(format!("{name}.weights")), weights).unwrap();
    g
}

struct Server(std::process::Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(dir: &Path, name: &str, sessions: usize) -> Server {
    let mut child = veil()
        .arg("server")
        .arg("--plan")
        .arg(dir.join(format!("{name}.plan")))
        .arg("--weights")
        .arg(dir.join(format!("{name}.weights")))
        .args(["--listen", "127.0.0.1:0", "--sessions", &sessions.to_string()])
        .arg("--cert")
        .arg(dir.join("server.crt"))
        .arg("--key")
        .arg(dir.join("server.key"))
        .arg("--stats")
        .arg(dir.join("server-stats.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on ").expect("the server prints its address").to_string();
    Server(child, addr)
}

fn client(dir: &Path, plan: &str, addr: &str, input: &Path) -> std::process::Output {
    veil()
        .arg("client")
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
        .arg(dir.join("client-stats.json"))
        .output()
        .unwrap()
}

#[test]
fn server_and_client_processes_compute_the_simulators_output() {
    let dir = std::env::temp_dir().join(format!("veil-two-processes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert!(veil().arg("keygen").arg("--out").arg(&dir).status().unwrap().success());
    let input = root().join("models/inputs/digits_relu.npy");
    let g = compile("digits_relu", &dir, &Options::default());
    compile("digits_poly", &dir, &Options::default());

    let mut server = start_server(&dir, "digits_relu", 2);
    let out = client(&dir, "digits_relu", &server.1, &input);
    assert!(out.status.success(), "client: {}", String::from_utf8_lossy(&out.stderr));
    let x = veil_ir::npy::read_npy(&input).unwrap();
    let want = veil_ir::eval::run_fixed(&g, &[x], 0).unwrap().outputs;
    let got = veil_ir::npy::read_npy(&dir.join("y.npy")).unwrap();
    assert_eq!(got, want[0], "two processes differ from the simulator");
    assert!(String::from_utf8_lossy(&out.stdout).contains("prediction: class"));

    // A client holding a different plan is refused at the handshake, with exit code 1.
    let out = client(&dir, "digits_poly", &server.1, &input);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("different plans"), "{err}");
    let status = server.0.wait().unwrap();
    assert!(status.success(), "the server survives a refused client");
    let mut log = String::new();
    std::io::Read::read_to_string(&mut server.0.stderr.take().unwrap(), &mut log).unwrap();
    assert!(log.contains("session 1 from") && log.contains(": ok in"), "{log}");
    assert!(log.contains("session 2 from") && log.contains("different plans"), "{log}");

    // The server's stats of session 1 and the client's agree on every byte count.
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap()
    };
    let (c, s) = (read("client-stats.json"), read("server-stats.json"));
    let bytes = |v: &serde_json::Value| -> Vec<u64> {
        v["layers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|l| {
                ["offline", "online"].into_iter().flat_map(move |p| {
                    ["bytes_client_to_server", "bytes_server_to_client"].map(|k| l[p][k].as_u64().unwrap())
                })
            })
            .collect()
    };
    assert_eq!(bytes(&c), bytes(&s));
    assert!(c["online"]["bytes_server_to_client"].as_u64().unwrap() > 0);
    let _ = std::fs::remove_dir_all(&dir);
}
