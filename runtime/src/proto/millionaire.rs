//! The millionaire comparison of CrypTFlow2 / Cheetah over random-choice OT: XOR shares of
//! `[x > z]` for the server's `x` and the client's `z`, both `bits`-bit unsigned
//! (docs/protocols.md, "ReLU over OT").
//!
//! The values are cut into digits of `digit` bits, lowest first (the top digit is narrower when
//! `digit` does not divide `bits`). Per digit of width `w`, a 1-out-of-2^w OT built from `w`
//! random-choice OTs: the client's random choices form `c`, and the key of entry `u` is
//! `K_u = H_u(⊕_t p_t[u_t])` (fixed-key AES TCCR hash with tweak `u`), so the client knows `K_c`
//! only. Online the client sends `e = z_j ⊕ c` (the derandomisation), the server answers per
//! entry `u` the bits `[x_j > v] ⊕ s_gt`, `[x_j = v] ⊕ s_eq` for `v = u ⊕ e`, masked with `K_u`;
//! the client reads entry `c`, i.e. `v = z_j`. `s_gt`, `s_eq` are fresh random bits: the server's
//! shares of the leaf bits. The lowest digit needs only its `gt` bit.
//!
//! The leaves then combine in a log-depth tree, node pairs `(lo, hi)` adjacent:
//! `gt = gt_hi ⊕ (eq_hi ∧ gt_lo)`, `eq = eq_hi ∧ eq_lo` (no `eq` for a node holding the lowest
//! digit: it is never used), the ANDs on Boolean triples ([`super::bit_triple`]), one opening
//! per level for all comparisons and pairs.
//!
//! A comparison [`Params::with_eq`] also yields shares of `[x = z]`: every digit's table then
//! carries its `eq` bit and every node its `eq` AND (the fused truncation of
//! [`super::relu_ot`] joins a lower comparison's result to it).

use cryprot_core::Block as CBlock;
use cryprot_core::aes_hash::FIXED_KEY_HASH;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use rayon::prelude::*;

use crate::garble::Block;
use crate::wire::{BitReader, BitWriter, unpack_bits};

/// The shape of a comparison: width and digit size. Public (both parties derive every count
/// and the AND tree from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Width of the compared values, 1..=64.
    pub bits: u32,
    /// Digit size `m`, 1..=8.
    pub digit: u32,
    /// Whether the comparison also yields `[x = z]` ([`Tree::result_eq`]).
    pub eq: bool,
}

impl Params {
    /// A comparison of `bits`-bit values on `digit`-bit digits.
    ///
    /// Panics outside `1 ≤ bits ≤ 64`, `1 ≤ digit ≤ 8` (a plan never asks for that).
    pub fn new(bits: u32, digit: u32) -> Params {
        assert!(
            (1..=64).contains(&bits) && (1..=8).contains(&digit),
            "comparison of {bits} bits on {digit}-bit digits"
        );
        Params { bits, digit, eq: false }
    }

    /// [`Params::new`] for a comparison that also yields `[x = z]`.
    pub fn with_eq(bits: u32, digit: u32) -> Params {
        Params { eq: true, ..Params::new(bits, digit) }
    }

    /// Whether digit `j` carries an `eq` bit: all but the lowest, or all with [`Params::eq`].
    fn has_eq(&self, j: usize) -> bool {
        j > 0 || self.eq
    }

    /// Bits of one digit's table entry: `gt`, and `eq` where [`Params::has_eq`].
    fn entry_bits(&self, j: usize) -> u32 {
        1 + u32::from(self.has_eq(j))
    }

    /// Digit widths, lowest digit first.
    pub fn widths(&self) -> Vec<u32> {
        (0..self.bits.div_ceil(self.digit)).map(|j| self.digit.min(self.bits - j * self.digit)).collect()
    }

    /// Number of digits (leaves).
    pub fn digits(&self) -> usize {
        self.bits.div_ceil(self.digit) as usize
    }

    /// Random-choice OTs (server sending) per comparison for the leaves: one per bit.
    pub fn leaf_rots(&self) -> usize {
        self.bits as usize
    }

    /// Bits of the server's table message per comparison.
    pub fn table_bits(&self) -> usize {
        self.widths().iter().enumerate().map(|(j, &w)| (1usize << w) * self.entry_bits(j) as usize).sum()
    }

