//! Three-halves garbling (Rosulek–Roy, CRYPTO 2021): 1.5κ + 5 bits per AND gate — three 64-bit
//! half-ciphertexts and five control bits — against half-gates' 2κ, with free XOR kept.
//!
//! Sans-I/O like the half-gates engine in the parent module: [`garble`] turns a [`Circuit`] and
//! the garbler's secrets into [`Tables`] and decoding bits; [`evaluate`] turns tables and one
//! label per input wire into output labels, which decode with the same
//! [`colours`](super::colours) / [`decode`](super::decode) as half-gates.
//!
//! **The scheme.** Labels are split into halves, `X = (X_L, X_R)` (low and high 64 bits; the
//! colour bit is bit 0 of `X_L`). For an AND gate with colour-0 input labels `Ā`, `B̄` (`Ā` is
//! `A₀ ⊕ p_a·Δ` for the zero-label `A₀` and its colour `p_a`), the evaluator holding `A = Ā ⊕ iΔ`
//! and `B = B̄ ⊕ jΔ` (colours `i`, `j`) computes three hashes `H(A)`, `H(B)`, `H(A ⊕ B)` and
//! ```text
//! C_L = H(A)_L ⊕ H(A⊕B)_L ⊕ i·G₀ ⊕ (i⊕j)·G₂ ⊕ R_top · (A_L, A_R, B_L, B_R)
//! C_R = H(B)_L ⊕ H(A⊕B)_L ⊕ j·G₁ ⊕ (i⊕j)·G₂ ⊕ R_bot · (A_L, A_R, B_L, B_R)
//! ```
//! where `G₀, G₁, G₂` are the gate's half-ciphertexts and `R` (a 2×4 bit matrix applied to its
//! own label halves) is the matrix of its colour row `k = 2i + j`. The matrix is
//! `R = F0[k] ⊕ r₁·U1 ⊕ r₂·U2` with public constants ([`F0`], [`U1`], [`U2`]) and two bits
//! `r = (r₁, r₂)` that the evaluator decrypts from the five control bits `z` and one bit of
//! each hash (`r₁ = h(A) ⊕ h(A⊕B) ⊕ z₀ ⊕ i·z₂ ⊕ (i⊕j)·z₄`, `r₂ = h(B) ⊕ h(A⊕B) ⊕ z₁ ⊕ j·z₃ ⊕
//! (i⊕j)·z₄`). The garbler draws `(r₁, r₂)` of colour row 0 uniformly per gate; the other rows'
//! bits are shifted by the permute bits ([`SHIFT_A`], [`SHIFT_B`]), so in every row the
//! evaluator sees a uniform element of a public two-dimensional coset, independent of the true
//! input values. The constants solve the linear system that makes every row decrypt to
//! `C₀ ⊕ (a∧b)·Δ` (the system: docs/protocols.md; how they were found: docs/decisions.md; the
//! tests check all four rows).
//!
//! **Tweaks.** AND gate `j` of a garbling with gate offset `o` hashes `A`, `B`, `A ⊕ B` under
//! tweaks `T + 3(o+j)`, `T + 3(o+j) + 1`, `T + 3(o+j) + 2` with `T = 2^127` ([`TWEAK_DOMAIN`]):
//! disjoint from half-gates' tweaks (below `2^66`) even under one key, and never repeated under a
//! fresh [`HashKey`](super::HashKey) per garbling as long as offsets come from disjoint ranges
//! (as [`Batch`](super::Batch) hands out for half-gates).
//!
//! **Wire layout** ([`Tables::to_bytes`]): the `3n` half-ciphertexts of `n` AND gates as 8-byte
//! little-endian words in gate order (`G₀, G₁, G₂` per gate), then the `5n` control bits packed
//! least significant bit first (gate `j`'s `z₀..z₄` are bits `5j..5j+5`), zero-padded to a
//! byte: `24n + ⌈5n/8⌉ = ⌈197n/8⌉` bytes ([`table_bytes`]).

use rand::RngCore;
use veil_ir::circuit::{Circuit, Gate};

pub use super::three_halves_lanes::{evaluate_lanes, garble_lanes};
use super::{Block, Delta, TweakableHash};

/// Added to every three-halves tweak, so they never meet half-gates' (which stay below 2^66).
pub const TWEAK_DOMAIN: u128 = 1 << 127;

