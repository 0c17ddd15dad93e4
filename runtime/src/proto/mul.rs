//! Arithmetic correlations from OT, offline: products of a client value and a server value
//! (Gilboa), Beaver square pairs and multiplication triples. Each OT pad and each correlation
//! is used once.
//!
//! **Product** `x·y` (client holds `x`, server holds `y`, both ℓ-bit): one random OT per bit
//! `x_j` with the client choosing `x_j`. OT `j` works modulo `2^(ℓ−j)` (its contribution is
//! scaled by `2^j`): the server sends `d_j = p0_j − p1_j + y mod 2^(ℓ−j)` (ℓ − j bits), the client
//! takes `t_j = p_{x_j} + x_j·d_j = p0_j + x_j·y`. Shares: client `Σ 2^j t_j`, server
//! `−Σ 2^j p0_j`. Wire: ℓ OTs and `ℓ(ℓ+1)/2` bits (bit-packed) per product.
//!
//! **Square pair** `(a, a²)`: `a = a_c + a_s` fresh; `a² = a_c² + a_s² + 2·a_c·a_s`, one product.
//! **Triple** `(a, b, ab)`: two products (`a_c·b_s`, `b_c·a_s`).
//! **Bit to arithmetic**: an XOR-shared bit `b = b_c ⊕ b_s` becomes additive shares of `b` in the
//! ring: `b = b_c + b_s − 2·b_c·b_s`, the bit product from one random OT and one ring element.

use rand::{CryptoRng, Rng, RngCore};
use veil_ir::ring::Ring;
use veil_ir::schedule::script::label;

use crate::garble::Block;
use crate::net::{Channel, NetError};
use crate::ot::{OtReceive, OtSend};
use crate::wire::{BitReader, BitWriter};

/// Bytes the server sends for `n` products in ring `ring`.
pub fn product_message_bytes(ring: Ring, n: usize) -> usize {
    let l = ring.bits as usize;
    (n * l * (l + 1) / 2).div_ceil(8)
}

fn pad(b: Block) -> u64 {
    b.0 as u64
}

fn low(x: u64, bits: u32) -> u64 {
    if bits >= 64 { x } else { x & ((1u64 << bits) - 1) }
}

/// The client's OT choice bits for products with `x`: bit `j` of each `x_i`, value-major.
pub fn choice_bits(ring: Ring, x: &[u64]) -> Vec<bool> {
    let l = ring.bits as u32;
    x.iter().flat_map(|&v| (0..l).map(move |j| (v >> j) & 1 == 1)).collect()
}

/// Server, synchronous core: from its values `y` and its OT pads (`ℓ` pairs per value), the
/// message `d` and its shares `−Σ 2^j p0_j` of the products.
pub fn product_message(ring: Ring, y: &[u64], pads: &[[Block; 2]]) -> (Vec<u8>, Vec<u64>) {
    let l = ring.bits as u32;
    debug_assert_eq!(pads.len(), y.len() * l as usize);
    let mut w = BitWriter::default();
    let shares = y
        .iter()
        .enumerate()
        .map(|(i, &yv)| {
            let mut v = 0u64;
            for j in 0..l {
                let [p0, p1] = pads[i * l as usize + j as usize];
                let (p0, p1) = (pad(p0), pad(p1));
                w.push(low(p0.wrapping_sub(p1).wrapping_add(yv), l - j), l - j);
                v = v.wrapping_sub(low(p0, l - j) << j);
            }
            ring.reduce(v)
        })
        .collect();
    (w.finish(), shares)
}

/// Client, synchronous core: from its choice `bits` ([`choice_bits`]), the pads it chose and
/// the server's message (exactly [`product_message_bytes`] long), its shares `Σ 2^j t_j`.
pub fn product_shares(ring: Ring, bits: &[bool], pads: &[Block], msg: &[u8]) -> Vec<u64> {
    let l = ring.bits as usize;
    debug_assert_eq!(pads.len(), bits.len());
    let mut r = BitReader::new(msg);
    (0..bits.len() / l.max(1))
        .map(|i| {
            let mut u = 0u64;
            for j in 0..l as u32 {
                let k = i * l + j as usize;
                let d = r.take(l as u32 - j);
                let t = low(pad(pads[k]).wrapping_add(if bits[k] { d } else { 0 }), l as u32 - j);
                u = u.wrapping_add(t << j);
            }
            ring.reduce(u)
        })
        .collect()
}