    /// Bits the client keeps per comparison between the phases: per digit its random choice
    /// (`w` bits) and the key bits of that entry it will use (one for the lowest digit, `gt`
    /// only, unless [`Params::eq`]; two for the others).
    pub fn client_bits(&self) -> usize {
        self.bits as usize + 2 * self.digits() - usize::from(!self.eq)
    }

    /// Node counts of the tree's levels, leaves first, ending at 1.
    fn level_nodes(&self) -> Vec<usize> {
        let mut v = vec![self.digits()];
        while *v.last().expect("nonempty") > 1 {
            let c = *v.last().expect("nonempty");
            v.push(c.div_ceil(2));
        }
        v
    }

    /// ANDs per comparison at each level of the tree (one entry per opening round).
    pub fn level_ands(&self) -> Vec<usize> {
        self.level_groups().into_iter().map(|(s, p)| s + 2 * p).collect()
    }

    /// Singles and pairs per comparison at each level of the tree ([`Tree::pending_groups`]).
    pub fn level_groups(&self) -> Vec<(usize, usize)> {
        let nodes = self.level_nodes();
        nodes[..nodes.len() - 1].iter().map(|&c| if self.eq { (0, c / 2) } else { (1, c / 2 - 1) }).collect()
    }

    /// ANDs (Boolean triples) per comparison.
    pub fn ands(&self) -> usize {
        self.level_ands().iter().sum()
    }
}

/// Bytes of the client's derandomisation message for `n` comparisons.
pub fn choice_bytes(p: Params, n: usize) -> usize {
    (n * p.bits as usize).div_ceil(8)
}

/// Bytes of the server's table message for `n` comparisons.
pub fn table_bytes(p: Params, n: usize) -> usize {
    (n * p.table_bits()).div_ceil(8)
}

/// Bytes the client keeps for `n` comparisons between the phases ([`client_material`]).
pub fn client_bytes(p: Params, n: usize) -> usize {
    (n * p.client_bits()).div_ceil(8)
}

/// Bytes the server keeps for `n` comparisons between the phases ([`server_keys`]): the key
/// bits that mask its tables, as many as the tables have ([`table_bytes`]).
pub fn server_bytes(p: Params, n: usize) -> usize {
    table_bytes(p, n)
}

/// Comparisons per parallel chunk: a multiple of 8, so every chunk's bit-packed part of a
/// message or of the material fills whole bytes and the chunks' bytes concatenate.
const CHUNK: usize = 64;

fn low(x: u64, bits: u32) -> u64 {
    if bits >= 64 { x } else { x & ((1u64 << bits) - 1) }
}

/// The key blocks `⊕_t p_t[u_t]` of every entry `u` of each digit of one comparison, digits in
/// order, and the tweak (`u`) of each; their TCCR hashes are the keys `K_u`.
fn entry_blocks(widths: &[u32], pads: &[[Block; 2]], x: &mut Vec<CBlock>, tweaks: &mut Vec<u64>) {
    let mut off = 0usize;
    for &w in widths {
        let digit = &pads[off..off + w as usize];
        for u in 0..1u64 << w {
            let acc = digit.iter().enumerate().fold(0u128, |acc, (t, p)| acc ^ p[((u >> t) & 1) as usize].0);
            x.push(CBlock::from(acc));
            tweaks.push(u);
        }
        off += w as usize;
    }
}

/// The server's material for comparisons with the pads of its `n · p.leaf_rots()` random-choice
/// OTs (comparison-major, lowest bit first), hashed down offline: per comparison, digit and
/// entry `u`, the bits of `K_u = H_u(⊕_t p_t[u_t])` (fixed-key AES TCCR hash, tweak `u`) that
/// mask the table's entry, in table order (bit 0 masks `gt`, bit 1 `eq`, no `eq` for the lowest
/// digit): exactly [`server_bytes`]. The pads can be dropped after.
pub fn server_keys(p: Params, pads: &[[Block; 2]]) -> Vec<u8> {
    let bits = p.leaf_rots();
    assert!(pads.len().is_multiple_of(bits), "millionaire: pads for whole comparisons");
    crate::in_compute_pool(|| {
        pads.par_chunks(CHUNK * bits).map(|c| server_keys_serial(p, c)).collect::<Vec<_>>().concat()
    })
}

