//! A dense layer's offline correlation from OT instead of HE: Gilboa products of the client's
//! mask vector `c` with the server's weight matrix `W` (`n_out × n_in`, row-major).
//!
//! One random OT per bit `t` of each `c_j` (the client chooses the bit). Each pad seeds a PRG
//! (ChaCha8 keyed by the 128-bit pad) that gives `n_out` values modulo `2^(ℓ−t)` (their
//! contribution is scaled by `2^t`, so higher bits are never needed). The server sends
//! `d = P0 − P1 + W[:, j] mod 2^(ℓ−t)`; the client with bit `b` takes `P_b + b·d = P0 + b·W[:, j]`.
//! Summed over `j` and `t` the client holds `W·c + S` and the server `S = Σ 2^t·P0`, so the
//! server's mask is `m = −S` and the client's share is `W·c − m`, exactly as from HE
//! ([`super::he_linear`]). Wire: `n_in·ℓ` random OTs and `n_in·n_out·ℓ(ℓ+1)/2` bits per batch
//! element: cheaper than HE for small layers, where a single ciphertext dominates.
//!
//! Security: as for the elementwise products in [`super::mul`]; every OT pad is used once and
//! each `d` is masked by the PRG output of the pad the client does not hold.

use crate::exec::step::{ClientIo, Csprng, Cx, Protocol, ServerIo, StepFuture, Values};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use veil_ir::Op;
use veil_ir::ring::Ring;
use veil_ir::schedule::dense_dims;
use veil_ir::schedule::script::label;

use crate::garble::Block;
use crate::net::{Channel, NetError};
use crate::ot::{OtReceive, OtSend};
use crate::wire::{BitReader, BitWriter};

const STEP: &str = label::DENSE_OT;
const MSG: &str = label::DENSE;

fn prg(pad: Block) -> ChaCha8Rng {
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(&pad.0.to_le_bytes());
    ChaCha8Rng::from_seed(seed)
}

fn low(x: u64, bits: u32) -> u64 {
    if bits >= 64 { x } else { x & ((1u64 << bits) - 1) }
}

/// Bytes of the server's message per batch element.
pub fn message_bytes(ring: Ring, n_in: usize, n_out: usize) -> usize {
    let l = ring.bits as usize;
    (n_in * n_out * l * (l + 1) / 2).div_ceil(8)
}

/// The client's OT choice bits: bit `t` of each value of its share `c` (`batch × n_in`),
/// value-major.
pub fn choice_bits(ring: Ring, c: &[u64]) -> Vec<bool> {
    let l = ring.bits as u32;
    c.iter().flat_map(|&v| (0..l).map(move |t| (v >> t) & 1 == 1)).collect()
}

/// Server, synchronous core: for batch element `b`, the message `d` and its masks `m`
/// (`n_out` values), from the weights `w` (`n_out × n_in`) and its OT pads (all batch
/// elements', `ℓ` pairs per input value).
pub fn server_message(
    ring: Ring,
    w: &[i64],
    pads: &[[Block; 2]],
    b: usize,
    n_in: usize,
    n_out: usize,
) -> (Vec<u8>, Vec<u64>) {
    let l = ring.bits as u32;
    let mut wr = BitWriter::default();
    let mut s = vec![0u64; n_out];
    for j in 0..n_in {
        for t in 0..l {
            let [k0, k1] = pads[(b * n_in + j) * l as usize + t as usize];
            let (mut p0, mut p1) = (prg(k0), prg(k1));
            for (o, so) in s.iter_mut().enumerate() {
                let (a, c) = (p0.next_u64(), p1.next_u64());
                let wj = w[o * n_in + j] as u64;
                wr.push(low(a.wrapping_sub(c).wrapping_add(wj), l - t), l - t);
                *so = so.wrapping_add(low(a, l - t) << t);
            }
        }
    }
    (wr.finish(), s.into_iter().map(|v| ring.reduce(v.wrapping_neg())).collect())
}

/// Client, synchronous core: for batch element `b`, its share `W·c − m` (`n_out` values) from
/// its choice `bits` ([`choice_bits`]), the pads it chose and the server's message (exactly
/// [`message_bytes`] long).
pub fn client_share(
    ring: Ring,
    bits: &[bool],
    pads: &[Block],
    msg: &[u8],
    b: usize,
    n_in: usize,
    n_out: usize,
) -> Vec<u64> {
    let l = ring.bits as u32;
    let mut r = BitReader::new(msg);
    let mut y = vec![0u64; n_out];
    for j in 0..n_in {
        for t in 0..l {
            let k = (b * n_in + j) * l as usize + t as usize;
            let mut p = prg(pads[k]);
            for yo in y.iter_mut() {
                let d = r.take(l - t);
                let v = low(p.next_u64().wrapping_add(if bits[k] { d } else { 0 }), l - t);
                *yo = yo.wrapping_add(v << t);
            }
        }
    }
    y.into_iter().map(|v| ring.reduce(v)).collect()
}

