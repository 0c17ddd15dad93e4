//! Exact ReLU with fused truncation over random-choice OT: the same output as the garbled
//! circuit `veil_ir::circuit::relu_trunc_mask` (`(ReLU(y) >> f) − r`, `>>` the floor shift, for
//! `y = y_s + y_c`), with the same share convention (the client's share of the output is its
//! offline mask `r`, the server's `ReLU(y) >> f − r`), so the two protocols are interchangeable
//! per layer. docs/protocols.md, "ReLU over OT", has the messages and the security argument.
//!
//! With `y_s`, `y_c` read as unsigned `ℓ`-bit values, `ms`, `mc` their top bits:
//! - `carry = [low_s + low_c ≥ 2^(ℓ−1)]` on the low `ℓ − 1` bits by the millionaire
//!   ([`super::millionaire`]) of `low_s` against `2^(ℓ−1) − 1 − low_c`; the sign is
//!   `ms ⊕ mc ⊕ carry`, so `keep = ¬sign` is XOR-shared with no AND.
//! - Where [`Spec::fused`], the carry millionaire covers only the bits above `f` and yields their
//!   equality too, and `carry = gt_hi ⊕ (eq_hi ∧ c_low)` (one more AND level, the join): `c_low`
//!   below is the carry of the low `f` bits, so they are compared once.
//! - For `y ≥ 0`: `y >> f = (y_s >> f) + (y_c >> f) + c_low − w·2^(ℓ−f)` with
//!   `c_low = [y_s mod 2^f + y_c mod 2^f ≥ 2^f]` (a second millionaire, on `f` bits) and the wrap
//!   bit `w = [y_s + y_c ≥ 2^ℓ]`, which for a non-negative `y` is `(ms ∧ mc) ⊕ carry` (the top
//!   bits' full-adder carry with `ms ⊕ mc = carry`): one AND of private bits.
//! - `out = keep·(y_s >> f) + keep·(y_c >> f) + (keep ∧ c_low) − (keep ∧ w)·2^(ℓ−f)`: two ANDs on
//!   triples, then four products of a shared bit with a value, each from one random-choice OT
//!   derandomised online: `keep·(y_s >> f)`, `keep ∧ c_low` and `keep ∧ w` (the last modulo `2^f`
//!   only) with the server sending, `keep·(y_c >> f)` with the client sending (the reversed OTs),
//!   whose two messages also move the client's share to `r`.
//!
//! Offline (input-independent): `n·`[`Spec::rots`] random-choice OTs with the server sending and
//! `n` with the client sending, hashed down at once to the material the online phase reads
//! ([`ServerOffline`], [`ClientOffline`]: key bits, triples, value-sized pads). Online: the flights of [`Spec::flights`], alternating, the
//! client's first and last. Both parties' cores are synchronous: [`Client::start`] makes the
//! first flight, then each party answers the peer's flight with its next one
//! ([`Client::reply`], [`Server::reply`]) until the server, answering the last, has its output.
//!
//! Shift 0 (a plain ReLU) drops the low comparison, `ms ∧ mc` and the last AND level:
//! `out = keep·y_s + keep·y_c`, one product each way. [`maxpool`] builds MaxPool's max tree on it.

mod ands;
#[cfg(test)]
mod attacks;
#[cfg(test)]
mod circa_ot_tests;
pub mod clip;
pub mod drive;
pub mod layer;
pub mod maxpool;
mod offline;
#[cfg(test)]
mod tests;

use ands::Ands;
pub use offline::{ClientOffline, ServerOffline};

use rand::Rng;
use veil_ir::ring::Ring;

use super::bit_triple::{self, Triples};
use super::circa::SignTest;
use super::millionaire::{self, Params};
use crate::garble::Block;
use crate::wire::{BitReader, BitWriter, pack_bits, unpack_bits};

/// Digit size of the comparisons (1-out-of-16 OTs): the fewest bytes per ReLU at ℓ = 61 among
/// 2..=6 (tables grow as `2^m/m` per bit, ANDs shrink as `1/m`).
pub const DIGIT: u32 = 4;

/// One online flight: its direction and exact size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flight {
    /// Client to server.
    ToServer(usize),
    /// Server to client.
    ToClient(usize),
}