/// `R` of each colour row `k = 2i + j` when `r = 0` and the permute bits are 0. Bits 0–3: the
/// top row (coefficients of `A_L, A_R, B_L, B_R` in `C_L`); bits 4–7: the bottom row (`C_R`).
pub const F0: [u8; 4] = [0x99, 0x90, 0x09, 0x00];
/// Added to `R` (every row) when `r₁ = 1`.
pub const U1: u8 = 0x7e;
/// Added to `R` (every row) when `r₂ = 1`.
pub const U2: u8 = 0x97;
/// Row `k`'s `(r₁, r₂)` (bit 0, bit 1) is colour row 0's shifted by `SHIFT_A[k]` when `p_a = 1`.
pub const SHIFT_A: [u8; 4] = [0, 1, 3, 2];
/// ... and by `SHIFT_B[k]` when `p_b = 1`.
pub const SHIFT_B: [u8; 4] = [0, 2, 1, 3];

/// Control bits per AND gate.
pub const CONTROL_BITS: usize = 5;

/// Bytes of the tables of `ands` AND gates: `24·ands + ⌈5·ands/8⌉` (= `⌈197·ands/8⌉`).
pub fn table_bytes(ands: usize) -> usize {
    24 * ands + (CONTROL_BITS * ands).div_ceil(8)
}

/// Received table bytes that do not fit the circuit.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("three-halves tables for {ands} AND gates are {want} bytes, received {got}")]
pub struct TablesLengthError {
    /// AND gates of the circuit.
    pub ands: usize,
    /// Bytes expected ([`table_bytes`]).
    pub want: usize,
    /// Bytes received.
    pub got: usize,
}

/// The garbled tables of one circuit: three half-ciphertexts and five control bits per AND.
/// Public (they travel in the clear); `Debug` prints only their size.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Tables {
    halves: Vec<[u64; 3]>,
    control: Vec<u8>,
}

impl std::fmt::Debug for Tables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tables({} AND gates)", self.halves.len())
    }
}

impl Tables {
    pub(super) fn with_capacity(ands: usize) -> Self {
        Self { halves: Vec::with_capacity(ands), control: vec![0; (CONTROL_BITS * ands).div_ceil(8)] }
    }

    #[inline(always)]
    pub(super) fn push(&mut self, g: [u64; 3], z: u8) {
        let bit = CONTROL_BITS * self.halves.len();
        let word = u16::from(z & 0x1f) << (bit % 8);
        self.control[bit / 8] |= word as u8;
        if word > 0xff {
            self.control[bit / 8 + 1] |= (word >> 8) as u8;
        }
        self.halves.push(g);
    }

    /// AND gates covered.
    pub fn len(&self) -> usize {
        self.halves.len()
    }

    /// Whether there are no AND gates.
    pub fn is_empty(&self) -> bool {
        self.halves.is_empty()
    }

    /// Gate `j`'s half-ciphertexts and control bits (`z₀` in bit 0).
    #[inline(always)]
    pub(super) fn gate(&self, j: usize) -> ([u64; 3], u8) {
        let bit = CONTROL_BITS * j;
        let lo = u16::from(self.control[bit / 8]);
        let hi = self.control.get(bit / 8 + 1).map_or(0, |&b| u16::from(b));
        (self.halves[j], ((lo | hi << 8) >> (bit % 8)) as u8 & 0x1f)
    }

    /// The wire bytes (layout in the module doc), exactly [`table_bytes`]`(self.len())` long.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(table_bytes(self.len()));
        for g in &self.halves {
            for h in g {
                out.extend_from_slice(&h.to_le_bytes());
            }
        }
        out.extend_from_slice(&self.control);
        out
    }

    /// Tables of `ands` AND gates from their wire bytes; the length must be exact (the
    /// padding bits of the last control byte are ignored).
    pub fn from_bytes(bytes: &[u8], ands: usize) -> Result<Self, TablesLengthError> {
        let want = table_bytes(ands);
        if bytes.len() != want {
            return Err(TablesLengthError { ands, want, got: bytes.len() });
        }
        let (h, control) = bytes.split_at(24 * ands);
        let halves = h
            .chunks_exact(24)
            .map(|g| std::array::from_fn(|m| u64::from_le_bytes(g[8 * m..8 * m + 8].try_into().expect("8 bytes"))))
            .collect();
        Ok(Self { halves, control: control.to_vec() })
    }
}

