//! Per-pass file tests, Cranelift style: each `tests/filetests/<pass>/*.veil` holds a
//! `; run: <pass>` header, an input graph in the text form (constants with their values,
//! [`veil_ir::print::to_text_with_values`]), a `; expect:` line, and the graph the pass must
//! leave in the same form (so folded weights are checked too), or `; error: <message>` when the
//! pass must refuse it. The seeds are three small hand-built models (an MLP, a CNN with
//! batchnorm and max pooling, an input normalisation before a global average pool) as each
//! pass receives them in the pipeline, plus a refusal.
//! The one test parses each input, runs that single pass with the default options, verifies,
//! prints and compares. `VEIL_BLESS=1 cargo test -p veil-tests --test filetests` rewrites the
//! expected parts from what the passes produce now (review the diff).

use std::path::{Path, PathBuf};

use veil_passes::{Options, Pass};
use veil_tests::root;

const EXPECT: &str = "; expect:";

/// What running the file's pass on its input gives, in the expected part's form.
fn run(path: &Path, text: &str) -> Result<(String, String), String> {
    let head = text.lines().next().unwrap_or_default();
    let pass: Pass = head
        .strip_prefix("; run: ")
        .ok_or_else(|| format!("{}: the first line must be `; run: <pass>`", path.display()))?
        .trim()
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let folder = path.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
    if folder.as_deref() != Some(pass.name()) {
        return Err(format!("{}: runs {pass} but lives in {folder:?}", path.display()));
    }
    let input = text.split_once(&format!("\n{EXPECT}\n")).map_or(text, |(i, _)| i);
    let mut g = veil_ir::print::parse(input).map_err(|e| format!("{}: {e}", path.display()))?;
    let got = match pass.run(&mut g, &Options::default()) {
        Ok(_) => {
            veil_ir::verify(&g).map_err(|e| format!("{}: invalid IR after {pass}: {e}", path.display()))?;
            veil_ir::print::to_text_with_values(&g)
        }
        Err(e) => format!("; error: {e}\n"),
    };
    Ok((input.trim_end().to_string(), got))
}

fn files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(root().join("tests/filetests")).expect("tests/filetests exists") {
        let dir = dir.unwrap().path();
        if dir.is_dir() {
            for f in std::fs::read_dir(&dir).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|e| e == "veil") {
                    out.push(f);
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_pass_file_test() {
    let bless = std::env::var_os("VEIL_BLESS").is_some_and(|v| v == "1");
    let files = files();
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        match run(path, &text) {
            Err(e) => failures.push(e),
            Ok((input, got)) => {
                let want = text.split_once(&format!("\n{EXPECT}\n")).map(|(_, w)| w);
                if want == Some(got.as_str()) {
                    continue;
                }
                if bless {
                    std::fs::write(path, format!("{input}\n{EXPECT}\n{got}")).unwrap();
                } else {
                    failures.push(format!(
                        "{}: the pass gives\n{got}\nexpected\n{}",
                        path.display(),
                        want.unwrap_or("(no `; expect:` part)\n")
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} file tests failed (VEIL_BLESS=1 to accept):\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    // Every pass has file tests.
    for pass in Pass::ALL {
        let n =
            files.iter().filter(|f| f.parent().and_then(|p| p.file_name()).is_some_and(|n| n == pass.name())).count();
        assert!(n >= 2, "{pass} has {n} file tests");
    }
}
