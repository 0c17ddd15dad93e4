//! The two-process harness of the network benches: the bench binary listens on loopback and
//! re-executes itself as the client (`VEIL_BENCH_PEER`, `VEIL_BENCH_CERT`), and both processes
//! run `party` on their QUIC session, 2 tokio workers each.

use std::time::Duration;

use veil_runtime::net::quic::{Identity, Listener, Session, connect};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Runs `party(session, is_client)` in this process and in a child process as its peer;
/// `server_first` runs in the server process once connected, before its party.
pub fn run<F, Fut>(party: F, server_first: impl FnOnce())
where
    F: FnOnce(Session, bool) -> Fut,
    Fut: Future<Output = ()>,
{
    if let (Ok(addr), Ok(cert)) = (std::env::var("VEIL_BENCH_PEER"), std::env::var("VEIL_BENCH_CERT")) {
        rt().block_on(async {
            let s = connect(addr.parse().unwrap(), &cert, Duration::from_secs(60)).await.unwrap();
            party(s, true).await;
        });
        return;
    }
    let id = Identity::generate().unwrap();
    rt().block_on(async {
        let mut l = Listener::bind("127.0.0.1:0".parse().unwrap(), &id, Duration::from_secs(60)).unwrap();
        let addr = l.local_addr().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .env("VEIL_BENCH_PEER", addr.to_string())
            .env("VEIL_BENCH_CERT", &id.cert_pem)
            .spawn()
            .unwrap();
        let s = l.accept().await.unwrap().unwrap();
        server_first();
        party(s, false).await;
        child.wait().unwrap();
    });
}