/// A circuit garbled with three halves: what the garbler sends (tables) and keeps.
pub struct Garbled {
    /// The AND gates' tables, in gate order.
    pub tables: Tables,
    /// Colour bit of each output wire's zero-label: `value = colour(label) ⊕ decode`.
    pub decode: Vec<bool>,
    /// Zero-labels of the output wires (for chaining into further circuits).
    pub output_zero: Vec<Block>,
}

#[inline(always)]
fn lo(b: Block) -> u64 {
    b.0 as u64
}

#[inline(always)]
fn hi(b: Block) -> u64 {
    (b.0 >> 64) as u64
}

/// The control bit of a hash output: its bit 64 (the label halves use bits 0–63).
#[inline(always)]
fn cbit(b: Block) -> u8 {
    (b.0 >> 64) as u8 & 1
}

/// The three tweaks of AND gate number `gate` (offset included).
#[inline(always)]
pub(super) fn tweaks(gate: u64) -> [u128; 3] {
    let t = TWEAK_DOMAIN + 3 * u128::from(gate);
    [t, t + 1, t + 2]
}

/// Each colour row's `(r₁, r₂)` given colour row 0's `r` and the permute bits.
const fn row_bits(r: u8, pa: bool, pb: bool) -> [u8; 4] {
    let mut rows = [0u8; 4];
    let mut k = 0;
    while k < 4 {
        rows[k] = r ^ if pa { SHIFT_A[k] } else { 0 } ^ if pb { SHIFT_B[k] } else { 0 };
        k += 1;
    }
    rows
}

/// The matrix `R` of colour row `k` for its bits `rk`.
const fn row_matrix(k: usize, rk: u8) -> u8 {
    F0[k] ^ if rk & 1 == 1 { U1 } else { 0 } ^ if rk & 2 == 2 { U2 } else { 0 }
}

/// What the garbler of an AND gate computes from its permute bits and random bits alone:
/// the coefficients of `C_L, C_R, G₀, G₁, G₂` over `(Ā_L, Ā_R, B̄_L, B̄_R, Δ_L, Δ_R)` (bits 0–5),
/// and the part of the control bits `z₀..z₄` that is not hash bits.
const fn garbler_plan(pa: bool, pb: bool, r: u8) -> ([u8; 5], u8) {
    let rows = row_bits(r, pa, pb);
    let mut top = [0u8; 4];
    let mut bot = [0u8; 4];
    let mut k = 0;
    while k < 4 {
        let m = row_matrix(k, rows[k]);
        top[k] = m & 0xf;
        bot[k] = m >> 4;
        k += 1;
    }
    // Over (Ā_L, Ā_R, B̄_L, B̄_R), read off the four rows: row 00 gives C; rows 11 and 01 add
    // G₀ / G₁ and G₂ to it.
    let (c1, c2) = (top[0], bot[0]);
    let (g0, g1, g2) = (top[3] ^ top[0], bot[3] ^ bot[0], top[1] ^ top[0]);
    // Over (Δ_L, Δ_R) (bits 0, 1): what makes the row of inputs (a, b) carry (a∧b)·Δ.
    let (and, a, b) = (pa && pb, pa, pb);
    let c1d = if and { 1 } else { 0 };
    let c2d = if and { 2 } else { 0 };
    let g2d = if a { 1 } else { 0 } ^ (c1 >> 2) ^ (g2 >> 2);
    let g0d = g2d ^ if b { 1 } else { 0 } ^ (c1 & 3) ^ (g0 & 3) ^ (g2 & 3);
    let g1d = g2d ^ if a { 2 } else { 0 } ^ (c2 >> 2) ^ (g1 >> 2) ^ (g2 >> 2);
    let coef = [c1 | c1d << 4, c2 | c2d << 4, g0 | g0d << 4, g1 | g1d << 4, g2 | g2d << 4];
    let (r0, r1, r3) = (rows[0], rows[1], rows[3]);
    let z = (r0 & 1) | (r0 >> 1) << 1 | ((r3 ^ r0) & 1) << 2 | ((r3 ^ r0) >> 1) << 3 | ((r1 ^ r0) & 1) << 4;
    (coef, z)
}

/// A coefficient vector as XOR masks (all ones where the coefficient is 1).
const fn masks<const N: usize>(coef: u8) -> [u64; N] {
    let mut m = [0u64; N];
    let mut i = 0;
    while i < N {
        m[i] = if (coef >> i) & 1 == 1 { u64::MAX } else { 0 };
        i += 1;
    }
    m
}

