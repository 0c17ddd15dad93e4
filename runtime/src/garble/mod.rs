//! The garbling engine: free-XOR, half-gates (two 16-byte ciphertexts per AND, Zahur–Rosulek–
//! Evans 2015), point-and-permute, a tweakable circular correlation-robust hash ([`Tmmo`] under a
//! fresh [`HashKey`] per garbling).
//!
//! Sans-I/O: [`garble`] turns a [`Circuit`] (from `veil_ir::circuit`, the same value the
//! compiler counted and the simulator evaluated) plus the garbler's secrets into AND tables and
//! output decoding bits; [`evaluate`] turns tables and one label per input wire into output
//! labels. The evaluator learns only colour bits; decoding needs the garbler's `decode` bits.
//!
//! Why written here: no maintained garbled-circuit crate exists on crates.io (fancy-garbling,
//! swanky and mpz are unpublished; tandem is stale), see docs/decisions.md.
//!
//! Tweaks: AND gate `j` of a garbling with gate offset `o` uses tweaks `2(o + j)` and
//! `2(o + j) + 1`. Under one hash key a tweak must never repeat: the caller draws a fresh
//! [`HashKey`] per garbling (`proto::gc` does, and sends it with the tables) and [`Batch`] hands
//! out disjoint offset ranges within it; Δ is fresh per garbling too.

mod block;
mod hash;
#[cfg(test)]
mod hash_attacks;
mod lanes;
pub mod three_halves;
mod three_halves_batch;
mod three_halves_lanes;
#[cfg(target_arch = "x86_64")]
mod vaes;
#[cfg(target_arch = "x86_64")]
mod vaes256;

pub use block::Block;
pub use hash::{HashKey, Tmmo, TweakableHash, aes_ni_detected, vaes_detected, vaes256_detected};
pub use lanes::{Instance, LANES, evaluate_lanes, garble_lanes};

use rand::RngCore;
use rayon::prelude::*;
use veil_ir::circuit::{Circuit, Gate};

/// The garbler's secrets for one session: the free-XOR offset Δ (colour bit 1).
#[derive(Clone, Copy)]
pub struct Delta(Block);

impl Delta {
    /// A fresh Δ from `rng` (a CSPRNG seeded by the OS outside tests).
    pub fn random(rng: &mut impl RngCore) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        Delta(Block(u128::from_le_bytes(b) | 1))
    }

    /// Δ as a block (secret: the garbler's; never sent, never logged).
    pub fn block(self) -> Block {
        self.0
    }
}

impl std::fmt::Debug for Delta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Delta(<redacted>)")
    }
}

/// Fresh zero-labels for `n` wires.
pub fn random_labels(rng: &mut impl RngCore, n: usize) -> Vec<Block> {
    (0..n)
        .map(|_| {
            let mut b = [0u8; 16];
            rng.fill_bytes(&mut b);
            Block::from_bytes(b)
        })
        .collect()
}

/// The label of `bit` on a wire whose zero-label is `zero`.
#[inline(always)]
pub fn label(zero: Block, bit: bool, delta: Delta) -> Block {
    zero ^ delta.0.select(bit)
}

/// A garbled circuit: what the garbler sends (tables) and keeps (decoding bits).
pub struct Garbled {
    /// Two ciphertexts per AND gate, in gate order.
    pub tables: Vec<[Block; 2]>,
    /// Colour bit of each output wire's zero-label: `value = colour(label) ⊕ decode`.
    pub decode: Vec<bool>,
    /// Zero-labels of the output wires (for chaining into further circuits).
    pub output_zero: Vec<Block>,
}

/// Garbles `c` with input zero-labels `inputs` (one per input wire) and AND gates tweaked from
/// `gate_offset`.
pub fn garble(h: &impl TweakableHash, c: &Circuit, delta: Delta, inputs: &[Block], gate_offset: u64) -> Garbled {
    assert_eq!(inputs.len(), c.input_wires() as usize, "one zero-label per input wire");
    let d = delta.0;
    let mut w: Vec<Block> = Vec::with_capacity(c.wires() as usize);
    w.extend_from_slice(inputs);
    let mut tables = Vec::with_capacity(c.gates.len() / 2);
    let mut j = gate_offset as u128;
    for g in &c.gates {
        let out = match *g {
            Gate::Xor(a, b) => w[a as usize] ^ w[b as usize],
            Gate::Not(a) => w[a as usize] ^ d,
            Gate::And(a, b) => {
                let (a0, b0) = (w[a as usize], w[b as usize]);
                let (pa, pb) = (a0.lsb(), b0.lsb());
                let mut hs = [a0, a0 ^ d, b0, b0 ^ d];
                h.hash_many(&mut hs, [2 * j, 2 * j, 2 * j + 1, 2 * j + 1]);
                let [ha0, ha1, hb0, hb1] = hs;
                // Garbler half: knows b's permute bit.
                let tg = ha0 ^ ha1 ^ d.select(pb);
                let wg = ha0 ^ tg.select(pa);
                // Evaluator half: knows a.
                let te = hb0 ^ hb1 ^ a0;
                let we = hb0 ^ (te ^ a0).select(pb);
                tables.push([tg, te]);
                j += 1;
                wg ^ we
            }
        };
        w.push(out);
    }
    let output_zero: Vec<Block> = c.outputs.iter().map(|&o| w[o as usize]).collect();
    Garbled { tables, decode: output_zero.iter().map(|b| b.lsb()).collect(), output_zero }
}

