//! The public counts of a ReLU layer over OT ([`super::Kind::ReluOt`]): random-choice OTs per
//! element and the online flights' directions and exact sizes, computed from `ℓ`, the fused
//! shift and the element count alone, so the scripts and the cost model need no runtime. The
//! runtime's `proto::relu_ot::Spec` implements the same counts; its tests check they agree, and
//! the executors check every message against the script.
//!
//! The comparisons read the shares in the layer's read width `w` ([`super::Kind::ReluOt`]'s
//! `width`: ℓ, or the narrowed width of [`crate::Graph::narrow_bits`]); the products move values
//! of the output ring (its `out`: ℓ, or the bits the output's readers need). The counts of the
//! comparisons and ANDs ([`fused`], [`level_groups`], [`rots`]) take the read width where they say
//! `ell`; the byte counts take the output ring as `ell` and the read width as `width`.

use super::script::Dir;

/// Digit size of the comparisons (1-out-of-16 OTs; the runtime's `proto::relu_ot::DIGIT`).
pub const DIGIT: u32 = 4;

/// A comparison of `bits`-bit values on [`DIGIT`]-bit digits: its digit widths, lowest first.
fn widths(bits: u32) -> Vec<u32> {
    (0..bits.div_ceil(DIGIT)).map(|j| DIGIT.min(bits - j * DIGIT)).collect()
}

/// ANDs per comparison at each level of its tree, leaves first.
pub(super) fn tree_ands(bits: u32) -> Vec<usize> {
    comparison_ands(bits, false)
}

/// ANDs per comparison at each level of its tree, leaves first; `eq`: the comparison also
/// yields `[x = z]` (every node's `eq` AND, the runtime's `millionaire::Params::with_eq`).
fn comparison_ands(bits: u32, eq: bool) -> Vec<usize> {
    comparison_groups(bits, eq).into_iter().map(|(s, p)| s + 2 * p).collect()
}

/// [`comparison_ands`] as singles and pairs per level (`proto::bit_triple`'s pairs: the two
/// ANDs of a node share `eq_hi`; the lowest node of a level has only its `gt` AND, unless `eq`).
fn comparison_groups(bits: u32, eq: bool) -> Vec<(usize, usize)> {
    let mut nodes = vec![widths(bits).len()];
    while *nodes.last().expect("nonempty") > 1 {
        let c = *nodes.last().expect("nonempty");
        nodes.push(c.div_ceil(2));
    }
    nodes[..nodes.len() - 1].iter().map(|&c| if eq { (0, c / 2) } else { (1, c / 2 - 1) }).collect()
}

/// Bits of the server's tables per comparison (none for no bits: shift 0 has no low comparison).
pub(super) fn table_bits(bits: u32) -> usize {
    comparison_table_bits(bits, false)
}

/// [`table_bits`] of a comparison that also yields `[x = z]` if `eq` (every digit's entries carry
/// an `eq` bit, not only the upper digits').
fn comparison_table_bits(bits: u32, eq: bool) -> usize {
    widths(bits).iter().enumerate().map(|(j, &w)| (1usize << w) * if j == 0 && !eq { 1 } else { 2 }).sum()
}

/// Whether a ReLU with fused truncation `shift` in `ℓ` bits fuses its low comparison into the
/// carry (docs/protocols.md, "ReLU over OT"): the carry comparison then covers only the bits
/// above the shift, `[f, ℓ − 1)`, and also yields their equality, so that
/// `carry = gt_hi ⊕ (eq_hi ∧ c_low)`: the low comparison's bits are compared once, not twice
/// (`f` fewer OTs and the low digits' tables once). It costs one AND level (the join), so it is
/// taken only where the shorter carry tree makes up for it and the flights do not grow.
pub fn fused(ell: u32, shift: u32) -> bool {
    if shift == 0 || shift + 1 >= ell {
        return false;
    }
    let depth = |bits: u32| tree_ands(bits).len();
    let apart = depth(ell - 1).max(depth(shift)).max(1) + 1;
    let joined = depth(ell - 1 - shift).max(depth(shift)).max(1) + 2;
    joined <= apart
}

/// Width of the carry comparison: `ℓ − 1` bits, or the bits above the shift where [`fused`].
pub fn carry_bits(ell: u32, shift: u32) -> u32 {
    if fused(ell, shift) { ell - 1 - shift } else { ell - 1 }
}

