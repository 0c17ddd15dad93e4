//! Chord interpolation in a circuit: a function tabulated at public knots, evaluated between
//! them along the chord (the `exp2` of a Softmax, the piecewise-linear sigmoid). The top bits
//! of the argument pick a segment's knot and slope (table lookups whose leaves cost nothing),
//! and one small multiplier scales the slope by the bits below.

use super::arith::widen;
use super::{Builder, Wire};

/// A bit known when the circuit is built, or a wire.
#[derive(Clone, Copy)]
enum Bit {
    Const(bool),
    Wire(Wire),
}

impl Bit {
    fn wire(self, b: &mut Builder) -> Wire {
        match self {
            Bit::Wire(w) => w,
            Bit::Const(v) => b.constant(v as u64, 1)[0],
        }
    }
}

/// `sel ? a : c` for one bit, free where `a` and `c` are both known.
fn mux_bit(b: &mut Builder, sel: Wire, a: Bit, c: Bit) -> Bit {
    match (a, c) {
        (Bit::Const(x), Bit::Const(y)) if x == y => Bit::Const(x),
        (Bit::Const(true), Bit::Const(false)) => Bit::Wire(sel),
        (Bit::Const(false), Bit::Const(true)) => Bit::Wire(b.not(sel)),
        _ => {
            let (a, c) = (a.wire(b), c.wire(b));
            Bit::Wire(b.mux(sel, &[a], &[c])[0])
        }
    }
}

/// `table[sel]` as `width` wires, for a table of `2^|sel|` public constants: a tree of
/// selections from `sel`'s lowest wire up, free at the leaves (where both entries are known).
fn lookup(b: &mut Builder, sel: &[Wire], table: &[u64], width: usize) -> Vec<Wire> {
    debug_assert_eq!(table.len(), 1 << sel.len());
    let mut level: Vec<Vec<Bit>> =
        table.iter().map(|&v| (0..width).map(|i| Bit::Const((v >> i) & 1 == 1)).collect()).collect();
    for &w in sel {
        level =
            level.chunks(2).map(|pair| (0..width).map(|i| mux_bit(b, w, pair[1][i], pair[0][i])).collect()).collect();
    }
    level[0].iter().map(|&bit| bit.wire(b)).collect()
}

/// The product of two unsigned values, `x.len() + y.len()` wires: one row of `y.len()` ANDs
/// per wire of `x`, each added into the running sum (whose bits above the row are zero).
fn multiply(b: &mut Builder, x: &[Wire], y: &[Wire]) -> Vec<Wire> {
    let n = x.len() + y.len();
    let zero = b.zero();
    let mut acc = vec![zero; n];
    for (i, &xi) in x.iter().enumerate() {
        let row: Vec<Wire> = y.iter().map(|&yj| b.and(xi, yj)).collect();
        if i == 0 {
            acc[..y.len()].copy_from_slice(&row);
            continue;
        }
        let w = (y.len() + 1).min(n - i);
        let row = widen(b, &row, w);
        let sum = b.add(&acc[i..i + w], &row, false);
        acc[i..i + w].copy_from_slice(&sum);
    }
    acc
}

/// `K_j + ⌊(K_(j+1) − K_j)·d / 2^|d|⌋` as `width` wires, for the segment `j` (unsigned, the
/// wires `sel`) and the offset `d` into it (unsigned, the wires `d`), with the increasing
/// public knots `K` (`2^|sel| + 1` of them, each below `2^width`).
pub(super) fn chord(b: &mut Builder, sel: &[Wire], d: &[Wire], knots: &[u64], width: usize) -> Vec<Wire> {
    let segments = 1usize << sel.len();
    debug_assert_eq!(knots.len(), segments + 1);
    let slopes: Vec<u64> = (0..segments).map(|j| knots[j + 1] - knots[j]).collect();
    let wd = (64 - slopes.iter().max().copied().unwrap_or(1).leading_zeros() as usize).max(1);
    let knot = lookup(b, sel, &knots[..segments], width);
    let slope = lookup(b, sel, &slopes, wd);
    let product = multiply(b, d, &slope);
    let rise = widen(b, &product[d.len()..], width);
    b.add(&knot, &rise, false)
}
