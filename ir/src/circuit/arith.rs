//! Integer building blocks on little-endian wire vectors.

use super::{Builder, Wire};

/// `x` zero-extended (or cut) to `n` wires.
pub(super) fn widen(b: &mut Builder, x: &[Wire], n: usize) -> Vec<Wire> {
    let zero = b.zero();
    (0..n).map(|i| x.get(i).copied().unwrap_or(zero)).collect()
}

/// `a >> k` (logical), `zero` shifted in.
pub(super) fn shift_down(a: &[Wire], k: usize, zero: Wire) -> Vec<Wire> {
    (0..a.len()).map(|j| if j + k < a.len() { a[j + k] } else { zero }).collect()
}

impl Builder {
    /// `a + b + carry_in mod 2^n` (`n = a.len() = b.len()`), ripple carry: one AND per bit
    /// except the last (`carry' = c ⊕ ((a ⊕ c) ∧ (b ⊕ c))`).
    pub fn add(&mut self, a: &[Wire], b: &[Wire], carry_in: bool) -> Vec<Wire> {
        assert_eq!(a.len(), b.len(), "operand widths");
        let n = a.len();
        let mut out = Vec::with_capacity(n);
        let mut carry: Option<Wire> = None;
        for i in 0..n {
            let ab = self.xor(a[i], b[i]);
            let s = match carry {
                Some(c) => self.xor(ab, c),
                None if carry_in && i == 0 => self.not(ab),
                None => ab,
            };
            out.push(s);
            if i + 1 == n {
                break;
            }
            carry = Some(match carry {
                Some(c) => {
                    let ac = self.xor(a[i], c);
                    let bc = self.xor(b[i], c);
                    let t = self.and(ac, bc);
                    self.xor(c, t)
                }
                // Carry into bit 1 with a constant carry-in: a ∧ b, or a ∨ b = ¬(¬a ∧ ¬b).
                None if carry_in => {
                    let (na, nb) = (self.not(a[i]), self.not(b[i]));
                    let t = self.and(na, nb);
                    self.not(t)
                }
                None => self.and(a[i], b[i]),
            });
        }
        out
    }

    /// `a − b mod 2^n` = a + ¬b + 1.
    pub fn sub(&mut self, a: &[Wire], b: &[Wire]) -> Vec<Wire> {
        let nb: Vec<Wire> = b.iter().map(|&w| self.not(w)).collect();
        self.add(a, &nb, true)
    }

    /// `sel ? a : b`, bitwise: `b ⊕ (sel ∧ (a ⊕ b))`, one AND per bit.
    pub fn mux(&mut self, sel: Wire, a: &[Wire], b: &[Wire]) -> Vec<Wire> {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| {
                let d = self.xor(x, y);
                let t = self.and(sel, d);
                self.xor(y, t)
            })
            .collect()
    }

    /// `a · k mod 2^n` for a public constant `k` (shift-and-add over its set bits).
    pub fn mul_const(&mut self, a: &[Wire], k: u64) -> Vec<Wire> {
        let n = a.len();
        let zero = self.zero();
        let mut acc: Option<Vec<Wire>> = None;
        for s in (0..n.min(64)).filter(|&s| (k >> s) & 1 == 1) {
            let shifted: Vec<Wire> = (0..n).map(|i| if i >= s { a[i - s] } else { zero }).collect();
            acc = Some(match acc {
                None => shifted,
                Some(x) => self.add(&x, &shifted, false),
            });
        }
        acc.unwrap_or_else(|| vec![zero; n])
    }

    /// `a < b` for two's-complement `a`, `b`, correct for every input (no overflow): when the
    /// signs differ the negative one is smaller, else the sign of `a − b` decides.
    pub fn less_signed(&mut self, a: &[Wire], b: &[Wire]) -> Wire {
        let n = a.len();
        let d = self.sub(a, b);
        let differ = self.xor(a[n - 1], b[n - 1]);
        // differ ? a_sign : d_sign
        let pick = self.mux(differ, &[a[n - 1]], &[d[n - 1]]);
        pick[0]
    }
}