/// [`garbler_plan`] for every `(p_a, p_b, r)` (index `p_a << 3 | p_b << 2 | r`), coefficients
/// expanded to masks: a gate's linear algebra is then 30 AND/XOR pairs.
static GARBLER_PLANS: [([[u64; 6]; 5], u8); 16] = {
    let mut plans = [([[0u64; 6]; 5], 0u8); 16];
    let mut idx = 0;
    while idx < 16 {
        let (coef, z) = garbler_plan(idx & 8 != 0, idx & 4 != 0, (idx & 3) as u8);
        let mut o = 0;
        while o < 5 {
            plans[idx].0[o] = masks::<6>(coef[o]);
            o += 1;
        }
        plans[idx].1 = z;
        idx += 1;
    }
    plans
};

/// [`row_matrix`] for every `(k, rₖ)` (index `k << 2 | rₖ`): the evaluator's top and bottom rows
/// as masks over `(A_L, A_R, B_L, B_R)`.
static EVALUATOR_ROWS: [[[u64; 4]; 2]; 16] = {
    let mut rows = [[[0u64; 4]; 2]; 16];
    let mut idx = 0;
    while idx < 16 {
        let m = row_matrix(idx >> 2, (idx & 3) as u8);
        rows[idx] = [masks::<4>(m & 0xf), masks::<4>(m >> 4)];
        idx += 1;
    }
    rows
};

/// `⊕ₘ v[m] & masks[m]`.
#[inline(always)]
fn combine<const N: usize>(masks: &[u64; N], v: &[u64; N]) -> u64 {
    let mut acc = 0;
    for m in 0..N {
        acc ^= v[m] & masks[m];
    }
    acc
}

/// One AND gate garbled: its output zero-label, half-ciphertexts and control bits. `hs` are the
/// hashes of `[Ā, Ā⊕Δ, B̄, B̄⊕Δ, Ā⊕B̄, Ā⊕B̄⊕Δ]` under the gate's tweaks `[t, t, t+1, t+1, t+2, t+2]`.
#[inline(always)]
pub(super) fn garble_gate(
    abar: Block,
    bbar: Block,
    pa: bool,
    pb: bool,
    d: Block,
    hs: &[Block; 6],
    r: u8,
) -> (Block, [u64; 3], u8) {
    let (m, zr) = &GARBLER_PLANS[(pa as usize) << 3 | (pb as usize) << 2 | (r & 3) as usize];
    let x = [lo(abar), hi(abar), lo(bbar), hi(bbar), lo(d), hi(d)];
    let [ha0, ha1, hb0, hb1, hx0, hx1] = *hs;
    let cl = lo(ha0) ^ lo(hx0) ^ combine(&m[0], &x);
    let cr = lo(hb0) ^ lo(hx0) ^ combine(&m[1], &x);
    let g = [
        lo(ha0) ^ lo(ha1) ^ combine(&m[2], &x),
        lo(hb0) ^ lo(hb1) ^ combine(&m[3], &x),
        lo(hx0) ^ lo(hx1) ^ combine(&m[4], &x),
    ];
    let zh = (cbit(ha0) ^ cbit(hx0))
        | (cbit(hb0) ^ cbit(hx0)) << 1
        | (cbit(ha0) ^ cbit(ha1)) << 2
        | (cbit(hb0) ^ cbit(hb1)) << 3
        | (cbit(hx0) ^ cbit(hx1)) << 4;
    (Block(u128::from(cl) | u128::from(cr) << 64), g, zr ^ zh)
}

/// The evaluator's row bits `(r₁, r₂)` of one AND gate: colours `i`, `j`, hashes
/// `[H(A), H(B), H(A⊕B)]`, control bits `z`.
#[inline(always)]
fn decrypt_row(i: bool, j: bool, hs: &[Block; 3], z: u8) -> u8 {
    let zb = |m: u32| (z >> m) & 1;
    let (i, j) = (i as u8, j as u8);
    let ij = i ^ j;
    let r1 = cbit(hs[0]) ^ cbit(hs[2]) ^ zb(0) ^ (i & zb(2)) ^ (ij & zb(4));
    let r2 = cbit(hs[1]) ^ cbit(hs[2]) ^ zb(1) ^ (j & zb(3)) ^ (ij & zb(4));
    r1 | r2 << 1
}

