//! The `veilc` binary: exit codes, error messages, and output files, as a user sees them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn veilc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veilc")).args(args).output().expect("veilc runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn model(name: &str) -> String {
    models().join(name).display().to_string()
}

/// A fresh, empty scratch folder for one test.
fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("veilc-cli-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn bad_model_files_are_rejected_with_one_clear_error() {
    let cases = [
        ("bad/empty.onnx", "is empty (0 bytes), not an ONNX model"),
        ("bad/truncated.onnx", "is not a valid ONNX model (truncated or not ONNX protobuf)"),
        ("bad/random.onnx", "is not a valid ONNX model (truncated or not ONNX protobuf)"),
        ("does-not-exist.onnx", "cannot read"),
    ];
    for (file, msg) in cases {
        let o = veilc(&["ir", &model(file)]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{file}: {err}");
        assert!(err.starts_with("error: ") && err.contains(msg), "{file}: {err}");
        assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{file}: {err}");
        assert!(o.stdout.is_empty(), "{file}: printed output despite the error");
    }
}

#[test]
fn every_unsupported_node_is_reported_at_once() {
    let o = veilc(&["ir", &model("bad/unsupported_op.onnx")]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("the model cannot be compiled (2 problem(s)):"), "{err}");
    // LSTMs are supported (unrolled); this one's weight does not fit its input.
    assert!(err.contains(r#"node "encoder/LSTM_0" (LSTM): W has shape [64, 8, 4], expected"#), "{err}");
    // Sigmoid is supported at the end of a model (issue 16); this one reads the refused LSTM's
    // result, so it is not reported on its own.
    assert!(!err.contains("gate/Sigmoid"), "{err}");
    assert!(err.contains(r#"node "custom/FusedGelu" (FusedGelu, domain com.example): not supported"#), "{err}");
    // The supported nodes around them are not reported.
    assert!(!err.contains("relu_0") && !err.contains(r#""concat""#), "{err}");
}

#[test]
fn ir_prints_text_json_and_dot() {
    let m = model("digits_relu.onnx");
    let text = veilc(&["ir", &m]);
    assert_eq!(text.status.code(), Some(0), "{}", stderr(&text));
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.starts_with("graph \"digits_relu\"\n") && text.contains(" = conv2d %0 "), "{text}");

    let json = veilc(&["ir", &m, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("valid JSON");
    assert_eq!(v["name"], "digits_relu");
    assert!(v["nodes"].as_array().is_some_and(|n| n.len() > 5));

    let dot = String::from_utf8(veilc(&["ir", &m, "--format", "dot"]).stdout).unwrap();
    assert!(dot.starts_with("digraph \"digits_relu\" {") && dot.trim_end().ends_with('}'), "{dot}");

    let unknown = veilc(&["ir", &m, "--after", "no_such_pass"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("unknown pass \"no_such_pass\""), "{}", stderr(&unknown));
}

#[test]
fn ir_writes_the_dump_to_a_file() {
    let dir = scratch("ir-file");
    let out = dir.join("mlp.ir");
    let o = veilc(&["ir", &model("mlp.onnx"), "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    assert!(std::fs::read_to_string(&out).unwrap().contains("dense"));
}

#[test]
fn simulate_float_writes_the_output_and_names_the_top_class() {
    let dir = scratch("simulate");
    let out = dir.join("y.npy");
    let o = veilc(&[
        "simulate",
        &model("digits_relu.onnx"),
        "--float",
        "--input",
        &model("inputs/digits_relu.npy"),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stdout = String::from_utf8(o.stdout).unwrap();
    let y = veil_ir::npy::read_npy(&out).unwrap();
    assert_eq!(y.shape, vec![1, 10]);
    let best = (0..10).max_by(|&a, &b| y.data[a].total_cmp(&y.data[b])).unwrap();
    assert!(stdout.contains(&format!("top-1: class {best} ")), "{stdout}");
}

#[test]
fn simulate_accepts_an_input_without_its_batch_dimension() {
    let dir = scratch("nobatch");
    let x = veil_ir::npy::read_npy(&models().join("inputs/lenet.npy")).unwrap();
    let unbatched = veil_ir::Tensor::new(x.shape[1..].to_vec(), x.data.clone()).unwrap();
    let p = dir.join("x.npy");
    std::fs::write(&p, veil_ir::npy::encode_npy(&unbatched, veil_ir::ElemType::F32)).unwrap();
    let a = veilc(&["simulate", &model("lenet.onnx"), "--input-bound", "5", "--input", p.to_str().unwrap(), "--json"]);
    let b = veilc(&[
        "simulate",
        &model("lenet.onnx"),
        "--input-bound",
        "5",
        "--input",
        &model("inputs/lenet.npy"),
        "--json",
    ]);
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn simulate_rejects_bad_inputs_without_leaving_an_output_file() {
    let dir = scratch("bad-input");
    let out = dir.join("y.npy");
    let wrong_shape = dir.join("wrong.npy");
    let t = veil_ir::Tensor::new(vec![1, 5], vec![0.0; 5]).unwrap();
    std::fs::write(&wrong_shape, veil_ir::npy::encode_npy(&t, veil_ir::ElemType::F32)).unwrap();
    let batch3 = dir.join("batch3.npy");
    let t = veil_ir::Tensor::new(vec![3, 784], vec![0.0; 3 * 784]).unwrap();
    std::fs::write(&batch3, veil_ir::npy::encode_npy(&t, veil_ir::ElemType::F32)).unwrap();
    let nan = dir.join("nan.npy");
    let mut x = veil_ir::npy::read_npy(&models().join("inputs/mlp.npy")).unwrap();
    x.data[3] = f32::NAN;
    std::fs::write(&nan, veil_ir::npy::encode_npy(&x, veil_ir::ElemType::F32)).unwrap();
    // Integers read as their values, but one float32 cannot hold exactly is refused.
    let ints = dir.join("ints.npy");
    let mut bytes = veil_ir::npy::encode_npy(&x, veil_ir::ElemType::I64);
    let at = bytes.len() - 8;
    bytes[at..].copy_from_slice(&((1i64 << 24) + 1).to_le_bytes());
    std::fs::write(&ints, bytes).unwrap();
    let garbage = dir.join("garbage.npy");
    std::fs::write(&garbage, b"\x93NUMPY\x01\x00garbage").unwrap();
    let cases = [
        (&wrong_shape, "must have shape [1, 784], the file holds [1, 5]"),
        (
            &batch3,
            "the file holds [3, 784] (only the batch differs: the model was compiled for batch 1; compile with --batch 3)",
        ),
        (&nan, "non-finite value at flat index 3"),
        (&ints, "the integer 16777217 at flat index 783 has no exact float32 value"),
        (&garbage, "is not a valid .npy file"),
    ];
    for (input, msg) in cases {
        let o = veilc(&[
            "simulate",
            &model("mlp.onnx"),
            "--float",
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains(msg), "expected {msg:?} in {err}");
        assert!(!out.exists(), "left an output file after: {err}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn output_to_an_unwritable_path_is_an_io_error() {
    let o = veilc(&["ir", &model("mlp.onnx"), "-o", "/proc/veil-cannot-write/here.ir"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).starts_with("error: cannot write /proc/veil-cannot-write/here.ir"), "{}", stderr(&o));
}

#[test]
fn compile_writes_plan_and_weights_that_simulate_like_the_model() {
    let dir = scratch("compile");
    let out = dir.join("out");
    let o = veilc(&["compile", &model("digits_relu.onnx"), "-o", out.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["relus"], 800);
    assert!(summary["and_gates"].as_u64().unwrap() > 0);
    let (plan, weights) = (out.join("digits_relu.plan"), out.join("digits_relu.weights"));
    assert!(plan.exists() && weights.exists());
    // The plan and the ONNX model simulate to the same bytes (same seed, same program).
    let (a, b) = (dir.join("a.npy"), dir.join("b.npy"));
    for (m, y) in [(plan.to_str().unwrap().to_string(), &a), (model("digits_relu.onnx"), &b)] {
        let o = veilc(&["simulate", &m, "--input", &model("inputs/digits_relu.npy"), "--output", y.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

/// `models/bad/elementwise_scale.onnx` (MatMul, then Mul by a [1, 2, 3] initializer: a
/// server-private scale per element on shares, which the runtime does not run): `compile` and
/// `run` refuse it by node, before any file or process; `simulate` computes it.
#[test]
fn a_plan_the_runtime_cannot_run_is_refused_before_anything_is_written() {
    let dir = scratch("unrunnable");
    let m = model("bad/elementwise_scale.onnx");
    let o = veilc(&["compile", &m, "-o", dir.to_str().unwrap(), "--input-bound", "4"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot run between two parties: node \"Mul_1\" (affine)"), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "files left behind");
    let x = dir.join("x.npy");
    let t = veil_ir::Tensor::new(vec![1, 2, 3], vec![1.0; 6]).unwrap();
    std::fs::write(&x, veil_ir::npy::encode_npy(&t, veil_ir::ElemType::F32)).unwrap();
    let o = veilc(&["run", &m, "--input", x.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot run between two parties"), "{}", stderr(&o));
    let o = veilc(&["simulate", &m, "--input", x.to_str().unwrap(), "--input-bound", "4"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// A model with two inputs (Hugging Face's BERT: `input_ids`, `attention_mask`) takes
/// `--input` once per input; another count is refused naming the inputs, before anything runs.
#[test]
fn each_input_of_a_model_has_its_own_input_flag() {
    let m = model("attention/hf_bert_mask_dynamo.onnx");
    let (ids, mask) = (model("attention/hf_bert_mask_ids.npy"), model("attention/hf_bert_mask_mask.npy"));
    for cmd in ["run", "simulate"] {
        let o = veilc(&[cmd, &m, "--input", &ids]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("the model has 2 input(s) (input_ids, attention_mask); give --input once for each"),
            "{cmd}: {}",
            stderr(&o)
        );
    }
    // Both inputs: the float reference is onnxruntime's output.
    let dir = scratch("two-inputs");
    let y = dir.join("y.npy");
    let o = veilc(&["simulate", &m, "--float", "--input", &ids, "--input", &mask, "--output", y.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let got = veil_ir::npy::read_npy(&y).unwrap();
    let want = veil_ir::npy::read_npy(Path::new(&model("attention/hf_bert_mask_dynamo_ort.npy"))).unwrap();
    for (a, b) in got.data.iter().zip(&want.data) {
        assert!((a - b).abs() < 1e-5, "{a} vs onnxruntime {b}");
    }
    // `veilc eval` reads one array per input from the data set: each of its 16 samples is a
    // pair, fixed point against float (a count of 32 would mean the pairs were split).
    let calib = model("attention/hf_bert_mask_calib.npz");
    let o = veilc(&["eval", &m, "--data", &calib, "--calibrate", &calib, "--json", "--limit", "12"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["samples"], 12, "{v}");
    assert!(v["max_abs_error"].as_f64().unwrap() < 0.005 && v["top1_agreement"] == 1.0, "{v}");
}

#[test]
fn a_plan_refuses_weights_of_another_plan_and_a_bad_model_writes_nothing() {
    let dir = scratch("wrong-weights");
    for m in ["digits_relu", "digits_poly"] {
        let o = veilc(&["compile", &model(&format!("{m}.onnx")), "-o", dir.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let o = veilc(&[
        "simulate",
        dir.join("digits_relu.plan").to_str().unwrap(),
        "--weights",
        dir.join("digits_poly.weights").to_str().unwrap(),
        "--input",
        &model("inputs/digits_relu.npy"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("the weights belong to a different plan"), "{}", stderr(&o));

    let empty = dir.join("nothing");
    let o = veilc(&["compile", &model("bad/unsupported_op.onnx"), "-o", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!empty.exists() || std::fs::read_dir(&empty).unwrap().next().is_none(), "files left behind");
}

#[test]
fn inputs_beyond_the_compiled_bound_are_refused_unless_allowed() {
    // The sample LeNet input is standard normal: beyond the bound |x| ≤ 1 given here.
    let args = ["simulate", &model("lenet.onnx"), "--input-bound", "1", "--input", &model("inputs/lenet.npy")];
    let o = veilc(&args);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("beyond the bound |x| ≤ 1 the model was compiled for"), "{}", stderr(&o));
    let o = veilc(&[&args[..], &["--allow-out-of-range"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).starts_with("warning: inputs beyond |x| ≤ 1 are not refused"), "{}", stderr(&o));
}

/// Rows of a CSV without quoted commas in the fields read here: header name → column.
fn csv_rows(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| {
            // Quoted labels may hold commas: split the quoted field off first.
            let (label, rest) = match l.split_once(",\"") {
                Some((id, q)) => {
                    let (label, rest) = q.split_once("\",").unwrap();
                    (format!("{id},{label}"), rest.to_string())
                }
                None => {
                    let mut it = l.splitn(3, ',');
                    let (id, label) = (it.next().unwrap(), it.next().unwrap());
                    (format!("{id},{label}"), it.next().unwrap_or("").to_string())
                }
            };
            let (id, label) = label.split_once(',').unwrap();
            [id.to_string(), label.to_string()].into_iter().chain(rest.split(',').map(String::from)).collect()
        })
        .collect();
    (header, rows)
}

#[test]
fn explore_writes_the_pareto_csv_and_plots_and_prints_the_front() {
    let dir = scratch("explore");
    let out = dir.join("out");
    let o = veilc(&[
        "explore",
        &model("digits_relu.onnx"),
        "--data",
        &model("digits_test.npz"),
        "--limit",
        "60",
        "--circa-error-bits",
        "5,1",
        "-o",
        out.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}{}", stderr(&o));
    assert!(text.contains("Pareto front"), "{text}");
    let (header, rows) = csv_rows(&std::fs::read_to_string(out.join("pareto.csv")).unwrap());
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    // relu; 2 error bits × 2 variants; 7 proper subsets of the 3 ReLU layers; 6 with Circa rest.
    assert_eq!(rows.len(), 1 + 4 + 7 + 6, "{header:?}");
    let num = |r: &Vec<String>, c: &str| r[col(c)].parse::<f64>().unwrap();
    for r in &rows {
        let dominated = rows.iter().any(|q| {
            let (tq, tr) = (num(q, "predicted_online_seconds"), num(r, "predicted_online_seconds"));
            let (sq, sr) = (num(q, "score"), num(r, "score"));
            tq <= tr && sq >= sr && (tq < tr || sq > sr)
        });
        assert_eq!(r[col("front")] == "true", !dominated, "{r:?}");
        // Every front configuration is printed.
        if !dominated {
            assert!(text.lines().any(|l| l.trim_start().starts_with(&r[1])), "{} missing from\n{text}", r[1]);
        }
    }
    let relu = rows.iter().find(|r| r[1] == "relu").unwrap();
    assert_eq!(num(relu, "relus"), 800.0);
    assert_eq!(num(relu, "poly_activations"), 0.0);
    let poly = rows.iter().find(|r| r[1] == "poly").unwrap();
    assert_eq!((num(poly, "relus"), num(poly, "poly_activations")), (0.0, 800.0));
    let png = std::fs::read(out.join("pareto.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(out.join("pareto.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("circa e=5 pos-zero"), "{}", &svg[..200.min(svg.len())]);
    let leftovers: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 3, "{leftovers:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn explore_rejects_a_model_without_relus_and_bad_data() {
    let dir = scratch("explore-bad");
    let out = dir.join("out");
    let o = veilc(&[
        "explore",
        &model("digits_poly.onnx"),
        "--data",
        &model("digits_test.npz"),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no ReLU layers"), "{}", stderr(&o));
    let o = veilc(&["explore", &model("mlp.onnx"), "--data", &model("digits_test.npz"), "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("does not hold model inputs"), "{}", stderr(&o));
    assert!(!out.exists(), "nothing written");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compile_with_a_relu_budget_reports_the_chosen_layers() {
    let dir = scratch("budget");
    let o = veilc(&[
        "compile",
        &model("digits_relu.onnx"),
        "--calibrate",
        &model("digits_test.npz"),
        "--relu-budget",
        "300",
        "--json",
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let b = &v["relu_budget"];
    assert!(b["kept_relus"].as_u64().unwrap() <= 300, "{b}");
    let kept: Vec<&str> = b["kept"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let replaced: Vec<&str> = b["replaced"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(kept.len() + replaced.len(), 3, "{b}");
    // The summary's ReLU count is what was kept.
    assert_eq!(v["relus"], b["kept_relus"], "{v}");
    assert!(b["predicted_score"].as_f64().unwrap() > 0.0);
    // A budget needs data to measure importance on.
    let o =
        veilc(&["compile", &model("digits_relu.onnx"), "--relu-budget", "300", "-o", dir.join("x").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--calibrate"), "{}", stderr(&o));
    assert!(!dir.join("x").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `veilc ir --help` lists every pass `--after` accepts, in the pipeline's order.
#[test]
fn ir_help_lists_every_pass() {
    let o = veilc(&["ir", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
    let names: Vec<&str> = std::iter::once("import").chain(veil_passes::Pass::ALL.iter().map(|p| p.name())).collect();
    assert!(help.contains(&names.join(", ")), "{help}");
}

/// `simulate` and `run` share one rule: without `--input-bound` or `--calibrate` they compile for
/// the given input's largest magnitude and say so, so the sample LeNet input (standard normal)
/// runs; `compile` keeps the bound of 1 (a plan serves many inputs).
#[test]
fn simulate_compiles_for_its_input_like_run() {
    let o = veilc(&["simulate", &model("lenet.onnx"), "--input", &model("inputs/lenet.npy")]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("this input's largest magnitude"), "{err}");
    let x = veil_ir::npy::read_npy(std::path::Path::new(&model("inputs/lenet.npy"))).unwrap();
    let b = x.data.iter().fold(1f32, |m, v| m.max(v.abs()));
    assert!(b > 1.0 && err.contains(&format!("compiling for |input| ≤ {b} ")), "{err}");
}

/// Splits a table line into its cells (columns are two or more spaces apart; no cell holds two
/// spaces).
fn cells(line: &str) -> Vec<String> {
    line.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(str::to_string).collect()
}

/// Issue 18: the compile table fits `COLUMNS`, in human units; `--wide` prints every column with
/// the exact integers of `--json`.
#[test]
fn the_compile_table_fits_the_terminal_and_wide_has_the_json_integers() {
    let dir = scratch("table");
    let out = dir.join("out");
    let run = |extra: &[&str], columns: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_veilc"))
            .args(["compile", &model("digits_relu.onnx"), "-o", out.to_str().unwrap()])
            // A fixed F and garbled ReLUs: the AND-gate count below is the digits model's at
            // F = 12 in circuits.
            .args(["--frac-bits", "12", "--nonlinear", "gc"])
            .args(extra)
            .env("COLUMNS", columns)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    // The table and the totals: from the header to the `wrote` line.
    let table = |text: &str| -> Vec<String> {
        let start = text.lines().position(|l| l.starts_with("layer ")).expect("a table header");
        text.lines().skip(start).take_while(|l| !l.starts_with("wrote ")).map(str::to_string).collect()
    };
    let narrow = run(&[], "80");
    let lines = table(&narrow);
    assert!(lines.len() > 15, "{narrow}");
    for l in &lines {
        assert!(l.chars().count() <= 80, "{} chars: {l:?}\n{narrow}", l.chars().count());
    }
    // Human units, no long digit runs. The first ReLU: 512 circuits reading its operand in 28 of
    // the 39 bits and masking their output in 28 (its reader, the MaxPool, reads 16; a circuit
    // outputs at least what it reads), (28 − 1) + (28 − 12 − 1) + (28 − 1) = 69 ANDs each,
    // 35,328 in all.
    assert!(narrow.contains(" MB") && narrow.contains(" kB") && narrow.contains("35.3 k"), "{narrow}");
    assert!(!lines.iter().any(|l| l.split(|c: char| !c.is_ascii_digit()).any(|d| d.len() > 4)), "{narrow}");
    // One row per layer: the first convolution shares its input and runs HE.
    let conv = lines.iter().find(|l| l.starts_with("/conv1/Conv ")).unwrap();
    assert!(conv.contains("HE+share"), "{conv}");
    // Wide, whatever COLUMNS says: exact integers equal to the JSON's.
    let wide = run(&["--wide"], "60");
    let lines = table(&wide);
    let header = cells(&lines[0]);
    let json: serde_json::Value = serde_json::from_str(&run(&["--json"], "80")).unwrap();
    let layers = json["layers"].as_array().unwrap();
    assert_eq!(layers.len(), lines.iter().take_while(|l| !l.starts_with("total:")).count() - 1);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("{name} in {header:?}"));
    for (l, row) in layers.iter().zip(&lines[1..]) {
        let row = cells(row);
        assert_eq!(row.len(), header.len(), "{row:?}");
        assert_eq!(row[0], l["name"].as_str().unwrap());
        assert_eq!(row[col("protocol")], l["protocol"].as_str().unwrap());
        assert_eq!(row[col("AND gates")], l["and_gates"].to_string());
        assert_eq!(row[col("off c→s B")], l["offline"]["bytes_client_to_server"].to_string());
        assert_eq!(row[col("off s→c B")], l["offline"]["bytes_server_to_client"].to_string());
        assert_eq!(row[col("on c→s B")], l["online"]["bytes_client_to_server"].to_string());
        assert_eq!(row[col("on s→c B")], l["online"]["bytes_server_to_client"].to_string());
    }
    assert!(wide.contains(&format!("{} AND gates", json["and_gates"])), "{wide}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 18, item 9: every reporting command's `--json` prints one JSON document, and nothing
/// else, on stdout, with its keys. (`run`, `bench`, `load`: tests/two_processes.rs; `veil`:
/// runtime/tests/two_processes.rs.)
#[test]
fn json_is_a_switch_printing_one_document_on_stdout() {
    let dir = scratch("json");
    let input = model("inputs/digits_relu.npy");
    let data = model("digits_test.npz");
    let out = dir.join("out");
    let commands: Vec<(Vec<&str>, &[&str])> = vec![
        (
            vec!["compile", "-o", out.to_str().unwrap()],
            &["layers", "relus", "and_gates", "offline", "online", "plan", "weights", "passes"],
        ),
        (vec!["simulate", "--input", &input], &["mode", "outputs"]),
        (vec!["eval", "--data", &data, "--limit", "20"], &["samples", "accuracy", "top1_agreement", "ring_bits"]),
        (
            vec!["explore", "--data", &data, "--limit", "20", "--circa-error-bits", "5", "-o", out.to_str().unwrap()],
            &["importance", "points", "refused", "verification", "files"],
        ),
    ];
    for (args, keys) in commands {
        let o = Command::new(env!("CARGO_BIN_EXE_veilc"))
            .arg(args[0])
            .arg(model("digits_relu.onnx"))
            .args(&args[1..])
            .arg("--json")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}\n{}", String::from_utf8_lossy(&o.stdout)));
        for k in keys {
            assert!(v.get(k).is_some(), "{args:?}: no {k:?} in {v}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `F = N` of the line `quantize` prints.
fn quantize_f(stdout: &str) -> u8 {
    let line = stdout.lines().find(|l| l.starts_with("quantize: F = ")).unwrap_or_else(|| panic!("{stdout}"));
    line["quantize: F = ".len()..].split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn compile_chooses_f_for_the_error_target_unless_frac_bits_is_given() {
    let dir = scratch("precision");
    let (out, mlp) = (dir.join("out"), model("mlp.onnx"));
    let run = |extra: &[&str]| {
        let mut args = vec!["compile", &mlp, "-o", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        veilc(&args)
    };
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let auto = quantize_f(&text);
    let line = text.lines().find(|l| l.starts_with("precision: ")).unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.starts_with(&format!("precision: F = {auto} fractional bits")) && line.contains(", ring ℓ = "),
        "{line}"
    );
    assert!(line.contains("(target 1 %") && line.contains("8 random input(s) with |x| ≤ 1"), "{line}");
    // A looser target never needs more bits; a tighter one never fewer.
    let loose = quantize_f(&String::from_utf8_lossy(&run(&["--max-error", "10%"]).stdout));
    let tight = quantize_f(&String::from_utf8_lossy(&run(&["--max-error", "0.001"]).stdout));
    assert!(loose <= auto && auto <= tight && loose < tight, "{loose} {auto} {tight}");
    // --frac-bits: no search, that F.
    let o = run(&["--frac-bits", "12"]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(quantize_f(&text), 12);
    assert!(!text.contains("precision: "), "{text}");
    let json = run(&["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["precision"]["frac_bits"], auto);
    assert!(v["precision"]["error"].as_f64().unwrap() <= 0.01);
    // Both, or a target that is not a positive fraction: a usage error, nothing written.
    let _ = std::fs::remove_dir_all(&out);
    for bad in [&["--frac-bits", "12", "--max-error", "1%"][..], &["--max-error", "0"], &["--max-error", "x%"]] {
        let o = run(bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("--max-error"), "{bad:?}: {}", stderr(&o));
        assert!(!out.exists(), "{bad:?}");
    }
    // A target no F reaches is refused, naming the best error reached.
    let o = run(&["--max-error", "1e-9"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("precision: no F reaches an output error of") && stderr(&o).contains("the best is"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn layer_frac_bits_give_a_node_its_own_scale_and_unknown_nodes_are_refused() {
    let ir = |extra: &[&str]| {
        let o = veilc(&[&["ir", &model("mlp.onnx"), "--after", "quantize", "--frac-bits", "12"], extra].concat());
        (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), stderr(&o))
    };
    let ring = |text: &str| text.lines().find_map(|l| l.strip_prefix("ring ")).map(str::to_owned);
    let (code, global, e) = ir(&[]);
    assert_eq!(code, Some(0), "{e}");
    assert!(global.contains("= dense %6 weight=@4 bias=@5 : shared fx24[1,10]"), "{global}");
    // The last layer and the ReLU feeding it at F = 9: its output drops from scale 24 to 18,
    // and the ring narrows with it.
    let (code, own, e) = ir(&["--layer-frac-bits", "/fc3/Gemm=9", "--layer-frac-bits", "/Relu_1=9"]);
    assert_eq!(code, Some(0), "{e}");
    assert!(own.contains("= relu %5 : shared fx9[1,128]"), "{own}");
    assert!(own.contains("= dense %6 weight=@4 bias=@5 : shared fx18[1,10]"), "{own}");
    let bits = |t: &str| ring(t).and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok()).unwrap();
    assert!(bits(&own) < bits(&global), "{:?} vs {:?}", ring(&own), ring(&global));
    let (code, _, e) = ir(&["--layer-frac-bits", "/nope=9"]);
    assert_eq!(code, Some(1));
    assert!(e.contains("\"/nope\"") && e.contains("no node by that name"), "{e}");
    // Only with --frac-bits: the automatic choice sets per-layer F itself.
    let o = veilc(&["compile", &model("mlp.onnx"), "--layer-frac-bits", "/fc3/Gemm=9"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--frac-bits"), "{}", stderr(&o));
}

/// An input the model declares INT4 or FLOAT8E4M3FN, saved by ml_dtypes as raw bytes (`|V1`):
/// `veilc simulate` reads it as the declared type, in float and in fixed point, and gives ONNX's
/// reference output (the conformance cases' data). `veilc run` does the same between two
/// processes (not run here: `runtime/tests/two_processes.rs` covers the client).
#[test]
fn simulate_reads_raw_byte_inputs_as_the_model_declares() {
    let cases = models().join("../tests/conformance/cases");
    for case in ["cast_INT4_to_FLOAT", "dequantizelinear_e4m3fn"] {
        let dir = cases.join(case);
        let want = veil_ir::npy::read_npy(&dir.join("output_0.npy")).unwrap();
        let (m, x) = (dir.join("model.onnx"), dir.join("input_0.npy"));
        for float in [true, false] {
            let mut args = vec!["simulate", m.to_str().unwrap(), "--input", x.to_str().unwrap(), "--json"];
            if float {
                args.push("--float");
            } else {
                args.extend(["--input-bound", "448", "--frac-bits", "8"]);
            }
            let o = veilc(&args);
            assert_eq!(o.status.code(), Some(0), "{case}: {}", stderr(&o));
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            let got: Vec<f64> =
                v["outputs"][0]["values"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            let want: Vec<f64> = want.data.iter().map(|&x| f64::from(x)).collect();
            assert_eq!(got, want, "{case}, float {float}");
        }
    }
}
