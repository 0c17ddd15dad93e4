//! The public counts of a ReLU layer over OT ([`super::Kind::ReluOt`]): random-choice OTs per
//! element and the online flights' directions and exact sizes, computed from `ℓ`, the fused
//! shift and the element count alone, so the scripts and the cost model need no runtime. The
//! runtime's `proto::relu_ot::Spec` implements the same counts; its tests check they agree, and
//! the executors check every message against the script.

use super::script::Dir;

/// Digit size of the comparisons (1-out-of-16 OTs; the runtime's `proto::relu_ot::DIGIT`).
pub const DIGIT: u32 = 4;

/// A comparison of `bits`-bit values on [`DIGIT`]-bit digits: its digit widths, lowest first.
fn widths(bits: u32) -> Vec<u32> {
    (0..bits.div_ceil(DIGIT)).map(|j| DIGIT.min(bits - j * DIGIT)).collect()
}

/// ANDs per comparison at each level of its tree, leaves first.
fn tree_ands(bits: u32) -> Vec<usize> {
    let mut nodes = vec![widths(bits).len()];
    while *nodes.last().expect("nonempty") > 1 {
        let c = *nodes.last().expect("nonempty");
        nodes.push(c.div_ceil(2));
    }
    nodes[..nodes.len() - 1].iter().map(|&c| 2 * (c / 2) - 1).collect()
}

/// Bits of the server's tables per comparison (none for no bits: shift 0 has no low comparison).
fn table_bits(bits: u32) -> usize {
    widths(bits).iter().enumerate().map(|(j, &w)| (1usize << w) * if j == 0 { 1 } else { 2 }).sum()
}

/// ANDs per element at each opening: the carry (`ℓ − 1` bits) and low (`shift` bits)
/// comparison trees side by side, the first level with `ms ∧ mc`, then the last two ANDs; at
/// shift 0 the carry tree alone (no low comparison, no wrap term).
pub fn level_ands(ell: u32, shift: u32) -> Vec<usize> {
    if shift == 0 {
        return tree_ands(ell - 1);
    }
    let (a, b) = (tree_ands(ell - 1), tree_ands(shift));
    let levels = a.len().max(b.len()).max(1);
    let mut v: Vec<usize> = (0..levels)
        .map(|t| a.get(t).copied().unwrap_or(0) + b.get(t).copied().unwrap_or(0) + usize::from(t == 0))
        .collect();
    v.push(2);
    v
}

/// Products of a shared bit with a value the server sends per element: three (one at shift 0).
fn products(shift: u32) -> u64 {
    if shift == 0 { 1 } else { 3 }
}

/// Random-choice OTs per element with the server sending (comparison leaves, two per AND,
/// the products); the client sends one more per element.
pub fn rots(ell: u32, shift: u32) -> u64 {
    (ell - 1 + shift) as u64 + 2 * level_ands(ell, shift).iter().sum::<usize>() as u64 + products(shift)
}

/// The online flights for `n` elements in order: `(sender, payload bytes)`, alternating, the
/// client's first and last.
pub fn flights(ell: u32, shift: u32, n: u64) -> Vec<(Dir, u64)> {
    use Dir::*;
    let bytes = |bits: u64| bits.div_ceil(8);
    let levels = level_ands(ell, shift);
    // Without AND levels (shift 0, ℓ ≤ 5) the server's derandomisation rides on its tables.
    let derandomise = if levels.is_empty() { bytes(n) } else { 0 };
    let mut v = vec![
        (ClientToServer, bytes(n * (ell - 1) as u64) + bytes(n * shift as u64)),
        (ServerToClient, bytes(n * table_bits(ell - 1) as u64) + bytes(n * table_bits(shift) as u64) + derandomise),
    ];
    for (t, &a) in levels.iter().enumerate() {
        let open = bytes(2 * n * a as u64);
        v.push((ClientToServer, open));
        // The server's last opening carries its derandomisation of the client-sent OTs.
        v.push((ServerToClient, open + if t + 1 == levels.len() { bytes(n) } else { 0 }));
    }
    v.push((ClientToServer, bytes(products(shift) * n)));
    let product_bits = if shift == 0 { ell } else { 2 * ell + shift };
    v.push((ServerToClient, bytes(n * product_bits as u64)));
    v.push((ClientToServer, bytes(n * 2 * ell as u64)));
    v
}

/// The max tree of a MaxPool over OT ([`super::Kind::MaxPoolOt`]): at each level every window's
/// candidates pair up in order, `(c₀, c₁), (c₂, c₃), …` (an odd last one waits for the next
/// level), and each pair becomes `c₁ + ReLU(c₀ − c₁)`. Returns the pairs at each level, all
/// windows together (each level is one batch of shift-0 ReLUs over OT); empty when every window
/// has one element.
pub fn max_levels(windows: &[Vec<usize>]) -> Vec<u64> {
    let mut sizes: Vec<usize> = windows.iter().map(Vec::len).collect();
    let mut levels = Vec::new();
    while sizes.iter().any(|&k| k > 1) {
        levels.push(sizes.iter().map(|&k| (k / 2) as u64).sum());
        sizes.iter_mut().for_each(|k| *k = k.div_ceil(2));
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_tree_levels_pair_each_window_until_one_is_left() {
        // Windows of 4 (2×2), 3 and 2 (border windows), 1: levels 2+1+1, then 1+1.
        let w = [vec![0, 1, 2, 3], vec![4, 5, 6], vec![7, 8], vec![9]];
        assert_eq!(max_levels(&w), vec![4, 2]);
        assert_eq!(max_levels(&[vec![0; 9]]), vec![4, 2, 1, 1], "9 → 5 → 3 → 2 → 1");
        assert!(max_levels(&[vec![0], vec![1]]).is_empty());
        // k − 1 ReLUs per window of k.
        let w: Vec<Vec<usize>> = (1..12).map(|k| vec![0; k]).collect();
        assert_eq!(max_levels(&w).iter().sum::<u64>(), (0..11).sum::<u64>());
    }
}
