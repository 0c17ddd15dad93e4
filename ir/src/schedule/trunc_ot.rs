//! Which exact truncations run over OT ([`super::Kind::TruncOt`]) and their public counts: an
//! exact truncation `y >> f` (arithmetic, of a value of either sign) that fuses into no reader,
//! on the ReLU over OT's pieces without its sign. With the server's share biased by `2^(ℓ−1)`,
//! `u = y + 2^(ℓ−1)` is the unsigned value of the biased shares' sum, and
//! `y >> f = (y_s' >> f) + (y_c >> f) + c_low − w·2^(ℓ−f) − 2^(ℓ−1−f)` exactly, with `w` the
//! wrap of the biased shares' sum (a millionaire on `ℓ` bits) and `c_low` the low `f` bits'
//! carry (a millionaire on `f` bits); `c_low` and `w` become values by one product OT each, sent
//! by the client (docs/protocols.md, "Exact truncation over OT"). No AND beyond the comparison
//! trees, no range assumption. The runtime's `proto::trunc_ot::Spec` implements the same
//! counts; its tests check they agree.

use super::relu_ot::{client_comparison_bits, table_bits, tree_ands};
use super::script::Dir;
use super::{Kind, fuses_into_reader};
use crate::{Graph, NodeId, Op, TruncMode};

/// How node `id` runs over OT: [`Kind::TruncOt`] for an exact truncation by `1 ≤ f < ℓ` bits
/// that does not fuse into its reader; `None` otherwise (a fused one runs in its reader's step).
pub fn kind(g: &Graph, id: NodeId) -> Option<Kind> {
    let node = &g.nodes[id];
    let ell = u32::from(g.ring_bits?);
    match node.op {
        Op::Truncate { bits, mode: TruncMode::Exact }
            if bits >= 1 && u32::from(bits) < ell && !fuses_into_reader(g, node.output) =>
        {
            Some(Kind::TruncOt { input: node.inputs[0], shift: bits })
        }
        _ => None,
    }
}

/// ANDs per element at each opening: the wrap (`ℓ` bits) and low (`f` bits) comparison trees
/// side by side.
pub fn level_ands(ell: u32, shift: u32) -> Vec<usize> {
    let (a, b) = (tree_ands(ell), tree_ands(shift));
    (0..a.len().max(b.len())).map(|t| a.get(t).copied().unwrap_or(0) + b.get(t).copied().unwrap_or(0)).collect()
}

fn ands(ell: u32, shift: u32) -> u64 {
    level_ands(ell, shift).iter().sum::<usize>() as u64
}

/// Random-choice OTs per element with the server sending: the comparisons' leaves and two per
/// AND. The client sends [`ROTS_REVERSED`] per element.
pub fn rots(ell: u32, shift: u32) -> u64 {
    (ell + shift) as u64 + 2 * ands(ell, shift)
}

/// Random-choice OTs per element with the client sending: the products `c_low` (`ℓ` bits) and
/// `w` (`f` bits).
pub const ROTS_REVERSED: u64 = 2;

/// Bytes the client keeps between the phases for `n` elements, without its output masks: both
/// comparisons' choices and entry keys, three bits per Boolean triple, and both pads of each OT
/// it sent (`ℓ` bits for `c_low`, `f` for `w`), each part bit-packed on its own. The runtime's
/// `trunc_ot::ClientOffline` holds exactly this (a runtime test checks it).
pub fn client_bytes(ell: u32, shift: u32, n: u64) -> u64 {
    let bytes = |bits: u64| bits.div_ceil(8);
    bytes(n * client_comparison_bits(ell))
        + bytes(n * client_comparison_bits(shift))
        + bytes(3 * n * ands(ell, shift))
        + bytes(2 * n * (ell + shift) as u64)
}

/// Bytes the server keeps between the phases for `n` elements: its tables' key bits, three bits
/// per triple, and per element its choice bits and chosen pads (`ℓ + f` bits) of the two OTs the
/// client sent (the runtime's `trunc_ot::ServerOffline`).
pub fn server_bytes(ell: u32, shift: u32, n: u64) -> u64 {
    let bytes = |bits: u64| bits.div_ceil(8);
    bytes(n * table_bits(ell) as u64)
        + bytes(n * table_bits(shift) as u64)
        + bytes(3 * n * ands(ell, shift))
        + bytes(2 * n)
        + bytes(n * (ell + shift) as u64)
}

/// The online flights for `n` elements in order, `(sender, payload bytes)`, the client's first
/// and last: its derandomisations of both comparisons; the server's tables with its opening of
/// AND level 0; the level flights, alternating from the client's, each with its sender's
/// openings of levels `j` and `j + 1` (piggybacked, as in [`super::relu_ot::flights`]); the
/// server's derandomisations of the client-sent OTs, two bits per element, on its last level
/// flight (on a flight of their own when the client sends the last level; on the tables when
/// there is no level); the client's products, per element two `ℓ`-bit values (`c_low`) and
/// one `f`-bit value (`w`).
pub fn flights(ell: u32, shift: u32, n: u64) -> Vec<(Dir, u64)> {
    use Dir::*;
    let bytes = |bits: u64| bits.div_ceil(8);
    let levels = level_ands(ell, shift);
    let last = levels.len();
    let open = |t: usize| levels.get(t).map_or(0, |&a| bytes(2 * n * a as u64));
    let derandomise = bytes(2 * n);
    let mut v = vec![
        (ClientToServer, bytes(n * ell as u64) + bytes(n * shift as u64)),
        (
            ServerToClient,
            bytes(n * table_bits(ell) as u64)
                + bytes(n * table_bits(shift) as u64)
                + if last == 0 { derandomise } else { open(0) },
        ),
    ];
    for j in 0..last {
        let b = open(j) + open(j + 1);
        v.push(if j % 2 == 0 {
            (ClientToServer, b)
        } else {
            (ServerToClient, b + if j + 1 == last { derandomise } else { 0 })
        });
    }
    if last % 2 == 1 {
        v.push((ServerToClient, derandomise));
    }
    v.push((ClientToServer, bytes(n * (2 * ell + shift) as u64)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// By hand at ℓ = 41, f = 13: the wrap comparison has 11 digits (ten of 4 bits, one of 1), its
    /// tree 11 → 6 → 3 → 2 → 1 nodes with 9, 5, 1, 1 ANDs; the low one 4 digits, 3 and 1 ANDs.
    /// Flights: the choices, the tables (with the server's opening of level 0), one per AND
    /// level (piggybacked: its sender's openings of that level and the next), the products.
    #[test]
    fn counts_by_hand() {
        assert_eq!(level_ands(41, 13), vec![9 + 3, 5 + 1, 1, 1]);
        assert_eq!(rots(41, 13), 41 + 13 + 2 * 20);
        let f = flights(41, 13, 8);
        assert_eq!(f.len(), 2 + 4 + 1);
        assert_eq!(f[0], (Dir::ClientToServer, 41 + 13));
        // Level flight 0 (the client's): 2 bits per AND of levels 0 and 1, 8 elements.
        assert_eq!(f[2], (Dir::ClientToServer, 2 * 12 + 2 * 6));
        // The server's last level flight (1 AND: 2 bits per element) carries two derandomisation
        // bits per element.
        assert_eq!(f[5], (Dir::ServerToClient, 2 + 2));
        assert_eq!(f[6], (Dir::ClientToServer, 2 * 41 + 13));
        // ℓ = 4, f = 2: one digit each, no AND level: three flights.
        assert!(level_ands(4, 2).is_empty());
        assert_eq!(flights(4, 2, 8).len(), 3);
    }
}
