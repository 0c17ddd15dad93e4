//! Boolean Beaver triples from random-choice OT, and the AND of XOR-shared bits with them (the
//! AND gates of the OT-based comparison, docs/protocols.md, "ReLU over OT").
//!
//! A triple is XOR-shared bits `(a, b, c)` with `c = a ∧ b`. Each one costs two random-choice
//! OTs with the server sending and no message: in OT `2i` the server's bit is `a_s = lsb(p₀) ⊕
//! lsb(p₁)` and the client's random choice is `b_c`, so `lsb(p₀) ⊕ lsb(p_{b_c}) = a_s ∧ b_c`; in
//! OT `2i + 1` the server's bit is `b_s` and the client's choice `a_c`. With the local products
//! `a_s ∧ b_s` and `a_c ∧ b_c` that is all of `(a_s ⊕ a_c) ∧ (b_s ⊕ b_c)`.
//!
//! An AND of XOR-shared `x`, `y` opens `d = x ⊕ a` and `e = y ⊕ b` (each party sends its shares
//! of both, packed) and sets `z = c ⊕ d∧b ⊕ e∧a`, the server adding `d∧e`. A triple is used once.
//!
//! **Pairs.** Two ANDs with the same `x` (the comparison tree's `eq_hi ∧ gt_lo`, `eq_hi ∧ eq_lo`)
//! take one *pair* `(a; b₁, b₂; c₁, c₂)`, `cᵢ = a ∧ bᵢ`, from one random-choice OT each way and
//! no message: in the server-sent OT the client's choice is `a_c` and the server's bits
//! `(b₁_s, b₂_s)` are the two low bits of `p₀ ⊕ p₁`; in the client-sent (reversed) one the
//! server's choice is `a_s` and the client's bits `(b₁_c, b₂_c)` are those of `q₀ ⊕ q₁`. A pair
//! opens `d` once and `e₁`, `e₂`: 3 bits where two triples open 4, 2 OTs where they take 4.

use crate::garble::Block;
use crate::ot::RandChoice;
use crate::wire::{BitWriter, pack_bits, unpack_bits};

/// Random-choice OTs (server sending) that `n` triples consume.
pub const fn rots(n: usize) -> usize {
    2 * n
}

/// Bytes of one party's opening message for `n` ANDs (its shares of `d` and `e`, packed).
pub const fn open_bytes(n: usize) -> usize {
    (2 * n).div_ceil(8)
}

/// Bytes one party keeps for `n` triples between the phases ([`Triples::bytes`]).
pub const fn stored_bytes(n: usize) -> usize {
    (3 * n).div_ceil(8)
}

/// Bytes one party's opening message takes for `singles` ANDs and `pairs` pairs.
pub const fn open_groups_bytes(singles: usize, pairs: usize) -> usize {
    (2 * singles + 3 * pairs).div_ceil(8)
}

/// Bytes one party keeps for `singles` triples and `pairs` pairs between the phases
/// ([`Triples::bytes`]): three bits per triple, five per pair, each part packed on its own.
pub const fn stored_groups_bytes(singles: usize, pairs: usize) -> usize {
    (3 * singles).div_ceil(8) + (5 * pairs).div_ceil(8)
}

/// One party's shares of a queue of Boolean triples, used front to back: `(a, b, c)` per triple,
/// packed three bits each ([`Triples::bytes`] is `⌈3n/8⌉`: what a party keeps between the
/// phases, docs/protocols.md). Secret.
#[derive(Default)]
pub struct Triples {
    bits: Vec<u8>,
    n: usize,
    next: usize,
    /// The pairs, `(a, b₁, b₂, c₁, c₂)` five bits each, used front to back.
    pairs: Vec<u8>,
    np: usize,
    next_pair: usize,
}

impl std::fmt::Debug for Triples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Triples {{ left: {}, <redacted> }}", self.left())
    }
}

impl Triples {
    fn pack(n: usize, triple: impl Fn(usize) -> (bool, bool, bool)) -> Triples {
        let mut w = BitWriter::default();
        for i in 0..n {
            let (a, b, c) = triple(i);
            w.push(u64::from(a) | u64::from(b) << 1 | u64::from(c) << 2, 3);
        }
        Triples { bits: w.finish(), n, next: 0, ..Triples::default() }
    }

