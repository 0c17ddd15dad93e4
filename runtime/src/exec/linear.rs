//! Dense and Conv2d layers: the HE offline step and the local online step (PROTOCOLS.md).
//!
//! The client's share `c` of the layer input is known offline. Per batch element the client
//! sends `Enc(c)` (zero-padded like the convolution), the server answers `Enc(W·c − m)`, and the
//! client keeps `W·c − m` (the stride-1 outputs, subsampled by the strides). Online the server
//! computes `W·s + b + m` on its share in plaintext ring arithmetic.

use rand::{CryptoRng, RngCore};
use veil_ir::eval::ring_ops;
use veil_ir::ring::Ring;
use veil_ir::{Graph, Node, Op, Window2d};

use crate::he::pack::{ConvGeom, Tiling};
use crate::he::{HeClient, HeError, HeParams, HeServer};
use crate::net::{Channel, NetError};

/// A layer's HE shape: per batch element, a padded input mapped by a stride-1 convolution.
#[derive(Debug, Clone)]
pub struct Layer {
    pub batch: usize,
    /// Unpadded input `[C, H, W]` of one batch element.
    pub input: [usize; 3],
    /// `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    pub strides: [usize; 2],
    /// Output `[M, OH, OW]` of one batch element.
    pub output: [usize; 3],
    pub geom: ConvGeom,
    pub params: HeParams,
    pub tiling: Tiling,
}

