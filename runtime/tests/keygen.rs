//! `veil keygen` as another local user would attack it: symbolic links planted at every name
//! the old code wrote through (its temporary names were `.server.key.<pid>.tmp`), a permissive
//! umask, an existing key pair, a link at the key's own path. Found by review (issue 14).

#![cfg(unix)]

use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Runs `veil keygen --out dir [extra]` under umask 000. Before the binary starts, `plant`
/// gets its process id (`exec` keeps the shell's), so it can plant files at pid-derived names.
fn keygen(dir: &Path, extra: &[&str], plant: impl FnOnce(u32)) -> Output {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"read go && umask 000 && exec "$@""#)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_veil"))
        .args(["keygen", "--out"])
        .arg(dir)
        .args(extra)
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
fn keygen_ignores_planted_links_and_writes_the_key_0600_under_umask_000() {
    let s = tempfile::tempdir().unwrap();
    let out = s.path().join("keys");
    std::fs::create_dir_all(&out).unwrap();
    let victim = s.path().join("attacker-readable");
    std::fs::write(&victim, b"untouched").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = keygen(&out, &[], |pid| {
        for name in ["server.key", "server.crt"] {
            symlink(&victim, out.join(format!(".{name}.{pid}.tmp"))).unwrap();
        }
    });
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&victim).unwrap(), b"untouched", "a planted link was followed");
    let key = std::fs::read_to_string(out.join("server.key")).unwrap();
    assert!(key.contains("PRIVATE KEY"), "{key}");
    assert_eq!(mode(&out.join("server.key")), 0o600, "the key's mode under umask 000");
    assert_eq!(mode(&out.join("server.crt")), 0o644, "others may read the certificate, not change it");

    // A folder keygen creates itself is private.
    let fresh = s.path().join("new/keys");
    let o = keygen(&fresh, &[], |_| {});
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&fresh.join("server.key")), 0o600);
}

#[test]
fn keygen_refuses_to_replace_a_key_pair_without_force() {
    let s = tempfile::tempdir().unwrap();
    let first = keygen(s.path(), &[], |_| {});
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let (key, crt) = (s.path().join("server.key"), s.path().join("server.crt"));
    let before = (std::fs::read(&key).unwrap(), std::fs::read(&crt).unwrap());
    let again = keygen(s.path(), &[], |_| {});
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!((std::fs::read(&key).unwrap(), std::fs::read(&crt).unwrap()), before, "the pair was changed");
    // A key alone (its certificate lost) is not replaced either.
    std::fs::remove_file(&crt).unwrap();
    assert_eq!(keygen(s.path(), &[], |_| {}).status.code(), Some(1));
    assert_eq!(std::fs::read(&key).unwrap(), before.0);

    let forced = keygen(s.path(), &["--force"], |_| {});
    assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
    assert_ne!(std::fs::read(&key).unwrap(), before.0, "--force makes a new key");
    assert_eq!(mode(&key), 0o600);
}

#[test]
fn keygen_never_writes_the_key_through_a_link_at_its_path() {
    let s = tempfile::tempdir().unwrap();
    let out = s.path().join("keys");
    std::fs::create_dir_all(&out).unwrap();
    let victim = s.path().join("elsewhere.pem");
    std::fs::write(&victim, b"untouched").unwrap();
    symlink(&victim, out.join("server.key")).unwrap();
    for extra in [&[][..], &["--force"][..]] {
        let o = keygen(&out, extra, |_| {});
        assert!(!o.status.success(), "keygen {extra:?} wrote through a link");
        assert!(String::from_utf8_lossy(&o.stderr).starts_with("error: "), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
    assert!(std::fs::symlink_metadata(out.join("server.key")).unwrap().file_type().is_symlink());
    assert!(!out.join("server.crt").exists(), "no certificate without its key");
}