/// The public shape of a ReLU layer over OT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// The output ring: the products and both output shares are taken modulo `2^ring.bits`
    /// (the plan's ℓ, or the bits the output's readers need, [`Spec::reading`]).
    pub ring: Ring,
    /// The fused truncation `f`, `0 ≤ f < ℓ` (0: a plain ReLU, no low comparison, no wrap term).
    pub shift: u32,
    /// The width `w` the comparisons read the shares in: the shares' whole width, or narrowed
    /// ([`Spec::reading`]) their low `w` bits, so the output is that of the operand read as a
    /// signed `w`-bit value.
    pub width: u32,
    /// Digit size of the comparisons.
    pub digit: u32,
    /// Circa's sign test (shift 0 only): the comparison reads each party's share as the test
    /// reads it ([`SignTest::server_input`], [`SignTest::client_input`]), `m − k` bits, and
    /// `keep` is [`veil_ir::ring::circa_nonnegative`] of the shares; the products still move the
    /// `ℓ`-bit shares. `None`: the exact sign of `y`.
    pub test: Option<SignTest>,
}

impl Spec {
    /// ReLU then `>> shift` in `ring`, on [`DIGIT`]-bit digits.
    ///
    /// Panics unless `shift < ℓ` and `ℓ ≥ 2` (the plan's lowering never asks for more).
    pub fn new(ring: Ring, shift: u32) -> Spec {
        assert!(shift < u32::from(ring.bits) && ring.bits >= 2, "ReLU over OT with shift {shift} in ℓ = {}", ring.bits);
        Spec { ring, shift, width: u32::from(ring.bits), digit: DIGIT, test: None }
    }

    /// ReLU then `>> shift` of shares read in `width` bits, the output in `ring` (which may be
    /// narrower or wider than `width`). Narrowed reads (`veil_ir::schedule::relu_ot_width`, a
    /// fused truncation): with `y` the operand read as a signed `width`-bit value, `y >> f` is
    /// `(y_s mod 2^w >> f) + (y_c mod 2^w >> f) + c_low − wrap·2^(w−f)` for `y ≥ 0`, the carry,
    /// sign and wrap taken on `w` bits. The products move values modulo `2^ℓ` for the output's
    /// `ℓ = ring.bits` (`veil_ir::schedule::relu_ot_out`: what the output's readers read), and
    /// `keep ∧ wrap` is needed modulo `2^(ℓ − w + f)` (not at all when `w − f ≥ ℓ`). At shift 0
    /// there is no wrap product: the output is `keep·y` for the whole `y`, the ReLU of `y` when
    /// `y` fits `width` bits as a signed value (always with the shares' whole width; a MaxPool's
    /// differences by construction, `veil_ir::schedule::maxpool_ot_width`).
    ///
    /// Panics unless `shift < width ≤ 64`, `width ≥ 2`, `ℓ ≥ 2`, and a shift has at least three
    /// bits above it (the plan's lowering never asks for more).
    pub fn reading(ring: Ring, shift: u32, width: u32) -> Spec {
        assert!(
            shift < width && (2..=64).contains(&width) && ring.bits >= 2 && (shift == 0 || shift + 2 < width),
            "ReLU over OT with shift {shift} in w = {width}, ℓ = {}",
            ring.bits
        );
        Spec { ring, shift, width, digit: DIGIT, test: None }
    }

    /// Circa's stochastic ReLU in `ring`: `y·b`, `b` the sign `test` of the shares, on
    /// [`DIGIT`]-bit digits (docs/protocols.md, "Circa over OT").
    ///
    /// Panics unless the test ring is no wider than `ring` and `k < m − 1` (the plan's lowering
    /// never asks for more).
    pub fn circa(ring: Ring, test: SignTest) -> Spec {
        let (m, k) = (test.ring.bits, test.drop_bits);
        assert!(m <= ring.bits && k + 1 < m, "Circa over OT with m = {m}, k = {k} in ℓ = {}", ring.bits);
        Spec { ring, shift: 0, width: u32::from(ring.bits), digit: DIGIT, test: Some(test) }
    }

    /// Width of the values whose sign the comparison takes: the read width (ℓ or narrowed), or
    /// the sign test's `m − k`.
    fn cmp_bits(&self) -> u32 {
        self.test.map_or(self.width, |t| u32::from(t.ring.bits - t.drop_bits))
    }

    /// The value party `server` compares for its share `y`: the share's low [`Spec::width`] bits,
    /// or as the sign test reads it.
    fn compared(&self, y: u64, server: bool) -> u64 {
        match self.test {
            None => low_bits(y, self.width),
            Some(t) if server => t.server_input(y),
            Some(t) => t.client_input(y),
        }
    }

    /// The top bit of the compared value of a party's share `y`.
    fn top(&self, y: u64, server: bool) -> bool {
        (self.compared(y, server) >> (self.cmp_bits() - 1)) & 1 == 1
    }

