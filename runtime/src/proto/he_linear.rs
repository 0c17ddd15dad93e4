//! Dense and Conv2d layers: the HE offline step and the local online step (docs/protocols.md, "Linear layer by HE").
//!
//! The client's share `c` of the layer input is known offline. Per batch element the client
//! sends `Enc(c)` (zero-padded like the convolution), the server answers `Enc(W·c − m)`, and the
//! client keeps `W·c − m` (exactly the layer's outputs: strides are taken by the input's phases,
//! [`Layer`]). Online the server computes `W·s + b + m` on its share in plaintext ring
//! arithmetic.
//!
//! Keys: the client draws one BFV secret key per parameter set and session, and sends its
//! public key with the first layer that uses the set ([`ClientKeys`], [`ServerKeys`]); the
//! server re-randomises every response under it (circuit privacy, [`crate::he`]).

use crate::exec::step::{ClientIo, Csprng, Cx, Protocol, ServerIo, StepFuture, Values, take};
use rand::{CryptoRng, Rng, RngCore, SeedableRng};
use veil_ir::eval::ring_ops;
use veil_ir::ring::Ring;
use veil_ir::schedule::script::label;
use veil_ir::{Graph, Node, NodeId, Op};

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use veil_ir::schedule::{Kind, LinearOffline};

use super::he_weights::EncodedWeights;
use crate::he::{ClientKey, HeClient, HeError, HeParams, HeServer, Prepared};
use crate::net::{Channel, NetError};
use crate::wire::{self, pack_blobs};

/// Why a layer cannot run under HE.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// An HE operation failed (key, encryption, the server's evaluation of a request).
    #[error("{0}")]
    He(#[from] HeError),
    /// An HE failure at a position in the session (phase, layer, step).
    #[error("{at}: {source}")]
    HeAt {
        /// The session's position and the message's label.
        at: String,
        /// The HE failure.
        source: HeError,
    },
    /// The channel failed, or an HE message's ciphertext list is malformed.
    #[error("{0}")]
    Net(#[from] NetError),
    /// No HE parameter set fits the layer (names the node).
    #[error("no HE parameters fit layer {0:?}")]
    NoParams(String),
}

pub use veil_ir::he_pack::Layer;

/// The HE layout of `node`, or an error naming it.
pub fn layout(g: &Graph, node: &Node) -> Result<Layer, LayerError> {
    Layer::of(g, node).ok_or_else(|| LayerError::NoParams(node.name.clone()))
}

/// The `count` ciphertexts of an HE message, or an error naming the step.
fn unpack_blobs(step: &str, bytes: &[u8], count: usize) -> Result<Vec<Vec<u8>>, NetError> {
    wire::unpack_blobs(bytes, count).map_err(|reason| NetError::Malformed { step: step.into(), reason: reason.into() })
}

/// Upper bound on an HE message of `cts` ciphertexts of this layer (for receive limits).
fn max_message(layer: &Layer, cts: usize) -> usize {
    cts * (layer.params.degree * layer.params.primes * 2 * 9 + 4096)
}

/// The step name of the client's public key message.
const PUBLIC_KEY: &str = label::HE_PUBLIC_KEY;

/// The client's secret keys of one session, one per HE key set ([`HeParams::key_set`]).
#[derive(Debug, Default)]
pub struct ClientKeys(HashMap<HeParams, HeClient>);

/// The client's public keys of one session as the server holds them, one per key set.
#[derive(Debug, Default)]
pub struct ServerKeys(HashMap<HeParams, Arc<ClientKey>>);

/// Client, offline: its share of the layer output from its share `c` of the input. The first
/// layer of a parameter set makes the key and sends its public key.
pub async fn client_offline<R: RngCore + CryptoRng + Send>(
    ch: &mut Channel,
    keys: &mut ClientKeys,
    layer: &Layer,
    c: &[u64],
    rng: &mut R,
) -> Result<Vec<u64>, LayerError> {
    let key = match keys.0.entry(layer.params.key_set()) {
        Entry::Occupied(e) => e.into_mut(),
        Entry::Vacant(e) => {
            let key = crate::compute(|| HeClient::new(&layer.params.key_set(), rng))?;
            let pk = crate::compute(|| key.public_key(rng));
            ch.send(PUBLIC_KEY, &pk).await?;
            e.insert(key)
        }
    };
    let mut out = Vec::with_capacity(layer.batch * layer.out_len());
    for b in 0..layer.batch {
        let x = layer.pad(&c[b * layer.in_len()..][..layer.in_len()]);
        let req = crate::compute(|| key.encrypt(&layer.tiling, &x, rng))?;
        ch.send(label::HE_REQUEST, &pack_blobs(&req)).await?;
        let n = layer.tiling.output_cts();
        let bytes = ch.recv(label::HE_RESPONSE, max_message(layer, n)).await?;
        let resp = unpack_blobs(&ch.meter().locate(label::HE_RESPONSE), &bytes, n)?;
        let plain = crate::compute(|| key.decrypt(&layer.tiling, &resp))
            .map_err(|source| LayerError::HeAt { at: ch.meter().locate(label::HE_RESPONSE), source })?;
        out.extend(plain);
    }
    Ok(out)
}

/// A layer's encoded weights and the request-independent part of its first response, in the
/// making.
type Readying = Pin<Box<dyn Future<Output = Result<(Arc<HeServer>, Prepared), HeError>> + Send>>;

/// The server's next HE layer, made ahead: when an HE layer has answered, the server encodes
/// the next HE layer's weights and prepares its first response (both independent of the
/// client's request) on the ahead-of-need pool ([`crate::ahead_spawn`], a lower priority), so
/// the work fills the cores the steps in between leave idle. One layer ahead at most, and only
/// once the client's public key for its parameter set has arrived.
#[derive(Default)]
pub struct ServerAhead {
    /// The plan's HE steps: step index and node, in order.
    layers: Vec<(usize, veil_ir::NodeId)>,
    /// The next HE layer's work, by step index.
    next: Option<(usize, Readying)>,
    /// The layers whose kernels the process encoded once, for every session.
    weights: EncodedWeights,
}

impl std::fmt::Debug for ServerAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerAhead {{ layers: {}, next: {:?} }}", self.layers.len(), self.next.as_ref().map(|n| n.0))
    }
}