/// [`server_keys`] on one chunk.
fn server_keys_serial(p: Params, pads: &[[Block; 2]]) -> Vec<u8> {
    let (widths, bits) = (p.widths(), p.leaf_rots());
    let mut out = BitWriter::default();
    let (mut x, mut tweaks) = (Vec::new(), Vec::new());
    for pads in pads.chunks_exact(bits) {
        x.clear();
        tweaks.clear();
        entry_blocks(&widths, pads, &mut x, &mut tweaks);
        FIXED_KEY_HASH.tccr_hash_slice_mut(&mut x, |i| CBlock::from(tweaks[i] as u128));
        let mut k = x.iter().map(|&b| (u128::from(b) & 3) as u64);
        for (j, &w) in widths.iter().enumerate() {
            for _ in 0..1u64 << w {
                let key = k.next().expect("one key per entry");
                out.push(if p.has_eq(j) { key } else { key & 1 }, p.entry_bits(j));
            }
        }
    }
    out.finish()
}

/// The client's material for comparisons on its halves of `n · p.leaf_rots()` random-choice
/// OTs, hashed down offline: per comparison and digit its choice `c` (`w` bits) and the bits of
/// its entry's key `K_c` (the same hash of the pads it holds; one bit for the lowest digit, two
/// for the others), exactly [`client_bytes`]. The pads can be dropped after.
pub fn client_material(p: Params, choices: &[bool], pads: &[Block]) -> Vec<u8> {
    let bits = p.leaf_rots();
    assert!(choices.len() == pads.len() && pads.len().is_multiple_of(bits), "millionaire: OTs for whole comparisons");
    crate::in_compute_pool(|| {
        choices
            .par_chunks(CHUNK * bits)
            .zip(pads.par_chunks(CHUNK * bits))
            .map(|(c, q)| client_material_serial(p, c, q))
            .collect::<Vec<_>>()
            .concat()
    })
}

/// [`client_material`] on one chunk.
fn client_material_serial(p: Params, choices: &[bool], pads: &[Block]) -> Vec<u8> {
    let (widths, bits) = (p.widths(), p.leaf_rots());
    let (mut x, mut cs) = (Vec::with_capacity(widths.len()), Vec::with_capacity(widths.len()));
    let mut out = BitWriter::default();
    for (choices, pads) in choices.chunks_exact(bits).zip(pads.chunks_exact(bits)) {
        x.clear();
        cs.clear();
        let mut off = 0usize;
        for &w in &widths {
            let at = off..off + w as usize;
            cs.push(choices[at.clone()].iter().enumerate().fold(0u64, |acc, (t, &b)| acc | (u64::from(b) << t)));
            x.push(CBlock::from(pads[at].iter().fold(0u128, |acc, p| acc ^ p.0)));
            off += w as usize;
        }
        FIXED_KEY_HASH.tccr_hash_slice_mut(&mut x, |i| CBlock::from(cs[i] as u128));
        for (j, &w) in widths.iter().enumerate() {
            let key = (u128::from(x[j]) & 3) as u64;
            out.push(cs[j], w);
            out.push(if p.has_eq(j) { key } else { key & 1 }, p.entry_bits(j));
        }
    }
    out.finish()
}

/// One party's XOR shares of the leaf bits, `gt` and `eq` per comparison and digit
/// (comparison-major, lowest digit first; `eq` of the lowest digit is unused). Secret.
#[derive(Clone, Default)]
pub struct Leaves {
    gt: Vec<bool>,
    eq: Vec<bool>,
}

impl std::fmt::Debug for Leaves {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Leaves {{ bits: {}, <redacted> }}", self.gt.len())
    }
}

/// The server's side before the client's derandomisation: its values and key bits. Secret.
pub struct Server {
    p: Params,
    x: Vec<u64>,
    keys: Vec<u8>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "millionaire::Server {{ n: {}, <redacted> }}", self.x.len())
    }
}

impl Server {
    /// Comparisons of the server's `x` (each `< 2^bits`) with the key bits of [`server_keys`]
    /// for `x.len()` comparisons.
    pub fn new(p: Params, x: Vec<u64>, keys: Vec<u8>) -> Server {
        assert_eq!(keys.len(), server_bytes(p, x.len()), "millionaire: keys for {} comparisons", x.len());
        Server { p, x, keys }
    }