/// Client: its share `W·c − m` of every batch element's outputs, from its input share `c`
/// (`batch × n_in` values).
pub async fn dense_client(
    ch: &mut Channel,
    ot: &mut impl OtReceive,
    ring: Ring,
    c: &[u64],
    n_in: usize,
    n_out: usize,
) -> Result<Vec<u64>, NetError> {
    let batch = c.len() / n_in.max(1);
    let bits = choice_bits(ring, c);
    let pads = ot.random(STEP, &bits).await?;
    let mut out = Vec::with_capacity(batch * n_out);
    for b in 0..batch {
        let msg = ch.recv_exact(MSG, message_bytes(ring, n_in, n_out)).await?;
        out.extend(crate::compute(|| client_share(ring, &bits, &pads, &msg, b, n_in, n_out)));
    }
    Ok(out)
}

/// Server: answers the client and returns its masks `m` (`batch × n_out` values) for weights
/// `w` (`n_out × n_in`, fixed-point integers).
pub async fn dense_server(
    ch: &mut Channel,
    ot: &mut impl OtSend,
    ring: Ring,
    w: &[i64],
    batch: usize,
    n_in: usize,
    n_out: usize,
) -> Result<Vec<u64>, NetError> {
    let pads = ot.random(STEP, batch * n_in * ring.bits as usize).await?;
    let mut masks = Vec::with_capacity(batch * n_out);
    for b in 0..batch {
        let (msg, m) = crate::compute(|| server_message(ring, w, &pads, b, n_in, n_out));
        ch.send(MSG, &msg).await?;
        masks.extend(m);
    }
    Ok(masks)
}

/// A dense layer with its offline correlation from OT as a plan step
/// ([`veil_ir::schedule::Kind::Linear`] with OT offline); online it is local like the HE layer's.
#[derive(Default)]
pub struct OtLinear {
    /// The server's masks `m` between the phases.
    masks: Option<Vec<u64>>,
}

impl std::fmt::Debug for OtLinear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtLinear(<redacted>)")
    }
}

impl Protocol for OtLinear {
    fn server_offline<'a>(&'a mut self, io: &'a mut ServerIo, cx: Cx<'a>, _rng: &'a mut dyn Csprng) -> StepFuture<'a> {
        Box::pin(async move {
            let (batch, n_in, n_out) = dense_dims(cx.g, cx.node).expect("OT offline is for dense layers");
            let Op::Dense { weight, .. } = &cx.node.op else { unreachable!("dense") };
            let w = &cx.g.consts[*weight].qdata;
            // In the ring the output's readers need (`schedule::dense_ot_bits`): ℓ or fewer bits.
            let ring = Ring::new(veil_ir::schedule::dense_ot_bits(cx.g, cx.step.node));
            self.masks = Some(dense_server(&mut io.ch, &mut io.ot, ring, w, batch, n_in, n_out).await?);
            Ok(())
        })
    }

    fn server_online<'a>(
        &'a mut self,
        _io: &'a mut ServerIo,
        cx: Cx<'a>,
        values: &'a mut Values,
        _rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        super::he_linear::server_online_step(cx, values, &mut self.masks);
        Box::pin(async { Ok(()) })
    }

    fn client_offline<'a>(
        &'a mut self,
        io: &'a mut ClientIo,
        cx: Cx<'a>,
        values: &'a mut Values,
        _rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        Box::pin(async move {
            let (_, n_in, n_out) = dense_dims(cx.g, cx.node).expect("OT offline is for dense layers");
            let c = values.share(cx.node.inputs[0]);
            let ring = Ring::new(veil_ir::schedule::dense_ot_bits(cx.g, cx.step.node));
            let out = dense_client(&mut io.ch, &mut io.ot, ring, c, n_in, n_out).await?;
            values.set_share(cx.node.output, out);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// The synchronous cores alone, with OT pads drawn here (the client holds the pad of its
    /// choice): per batch element, the client's share plus the server's mask is `W·c` modulo
    /// `2^ℓ`, computed directly, for negative weights and edge shares too.
    #[test]
    fn dense_cores_give_w_times_c_without_a_channel() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        for bits in [61u8, 40, 7] {
            let ring = Ring::new(bits);
            let (batch, n_in, n_out) = (2, 5, 3);
            let w: Vec<i64> =
                (0..n_in * n_out).map(|i| if i == 0 { -1 } else { rng.random_range(-4000..4000) }).collect();
            let mut c: Vec<u64> = (0..batch * n_in).map(|_| ring.reduce(rng.next_u64())).collect();
            c[0] = ring.mask();
            c[1] = 0;
            let choice = choice_bits(ring, &c);
            let pads: Vec<[Block; 2]> = choice.iter().map(|_| [Block(rng.random()), Block(rng.random())]).collect();
            let chosen: Vec<Block> = pads.iter().zip(&choice).map(|(p, &b)| p[b as usize]).collect();
            for b in 0..batch {
                let (msg, m) = server_message(ring, &w, &pads, b, n_in, n_out);
                assert_eq!(msg.len(), message_bytes(ring, n_in, n_out));
                let y = client_share(ring, &choice, &chosen, &msg, b, n_in, n_out);
                for o in 0..n_out {
                    let want = (0..n_in)
                        .fold(0u64, |acc, j| acc.wrapping_add((w[o * n_in + j] as u64).wrapping_mul(c[b * n_in + j])));
                    assert_eq!(ring.reduce(y[o].wrapping_add(m[o])), ring.reduce(want), "ℓ={bits} b={b} o={o}");
                }
            }
        }
    }
}
