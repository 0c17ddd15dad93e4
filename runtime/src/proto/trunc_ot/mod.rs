//! Exact truncation over random-choice OT: the same output as the garbled circuit
//! `veil_ir::circuit::trunc_mask` (`(y >> f) − r`, `>>` the arithmetic shift of the signed value
//! `y = y_s + y_c`), with the same share convention (the client's share of the output is its
//! offline mask `r`), so the two protocols are interchangeable per step. docs/protocols.md,
//! "Exact truncation over OT", has the derivation, the messages and the security argument.
//!
//! The server biases its share, `y_s' = y_s + 2^(ℓ−1)`, so the unsigned value of
//! `y_s' + y_c mod 2^ℓ` is `u = y + 2^(ℓ−1)` exactly, and `y >> f = (u >> f) − 2^(ℓ−1−f)`. With
//! `y_s'`, `y_c` read as unsigned `ℓ`-bit values:
//! - `w = [y_s' + y_c ≥ 2^ℓ]` by the millionaire ([`super::millionaire`]) of `y_s'` against
//!   `2^ℓ − 1 − y_c`, on `ℓ` bits;
//! - `c_low = [y_s mod 2^f + y_c mod 2^f ≥ 2^f]` by a second one on `f` bits (the bias has no
//!   low bits);
//! - `out = (y_s' >> f) + (y_c >> f) + c_low − w·2^(ℓ−f) − 2^(ℓ−1−f) mod 2^ℓ`: the two
//!   comparisons' trees run side by side on Boolean triples, then `c_low` and `w` become values
//!   by one random-choice OT each with the client sending (the server's derandomisation rides on
//!   its last opening): `c_low` as two `ℓ`-bit messages that also move the client's share to
//!   `r`, `w` modulo `2^f` only (it is multiplied by `2^(ℓ−f)`) as one `f`-bit message.
//!
//! Offline (input-independent): `n·`[`Spec::rots`] random-choice OTs with the server sending and
//! `2n` with the client sending, hashed down at once ([`ServerOffline`], [`ClientOffline`]).
//! Online: the flights of [`Spec::flights`], alternating, the client's first and last. Both
//! cores are synchronous: [`Client::start`] makes the first flight, then each party answers the
//! peer's flight ([`Client::reply`], [`Server::reply`]) until the server, given the client's
//! last flight, has its output.

pub mod layer;
mod offline;
#[cfg(test)]
mod tests;

pub use offline::{ClientOffline, ServerOffline};

use rand::Rng;
use veil_ir::ring::Ring;

use super::bit_triple::{self, AndState, Triples};
use super::millionaire::{self, Params, Tree};
use super::relu_ot::{DIGIT, Flight};
use crate::wire::{BitReader, BitWriter, pack_bits, unpack_bits};

/// The public shape of a truncation over OT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// The share ring.
    pub ring: Ring,
    /// The bits shifted out, `1 ≤ f < ℓ`.
    pub shift: u32,
    /// Digit size of the comparisons.
    pub digit: u32,
}

fn low_bits(x: u64, bits: u32) -> u64 {
    if bits >= 64 { x } else { x & ((1u64 << bits) - 1) }
}

impl Spec {
    /// `y >> shift` in `ring`, on [`DIGIT`]-bit digits.
    ///
    /// Panics unless `1 ≤ shift < ℓ` (the plan's lowering never asks for more).
    pub fn new(ring: Ring, shift: u32) -> Spec {
        assert!((1..u32::from(ring.bits)).contains(&shift), "truncation over OT by {shift} in ℓ = {}", ring.bits);
        Spec { ring, shift, digit: DIGIT }
    }

    fn ell(&self) -> u32 {
        u32::from(self.ring.bits)
    }

    /// The wrap comparison, on `ℓ` bits.
    fn wrap(&self) -> Params {
        Params::new(self.ell(), self.digit)
    }

    /// The low comparison (`c_low`), on `f` bits.
    fn low(&self) -> Params {
        Params::new(self.shift, self.digit)
    }

    /// ANDs per element at each opening: both comparison trees' levels side by side.
    pub fn level_ands(&self) -> Vec<usize> {
        let (a, b) = (self.wrap().level_ands(), self.low().level_ands());
        (0..a.len().max(b.len())).map(|t| a.get(t).copied().unwrap_or(0) + b.get(t).copied().unwrap_or(0)).collect()
    }