impl ServerAhead {
    /// The HE steps of a lowered plan.
    pub fn new(steps: &[veil_ir::schedule::Step]) -> ServerAhead {
        ServerAhead::with_weights(steps, EncodedWeights::default())
    }

    /// The HE steps of a lowered plan, taking the kernels of the layers in `weights` from there
    /// instead of encoding them.
    pub fn with_weights(steps: &[veil_ir::schedule::Step], weights: EncodedWeights) -> ServerAhead {
        let layers = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.kind, Kind::Linear { offline: LinearOffline::He }))
            .map(|(i, s)| (i, s.node))
            .collect();
        ServerAhead { layers, next: None, weights }
    }

    /// The encoded kernels of layer `id`: the process's, else encoded now.
    fn server(&self, g: &Graph, id: NodeId, layer: &Layer) -> Result<Arc<HeServer>, HeError> {
        match self.weights.get(id) {
            Some(server) => Ok(server),
            None => Ok(Arc::new(HeServer::new(&layer.params, &layer.tiling, &layer.kernel(g, &g.nodes[id]))?)),
        }
    }

    /// Starts the work of the first HE layer after step `after` whose key is known.
    fn start_next<R: RngCore + CryptoRng>(&mut self, after: usize, g: &Graph, keys: &ServerKeys, rng: &mut R) {
        let Some(&(index, node)) = self.layers.iter().find(|(i, _)| *i > after) else { return };
        let cached = self.weights.get(node);
        let node = &g.nodes[node];
        let Ok(layer) = layout(g, node) else { return };
        let Some(key) = keys.0.get(&layer.params.key_set()).cloned() else { return };
        let kernel = if cached.is_none() { layer.kernel(g, node) } else { Vec::new() };
        let mut rng = rand_chacha::ChaCha20Rng::from_seed(rng.random());
        let work = crate::ahead_spawn(move || {
            let server = match cached {
                Some(server) => server,
                None => Arc::new(HeServer::new(&layer.params, &layer.tiling, &kernel)?),
            };
            let prepared = server.prepare(&key, &layer.tiling, &mut rng)?;
            Ok((server, prepared))
        });
        self.next = Some((index, Box::pin(work)));
    }

    /// The work made ahead for step `index`, if any.
    fn take(&mut self, index: usize) -> Option<Readying> {
        match self.next.take() {
            Some((i, work)) if i == index => Some(work),
            other => {
                self.next = other;
                None
            }
        }
    }
}