    /// The table message (exactly [`table_bytes`]) for the client's derandomisation `choice`
    /// (exactly [`choice_bytes`]), and the server's leaf shares: fresh random bits from `rng`.
    pub fn tables(self, choice: &[u8], rng: &mut (impl Rng + ?Sized)) -> (Vec<u8>, Leaves) {
        let bits = self.p.bits as usize;
        let e = unpack_bits(choice, self.x.len() * bits);
        // Per chunk of comparisons its own CSPRNG, seeded from `rng`, for the leaf masks.
        let seeds: Vec<[u8; 32]> = (0..self.x.len().div_ceil(CHUNK)).map(|_| rng.random()).collect();
        let parts: Vec<(Vec<u8>, Leaves)> = crate::in_compute_pool(|| {
            self.x
                .par_chunks(CHUNK)
                .zip(e.par_chunks(CHUNK * bits))
                .zip(seeds.par_iter())
                .map(|((x, e), seed)| self.tables_serial(x, e, &mut ChaCha12Rng::from_seed(*seed)))
                .collect()
        });
        let mut leaves = Leaves::default();
        let mut tables = Vec::with_capacity(table_bytes(self.p, self.x.len()));
        for (t, l) in parts {
            tables.extend(t);
            leaves.gt.extend(l.gt);
            leaves.eq.extend(l.eq);
        }
        // The keys are in table order: masking is one XOR per byte.
        tables.iter_mut().zip(&self.keys).for_each(|(t, k)| *t ^= k);
        (tables, leaves)
    }

    /// The unmasked tables and leaf shares of the comparisons of `xs`, with their
    /// derandomisation bits `e`.
    fn tables_serial(&self, xs: &[u64], e: &[bool], rng: &mut ChaCha12Rng) -> (Vec<u8>, Leaves) {
        let widths = self.p.widths();
        let bits = self.p.bits as usize;
        let mut out = BitWriter::default();
        let mut leaves = Leaves::default();
        for (i, &x) in xs.iter().enumerate() {
            let mut off = 0usize;
            for (j, &w) in widths.iter().enumerate() {
                let xj = low(x >> off, w);
                let ej = (0..w as usize).fold(0u64, |acc, t| acc | (u64::from(e[i * bits + off + t]) << t));
                let (sgt, seq): (bool, bool) = (rng.random(), rng.random());
                for u in 0..1u64 << w {
                    let v = u ^ ej;
                    out.push(u64::from((xj > v) ^ sgt), 1);
                    if self.p.has_eq(j) {
                        out.push(u64::from((xj == v) ^ seq), 1);
                    }
                }
                leaves.gt.push(sgt);
                leaves.eq.push(seq && self.p.has_eq(j));
                off += w as usize;
            }
        }
        (out.finish(), leaves)
    }
}

/// The client's side before the server's tables: its choices and keys ([`client_material`]).
/// Secret.
pub struct Client {
    p: Params,
    n: usize,
    material: Vec<u8>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "millionaire::Client {{ n: {}, <redacted> }}", self.n)
    }
}

impl Client {
    /// Comparisons with the client's `z` (each `< 2^bits`) on its material of [`client_material`]
    /// for `z.len()` comparisons: the state and the derandomisation message ([`choice_bytes`]),
    /// `z ⊕ c` bit by bit.
    pub fn new(p: Params, z: &[u64], material: Vec<u8>) -> (Client, Vec<u8>) {
        assert_eq!(material.len(), client_bytes(p, z.len()), "millionaire: material for {} comparisons", z.len());
        let widths = p.widths();
        let mut r = BitReader::new(&material);
        let mut e = BitWriter::default();
        for &zi in z {
            let mut off = 0u32;
            for (j, &w) in widths.iter().enumerate() {
                let c = r.take(w);
                r.take(p.entry_bits(j));
                e.push(low(zi >> off, w) ^ c, w);
                off += w;
            }
        }
        (Client { p, n: z.len(), material }, e.finish())
    }

    /// The client's leaf shares from the server's table message (exactly [`table_bytes`]).
    pub fn leaves(self, tables: &[u8]) -> Leaves {
        // Chunks of whole bytes of both the material and the tables.
        let (m, t) = (CHUNK * self.p.client_bits() / 8, CHUNK * self.p.table_bits() / 8);
        let parts: Vec<Leaves> = crate::in_compute_pool(|| {
            (0..self.n.div_ceil(CHUNK))
                .into_par_iter()
                .map(|k| {
                    let count = CHUNK.min(self.n - k * CHUNK);
                    self.leaves_serial(count, &self.material[k * m..], tables.get(k * t..).unwrap_or_default())
                })
                .collect()
        });
        let mut leaves = Leaves::default();
        for l in parts {
            leaves.gt.extend(l.gt);
            leaves.eq.extend(l.eq);
        }
        leaves
    }