/// ANDs per element at each opening: the carry (`ℓ − 1` bits, or `[f, ℓ − 1)` with equality
/// where [`fused`]) and low (`shift` bits) comparison trees side by side, the first level with
/// `ms ∧ mc`, then where fused the join `eq_hi ∧ c_low`, then the last two ANDs; at shift 0 the
/// carry tree alone (no low comparison, no wrap term).
pub fn level_ands(ell: u32, shift: u32) -> Vec<usize> {
    level_groups(ell, shift).into_iter().map(|(s, p)| s + 2 * p).collect()
}

/// [`level_ands`] as `(singles, pairs)` per level: two ANDs sharing an operand take one pair
/// (`proto::bit_triple`): a tree node's two ANDs (`eq_hi`), and the last two (`keep`).
/// `ms ∧ mc`, the join and each level's lowest tree node (but a fused carry's) are singles.
pub fn level_groups(ell: u32, shift: u32) -> Vec<(usize, usize)> {
    if shift == 0 {
        return comparison_groups(ell - 1, false);
    }
    let fused = fused(ell, shift);
    let (a, b) = (comparison_groups(carry_bits(ell, shift), fused), comparison_groups(shift, false));
    let levels = a.len().max(b.len()).max(1);
    let at = |v: &[(usize, usize)], t: usize| v.get(t).copied().unwrap_or((0, 0));
    let mut v: Vec<(usize, usize)> =
        (0..levels).map(|t| (at(&a, t).0 + at(&b, t).0 + usize::from(t == 0), at(&a, t).1 + at(&b, t).1)).collect();
    if fused {
        v.push((1, 0));
    }
    v.push((0, 1));
    v
}

/// Singles and pairs per element, all levels.
pub(super) fn groups(ell: u32, shift: u32) -> (u64, u64) {
    level_groups(ell, shift).into_iter().fold((0, 0), |(s, p), (a, b)| (s + a as u64, p + b as u64))
}

/// Products of a shared bit with a value the server sends per element: three (one at shift 0).
fn products(shift: u32) -> u64 {
    if shift == 0 { 1 } else { 3 }
}

/// Random-choice OTs per element with the server sending (comparison leaves, two per single
/// AND, one per pair, the products); the client sends [`rots_reversed`].
pub fn rots(ell: u32, shift: u32) -> u64 {
    let (singles, pairs) = groups(ell, shift);
    (carry_bits(ell, shift) + shift) as u64 + 2 * singles + pairs + products(shift)
}

/// Random-choice OTs per element with the client sending: one for the product
/// `keep·(y_c >> f)`, one per pair.
pub fn rots_reversed(ell: u32, shift: u32) -> u64 {
    1 + groups(ell, shift).1
}

/// Bytes one party keeps for `n` elements' singles (3 bits each) and pairs (5 bits each).
pub(super) fn triple_bytes(singles: u64, pairs: u64, n: u64) -> u64 {
    (3 * n * singles).div_ceil(8) + (5 * n * pairs).div_ceil(8)
}

/// Bits the client keeps per comparison of `bits`-bit values between the phases: per digit its
/// random choice and the key bits of the entry it selects (one for the lowest digit, two for
/// the others); none for no bits.
pub(super) fn client_comparison_bits(bits: u32) -> u64 {
    client_bits_of(bits, false)
}

/// [`client_comparison_bits`], with two key bits for every digit if `eq`.
fn client_bits_of(bits: u32, eq: bool) -> u64 {
    let digits = widths(bits).len() as u64;
    if digits == 0 { 0 } else { bits as u64 + 2 * digits - u64::from(!eq) }
}

/// Total width of the products' values per element, for the output ring `ℓ`: `ℓ` at shift 0,
/// else `ℓ + ℓ + (ℓ − w + f)` for a comparison read in `w` bits (`keep ∧ wrap` is needed modulo
/// `2^(ℓ − (w − f))` only, since its term is shifted up by `w − f`: `f` bits when neither the read
/// nor the output is narrowed, none when `w − f ≥ ℓ`).
fn product_width(ell: u32, width: u32, shift: u32) -> u64 {
    if shift == 0 { ell as u64 } else { (2 * ell + (ell + shift).saturating_sub(width)) as u64 }
}