/// Client side of `n` products: returns its shares of `x_i · y_i`.
pub async fn product_client(
    ch: &mut Channel,
    ot: &mut impl OtReceive,
    ring: Ring,
    x: &[u64],
) -> Result<Vec<u64>, NetError> {
    let bits = choice_bits(ring, x);
    let pads = ot.random(label::PRODUCT_OT, &bits).await?;
    let msg = ch.recv_exact(label::PRODUCT, product_message_bytes(ring, x.len())).await?;
    Ok(product_shares(ring, &bits, &pads, &msg))
}

/// Server side of `n` products: returns its shares of `x_i · y_i`.
pub async fn product_server(
    ch: &mut Channel,
    ot: &mut impl OtSend,
    ring: Ring,
    y: &[u64],
) -> Result<Vec<u64>, NetError> {
    let pads = ot.random(label::PRODUCT_OT, y.len() * ring.bits as usize).await?;
    let (msg, shares) = product_message(ring, y, &pads);
    ch.send(label::PRODUCT, &msg).await?;
    Ok(shares)
}

/// One party's shares of Beaver square pairs `(a, a²)`.
#[derive(Clone)]
pub struct SquarePairs {
    /// This party's additive shares of the random `a` (ring elements). Secret.
    pub a: Vec<u64>,
    /// This party's additive shares of `a²`. Secret.
    pub sq: Vec<u64>,
}

impl std::fmt::Debug for SquarePairs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SquarePairs {{ n: {}, <redacted> }}", self.a.len())
    }
}

/// `n` uniform ring elements (fresh masks and correlation halves).
pub(crate) fn random_ring<R: RngCore + ?Sized>(ring: Ring, n: usize, rng: &mut R) -> Vec<u64> {
    (0..n).map(|_| ring.reduce(rng.next_u64())).collect()
}

/// Client side of `n` square pairs.
pub async fn squares_client<R: RngCore + CryptoRng + Send>(
    ch: &mut Channel,
    ot: &mut impl OtReceive,
    ring: Ring,
    n: usize,
    rng: &mut R,
) -> Result<SquarePairs, NetError> {
    let a = random_ring(ring, n, rng);
    let u = product_client(ch, ot, ring, &a).await?;
    let sq = a.iter().zip(&u).map(|(&a, &u)| ring.reduce(a.wrapping_mul(a).wrapping_add(u.wrapping_mul(2)))).collect();
    Ok(SquarePairs { a, sq })
}

/// Server side of `n` square pairs.
pub async fn squares_server<R: RngCore + CryptoRng + Send>(
    ch: &mut Channel,
    ot: &mut impl OtSend,
    ring: Ring,
    n: usize,
    rng: &mut R,
) -> Result<SquarePairs, NetError> {
    let a = random_ring(ring, n, rng);
    let v = product_server(ch, ot, ring, &a).await?;
    let sq = a.iter().zip(&v).map(|(&a, &v)| ring.reduce(a.wrapping_mul(a).wrapping_add(v.wrapping_mul(2)))).collect();
    Ok(SquarePairs { a, sq })
}

/// One party's shares of Beaver triples `(a, b, ab)`.
#[derive(Clone)]
pub struct Triples {
    /// This party's additive shares of the random `a` (ring elements). Secret.
    pub a: Vec<u64>,
    /// This party's additive shares of the random `b`. Secret.
    pub b: Vec<u64>,
    /// This party's additive shares of `a·b`. Secret.
    pub ab: Vec<u64>,
}

impl std::fmt::Debug for Triples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Triples {{ n: {}, <redacted> }}", self.a.len())
    }
}

/// Client side of `n` triples (the client is the OT receiver of both products).
pub async fn triples_client<R: RngCore + CryptoRng + Send>(
    ch: &mut Channel,
    ot: &mut impl OtReceive,
    ring: Ring,
    n: usize,
    rng: &mut R,
) -> Result<Triples, NetError> {
    let (a, b) = (random_ring(ring, n, rng), random_ring(ring, n, rng));
    let u1 = product_client(ch, ot, ring, &a).await?; // a_c · b_s
    let u2 = product_client(ch, ot, ring, &b).await?; // b_c · a_s
    let ab = (0..n).map(|i| ring.reduce(a[i].wrapping_mul(b[i]).wrapping_add(u1[i]).wrapping_add(u2[i]))).collect();
    Ok(Triples { a, b, ab })
}