    fn ell(&self) -> u32 {
        u32::from(self.ring.bits)
    }

    /// Whether the low comparison is fused into the carry one
    /// ([`veil_ir::schedule::relu_ot::fused`]): the carry comparison then covers the bits
    /// `[f, ℓ − 1)` with their equality, and `carry = gt_hi ⊕ (eq_hi ∧ c_low)` (the join level).
    fn fused(&self) -> bool {
        self.test.is_none() && self.digit == DIGIT && veil_ir::schedule::relu_ot::fused(self.width, self.shift)
    }

    /// The carry comparison: the low `ℓ − 1` bits of the compared values, or where
    /// [`Spec::fused`] the bits above the shift.
    fn carry(&self) -> Params {
        if self.fused() {
            Params::with_eq(self.cmp_bits() - 1 - self.shift, self.digit)
        } else {
            Params::new(self.cmp_bits() - 1, self.digit)
        }
    }

    /// The server's (`server`) operands of the carry comparison for its shares `ys`, or the
    /// client's for its shares: the low `ℓ − 1` bits of the compared value, the client's
    /// complemented (`x > 2^(ℓ−1) − 1 − z` is the carry of `x + z`); where fused, the bits above
    /// the shift of those.
    fn carry_operands(&self, ys: &[u64], server: bool) -> Vec<u64> {
        // Per layer, not per element: `fused` sizes the comparison trees.
        let lowmask = low_bits(u64::MAX, self.cmp_bits() - 1);
        let shift = if self.fused() { self.shift } else { 0 };
        ys.iter()
            .map(|&y| {
                let v = self.compared(y, server) & lowmask;
                (if server { v } else { lowmask - v }) >> shift
            })
            .collect()
    }

    /// The low comparison (`c_low`), none at shift 0.
    fn low(&self) -> Option<Params> {
        (self.shift > 0).then(|| Params::new(self.shift, self.digit))
    }

    fn low_rots(&self) -> usize {
        self.low().map_or(0, |p| p.leaf_rots())
    }

    /// Products of a shared bit with a value the server sends per element: `keep·(y_s >> f)`,
    /// and with a shift also `keep ∧ c_low`, `keep ∧ w`.
    fn products(&self) -> usize {
        if self.shift == 0 { 1 } else { 3 }
    }

    /// AND levels of the comparison trees (with a shift, at least one: `ms ∧ mc`), without the
    /// join of a fused carry.
    fn tree_levels(&self) -> usize {
        match self.low() {
            None => self.carry().level_ands().len(),
            Some(low) => self.carry().level_ands().len().max(low.level_ands().len()).max(1),
        }
    }

    /// ANDs per element at each opening: the comparison trees' levels side by side (the first
    /// with `ms ∧ mc`), where fused the join `eq_hi ∧ c_low`, then `keep ∧ c_low`, `keep ∧ w`; at shift 0 the carry tree's alone
    /// (none for `ℓ ≤ 5`).
    pub fn level_ands(&self) -> Vec<usize> {
        self.level_groups().into_iter().map(|(s, p)| s + 2 * p).collect()
    }

    /// [`Spec::level_ands`] as `(singles, pairs)` ([`bit_triple`]'s pairs): each tree node's two
    /// ANDs share `eq_hi`, the last two share `keep`; `ms ∧ mc`, the join and each level's
    /// lowest node (but a fused carry's) are singles.
    pub fn level_groups(&self) -> Vec<(usize, usize)> {
        let Some(low) = self.low() else { return self.carry().level_groups() };
        let (a, b) = (self.carry().level_groups(), low.level_groups());
        let at = |v: &[(usize, usize)], t: usize| v.get(t).copied().unwrap_or((0, 0));
        let mut v: Vec<(usize, usize)> = (0..self.tree_levels())
            .map(|t| (at(&a, t).0 + at(&b, t).0 + usize::from(t == 0), at(&a, t).1 + at(&b, t).1))
            .collect();
        if self.fused() {
            v.push((1, 0));
        }
        v.push((0, 1));
        v
    }

    /// Boolean triples (single ANDs) and pairs per element.
    pub fn groups(&self) -> (usize, usize) {
        self.level_groups().into_iter().fold((0, 0), |(s, p), (a, b)| (s + a, p + b))
    }

    /// Random-choice OTs per element with the server sending: the comparisons' leaves, two per
    /// single AND, one per pair, three products (one at shift 0).
    pub fn rots(&self) -> usize {
        let (singles, pairs) = self.groups();
        self.carry().leaf_rots() + self.low_rots() + bit_triple::rots(singles) + pairs + self.products()
    }

