//! `cargo bench -p veil-runtime --bench he`: one HE linear layer offline (the client makes its
//! key pair, once per session and parameter set, and encrypts its mask; the server answers
//! `Enc(W·r − s)` re-randomised under the client's public key, flooded and switched; the client
//! decrypts), for issue 4's two layers: a 3×3 conv 16→16 on 32×32 (padding 1) and a 784×128
//! dense layer, at ℓ = 61 and 40 (ResNet-32's ring over OT). Each step is timed on its own:
//! the server encodes its weights (`weights`), prepares the request-independent part of the
//! response (`prepare`) and answers (`answer`); a session overlaps `prepare` with the request.

// A bench binary: its tables on stdout are its output.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

/// Runs per layer; each step reports its fastest.
const REPEATS: usize = 5;

use rand::{Rng, SeedableRng};
use veil_runtime::he::pack::{ConvGeom, Tiling};
use veil_runtime::he::{ClientKey, HeClient, HeParams, HeServer};

fn main() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    println!("threads: {}", rayon::current_num_threads());
    println!(
        "\n| layer | ℓ | N × primes (response) | cts up / down | public key | bytes client→server | bytes server→client | keys | weights | encrypt | prepare | answer | per response ct | decrypt |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let layers = [
        ("conv 3×3 16→16 32×32", ConvGeom { c: 16, h: 34, w: 34, m: 16, kh: 3, kw: 3 }),
        ("dense 784→128", ConvGeom { c: 784, h: 1, w: 1, m: 128, kh: 1, kw: 1 }),
        // The ResNet-18 shape's first stage: two channels per ciphertext, 32 channel tiles.
        ("conv 3×3 64→64 64×64", ConvGeom { c: 64, h: 66, w: 66, m: 64, kh: 3, kw: 3 }),
    ];
    for ring_bits in [61u8, 40] {
        for (name, geom) in layers {
            let params = HeParams::for_layer(ring_bits, 1).expect("params");
            let tiling = Tiling::choose(geom, params.degree).expect("fits");
            let params = HeParams::for_layer(ring_bits, tiling.channel_tiles()).expect("params");
            let mask = (1u64 << ring_bits) - 1;
            let r: Vec<u64> = (0..geom.c * geom.h * geom.w).map(|_| rng.random::<u64>() & mask).collect();
            let w: Vec<i64> = (0..geom.m * geom.c * geom.kh * geom.kw).map(|_| rng.random_range(-4096..4096)).collect();
            let t = Instant::now();
            let client = HeClient::new(&params, &mut rng).unwrap();
            let pk = client.public_key(&mut rng);
            let t_key = t.elapsed();
            let key = ClientKey::parse(&params, &pk).unwrap();
            // Each step's fastest of REPEATS runs (the first run pays for allocation).
            let mut best = [Duration::MAX; 5];
            let mut keep = |i: usize, t: Instant| best[i] = best[i].min(t.elapsed());
            let (mut req, mut resp) = (Vec::new(), Vec::new());
            for _ in 0..REPEATS {
                let t = Instant::now();
                let server = HeServer::new(&params, &tiling, &w).unwrap();
                keep(0, t);
                let t = Instant::now();
                req = client.encrypt(&tiling, &r, &mut rng).unwrap();
                keep(1, t);
                let t = Instant::now();
                let prepared = server.prepare(&key, &tiling, &mut rng).unwrap();
                keep(2, t);
                let t = Instant::now();
                resp = server.answer(&key, &tiling, &req, prepared).unwrap().0;
                keep(3, t);
                let t = Instant::now();
                std::hint::black_box(client.decrypt(&tiling, &resp).unwrap());
                keep(4, t);
            }
            let [t_new, t_enc, t_prep, t_ans, t_dec] = best;
            let t_resp = t_prep + t_ans;
            let up: usize = req.iter().map(Vec::len).sum();
            let down: usize = resp.iter().map(Vec::len).sum();
            println!(
                "| {name} | {ring_bits} | {} × {} ({}) | {} / {} | {:.2} MB | {:.2} MB | {:.2} MB | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.1} ms | {:.0} ms |",
                params.degree,
                params.primes,
                params.response_primes,
                req.len(),
                resp.len(),
                pk.len() as f64 / 1e6,
                up as f64 / 1e6,
                down as f64 / 1e6,
                t_key.as_secs_f64() * 1e3,
                t_new.as_secs_f64() * 1e3,
                t_enc.as_secs_f64() * 1e3,
                t_prep.as_secs_f64() * 1e3,
                t_ans.as_secs_f64() * 1e3,
                t_resp.as_secs_f64() * 1e3 / resp.len() as f64,
                t_dec.as_secs_f64() * 1e3
            );
        }
    }
}
