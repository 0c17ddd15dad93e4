//! The AND levels of a ReLU over OT that both parties run in step ([`super::Spec::level_groups`]):
//! the comparison trees side by side with `ms ∧ mc`, where fused the join, then the last pair.

use super::Spec;
use crate::proto::bit_triple::{GroupState, Triples};
use crate::proto::millionaire::{Groups, Leaves, Tree};

/// The AND levels both parties run in step: the two comparison trees and `ms ∧ mc`, then
/// `keep ∧ c_low`, `keep ∧ w` (at shift 0 only the carry tree). Secret.
pub(super) struct Ands {
    spec: Spec,
    n: usize,
    server: bool,
    carry: Tree,
    low: Option<Tree>,
    triples: Triples,
    /// This party's top bits (`ms` or `mc`), the operand of `ms ∧ mc`.
    top: Vec<bool>,
    /// Shares of `ms ∧ mc`, after level 0.
    both_top: Vec<bool>,
    /// Shares of `eq_hi ∧ c_low`, after the join level (fused carry only).
    joined: Vec<bool>,
    level: usize,
    open: Option<GroupState>,
    /// After the trees: shares of keep.
    pub(super) keep: Vec<bool>,
    /// After the final level (with a shift): shares of `keep ∧ c_low`, `keep ∧ w`.
    pub(super) g: Option<(Vec<bool>, Vec<bool>)>,
}

impl Ands {
    pub(super) fn new(spec: Spec, server: bool, top: Vec<bool>, leaves: [Option<Leaves>; 2], triples: Triples) -> Ands {
        let n = top.len();
        let [a, b] = leaves;
        let mut ands = Ands {
            spec,
            n,
            server,
            carry: Tree::new(spec.carry(), n, a.expect("carry leaves")),
            low: spec.low().zip(b).map(|(p, b)| Tree::new(p, n, b)),
            triples,
            top,
            both_top: Vec::new(),
            joined: Vec::new(),
            level: 0,
            open: None,
            keep: Vec::new(),
            g: None,
        };
        if spec.shift == 0 && spec.tree_levels() == 0 {
            ands.set_keep();
        }
        ands
    }

    pub(super) fn levels(&self) -> usize {
        self.spec.tree_levels() + usize::from(self.spec.fused()) + usize::from(self.spec.shift > 0)
    }

    /// Whether the current level is the join `eq_hi ∧ c_low` of a fused carry.
    fn at_join(&self) -> bool {
        self.spec.fused() && self.level == self.spec.tree_levels()
    }

    /// This party's opening of the current level.
    pub(super) fn open(&mut self) -> Vec<u8> {
        let mut g = Groups::default();
        if self.level < self.spec.tree_levels() {
            for t in std::iter::once(&self.carry).chain(&self.low) {
                if let Some(level) = t.pending_groups() {
                    g.extend(level);
                }
            }
            if self.level == 0 && self.spec.shift > 0 {
                // ms ∧ mc: the server's shares are (ms, 0), the client's (0, mc).
                let zeros = vec![false; self.n];
                let (a, b) = if self.server { (self.top.clone(), zeros) } else { (zeros, self.top.clone()) };
                g.singles.0.extend(a);
                g.singles.1.extend(b);
            }
        } else if self.at_join() {
            g.singles = (self.carry.result_eq(), self.low_result());
        } else {
            // keep ∧ c_low and keep ∧ w: one pair.
            let (clow, w) = self.after_trees();
            g.pairs = (self.keep.clone(), clow, w);
        }
        let (singles, pairs) = (&g.singles, &g.pairs);
        let (st, msg) = self.triples.open_groups((&singles.0, &singles.1), (&pairs.0, &pairs.1, &pairs.2));
        self.open = Some(st);
        msg
    }

    /// Keep, once the carry tree (and where fused, the join) is done: `sign = ms ⊕ mc ⊕ carry`,
    /// `keep = ¬sign` (the server flips its share). Returns the carry shares: the tree's result,
    /// or where fused `gt_hi ⊕ (eq_hi ∧ c_low)`.
    pub(super) fn set_keep(&mut self) -> Vec<bool> {
        let mut carry = self.carry.result();
        if self.spec.fused() {
            carry.iter_mut().zip(&self.joined).for_each(|(c, j)| *c ^= j);
        }
        self.keep = (0..self.n).map(|i| self.top[i] ^ carry[i] ^ self.server).collect();
        carry
    }

    /// Shares of `c_low`, once the low tree is done (with a shift).
    fn low_result(&self) -> Vec<bool> {
        self.low.as_ref().expect("a shift has the low comparison").result()
    }

    /// Keep (stored), and shares of c_low and w, once the trees are done (with a shift).
    fn after_trees(&mut self) -> (Vec<bool>, Vec<bool>) {
        let carry = self.set_keep();
        let clow = self.low_result();
        let w = (0..self.n).map(|i| self.both_top[i] ^ carry[i]).collect();
        (clow, w)
    }

    /// The current level's outputs from the peer's opening.
    pub(super) fn close(&mut self, peer: &[u8]) {
        let (zs, zp) = self.open.take().expect("open before close").finish(peer, self.server);
        if self.level < self.spec.tree_levels() {
            let (mut s, mut p) = (0, 0);
            for t in std::iter::once(&mut self.carry).chain(&mut self.low) {
                if let Some((singles, pairs)) = t.pending_groups().map(|g| g.counts()) {
                    t.advance_groups(&zs[s..s + singles], &zp[p..p + 2 * pairs]);
                    (s, p) = (s + singles, p + 2 * pairs);
                }
            }
            if self.level == 0 && self.spec.shift > 0 {
                self.both_top = zs[s..s + self.n].to_vec();
            }
        } else if self.at_join() {
            self.joined = zs;
        } else {
            let (clow, w): (Vec<bool>, Vec<bool>) = zp.chunks_exact(2).map(|c| (c[0], c[1])).unzip();
            self.g = Some((clow, w));
        }
        self.level += 1;
        if self.spec.shift == 0 && self.level == self.spec.tree_levels() {
            self.set_keep();
        }
    }

    /// This party's level flight: closes the pending level with the peer's opening `prev` (none
    /// on the client's first, where nothing is pending), opens the next level and closes it at
    /// once with the peer's opening `cur` (the peer opened it first), then opens the level after
    /// if there is one. Returns this party's openings, in level order.
    pub(super) fn level_flight(&mut self, prev: Option<&[u8]>, cur: &[u8]) -> Vec<u8> {
        if let Some(p) = prev {
            self.close(p);
        }
        let mut out = self.open();
        self.close(cur);
        if self.level < self.levels() {
            out.extend(self.open());
        }
        out
    }
}