    /// Random-choice OTs per element with the client sending: the product `keep·(y_c >> f)`,
    /// then one per pair.
    pub fn rots_reversed(&self) -> usize {
        1 + self.groups().1
    }

    /// The online flights for `n` elements, in order, with their exact sizes. The AND levels'
    /// openings are piggybacked: the server opens level 0 with its tables, then each level
    /// flight `j` (the client's first) carries the sender's openings of levels `j` and `j + 1`
    /// (it closes `j` on the peer's opening already received), so the `L` levels take `L`
    /// flights, not `2L`. The last level flight carries the product choices when the client
    /// sends it (`L` odd; the server's derandomisation then rides on the products), or the
    /// server's derandomisation of the reversed OTs (`L` even).
    pub fn flights(&self, n: usize) -> Vec<Flight> {
        let (c, l) = (self.carry(), self.low());
        let levels = self.level_groups();
        let last = levels.len();
        let open = |t: usize| levels.get(t).map_or(0, |&(s, p)| bit_triple::open_groups_bytes(n * s, n * p));
        let derandomise = n.div_ceil(8);
        let choices = (self.products() * n).div_ceil(8);
        let mut v = vec![
            Flight::ToServer(millionaire::choice_bytes(c, n) + l.map_or(0, |l| millionaire::choice_bytes(l, n))),
            Flight::ToClient(
                millionaire::table_bytes(c, n)
                    + l.map_or(0, |l| millionaire::table_bytes(l, n))
                    + if last == 0 { derandomise } else { open(0) },
            ),
        ];
        for j in 0..last {
            let client = j % 2 == 0;
            let mut b = open(j) + open(j + 1);
            if j + 1 == last {
                b += if client { choices } else { derandomise };
            }
            v.push(if client { Flight::ToServer(b) } else { Flight::ToClient(b) });
        }
        if last.is_multiple_of(2) {
            v.push(Flight::ToServer(choices));
        }
        let product_bits: u32 = self.product_widths().iter().sum();
        let odd = if last % 2 == 1 { derandomise } else { 0 };
        v.push(Flight::ToClient((n * product_bits as usize).div_ceil(8) + odd));
        v.push(Flight::ToServer((n * 2 * self.ell() as usize).div_ceil(8)));
        v
    }

    /// Bytes of one party's opening of AND level `t` for `n` elements.
    fn open_bytes(&self, t: usize, n: usize) -> usize {
        let (s, p) = self.level_groups()[t];
        bit_triple::open_groups_bytes(n * s, n * p)
    }

    /// The widths of the products' values per element, in order: `ℓ` (`keep·(y_s >> f)`), and
    /// with a shift `ℓ` (`keep ∧ c_low`) and `ℓ − w + f` (`keep ∧ w`, whose term is shifted up by
    /// `w − f`; `f` bits unnarrowed; none when `w − f ≥ ℓ`), for the output ring's `ℓ`.
    fn product_widths(&self) -> Vec<u32> {
        if self.shift == 0 { vec![self.ell()] } else { vec![self.ell(), self.ell(), self.wrap_bits()] }
    }

    /// The value a party's products move for its share `v`: at a shift, its low [`Spec::width`]
    /// bits shifted; at shift 0 the whole share (the sum is then `keep·y`, the ReLU of the read
    /// only when `y` fits the width: the whole share's width, or MaxPool's differences).
    fn value(&self, v: u64) -> u64 {
        if self.shift == 0 { v } else { low_bits(v, self.width) >> self.shift }
    }

    /// Bits of the product `keep ∧ w` that reach the output ([`Spec::product_widths`]).
    fn wrap_bits(&self) -> u32 {
        (self.ell() + self.shift).saturating_sub(self.width)
    }

    /// Bytes of the client's offline material for `n` elements ([`ClientOffline::ot_bytes`]),
    /// without its output masks.
    pub fn client_bytes(&self, n: usize) -> usize {
        let width: u32 = self.product_widths().iter().sum();
        let (singles, pairs) = self.groups();
        millionaire::client_bytes(self.carry(), n)
            + self.low().map_or(0, |p| millionaire::client_bytes(p, n))
            + bit_triple::stored_groups_bytes(n * singles, n * pairs)
            + (n * self.products()).div_ceil(8)
            + (n * width as usize).div_ceil(8)
            + (2 * n * self.ell() as usize).div_ceil(8)
    }

