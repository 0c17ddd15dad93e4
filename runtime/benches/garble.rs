//! `cargo bench -p veil-runtime --bench garble`: AND gates per second garbled and evaluated for
//! the exact-ReLU circuit (ℓ = 61, f = 12) and Circa's sign test, in batches: one instance at a
//! time and in lockstep lanes on one core (per CPU-second of the working thread), and lockstep
//! on all cores (per wall-second).
//! Targets (issue 4): ≥ 10 M ANDs/s garbled and ≥ 15 M evaluated per core.
//!
//! Four hashes run through the same engine, interleaved, best of [`REPS`] runs each, so their
//! ratio is measured under the same machine load (issue 14): the runtime's TMMO (on VAES-512
//! where the CPU has it, else on VAES-256), the same TMMO through the `aes` crate (AES-NI; the runtime's before
//! issue 17), the old fixed-key hash it replaced (not tweakable; kept here only to measure), and
//! EMP's re-keyed MMO (MITCCRH, one AES key schedule per half gate, eight expanded side by side
//! with AES-NI as EMP's `AES_opt_key_schedule` does; x86-64 only).
//!
//! First, the two garbling schemes side by side on the exact ReLU (issue 17): half-gates and
//! three halves (`garble::three_halves`), both under the runtime's TMMO, interleaved, with their
//! table bytes per AND. `VEIL_BENCH_SCHEMES_ONLY=1` stops after that table.

// A bench binary: its tables on stdout are its output.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use rand::{RngCore, SeedableRng};
use rayon::prelude::*;
use veil_ir::circuit::{Circuit, relu_trunc_mask, sign_test};
use veil_runtime::garble::{
    Batch, Block, Delta, HashKey, LANES, Tmmo, TweakableHash, aes_ni_detected, evaluate, garble, random_labels,
    three_halves, vaes_detected, vaes256_detected,
};

/// Runs per hash; the best counts (other processes share the machine).
const REPS: usize = 3;

/// The hash Veil used before issue 14, as it was: `π(σ(x) ⊕ i) ⊕ σ(x) ⊕ i` under a fixed key.
struct OldFixedKey(Aes128);

impl OldFixedKey {
    fn new() -> Self {
        let key = [0x24, 0x3f, 0x6a, 0x88, 0x85, 0xa3, 0x08, 0xd3, 0x13, 0x19, 0x8a, 0x2e, 0x03, 0x70, 0x73, 0x44];
        Self(Aes128::new(&key.into()))
    }
}

#[inline(always)]
fn sigma(x: Block) -> Block {
    let (hi, lo) = ((x.0 >> 64) as u64, x.0 as u64);
    Block((((hi ^ lo) as u128) << 64) | hi as u128)
}