/// Why a layer cannot run under HE.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("{0}")]
    He(#[from] HeError),
    #[error("{0}")]
    Net(#[from] NetError),
    #[error("no HE parameters fit this layer (ring of {0} bits)")]
    NoParams(u8),
}

impl Layer {
    pub fn of(g: &Graph, node: &Node) -> Result<Layer, LayerError> {
        let ell = g.ring_bits.expect("quantized");
        let in_shape = &g.values[node.inputs[0]].ty.shape;
        let out_shape = &g.values[node.output].ty.shape;
        let (batch, input, pads, strides, output, geom) = match &node.op {
            Op::Dense { weight, .. } => {
                let k = *in_shape.last().expect("rank ≥ 1");
                let n = g.consts[*weight].shape[0];
                let batch = in_shape.iter().product::<usize>() / k;
                (batch, [k, 1, 1], [0; 4], [1, 1], [n, 1, 1], ConvGeom { c: k, h: 1, w: 1, m: n, kh: 1, kw: 1 })
            }
            Op::Conv2d { window, .. } => {
                let [n, c, h, w] = in_shape[..] else { unreachable!("verified: conv input is 4-D") };
                let Window2d { kernel, strides, pads, dilations } = window;
                let (hp, wp) = (h + pads[0] + pads[2], w + pads[1] + pads[3]);
                let (kh, kw) = ((kernel[0] - 1) * dilations[0] + 1, (kernel[1] - 1) * dilations[1] + 1);
                let m = out_shape[1];
                (
                    n,
                    [c, h, w],
                    *pads,
                    *strides,
                    [m, out_shape[2], out_shape[3]],
                    ConvGeom { c, h: hp, w: wp, m, kh, kw },
                )
            }
            other => unreachable!("schedule::lower sends only dense/conv here, not {}", other.mnemonic()),
        };
        let mut params = HeParams::for_layer(ell, 1).ok_or(LayerError::NoParams(ell))?;
        loop {
            let tiling = Tiling::choose(geom, params.degree).ok_or(LayerError::NoParams(ell))?;
            let p = HeParams::for_layer(ell, tiling.channel_tiles()).ok_or(LayerError::NoParams(ell))?;
            if p == params {
                return Ok(Layer { batch, input, pads, strides, output, geom, params, tiling });
            }
            params = p;
        }
    }

    fn in_len(&self) -> usize {
        self.input.iter().product()
    }

    fn out_len(&self) -> usize {
        self.output.iter().product()
    }

    /// One batch element's input share, zero-padded to the geometry.
    fn pad(&self, x: &[u64]) -> Vec<u64> {
        let [c, h, w] = self.input;
        let (hp, wp) = (self.geom.h, self.geom.w);
        let mut out = vec![0u64; c * hp * wp];
        for ch in 0..c {
            for i in 0..h {
                let src = &x[(ch * h + i) * w..][..w];
                out[(ch * hp + i + self.pads[0]) * wp + self.pads[1]..][..w].copy_from_slice(src);
            }
        }
        out
    }

    /// Stride-1 outputs `[M, out_h, out_w]` subsampled to the layer's output.
    fn subsample(&self, full: &[u64]) -> Vec<u64> {
        let (fh, fw) = (self.geom.out_h(), self.geom.out_w());
        let [m, oh, ow] = self.output;
        let mut out = Vec::with_capacity(m * oh * ow);
        for k in 0..m {
            for i in 0..oh {
                for j in 0..ow {
                    out.push(full[(k * fh + i * self.strides[0]) * fw + j * self.strides[1]]);
                }
            }
        }
        out
    }

    /// The server's weights as `[M, C, KH, KW]` with groups and dilation expanded.
    fn kernel(&self, g: &Graph, node: &Node) -> Vec<i64> {
        match &node.op {
            Op::Dense { weight, .. } => g.consts[*weight].qdata.clone(),
            Op::Conv2d { weight, window, groups, .. } => {
                let w = &g.consts[*weight].qdata;
                let ConvGeom { c, m, kh, kw, .. } = self.geom;
                let (cg, mg) = (c / groups, m / groups);
                let [k0, k1] = window.kernel;
                let [d0, d1] = window.dilations;
                let mut out = vec![0i64; m * c * kh * kw];
                for oc in 0..m {
                    let grp = oc / mg;
                    for ic in 0..cg {
                        for y in 0..k0 {
                            for x in 0..k1 {
                                let v = w[((oc * cg + ic) * k0 + y) * k1 + x];
                                out[((oc * c + grp * cg + ic) * kh + y * d0) * kw + x * d1] = v;
                            }
                        }
                    }
                }
                out
            }
            _ => unreachable!("dense/conv only"),
        }
    }
}

fn pack_blobs(blobs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(blobs.iter().map(|b| b.len() + 4).sum());
    for b in blobs {
        out.extend((b.len() as u32).to_le_bytes());
        out.extend(b);
    }
    out
}

fn unpack_blobs(step: &str, bytes: &[u8], count: usize) -> Result<Vec<Vec<u8>>, NetError> {
    let bad = |reason: &str| NetError::Malformed { step: step.into(), reason: reason.into() };
    let mut out = Vec::with_capacity(count);
    let mut rest = bytes;
    for _ in 0..count {
        let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(|| bad("truncated ciphertext list"))?;
        let len = u32::from_le_bytes(*len) as usize;
        if tail.len() < len {
            return Err(bad("truncated ciphertext"));
        }
        out.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the ciphertexts"));
    }
    Ok(out)
}

/// Upper bound on an HE message of `cts` ciphertexts of this layer (for receive limits).
fn max_message(layer: &Layer, cts: usize) -> usize {
    cts * (layer.params.degree * layer.params.primes * 2 * 9 + 4096)
}

/// Client, offline: its share of the layer output from its share `c` of the input.
pub async fn client_offline<R: RngCore + CryptoRng>(
    ch: &mut Channel,
    layer: &Layer,
    c: &[u64],
    rng: &mut R,
) -> Result<Vec<u64>, LayerError> {
    let key = HeClient::new(&layer.params, rng)?;
    let mut out = Vec::with_capacity(layer.batch * layer.out_len());
    for b in 0..layer.batch {
        let x = layer.pad(&c[b * layer.in_len()..][..layer.in_len()]);
        let req = key.encrypt(&layer.tiling, &x, rng)?;
        ch.send("HE linear layer: encrypted mask", &pack_blobs(&req)).await?;
        let n = layer.tiling.output_cts();
        let bytes = ch.recv("HE linear layer: response", max_message(layer, n)).await?;
        let resp = unpack_blobs("HE linear layer: response", &bytes, n)?;
        out.extend(layer.subsample(&key.decrypt(&layer.tiling, &resp)?));
    }
    Ok(out)
}

/// Server, offline: answers the client and keeps its mask `m` of the outputs.
pub async fn server_offline<R: RngCore + CryptoRng>(
    ch: &mut Channel,
    g: &Graph,
    node: &Node,
    layer: &Layer,
    rng: &mut R,
) -> Result<Vec<u64>, LayerError> {
    let server = HeServer::new(&layer.params, &layer.tiling, &layer.kernel(g, node))?;
    let mut masks = Vec::with_capacity(layer.batch * layer.out_len());
    for _ in 0..layer.batch {
        let n = layer.tiling.input_cts();
        let bytes = ch.recv("HE linear layer: encrypted mask", max_message(layer, n)).await?;
        let req = unpack_blobs("HE linear layer: encrypted mask", &bytes, n)?;
        let (resp, m) = server.respond(&layer.tiling, &req, rng)?;
        ch.send("HE linear layer: response", &pack_blobs(&resp)).await?;
        masks.extend(layer.subsample(&m));
    }
    Ok(masks)
}

/// Server, online: `W·s + b + m` on its share `s`.
pub fn server_online(g: &Graph, ring: Ring, node: &Node, s: &[u64], masks: &[u64]) -> Vec<u64> {
    let shape = &g.values[node.inputs[0]].ty.shape;
    let y = match &node.op {
        Op::Dense { weight, bias } => {
            let n = g.consts[*weight].shape[0];
            ring_ops::dense(ring, s, shape, (&g.consts[*weight].qdata, n, bias.map(|b| g.consts[b].qdata.as_slice()))).1
        }
        Op::Conv2d { weight, bias, window, groups } => {
            let m = g.consts[*weight].shape[0];
            let w = (g.consts[*weight].qdata.as_slice(), m, bias.map(|b| g.consts[b].qdata.as_slice()));
            ring_ops::conv2d(ring, s, shape, w, window, *groups).1
        }
        _ => unreachable!("dense/conv only"),
    };
    y.iter().zip(masks).map(|(&a, &b)| ring.reduce(a.wrapping_add(b))).collect()
}