    /// The leaf shares of `count` comparisons from their material and tables onwards.
    fn leaves_serial(&self, count: usize, material: &[u8], tables: &[u8]) -> Leaves {
        let widths = self.p.widths();
        let mut m = BitReader::new(material);
        let mut r = BitReader::new(tables);
        let mut leaves = Leaves::default();
        for _ in 0..count {
            for (j, &w) in widths.iter().enumerate() {
                let c = m.take(w);
                let has_eq = self.p.has_eq(j);
                let per = self.p.entry_bits(j) as usize;
                let key = m.take(per as u32);
                // Skip to entry c, read it, skip the rest of the digit's table.
                skip(&mut r, c as usize * per);
                let gt = r.take(1) == 1;
                let eq = if has_eq { r.take(1) == 1 } else { false };
                skip(&mut r, ((1usize << w) - 1 - c as usize) * per);
                leaves.gt.push(gt ^ (key & 1 == 1));
                leaves.eq.push(has_eq && (eq ^ (key & 2 == 2)));
            }
        }
        leaves
    }
}

fn skip(r: &mut BitReader<'_>, mut n: usize) {
    while n > 0 {
        let k = n.min(64);
        r.take(k as u32);
        n -= k;
    }
}

/// One level's ANDs as singles `(x, y)` and pairs `(x, y₁, y₂)` sharing `x`
/// ([`super::bit_triple::Triples::open_groups`]). Secret.
#[derive(Default)]
pub struct Groups {
    /// Single ANDs `x ∧ y`: this party's shares of `x`, of `y`.
    pub singles: (Vec<bool>, Vec<bool>),
    /// Pairs `x ∧ y₁`, `x ∧ y₂`: this party's shares of `x`, `y₁`, `y₂`.
    pub pairs: (Vec<bool>, Vec<bool>, Vec<bool>),
}

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Groups {{ counts: {:?}, <redacted> }}", self.counts())
    }
}

impl Groups {
    /// Appends `other`'s singles and pairs after this batch's.
    pub fn extend(&mut self, other: Groups) {
        self.singles.0.extend(other.singles.0);
        self.singles.1.extend(other.singles.1);
        self.pairs.0.extend(other.pairs.0);
        self.pairs.1.extend(other.pairs.1);
        self.pairs.2.extend(other.pairs.2);
    }

    /// Singles and pairs in the batch.
    pub fn counts(&self) -> (usize, usize) {
        (self.singles.0.len(), self.pairs.0.len())
    }
}

/// The combining tree of one batch of comparisons for one party: its current level's node
/// shares. Each level is one AND batch ([`Tree::pending`] → the ANDs → [`Tree::advance`]).
/// Secret.
pub struct Tree {
    n: usize,
    nodes: usize,
    /// Whether the lowest node's `eq` is kept ([`Params::eq`]).
    full: bool,
    gt: Vec<bool>,
    eq: Vec<bool>,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tree {{ n: {}, nodes: {}, <redacted> }}", self.n, self.nodes)
    }
}

impl Tree {
    /// The tree over `leaves` of `n` comparisons with parameters `p`.
    pub fn new(p: Params, n: usize, leaves: Leaves) -> Tree {
        assert_eq!(leaves.gt.len(), n * p.digits());
        Tree { n, nodes: p.digits(), full: p.eq, gt: leaves.gt, eq: leaves.eq }
    }

    /// The AND inputs `(x, y)` of the next level, comparison-major, per pair `(eq_hi, gt_lo)`
    /// then (but for the lowest pair, unless [`Params::eq`]) `(eq_hi, eq_lo)`; `None` when the
    /// tree is done.
    pub fn pending(&self) -> Option<(Vec<bool>, Vec<bool>)> {
        if self.nodes <= 1 {
            return None;
        }
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..self.n {
            let at = i * self.nodes;
            for k in 0..self.nodes / 2 {
                let (lo, hi) = (at + 2 * k, at + 2 * k + 1);
                x.push(self.eq[hi]);
                y.push(self.gt[lo]);
                if k > 0 || self.full {
                    x.push(self.eq[hi]);
                    y.push(self.eq[lo]);
                }
            }
        }
        Some((x, y))
    }