    /// Bytes of the server's offline material for `n` elements ([`ServerOffline::bytes`]).
    pub fn server_bytes(&self, n: usize) -> usize {
        let width: u32 = self.product_widths().iter().sum();
        let (singles, pairs) = self.groups();
        millionaire::server_bytes(self.carry(), n)
            + self.low().map_or(0, |p| millionaire::server_bytes(p, n))
            + bit_triple::stored_groups_bytes(n * singles, n * pairs)
            + (2 * n * width as usize).div_ceil(8)
            + n.div_ceil(8)
            + (n * self.ell() as usize).div_ceil(8)
    }

    /// Sizes of the server's offline OT pads, split: (carry leaves, low leaves, triples, pairs,
    /// products).
    fn split(&self, n: usize) -> [usize; 5] {
        let (singles, pairs) = self.groups();
        [
            n * self.carry().leaf_rots(),
            n * self.low_rots(),
            n * bit_triple::rots(singles),
            n * pairs,
            self.products() * n,
        ]
    }
}

fn low_bits(x: u64, bits: u32) -> u64 {
    if bits >= 64 { x } else { x & ((1u64 << bits) - 1) }
}

/// `(keep ∧ w)·2^(w−f)` from its share (0 at shift 0, where there is no wrap term), for the
/// read width `w` (ℓ unnarrowed).
fn wrap_term(share: u64, width: u32, f: u32) -> u64 {
    if f == 0 { 0 } else { share << (width - f) }
}

/// The pad of a product OT as a `bits`-bit value.
fn pad_value(p: Block, bits: u32) -> u64 {
    low_bits(p.0 as u64, bits)
}

/// Where a party is in the flights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Comparing,
    Level(usize),
    Products,
    Reversed,
    Done,
}

/// The server's online state. Secret.
pub struct Server {
    spec: Spec,
    n: usize,
    ys: Vec<u64>,
    /// The shares the products move (`ys`, but for [`Server::select`]).
    values: Vec<u64>,
    /// The carry comparison and (with a shift) the low one.
    cmp: Option<(millionaire::Server, Option<millionaire::Server>)>,
    triples: Option<Triples>,
    /// Both pads' low bits of each product OT ([`ServerOffline`]).
    products: Vec<u8>,
    /// Its choices of the reversed OTs, packed, and their pads' `ℓ` bits.
    rev_choices: Vec<u8>,
    rev_pads: Vec<u8>,
    ands: Option<Ands>,
    /// Its output shares from the three products it sends.
    acc: Vec<u64>,
    stage: Stage,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "relu_ot::Server {{ n: {}, stage: {:?}, <redacted> }}", self.n, self.stage)
    }
}

impl Server {
    /// The server's online run on its input shares `ys` (`< 2^ℓ`).
    pub fn new(spec: Spec, off: ServerOffline, ys: Vec<u64>) -> Server {
        Server::select(spec, off, ys.clone(), ys)
    }

    /// The server's online run of `keep(y)·v` at shift 0: the comparison on its shares `ys` of
    /// `y`, the products on its shares `vs` of another value `v` (LeakyReLU's select; the output
    /// convention as for a ReLU, `keep·v − r`).
    ///
    /// Panics unless the shift is 0 and both have one share per element.
    pub fn select(spec: Spec, off: ServerOffline, ys: Vec<u64>, values: Vec<u64>) -> Server {
        let n = ys.len();
        assert!(values.len() == n && (spec.shift == 0 || values == ys), "relu_ot: a select is at shift 0");
        let ServerOffline { n: count, carry, low, triples, products, rev_choices, rev_pads } = off;
        assert_eq!(count, n, "relu_ot: offline material for {count} elements, {n} inputs");
        let x1 = spec.carry_operands(&ys, true);
        let x2 = ys.iter().map(|&y| low_bits(y, spec.shift)).collect();
        let cmp = (
            millionaire::Server::new(spec.carry(), x1, carry),
            spec.low().map(|p| millionaire::Server::new(p, x2, low)),
        );
        Server {
            spec,
            n,
            ys,
            values,
            cmp: Some(cmp),
            triples: Some(triples),
            products,
            rev_choices,
            rev_pads,
            ands: None,
            acc: Vec::new(),
            stage: Stage::Comparing,
        }
    }

