//! Checks that nothing leaks (feature `test-hooks` captures transcripts and measures HE noise):
//! the client's view holds no weight value, two runs of one input look different, the server's
//! view holds no trace of the client's token ids, HE responses
//! carry noise that does not depend on the weights, secrets do not print, and the connection is
//! authenticated by the pinned certificate.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use veil_ir::plan::{attach_weights, decode_plan};
use veil_passes::Options;
use veil_runtime::exec::{client, server};
use veil_runtime::he::pack::{ConvGeom, Tiling};
use veil_runtime::he::{ClientKey, HeClient, HeParams, HeServer, WEIGHT_BITS};
use veil_runtime::net::fault::Transcript;
use veil_runtime::net::quic::{Identity, Listener, connect};
use veil_tests::{compile_bundled, root};

/// The digits CNN with exact ReLU in garbled circuits (the ReLUs over OT have their attacks in
/// the runtime's `relu_ot::attacks`), as plan (public), plan with weights, hash, and an input.
fn plan() -> (veil_ir::Graph, veil_ir::Graph, veil_ir::plan::Hash, veil_ir::Tensor) {
    let x = veil_ir::npy::read_npy(&root().join("models/inputs/digits_relu.npy")).unwrap();
    let opts =
        Options { calibration: vec![x.clone()], nonlinear: veil_passes::NonlinearChoice::Gc, ..Options::default() };
    let compiled = compile_bundled("digits_relu", opts);
    let veil_compiler::PlanFiles { plan, weights, hash } = compiled.unwrap().files.unwrap();
    let (public, h) = decode_plan(&plan).unwrap();
    let mut with_weights = public.clone();
    attach_weights(&mut with_weights, &h, &weights).unwrap();
    (public.graph, with_weights.graph, hash, x)
}

/// Runs one session; returns the client's transcript.
fn session(
    public: &veil_ir::Graph,
    private: &veil_ir::Graph,
    hash: veil_ir::plan::Hash,
    x: &veil_ir::Tensor,
) -> Transcript {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let id = Identity::generate().unwrap();
        let t = Duration::from_secs(60);
        let mut listener = Listener::bind("127.0.0.1:0".parse().unwrap(), &id, t).unwrap();
        let addr = listener.local_addr().unwrap();
        let g = private.clone();
        let server = tokio::spawn(async move {
            let mut s = listener.accept().await.unwrap().unwrap();
            let mut rng = rand_chacha::ChaCha20Rng::from_os_rng();
            server::run(&mut s, &g, &hash, &mut rng).await.unwrap();
        });
        let mut c = connect(addr, &id.cert_pem, t).await.unwrap();
        let transcript = c.capture();
        let mut rng = rand_chacha::ChaCha20Rng::from_os_rng();
        client::run(&mut c, public, &hash, std::slice::from_ref(x), &mut rng).await.unwrap();
        server.await.unwrap();
        drop(c);
        std::sync::Arc::try_unwrap(transcript).expect("the session is over")
    })
}

/// The 8-byte little-endian words a quantized weight `q` could travel as: in the ring of
/// `ell` bits and as a two's-complement `i64`.
fn encodings(q: i64, ell: u8) -> [[u8; 8]; 2] {
    [((q as u64) & ((1u64 << ell) - 1)).to_le_bytes(), q.to_le_bytes()]
}

/// Steps whose frames are public by design: the plan hash and the per-step byte counts the
/// parties exchange after the online phase (the cost model predicts them from the plan).
const PUBLIC_STEPS: [&str; 2] = ["handshake", "exchanging the traffic counts"];

#[test]
fn the_clients_view_holds_no_weight_and_two_runs_look_different() {
    let (public, private, hash, x) = plan();
    let ell = private.ring_bits.unwrap();
    let a = session(&public, &private, hash, &x).frames();
    let received: usize = a.iter().filter(|f| !f.sent).map(|f| f.payload.len()).sum();
    assert!(received > 100_000, "{received} bytes received");
    assert!(a.iter().any(|f| f.step == "exchanging the traffic counts"), "the counts are captured too");

    // Every weight and bias of magnitude ≥ 64 (smaller ones are common small integers in any
    // structured data), at every byte offset of every frame the client received or sent.
    let mut patterns = std::collections::HashSet::new();
    for (_, c) in private.consts.iter() {
        for &q in &c.qdata {
            if q.unsigned_abs() >= 64 {
                patterns.extend(encodings(q, ell));
            }
        }
    }
    assert!(patterns.len() > 500, "{} distinct weight encodings", patterns.len());
    for f in a.iter().filter(|f| !PUBLIC_STEPS.contains(&f.step.as_str())) {
        let p = &f.payload;
        let hits: Vec<usize> = (0..p.len().saturating_sub(7)).filter(|&i| patterns.contains(&p[i..i + 8])).collect();
        let dir = if f.sent { "sent" } else { "received" };
        assert!(hits.is_empty(), "weight values in a frame the client {dir} ({}) at offsets {hits:?}", f.step);
    }

    // The same input again: the same frames and sizes, different bytes (fresh masks, labels,
    // keys, OTs).
    let b = session(&public, &private, hash, &x).frames();
    assert_eq!(a.len(), b.len());
    let (mut blocks, mut same) = (0, 0);
    for (f, g) in a.iter().zip(&b) {
        assert_eq!((f.sent, &f.step, f.payload.len()), (g.sent, &g.step, g.payload.len()));
        if PUBLIC_STEPS.contains(&f.step.as_str()) {
            continue;
        }
        blocks += f.payload.len().div_ceil(16);
        same += f.payload.chunks(16).zip(g.payload.chunks(16)).filter(|(p, q)| p == q).count();
    }
    assert!(same * 1000 < blocks, "{same} of {blocks} 16-byte blocks repeat across runs");
}

