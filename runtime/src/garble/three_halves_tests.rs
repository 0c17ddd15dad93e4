//! Tests of three-halves garbling: plaintext agreement on random and real circuits, the byte
//! count, and what the evaluator can and cannot learn.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha12Rng;
use veil_ir::circuit::{Builder, Circuit, max_trunc_mask, relu_trunc_mask, sign_test, to_bits, trunc_mask};

use super::*;
use crate::garble::{HashKey, LANES, Tmmo, colours, decode, label, random_labels};

/// A random circuit: `groups` input groups of 1–8 bits, `gates` random gates (about a third
/// ANDs) over earlier wires, 1–16 random output wires.
fn random_circuit(rng: &mut impl RngCore, gates: usize) -> Circuit {
    let widths: Vec<u32> = (0..1 + rng.next_u32() % 3).map(|_| 1 + rng.next_u32() % 8).collect();
    let (mut b, _) = Builder::new(&widths);
    let mut wires: u32 = widths.iter().sum();
    for _ in 0..gates {
        let (x, y) = (rng.next_u32() % wires, rng.next_u32() % wires);
        match rng.next_u32() % 3 {
            0 => b.and(x, y),
            1 => b.xor(x, y),
            _ => {
                if rng.next_u32().is_multiple_of(2) {
                    b.not(x)
                } else {
                    b.and(x, y)
                }
            }
        };
        wires += 1;
    }
    let outputs = (0..1 + rng.next_u32() % 16).map(|_| rng.next_u32() % wires).collect();
    b.finish(outputs)
}

/// Garbles and evaluates `c` on random inputs `trials` times (fresh key, Δ, labels each time);
/// decoded outputs must equal the plaintext evaluation and output labels the garbler's.
fn check(c: &Circuit, trials: usize, rng: &mut ChaCha12Rng) {
    for t in 0..trials {
        let h = Tmmo::new(HashKey::random(rng));
        let delta = Delta::random(rng);
        let zero = random_labels(rng, c.input_wires() as usize);
        let offset = (t * c.and_count()) as u64;
        let g = garble(&h, c, delta, &zero, offset, rng);
        assert_eq!(g.tables.len(), c.and_count());
        let groups: Vec<Vec<bool>> = c.inputs.iter().map(|&n| to_bits(rng.next_u64(), n)).collect();
        let labels: Vec<Block> = zero.iter().zip(groups.concat()).map(|(&z, b)| label(z, b, delta)).collect();
        let out = evaluate(&h, c, &g.tables, &labels, offset);
        let want = c.eval(&groups);
        assert_eq!(decode(&colours(&out), &g.decode), want, "trial {t}");
        for ((&l, &z), &v) in out.iter().zip(&g.output_zero).zip(&want) {
            assert!(l == label(z, v, delta), "trial {t}: output label is not the garbler's label of the value");
        }
    }
}

#[test]
fn one_and_gate_decrypts_in_all_four_rows() {
    let c = Circuit { inputs: vec![1, 1], gates: vec![Gate::And(0, 1)], outputs: vec![2] };
    let mut rng = ChaCha12Rng::seed_from_u64(1);
    // Every (p_a, p_b, r) occurs many times over 400 garblings; every row is evaluated.
    for t in 0..400u64 {
        let h = Tmmo::new(HashKey::random(&mut rng));
        let delta = Delta::random(&mut rng);
        let zero = random_labels(&mut rng, 2);
        let g = garble(&h, &c, delta, &zero, t, &mut rng);
        for (a, b) in [(false, false), (false, true), (true, false), (true, true)] {
            let out = evaluate(&h, &c, &g.tables, &[label(zero[0], a, delta), label(zero[1], b, delta)], t);
            assert!(out[0] == label(g.output_zero[0], a && b, delta), "t={t} a={a} b={b}");
        }
    }
}