/// Server, offline: answers the client and keeps its mask `m` of the outputs. The first layer
/// of a parameter set receives the client's public key. Uses the work `ahead` made for this
/// step (`index`) if any, and starts the next HE layer's before returning.
#[allow(clippy::too_many_arguments)]
pub async fn server_offline<R: RngCore + CryptoRng + Send>(
    ch: &mut Channel,
    keys: &mut ServerKeys,
    ahead: &mut ServerAhead,
    g: &Graph,
    (index, id): (usize, NodeId),
    layer: &Layer,
    rng: &mut R,
) -> Result<Vec<u64>, LayerError> {
    let key = match keys.0.entry(layer.params.key_set()) {
        Entry::Occupied(e) => e.into_mut(),
        Entry::Vacant(e) => {
            let bytes = ch.recv(PUBLIC_KEY, layer.params.public_key_bytes() as usize).await?;
            let key = ClientKey::parse(&layer.params.key_set(), &bytes)
                .map_err(|source| LayerError::HeAt { at: ch.meter().locate(PUBLIC_KEY), source })?;
            e.insert(Arc::new(key))
        }
    };
    let (server, mut first) = match ahead.take(index) {
        Some(work) => {
            let (server, prepared) = work.await?;
            (server, Some(prepared))
        }
        None => (ahead.server(g, id, layer)?, None),
    };
    let key = Arc::clone(key);
    let mut masks = Vec::with_capacity(layer.batch * layer.out_len());
    for _ in 0..layer.batch {
        // The request-independent part of the response runs while the request comes in.
        let prepared: Pin<Box<dyn Future<Output = Result<Prepared, HeError>> + Send>> = match first.take() {
            Some(p) => Box::pin(std::future::ready(Ok(p))),
            None => {
                let (server, key, tiling) = (Arc::clone(&server), Arc::clone(&key), layer.tiling);
                let mut rng = rand_chacha::ChaCha20Rng::from_seed(rng.random());
                Box::pin(crate::compute_spawn(move || server.prepare(&key, &tiling, &mut rng)))
            }
        };
        let n = layer.tiling.input_cts();
        let bytes = ch.recv(label::HE_REQUEST, max_message(layer, n)).await?;
        let req = unpack_blobs(&ch.meter().locate(label::HE_REQUEST), &bytes, n)?;
        let here = ch.meter().locate(label::HE_REQUEST);
        let at = |source| LayerError::HeAt { at: here.clone(), source };
        let prepared = prepared.await.map_err(at)?;
        let (resp, m) = crate::compute(|| server.answer(&key, &layer.tiling, &req, prepared)).map_err(at)?;
        ch.send(label::HE_RESPONSE, &pack_blobs(&resp)).await?;
        masks.extend(m);
    }
    ahead.start_next(index, g, keys, rng);
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
            parallel_conv2d(ring, s, shape, w, window, *groups)
        }
        _ => unreachable!("dense/conv only"),
    };
    y.iter().zip(masks).map(|(&a, &b)| ring.reduce(a.wrapping_add(b))).collect()
}

