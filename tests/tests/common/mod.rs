//! Shared by the two-party tests: one plan run between a server task and a client task over
//! real QUIC on loopback.

use std::time::Duration;

use rand::SeedableRng;
use veil_ir::plan::{attach_weights, decode_plan, encode};
use veil_runtime::exec::{Stats, client, server};
use veil_runtime::net::quic::{Identity, Listener, connect};
use veil_runtime::proto::he_weights::EncodedWeights;

/// Runs a plan between a server task and a client task; returns the client's outputs and both
/// parties' stats.
pub fn two_party(g: &veil_ir::Graph, x: &veil_ir::Tensor) -> (Vec<veil_ir::Tensor>, Stats, Stats) {
    two_party_encoded(g, x, &EncodedWeights::default())
}

/// [`two_party`] with a server that takes the HE kernels in `encoded` (encoded once, on the
/// plan `g` with its weights) instead of encoding them in the session.
#[allow(dead_code)]
pub fn two_party_encoded(
    g: &veil_ir::Graph,
    x: &veil_ir::Tensor,
    encoded: &EncodedWeights,
) -> (Vec<veil_ir::Tensor>, Stats, Stats) {
    let encoded = encoded.clone();
    let (plan, weights, hash) = encode(g).unwrap();
    let (public, h) = decode_plan(&plan).unwrap();
    let mut with_weights = public.clone();
    attach_weights(&mut with_weights, &h, &weights).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let id = Identity::generate().unwrap();
        let t = Duration::from_secs(60);
        let mut listener = Listener::bind("127.0.0.1:0".parse().unwrap(), &id, t).unwrap();
        let addr = listener.local_addr().unwrap();
        let sg = with_weights.graph;
        let server = tokio::spawn(async move {
            let mut s = listener.accept().await.unwrap().unwrap();
            let mut rng = rand_chacha::ChaCha20Rng::from_os_rng();
            server::run_with(&mut s, &sg, &hash, &encoded, &mut rng).await.unwrap()
        });
        let mut c = connect(addr, &id.cert_pem, t).await.unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::from_os_rng();
        let out = client::run(&mut c, &public.graph, &h, std::slice::from_ref(x), &mut rng).await.unwrap();
        let server_stats = server.await.unwrap();
        (out.outputs, out.stats, server_stats)
    })
}
