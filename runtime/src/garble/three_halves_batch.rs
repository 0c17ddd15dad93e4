//! Many instances of one circuit garbled and evaluated with three halves, as [`Batch`] does for
//! half-gates: [`LANES`] instances in lockstep, groups of them in parallel on rayon, instance `i`
//! at gate offset [`Batch::offset`]`(i)`.
//!
//! The two random bits per AND gate come from a ChaCha20 stream per group under one `seed`
//! (group `k`, instances `LANES·k ..`, reads stream `k`): the caller draws the seed from the
//! server's CSPRNG (per chunk, `proto::gc`), so the bits are as fresh as the CSPRNG's and the
//! result does not depend on how rayon schedules the groups.

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;

use super::three_halves::{self, Garbled, Tables};
use super::{Batch, Block, Delta, LANES, TweakableHash};

impl Batch<'_> {
    /// Garbles one instance per entry of `inputs` (zero-labels per input wire) with three
    /// halves; random bits from `seed` (module doc).
    pub fn garble_three_halves(
        &self,
        h: &impl TweakableHash,
        delta: Delta,
        inputs: &[Vec<Block>],
        seed: [u8; 32],
    ) -> Vec<Garbled> {
        crate::in_compute_pool(|| {
            inputs
                .par_chunks(LANES)
                .enumerate()
                .flat_map_iter(|(ci, chunk)| {
                    let mut rng = ChaCha20Rng::from_seed(seed);
                    rng.set_stream(ci as u64);
                    let first = ci * LANES;
                    if chunk.len() == LANES {
                        let ins = std::array::from_fn(|k| chunk[k].as_slice());
                        let offs = std::array::from_fn(|k| self.offset(first + k));
                        three_halves::garble_lanes(h, self.circuit, delta, ins, offs, &mut rng).into_iter().collect()
                    } else {
                        chunk
                            .iter()
                            .enumerate()
                            .map(|(k, x)| {
                                three_halves::garble(h, self.circuit, delta, x, self.offset(first + k), &mut rng)
                            })
                            .collect::<Vec<_>>()
                    }
                })
                .collect()
        })
    }

    /// Evaluates one instance per entry (tables, input labels) garbled with three halves.
    pub fn evaluate_three_halves(
        &self,
        h: &impl TweakableHash,
        instances: &[(&Tables, Vec<Block>)],
    ) -> Vec<Vec<Block>> {
        crate::in_compute_pool(|| {
            instances
                .par_chunks(LANES)
                .enumerate()
                .flat_map_iter(|(ci, chunk)| {
                    let first = ci * LANES;
                    if chunk.len() == LANES {
                        let inst = std::array::from_fn(|k| (chunk[k].0, chunk[k].1.as_slice(), self.offset(first + k)));
                        three_halves::evaluate_lanes(h, self.circuit, inst).into_iter().collect::<Vec<_>>()
                    } else {
                        chunk
                            .iter()
                            .enumerate()
                            .map(|(k, (t, x))| three_halves::evaluate(h, self.circuit, t, x, self.offset(first + k)))
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
    use crate::garble::{HashKey, Tmmo, colours, decode, label, random_labels};
    use rand::{RngCore, SeedableRng};
    use veil_ir::circuit::{relu_trunc_mask, to_bits};

    /// Two full lockstep groups and a partial one decode to the plaintext circuit; another seed
    /// gives other tables (the bits are used), the same seed the same ones.
    #[test]
    fn a_three_halves_batch_decodes_and_its_tables_follow_the_seed() {
        let c = relu_trunc_mask(20, 5);
        let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(7);
        let h = Tmmo::new(HashKey::random(&mut rng));
        let delta = Delta::random(&mut rng);
        let n = 2 * LANES + 3;
        let inputs: Vec<Vec<Block>> = (0..n).map(|_| random_labels(&mut rng, c.input_wires() as usize)).collect();
        let batch = Batch::new(&c, 500);
        let garbled = batch.garble_three_halves(&h, delta, &inputs, [3; 32]);
        let again = batch.garble_three_halves(&h, delta, &inputs, [3; 32]);
        let other = batch.garble_three_halves(&h, delta, &inputs, [4; 32]);
        for i in 0..n {
            assert_eq!(garbled[i].tables, again[i].tables, "instance {i}");
            assert_ne!(garbled[i].tables, other[i].tables, "instance {i}");
        }
        let mut wants = Vec::new();
        let instances: Vec<(&Tables, Vec<Block>)> = garbled
            .iter()
            .zip(&inputs)
            .map(|(g, zero)| {
                let groups: Vec<Vec<bool>> = c.inputs.iter().map(|&w| to_bits(rng.next_u64(), w)).collect();
                wants.push(c.eval(&groups));
                (&g.tables, zero.iter().zip(groups.concat()).map(|(&z, b)| label(z, b, delta)).collect())
            })
            .collect();
        let out = batch.evaluate_three_halves(&h, &instances);
        for (i, o) in out.iter().enumerate() {
            assert_eq!(decode(&colours(o), &garbled[i].decode), wants[i], "instance {i}");
        }
    }
}