/// Evaluates a garbled `c` on one label per input wire; returns the output labels.
pub fn evaluate(
    h: &impl TweakableHash,
    c: &Circuit,
    tables: &[[Block; 2]],
    inputs: &[Block],
    gate_offset: u64,
) -> Vec<Block> {
    assert_eq!(inputs.len(), c.input_wires() as usize, "one label per input wire");
    let mut w: Vec<Block> = Vec::with_capacity(c.wires() as usize);
    w.extend_from_slice(inputs);
    let mut t = tables.iter();
    let mut j = gate_offset as u128;
    for g in &c.gates {
        let out = match *g {
            Gate::Xor(a, b) => w[a as usize] ^ w[b as usize],
            Gate::Not(a) => w[a as usize],
            Gate::And(a, b) => {
                let (la, lb) = (w[a as usize], w[b as usize]);
                let [tg, te] = *t.next().expect("one table per AND gate");
                let mut hs = [la, lb];
                h.hash_many(&mut hs, [2 * j, 2 * j + 1]);
                j += 1;
                (hs[0] ^ tg.select(la.lsb())) ^ (hs[1] ^ (te ^ la).select(lb.lsb()))
            }
        };
        w.push(out);
    }
    assert!(t.next().is_none(), "one table per AND gate");
    c.outputs.iter().map(|&o| w[o as usize]).collect()
}

/// Colour bits of output labels (what the evaluator returns to the garbler).
pub fn colours(labels: &[Block]) -> Vec<bool> {
    labels.iter().map(|l| l.lsb()).collect()
}

/// Decodes colour bits with the garbler's decoding bits.
pub fn decode(colours: &[bool], decode: &[bool]) -> Vec<bool> {
    colours.iter().zip(decode).map(|(c, d)| c ^ d).collect()
}

/// Many instances of one circuit, garbled in parallel with disjoint tweak ranges.
pub struct Batch<'c> {
    circuit: &'c Circuit,
    /// Gate offset of instance 0; instance `i` starts at `first_offset + i · ands`.
    first_offset: u64,
    ands: usize,
}

impl<'c> Batch<'c> {
    /// A batch of `circuit` whose instance 0 takes the AND-gate tweaks from `first_offset` on.
    pub fn new(circuit: &'c Circuit, first_offset: u64) -> Self {
        Self { circuit, first_offset, ands: circuit.and_count() }
    }

    /// Gate offset of `instance`.
    pub fn offset(&self, instance: usize) -> u64 {
        self.first_offset + (instance * self.ands) as u64
    }

    /// The first offset after `instances` instances (where the next batch must start).
    pub fn end(&self, instances: usize) -> u64 {
        self.offset(instances)
    }

    /// Garbles one instance per entry of `inputs` (zero-labels per input wire), [`LANES`] at a
    /// time in lockstep, chunks in parallel on rayon.
    pub fn garble(&self, h: &impl TweakableHash, delta: Delta, inputs: &[Vec<Block>]) -> Vec<Garbled> {
        crate::in_compute_pool(|| {
            inputs
                .par_chunks(LANES)
                .enumerate()
                .flat_map_iter(|(ci, chunk)| {
                    let first = ci * LANES;
                    if chunk.len() == LANES {
                        let ins = std::array::from_fn(|k| chunk[k].as_slice());
                        let offs = std::array::from_fn(|k| self.offset(first + k));
                        garble_lanes(h, self.circuit, delta, ins, offs).into_iter().collect::<Vec<_>>()
                    } else {
                        chunk
                            .iter()
                            .enumerate()
                            .map(|(k, x)| garble(h, self.circuit, delta, x, self.offset(first + k)))
                            .collect()
                    }
                })
                .collect()
        })
    }