    /// [`Tree::pending`] as a batch of singles and pairs ([`super::bit_triple`]): the two ANDs
    /// of a pair share `eq_hi`. Singles `(x, y)`: the lowest pair's `eq_hi ∧ gt_lo` (unless
    /// [`Params::eq`]); pairs `(x, y₁, y₂)`: `eq_hi` with `gt_lo`, `eq_lo`.
    pub fn pending_groups(&self) -> Option<Groups> {
        if self.nodes <= 1 {
            return None;
        }
        let mut g = Groups::default();
        for i in 0..self.n {
            let at = i * self.nodes;
            for k in 0..self.nodes / 2 {
                let (lo, hi) = (at + 2 * k, at + 2 * k + 1);
                if k > 0 || self.full {
                    g.pairs.0.push(self.eq[hi]);
                    g.pairs.1.push(self.gt[lo]);
                    g.pairs.2.push(self.eq[lo]);
                } else {
                    g.singles.0.push(self.eq[hi]);
                    g.singles.1.push(self.gt[lo]);
                }
            }
        }
        Some(g)
    }

    /// [`Tree::advance`] on the shares of a [`Tree::pending_groups`] batch: `singles` one per
    /// single, `pairs` two per pair.
    pub fn advance_groups(&mut self, singles: &[bool], pairs: &[bool]) {
        let (mut s, mut p) = (singles.iter(), pairs.chunks_exact(2));
        let mut z = Vec::with_capacity(singles.len() + pairs.len());
        for _ in 0..self.n {
            for k in 0..self.nodes / 2 {
                if k > 0 || self.full {
                    z.extend_from_slice(p.next().expect("one share pair per pending pair"));
                } else {
                    z.push(*s.next().expect("one share per pending single"));
                }
            }
        }
        assert!(s.next().is_none() && p.next().is_none(), "more AND shares than pending ANDs");
        self.advance(&z);
    }

    /// Moves to the next level with this party's shares `z` of the [`Tree::pending`] ANDs.
    pub fn advance(&mut self, z: &[bool]) {
        let next = self.nodes.div_ceil(2);
        let (mut gt, mut eq) = (Vec::with_capacity(self.n * next), Vec::with_capacity(self.n * next));
        let mut zi = z.iter();
        for i in 0..self.n {
            let at = i * self.nodes;
            for k in 0..self.nodes / 2 {
                let hi = at + 2 * k + 1;
                gt.push(self.gt[hi] ^ zi.next().expect("one share per pending AND"));
                let keeps_eq = k > 0 || self.full;
                eq.push(keeps_eq && *zi.next().expect("one share per pending AND"));
            }
            if self.nodes % 2 == 1 {
                gt.push(self.gt[at + self.nodes - 1]);
                eq.push(self.eq[at + self.nodes - 1]);
            }
        }
        assert!(zi.next().is_none(), "more AND shares than pending ANDs");
        (self.nodes, self.gt, self.eq) = (next, gt, eq);
    }

    /// This party's shares of `[x > z]`, once [`Tree::pending`] is `None`.
    pub fn result(&self) -> Vec<bool> {
        assert_eq!(self.nodes, 1, "the tree is not done");
        self.gt.clone()
    }