#[test]
fn random_circuits_compute_what_the_plaintext_circuit_computes() {
    let mut rng = ChaCha12Rng::seed_from_u64(2);
    for _ in 0..300 {
        let gates = 1 + (rng.next_u32() % 120) as usize;
        let c = random_circuit(&mut rng, gates);
        check(&c, 4, &mut rng);
    }
}

#[test]
fn veils_circuits_compute_what_the_plaintext_circuit_computes() {
    let mut rng = ChaCha12Rng::seed_from_u64(3);
    check(&relu_trunc_mask(61, 12), 300, &mut rng);
    check(&relu_trunc_mask(16, 4), 500, &mut rng);
    check(&trunc_mask(37, 12), 200, &mut rng);
    check(&sign_test(42), 500, &mut rng);
    check(&max_trunc_mask(4, 24, 6), 100, &mut rng);
}

#[test]
fn tables_are_exactly_197_bits_per_and_and_round_trip() {
    let mut rng = ChaCha12Rng::seed_from_u64(4);
    let h = Tmmo::new(HashKey::random(&mut rng));
    let delta = Delta::random(&mut rng);
    for c in [relu_trunc_mask(61, 12), relu_trunc_mask(32, 12), sign_test(42), sign_test(3)] {
        let n = c.and_count();
        let zero = random_labels(&mut rng, c.input_wires() as usize);
        let g = garble(&h, &c, delta, &zero, 0, &mut rng);
        let bytes = g.tables.to_bytes();
        assert_eq!(bytes.len(), (197 * n).div_ceil(8), "{n} ANDs");
        assert_eq!(bytes.len(), table_bytes(n));
        assert!(bytes.len() < 32 * n * 4 / 5, "three halves save a fifth or more over half-gates");
        let back = Tables::from_bytes(&bytes, n).expect("exact length");
        assert_eq!(back, g.tables);
        // Received tables evaluate to valid labels (of the all-zero input's outputs).
        let out = evaluate(&h, &c, &back, &zero, 0);
        let want = c.eval(&c.inputs.iter().map(|&w| vec![false; w as usize]).collect::<Vec<_>>());
        for ((&l, &z), &v) in out.iter().zip(&g.output_zero).zip(&want) {
            assert!(l == label(z, v, delta));
        }
        let err = Tables::from_bytes(&bytes[1..], n).expect_err("one byte short");
        assert_eq!(err, TablesLengthError { ands: n, want: bytes.len(), got: bytes.len() - 1 });
        assert!(Tables::from_bytes(&bytes, n + 1).is_err());
    }
    // The ReLU of ℓ = 61: 168 ANDs, 4,137 bytes against half-gates' 5,376.
    assert_eq!(table_bytes(relu_trunc_mask(61, 12).and_count()), 4137);
}

#[test]
fn control_bits_pack_across_byte_boundaries() {
    let mut rng = ChaCha12Rng::seed_from_u64(5);
    let mut t = Tables::with_capacity(50);
    let zs: Vec<u8> = (0..50).map(|_| rng.next_u32() as u8 & 0x1f).collect();
    for (j, &z) in zs.iter().enumerate() {
        t.push([j as u64, 0, u64::MAX], z);
    }
    for (j, &z) in zs.iter().enumerate() {
        assert_eq!(t.gate(j), ([j as u64, 0, u64::MAX], z), "gate {j}");
    }
    assert_eq!(t.control.len(), 32); // 250 bits
}