    /// Adds `np` pairs, `pair(i)` giving pair `i`'s `(a, b₁, b₂, c₁, c₂)`.
    fn with_pairs(mut self, np: usize, pair: impl Fn(usize) -> [bool; 5]) -> Triples {
        let mut w = BitWriter::default();
        for i in 0..np {
            let v = pair(i);
            w.push(v.iter().enumerate().fold(0u64, |acc, (k, &b)| acc | u64::from(b) << k), 5);
        }
        (self.pairs, self.np, self.next_pair) = (w.finish(), np, 0);
        self
    }

    /// The server's triples from the pads of [`rots`]`(singles)` OTs it sent, and its pairs
    /// from the pads of one more OT it sent per pair (`pair_pads`) and its choices and pads of
    /// one OT the client sent per pair.
    pub fn server_paired(
        pads: &[[Block; 2]],
        pair_pads: &[[Block; 2]],
        rev_choices: &[bool],
        rev_pads: &[Block],
    ) -> Triples {
        assert!(
            pair_pads.len() == rev_choices.len() && rev_choices.len() == rev_pads.len(),
            "one OT each way per pair"
        );
        Triples::server(pads).with_pairs(pair_pads.len(), |i| {
            let p = pair_pads[i];
            pair_shares(rev_choices[i], p, rev_pads[i])
        })
    }

    /// The client's side of [`Triples::server_paired`]: its choices and pads of the OTs the
    /// server sent (triples, then one per pair), and both pads of the OT it sent per pair.
    pub fn client_paired(
        choices: &[bool],
        pads: &[Block],
        pair_choices: &[bool],
        pair_pads: &[Block],
        reversed: &[[Block; 2]],
    ) -> Triples {
        assert!(pair_choices.len() == pair_pads.len() && pair_pads.len() == reversed.len(), "one OT each way per pair");
        Triples::client_of(choices, pads)
            .with_pairs(pair_pads.len(), |i| pair_shares(pair_choices[i], reversed[i], pair_pads[i]))
    }

    /// The server's triples from the pads of [`rots`]`(n)` OTs it sent.
    pub fn server(pads: &[[Block; 2]]) -> Triples {
        Triples::pack(pads.len() / 2, |i| {
            let (u, v) = (pads[2 * i], pads[2 * i + 1]);
            let a = u[0].lsb() ^ u[1].lsb();
            let b = v[0].lsb() ^ v[1].lsb();
            (a, b, (a & b) ^ u[0].lsb() ^ v[0].lsb())
        })
    }

    /// The client's triples from the same OTs' random choices and pads.
    pub fn client(rc: &RandChoice) -> Triples {
        Triples::client_of(&rc.choices, &rc.pads)
    }

    /// [`Triples::client`] on the choices and pads of a part of a batch.
    pub fn client_of(choices: &[bool], pads: &[Block]) -> Triples {
        assert_eq!(choices.len(), pads.len());
        Triples::pack(pads.len() / 2, |i| {
            let (b, a) = (choices[2 * i], choices[2 * i + 1]);
            (a, b, (a & b) ^ pads[2 * i].lsb() ^ pads[2 * i + 1].lsb())
        })
    }

    /// Bytes the triples and pairs occupy (all of them, used or not).
    pub fn bytes(&self) -> usize {
        self.bits.len() + self.pairs.len()
    }

    /// Pair `i`'s shares `(a, b₁, b₂, c₁, c₂)`.
    fn get_pair(&self, i: usize) -> [bool; 5] {
        std::array::from_fn(|k| (self.pairs[(5 * i + k) / 8] >> ((5 * i + k) % 8)) & 1 == 1)
    }

    /// Pairs not used yet.
    pub fn pairs_left(&self) -> usize {
        self.np - self.next_pair
    }

    /// Starts a batch of single ANDs `xs ∧ ys` and of pairs `xp ∧ y1`, `xp ∧ y2` on XOR shares,
    /// taking a triple per single and a pair per pair: the state and this party's opening
    /// ([`open_groups_bytes`] long: the singles' `d` then `e`, then per pair `d`, `e₁`, `e₂`).
    ///
    /// Panics if fewer are left (the protocols draw exactly what their plan counts).
    pub fn open_groups(
        &mut self,
        (xs, ys): (&[bool], &[bool]),
        (xp, y1, y2): (&[bool], &[bool], &[bool]),
    ) -> (GroupState, Vec<u8>) {
        let single = self.take_singles(xs, ys);
        assert!(xp.len() == y1.len() && y1.len() == y2.len());
        let k = xp.len();
        assert!(k <= self.pairs_left(), "{k} AND pairs with {} left", self.pairs_left());
        let pairs: Vec<[bool; 5]> = (self.next_pair..self.next_pair + k).map(|i| self.get_pair(i)).collect();
        self.next_pair += k;
        let de: Vec<bool> = (0..k)
            .flat_map(|i| {
                let [a, b1, b2, ..] = pairs[i];
                [xp[i] ^ a, y1[i] ^ b1, y2[i] ^ b2]
            })
            .collect();
        // One message: the singles' bits then the pairs', packed together.
        let bits: Vec<bool> = single.de.iter().chain(&de).copied().collect();
        (GroupState { single, pairs, de }, pack_bits(&bits))
    }