    /// Boolean triples per element.
    pub fn ands(&self) -> usize {
        self.level_ands().iter().sum()
    }

    /// Random-choice OTs per element with the server sending: both comparisons' leaves and two
    /// per triple.
    pub fn rots(&self) -> usize {
        self.wrap().leaf_rots() + self.low().leaf_rots() + bit_triple::rots(self.ands())
    }

    /// Random-choice OTs per element with the client sending: the products `c_low` and `w`.
    pub fn rots_reversed(&self) -> usize {
        2
    }

    /// The online flights for `n` elements, in order, with their exact sizes. The AND levels'
    /// openings are piggybacked as in [`super::relu_ot::Spec::flights`]: the server opens level
    /// 0 with its tables, level flight `j` (the client's first) carries its sender's openings of
    /// `j` and `j + 1`. The server's derandomisation rides on its last level flight, or follows
    /// the client's last one (`L` odd).
    pub fn flights(&self, n: usize) -> Vec<Flight> {
        let (w, l) = (self.wrap(), self.low());
        let levels = self.level_ands();
        let last = levels.len();
        let open = |t: usize| levels.get(t).map_or(0, |&a| bit_triple::open_bytes(n * a));
        let derandomise = (2 * n).div_ceil(8);
        let mut v = vec![
            Flight::ToServer(millionaire::choice_bytes(w, n) + millionaire::choice_bytes(l, n)),
            Flight::ToClient(
                millionaire::table_bytes(w, n)
                    + millionaire::table_bytes(l, n)
                    + if last == 0 { derandomise } else { open(0) },
            ),
        ];
        for j in 0..last {
            let b = open(j) + open(j + 1);
            v.push(if j % 2 == 0 {
                Flight::ToServer(b)
            } else {
                Flight::ToClient(b + if j + 1 == last { derandomise } else { 0 })
            });
        }
        if last % 2 == 1 {
            v.push(Flight::ToClient(derandomise));
        }
        v.push(Flight::ToServer((n * (2 * self.ell() + self.shift) as usize).div_ceil(8)));
        v
    }

    /// Bytes of one party's opening of AND level `t` for `n` elements.
    fn open_bytes(&self, t: usize, n: usize) -> usize {
        bit_triple::open_bytes(n * self.level_ands()[t])
    }

    /// Bytes of the client's offline material for `n` elements ([`ClientOffline::ot_bytes`]),
    /// without its output masks.
    pub fn client_bytes(&self, n: usize) -> usize {
        millionaire::client_bytes(self.wrap(), n)
            + millionaire::client_bytes(self.low(), n)
            + bit_triple::stored_bytes(n * self.ands())
            + (2 * n * (self.ell() + self.shift) as usize).div_ceil(8)
    }

    /// Bytes of the server's offline material for `n` elements ([`ServerOffline::bytes`]).
    pub fn server_bytes(&self, n: usize) -> usize {
        millionaire::server_bytes(self.wrap(), n)
            + millionaire::server_bytes(self.low(), n)
            + bit_triple::stored_bytes(n * self.ands())
            + (2 * n).div_ceil(8)
            + (n * (self.ell() + self.shift) as usize).div_ceil(8)
    }

    /// Sizes of the server-sent OTs, split: (wrap leaves, low leaves, triples).
    fn split(&self, n: usize) -> [usize; 3] {
        [n * self.wrap().leaf_rots(), n * self.low().leaf_rots(), n * bit_triple::rots(self.ands())]
    }

    /// The server's biased share `y_s + 2^(ℓ−1)`.
    fn biased(&self, ys: u64) -> u64 {
        self.ring.reduce(ys.wrapping_add(1u64 << (self.ell() - 1)))
    }
}

/// Both comparison trees of one party, level by level on Boolean triples. Secret.
struct Trees {
    n: usize,
    server: bool,
    trees: [Tree; 2],
    triples: Triples,
    open: Option<AndState>,
}

impl Trees {
    /// This party's opening of the next level: every pending AND of both trees.
    fn open(&mut self) -> Vec<u8> {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for (a, b) in self.trees.iter().filter_map(Tree::pending) {
            x.extend(a);
            y.extend(b);
        }
        let (st, msg) = self.triples.and_open(&x, &y);
        self.open = Some(st);
        msg
    }

