//! Files `veilc` writes, attacked as another local user or misused as a new user would (issues
//! 14 and 18): the weights are the server's secret (mode 0600 under any umask, never written
//! through a planted link); `-o -` is standard output; an output path that is a symbolic link
//! (`/dev/stdout`, or the user's own) is written through, not replaced.

#![cfg(unix)]

use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Runs `veilc args` under umask 000 in `cwd`; `plant` gets the process id first (the shell
/// `exec`s veilc, which keeps it).
fn veilc(cwd: &Path, args: &[&str], plant: impl FnOnce(u32)) -> Output {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"read go && umask 000 && exec "$@""#)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_veilc"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    plant(child.id());
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn compile_writes_the_weights_0600_and_never_through_a_planted_link() {
    let s = tempfile::tempdir().unwrap();
    let out = s.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let victim = s.path().join("attacker-readable");
    std::fs::write(&victim, b"untouched").unwrap();
    let model = models().join("digits_relu.onnx");
    // The old code's temporary names were `.<file>.<pid>.tmp`, opened following links.
    let o = veilc(s.path(), &["compile", model.to_str().unwrap(), "-o", "out"], |pid| {
        for name in ["digits_relu.plan", "digits_relu.weights"] {
            symlink(&victim, out.join(format!(".{name}.{pid}.tmp"))).unwrap();
        }
    });
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&victim).unwrap(), b"untouched", "a planted link was followed");
    assert_eq!(mode(&out.join("digits_relu.weights")), 0o600, "the weights under umask 000");
    assert!(out.join("digits_relu.plan").is_file());

    // A link where the weights go: refused, its target untouched, the link kept.
    std::fs::remove_file(out.join("digits_relu.weights")).unwrap();
    symlink(&victim, out.join("digits_relu.weights")).unwrap();
    let o = veilc(s.path(), &["compile", model.to_str().unwrap(), "-o", "out"], |_| {});
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("digits_relu.weights") && err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
    assert!(std::fs::symlink_metadata(out.join("digits_relu.weights")).unwrap().file_type().is_symlink());
}

#[test]
fn dash_is_standard_output_and_a_link_is_written_through() {
    let s = tempfile::tempdir().unwrap();
    let model = models().join("mlp.onnx");
    let m = model.to_str().unwrap();
    let o = veilc(s.path(), &["ir", m, "-o", "-"], |_| {});
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("graph \"mlp\""));
    assert!(!s.path().join("-").exists(), "wrote a file named -");

    // The user's own link (and /dev/stdout, a link to the process's descriptor) stays a link.
    let real = s.path().join("real.txt");
    std::fs::write(&real, b"old").unwrap();
    symlink(&real, s.path().join("link.txt")).unwrap();
    let o = veilc(s.path(), &["ir", m, "-o", "link.txt"], |_| {});
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::symlink_metadata(s.path().join("link.txt")).unwrap().file_type().is_symlink(), "link replaced");
    assert!(std::fs::read_to_string(&real).unwrap().starts_with("graph \"mlp\""));
    let o = veilc(s.path(), &["ir", m, "-o", "/dev/stdout"], |_| {});
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("graph \"mlp\""));
    assert!(std::fs::symlink_metadata("/dev/stdout").unwrap().file_type().is_symlink());
}