/// The evaluator holding one label per wire cannot produce the other: evaluating with a true
/// label shifted by a random `Δ'` (the guess of Δ it would need) gives labels that are neither
/// of the garbler's, and colours that decode to garbage.
#[test]
fn a_guessed_other_label_gives_garbage() {
    let mut rng = ChaCha12Rng::seed_from_u64(6);
    let c = relu_trunc_mask(16, 4);
    let mut wrong_decodes = 0;
    for t in 0..50 {
        let h = Tmmo::new(HashKey::random(&mut rng));
        let delta = Delta::random(&mut rng);
        let zero = random_labels(&mut rng, c.input_wires() as usize);
        let g = garble(&h, &c, delta, &zero, 0, &mut rng);
        let groups: Vec<Vec<bool>> = c.inputs.iter().map(|&n| to_bits(rng.next_u64(), n)).collect();
        let mut labels: Vec<Block> = zero.iter().zip(groups.concat()).map(|(&z, b)| label(z, b, delta)).collect();
        // Flip input bit 0 of the server's share by a guessed offset (colour bit kept at 1, like Δ).
        let guess = Delta::random(&mut rng);
        labels[0] ^= guess.block();
        let out = evaluate(&h, &c, &g.tables, &labels, 0);
        let valid = out.iter().zip(&g.output_zero).any(|(&l, &z)| l == z || l == z ^ delta.block());
        assert!(!valid, "trial {t}: a wrong input label must not give valid output labels");
        // The plaintext with the flipped bit: a decoding that equals it would mean Δ' worked.
        let mut flipped = groups.clone();
        flipped[0][0] = !flipped[0][0];
        if decode(&colours(&out), &g.decode) != c.eval(&flipped) {
            wrong_decodes += 1;
        }
    }
    assert!(wrong_decodes >= 49, "{wrong_decodes} of 50 decodings were garbage");
}

#[test]
fn a_wrong_tweak_offset_or_hash_key_gives_garbage() {
    let mut rng = ChaCha12Rng::seed_from_u64(7);
    let c = relu_trunc_mask(16, 4);
    let (h, other) = (Tmmo::new(HashKey::random(&mut rng)), Tmmo::new(HashKey::random(&mut rng)));
    let delta = Delta::random(&mut rng);
    let zero = random_labels(&mut rng, c.input_wires() as usize);
    let g = garble(&h, &c, delta, &zero, 0, &mut rng);
    assert_eq!(evaluate(&h, &c, &g.tables, &zero, 0), g.output_zero);
    for out in [evaluate(&h, &c, &g.tables, &zero, 1), evaluate(&other, &c, &g.tables, &zero, 0)] {
        let valid = out.iter().zip(&g.output_zero).any(|(&l, &z)| l == z || l == z ^ delta.block());
        assert!(!valid);
    }
}

/// Always zero: a garbler without randomness.
struct ZeroRng;

impl RngCore for ZeroRng {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        dst.fill(0);
    }
}

/// For each permute-bit pair `(p_a, p_b)`, how often the evaluator in colour row `row` decrypts
/// each `(r₁, r₂)` over `n` garblings of one AND gate whose random bits come from `bits`.
fn row_bits_seen(row: (bool, bool), n: usize, bits: &mut impl RngCore) -> [[usize; 4]; 4] {
    let c = Circuit { inputs: vec![1, 1], gates: vec![Gate::And(0, 1)], outputs: vec![2] };
    let mut rng = ChaCha12Rng::seed_from_u64(8);
    let mut seen = [[0usize; 4]; 4];
    for t in 0..n as u64 {
        let h = Tmmo::new(HashKey::random(&mut rng));
        let delta = Delta::random(&mut rng);
        let zero = random_labels(&mut rng, 2);
        let g = garble(&h, &c, delta, &zero, t, bits);
        // The labels of colours `row` (true values `row ⊕ p`).
        let (la, lb) = (
            zero[0] ^ delta.block().select(zero[0].lsb() != row.0),
            zero[1] ^ delta.block().select(zero[1].lsb() != row.1),
        );
        let mut hs = [la, lb, la ^ lb];
        h.hash_many(&mut hs, tweaks(t));
        let (_, z) = g.tables.gate(0);
        let p = 2 * zero[0].lsb() as usize + zero[1].lsb() as usize;
        seen[p][decrypt_row(row.0, row.1, &hs, z) as usize] += 1;
    }
    seen
}

