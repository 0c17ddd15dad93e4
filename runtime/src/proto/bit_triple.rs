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

/// One party's shares of a queue of Boolean triples, used front to back: `(a, b, c)` per triple,
/// packed three bits each ([`Triples::bytes`] is `⌈3n/8⌉`: what a party keeps between the
/// phases, docs/protocols.md). Secret.
#[derive(Default)]
pub struct Triples {
    bits: Vec<u8>,
    n: usize,
    next: usize,
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
        Triples { bits: w.finish(), n, next: 0 }
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

    /// Bytes the triples occupy (all of them, used or not).
    pub fn bytes(&self) -> usize {
        self.bits.len()
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
        let msg = pack_bits(&de);
        (AndState { a, b, c, de }, msg)
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
        let n = self.a.len();
        let theirs = unpack_bits(peer, 2 * n);
        (0..n)
            .map(|i| {
                let d = self.de[i] ^ theirs[i];
                let e = self.de[n + i] ^ theirs[n + i];
                self.c[i] ^ (d & self.b[i]) ^ (e & self.a[i]) ^ (server & d & e)
            })
            .collect()
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
