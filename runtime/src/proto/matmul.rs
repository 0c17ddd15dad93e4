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

use crate::exec::step::{ClientIo, Csprng, Cx, Protocol, ServerIo, StepFuture, Values, take};
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
    let l = ring.bits as u32;
    let batch = c.len() / n_in.max(1);
    let bits: Vec<bool> = c.iter().flat_map(|&v| (0..l).map(move |t| (v >> t) & 1 == 1)).collect();
    let pads = ot.random(STEP, &bits).await?;
    let mut out = Vec::with_capacity(batch * n_out);
    for b in 0..batch {
        let msg = ch.recv_exact(MSG, message_bytes(ring, n_in, n_out)).await?;
        let y = crate::compute(|| {
            let mut r = BitReader::new(&msg);
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
            y
        });
        out.extend(y.into_iter().map(|v| ring.reduce(v)));
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
    let l = ring.bits as u32;
    let pads = ot.random(STEP, batch * n_in * l as usize).await?;
    let mut masks = Vec::with_capacity(batch * n_out);
    for b in 0..batch {
        let (msg, s) = crate::compute(|| {
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
            (wr.finish(), s)
        });
        ch.send(MSG, &msg).await?;
        masks.extend(s.into_iter().map(|v| ring.reduce(v.wrapping_neg())));
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
            self.masks = Some(dense_server(&mut io.ch, &mut io.ot, cx.ring, w, batch, n_in, n_out).await?);
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
        let s = values.share(cx.node.inputs[0]);
        let out = super::he_linear::server_online(cx.g, cx.ring, cx.node, s, &take(&mut self.masks));
        values.set_share(cx.node.output, out);
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
            let out = dense_client(&mut io.ch, &mut io.ot, cx.ring, c, n_in, n_out).await?;
            values.set_share(cx.node.output, out);
            Ok(())
        })
    }
}
