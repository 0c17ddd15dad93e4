//! The server's HE kernels encoded once per process, within a memory budget, for every session.
//!
//! Encoding a layer's weights ([`HeServer::new`]: one polynomial per kernel group and channel
//! tile, each reduced modulo every prime and transformed) depends on neither the client nor the
//! session, yet it was most of an HE layer's server work: 39 % of the server's CPU on the
//! ResNet-18 shape (`perf`, docs/decisions.md). `veil server` encodes the plan's HE layers in
//! plan order at start, until the next layer would pass `--he-cache` megabytes, and each session
//! takes them from here ([`EncodedWeights::get`]); the layers past the budget are encoded per
//! session, ahead of their step, as before. The kernels are the server's secret like the weights
//! they come from: they stay in the server's memory and [`HeServer`]'s `Debug` redacts them.

use std::collections::HashMap;
use std::sync::Arc;

use veil_ir::schedule::{Kind, LinearOffline, Step};
use veil_ir::{Graph, NodeId};

use super::he_linear::{LayerError, layout};
use crate::he::HeServer;

/// HE layers' encoded kernels by node, shared by sessions (`Arc`). Empty: every session encodes
/// its own.
#[derive(Clone, Default)]
pub struct EncodedWeights {
    layers: Arc<HashMap<NodeId, Arc<HeServer>>>,
}

impl std::fmt::Debug for EncodedWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncodedWeights {{ layers: {} <redacted> }}", self.layers.len())
    }
}

/// What [`EncodedWeights::encode`] kept: layers and bytes, of how many HE layers and bytes in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    /// HE layers encoded.
    pub layers: usize,
    /// Their kernels' bytes.
    pub bytes: u64,
    /// HE layers in the plan.
    pub all_layers: usize,
    /// Bytes the kernels of every HE layer would take.
    pub all_bytes: u64,
}

/// Bytes of one HE layer's kernels: a polynomial of `N` coefficients per prime, 8 bytes each,
/// per kernel group and channel tile.
fn kernel_bytes(layer: &veil_ir::he_pack::Layer) -> u64 {
    let p = &layer.params;
    (layer.tiling.kernel_groups() * layer.tiling.channel_tiles() * p.degree * p.primes * 8) as u64
}

impl EncodedWeights {
    /// Encodes the HE layers of `g` (weights attached; `steps` its lowered plan) in plan order
    /// while their kernels fit `budget` bytes in all (a layer that does not fit is skipped, and
    /// later smaller ones may still be taken).
    pub fn encode(g: &Graph, steps: &[Step], budget: u64) -> Result<(EncodedWeights, Coverage), LayerError> {
        let mut layers = HashMap::new();
        let mut cov = Coverage::default();
        for step in steps {
            if !matches!(step.kind, Kind::Linear { offline: LinearOffline::He }) || layers.contains_key(&step.node) {
                continue;
            }
            let node = &g.nodes[step.node];
            let layer = layout(g, node)?;
            let bytes = kernel_bytes(&layer);
            cov.all_layers += 1;
            cov.all_bytes += bytes;
            if cov.bytes + bytes > budget {
                continue;
            }
            let server = HeServer::new(&layer.params, &layer.tiling, &layer.kernel(g, node))?;
            layers.insert(step.node, Arc::new(server));
            cov.layers += 1;
            cov.bytes += bytes;
        }
        Ok((EncodedWeights { layers: Arc::new(layers) }, cov))
    }

    /// The encoded kernels of HE layer `node`, if they were encoded once.
    pub fn get(&self, node: NodeId) -> Option<Arc<HeServer>> {
        self.layers.get(&node).cloned()
    }
}
