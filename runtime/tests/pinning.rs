//! Certificate pinning trusts exactly the pinned certificate: an impostor server whose
//! `veil-server` certificate a CA issued is refused by a client that pins another certificate,
//! even when that CA is trusted through `SSL_CERT_FILE` or `SSL_CERT_DIR` (real `veil` processes,
//! since the environment variables are read by the TLS library).
//!
//! Found in issue 14: the pinned certificate used to be *added* to s2n-tls's default trust store,
//! which also loads the system CAs, and a whole inference ran against the impostor.

// Says on stderr which attack it could not try (no openssl).
#![allow(clippy::print_stderr)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{Workdir, client_command, compile, root, start_server};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use veil_passes::Options;

/// Writes a CA (`ca.pem`, and `certs/<subject hash>.0` when `openssl` can name it) and a
/// CA-issued `veil-server` certificate as `server.crt` / `server.key` in `dir`. Returns whether
/// the hashed certificate folder exists.
fn impostor(dir: &Path) -> bool {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(DnType::CommonName, "Veil test root CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["veil-server".to_string()]).unwrap().signed_by(&key, &ca).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.crt"), leaf.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    // OpenSSL-style certificate folders find a CA by its subject hash.
    let Ok(out) = Command::new("openssl").args(["x509", "-hash", "-noout", "-in"]).arg(dir.join("ca.pem")).output()
    else {
        return false;
    };
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || hash.is_empty() {
        return false;
    }
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    std::fs::copy(dir.join("ca.pem"), dir.join("certs").join(format!("{hash}.0"))).unwrap();
    true
}

#[test]
fn a_client_pinning_another_certificate_refuses_a_ca_issued_impostor() {
    // The client's folder: the plan and the certificate it pins (from `veil keygen`).
    let mine = Workdir::new("pin-client");
    compile("mlp", &mine.0, &Options { input_bound: 4.0, ..Options::default() });
    // The impostor's folder: the same plan, a CA-issued certificate.
    let theirs = Workdir::new("pin-impostor");
    for f in ["mlp.plan", "mlp.weights"] {
        std::fs::copy(mine.0.join(f), theirs.0.join(f)).unwrap();
    }
    let has_dir = impostor(&theirs.0);
    let server = start_server(&theirs.0, "mlp", 1);
    let input = root().join("models/inputs/mlp.npy");

    let mut attacks = vec![("SSL_CERT_FILE", theirs.0.join("ca.pem"))];
    if has_dir {
        attacks.push(("SSL_CERT_DIR", theirs.0.join("certs")));
    } else {
        eprintln!("no openssl to name a certificate folder: SSL_CERT_DIR not tried");
    }
    for (var, path) in attacks {
        let out = client_command(&mine.0, "mlp", &server.1, &input)
            .args(["--timeout", "10"])
            .env(var, &path)
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!stdout.contains("prediction"), "{var}: an inference ran against the impostor: {stdout}");
        assert_eq!(out.status.code(), Some(2), "{var}: {stderr}");
        assert!(stderr.contains("connecting to"), "{var}: {stderr}");
    }

    // Control: the impostor's server works, and pinning its own (CA-issued) certificate is
    // accepted, so the refusals above came from pinning.
    let out = client_command(&theirs.0, "mlp", &server.1, &input).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("prediction"));
}