/// What the evaluator decrypts in its row (the bits choosing its matrix `R`) is uniform
/// whatever the permute bits, i.e. whatever the true input values behind its colours. A
/// garbler without randomness fails this: its rows 01, 10, 11 reveal the permute bits.
#[test]
fn the_evaluators_matrix_does_not_depend_on_the_inputs() {
    for row in [(false, false), (false, true), (true, false), (true, true)] {
        let seen = row_bits_seen(row, 4000, &mut ChaCha12Rng::seed_from_u64(9));
        for (p, counts) in seen.iter().enumerate() {
            let total: usize = counts.iter().sum();
            assert!(total > 800, "{total} garblings with permute bits {p}");
            for &k in counts {
                assert!(4 * k > total * 4 / 5 && 4 * k < total * 6 / 5, "row {row:?} p {p}: {counts:?}");
            }
        }
        let leaky = row_bits_seen(row, 400, &mut ZeroRng);
        let determined = leaky.iter().all(|counts| counts.iter().filter(|&&k| k > 0).count() == 1);
        assert!(determined, "without randomness each permute-bit pair fixes the row's bits: {leaky:?}");
        if row != (false, false) {
            let per_p: Vec<usize> = leaky.iter().map(|c| c.iter().position(|&k| k > 0).expect("seen")).collect();
            let distinct = per_p.iter().collect::<std::collections::BTreeSet<_>>().len();
            assert_eq!(distinct, 4, "row {row:?}: the bits would tell the permute bits apart: {per_p:?}");
        }
    }
}

#[test]
fn tables_print_their_size_only() {
    let mut rng = ChaCha12Rng::seed_from_u64(10);
    let c = sign_test(8);
    let h = Tmmo::new(HashKey::random(&mut rng));
    let zero = random_labels(&mut rng, c.input_wires() as usize);
    let g = garble(&h, &c, Delta::random(&mut rng), &zero, 0, &mut rng);
    assert_eq!(format!("{:?}", g.tables), format!("Tables({} AND gates)", c.and_count()));
}

#[test]
fn lockstep_lanes_agree_with_one_instance_at_a_time() {
    let c = relu_trunc_mask(20, 5);
    let mut rng = ChaCha12Rng::seed_from_u64(11);
    let h = Tmmo::new(HashKey::random(&mut rng));
    let delta = Delta::random(&mut rng);
    let zeros: Vec<Vec<Block>> = (0..LANES).map(|_| random_labels(&mut rng, c.input_wires() as usize)).collect();
    let offsets: [u64; LANES] = std::array::from_fn(|k| 500 + (k * c.and_count()) as u64);
    let ins: [&[Block]; LANES] = std::array::from_fn(|k| zeros[k].as_slice());
    // Without randomness both draw the same bits (zero): the tables are the same.
    let lanes = garble_lanes(&h, &c, delta, ins, offsets, &mut ZeroRng);
    for k in 0..LANES {
        let one = garble(&h, &c, delta, &zeros[k], offsets[k], &mut ZeroRng);
        assert_eq!(lanes[k].tables, one.tables, "lane {k}");
        assert_eq!(lanes[k].output_zero, one.output_zero, "lane {k}");
    }
    // With randomness: lanes' tables evaluate one at a time and in lanes to the plaintext.
    let lanes = garble_lanes(&h, &c, delta, ins, offsets, &mut rng);
    let groups: Vec<Vec<Vec<bool>>> =
        (0..LANES).map(|_| c.inputs.iter().map(|&n| to_bits(rng.next_u64(), n)).collect()).collect();
    let labels: Vec<Vec<Block>> = (0..LANES)
        .map(|k| zeros[k].iter().zip(groups[k].concat()).map(|(&z, b)| label(z, b, delta)).collect())
        .collect();
    let outs = evaluate_lanes(&h, &c, std::array::from_fn(|k| (&lanes[k].tables, labels[k].as_slice(), offsets[k])));
    for k in 0..LANES {
        let want = c.eval(&groups[k]);
        assert_eq!(decode(&colours(&outs[k]), &lanes[k].decode), want, "lane {k}");
        assert_eq!(evaluate(&h, &c, &lanes[k].tables, &labels[k], offsets[k]), outs[k], "lane {k}");
    }
}