    /// The server's answer to the client's flight `msg` (exactly the size [`Spec::flights`]
    /// gives it): its next flight, or `None` after the last one, when [`Server::output`] is
    /// ready. Fresh random bits (the comparison leaves' masks) come from `rng`.
    pub fn reply(&mut self, msg: &[u8], rng: &mut (impl Rng + ?Sized)) -> Option<Vec<u8>> {
        let n = self.n;
        let ell = self.spec.ell();
        match self.stage {
            Stage::Comparing => {
                let (c1, c2) = self.cmp.take().expect("comparisons start once");
                let split = millionaire::choice_bytes(self.spec.carry(), n);
                let (mut t1, l1) = c1.tables(&msg[..split], rng);
                let (t2, l2) = c2.map(|c| c.tables(&msg[split..], rng)).unzip();
                let top = self.ys.iter().map(|&y| self.spec.top(y, true)).collect();
                let triples = self.triples.take().expect("once");
                let mut ands = Ands::new(self.spec, true, top, [Some(l1), l2], triples);
                t1.extend(t2.unwrap_or_default());
                if ands.levels() == 0 {
                    // No AND level (shift 0, ℓ ≤ 5): keep is known, derandomise the reversed OTs now.
                    t1.extend(self.derandomise_reversed(&ands.keep));
                    self.stage = Stage::Products;
                } else {
                    // The server opens level 0 first, with its tables.
                    t1.extend(ands.open());
                    self.stage = Stage::Level(1);
                }
                self.ands = Some(ands);
                Some(t1)
            }
            Stage::Level(j) => {
                // The client's level flight j − 1: its openings of j − 1 and (if any) j.
                let (prev, rest) = msg.split_at(self.spec.open_bytes(j - 1, n));
                let ands = self.ands.as_mut().expect("levels after the comparisons");
                let last = ands.levels();
                if j == last {
                    // The client sent the last level, with its product choices.
                    ands.close(prev);
                    return Some(self.products(rest));
                }
                let mut mine = ands.level_flight(Some(prev), rest);
                if j + 1 < last {
                    self.stage = Stage::Level(j + 2);
                } else {
                    let keep = ands.keep.clone();
                    mine.extend(self.derandomise_reversed(&keep));
                    self.stage = Stage::Products;
                }
                Some(mine)
            }
            Stage::Products => Some(self.products(msg)),
            Stage::Reversed => {
                let mut r = BitReader::new(msg);
                let mut pads = BitReader::new(&self.rev_pads);
                let ands = self.ands.as_ref().expect("after the levels");
                for i in 0..n {
                    let (u0, u1) = (r.take(ell), r.take(ell));
                    let u = if ands.keep[i] { u1 } else { u0 };
                    let m = pads.take(ell).wrapping_sub(u);
                    self.acc[i] = self.spec.ring.reduce(self.acc[i].wrapping_add(m));
                }
                self.stage = Stage::Done;
                None
            }
            Stage::Done => panic!("relu_ot: a flight after the last one"),
        }
    }

    /// The server's products flight on the client's product choices `msg`: the messages of the
    /// products it sends (and, when the client sent the last level flight, its derandomisation
    /// of the reversed OTs).
    fn products(&mut self, msg: &[u8]) -> Vec<u8> {
        let (n, ell) = (self.n, self.spec.ell());
        let ands = self.ands.as_ref().expect("products after the levels");
        let pn = self.spec.products();
        let e = unpack_bits(msg, pn * n);
        let (f, ring) = (self.spec.shift, self.spec.ring);
        let mut out = BitWriter::default();
        let mut pads = BitReader::new(&self.products);
        self.acc = vec![0; n];
        for i in 0..n {
            let vs = self.spec.value(self.values[i]);
            // Per product: the width of its value, F(this party's bit), and
            // Δ = F(bit ⊕ 1) − F(bit), for F the product with the client's bit.
            let k = ands.keep[i];
            let mut items = vec![(ell, u64::from(k) * vs, (if k { vs.wrapping_neg() } else { vs }))];
            if let Some((g1, g2)) = &ands.g {
                items.push((ell, u64::from(g1[i]), (if g1[i] { u64::MAX } else { 1 })));
                items.push((self.spec.wrap_bits(), u64::from(g2[i]), (if g2[i] { u64::MAX } else { 1 })));
            }
            let mut share = [0u64; 3];
            for (j, &(bits, fs, delta)) in items.iter().enumerate() {
                let p = [pads.take(bits), pads.take(bits)];
                let ej = e[pn * i + j] as usize;
                let (m0, h1) = (p[ej], p[1 - ej]);
                out.push(low_bits(h1.wrapping_sub(m0).wrapping_sub(delta), bits), bits);
                share[j] = low_bits(fs.wrapping_sub(m0), bits);
            }
            self.acc[i] =
                ring.reduce(share[0].wrapping_add(share[1]).wrapping_sub(wrap_term(share[2], self.spec.width, f)));
        }
        let mut out = out.finish();
        if ands.levels() % 2 == 1 {
            out.extend(self.derandomise_reversed(&ands.keep));
        }
        self.stage = Stage::Reversed;
        out
    }