/// Mean of `xs`.
fn mean(xs: &[usize]) -> f64 {
    xs.iter().sum::<usize>() as f64 / xs.len() as f64
}

#[test]
fn he_responses_carry_the_same_noise_whatever_the_weights() {
    // A dense layer 512 → 64; two weight sets: all zero, and every weight at the bound.
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(21);
    let ring_bits = 40u8;
    let geom = ConvGeom { c: 512, h: 1, w: 1, m: 64, kh: 1, kw: 1 };
    let n = HeParams::for_layer(ring_bits, 1).unwrap().degree;
    let tiling = Tiling::choose(geom, n).unwrap();
    let params = HeParams::for_layer(ring_bits, tiling.channel_tiles()).unwrap();
    let top = (1i64 << WEIGHT_BITS) - 1;
    let zero = vec![0i64; geom.m * geom.c];
    let big: Vec<i64> = (0..geom.m * geom.c).map(|_| if rng.random::<bool>() { top } else { -top }).collect();
    let client = HeClient::new(&params, &mut rng).unwrap();
    let key = ClientKey::parse(&params, &client.public_key(&mut rng)).unwrap();
    let mut noise = Vec::new();
    for w in [&zero, &big] {
        let server = HeServer::new(&params, &tiling, w).unwrap();
        let mut bits = Vec::new();
        for _ in 0..12 {
            let r: Vec<u64> = (0..geom.c).map(|_| rng.random::<u64>() & ((1 << ring_bits) - 1)).collect();
            let req = client.encrypt(&tiling, &r, &mut rng).unwrap();
            let (resp, _) = server.respond(&key, &tiling, &req, &mut rng).unwrap();
            bits.extend(client.noise_bits(&resp).unwrap());
        }
        noise.push(bits);
    }
    let (m0, m1) = (mean(&noise[0]), mean(&noise[1]));
    // Without the flooding noise the responses give the weights away: their noise means were
    // 1 bit (zero weights) and 9 bits (weights at the bound) when flooding was taken out.
    // Flooded, the responses are indistinguishable by their noise.
    assert!((m0 - m1).abs() <= 1.0, "mean noise bits: zero weights {m0:.2}, weights at the bound {m1:.2}");
    let range = |v: &[usize]| (*v.iter().min().unwrap(), *v.iter().max().unwrap());
    let ((lo0, hi0), (lo1, hi1)) = (range(&noise[0]), range(&noise[1]));
    assert!(lo0.abs_diff(lo1) <= 2 && hi0.abs_diff(hi1) <= 2, "noise ranges {lo0}..{hi0} vs {lo1}..{hi1}");
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let params = HeParams::for_layer(40, 1).unwrap();
    let client = HeClient::new(&params, &mut rng).unwrap();
    let geom = ConvGeom { c: 4, h: 1, w: 1, m: 2, kh: 1, kw: 1 };
    let tiling = Tiling::choose(geom, params.degree).unwrap();
    let server = HeServer::new(&params, &tiling, &[12345, -2, 3, 4, 5, 6, -7, 8]).unwrap();
    let (_, private, _, _) = plan();
    let (_, weights) = private.consts.iter().find(|(_, c)| c.qdata.iter().any(|q| q.unsigned_abs() >= 1000)).unwrap();
    let q = weights.qdata.iter().find(|q| q.unsigned_abs() >= 1000).unwrap();
    let f = weights.data.iter().find(|v| v.abs() > 0.1).map(|v| v.to_string()).unwrap_or_else(|| q.to_string());
    for (text, redacted) in [
        (format!("{client:?}"), true),
        (format!("{server:?}"), true),
        (format!("{weights:?}"), false),
        (format!("{private:?}"), false),
    ] {
        assert!(!redacted || text.contains("redacted"), "{text}");
        assert!(!text.contains("12345"), "{text}");
        assert!(!text.contains(&q.to_string()) && !text.contains(&f), "a weight prints: {text}");
    }
    let id = Identity::generate().unwrap();
    let text = format!("{id:?}");
    assert!(!text.contains("PRIVATE KEY") && !text.contains(&id.key_pem[40..80]), "{text}");
}

