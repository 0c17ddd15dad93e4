//! `veilc run` and `veilc bench`, which start `veil` processes: the prediction is printed beside
//! the float model's, and the benchmark's emulated WAN (`veil relay`) carries exactly the same
//! bytes as loopback while its online phase takes at least one round trip per exchange.

use std::path::{Path, PathBuf};
use std::process::Command;

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

/// `veilc` looks for `veil` beside itself: build it there (a no-op when `cargo test --workspace`
/// already did, and never a stale binary when only this package is tested).
fn ensure_runtime_binary() {
    let veilc = PathBuf::from(env!("CARGO_BIN_EXE_veilc"));
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args(["build", "-q", "--workspace", "--bins"]);
    if veilc.parent().is_some_and(|p| p.ends_with("release")) {
        // Release: the binaries alone, so the tests' `test-hooks` feature stays off (a release
        // `veil` with it does not compile).
        cargo.arg("--release");
    } else {
        // Debug: naming a test target makes cargo resolve features with the dev-dependencies,
        // exactly as `cargo test --workspace` did (which enables `test-hooks` through
        // veil-tests), so nothing is rebuilt with other features.
        cargo.args(["--test", "two_processes"]);
    }
    assert!(cargo.status().unwrap().success(), "building the veil binary");
}

/// Cargo's feature resolution for a build of the workspace's binaries (`cargo build --release
/// --bins`, what the README tells users to run): the test-only hooks of veil-runtime must be
/// off there, while the test builds do get them (so this check can see the feature at all).
/// `test-hooks` reached `target/release/veil` through a normal dependency of veil-tests before
/// (issue 14). The compile_error! in runtime/src/main.rs is the second line of defence.
#[test]
fn a_build_of_the_binaries_does_not_enable_the_test_hooks() {
    let features = |edges: &str| {
        let o = Command::new(env!("CARGO"))
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .args(["tree", "--offline", "--locked", "--workspace", "--prefix", "none", "-f", "{p}|{f}"])
            .args(["-e", edges, "-i", "veil-runtime"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let line = text.lines().find(|l| l.starts_with("veil-runtime ")).map(str::to_owned);
        line.unwrap_or_else(|| panic!("veil-runtime is not in the tree:\n{text}"))
    };
    let bins = features("no-dev");
    assert!(!bins.contains("test-hooks"), "a `--bins` build links the test hooks: {bins}");
    let tests = features("all");
    assert!(tests.contains("test-hooks"), "the tests no longer enable the hooks: {tests}");
}

#[test]
fn veilc_run_prints_both_predictions_and_the_costs() {
    ensure_runtime_binary();
    let m = models();
    let out = Command::new(env!("CARGO_BIN_EXE_veilc"))
        .arg("run")
        .arg(m.join("legacy_opset9.onnx"))
        .arg("--input")
        .arg(m.join("inputs/legacy_opset9.npy"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let line = text.lines().find(|l| l.starts_with("two-party prediction")).expect("the comparison line");
    let classes: Vec<&str> = line.split("class ").skip(1).map(|s| s.split_whitespace().next().unwrap()).collect();
    assert_eq!(classes.len(), 2, "{line}");
    assert_eq!(classes[0], classes[1], "{line}");
    assert!(text.contains("\ntotal "), "{text}");
}

#[test]
fn bench_over_the_emulated_wan_moves_the_same_bytes_and_waits_for_round_trips() {
    ensure_runtime_binary();
    let out = Command::new(env!("CARGO_BIN_EXE_veilc"))
        .arg("bench")
        .arg(models().join("legacy_opset9.onnx"))
        .args(["--policies", "relu", "--network", "loopback,wan", "--rtt", "40", "--bandwidth", "100", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // `--json` prints the rows, and nothing else, on stdout.
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let bytes = |r: &serde_json::Value, phase: &str| {
        (r[phase]["bytes_client_to_server"].as_u64().unwrap(), r[phase]["bytes_server_to_client"].as_u64().unwrap())
    };
    for phase in ["offline", "online"] {
        assert_eq!(bytes(&rows[0], phase), bytes(&rows[1], phase), "{phase}: the link changes time, not bytes");
        // Bytes per ReLU: the phase's bytes both ways over the model's ReLUs; none without ReLUs.
        let (up, down) = bytes(&rows[0], phase);
        let (relus, per) = (rows[0]["relus"].as_u64().unwrap(), &rows[0][format!("{phase}_bytes_per_relu")]);
        if relus == 0 {
            assert!(per.is_null(), "{phase}: {per}");
        } else {
            let per = per.as_f64().unwrap();
            assert!((per - (up + down) as f64 / relus as f64).abs() < 1e-6, "{phase}: {per}");
        }
    }
    // The garbling columns: the plan's AND gates and the client's storage are the plan's, so
    // equal on both links; rates exist exactly when something is garbled; storage holds at
    // least the garbled tables (32 bytes per AND gate).
    let gates = rows[0]["and_gates"].as_u64().unwrap();
    for r in rows {
        assert_eq!(r["and_gates"].as_u64(), Some(gates));
        assert_eq!(r["client_storage_bytes"], rows[0]["client_storage_bytes"]);
        assert!(r["client_storage_bytes"].as_u64().unwrap() >= 32 * gates, "{r}");
        for rate in ["garbled_and_per_second", "evaluated_and_per_second"] {
            if gates == 0 {
                assert!(r[rate].is_null(), "{r}");
            } else {
                assert!(r[rate].as_f64().is_some_and(|x| x.is_finite() && x > 0.0), "{r}");
            }
        }
    }
    // Online, the client shares its input and the server must answer before the result: at
    // least one full round trip of the emulated link.
    let (lo, wan) = (rows[0]["online"]["seconds"].as_f64().unwrap(), rows[1]["online"]["seconds"].as_f64().unwrap());
    assert!(wan >= 0.040, "online over a 40 ms RTT link took {wan} s");
    assert!(wan > lo, "loopback {lo} s, wan {wan} s");
}

#[test]
fn explore_verifies_front_points_between_two_processes() {
    ensure_runtime_binary();
    let out = std::env::temp_dir().join(format!("veilc-explore-verify-{}", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_veilc"))
        .arg("explore")
        .arg(models().join("digits_relu.onnx"))
        .arg("--data")
        .arg(models().join("digits_test.npz"))
        // A 2 ms round trip (through `veil relay`): on a 0.2 ms LAN Circa's narrower sign test
        // (issue 17) predicts a hair less online time than exact ReLU at the same accuracy on
        // these 40 samples, and dominates it; its 6 extra flights put ReLU back on the front.
        .args([
            "--limit",
            "40",
            "--circa-error-bits",
            "5",
            "--rtt",
            "2",
            "--verify",
            "2",
            "--verify-samples",
            "3",
            "-o",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(out.join("verify.csv")).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let rows: Vec<Vec<&str>> =
        lines.map(|l| l.rsplitn(header.len(), ',').collect::<Vec<_>>().into_iter().rev().collect()).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    for r in &rows {
        // The cost model's bytes are exact.
        assert_eq!(r[col("predicted_bytes")], r[col("measured_bytes")], "{csv}");
        assert_eq!(r[col("samples")], "3");
    }
    // Exact ReLU is the front's most accurate point on this model: bit-exact with the simulator.
    let relu = rows.iter().find(|r| r[0] == "relu").expect("relu is verified");
    assert_eq!(relu[col("outputs_identical")], "true", "{csv}");
    assert_eq!(relu[col("simulated_score")], relu[col("real_score")], "{csv}");
}

#[test]
fn load_runs_concurrent_clients_and_checks_every_result() {
    ensure_runtime_binary();
    let o = Command::new(env!("CARGO_BIN_EXE_veilc"))
        .arg("load")
        .arg(models().join("digits_relu.onnx"))
        .arg("--input")
        .arg(models().join("inputs/digits_relu.npy"))
        .args(["--clients", "3", "--duration", "10", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    // `--json` prints the report, and nothing else, on stdout.
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["exact"], true, "exact ReLU plans are checked bit for bit");
    assert!(v["correct"].as_u64().unwrap() >= 3, "{v}");
    assert_eq!(v["correct"], v["inferences"], "{v}");
    assert_eq!(v["server_alive"], true);
    if cfg!(target_os = "linux") {
        let samples = v["samples"].as_array().unwrap();
        assert!(!samples.is_empty());
        // No descriptor leak: the server's descriptors at the end are those of a few sessions.
        let fds: Vec<u64> = samples.iter().map(|s| s["fds"].as_u64().unwrap()).collect();
        assert!(fds.last().unwrap() <= &(fds[0] + 3 * 4), "descriptors {fds:?}");
    }
}

/// `veilc run --exact-truncation` on a model that truncates locally by default: the truncations
/// run as garbled circuits of their own, and `--stats -` prints the stats JSON on standard
/// output (issue 18: `-` used to create a file named `-`).
#[test]
fn veilc_run_with_exact_truncation_prints_its_stats_to_stdout() {
    ensure_runtime_binary();
    let m = models();
    let out = Command::new(env!("CARGO_BIN_EXE_veilc"))
        .arg("run")
        .arg(m.join("digits_poly.onnx"))
        .arg("--input")
        .arg(m.join("inputs/digits_poly.npy"))
        .args(["--exact-truncation", "--nonlinear", "gc", "--stats", "-"])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!std::env::temp_dir().join("-").exists(), "wrote a file named -");
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| *l == "{").expect("the stats JSON");
    let end = start + lines[start..].iter().position(|l| *l == "}").expect("its end");
    let stats: serde_json::Value = serde_json::from_str(&lines[start..=end].join("\n")).unwrap();
    let layers = stats["layers"].as_array().unwrap();
    let truncations: Vec<&str> = layers
        .iter()
        .filter(|l| l["name"].as_str().is_some_and(|n| n.ends_with("/truncate")))
        .map(|l| l["protocol"].as_str().unwrap())
        .collect();
    assert!(!truncations.is_empty() && truncations.iter().all(|p| *p == "GC"), "{truncations:?}");
}

/// Issue 18: `veilc run`'s cost table fits `COLUMNS` with one row per layer (a convolution's
/// `share` and `HE` steps are one `HE+share` row), `--wide` has the exact per-layer sums of the
/// steps `--json` reports, and `--json` prints one document and nothing else.
#[test]
fn veilc_run_fits_its_table_and_wide_sums_the_json_steps() {
    ensure_runtime_binary();
    let m = models();
    let run = |extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_veilc"))
            .arg("run")
            .arg(m.join("digits_relu.onnx"))
            .arg("--input")
            .arg(m.join("inputs/digits_relu.npy"))
            // Garbled ReLUs: megabytes of tables, so the table shows both units.
            .args(["--nonlinear", "gc"])
            .args(extra)
            .env("COLUMNS", "80")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let narrow = run(&[]);
    for l in narrow.lines() {
        assert!(l.chars().count() <= 80, "{} chars: {l:?}\n{narrow}", l.chars().count());
    }
    assert!(narrow.contains(" MB") && narrow.contains(" kB"), "{narrow}");
    let json: serde_json::Value = serde_json::from_str(&run(&["--json"])).expect("one JSON document");
    assert_eq!(json["prediction"]["class"], json["float_reference"]["class"]);
    let steps = json["layers"].as_array().unwrap();
    let conv: Vec<&serde_json::Value> = steps.iter().filter(|s| s["name"] == "/conv1/Conv").collect();
    assert_eq!(conv.len(), 2, "the first convolution has a share and an HE step: {conv:?}");
    let wide = run(&["--wide"]);
    let lines: Vec<&str> = wide.lines().skip_while(|l| !l.starts_with("layer ")).collect();
    let cells = |l: &str| -> Vec<String> {
        l.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(str::to_string).collect()
    };
    let header = cells(lines[0]);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("{name} in {header:?}"));
    let mut rows = 0;
    for l in lines[1..].iter().take_while(|l| !l.starts_with("total ")) {
        let row = cells(l);
        let mine: Vec<&serde_json::Value> = steps.iter().filter(|s| s["name"] == row[0].as_str()).collect();
        assert!(!mine.is_empty(), "{} is no step's name", row[0]);
        let sum =
            |phase: &str, key: &str| mine.iter().map(|s| s[phase][key].as_u64().unwrap()).sum::<u64>().to_string();
        assert_eq!(row[col("off c→s B")], sum("offline", "bytes_client_to_server"), "{l}");
        assert_eq!(row[col("off s→c B")], sum("offline", "bytes_server_to_client"), "{l}");
        assert_eq!(row[col("on c→s B")], sum("online", "bytes_client_to_server"), "{l}");
        assert_eq!(row[col("on s→c B")], sum("online", "bytes_server_to_client"), "{l}");
        assert_eq!(row[col("on rounds")], sum("online", "rounds"), "{l}");
        if row[0] == "/conv1/Conv" {
            assert_eq!(row[col("protocol")], "HE+share");
        }
        rows += 1;
    }
    let names: std::collections::BTreeSet<&str> = steps
        .iter()
        .filter(|s| {
            ["offline", "online"].iter().any(|p| {
                s[p]["bytes_client_to_server"].as_u64().unwrap() + s[p]["bytes_server_to_client"].as_u64().unwrap() > 0
            })
        })
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(rows, names.len(), "one row per layer with traffic\n{wide}");
}