/// [`ring_ops::conv2d`] on the compute pool: per batch element, the output channels in chunks
/// (each a convolution with those channels' weights and bias, whose outputs follow each other),
/// so the server's online convolution, on the client's critical path, takes both cores. Grouped
/// convolutions (depthwise) run whole.
fn parallel_conv2d(
    ring: Ring,
    s: &[u64],
    shape: &[usize],
    (w, m, bias): (&[i64], usize, Option<&[i64]>),
    window: &veil_ir::Window2d,
    groups: usize,
) -> Vec<u64> {
    use rayon::prelude::*;
    let [n, c, h, wd] = shape[..] else { unreachable!("verified: conv input is 4-D") };
    if groups != 1 || m < 2 {
        return ring_ops::conv2d(ring, s, shape, (w, m, bias), window, groups).1;
    }
    let per = w.len() / m;
    let one = [1, c, h, wd];
    crate::compute(|| {
        // Inside the compute pool: its size, not the global pool's (which this must not start:
        // the OT library sizes it, `crate::init_threads`).
        let chunk = m.div_ceil(4 * rayon::current_num_threads().max(1)).max(1);
        (0..n)
            .flat_map(|bn| (0..m).step_by(chunk).map(move |a| (bn, a)))
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|(bn, a)| {
                let b = (a + chunk).min(m);
                let x = &s[bn * c * h * wd..][..c * h * wd];
                let part = (&w[a * per..b * per], b - a, bias.map(|v| &v[a..b]));
                ring_ops::conv2d(ring, x, &one, part, window, 1).1
            })
            .collect::<Vec<_>>()
            .concat()
    })
}

/// Server, online, for a linear layer whatever made its masks (HE here, OT in
/// [`super::matmul`]): its output share `W·s + b + m` from its input share, consuming the masks.
pub(crate) fn server_online_step(cx: Cx<'_>, values: &mut Values, masks: &mut Option<Vec<u64>>) {
    let out = server_online(cx.g, cx.ring, cx.node, values.share(cx.node.inputs[0]), &take(masks));
    values.set_share(cx.node.output, out);
}

/// The HE linear layer as a plan step ([`veil_ir::schedule::Kind::Linear`] with HE offline).
#[derive(Default)]
pub struct HeLinear {
    /// The server's masks `m` between the phases.
    masks: Option<Vec<u64>>,
}

impl std::fmt::Debug for HeLinear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeLinear(<redacted>)")
    }
}

impl Protocol for HeLinear {
    fn server_offline<'a>(
        &'a mut self,
        io: &'a mut ServerIo,
        cx: Cx<'a>,
        mut rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        Box::pin(async move {
            let layer = layout(cx.g, cx.node)?;
            let f = server_offline(
                &mut io.ch,
                &mut io.he_keys,
                &mut io.he_ahead,
                cx.g,
                (cx.index, cx.step.node),
                &layer,
                &mut rng,
            );
            self.masks = Some(f.await?);
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
        server_online_step(cx, values, &mut self.masks);
        Box::pin(async { Ok(()) })
    }

    fn client_offline<'a>(
        &'a mut self,
        io: &'a mut ClientIo,
        cx: Cx<'a>,
        values: &'a mut Values,
        mut rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        Box::pin(async move {
            let layer = layout(cx.g, cx.node)?;
            let c = values.share(cx.node.inputs[0]);
            let out = client_offline(&mut io.ch, &mut io.he_keys, &layer, c, &mut rng).await?;
            values.set_share(cx.node.output, out);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The chunked convolution is the whole one: batch 2, output channel counts that do and do
    /// not divide into the chunks, strides, padding and dilation; grouped ones run whole.
    #[test]
    fn the_parallel_convolution_equals_the_serial_one() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let ring = Ring::new(37);
        let window = veil_ir::Window2d { kernel: [3, 2], strides: [2, 1], pads: [1, 0, 1, 1], dilations: [1, 2] };
        for (m, groups) in [(1usize, 1usize), (5, 1), (16, 1), (37, 1), (6, 3)] {
            let (n, c, h, w) = (2, 6, 9, 7);
            let x: Vec<u64> = (0..n * c * h * w).map(|_| ring.reduce(rng.random())).collect();
            let weights: Vec<i64> = (0..m * (c / groups) * 6).map(|_| rng.random_range(-1000..1000)).collect();
            let bias: Vec<i64> = (0..m).map(|_| rng.random_range(-1000..1000)).collect();
            let shape = [n, c, h, w];
            let want = ring_ops::conv2d(ring, &x, &shape, (&weights, m, Some(&bias)), &window, groups).1;
            let got = parallel_conv2d(ring, &x, &shape, (&weights, m, Some(&bias)), &window, groups);
            assert_eq!(got, want, "m = {m}, groups = {groups}");
        }
    }
}
