//! Bad input to the `veil` binary, one row each: exit code 1, one readable message naming the
//! file and what is wrong, no panic, and no output file left behind. (The compiler's rows, for
//! ONNX files, inputs and plans, are in `compiler/tests/cli.rs` and `tests/tests/plan_files.rs`.)

mod common;

use common::{Workdir, compile, compile_as, root, veil};
use veil_passes::Options;

#[test]
fn every_bad_file_is_one_clear_error() {
    let w = Workdir::new("bad-input");
    let d = &w.0;
    compile("mlp", d, &Options { input_bound: 4.0, ..Options::default() });
    compile_as("digits_relu", "other", 1, d, &Options::default());
    let plan = std::fs::read(d.join("mlp.plan")).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(d.join(name), bytes).unwrap();
        d.join(name).display().to_string()
    };
    let truncated = write("truncated.plan", &plan[..plan.len() / 2]);
    let mut b = plan.clone();
    b[plan.len() / 2] ^= 0x40;
    let flipped = write("flipped.plan", &b);
    let mut b = plan.clone();
    b[8] = 99;
    let version = write("version.plan", &b);
    let empty = write("empty.plan", &[]);
    let x = veil_ir::npy::read_npy(&root().join("models/inputs/mlp.npy")).unwrap();
    let wrong = veil_ir::Tensor::new(vec![1, 5], vec![0.5; 5]).unwrap();
    let wrong_shape = write("wrong.npy", &veil_ir::npy::encode_npy(&wrong, veil_ir::ElemType::F32));
    let mut nan = x.clone();
    nan.data[7] = f32::INFINITY;
    let inf = write("inf.npy", &veil_ir::npy::encode_npy(&nan, veil_ir::ElemType::F32));
    // Integers read as their values, but not one float32 cannot hold exactly.
    let mut big = veil_ir::npy::encode_npy(&x, veil_ir::ElemType::I64);
    let at = big.len() - 8;
    big[at..].copy_from_slice(&((1i64 << 24) + 1).to_le_bytes());
    let ints = write("ints.npy", &big);
    let garbage = write("garbage.npy", b"\x93NUMPY\x01\x00not really");
    let good_input = root().join("models/inputs/mlp.npy").display().to_string();
    let (good_plan, good_weights) =
        (d.join("mlp.plan").display().to_string(), d.join("mlp.weights").display().to_string());
    let other_weights = d.join("other.weights").display().to_string();
    let (cert, key) = (d.join("server.crt").display().to_string(), d.join("server.key").display().to_string());
    let missing = d.join("missing.plan").display().to_string();

    let server = |plan: &str, weights: &str| -> Vec<String> {
        ["server", "--plan", plan, "--weights", weights, "--cert", &cert, "--key", &key, "--listen", "127.0.0.1:0"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let out = d.join("y.npy").display().to_string();
    // Nothing listens on port 9: every client row must fail before connecting.
    let client = |plan: &str, input: &str| -> Vec<String> {
        let a = ["client", "--plan", plan, "--connect", "127.0.0.1:9", "--server-cert", &cert, "--input", input];
        a.iter().map(|s| s.to_string()).chain(["--output".to_string(), out.clone()]).collect()
    };
    let rows: Vec<(&str, Vec<String>, Vec<&str>)> = vec![
        ("server: truncated plan", server(&truncated, &good_weights), vec![&truncated, "truncated"]),
        ("server: flipped byte", server(&flipped, &good_weights), vec![&flipped, "hash"]),
        ("server: other version", server(&version, &good_weights), vec![&version, "version 99"]),
        ("server: empty plan", server(&empty, &good_weights), vec![&empty]),
        ("server: missing plan", server(&missing, &good_weights), vec![&missing]),
        ("server: weights of another plan", server(&good_plan, &other_weights), vec![&other_weights, "different plan"]),
        ("client: truncated plan", client(&truncated, &good_input), vec![&truncated, "truncated"]),
        ("client: flipped byte", client(&flipped, &good_input), vec![&flipped, "hash"]),
        ("client: wrong shape", client(&good_plan, &wrong_shape), vec![&wrong_shape, "shape"]),
        ("client: infinity", client(&good_plan, &inf), vec![&inf, "non-finite"]),
        ("client: integers", client(&good_plan, &ints), vec![&ints, "16777217", "no exact float32"]),
        ("client: not npy", client(&good_plan, &garbage), vec![&garbage, ".npy"]),
        ("client: missing input", client(&good_plan, &missing), vec![&missing, "cannot read"]),
        (
            "client: an address without a port",
            client(&good_plan, &good_input)
                .into_iter()
                .map(|a| if a == "127.0.0.1:9" { "localhost".into() } else { a })
                .collect(),
            vec!["--connect localhost", "HOST:PORT"],
        ),
    ];
    for (what, args, needles) in rows {
        let o = veil().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(1), "{what}: exit code; stderr:\n{err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
        let first = err.lines().next().unwrap_or_default();
        assert!(first.starts_with("error: "), "{what}: {err}");
        for n in needles {
            assert!(err.contains(n), "{what}: expected {n:?} in:\n{err}");
        }
        assert!(!d.join("y.npy").exists(), "{what}: left an output file");
    }
}