    /// The level's outputs from the peer's opening.
    fn close(&mut self, peer: &[u8]) {
        let z = self.open.take().expect("open before close").finish(peer, self.server);
        let mut at = 0;
        for t in &mut self.trees {
            if let Some((a, _)) = t.pending() {
                t.advance(&z[at..at + a.len()]);
                at += a.len();
            }
        }
    }

    /// This party's level flight: closes the pending level with the peer's opening `prev` (none
    /// on the client's first), opens the next level and closes it at once with the peer's
    /// opening `cur`, then opens the level after if `more`. Returns this party's openings.
    fn level_flight(&mut self, prev: Option<&[u8]>, cur: &[u8], more: bool) -> Vec<u8> {
        if let Some(p) = prev {
            self.close(p);
        }
        let mut out = self.open();
        self.close(cur);
        if more {
            out.extend(self.open());
        }
        out
    }

    /// This party's shares of `(c_low, w)` per element, once both trees are done.
    fn results(&self) -> Vec<(bool, bool)> {
        let (w, c) = (self.trees[0].result(), self.trees[1].result());
        (0..self.n).map(|i| (c[i], w[i])).collect()
    }
}

/// Where a party is in the flights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Comparing,
    Level(usize),
    Products,
    Done,
}

/// The server's online state. Secret.
pub struct Server {
    spec: Spec,
    n: usize,
    ys: Vec<u64>,
    cmp: Option<[millionaire::Server; 2]>,
    triples: Option<Triples>,
    /// Its choices of the client-sent OTs (two per element, `c_low` then `w`), packed, and their
    /// pads' low bits (`ℓ` then `f` per element).
    rev_choices: Vec<u8>,
    rev_pads: Vec<u8>,
    trees: Option<Trees>,
    out: Vec<u64>,
    stage: Stage,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "trunc_ot::Server {{ n: {}, stage: {:?}, <redacted> }}", self.n, self.stage)
    }
}

impl Server {
    /// The server's online run on its input shares `ys` (`< 2^ℓ`).
    pub fn new(spec: Spec, off: ServerOffline, ys: Vec<u64>) -> Server {
        let n = ys.len();
        let ServerOffline { n: count, wrap, low, triples, rev_choices, rev_pads } = off;
        assert_eq!(count, n, "trunc_ot: offline material for {count} elements, {n} inputs");
        let xw = ys.iter().map(|&y| spec.biased(y)).collect();
        let xl = ys.iter().map(|&y| low_bits(y, spec.shift)).collect();
        let cmp = [millionaire::Server::new(spec.wrap(), xw, wrap), millionaire::Server::new(spec.low(), xl, low)];
        Server {
            spec,
            n,
            ys,
            cmp: Some(cmp),
            triples: Some(triples),
            rev_choices,
            rev_pads,
            trees: None,
            out: Vec::new(),
            stage: Stage::Comparing,
        }
    }