/// Server side of `n` triples.
pub async fn triples_server<R: RngCore + CryptoRng + Send>(
    ch: &mut Channel,
    ot: &mut impl OtSend,
    ring: Ring,
    n: usize,
    rng: &mut R,
) -> Result<Triples, NetError> {
    let (a, b) = (random_ring(ring, n, rng), random_ring(ring, n, rng));
    let v1 = product_server(ch, ot, ring, &b).await?;
    let v2 = product_server(ch, ot, ring, &a).await?;
    let ab = (0..n).map(|i| ring.reduce(a[i].wrapping_mul(b[i]).wrapping_add(v1[i]).wrapping_add(v2[i]))).collect();
    Ok(Triples { a, b, ab })
}

/// Client side of bit-to-arithmetic conversion of XOR-shared bits (its halves `bits`).
pub async fn b2a_client(
    ch: &mut Channel,
    ot: &mut impl OtReceive,
    ring: Ring,
    bits: &[bool],
) -> Result<Vec<u64>, NetError> {
    let pads = ot.random(label::B2A_OT, bits).await?;
    let d = ch.recv_u64s(label::B2A, bits.len()).await?;
    Ok(bits
        .iter()
        .zip(pads.iter().zip(&d))
        .map(|(&b, (p, &d))| {
            let t = pad(*p).wrapping_add(if b { d } else { 0 }); // p0 + b_c·b_s
            ring.reduce(u64::from(b).wrapping_sub(t.wrapping_mul(2)))
        })
        .collect())
}

/// Server side of bit-to-arithmetic conversion (its halves `bits`).
pub async fn b2a_server(
    ch: &mut Channel,
    ot: &mut impl OtSend,
    ring: Ring,
    bits: &[bool],
) -> Result<Vec<u64>, NetError> {
    let pads = ot.random(label::B2A_OT, bits.len()).await?;
    let d: Vec<u64> = bits
        .iter()
        .zip(&pads)
        .map(|(&b, [p0, p1])| ring.reduce(pad(*p0).wrapping_sub(pad(*p1)).wrapping_add(u64::from(b))))
        .collect();
    ch.send_u64s(label::B2A, &d).await?;
    Ok(bits
        .iter()
        .zip(&pads)
        .map(|(&b, [p0, _])| ring.reduce(u64::from(b).wrapping_add(pad(*p0).wrapping_mul(2))))
        .collect())
}