#[test]
fn the_client_refuses_a_server_without_the_pinned_certificate() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (real, impostor) = (Identity::generate().unwrap(), Identity::generate().unwrap());
        let t = Duration::from_secs(5);
        let mut listener = Listener::bind("127.0.0.1:0".parse().unwrap(), &impostor, t).unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { while listener.accept().await.is_some() {} });
        let err = connect(addr, &real.cert_pem, t).await.expect_err("an unpinned server is refused");
        let msg = err.to_string();
        assert!(msg.starts_with("connection:"), "{msg}");

        // Plaintext to the server's port: no session comes of it, and real clients still connect.
        let mut listener = Listener::bind("127.0.0.1:0".parse().unwrap(), &real, t).unwrap();
        let addr = listener.local_addr().unwrap();
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        udp.send_to(b"GET / HTTP/1.1\r\n\r\nhello in plaintext", addr).await.unwrap();
        let mut buf = [0u8; 2048];
        let reply = tokio::time::timeout(Duration::from_millis(500), udp.recv_from(&mut buf)).await;
        assert!(reply.is_err(), "the server answered plaintext");
        let accepted = tokio::spawn(async move { listener.accept().await.map(|s| s.map(|s| s.peer)) });
        let _c = connect(addr, &real.cert_pem, t).await.expect("the pinned certificate connects");
        let peer = accepted.await.unwrap().expect("a session").expect("the real client's");
        assert!(peer.ip().is_loopback());
    });
}

/// Token ids (`models/attention/torch_tokens_dynamo.onnx`, a lookup and a padding mask on the
/// client's plaintext): the server, holding every frame the client sent, tries to read the
/// client's one-hot rows or its mask, which in the clear are runs of zero words (49 of each 50
/// columns, most of a mask row) broken by the encodings of 1. It finds neither: what the client
/// sent has no 8-byte run of zeros and no encoding of 1 where the ids would put them, and two
/// different inputs give frames of the same sizes.
#[test]
fn the_servers_view_holds_no_trace_of_the_clients_token_ids() {
    let dir = root().join("models/attention");
    let samples = |ids: &[i64]| veil_ir::Tensor::new(vec![1, 8], ids.iter().map(|&i| i as f32).collect()).unwrap();
    let ids = veil_ir::npy::read_npz(&dir.join("torch_tokens_calib.npz"), "x").unwrap().into_reals().unwrap();
    let calibration = veil_passes::range::samples(&ids, &[1, 8]).unwrap();
    let opts = Options { calibration, ..Options::default() };
    let compiled = compile_bundled("attention/torch_tokens_dynamo", opts).unwrap();
    let veil_compiler::PlanFiles { plan, weights, hash } = compiled.files.unwrap();
    let (public, h) = decode_plan(&plan).unwrap();
    let mut private = public.clone();
    attach_weights(&mut private, &h, &weights).unwrap();
    let (public, private) = (public.graph, private.graph);
    let mut sizes = Vec::new();
    for ids in [[7i64, 31, 2, 49, 12, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1]] {
        let frames = session(&public, &private, hash, &samples(&ids)).frames();
        let sent: Vec<_> = frames.iter().filter(|f| f.sent && !PUBLIC_STEPS.contains(&f.step.as_str())).collect();
        let zero_runs: usize = sent.iter().map(|f| f.payload.windows(8).filter(|w| w == &[0; 8]).count()).sum();
        assert_eq!(zero_runs, 0, "8-byte runs of zeros in what the client sent for ids {ids:?}");
        // The shares of the one-hot rows and of the mask: as ring words, none is small (the
        // plaintext would be all 0 and 1), and the smallest word of each row of 50 is not at
        // the id (the plaintext's 49 zeros would point the server at it).
        let shared: Vec<u64> = sent
            .iter()
            .filter(|f| f.step == "sharing the input")
            .flat_map(|f| f.payload.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().unwrap())))
            .collect();
        assert_eq!(shared.len(), 8 * 50 + 8, "the one-hot rows and the mask");
        let small = shared.iter().filter(|&&w| w < 1 << 20).count();
        assert_eq!(small, 0, "small ring words among the client's shares for ids {ids:?}");
        let rows = sent.iter().find(|f| f.step == "sharing the input" && f.payload.len() == 400 * 8).unwrap();
        let rows: Vec<u64> = rows.payload.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().unwrap())).collect();
        let guessed = rows
            .chunks(50)
            .zip(&ids)
            .filter(|(row, id)| row.iter().enumerate().min_by_key(|(_, w)| **w).unwrap().0 as i64 == **id)
            .count();
        assert!(guessed <= 3, "the server guessed {guessed} of 8 ids from the shares");
        sizes.push(sent.iter().map(|f| (f.step.clone(), f.payload.len())).collect::<Vec<_>>());
    }
    assert_eq!(sizes[0], sizes[1]);
}