    /// The server's answer to the client's flight `msg` (exactly the size [`Spec::flights`]
    /// gives it): its next flight, or `None` after the client's last one, when
    /// [`Server::output`] is ready. Fresh random bits (the comparison leaves' masks) come from
    /// `rng`.
    pub fn reply(&mut self, msg: &[u8], rng: &mut (impl Rng + ?Sized)) -> Option<Vec<u8>> {
        let n = self.n;
        match self.stage {
            Stage::Comparing => {
                let [cw, cl] = self.cmp.take().expect("comparisons start once");
                let split = millionaire::choice_bytes(self.spec.wrap(), n);
                let (mut tables, lw) = cw.tables(&msg[..split], rng);
                let (tl, ll) = cl.tables(&msg[split..], rng);
                tables.extend(tl);
                let trees = [Tree::new(self.spec.wrap(), n, lw), Tree::new(self.spec.low(), n, ll)];
                let triples = self.triples.take().expect("once");
                self.trees = Some(Trees { n, server: true, trees, triples, open: None });
                if self.spec.level_ands().is_empty() {
                    // No AND level: the derandomisation rides on the tables.
                    tables.extend(self.derandomise());
                    self.stage = Stage::Products;
                } else {
                    // The server opens level 0 first, with its tables.
                    tables.extend(self.trees.as_mut().expect("just made").open());
                    self.stage = Stage::Level(1);
                }
                Some(tables)
            }
            Stage::Level(j) => {
                // The client's level flight j − 1: its openings of j − 1 and (if any) j.
                let last = self.spec.level_ands().len();
                let (prev, rest) = msg.split_at(self.spec.open_bytes(j - 1, n));
                let trees = self.trees.as_mut().expect("levels after the comparisons");
                if j == last {
                    // The client sent the last level: the derandomisation goes alone.
                    trees.close(prev);
                    self.stage = Stage::Products;
                    return Some(self.derandomise());
                }
                let mut mine = trees.level_flight(Some(prev), rest, j + 1 < last);
                if j + 1 < last {
                    self.stage = Stage::Level(j + 2);
                } else {
                    mine.extend(self.derandomise());
                    self.stage = Stage::Products;
                }
                Some(mine)
            }
            Stage::Products => {
                let (ell, f, ring) = (self.spec.ell(), self.spec.shift, self.spec.ring);
                let bits = self.trees.as_ref().expect("after the levels").results();
                let mut r = BitReader::new(msg);
                let mut pads = BitReader::new(&self.rev_pads);
                let half = 1u64 << (ell - 1 - f);
                self.out = (0..n)
                    .map(|i| {
                        let (clow, w) = bits[i];
                        let (u0, u1, s) = (r.take(ell), r.take(ell), r.take(f));
                        let (h1, h2) = (pads.take(ell), pads.take(f));
                        // c_low − σ, and this party's share of w mod 2^f.
                        let m = h1.wrapping_sub(if clow { u1 } else { u0 });
                        let ws = low_bits(h2.wrapping_sub(if w { s } else { 0 }), f);
                        let top = self.spec.biased(self.ys[i]) >> f;
                        ring.reduce(top.wrapping_sub(half).wrapping_add(m).wrapping_sub(ws << (ell - f)))
                    })
                    .collect();
                self.stage = Stage::Done;
                None
            }
            Stage::Done => panic!("trunc_ot: a flight after the last one"),
        }
    }

    /// The server's derandomisation of the client-sent OTs: its shares of `c_low`, `w` ⊕ its
    /// choices, packed.
    fn derandomise(&self) -> Vec<u8> {
        let bits = self.trees.as_ref().expect("after the trees").results();
        let d = unpack_bits(&self.rev_choices, 2 * self.n);
        let e: Vec<bool> = bits.iter().enumerate().flat_map(|(i, &(c, w))| [c ^ d[2 * i], w ^ d[2 * i + 1]]).collect();
        pack_bits(&e)
    }

    /// The server's output shares, `(y >> f) − r`, after the client's last flight.
    pub fn output(self) -> Vec<u64> {
        assert_eq!(self.stage, Stage::Done, "trunc_ot: output before the last flight");
        self.out
    }
}

/// The client's online state. Secret.
pub struct Client {
    spec: Spec,
    n: usize,
    yc: Vec<u64>,
    r: Vec<u64>,
    cmp: Option<[millionaire::Client; 2]>,
    triples: Option<Triples>,
    /// Both pads' low bits of each OT it sent (`c_low`: `ℓ` bits each, then `w`: `f`).
    reversed: Vec<u8>,
    trees: Option<Trees>,
    stage: Stage,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "trunc_ot::Client {{ n: {}, stage: {:?}, <redacted> }}", self.n, self.stage)
    }
}

impl Client {
    /// The client's online run on its input shares `yc` (`< 2^ℓ`), and its first flight.
    pub fn start(spec: Spec, off: ClientOffline, yc: Vec<u64>) -> (Client, Vec<u8>) {
        let n = yc.len();
        let ClientOffline { n: count, wrap, low, triples, reversed, r } = off;
        assert_eq!((count, r.len()), (n, n), "trunc_ot: offline material for {count} elements, {n} inputs");
        let fmask = low_bits(u64::MAX, spec.shift);
        let zw: Vec<u64> = yc.iter().map(|&y| spec.ring.mask() - spec.ring.reduce(y)).collect();
        let zl: Vec<u64> = yc.iter().map(|&y| fmask - (y & fmask)).collect();
        let (cw, mw) = millionaire::Client::new(spec.wrap(), &zw, wrap);
        let (cl, ml) = millionaire::Client::new(spec.low(), &zl, low);
        let client = Client {
            spec,
            n,
            yc,
            r,
            cmp: Some([cw, cl]),
            triples: Some(triples),
            reversed,
            trees: None,
            stage: Stage::Comparing,
        };
        (client, [mw, ml].concat())
    }