    /// Triple `i`'s shares `(a, b, c)`.
    fn get(&self, i: usize) -> (bool, bool, bool) {
        let bit = |k: usize| (self.bits[k / 8] >> (k % 8)) & 1 == 1;
        (bit(3 * i), bit(3 * i + 1), bit(3 * i + 2))
    }

    /// Triples not used yet.
    pub fn left(&self) -> usize {
        self.n - self.next
    }

    /// Starts `x ∧ y` on XOR shares (`x.len() == y.len()` ANDs, taking as many triples):
    /// the state and this party's opening message ([`open_bytes`] long).
    ///
    /// Panics if fewer triples are left: the protocols draw exactly the triples their plan
    /// counts, so that is a bug, not bad input.
    pub fn and_open(&mut self, x: &[bool], y: &[bool]) -> (AndState, Vec<u8>) {
        let st = self.take_singles(x, y);
        let msg = pack_bits(&st.de);
        (st, msg)
    }

    /// [`Triples::and_open`]'s state, its opening unpacked.
    fn take_singles(&mut self, x: &[bool], y: &[bool]) -> AndState {
        assert_eq!(x.len(), y.len());
        let n = x.len();
        assert!(n <= self.left(), "{n} ANDs with {} triples left", self.left());
        let (mut a, mut b, mut c) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for i in self.next..self.next + n {
            let (ai, bi, ci) = self.get(i);
            a.push(ai);
            b.push(bi);
            c.push(ci);
        }
        self.next += n;
        let mut de: Vec<bool> = x.iter().zip(&a).map(|(x, a)| x ^ a).collect();
        de.extend(y.iter().zip(&b).map(|(y, b)| y ^ b));
        AndState { a, b, c, de }
    }
}

/// An AND batch waiting for the peer's opening. Secret.
pub struct AndState {
    a: Vec<bool>,
    b: Vec<bool>,
    c: Vec<bool>,
    /// This party's shares of `d` then `e`.
    de: Vec<bool>,
}

impl std::fmt::Debug for AndState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AndState {{ ands: {}, <redacted> }}", self.a.len())
    }
}

impl AndState {
    /// This party's shares of `x ∧ y`, from the peer's opening `peer` (exactly [`open_bytes`]
    /// long: the drivers receive it with that size). `server` adds the public `d ∧ e` once.
    pub fn finish(self, peer: &[u8], server: bool) -> Vec<bool> {
        let theirs = unpack_bits(peer, 2 * self.a.len());
        self.finish_bits(&theirs, server)
    }

    /// [`AndState::finish`] on the peer's opening unpacked (its `d` then `e` bits).
    fn finish_bits(self, theirs: &[bool], server: bool) -> Vec<bool> {
        let n = self.a.len();
        (0..n)
            .map(|i| {
                let d = self.de[i] ^ theirs[i];
                let e = self.de[n + i] ^ theirs[n + i];
                self.c[i] ^ (d & self.b[i]) ^ (e & self.a[i]) ^ (server & d & e)
            })
            .collect()
    }
}

/// One party's shares `(a, b₁, b₂, c₁, c₂)` of a pair from its choice `a` of the OT the peer
/// sent (its pad `chosen` there) and both pads `sent` of the OT it sent: its `b`s are the two
/// low bits of `sent`'s difference, and `c_k = a ∧ b_k` plus the low bits `k` of `sent[0]`
/// (its share of the peer's choice times its `b_k`) and of `chosen` (its share of its `a` times
/// the peer's `b_k`).
fn pair_shares(a: bool, sent: [Block; 2], chosen: Block) -> [bool; 5] {
    let diff = sent[0].0 ^ sent[1].0;
    let (b1, b2) = (diff & 1 == 1, diff & 2 == 2);
    let (u, v) = (sent[0].0, chosen.0);
    let c = |k: u32, b: bool| (a & b) ^ ((u >> k) & 1 == 1) ^ ((v >> k) & 1 == 1);
    [a, b1, b2, c(0, b1), c(1, b2)]
}

