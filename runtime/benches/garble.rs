//! `cargo bench -p veil-runtime --bench garble`: AND gates per second garbled and evaluated for
//! the exact-ReLU circuit (ℓ = 61, f = 12) and Circa's sign test, in batches: one instance at a
//! time and in lockstep lanes on one core, and lockstep on all cores.
//! Targets (issue 4): ≥ 10 M ANDs/s garbled and ≥ 15 M evaluated per core.

use std::time::Instant;

use rand::SeedableRng;
use veil_ir::circuit::{Circuit, relu_trunc_mask, sign_test};
use veil_runtime::garble::{Batch, Block, Delta, FixedKeyHash, aes_ni_detected, evaluate, garble, random_labels};

/// (garble, evaluate) rates in M ANDs/s.
fn lanes_rates(h: &FixedKeyHash, c: &Circuit, delta: Delta, inputs: &[Vec<Block>]) -> (f64, f64) {
    let ands = (inputs.len() * c.and_count()) as f64;
    let batch = Batch::new(c, 0);
    let t = Instant::now();
    let garbled = batch.garble(h, delta, inputs);
    let g = ands / t.elapsed().as_secs_f64() / 1e6;
    let instances: Vec<(&[[Block; 2]], Vec<Block>)> =
        garbled.iter().zip(inputs).map(|(g, x)| (g.tables.as_slice(), x.clone())).collect();
    let t = Instant::now();
    std::hint::black_box(batch.evaluate(h, &instances));
    (g, ands / t.elapsed().as_secs_f64() / 1e6)
}

fn main() {
    let h = FixedKeyHash::default();
    let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(1);
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a one-thread pool");
    println!("AES-NI detected: {}; cores for the all-core rows: {}", aes_ni_detected(), rayon::current_num_threads());
    println!(
        "\n| circuit | ANDs | table bytes | garble 1 core: one at a time / lockstep | evaluate 1 core: one at a time / lockstep | garble, all cores | evaluate, all cores |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, c, n) in [
        ("exact ReLU ℓ=61 f=12", relu_trunc_mask(61, 12), 20_000usize),
        ("Circa sign test, 42 bits", sign_test(42), 80_000),
    ] {
        let delta = Delta::random(&mut rng);
        let inputs: Vec<Vec<Block>> = (0..n).map(|_| random_labels(&mut rng, c.input_wires() as usize)).collect();
        let ands = (n * c.and_count()) as f64;
        let t = Instant::now();
        let garbled: Vec<_> =
            inputs.iter().enumerate().map(|(i, x)| garble(&h, &c, delta, x, (i * c.and_count()) as u64)).collect();
        let g_scalar = ands / t.elapsed().as_secs_f64() / 1e6;
        let t = Instant::now();
        for (i, (g, x)) in garbled.iter().zip(&inputs).enumerate() {
            std::hint::black_box(evaluate(&h, &c, &g.tables, x, (i * c.and_count()) as u64));
        }
        let e_scalar = ands / t.elapsed().as_secs_f64() / 1e6;
        let (g1, e1) = one.install(|| lanes_rates(&h, &c, delta, &inputs));
        let (gp, ep) = lanes_rates(&h, &c, delta, &inputs);
        println!(
            "| {name} | {} | {} | {g_scalar:.1} / **{g1:.1}** M/s ({:.2}×) | {e_scalar:.1} / **{e1:.1}** M/s ({:.2}×) | {gp:.1} M/s | {ep:.1} M/s |",
            c.and_count(),
            32 * c.and_count(),
            g1 / g_scalar,
            e1 / e_scalar,
        );
    }
}