    /// This party's shares of `[x = z]`, once [`Tree::pending`] is `None` ([`Params::eq`] only).
    pub fn result_eq(&self) -> Vec<bool> {
        assert!(self.nodes == 1 && self.full, "the tree is not done, or has no eq");
        self.eq.clone()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::proto::bit_triple::{Triples, deal, rots};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Runs whole comparisons for both parties in memory with a dealer's OTs: the two result
    /// shares, and the bytes each party sent (client, server).
    pub(crate) fn compare(p: Params, x: &[u64], z: &[u64], rng: &mut ChaCha8Rng) -> (Vec<bool>, Vec<bool>, [usize; 2]) {
        let (s, c, sent) = compare_trees(p, x, z, rng);
        (s.result(), c.result(), sent)
    }

    /// [`compare`], returning both parties' finished trees.
    fn compare_trees(p: Params, x: &[u64], z: &[u64], rng: &mut ChaCha8Rng) -> (Tree, Tree, [usize; 2]) {
        let n = x.len();
        let (pads, rc) = deal(rng, n * p.leaf_rots());
        let (tp, trc) = deal(rng, rots(n * p.ands()));
        let (mut ts, mut tc) = (Triples::server(&tp), Triples::client(&trc));
        let (keys, material) = (server_keys(p, &pads), client_material(p, &rc.choices, &rc.pads));
        assert_eq!((keys.len(), material.len()), (server_bytes(p, n), client_bytes(p, n)));
        let (client, e) = Client::new(p, z, material);
        assert_eq!(e.len(), choice_bytes(p, n));
        let (tables, ls) = Server::new(p, x.to_vec(), keys).tables(&e, rng);
        assert_eq!(tables.len(), table_bytes(p, n));
        let mut sent = [e.len(), tables.len()];
        let lc = client.leaves(&tables);
        let (mut trs, mut trc) = (Tree::new(p, n, ls), Tree::new(p, n, lc));
        let mut levels = p.level_ands().into_iter();
        while let Some((xs, ys)) = trs.pending() {
            let (xc, yc) = trc.pending().expect("both trees have the same shape");
            assert_eq!(xs.len(), n * levels.next().expect("a level per opening"));
            let (ss, ms) = ts.and_open(&xs, &ys);
            let (sc, mc) = tc.and_open(&xc, &yc);
            sent[0] += mc.len();
            sent[1] += ms.len();
            trs.advance(&ss.finish(&mc, true));
            trc.advance(&sc.finish(&ms, false));
        }
        assert!(levels.next().is_none() && trc.pending().is_none());
        assert_eq!((ts.left(), tc.left()), (0, 0), "the plan's AND count is exact");
        (trs, trc, sent)
    }

    fn check(p: Params, x: &[u64], z: &[u64], rng: &mut ChaCha8Rng) {
        let (ts, tc, _) = compare_trees(p, x, z, rng);
        let (s, c) = (ts.result(), tc.result());
        for i in 0..x.len() {
            assert_eq!(s[i] ^ c[i], x[i] > z[i], "{p:?}: {} > {}", x[i], z[i]);
        }
        if p.eq {
            let (s, c) = (ts.result_eq(), tc.result_eq());
            for i in 0..x.len() {
                assert_eq!(s[i] ^ c[i], x[i] == z[i], "{p:?}: {} = {}", x[i], z[i]);
            }
        }
    }

    #[test]
    fn comparisons_equal_plain_comparison_on_random_values_and_edges() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for (bits, digit, eq) in [1u32, 2, 3, 5, 8, 12, 13, 31, 60, 63, 64]
            .into_iter()
            .flat_map(|b| [1u32, 2, 3, 4, 5, 8].into_iter().flat_map(move |d| [(b, d, false), (b, d, true)]))
        {
            {
                let p = if eq { Params::with_eq(bits, digit) } else { Params::new(bits, digit) };
                let max = low(u64::MAX, bits);
                let mut x: Vec<u64> = (0..200).map(|_| low(rng.random(), bits)).collect();
                let mut z: Vec<u64> = (0..200).map(|_| low(rng.random(), bits)).collect();
                // Equal values, 0, max, off by one, and values equal in the high digits only.
                for (a, b) in [(0, 0), (max, max), (0, max), (max, 0), (1, 0), (0, 1), (max - 1, max), (max, max - 1)] {
                    x.push(a);
                    z.push(b);
                }
                for i in 0..50 {
                    let v = low(rng.random(), bits);
                    x.push(v);
                    z.push(v ^ (1 << (i as u32 % bits)));
                }
                let eq: Vec<u64> = (0..20).map(|_| low(rng.random(), bits)).collect();
                x.extend(&eq);
                z.extend(&eq);
                check(p, &x, &z, &mut rng);
            }
        }
    }