/// A batch of singles and pairs waiting for the peer's opening. Secret.
pub struct GroupState {
    single: AndState,
    pairs: Vec<[bool; 5]>,
    /// This party's shares of `d`, `e₁`, `e₂` per pair.
    de: Vec<bool>,
}

impl std::fmt::Debug for GroupState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GroupState {{ ands: {}, pairs: {}, <redacted> }}", self.single.a.len(), self.pairs.len())
    }
}

impl GroupState {
    /// This party's shares of the singles' ANDs and of each pair's two ANDs (`x ∧ y₁`,
    /// `x ∧ y₂` in turn), from the peer's opening (exactly [`open_groups_bytes`] long).
    pub fn finish(self, peer: &[u8], server: bool) -> (Vec<bool>, Vec<bool>) {
        let (s, k) = (self.single.a.len(), self.pairs.len());
        let theirs = unpack_bits(peer, 2 * s + 3 * k);
        let single = self.single.finish_bits(&theirs[..2 * s], server);
        let mut z = Vec::with_capacity(2 * k);
        for (i, [a, b1, b2, c1, c2]) in self.pairs.into_iter().enumerate() {
            let o = |j: usize| self.de[3 * i + j] ^ theirs[2 * s + 3 * i + j];
            let (d, e1, e2) = (o(0), o(1), o(2));
            z.push(c1 ^ (d & b1) ^ (e1 & a) ^ (server & d & e1));
            z.push(c2 ^ (d & b2) ^ (e2 & a) ^ (server & d & e2));
        }
        (single, z)
    }
}

