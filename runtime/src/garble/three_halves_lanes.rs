//! Three-halves garbling of [`LANES`] instances of one circuit in lockstep, as
//! [`lanes`](super::lanes) does for half-gates: each AND gate hashes `6 · LANES` (garbling) or
//! `3 · LANES` (evaluating) independent blocks in one AES batch. Tables and labels are those of
//! [`three_halves::garble`](super::three_halves::garble) / `evaluate` (same tweaks, same gate
//! functions); only the random bits are drawn in another order (one `u32` per gate, lane `k`
//! taking bits `2k..2k+2`).

use rand::RngCore;
use veil_ir::circuit::{Circuit, Gate};

use super::lanes::with_wires;
use super::three_halves::{Garbled, Tables, evaluate_gate, garble_gate, tweaks};
use super::{Block, Delta, LANES, TweakableHash};

/// Garbles `LANES` instances: `inputs[k]` and `offsets[k]` are instance `k`'s zero-labels and
/// gate offset; two random bits per lane and AND gate from `rng`.
pub fn garble_lanes(
    h: &impl TweakableHash,
    c: &Circuit,
    delta: Delta,
    inputs: [&[Block]; LANES],
    offsets: [u64; LANES],
    rng: &mut impl RngCore,
) -> [Garbled; LANES] {
    let d = delta.block();
    let nin = c.input_wires() as usize;
    let ands = c.and_count();
    let mut tables: [Tables; LANES] = std::array::from_fn(|_| Tables::with_capacity(ands));
    with_wires(c.wires() as usize, |w| {
        for (i, wi) in w.iter_mut().take(nin).enumerate() {
            *wi = std::array::from_fn(|k| inputs[k][i]);
        }
        let mut j = 0u64;
        for (gi, g) in c.gates.iter().enumerate() {
            let (done, rest) = w.split_at_mut(nin + gi);
            let out = &mut rest[0];
            match *g {
                Gate::Xor(a, b) => {
                    let (x, y) = (&done[a as usize], &done[b as usize]);
                    for k in 0..LANES {
                        out[k] = x[k] ^ y[k];
                    }
                }
                Gate::Not(a) => {
                    let x = &done[a as usize];
                    for k in 0..LANES {
                        out[k] = x[k] ^ d;
                    }
                }
                Gate::And(a, b) => {
                    let (a0, b0) = (&done[a as usize], &done[b as usize]);
                    let mut hs = [Block::ZERO; 6 * LANES];
                    let mut tw = [0u128; 6 * LANES];
                    let mut bars = [(Block::ZERO, Block::ZERO); LANES];
                    for k in 0..LANES {
                        let (abar, bbar) = (a0[k] ^ d.select(a0[k].lsb()), b0[k] ^ d.select(b0[k].lsb()));
                        let x = abar ^ bbar;
                        bars[k] = (abar, bbar);
                        hs[6 * k..6 * k + 6].copy_from_slice(&[abar, abar ^ d, bbar, bbar ^ d, x, x ^ d]);
                        let [ta, tb, tx] = tweaks(offsets[k] + j);
                        tw[6 * k..6 * k + 6].copy_from_slice(&[ta, ta, tb, tb, tx, tx]);
                    }
                    h.hash_many(&mut hs, tw);
                    let random = rng.next_u32();
                    for k in 0..LANES {
                        let r = (random >> (2 * k)) as u8 & 3;
                        let hk: &[Block; 6] = hs[6 * k..6 * k + 6].try_into().expect("six hashes");
                        let (abar, bbar) = bars[k];
                        let (c0, gs, z) = garble_gate(abar, bbar, a0[k].lsb(), b0[k].lsb(), d, hk, r);
                        tables[k].push(gs, z);
                        out[k] = c0;
                    }
                    j += 1;
                }
            }
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
    })
}

/// Evaluates `LANES` instances: `(tables, input labels, gate offset)` each.
pub fn evaluate_lanes(
    h: &impl TweakableHash,
    c: &Circuit,
    inst: [(&Tables, &[Block], u64); LANES],
) -> [Vec<Block>; LANES] {
    let ands = c.and_count();
    assert!(inst.iter().all(|i| i.0.len() == ands), "one table per AND gate");
    let nin = c.input_wires() as usize;
    with_wires(c.wires() as usize, |w| {
        for (i, wi) in w.iter_mut().take(nin).enumerate() {
            *wi = std::array::from_fn(|k| inst[k].1[i]);
        }
        let mut j = 0usize;
        for (gi, g) in c.gates.iter().enumerate() {
            let (done, rest) = w.split_at_mut(nin + gi);
            let out = &mut rest[0];
            match *g {
                Gate::Xor(a, b) => {
                    let (x, y) = (&done[a as usize], &done[b as usize]);
                    for k in 0..LANES {
                        out[k] = x[k] ^ y[k];
                    }
                }
                Gate::Not(a) => *out = done[a as usize],
                Gate::And(a, b) => {
                    let (la, lb) = (&done[a as usize], &done[b as usize]);
                    let mut hs = [Block::ZERO; 3 * LANES];
                    let mut tw = [0u128; 3 * LANES];
                    for k in 0..LANES {
                        hs[3 * k..3 * k + 3].copy_from_slice(&[la[k], lb[k], la[k] ^ lb[k]]);
                        tw[3 * k..3 * k + 3].copy_from_slice(&tweaks(inst[k].2 + j as u64));
                    }
                    h.hash_many(&mut hs, tw);
                    for k in 0..LANES {
                        let (gs, z) = inst[k].0.gate(j);
                        let hk: &[Block; 3] = hs[3 * k..3 * k + 3].try_into().expect("three hashes");
                        out[k] = evaluate_gate(la[k], lb[k], hk, gs, z);
                    }
                    j += 1;
                }
            }
        }
        std::array::from_fn(|k| c.outputs.iter().map(|&o| w[o as usize][k]).collect())
    })
}