/// Bytes the client keeps between the phases for `n` elements, without its output masks: its
/// random-choice OTs hashed down right after the layer's batches (docs/protocols.md, "ReLU over
/// OT"), each part bit-packed on its own: the comparisons' choices and entry keys, three bits
/// per Boolean triple, per product OT its choice bit and its pad's value-sized low bits, and per
/// element the two `ℓ`-bit pads of the OT it sent. The runtime's `relu_ot::ClientOffline` holds
/// exactly this (a runtime test checks it).
pub fn client_bytes(ell: u32, width: u32, shift: u32, n: u64) -> u64 {
    let bytes = |bits: u64| bits.div_ceil(8);
    let (singles, pairs) = groups(width, shift);
    bytes(n * client_bits_of(carry_bits(width, shift), fused(width, shift)))
        + bytes(n * client_comparison_bits(shift))
        + triple_bytes(singles, pairs, n)
        + bytes(n * products(shift))
        + bytes(n * product_width(ell, width, shift))
        + bytes(2 * n * ell as u64)
}

/// Bytes the server keeps between the phases for `n` elements: the key bits masking its
/// comparison tables (as many as the tables have), three bits per Boolean triple, both pads'
/// value-sized low bits per product OT, and per element the choice bit and `ℓ`-bit pad of the
/// OT the client sent (the runtime's `relu_ot::ServerOffline`).
pub fn server_bytes(ell: u32, width: u32, shift: u32, n: u64) -> u64 {
    let bytes = |bits: u64| bits.div_ceil(8);
    let (singles, pairs) = groups(width, shift);
    bytes(n * comparison_table_bits(carry_bits(width, shift), fused(width, shift)) as u64)
        + bytes(n * table_bits(shift) as u64)
        + triple_bytes(singles, pairs, n)
        + bytes(2 * n * product_width(ell, width, shift))
        + bytes(n)
        + bytes(n * ell as u64)
}

/// Bytes the client keeps between the phases for a MaxPool over OT with these `windows`, its
/// output shares aside: per level of the max tree ([`max_levels`]) the level's [`client_bytes`]
/// at shift 0, and per ReLU its difference share and output mask (8 bytes each).
pub fn maxpool_client_bytes(ell: u32, width: u32, windows: &[Vec<usize>]) -> u64 {
    max_levels(windows).into_iter().map(|n| 16 * n + client_bytes(ell, width, 0, n)).sum()
}

/// The online flights for `n` elements in order: `(sender, payload bytes)`, alternating, the
/// client's first and last. The AND levels' openings are piggybacked: the server opens level 0
/// with its tables, then level flight `j` (the client's first) carries its sender's openings of
/// levels `j` and `j + 1`, so `L` levels take `L` flights. The last level flight carries the
/// product choices if the client sends it (`L` odd; the server's derandomisation of the
/// client-sent OTs then rides on the products), else that derandomisation.
pub fn flights(ell: u32, width: u32, shift: u32, n: u64) -> Vec<(Dir, u64)> {
    let bytes = |bits: u64| bits.div_ceil(8);
    let carry = carry_bits(width, shift);
    let first = bytes(n * carry as u64) + bytes(n * shift as u64);
    let tables =
        bytes(n * comparison_table_bits(carry, fused(width, shift)) as u64) + bytes(n * table_bits(shift) as u64);
    let product_bits = product_width(ell, width, shift);
    sequence(n, (first, tables), &level_groups(width, shift), products(shift), product_bits, ell)
}