    /// The server's derandomisation of the reversed OTs: `keep_s ⊕ d`, packed.
    fn derandomise_reversed(&self, keep: &[bool]) -> Vec<u8> {
        let d = unpack_bits(&self.rev_choices, keep.len());
        let e: Vec<bool> = keep.iter().zip(&d).map(|(k, d)| k ^ d).collect();
        pack_bits(&e)
    }

    /// The server's output shares, `(ReLU(y) >> f) − r`, after the last flight.
    pub fn output(self) -> Vec<u64> {
        assert_eq!(self.stage, Stage::Done, "relu_ot: output before the last flight");
        self.acc
    }
}

/// The client's online state. Secret.
pub struct Client {
    spec: Spec,
    n: usize,
    yc: Vec<u64>,
    /// The shares the products move (`yc`, but for [`Client::select`]).
    values: Vec<u64>,
    r: Vec<u64>,
    /// The carry comparison and (with a shift) the low one.
    cmp: Option<(millionaire::Client, Option<millionaire::Client>)>,
    triples: Option<Triples>,
    /// Its choices of the product OTs, packed, and their pads' low bits ([`ClientOffline`]).
    product_choices: Vec<u8>,
    product_pads: Vec<u8>,
    /// Both pads' `ℓ` bits of each reversed OT.
    reversed: Vec<u8>,
    ands: Option<Ands>,
    /// The server's derandomisation of the reversed OTs.
    e_rev: Vec<bool>,
    stage: Stage,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "relu_ot::Client {{ n: {}, stage: {:?}, <redacted> }}", self.n, self.stage)
    }
}

impl Client {
    /// The client's online run on its input shares `yc` (`< 2^ℓ`), and its first flight.
    pub fn start(spec: Spec, off: ClientOffline, yc: Vec<u64>) -> (Client, Vec<u8>) {
        Client::select(spec, off, yc.clone(), yc)
    }

    /// [`Server::select`] for the client: the comparison on its shares `yc`, the products on
    /// `values`; and its first flight.
    ///
    /// Panics unless the shift is 0 and both have one share per element.
    pub fn select(spec: Spec, off: ClientOffline, yc: Vec<u64>, values: Vec<u64>) -> (Client, Vec<u8>) {
        let n = yc.len();
        assert!(values.len() == n && (spec.shift == 0 || values == yc), "relu_ot: a select is at shift 0");
        let ClientOffline { n: count, carry, low, triples, product_choices, product_pads, reversed, r } = off;
        assert_eq!((count, r.len()), (n, n), "relu_ot: offline material for {count} elements, {n} inputs");
        let fmask = low_bits(u64::MAX, spec.shift);
        let z1: Vec<u64> = spec.carry_operands(&yc, false);
        let z2: Vec<u64> = yc.iter().map(|&y| fmask - (y & fmask)).collect();
        let (c1, m1) = millionaire::Client::new(spec.carry(), &z1, carry);
        let (c2, m2) = spec.low().map(|p| millionaire::Client::new(p, &z2, low)).unzip();
        let client = Client {
            spec,
            n,
            yc,
            values,
            r,
            cmp: Some((c1, c2)),
            triples: Some(triples),
            product_choices,
            product_pads,
            reversed,
            ands: None,
            e_rev: Vec::new(),
            stage: Stage::Comparing,
        };
        (client, [m1, m2.unwrap_or_default()].concat())
    }

