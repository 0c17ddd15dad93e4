//! Lockstep garbling and evaluation of [`LANES`] instances of one circuit: each AND gate hashes
//! `4 · LANES` (garbling) or `2 · LANES` (evaluating) independent blocks in one AES batch, which
//! AES-NI pipelines; a single instance's ripple-carry chains would leave it idle. Results are
//! identical to the one-instance functions (same tweaks, same labels).

use veil_ir::circuit::{Circuit, Gate};

use super::{Block, Delta, Garbled, TweakableHash};

/// Instances processed together.
pub const LANES: usize = 16;

/// One instance to evaluate: its AND tables, one label per input wire, and its gate offset.
pub type Instance<'a> = (&'a [[Block; 2]], &'a [Block], u64);

/// Garbles `LANES` instances; `inputs[k]` and `offsets[k]` are instance `k`'s zero-labels and
/// gate offset.
pub fn garble_lanes(
    h: &impl TweakableHash,
    c: &Circuit,
    delta: Delta,
    inputs: [&[Block]; LANES],
    offsets: [u64; LANES],
) -> [Garbled; LANES] {
    let d = delta.block();
    let nin = c.input_wires() as usize;
    let mut w: Vec<[Block; LANES]> = Vec::with_capacity(c.wires() as usize);
    w.extend((0..nin).map(|i| std::array::from_fn(|k| inputs[k][i])));
    let mut tables: [Vec<[Block; 2]>; LANES] = std::array::from_fn(|_| Vec::with_capacity(c.and_count()));
    let mut j = 0u128;
    for g in &c.gates {
        let out = match *g {
            Gate::Xor(a, b) => std::array::from_fn(|k| w[a as usize][k] ^ w[b as usize][k]),
            Gate::Not(a) => std::array::from_fn(|k| w[a as usize][k] ^ d),
            Gate::And(a, b) => {
                let (a0, b0) = (w[a as usize], w[b as usize]);
                let mut hs = [Block::ZERO; 4 * LANES];
                let mut tw = [0u128; 4 * LANES];
                for k in 0..LANES {
                    let t = 2 * (offsets[k] as u128 + j);
                    hs[4 * k..4 * k + 4].copy_from_slice(&[a0[k], a0[k] ^ d, b0[k], b0[k] ^ d]);
                    tw[4 * k..4 * k + 4].copy_from_slice(&[t, t, t + 1, t + 1]);
                }
                h.hash_many(&mut hs, tw);
                j += 1;
                std::array::from_fn(|k| {
                    let [ha0, ha1, hb0, hb1] = [hs[4 * k], hs[4 * k + 1], hs[4 * k + 2], hs[4 * k + 3]];
                    let (pa, pb) = (a0[k].lsb(), b0[k].lsb());
                    let tg = ha0 ^ ha1 ^ d.select(pb);
                    let te = hb0 ^ hb1 ^ a0[k];
                    tables[k].push([tg, te]);
                    (ha0 ^ tg.select(pa)) ^ (hb0 ^ (te ^ a0[k]).select(pb))
                })
            }
        };
        w.push(out);
    }
    let mut tables = tables.into_iter();
    std::array::from_fn(|k| {
        let output_zero: Vec<Block> = c.outputs.iter().map(|&o| w[o as usize][k]).collect();
        Garbled {
            tables: tables.next().expect("LANES tables"),
            decode: output_zero.iter().map(|b| b.lsb()).collect(),
            output_zero,
        }
    })
}

/// Evaluates `LANES` instances: `(tables, input labels, gate offset)` each.
pub fn evaluate_lanes(h: &impl TweakableHash, c: &Circuit, inst: [Instance<'_>; LANES]) -> [Vec<Block>; LANES] {
    let nin = c.input_wires() as usize;
    let mut w: Vec<[Block; LANES]> = Vec::with_capacity(c.wires() as usize);
    w.extend((0..nin).map(|i| std::array::from_fn(|k| inst[k].1[i])));
    let mut t = 0usize;
    let mut j = 0u128;
    for g in &c.gates {
        let out = match *g {
            Gate::Xor(a, b) => std::array::from_fn(|k| w[a as usize][k] ^ w[b as usize][k]),
            Gate::Not(a) => w[a as usize],
            Gate::And(a, b) => {
                let (la, lb) = (w[a as usize], w[b as usize]);
                let mut hs = [Block::ZERO; 2 * LANES];
                let mut tw = [0u128; 2 * LANES];
                for k in 0..LANES {
                    let base = 2 * (inst[k].2 as u128 + j);
                    hs[2 * k] = la[k];
                    hs[2 * k + 1] = lb[k];
                    tw[2 * k] = base;
                    tw[2 * k + 1] = base + 1;
                }
                h.hash_many(&mut hs, tw);
                j += 1;
                let out = std::array::from_fn(|k| {
                    let [tg, te] = inst[k].0[t];
                    (hs[2 * k] ^ tg.select(la[k].lsb())) ^ (hs[2 * k + 1] ^ (te ^ la[k]).select(lb[k].lsb()))
                });
                t += 1;
                out
            }
        };
        w.push(out);
    }
    std::array::from_fn(|k| c.outputs.iter().map(|&o| w[o as usize][k]).collect())
}
