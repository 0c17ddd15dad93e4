//! The public counts of Circa's stochastic ReLU over OT ([`super::Kind::CircaOt`]): the shift-0
//! ReLU over OT ([`super::relu_ot`]) whose comparison reads the sign test's `W = m − k` bits
//! (each party's share reduced mod 2^m, the client's NegPass offset added, the low `k` bits
//! dropped) instead of the ring's `ℓ`, while its products still move full `ℓ`-bit values. The
//! runtime's `proto::relu_ot::Spec::circa` implements the same counts; its tests check they agree.

use super::relu_ot::{self, client_comparison_bits, table_bits};
use super::script::Dir;

/// Width `W = m − k` of the tested values, for `drop_bits = k` and `test_bits = m`.
pub fn width(drop_bits: u8, test_bits: u8) -> u32 {
    u32::from(test_bits) - u32::from(drop_bits)
}

/// ANDs per element at each opening: the carry tree on the low `W − 1` bits alone.
pub fn level_ands(w: u32) -> Vec<usize> {
    relu_ot::level_ands(w, 0)
}

/// Random-choice OTs per element with the server sending (`W − 1` comparison leaves, two per
/// AND, one product); as for a shift-0 ReLU at width `W`, whatever `ℓ`. The client sends one
/// more per element.
pub fn rots(w: u32) -> u64 {
    relu_ot::rots(w, 0)
}

/// Singles and pairs per element (as a shift-0 ReLU's at width `W`).
fn groups(w: u32) -> (u64, u64) {
    relu_ot::groups(w, 0)
}

/// Random-choice OTs per element with the client sending (the product, one per pair).
pub fn rots_reversed(w: u32) -> u64 {
    relu_ot::rots_reversed(w, 0)
}

/// Bytes the client keeps between the phases for `n` elements, without its output masks: the
/// carry comparison's choices and entry keys, three bits per triple, the product OT's choice bit
/// and `ℓ`-bit pad, and the two `ℓ`-bit pads of the OT it sent (as
/// [`relu_ot::client_bytes`] at shift 0, with the comparison at `W`).
pub fn client_bytes(ell: u32, w: u32, n: u64) -> u64 {
    let bytes = |bits: u64| bits.div_ceil(8);
    let (singles, pairs) = groups(w);
    bytes(n * client_comparison_bits(w - 1))
        + relu_ot::triple_bytes(singles, pairs, n)
        + bytes(n)
        + bytes(n * ell as u64)
        + bytes(2 * n * ell as u64)
}

/// Bytes the server keeps between the phases for `n` elements: its tables' key bits, three bits
/// per triple, both `ℓ`-bit pads of the product OT, and the choice bit and `ℓ`-bit pad of the OT
/// the client sent (as [`relu_ot::server_bytes`] at shift 0, with the comparison at `W`).
pub fn server_bytes(ell: u32, w: u32, n: u64) -> u64 {
    let bytes = |bits: u64| bits.div_ceil(8);
    let (singles, pairs) = groups(w);
    bytes(n * table_bits(w - 1) as u64)
        + relu_ot::triple_bytes(singles, pairs, n)
        + bytes(2 * n * ell as u64)
        + bytes(n)
        + bytes(n * ell as u64)
}

/// The online flights for `n` elements in order, `(sender, payload bytes)`: a shift-0 ReLU over
/// OT's ([`relu_ot::flights`]) with the comparison at `W` bits and the products at `ℓ`.
pub fn flights(ell: u32, w: u32, n: u64) -> Vec<(Dir, u64)> {
    let bytes = |bits: u64| bits.div_ceil(8);
    let cmp = (bytes(n * (w - 1) as u64), bytes(n * table_bits(w - 1) as u64));
    relu_ot::sequence(n, cmp, &relu_ot::level_groups(w, 0), 1, ell.into(), ell)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At `W = ℓ` the counts are exactly the shift-0 ReLU's; narrower tests cost less.
    #[test]
    fn full_width_is_the_exact_relu_and_narrower_costs_less() {
        for ell in [2u32, 5, 8, 40, 61] {
            for n in [1u64, 7, 64] {
                assert_eq!(flights(ell, ell, n), relu_ot::flights(ell, ell, 0, n), "ℓ = {ell}, n = {n}");
                assert_eq!(client_bytes(ell, ell, n), relu_ot::client_bytes(ell, ell, 0, n));
                assert_eq!(server_bytes(ell, ell, n), relu_ot::server_bytes(ell, ell, 0, n));
            }
        }
        let total = |v: Vec<(Dir, u64)>| v.iter().map(|(_, b)| b).sum::<u64>();
        // ℓ = 37 with a test on m − k = 20 bits: 19 carry bits (5 digits) instead of 36 (9).
        assert_eq!(level_ands(20), vec![3, 1, 1]);
        assert!(rots(20) < relu_ot::rots(37, 0));
        assert!(total(flights(37, 20, 1000)) < total(flights(37, 37, 1000)));
        assert_eq!(width(3, 23), 20);
    }
}