impl TweakableHash for OldFixedKey {
    #[inline]
    fn hash_many<const N: usize>(&self, xs: &mut [Block; N], tweaks: [u128; N]) {
        let mut pre = [Block::ZERO; N];
        let mut blocks = [GenericArray::default(); N];
        for k in 0..N {
            pre[k] = sigma(xs[k]) ^ Block(tweaks[k]);
            blocks[k] = GenericArray::from(pre[k].to_bytes());
        }
        self.0.encrypt_blocks(&mut blocks);
        for k in 0..N {
            xs[k] = Block::from_bytes(blocks[k].into()) ^ pre[k];
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod mitccrh {
    //! `H(x, i) = π_{s ⊕ i}(σ(x)) ⊕ σ(x)` for a random start point `s`: a fresh AES key per
    //! tweak (per half gate). Blocks with equal tweaks (the garbler's two labels of one wire)
    //! share one key schedule.
    use super::{Block, TweakableHash, sigma};
    use std::arch::x86_64::*;

    pub struct Mitccrh {
        pub start: u128,
    }

    /// One round of the AES-128 key schedule with `aesenclast` (Gueron's trick: rotate and
    /// broadcast the last word with a shuffle; `aesenclast` does SubBytes and adds `rcon`).
    #[inline]
    #[target_feature(enable = "aes,ssse3")]
    fn next_round_key(k: __m128i, rcon: i32) -> __m128i {
        let t = _mm_shuffle_epi8(k, _mm_set1_epi32(0x0c0f0e0d));
        let t = _mm_aesenclast_si128(t, _mm_set1_epi32(rcon));
        let mut k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
        k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
        k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
        _mm_xor_si128(k, t)
    }

    #[inline]
    #[target_feature(enable = "sse2")]
    fn load(x: Block) -> __m128i {
        _mm_set_epi64x((x.0 >> 64) as i64, x.0 as i64)
    }

    #[inline]
    #[target_feature(enable = "sse4.1")]
    fn store(x: __m128i) -> Block {
        let (hi, lo) = (_mm_extract_epi64::<1>(x) as u64, _mm_extract_epi64::<0>(x) as u64);
        Block(u128::from(hi) << 64 | u128::from(lo))
    }

    /// Encrypts `P` consecutive blocks under each of the `K` keys, expanding the keys round by
    /// round alongside the encryption.
    #[target_feature(enable = "aes,ssse3,sse4.1")]
    fn encrypt_multi_key<const K: usize, const P: usize>(keys: &[u128], blocks: &mut [Block]) {
        const RCON: [i32; 10] = [1, 2, 4, 8, 16, 32, 64, 128, 0x1b, 0x36];
        let mut k = [_mm_setzero_si128(); K];
        let mut b = [[_mm_setzero_si128(); P]; K];
        for j in 0..K {
            k[j] = load(Block(keys[j]));
            for p in 0..P {
                b[j][p] = _mm_xor_si128(load(blocks[P * j + p]), k[j]);
            }
        }
        for (r, &rcon) in RCON.iter().enumerate() {
            for kj in k.iter_mut() {
                *kj = next_round_key(*kj, rcon);
            }
            for (bj, &kj) in b.iter_mut().zip(&k) {
                for x in bj.iter_mut() {
                    *x = if r < 9 { _mm_aesenc_si128(*x, kj) } else { _mm_aesenclast_si128(*x, kj) };
                }
            }
        }
        for j in 0..K {
            for p in 0..P {
                blocks[P * j + p] = store(b[j][p]);
            }
        }
    }

    /// `blocks[P·j..P·j + P]` encrypted under `keys[j]`, eight keys side by side.
    fn encrypt<const P: usize>(keys: &[u128], blocks: &mut [Block]) {
        for (ks, bs) in keys.chunks(8).zip(blocks.chunks_mut(8 * P)) {
            // SAFETY: the bench runs only where AES-NI (and SSE4.1) is detected (checked in `main`).
            unsafe {
                match ks.len() {
                    8 => encrypt_multi_key::<8, P>(ks, bs),
                    2 => encrypt_multi_key::<2, P>(ks, bs),
                    _ => ks.iter().zip(bs.chunks_mut(P)).for_each(|(k, b)| encrypt_multi_key::<1, P>(&[*k], b)),
                }
            }
        }
    }

    /// The multi-key AES above agrees with the `aes` crate.
    pub fn self_check() {
        use aes::Aes128;
        use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
        let keys: [u128; 8] = std::array::from_fn(|j| 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100 ^ (j as u128) << 77);
        let mut blocks: [Block; 16] = std::array::from_fn(|j| Block((0x1234_5678_9abc_def0 * (j as u128 + 1)) << 13));
        let want: Vec<Block> = blocks
            .iter()
            .enumerate()
            .map(|(j, x)| {
                let mut b = GenericArray::from(x.to_bytes());
                Aes128::new(&keys[j / 2].to_le_bytes().into()).encrypt_block(&mut b);
                Block::from_bytes(b.into())
            })
            .collect();
        encrypt::<2>(&keys, &mut blocks);
        assert!(blocks.as_slice() == want.as_slice(), "multi-key AES differs from the aes crate");
    }

    impl TweakableHash for Mitccrh {
        #[inline]
        fn hash_many<const N: usize>(&self, xs: &mut [Block; N], tweaks: [u128; N]) {
            let paired = N.is_multiple_of(2) && (0..N / 2).all(|m| tweaks[2 * m] == tweaks[2 * m + 1]);
            let pre: [Block; N] = std::array::from_fn(|k| sigma(xs[k]));
            let mut out = pre;
            let mut keys = [0u128; N];
            if paired {
                for m in 0..N / 2 {
                    keys[m] = self.start ^ tweaks[2 * m];
                }
                encrypt::<2>(&keys[..N / 2], &mut out);
            } else {
                for k in 0..N {
                    keys[k] = self.start ^ tweaks[k];
                }
                encrypt::<1>(&keys, &mut out);
            }
            for k in 0..N {
                xs[k] = out[k] ^ pre[k];
            }
        }
    }
}

/// Garble and evaluate rates in M ANDs/s: one instance at a time and lockstep on one core,
/// lockstep on all cores.
#[derive(Clone, Copy, Default)]
struct Rates {
    g_scalar: f64,
    e_scalar: f64,
    g1: f64,
    e1: f64,
    gp: f64,
    ep: f64,
}

impl Rates {
    fn best(self, o: Rates) -> Rates {
        Rates {
            g_scalar: self.g_scalar.max(o.g_scalar),
            e_scalar: self.e_scalar.max(o.e_scalar),
            g1: self.g1.max(o.g1),
            e1: self.e1.max(o.e1),
            gp: self.gp.max(o.gp),
            ep: self.ep.max(o.ep),
        }
    }
}

/// How a rate's seconds are counted.
#[derive(Clone, Copy)]
enum Clock {
    /// CPU time of the calling thread (Linux `/proc/thread-self/schedstat`; wall time where it
    /// is missing): steadier than wall time when other processes share the cores.
    ThreadCpu,
    Wall,
}

impl Clock {
    fn seconds(self) -> f64 {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let wall = || START.get_or_init(Instant::now).elapsed().as_secs_f64();
        match self {
            Clock::Wall => wall(),
            Clock::ThreadCpu => std::fs::read_to_string("/proc/thread-self/schedstat")
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .map_or_else(wall, |ns| ns as f64 / 1e9),
        }
    }

    /// `f`'s result and its seconds on this clock.
    fn time<T>(self, f: impl FnOnce() -> T) -> (T, f64) {
        let t = self.seconds();
        let out = f();
        (out, self.seconds() - t)
    }
}

/// (garble, evaluate) rates in M ANDs/s of [`Batch`].
fn lanes_rates(h: &impl TweakableHash, c: &Circuit, delta: Delta, inputs: &[Vec<Block>], clock: Clock) -> (f64, f64) {
    let ands = (inputs.len() * c.and_count()) as f64;
    let batch = Batch::new(c, 0);
    let (garbled, tg) = clock.time(|| batch.garble(h, delta, inputs));
    let instances: Vec<(&[[Block; 2]], Vec<Block>)> =
        garbled.iter().zip(inputs).map(|(g, x)| (g.tables.as_slice(), x.clone())).collect();
    let (_, te) = clock.time(|| std::hint::black_box(batch.evaluate(h, &instances)));
    (ands / tg / 1e6, ands / te / 1e6)
}

/// One-core rates per CPU-second of the working thread (the one-thread pool's, for lockstep),
/// all-core rates per wall-second.
fn rates(h: &impl TweakableHash, c: &Circuit, delta: Delta, inputs: &[Vec<Block>], one: &rayon::ThreadPool) -> Rates {
    let ands = (inputs.len() * c.and_count()) as f64;
    let cpu = Clock::ThreadCpu;
    let (garbled, t): (Vec<_>, _) = cpu
        .time(|| inputs.iter().enumerate().map(|(i, x)| garble(h, c, delta, x, (i * c.and_count()) as u64)).collect());
    let g_scalar = ands / t / 1e6;
    let out = evaluate(h, c, &garbled[0].tables, &inputs[0], 0);
    let valid = out.iter().zip(&garbled[0].output_zero).all(|(&l, &z)| l == z || l == z ^ delta.block());
    assert!(valid, "the engine evaluates what it garbled");
    let (_, t) = cpu.time(|| {
        for (i, (g, x)) in garbled.iter().zip(inputs).enumerate() {
            std::hint::black_box(evaluate(h, c, &g.tables, x, (i * c.and_count()) as u64));
        }
    });
    let e_scalar = ands / t / 1e6;
    let (g1, e1) = one.install(|| lanes_rates(h, c, delta, inputs, cpu));
    let (gp, ep) = lanes_rates(h, c, delta, inputs, Clock::Wall);
    Rates { g_scalar, e_scalar, g1, e1, gp, ep }
}

/// (garble, evaluate) rates in M ANDs/s of three-halves garbling, [`LANES`] instances in
/// lockstep, chunks on rayon (each chunk with its own random bits).
fn lanes_rates_3h(
    h: &impl TweakableHash,
    c: &Circuit,
    delta: Delta,
    inputs: &[Vec<Block>],
    clock: Clock,
) -> (f64, f64) {
    let ands = c.and_count();
    let total = (inputs.len() * ands) as f64;
    let offset = |i: usize| (i * ands) as u64;
    let garble_all = || -> Vec<three_halves::Garbled> {
        inputs
            .par_chunks(LANES)
            .enumerate()
            .flat_map_iter(|(ci, chunk)| {
                let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(ci as u64);
                let first = ci * LANES;
                if chunk.len() == LANES {
                    let ins = std::array::from_fn(|k| chunk[k].as_slice());
                    let offs = std::array::from_fn(|k| offset(first + k));
                    three_halves::garble_lanes(h, c, delta, ins, offs, &mut rng).into_iter().collect::<Vec<_>>()
                } else {
                    chunk
                        .iter()
                        .enumerate()
                        .map(|(k, x)| three_halves::garble(h, c, delta, x, offset(first + k), &mut rng))
                        .collect()
                }
            })
            .collect()
    };
    let (garbled, tg) = clock.time(garble_all);
    let evaluate_all = || -> Vec<Vec<Block>> {
        garbled
            .par_chunks(LANES)
            .zip(inputs.par_chunks(LANES))
            .enumerate()
            .flat_map_iter(|(ci, (gs, xs))| {
                let first = ci * LANES;
                if gs.len() == LANES {
                    let inst = std::array::from_fn(|k| (&gs[k].tables, xs[k].as_slice(), offset(first + k)));
                    three_halves::evaluate_lanes(h, c, inst).into_iter().collect::<Vec<_>>()
                } else {
                    gs.iter()
                        .zip(xs)
                        .enumerate()
                        .map(|(k, (g, x))| three_halves::evaluate(h, c, &g.tables, x, offset(first + k)))
                        .collect()
                }
            })
            .collect()
    };
    let (out, te) = clock.time(|| std::hint::black_box(evaluate_all()));
    let valid = out[0].iter().zip(&garbled[0].output_zero).all(|(&l, &z)| l == z || l == z ^ delta.block());
    assert!(valid, "the three-halves engine evaluates what it garbled");
    (total / tg / 1e6, total / te / 1e6)
}

/// [`rates`] for three-halves garbling.
fn rates_3h(
    h: &impl TweakableHash,
    c: &Circuit,
    delta: Delta,
    inputs: &[Vec<Block>],
    one: &rayon::ThreadPool,
) -> Rates {
    let ands = (inputs.len() * c.and_count()) as f64;
    let cpu = Clock::ThreadCpu;
    let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(7);
    let (garbled, t): (Vec<_>, _) = cpu.time(|| {
        inputs
            .iter()
            .enumerate()
            .map(|(i, x)| three_halves::garble(h, c, delta, x, (i * c.and_count()) as u64, &mut rng))
            .collect()
    });
    let g_scalar = ands / t / 1e6;
    let (_, t) = cpu.time(|| {
        for (i, (g, x)) in garbled.iter().zip(inputs).enumerate() {
            std::hint::black_box(three_halves::evaluate(h, c, &g.tables, x, (i * c.and_count()) as u64));
        }
    });
    let e_scalar = ands / t / 1e6;
    let (g1, e1) = one.install(|| lanes_rates_3h(h, c, delta, inputs, cpu));
    let (gp, ep) = lanes_rates_3h(h, c, delta, inputs, Clock::Wall);
    Rates { g_scalar, e_scalar, g1, e1, gp, ep }
}

/// Half-gates against three halves on the exact ReLU, both under the runtime's TMMO, runs
/// interleaved: bytes per AND and the rates.
fn schemes_side_by_side(rng: &mut rand_chacha::ChaCha12Rng, tmmo: &Tmmo, one: &rayon::ThreadPool) {
    println!(
        "\n| circuit | scheme (TMMO, runtime) | ANDs | table bytes (per AND) | garble 1 core: one at a time / lockstep | evaluate 1 core: one at a time / lockstep | garble, all cores | evaluate, all cores |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, c, n) in [
        ("exact ReLU ℓ=61 f=12", relu_trunc_mask(61, 12), 20_000usize),
        ("exact ReLU ℓ=32 f=12", relu_trunc_mask(32, 12), 40_000usize),
    ] {
        let delta = Delta::random(rng);
        let inputs: Vec<Vec<Block>> = (0..n).map(|_| random_labels(rng, c.input_wires() as usize)).collect();
        let (mut hg, mut th) = (Rates::default(), Rates::default());
        for _ in 0..REPS {
            hg = hg.best(rates(tmmo, &c, delta, &inputs, one));
            th = th.best(rates_3h(tmmo, &c, delta, &inputs, one));
        }
        let ands = c.and_count();
        for (scheme, r, bytes) in [("half-gates", hg, 32 * ands), ("three halves", th, three_halves::table_bytes(ands))]
        {
            println!(
                "| {name} | {scheme} | {ands} | {bytes} ({:.3}) | {:.1} / **{:.1}** M/s | {:.1} / **{:.1}** M/s | {:.1} M/s | {:.1} M/s |",
                bytes as f64 / ands as f64,
                r.g_scalar,
                r.g1,
                r.e_scalar,
                r.e1,
                r.gp,
                r.ep,
            );
        }
        println!(
            "| {name} | three halves / half-gates | | {:.3} | {:.2} / **{:.2}** | {:.2} / **{:.2}** | {:.2} | {:.2} |",
            three_halves::table_bytes(ands) as f64 / (32 * ands) as f64,
            th.g_scalar / hg.g_scalar,
            th.g1 / hg.g1,
            th.e_scalar / hg.e_scalar,
            th.e1 / hg.e1,
            th.gp / hg.gp,
            th.ep / hg.ep,
        );
    }
}

fn main() {
    let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(1);
    let key = HashKey::random(&mut rng);
    let (tmmo, tmmo_aes) = (Tmmo::new(key), Tmmo::portable(key));
    let old = OldFixedKey::new();
    #[cfg(target_arch = "x86_64")]
    let mit = mitccrh::Mitccrh { start: u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64()) };
    #[cfg(target_arch = "x86_64")]
    {
        assert!(aes_ni_detected() && std::arch::is_x86_feature_detected!("sse4.1"), "the bench compares AES-NI hashes");
        mitccrh::self_check();
    }
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a one-thread pool");
    println!(
        "AES-NI detected: {}; VAES-512 detected (the runtime's TMMO uses it): {}; VAES-256 detected (used without VAES-512): {}; cores for the all-core rows: {}; best of {REPS} interleaved runs; one-core rates per CPU-second of the working thread, all-core rates per wall-second",
        aes_ni_detected(),
        vaes_detected(),
        vaes256_detected(),
        rayon::current_num_threads()
    );
    schemes_side_by_side(&mut rng, &tmmo, &one);
    if std::env::var_os("VEIL_BENCH_SCHEMES_ONLY").is_some() {
        return;
    }
    println!(
        "\n| circuit | hash | ANDs | table bytes | garble 1 core: one at a time / lockstep | evaluate 1 core: one at a time / lockstep | garble, all cores | evaluate, all cores |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, c, n) in [
        ("exact ReLU ℓ=61 f=12", relu_trunc_mask(61, 12), 20_000usize),
        ("Circa sign test, 42 bits", sign_test(42), 80_000),
    ] {
        let delta = Delta::random(&mut rng);
        let inputs: Vec<Vec<Block>> = (0..n).map(|_| random_labels(&mut rng, c.input_wires() as usize)).collect();
        let (mut r_tmmo, mut r_aes, mut r_old, mut r_mit) =
            (Rates::default(), Rates::default(), Rates::default(), Rates::default());
        for _ in 0..REPS {
            r_old = r_old.best(rates(&old, &c, delta, &inputs, &one));
            r_aes = r_aes.best(rates(&tmmo_aes, &c, delta, &inputs, &one));
            r_tmmo = r_tmmo.best(rates(&tmmo, &c, delta, &inputs, &one));
            #[cfg(target_arch = "x86_64")]
            {
                r_mit = r_mit.best(rates(&mit, &c, delta, &inputs, &one));
            }
        }
        for (hash, r) in
            [("TMMO (runtime)", r_tmmo), ("TMMO via aes crate", r_aes), ("old fixed-key", r_old), ("MITCCRH", r_mit)]
        {
            if r.g1 == 0.0 {
                continue;
            }
            println!(
                "| {name} | {hash} | {} | {} | {:.1} / **{:.1}** M/s ({:.2}×) | {:.1} / **{:.1}** M/s ({:.2}×) | {:.1} M/s | {:.1} M/s |",
                c.and_count(),
                32 * c.and_count(),
                r.g_scalar,
                r.g1,
                r.g1 / r.g_scalar,
                r.e_scalar,
                r.e1,
                r.e1 / r.e_scalar,
                r.gp,
                r.ep,
            );
        }
        for (what, base) in [("TMMO / TMMO via aes crate", r_aes), ("TMMO / old", r_old)] {
            println!(
                "| {name} | {what} | | | {:.2} / **{:.2}** | {:.2} / **{:.2}** | {:.2} | {:.2} |",
                r_tmmo.g_scalar / base.g_scalar,
                r_tmmo.g1 / base.g1,
                r_tmmo.e_scalar / base.e_scalar,
                r_tmmo.e1 / base.e1,
                r_tmmo.gp / base.gp,
                r_tmmo.ep / base.ep,
            );
        }
    }
}