    /// Evaluates one instance per entry (tables, input labels), [`LANES`] at a time, on rayon.
    pub fn evaluate(&self, h: &impl TweakableHash, instances: &[(&[[Block; 2]], Vec<Block>)]) -> Vec<Vec<Block>> {
        crate::in_compute_pool(|| {
            instances
                .par_chunks(LANES)
                .enumerate()
                .flat_map_iter(|(ci, chunk)| {
                    let first = ci * LANES;
                    if chunk.len() == LANES {
                        let inst = std::array::from_fn(|k| (chunk[k].0, chunk[k].1.as_slice(), self.offset(first + k)));
                        evaluate_lanes(h, self.circuit, inst).into_iter().collect::<Vec<_>>()
                    } else {
                        chunk
                            .iter()
                            .enumerate()
                            .map(|(k, (t, x))| evaluate(h, self.circuit, t, x, self.offset(first + k)))
                            .collect()
                    }
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use veil_ir::circuit::{max_trunc_mask, relu_trunc_mask, sign_test, to_bits};

    /// Garbles, evaluates on random inputs (fresh hash key, Δ and labels each time) and
    /// decodes; the result must equal the plaintext evaluation.
    fn check(c: &Circuit, trials: usize, seed: u64) {
        let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(seed);
        for t in 0..trials {
            let h = Tmmo::new(HashKey::random(&mut rng));
            let delta = Delta::random(&mut rng);
            let zero = random_labels(&mut rng, c.input_wires() as usize);
            let g = garble(&h, c, delta, &zero, (t * c.and_count()) as u64);
            assert_eq!(g.tables.len(), c.and_count());
            let groups: Vec<Vec<bool>> = c.inputs.iter().map(|&n| to_bits(rng.next_u64(), n)).collect();
            let bits: Vec<bool> = groups.concat();
            let labels: Vec<Block> = zero.iter().zip(&bits).map(|(&z, &b)| label(z, b, delta)).collect();
            let out = evaluate(&h, c, &g.tables, &labels, (t * c.and_count()) as u64);
            assert_eq!(decode(&colours(&out), &g.decode), c.eval(&groups), "trial {t}");
            // Output labels are the garbler's labels of the true values.
            let want = c.eval(&groups);
            for ((&l, &z), &v) in out.iter().zip(&g.output_zero).zip(&want) {
                assert_eq!(l, label(z, v, delta));
            }
        }
    }

    #[test]
    fn garbled_circuits_compute_what_the_plaintext_circuit_computes() {
        check(&relu_trunc_mask(61, 12), 2000, 1);
        check(&relu_trunc_mask(16, 4), 2000, 2);
        check(&sign_test(42), 2000, 3);
        check(&max_trunc_mask(4, 24, 6), 500, 4);
    }

    #[test]
    fn lockstep_batches_equal_one_instance_at_a_time() {
        let c = relu_trunc_mask(20, 5);
        let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(5);
        let h = Tmmo::new(HashKey::random(&mut rng));
        let delta = Delta::random(&mut rng);
        let n = 2 * LANES + 3;
        let inputs: Vec<Vec<Block>> = (0..n).map(|_| random_labels(&mut rng, c.input_wires() as usize)).collect();
        let batch = Batch::new(&c, 1000);
        let garbled = batch.garble(&h, delta, &inputs);
        for (i, g) in garbled.iter().enumerate() {
            let one = garble(&h, &c, delta, &inputs[i], batch.offset(i));
            assert_eq!(g.tables, one.tables, "instance {i}");
            assert_eq!(g.output_zero, one.output_zero, "instance {i}");
        }
        // Evaluate on random input bits and decode.
        let mut wants = Vec::new();
        let instances: Vec<(&[[Block; 2]], Vec<Block>)> = garbled
            .iter()
            .zip(&inputs)
            .map(|(g, zero)| {
                let groups: Vec<Vec<bool>> = c.inputs.iter().map(|&n| to_bits(rng.next_u64(), n)).collect();
                wants.push(c.eval(&groups));
                (g.tables.as_slice(), zero.iter().zip(groups.concat()).map(|(&z, b)| label(z, b, delta)).collect())
            })
            .collect();
        let out = batch.evaluate(&h, &instances);
        for (i, o) in out.iter().enumerate() {
            assert_eq!(decode(&colours(o), &garbled[i].decode), wants[i], "instance {i}");
        }
    }

    #[test]
    fn a_wrong_tweak_offset_gives_garbage() {
        let c = relu_trunc_mask(16, 4);
        let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(9);
        let h = Tmmo::new(HashKey::random(&mut rng));
        let delta = Delta::random(&mut rng);
        let zero = random_labels(&mut rng, c.input_wires() as usize);
        let g = garble(&h, &c, delta, &zero, 0);
        let out = evaluate(&h, &c, &g.tables, &zero, 1);
        let valid = out.iter().zip(&g.output_zero).all(|(&l, &z)| l == z || l == z ^ delta.block());
        assert!(!valid, "labels from mismatched tweaks must not be valid output labels");
    }

    #[test]
    fn a_wrong_hash_key_gives_garbage() {
        let c = relu_trunc_mask(16, 4);
        let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(10);
        let (garbler, other) = (Tmmo::new(HashKey::random(&mut rng)), Tmmo::new(HashKey::random(&mut rng)));
        let delta = Delta::random(&mut rng);
        let zero = random_labels(&mut rng, c.input_wires() as usize);
        let g = garble(&garbler, &c, delta, &zero, 0);
        let right = evaluate(&garbler, &c, &g.tables, &zero, 0);
        assert_eq!(right, g.output_zero, "the garbler's key evaluates");
        let out = evaluate(&other, &c, &g.tables, &zero, 0);
        let valid = out.iter().zip(&g.output_zero).any(|(&l, &z)| l == z || l == z ^ delta.block());
        assert!(!valid, "labels under another hash key must not be valid output labels");
    }

    #[test]
    fn secrets_do_not_print() {
        let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(1);
        let d = Delta::random(&mut rng);
        assert_eq!(format!("{d:?} {:?}", d.block()), "Delta(<redacted>) Block(<redacted>)");
    }
}