/// A uniformly random ring element (for masks).
pub fn random_element<R: RngCore>(ring: Ring, rng: &mut R) -> u64 {
    ring.reduce(rng.random())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::memory;
    use crate::ot::ideal;
    use rand::SeedableRng;
    use std::time::Duration;

    #[test]
    fn bit_fields_round_trip_at_every_width() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let fields: Vec<(u64, u32)> = (0..5000)
            .map(|_| {
                let n = rng.random_range(1..=64u32);
                (rng.next_u64() & if n == 64 { u64::MAX } else { (1 << n) - 1 }, n)
            })
            .collect();
        let mut w = BitWriter::default();
        fields.iter().for_each(|&(v, n)| w.push(v | if n < 64 { 1u64 << n } else { 0 }, n));
        let bytes = w.finish();
        let total: u32 = fields.iter().map(|f| f.1).sum();
        assert_eq!(bytes.len(), total.div_ceil(8) as usize);
        let mut r = BitReader::new(&bytes);
        for &(v, n) in &fields {
            assert_eq!(r.take(n), v, "{n}-bit field");
        }
    }

    /// The synchronous cores alone, with OT pads drawn here (the client holds the pad of its
    /// choice): the shares add up to the products, edge values included.
    #[test]
    fn product_cores_reconstruct_without_a_channel() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        for bits in [61u8, 40, 13, 2] {
            let ring = Ring::new(bits);
            let mut x = vec![0, 1, ring.mask(), ring.mask() >> 1];
            let mut y = vec![ring.mask(), 1, ring.mask(), 0];
            x.extend((0..100).map(|_| random_element(ring, &mut rng)));
            y.extend((0..100).map(|_| random_element(ring, &mut rng)));
            let choice = choice_bits(ring, &x);
            let pads: Vec<[Block; 2]> = choice.iter().map(|_| [Block(rng.random()), Block(rng.random())]).collect();
            let chosen: Vec<Block> = pads.iter().zip(&choice).map(|(p, &b)| p[b as usize]).collect();
            let (msg, v) = product_message(ring, &y, &pads);
            assert_eq!(msg.len(), product_message_bytes(ring, x.len()));
            let u = product_shares(ring, &choice, &chosen, &msg);
            for i in 0..x.len() {
                assert_eq!(ring.reduce(u[i].wrapping_add(v[i])), ring.reduce(x[i].wrapping_mul(y[i])), "ℓ={bits} {i}");
            }
        }
    }

    /// Both parties in memory with the ideal OT.
    #[tokio::test]
    async fn products_squares_and_triples_reconstruct() {
        let (mut cc, mut sc) = memory::pair(Duration::from_secs(20));
        let (mut ot_s, mut ot_r) = ideal::pair(13);
        for bits in [61u8, 37, 2] {
            let ring = Ring::new(bits);
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(bits as u64);
            let top = 1u64 << (bits - 1);
            let mut x = vec![0, 1, ring.mask(), top, top - 1];
            let mut y = vec![ring.mask(), top, 1, 0, top + 1];
            x.extend((0..300).map(|_| random_element(ring, &mut rng)));
            y.extend((0..300).map(|_| random_element(ring, &mut rng)));
            let (xc, yc) = (x.clone(), y.clone());
            let sent = sc.meter().snapshot().bytes_sent;
            let (u, v) = tokio::join!(
                product_client(&mut cc, &mut ot_r, ring, &xc),
                product_server(&mut sc, &mut ot_s, ring, &yc)
            );
            let (u, v) = (u.unwrap(), v.unwrap());
            // The product's one message, exactly as documented (the ideal OT moves no bytes).
            let frame = 4 + product_message_bytes(ring, x.len()) as u64;
            assert_eq!(sc.meter().snapshot().bytes_sent - sent, frame);
            for i in 0..x.len() {
                assert_eq!(ring.reduce(u[i].wrapping_add(v[i])), ring.reduce(x[i].wrapping_mul(y[i])), "product {i}");
            }
            let mut rc = rand_chacha::ChaCha20Rng::seed_from_u64(1);
            let mut rs = rand_chacha::ChaCha20Rng::seed_from_u64(2);
            let (pc, ps) = tokio::join!(
                squares_client(&mut cc, &mut ot_r, ring, 200, &mut rc),
                squares_server(&mut sc, &mut ot_s, ring, 200, &mut rs)
            );
            let (pc, ps) = (pc.unwrap(), ps.unwrap());
            let (tc, ts) = tokio::join!(
                triples_client(&mut cc, &mut ot_r, ring, 200, &mut rc),
                triples_server(&mut sc, &mut ot_s, ring, 200, &mut rs)
            );
            let (tc, ts) = (tc.unwrap(), ts.unwrap());
            let bc: Vec<bool> = (0..256).map(|i| i % 2 == 0).collect();
            let bs: Vec<bool> = (0..256).map(|i| i % 4 < 2).collect();
            let (ac, as_) =
                tokio::join!(b2a_client(&mut cc, &mut ot_r, ring, &bc), b2a_server(&mut sc, &mut ot_s, ring, &bs));
            let (ac, as_) = (ac.unwrap(), as_.unwrap());
            for i in 0..256 {
                assert_eq!(ring.reduce(ac[i].wrapping_add(as_[i])), u64::from(bc[i] ^ bs[i]), "b2a {i}");
            }
            for i in 0..200 {
                let a = pc.a[i].wrapping_add(ps.a[i]);
                assert_eq!(ring.reduce(pc.sq[i].wrapping_add(ps.sq[i])), ring.reduce(a.wrapping_mul(a)), "square {i}");
                let (a, b) = (tc.a[i].wrapping_add(ts.a[i]), tc.b[i].wrapping_add(ts.b[i]));
                assert_eq!(ring.reduce(tc.ab[i].wrapping_add(ts.ab[i])), ring.reduce(a.wrapping_mul(b)), "triple {i}");
            }
        }
    }
}