    #[test]
    fn exhaustive_at_five_bits_on_two_bit_digits() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let (x, z): (Vec<u64>, Vec<u64>) = (0..32u64).flat_map(|a| (0..32u64).map(move |b| (a, b))).unzip();
        check(Params::new(5, 2), &x, &z, &mut rng);
        check(Params::with_eq(5, 2), &x, &z, &mut rng);
    }

    #[test]
    fn counts_of_the_plan() {
        // 60 bits on 4-bit digits: 15 leaves; levels 15 → 8 → 4 → 2 → 1.
        let p = Params::new(60, 4);
        assert_eq!(p.widths(), vec![4; 15]);
        assert_eq!(p.level_ands(), vec![13, 7, 3, 1]);
        assert_eq!(p.table_bits(), 16 + 14 * 32);
        // A narrower top digit.
        let p = Params::new(13, 4);
        assert_eq!(p.widths(), vec![4, 4, 4, 1]);
        assert_eq!(p.table_bits(), 16 + 2 * 32 + 4);
        assert_eq!(Params::new(3, 4).level_ands(), Vec::<usize>::new());
        // With eq: every node's eq AND, every digit's eq bit.
        let p = Params::with_eq(25, 4);
        assert_eq!(p.level_ands(), vec![6, 4, 2]);
        assert_eq!((p.table_bits(), p.client_bits()), (6 * 32 + 2 * 2, 25 + 2 * 7));
        // The bytes in `compare` are the plan's.
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        let p = Params::new(60, 4);
        let n = 10;
        let (_, _, sent) = compare(p, &vec![5; n], &vec![7; n], &mut rng);
        let ands: usize = p.level_ands().iter().map(|&a| crate::proto::bit_triple::open_bytes(n * a)).sum();
        assert_eq!(sent, [choice_bytes(p, n) + ands, table_bytes(p, n) + ands]);
    }

    /// The hashed-down material is the OT keys themselves: each key bit equals the TCCR hash of
    /// the XOR of the pads its entry selects, hashed here one entry at a time (the runtime
    /// hashes a comparison's entries in one batch), and the client's entry key is the server's
    /// key of the entry its choices select.
    #[test]
    fn hashed_down_keys_are_the_entry_keys() {
        let mut rng = ChaCha8Rng::seed_from_u64(15);
        let p = Params::new(13, 4);
        let n = 5;
        let (pads, rc) = deal(&mut rng, n * p.leaf_rots());
        let (keys, material) = (server_keys(p, &pads), client_material(p, &rc.choices, &rc.pads));
        let hash = |acc: u128, u: u64| {
            let mut x = [CBlock::from(acc)];
            FIXED_KEY_HASH.tccr_hash_slice_mut(&mut x, |_| CBlock::from(u as u128));
            (u128::from(x[0]) & 3) as u64
        };
        let (mut k, mut m) = (BitReader::new(&keys), BitReader::new(&material));
        for i in 0..n {
            let mut off = 0usize;
            for (j, &w) in p.widths().iter().enumerate() {
                let at = i * p.leaf_rots() + off;
                let width = if j == 0 { 1 } else { 2 };
                let mut server = Vec::new();
                for u in 0..1u64 << w {
                    let acc = (0..w as usize).fold(0u128, |a, t| a ^ pads[at + t][((u >> t) & 1) as usize].0);
                    let want = hash(acc, u) & if j == 0 { 1 } else { 3 };
                    server.push(k.take(width));
                    assert_eq!(server[u as usize], want, "comparison {i}, digit {j}, entry {u}");
                }
                let c = (0..w as usize).fold(0u64, |a, t| a | (u64::from(rc.choices[at + t]) << t));
                assert_eq!(m.take(w), c, "the client keeps its choice");
                assert_eq!(m.take(width), server[c as usize], "the client's key is its entry's");
                off += w as usize;
            }
        }
        // 84 key bits per comparison (the table's size) for the server, 13 choice bits and 7 key
        // bits for the client: 53 and 13 bytes for 5 comparisons, against 65 OTs' 16-byte pads.
        assert_eq!((keys.len(), material.len()), (53, 13));
    }

    /// The tables are masked by the OT keys: the same `x`, derandomisation and leaf masks
    /// with fresh pads give different tables (a table in the clear would not change).
    #[test]
    fn tables_depend_on_keys_not_only_on_x() {
        let mut rng = ChaCha8Rng::seed_from_u64(14);
        let p = Params::new(8, 4);
        let (pads, rc) = deal(&mut rng, p.leaf_rots());
        let (_, e) = Client::new(p, &[0x37], client_material(p, &rc.choices, &rc.pads));
        let (t1, _) = Server::new(p, vec![0x37], server_keys(p, &pads)).tables(&e, &mut ChaCha8Rng::seed_from_u64(1));
        let (pads2, _) = deal(&mut rng, p.leaf_rots());
        let (t2, _) = Server::new(p, vec![0x37], server_keys(p, &pads2)).tables(&e, &mut ChaCha8Rng::seed_from_u64(1));
        assert_ne!(t1, t2, "same x and masks, fresh pads: the tables must change");
    }
}
