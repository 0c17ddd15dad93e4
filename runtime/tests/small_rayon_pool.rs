//! A process whose rayon global pool something else built first, at one thread per core, would
//! deadlock OT sessions under load (the OT library's jobs block on the network while holding a
//! rayon thread): found when the compiler's parallel loops built the pool before a test ran both
//! parties. A session now refuses to start there, with a message naming the fix.

use std::time::Duration;

use veil_runtime::net::quic::{Identity, Listener, connect};

#[test]
fn a_session_refuses_a_rayon_pool_too_small_for_blocking_ot_jobs() {
    rayon::ThreadPoolBuilder::new().num_threads(2).build_global().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let id = Identity::generate().unwrap();
        let t = Duration::from_secs(3);
        let mut listener = Listener::bind("127.0.0.1:0".parse().unwrap(), &id, t).unwrap();
        let addr = listener.local_addr().unwrap();
        let server =
            tokio::spawn(async move { listener.accept().await.map(|r| r.map(|_| ()).map_err(|e| e.to_string())) });
        let err = connect(addr, &id.cert_pem, t).await.map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("rayon's global thread pool has 2 threads"), "{err}");
        assert!(err.contains("call veil_runtime::init_threads"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        server.abort();
    });
}