/// [`flights`] from its parts: the comparisons' choice and table bytes, the singles and pairs
/// per element of each level, the products the server sends per element and their total width per element,
/// and the ring (the client's reversed OT sends two `ℓ`-bit messages per element).
pub(super) fn sequence(
    n: u64,
    (first, tables): (u64, u64),
    levels: &[(usize, usize)],
    products: u64,
    product_bits: u64,
    ell: u32,
) -> Vec<(Dir, u64)> {
    use Dir::*;
    let bytes = |bits: u64| bits.div_ceil(8);
    let last = levels.len();
    let open = |t: usize| levels.get(t).map_or(0, |&(s, p)| bytes(n * (2 * s + 3 * p) as u64));
    let (derandomise, choices) = (bytes(n), bytes(products * n));
    let mut v = vec![(ClientToServer, first), (ServerToClient, tables + if last == 0 { derandomise } else { open(0) })];
    for j in 0..last {
        let client = j % 2 == 0;
        let mut b = open(j) + open(j + 1);
        if j + 1 == last {
            b += if client { choices } else { derandomise };
        }
        v.push((if client { ClientToServer } else { ServerToClient }, b));
    }
    if last.is_multiple_of(2) {
        v.push((ClientToServer, choices));
    }
    v.push((ServerToClient, bytes(n * product_bits) + if last % 2 == 1 { derandomise } else { 0 }));
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

    /// By hand at ℓ = 61, f = 12 (8 elements, so every part fills whole bytes): the client keeps
    /// 60 + 2·15 − 1 = 89 and 12 + 2·3 − 1 = 17 comparison bits, 3·7 + 5·11 = 76 bits of its 7
    /// triples and 11 pairs (29 ANDs), 3 choice bits and 61 + 61 + 12 pad bits of the products,
    /// 2·61 bits of the reversed OT: 441 bits per element, against the OTs' 16-byte pads before
    /// they were hashed down. The server: 464 + 80 table-key bits, 76, 2·134, 1 + 61: 950 bits.
    /// Shift 0 at ℓ = 40 and one element: every part rounds up on its own.
    #[test]
    fn stored_bytes_by_hand() {
        assert_eq!(level_groups(61, 12), vec![(3, 6), (2, 3), (1, 1), (1, 0), (0, 1)]);
        assert_eq!(client_bytes(61, 61, 12, 8), 441);
        assert_eq!(server_bytes(61, 61, 12, 8), 950);
        assert!(client_bytes(61, 61, 12, 8) * 4 < 8 * 16 * rots(61, 12), "under a quarter of one pad per OT");
        // ℓ = 40, f = 0: 39 + 2·10 − 1 = 58 bits, 4 singles and 5 pairs (9+3+1+1 ANDs): 12 and
        // 25 bits, 1 + 40, 80.
        assert_eq!(level_ands(40, 0), vec![9, 3, 1, 1]);
        assert_eq!(level_groups(40, 0), vec![(1, 4), (1, 1), (1, 0), (1, 0)]);
        assert_eq!(client_bytes(40, 40, 0, 1), 8 + 2 + 4 + 1 + 5 + 10);
        assert_eq!(
            maxpool_client_bytes(40, 40, &[vec![0, 1, 2, 3]]),
            3 * 16 + client_bytes(40, 40, 0, 2) + client_bytes(40, 40, 0, 1)
        );
    }

    /// ResNet-32's ReLUs (ℓ = 39, f = 13) by hand. Apart: the carry on 38 bits (10 digits,
    /// ANDs 9 + 3 + 1 + 1) and the low on 13 (4 digits, 3 + 1). Fused: the carry on the 25 bits
    /// above the shift with equality (7 digits, 6 + 4 + 2), the low as before, the join, then
    /// the last two: the same five levels, 13 fewer leaf OTs, one AND less, and the low
    /// digits' tables (84 bits) once. As singles and pairs: 4 singles (level 0 the low tree's
    /// lowest node and `ms ∧ mc`, level 1 the low tree's, the join) and 8 pairs (the fused
    /// carry's nodes all, the low tree's upper node, the last two).
    #[test]
    fn the_fused_carry_by_hand() {
        assert!(fused(39, 13) && fused(43, 15));
        assert!(!fused(61, 12) && !fused(32, 12), "the join would add a level there");
        assert!(!fused(39, 0) && !fused(39, 38), "no low comparison, or no bits above it");
        assert_eq!(level_ands(39, 13), vec![6 + 3 + 1, 4 + 1, 2, 1, 2]);
        assert_eq!(level_groups(39, 13), vec![(2, 4), (1, 2), (0, 1), (1, 0), (0, 1)]);
        assert_eq!((rots(39, 13), rots_reversed(39, 13)), (25 + 13 + 2 * 4 + 8 + 3, 1 + 8));
        assert_eq!(level_ands(32, 12), vec![7 + 1 + 1, 3 + 1, 1, 2], "apart: 8 and 3 digits");
        let n = 8;
        let first = flights(39, 39, 13, n)[..2].to_vec();
        assert_eq!(first, vec![(Dir::ClientToServer, 25 + 13), (Dir::ServerToClient, 196 + 84 + 2 * 2 + 3 * 4)]);
    }

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