/// One AND gate evaluated on labels `la`, `lb` with hashes `hs = [H(A), H(B), H(A⊕B)]`.
#[inline(always)]
pub(super) fn evaluate_gate(la: Block, lb: Block, hs: &[Block; 3], g: [u64; 3], z: u8) -> Block {
    let (i, j) = (la.lsb(), lb.lsb());
    let k = 2 * i as usize + j as usize;
    let [top, bot] = &EVALUATOR_ROWS[k << 2 | decrypt_row(i, j, hs, z) as usize];
    let x = [lo(la), hi(la), lo(lb), hi(lb)];
    let sel = |v: u64, bit: bool| v & u64::from(bit).wrapping_neg();
    let cl = lo(hs[0]) ^ lo(hs[2]) ^ sel(g[0], i) ^ sel(g[2], i ^ j) ^ combine(top, &x);
    let cr = lo(hs[1]) ^ lo(hs[2]) ^ sel(g[1], j) ^ sel(g[2], i ^ j) ^ combine(bot, &x);
    Block(u128::from(cl) | u128::from(cr) << 64)
}

/// Garbles `c` with input zero-labels `inputs` (one per input wire), AND gates tweaked from
/// `gate_offset`, and two fresh random bits per AND gate from `rng` (a CSPRNG outside tests).
pub fn garble(
    h: &impl TweakableHash,
    c: &Circuit,
    delta: Delta,
    inputs: &[Block],
    gate_offset: u64,
    rng: &mut impl RngCore,
) -> Garbled {
    assert_eq!(inputs.len(), c.input_wires() as usize, "one zero-label per input wire");
    let d = delta.block();
    let mut w: Vec<Block> = Vec::with_capacity(c.wires() as usize);
    w.extend_from_slice(inputs);
    let ands = c.and_count();
    let mut tables = Tables::with_capacity(ands);
    let mut gate = gate_offset;
    let mut random = 0u64;
    for g in &c.gates {
        let out = match *g {
            Gate::Xor(a, b) => w[a as usize] ^ w[b as usize],
            Gate::Not(a) => w[a as usize] ^ d,
            Gate::And(a, b) => {
                let (a0, b0) = (w[a as usize], w[b as usize]);
                let (pa, pb) = (a0.lsb(), b0.lsb());
                let (abar, bbar) = (a0 ^ d.select(pa), b0 ^ d.select(pb));
                let x = abar ^ bbar;
                let [ta, tb, tx] = tweaks(gate);
                let mut hs = [abar, abar ^ d, bbar, bbar ^ d, x, x ^ d];
                h.hash_many(&mut hs, [ta, ta, tb, tb, tx, tx]);
                let n = (gate - gate_offset) % 32;
                if n == 0 {
                    random = rng.next_u64();
                }
                let r = (random >> (2 * n)) as u8 & 3;
                let (c0, gs, z) = garble_gate(abar, bbar, pa, pb, d, &hs, r);
                tables.push(gs, z);
                gate += 1;
                c0
            }
        };
        w.push(out);
    }
    let output_zero: Vec<Block> = c.outputs.iter().map(|&o| w[o as usize]).collect();
    Garbled { tables, decode: output_zero.iter().map(|b| b.lsb()).collect(), output_zero }
}

/// Evaluates a garbled `c` on one label per input wire; returns the output labels. `tables`
/// must cover exactly `c`'s AND gates ([`Tables::from_bytes`] checks the byte count).
pub fn evaluate(
    h: &impl TweakableHash,
    c: &Circuit,
    tables: &Tables,
    inputs: &[Block],
    gate_offset: u64,
) -> Vec<Block> {
    assert_eq!(inputs.len(), c.input_wires() as usize, "one label per input wire");
    assert_eq!(tables.len(), c.and_count(), "one table per AND gate");
    let mut w: Vec<Block> = Vec::with_capacity(c.wires() as usize);
    w.extend_from_slice(inputs);
    let mut j = 0usize;
    for g in &c.gates {
        let out = match *g {
            Gate::Xor(a, b) => w[a as usize] ^ w[b as usize],
            Gate::Not(a) => w[a as usize],
            Gate::And(a, b) => {
                let (la, lb) = (w[a as usize], w[b as usize]);
                let mut hs = [la, lb, la ^ lb];
                h.hash_many(&mut hs, tweaks(gate_offset + j as u64));
                let (gs, z) = tables.gate(j);
                j += 1;
                evaluate_gate(la, lb, &hs, gs, z)
            }
        };
        w.push(out);
    }
    c.outputs.iter().map(|&o| w[o as usize]).collect()
}

#[cfg(test)]
#[path = "three_halves_tests.rs"]
mod tests;