    /// The client's answer to the server's flight `msg` (exactly the size [`Spec::flights`]
    /// gives it): its next flight. The answer to the server's last flight is the client's last.
    pub fn reply(&mut self, msg: &[u8]) -> Vec<u8> {
        let n = self.n;
        let ell = self.spec.ell();
        match self.stage {
            Stage::Comparing => {
                let (c1, c2) = self.cmp.take().expect("comparisons start once");
                let split = millionaire::table_bytes(self.spec.carry(), n);
                let end = split + self.spec.low().map_or(0, |p| millionaire::table_bytes(p, n));
                let (l1, l2) = (c1.leaves(&msg[..split]), c2.map(|c| c.leaves(&msg[split..end])));
                let top = self.yc.iter().map(|&y| self.spec.top(y, false)).collect();
                let triples = self.triples.take().expect("once");
                let mut ands = Ands::new(self.spec, false, top, [Some(l1), l2], triples);
                if ands.levels() == 0 {
                    // No AND level: the server's derandomisation follows its tables.
                    self.e_rev = unpack_bits(&msg[end..], n);
                    self.ands = Some(ands);
                    self.stage = Stage::Products;
                    return self.product_choices();
                }
                // Level flight 0: the server's opening of level 0 follows its tables.
                let out = ands.level_flight(None, &msg[end..]);
                self.ands = Some(ands);
                self.after_level_flight(0, out)
            }
            Stage::Level(j) => {
                // The server's level flight j − 1: its openings of j − 1 and (if any) j.
                let (prev, rest) = msg.split_at(self.spec.open_bytes(j - 1, n));
                let ands = self.ands.as_mut().expect("levels after the comparisons");
                if j == ands.levels() {
                    // The server sent the last level, with its derandomisation of the reversed OTs.
                    ands.close(prev);
                    self.e_rev = unpack_bits(rest, n);
                    self.stage = Stage::Products;
                    return self.product_choices();
                }
                let out = ands.level_flight(Some(prev), rest);
                self.after_level_flight(j, out)
            }
            Stage::Products => {
                let ands = self.ands.as_ref().expect("after the levels");
                let (f, ring) = (self.spec.shift, self.spec.ring);
                if ands.levels() % 2 == 1 {
                    // The client sent the last level: the derandomisation rides on the products.
                    let width: u32 = self.spec.product_widths().iter().sum();
                    self.e_rev = unpack_bits(&msg[(n * width as usize).div_ceil(8)..], n);
                }
                let mut r = BitReader::new(msg);
                let (mut pads, mut rev) = (BitReader::new(&self.product_pads), BitReader::new(&self.reversed));
                let mut out = BitWriter::default();
                for i in 0..n {
                    let mut share = [0u64; 3];
                    // The client's bit of each product and the width of its value.
                    let mut items = vec![(ands.keep[i], ell)];
                    if let Some((g1, g2)) = &ands.g {
                        items.extend([(g1[i], ell), (g2[i], self.spec.wrap_bits())]);
                    }
                    for (j, (bit, bits)) in items.into_iter().enumerate() {
                        let s = r.take(bits);
                        let h = pads.take(bits);
                        share[j] = low_bits(if bit { h.wrapping_sub(s) } else { h }, bits);
                    }
                    let mine = ring.reduce(share[0].wrapping_add(share[1]).wrapping_sub(wrap_term(
                        share[2],
                        self.spec.width,
                        f,
                    )));
                    // keep·(y_c >> f) to the server, moving this party's share to r:
                    // message m_t = F(keep_c ⊕ t) − σ, σ = r − mine.
                    let sigma = ring.reduce(self.r[i].wrapping_sub(mine));
                    let vc = self.spec.value(self.values[i]);
                    let q = [rev.take(ell), rev.take(ell)];
                    let e = usize::from(self.e_rev[i]);
                    for t in 0..2usize {
                        let keep = ands.keep[i] ^ (t == 1);
                        let m = ring.reduce((u64::from(keep) * vc).wrapping_sub(sigma));
                        out.push(ring.reduce(q[t ^ e].wrapping_sub(m)), ell);
                    }
                }
                self.stage = Stage::Done;
                out.finish()
            }
            Stage::Reversed | Stage::Done => panic!("relu_ot: a flight after the last one"),
        }
    }

    /// After this party's level flight `j` (its openings `out`): the next stage, and with the
    /// last level the product choices appended.
    fn after_level_flight(&mut self, j: usize, mut out: Vec<u8>) -> Vec<u8> {
        let last = self.ands.as_ref().expect("after the comparisons").levels();
        if j + 1 < last {
            self.stage = Stage::Level(j + 2);
        } else {
            out.extend(self.product_choices());
            self.stage = Stage::Products;
        }
        out
    }

    /// The derandomisations of the products the server sends: this party's bit ⊕ its choice.
    fn product_choices(&self) -> Vec<u8> {
        let ands = self.ands.as_ref().expect("after the levels");
        let pn = self.spec.products();
        let c = &unpack_bits(&self.product_choices, pn * self.n);
        let e: Vec<bool> = (0..self.n)
            .flat_map(|i| {
                let mut bits = vec![ands.keep[i]];
                if let Some((g1, g2)) = &ands.g {
                    bits.extend([g1[i], g2[i]]);
                }
                bits.into_iter().enumerate().map(move |(j, b)| b ^ c[pn * i + j])
            })
            .collect();
        pack_bits(&e)
    }
}
