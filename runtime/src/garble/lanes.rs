//! Lockstep garbling and evaluation of [`LANES`] instances of one circuit: each AND gate hashes
//! `4 · LANES` (garbling) or `2 · LANES` (evaluating) independent blocks in one AES batch, which
//! AES-NI pipelines; a single instance's ripple-carry chains would leave it idle. Results are
//! identical to the one-instance functions (same tweaks, same labels).

use std::cell::RefCell;

use veil_ir::circuit::{Circuit, Gate};

use super::{Block, Delta, Garbled, TweakableHash};

/// Instances processed together.
pub const LANES: usize = 16;

thread_local! {
    /// Each thread's wire labels of the circuit in flight, reused from call to call (a fresh
    /// vector of a few hundred kB per call cost an allocation and its page faults every 16
    /// instances). Shared by the lockstep garblers of both schemes (here and
    /// `three_halves_lanes`); every call overwrites the wires it reads before reading them
    /// (inputs first, then each gate's output in gate order).
    static WIRES: RefCell<Vec<[Block; LANES]>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's wire scratch, at least `n` wires long (not re-entrant).
pub(super) fn with_wires<T>(n: usize, f: impl FnOnce(&mut [[Block; LANES]]) -> T) -> T {
    WIRES.with(|cell| {
        let mut w = cell.borrow_mut();
        if w.len() < n {
            w.resize(n, [Block::ZERO; LANES]);
        }
        f(&mut w[..n])
    })
}

/// One instance to evaluate: its AND tables, one label per input wire, and its gate offset.
pub type Instance<'a> = (&'a [[Block; 2]], &'a [Block], u64);

/// Garbles `LANES` instances; `inputs[k]` and `offsets[k]` are instance `k`'s zero-labels and
/// gate offset.
///
/// Every wire's `LANES` labels sit side by side and each gate writes its output in place (wire
/// `inputs + g` for gate `g`); each lane's tables are allocated once and filled by index.
pub fn garble_lanes(
    h: &impl TweakableHash,
    c: &Circuit,
    delta: Delta,
    inputs: [&[Block]; LANES],
    offsets: [u64; LANES],
) -> [Garbled; LANES] {
    with_wires(c.wires() as usize, |w| garble_in(h, c, delta, inputs, offsets, w))
}

fn garble_in(
    h: &impl TweakableHash,
    c: &Circuit,
    delta: Delta,
    inputs: [&[Block]; LANES],
    offsets: [u64; LANES],
    w: &mut [[Block; LANES]],
) -> [Garbled; LANES] {
    let d = delta.block();
    let nin = c.input_wires() as usize;
    for (i, wi) in w.iter_mut().take(nin).enumerate() {
        *wi = std::array::from_fn(|k| inputs[k][i]);
    }
    let ands = c.and_count();
    let mut tables: [Vec<[Block; 2]>; LANES] = std::array::from_fn(|_| vec![[Block::ZERO; 2]; ands]);
    let base: [u128; LANES] = std::array::from_fn(|k| 2 * offsets[k] as u128);
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
            Gate::Not(a) => {
                let x = &done[a as usize];
                for k in 0..LANES {
                    out[k] = x[k] ^ d;
                }
            }
            Gate::And(a, b) => {
                let (a0, b0) = (&done[a as usize], &done[b as usize]);
                let mut hs = [Block::ZERO; 4 * LANES];
                let mut tw = [0u128; 4 * LANES];
                let t2 = 2 * j as u128;
                for k in 0..LANES {
                    let t = base[k] + t2;
                    hs[4 * k..4 * k + 4].copy_from_slice(&[a0[k], a0[k] ^ d, b0[k], b0[k] ^ d]);
                    tw[4 * k..4 * k + 4].copy_from_slice(&[t, t, t + 1, t + 1]);
                }
                h.hash_many(&mut hs, tw);
                for k in 0..LANES {
                    let [ha0, ha1, hb0, hb1] = [hs[4 * k], hs[4 * k + 1], hs[4 * k + 2], hs[4 * k + 3]];
                    let (pa, pb) = (a0[k].lsb(), b0[k].lsb());
                    let tg = ha0 ^ ha1 ^ d.select(pb);
                    let te = hb0 ^ hb1 ^ a0[k];
                    tables[k][j] = [tg, te];
                    out[k] = (ha0 ^ tg.select(pa)) ^ (hb0 ^ (te ^ a0[k]).select(pb));
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
}

/// Evaluates `LANES` instances: `(tables, input labels, gate offset)` each.
pub fn evaluate_lanes(h: &impl TweakableHash, c: &Circuit, inst: [Instance<'_>; LANES]) -> [Vec<Block>; LANES] {
    let ands = c.and_count();
    assert!(inst.iter().all(|i| i.0.len() == ands), "one table per AND gate");
    with_wires(c.wires() as usize, |w| evaluate_in(h, c, &inst, w))
}

fn evaluate_in(
    h: &impl TweakableHash,
    c: &Circuit,
    inst: &[Instance<'_>; LANES],
    w: &mut [[Block; LANES]],
) -> [Vec<Block>; LANES] {
    let nin = c.input_wires() as usize;
    for (i, wi) in w.iter_mut().take(nin).enumerate() {
        *wi = std::array::from_fn(|k| inst[k].1[i]);
    }
    let base: [u128; LANES] = std::array::from_fn(|k| 2 * inst[k].2 as u128);
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
                let mut hs = [Block::ZERO; 2 * LANES];
                let mut tw = [0u128; 2 * LANES];
                let t2 = 2 * j as u128;
                for k in 0..LANES {
                    hs[2 * k] = la[k];
                    hs[2 * k + 1] = lb[k];
                    tw[2 * k] = base[k] + t2;
                    tw[2 * k + 1] = base[k] + t2 + 1;
                }
                h.hash_many(&mut hs, tw);
                for k in 0..LANES {
                    let [tg, te] = inst[k].0[j];
                    out[k] = (hs[2 * k] ^ tg.select(la[k].lsb())) ^ (hs[2 * k + 1] ^ (te ^ la[k]).select(lb[k].lsb()));
                }
                j += 1;
            }
        }
    }
    std::array::from_fn(|k| c.outputs.iter().map(|&o| w[o as usize][k]).collect())
}
