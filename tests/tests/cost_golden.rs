//! The cost model's per-layer predictions (bytes each way and rounds, both phases; CPU seconds)
//! for every bundled model under several option sets, against `models/snapshots/cost.txt`,
//! which the hand-written cost model produced before it became a fold over the steps' message
//! scripts (`veil_ir::schedule::script`). `VEIL_BLESS=1` rewrites the file.

use std::fmt::Write;

use veil_compiler::onnx::{ImportOptions, import_file};
use veil_passes::{Activation, LinearChoice, Options, run_pipeline};
use veil_tests::{bundled_models, root};

fn report() -> String {
    let configs: [(&str, Options); 4] = [
        ("default", Options::default()),
        ("circa", Options { activation: Activation::Circa, ..Options::default() }),
        (
            "exact-truncation, OT dense",
            Options { exact_truncation: true, linear_offline: LinearChoice::Ot, ..Options::default() },
        ),
        (
            "poly, HE dense",
            Options { activation: Activation::Poly, linear_offline: LinearChoice::He, ..Options::default() },
        ),
    ];
    let mut out = String::new();
    for name in bundled_models() {
        let model = root().join("models").join(format!("{name}.onnx"));
        for (label, opts) in &configs {
            let mut g = import_file(&model, &ImportOptions::default()).unwrap();
            if let Err(e) = run_pipeline(&mut g, opts, None, false) {
                writeln!(out, "{name} [{label}]: does not compile: {e}").unwrap();
                continue;
            }
            let c = match veil_passes::cost::plan_cost(&g) {
                Ok(c) => c,
                Err(e) => {
                    writeln!(out, "{name} [{label}]: unsupported: {e}").unwrap();
                    continue;
                }
            };
            let t = |t: &veil_passes::cost::Traffic| {
                format!("{} {} {}", t.bytes_client_to_server, t.bytes_server_to_client, t.rounds)
            };
            writeln!(out, "{name} [{label}]: offline {} online {}", t(&c.offline), t(&c.online)).unwrap();
            writeln!(out, "  cpu {:.6e} {:.6e}", c.offline_cpu_seconds, c.online_cpu_seconds).unwrap();
            for l in &c.layers {
                writeln!(
                    out,
                    "  {} {} {}: offline {} online {} cpu {:.6e} {:.6e}",
                    l.name,
                    l.op,
                    l.protocol,
                    t(&l.offline),
                    t(&l.online),
                    l.offline_cpu_seconds,
                    l.online_cpu_seconds
                )
                .unwrap();
            }
        }
    }
    out
}

#[test]
fn cost_model_predictions_are_unchanged_for_every_bundled_model() {
    let path = root().join("models/snapshots/cost.txt");
    let got = report();
    if std::env::var_os("VEIL_BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap();
    for (i, (a, b)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(a, b, "line {} of {}", i + 1, path.display());
    }
    assert_eq!(got.lines().count(), want.lines().count(), "{}", path.display());
}