    /// The client's answer to the server's flight `msg` (exactly the size [`Spec::flights`]
    /// gives it): its next flight. The answer to the server's last flight is the client's last.
    pub fn reply(&mut self, msg: &[u8]) -> Vec<u8> {
        let n = self.n;
        match self.stage {
            Stage::Comparing => {
                let [cw, cl] = self.cmp.take().expect("comparisons start once");
                let split = millionaire::table_bytes(self.spec.wrap(), n);
                let end = split + millionaire::table_bytes(self.spec.low(), n);
                let trees = [
                    Tree::new(self.spec.wrap(), n, cw.leaves(&msg[..split])),
                    Tree::new(self.spec.low(), n, cl.leaves(&msg[split..end])),
                ];
                let triples = self.triples.take().expect("once");
                let mut trees = Trees { n, server: false, trees, triples, open: None };
                if self.spec.level_ands().is_empty() {
                    self.trees = Some(trees);
                    self.stage = Stage::Done;
                    return self.products(&msg[end..]);
                }
                // Level flight 0: the server's opening of level 0 follows its tables.
                let last = self.spec.level_ands().len();
                let out = trees.level_flight(None, &msg[end..], last > 1);
                self.trees = Some(trees);
                self.stage = if last > 1 { Stage::Level(2) } else { Stage::Products };
                out
            }
            Stage::Level(j) => {
                // The server's level flight j − 1: its openings of j − 1 and (if any) j.
                let last = self.spec.level_ands().len();
                let (prev, rest) = msg.split_at(self.spec.open_bytes(j - 1, n));
                let trees = self.trees.as_mut().expect("levels after the comparisons");
                if j == last {
                    // The server sent the last level, with its derandomisation.
                    trees.close(prev);
                    self.stage = Stage::Done;
                    return self.products(rest);
                }
                let out = trees.level_flight(Some(prev), rest, j + 1 < last);
                self.stage = if j + 1 < last { Stage::Level(j + 2) } else { Stage::Products };
                out
            }
            Stage::Products => {
                // The client sent the last level: the server's derandomisation alone.
                self.stage = Stage::Done;
                self.products(msg)
            }
            Stage::Done => panic!("trunc_ot: a flight after the last one"),
        }
    }

    /// The client's last flight from the server's derandomisation `e`: per element the two
    /// messages of `c_low` (`ℓ` bits each; they move its share to `r`) and the one of `w`
    /// (`f` bits).
    fn products(&self, e: &[u8]) -> Vec<u8> {
        let (ell, f, ring) = (self.spec.ell(), self.spec.shift, self.spec.ring);
        let e = unpack_bits(e, 2 * self.n);
        let bits = self.trees.as_ref().expect("after the levels").results();
        let mut rev = BitReader::new(&self.reversed);
        let mut out = BitWriter::default();
        for (i, &(clow, w)) in bits.iter().enumerate() {
            let q1 = [rev.take(ell), rev.take(ell)];
            let q2 = [rev.take(f), rev.take(f)];
            let (e1, e2) = (usize::from(e[2 * i]), usize::from(e[2 * i + 1]));
            // w: F(b_s) = w_c ⊕ b_s mod 2^f; this party keeps F(0) − q2[e2] and sends
            // q2[1 ⊕ e2] − q2[e2] − (F(1) − F(0)).
            let delta = if w { u64::MAX } else { 1 };
            let wc = low_bits(u64::from(w).wrapping_sub(q2[e2]), f);
            let s = low_bits(q2[1 ^ e2].wrapping_sub(q2[e2]).wrapping_sub(delta), f);
            // c_low: messages m_t = (c_low_c ⊕ t) − σ with σ = r − (y_c >> f) + w_c·2^(ℓ−f).
            let mine = ring.reduce((ring.reduce(self.yc[i]) >> f).wrapping_sub(wc << (ell - f)));
            let sigma = ring.reduce(self.r[i].wrapping_sub(mine));
            for t in 0..2usize {
                let m = u64::from(clow ^ (t == 1)).wrapping_sub(sigma);
                out.push(ring.reduce(q1[t ^ e1].wrapping_sub(m)), ell);
            }
            out.push(s, f);
        }
        out.finish()
    }
}