/// Test dealer: `n` random-choice OTs (server sending) from `rng`, both halves.
#[cfg(test)]
pub(crate) fn deal(rng: &mut impl rand::Rng, n: usize) -> (Vec<[Block; 2]>, RandChoice) {
    let pads: Vec<[Block; 2]> = (0..n).map(|_| [Block(rng.random()), Block(rng.random())]).collect();
    let choices: Vec<bool> = (0..n).map(|_| rng.random()).collect();
    let chosen = pads.iter().zip(&choices).map(|(p, &c)| p[c as usize]).collect();
    (pads, RandChoice { choices, pads: chosen })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn xor(a: &[bool], b: &[bool]) -> Vec<bool> {
        a.iter().zip(b).map(|(a, b)| a ^ b).collect()
    }

    #[test]
    fn triples_multiply_and_ands_of_shared_bits_are_ands() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let n = 1000;
        let (pads, rc) = deal(&mut rng, rots(n));
        let (mut ts, mut tc) = (Triples::server(&pads), Triples::client(&rc));
        assert_eq!((ts.left(), tc.left()), (n, n));
        // The triples themselves: c = a ∧ b, and a, b are not constant.
        let shares = |t: &Triples| -> [Vec<bool>; 3] {
            let v: Vec<(bool, bool, bool)> = (0..n).map(|i| t.get(i)).collect();
            [v.iter().map(|x| x.0).collect(), v.iter().map(|x| x.1).collect(), v.iter().map(|x| x.2).collect()]
        };
        let ([sa, sb, sc], [ca, cb, cc]) = (shares(&ts), shares(&tc));
        let (a, b) = (xor(&sa, &ca), xor(&sb, &cb));
        assert_eq!(xor(&sc, &cc), a.iter().zip(&b).map(|(a, b)| a & b).collect::<Vec<_>>());
        assert_eq!((ts.bytes(), tc.bytes()), ((3 * n).div_ceil(8), (3 * n).div_ceil(8)), "three bits per triple");
        assert!((400..600).contains(&a.iter().filter(|&&v| v).count()));
        assert!((400..600).contains(&b.iter().filter(|&&v| v).count()));
        // ANDs in two batches (the queue advances), all four input combinations.
        for k in [600, 400] {
            let x: Vec<bool> = (0..k).map(|i| i % 2 == 1).collect();
            let y: Vec<bool> = (0..k).map(|i| i % 4 >= 2).collect();
            let (xs, ys): (Vec<bool>, Vec<bool>) = (0..k).map(|_| (rng.random::<bool>(), rng.random::<bool>())).unzip();
            let (sx, sy) = (xor(&x, &xs), xor(&y, &ys));
            let (ss, ms) = ts.and_open(&xs, &ys);
            let (sc, mc) = tc.and_open(&sx, &sy);
            assert_eq!((ms.len(), mc.len()), (open_bytes(k), open_bytes(k)));
            let z = xor(&ss.finish(&mc, true), &sc.finish(&ms, false));
            for i in 0..k {
                assert_eq!(z[i], x[i] & y[i], "AND {i}");
            }
        }
        assert_eq!((ts.left(), tc.left()), (0, 0));
        assert_eq!(format!("{ts:?}"), "Triples { left: 0, <redacted> }");
    }

    /// Pairs: `cₖ = a ∧ bₖ` from one OT each way, the operands not constant; a batch of singles
    /// and pairs together computes every AND, its opening as long as the plan says.
    #[test]
    fn pairs_multiply_and_grouped_ands_are_ands() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (ns, np) = (300, 1000);
        let (pads, rc) = deal(&mut rng, rots(ns));
        let (pair_pads, prc) = deal(&mut rng, np);
        let (rev_pads, rev) = deal(&mut rng, np);
        let mut ts = Triples::server_paired(&pads, &pair_pads, &rev.choices, &rev.pads);
        let mut tc = Triples::client_paired(&rc.choices, &rc.pads, &prc.choices, &prc.pads, &rev_pads);
        assert_eq!((ts.pairs_left(), tc.pairs_left()), (np, np));
        assert_eq!((ts.bytes(), tc.bytes()), (stored_groups_bytes(ns, np), stored_groups_bytes(ns, np)));
        let mut ones = [0usize; 3];
        for i in 0..np {
            let (s, c) = (ts.get_pair(i), tc.get_pair(i));
            let v: Vec<bool> = (0..5).map(|k| s[k] ^ c[k]).collect();
            assert_eq!((v[3], v[4]), (v[0] & v[1], v[0] & v[2]), "pair {i}");
            (0..3).for_each(|k| ones[k] += usize::from(v[k]));
        }
        assert!(ones.iter().all(|&o| (400..600).contains(&o)), "{ones:?}");
        for (k, m) in [(200usize, 600usize), (100, 400)] {
            let bits = |n: usize, rng: &mut ChaCha8Rng| -> Vec<bool> { (0..n).map(|_| rng.random()).collect() };
            let (x, y, xp, y1, y2) =
                (bits(k, &mut rng), bits(k, &mut rng), bits(m, &mut rng), bits(m, &mut rng), bits(m, &mut rng));
            // The server's shares are random; the client's complete them.
            let (sx, sy, sxp, sy1, sy2) =
                (bits(k, &mut rng), bits(k, &mut rng), bits(m, &mut rng), bits(m, &mut rng), bits(m, &mut rng));
            let (st, ms) = ts.open_groups((&sx, &sy), (&sxp, &sy1, &sy2));
            let (cx, cy, cxp, cy1, cy2) = (xor(&x, &sx), xor(&y, &sy), xor(&xp, &sxp), xor(&y1, &sy1), xor(&y2, &sy2));
            let (ct, mc) = tc.open_groups((&cx, &cy), (&cxp, &cy1, &cy2));
            assert_eq!((ms.len(), mc.len()), (open_groups_bytes(k, m), open_groups_bytes(k, m)));
            let ((zs, zps), (zc, zpc)) = (st.finish(&mc, true), ct.finish(&ms, false));
            for i in 0..k {
                assert_eq!(zs[i] ^ zc[i], x[i] & y[i], "single {i}");
            }
            for i in 0..m {
                assert_eq!(zps[2 * i] ^ zpc[2 * i], xp[i] & y1[i], "pair {i}, first");
                assert_eq!(zps[2 * i + 1] ^ zpc[2 * i + 1], xp[i] & y2[i], "pair {i}, second");
            }
        }
        assert_eq!((ts.left(), ts.pairs_left(), tc.left(), tc.pairs_left()), (0, 0, 0, 0));
    }

    /// Shares of one party alone say nothing: the client's opening of `x` is `x ⊕ a` with `a`
    /// uniform, whatever `x` is (here: all-zero and all-one inputs open to balanced bits).
    #[test]
    fn openings_are_masked() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let n = 2000;
        let (_, rc) = deal(&mut rng, rots(n));
        let mut tc = Triples::client(&rc);
        let (_, m0) = tc.and_open(&vec![false; n / 2], &vec![false; n / 2]);
        let (_, m1) = tc.and_open(&vec![true; n / 2], &vec![true; n / 2]);
        for m in [m0, m1] {
            let ones = unpack_bits(&m, n).iter().filter(|&&v| v).count();
            assert!((800..1200).contains(&ones), "{ones}");
        }
    }
}
