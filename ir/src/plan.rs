//! Plan and weights files.
//!
//! A plan is public: both parties load it. It holds the fixed-point graph (whose constants carry
//! names, shapes, domains and scales but never values) plus the values of public constants
//! (alignment factors, pooling divisors). The weights file holds the server's quantized
//! constants and the hash of the plan it belongs to.
//!
//! Layout of both: 8-byte magic, format version (u16 LE), body length (u64 LE), the postcard
//! body, then SHA-256 over everything before it. The plan's hash is its content hash; the
//! handshake compares it. Decoding checks magic, version, exact length and hash before parsing,
//! and verifies the graph after, so a truncated, foreign or corrupted file is an error, never a
//! panic or a huge allocation.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::graph::Graph;
use crate::types::Domain;

/// First 8 bytes of a plan file.
pub const PLAN_MAGIC: [u8; 8] = *b"VEILPLAN";
/// First 8 bytes of a weights file.
pub const WEIGHTS_MAGIC: [u8; 8] = *b"VEILWGTS";
/// Version of both formats; bump on any change to the graph's serde form.
pub const FORMAT_VERSION: u16 = 13;
/// Largest file either decoder accepts.
pub const MAX_FILE_BYTES: usize = 4 << 30;

/// A 32-byte SHA-256 digest.
pub type Hash = [u8; 32];

/// Why a plan or weights file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The file does not start with the expected magic bytes.
    #[error("not a Veil {what} file (wrong magic bytes)")]
    Magic {
        /// `"plan"` or `"weights"`.
        what: &'static str,
    },
    /// The file was written in another format version than [`FORMAT_VERSION`].
    #[error("{what} file has format version {found}; this Veil reads version {FORMAT_VERSION}")]
    Version {
        /// `"plan"` or `"weights"`.
        what: &'static str,
        /// The version the file declares.
        found: u16,
    },
    /// The file's size disagrees with its declared body length (or is out of range).
    #[error("{what} file is truncated or has trailing data ({got} bytes, expected {expected})")]
    Length {
        /// `"plan"` or `"weights"`.
        what: &'static str,
        /// Actual size in bytes.
        got: usize,
        /// Size the header implies, in bytes.
        expected: usize,
    },
    /// The trailing SHA-256 does not match the content.
    #[error("{what} file is corrupted (content hash mismatch)")]
    Hash {
        /// `"plan"` or `"weights"`.
        what: &'static str,
    },
    /// The body is not a valid postcard encoding.
    #[error("{what} file does not decode: {reason}")]
    Decode {
        /// `"plan"` or `"weights"`.
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// The graph is not quantized, fails the verifier, or a public constant disagrees with it.
    #[error("the plan is not a valid fixed-point graph: {0}")]
    Invalid(String),
    /// The weights name another plan hash than the plan's.
    #[error("the weights belong to a different plan (plan hash {found}, expected {expected})")]
    WrongPlan {
        /// Plan hash the weights file names, hex.
        found: String,
        /// Hash of the loaded plan, hex.
        expected: String,
    },
    /// A server constant is missing, unknown or of the wrong size.
    #[error("weights for constant {name:?}: {reason}")]
    Weights {
        /// The constant's name (or `#index` when it does not exist).
        name: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The decoded contents of a plan file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The quantized, verified graph; server constants hold no values until [`attach_weights`].
    pub graph: Graph,
    /// Quantized values of the public constants, by constant index.
    pub public: Vec<(u32, Vec<i64>)>,
}

#[derive(Serialize, Deserialize)]
struct WeightsBody {
    consts: Vec<(u32, Vec<i64>)>,
}

/// Hex form of a hash, for messages.
pub fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn frame(magic: [u8; 8], prefix: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 2 + prefix.len() + 8 + body.len() + 32);
    out.extend_from_slice(&magic);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(prefix);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    let h: Hash = Sha256::digest(&out).into();
    out.extend_from_slice(&h);
    out
}

/// Wraps a plan body (postcard bytes) in a valid plan frame: magic, version, length, hash. For
/// tools that build plans by hand and for fuzzing the decoder behind the hash check.
pub fn frame_plan(body: &[u8]) -> Vec<u8> {
    frame(PLAN_MAGIC, &[], body)
}

/// Wraps a weights body in a valid weights frame bound to plan hash `hash` (see [`frame_plan`]).
pub fn frame_weights(hash: &Hash, body: &[u8]) -> Vec<u8> {
    frame(WEIGHTS_MAGIC, hash, body)
}

/// Checks the frame and returns (prefix, body, hash).
fn unframe<'a>(
    bytes: &'a [u8],
    magic: [u8; 8],
    prefix_len: usize,
    what: &'static str,
) -> Result<(&'a [u8], &'a [u8], Hash), PlanError> {
    let head = 8 + 2 + prefix_len + 8;
    if bytes.len() < head + 32 || bytes.len() > MAX_FILE_BYTES {
        if bytes.len() >= 8 && bytes[..8] != magic {
            return Err(PlanError::Magic { what });
        }
        return Err(PlanError::Length { what, got: bytes.len(), expected: head + 32 });
    }
    if bytes[..8] != magic {
        return Err(PlanError::Magic { what });
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != FORMAT_VERSION {
        return Err(PlanError::Version { what, found: version });
    }
    let len = u64::from_le_bytes(bytes[10 + prefix_len..head].try_into().expect("8 bytes"));
    let expected = usize::try_from(len).ok().and_then(|l| l.checked_add(head + 32)).unwrap_or(usize::MAX);
    if expected != bytes.len() {
        return Err(PlanError::Length { what, got: bytes.len(), expected });
    }
    let (content, tail) = bytes.split_at(bytes.len() - 32);
    let h: Hash = Sha256::digest(content).into();
    if h[..] != tail[..] {
        return Err(PlanError::Hash { what });
    }
    Ok((&bytes[10..10 + prefix_len], &content[head..], h))
}

/// Encodes a fixed-point graph as (plan bytes, weights bytes, plan hash). Only constants a live
/// node reads are written; server constants go to the weights, public ones to the plan.
pub fn encode(g: &Graph) -> Result<(Vec<u8>, Vec<u8>, Hash), PlanError> {
    if g.ring_bits.is_none() {
        return Err(PlanError::Invalid("the graph is not quantized".into()));
    }
    let mut used: Vec<u32> = g.live_nodes().flat_map(|(_, n)| n.op.consts()).map(|c| c.index() as u32).collect();
    used.sort_unstable();
    used.dedup();
    let (mut public, mut server) = (Vec::new(), Vec::new());
    for i in used {
        let c = &g.consts[crate::Const::from_index(i as usize)];
        if c.frac_bits.is_none() || c.qdata.len() != c.shape.iter().product::<usize>() {
            return Err(PlanError::Weights { name: c.name.clone(), reason: "is not quantized".into() });
        }
        match c.domain {
            Domain::Public => public.push((i, c.qdata.clone())),
            _ => server.push((i, c.qdata.clone())),
        }
    }
    let plan = Plan { graph: g.clone(), public };
    let body = postcard::to_allocvec(&plan).map_err(|e| PlanError::Decode { what: "plan", reason: e.to_string() })?;
    let plan_bytes = frame(PLAN_MAGIC, &[], &body);
    let hash: Hash = plan_bytes[plan_bytes.len() - 32..].try_into().expect("32 bytes");
    let wbody = postcard::to_allocvec(&WeightsBody { consts: server })
        .map_err(|e| PlanError::Decode { what: "weights", reason: e.to_string() })?;
    Ok((plan_bytes, frame(WEIGHTS_MAGIC, &hash, &wbody), hash))
}

/// Decodes and verifies a plan; returns it with its content hash. Public constants get their
/// values; server constants stay empty until [`attach_weights`].
pub fn decode_plan(bytes: &[u8]) -> Result<(Plan, Hash), PlanError> {
    let (_, body, hash) = unframe(bytes, PLAN_MAGIC, 0, "plan")?;
    let mut plan: Plan =
        postcard::from_bytes(body).map_err(|e| PlanError::Decode { what: "plan", reason: e.to_string() })?;
    let g = &mut plan.graph;
    for (i, data) in &plan.public {
        let c = crate::Const::from_index(*i as usize);
        let k = g.consts.try_get(c).ok_or_else(|| PlanError::Invalid(format!("public constant {i} does not exist")))?;
        if k.domain != Domain::Public || data.len() != k.shape.iter().product::<usize>() {
            return Err(PlanError::Invalid(format!("public constant {:?} does not match its declaration", k.name)));
        }
        g.consts[c].qdata = data.clone();
    }
    if g.ring_bits.is_none() {
        return Err(PlanError::Invalid("the graph is not quantized".into()));
    }
    crate::verify(g).map_err(|e| PlanError::Invalid(e.to_string()))?;
    Ok((plan, hash))
}

/// Fills the server constants of `plan` (hash `hash`) from a weights file.
pub fn attach_weights(plan: &mut Plan, hash: &Hash, bytes: &[u8]) -> Result<(), PlanError> {
    let (prefix, body, _) = unframe(bytes, WEIGHTS_MAGIC, 32, "weights")?;
    if prefix != hash {
        let found: Hash = prefix.try_into().expect("32 bytes");
        return Err(PlanError::WrongPlan { found: hex(&found), expected: hex(hash) });
    }
    let w: WeightsBody =
        postcard::from_bytes(body).map_err(|e| PlanError::Decode { what: "weights", reason: e.to_string() })?;
    let g = &mut plan.graph;
    for (i, data) in w.consts {
        let c = crate::Const::from_index(i as usize);
        let k = g
            .consts
            .try_get(c)
            .ok_or_else(|| PlanError::Weights { name: format!("#{i}"), reason: "does not exist".into() })?;
        if k.domain != Domain::Server || data.len() != k.shape.iter().product::<usize>() {
            return Err(PlanError::Weights {
                name: k.name.clone(),
                reason: "does not match the plan's declaration".into(),
            });
        }
        g.consts[c].qdata = data;
    }
    let missing = g
        .live_nodes()
        .flat_map(|(_, n)| n.op.consts())
        .find(|&c| g.consts[c].qdata.is_empty() && !g.consts[c].shape.contains(&0));
    if let Some(c) = missing {
        return Err(PlanError::Weights {
            name: g.consts[c].name.clone(),
            reason: "is missing from the weights file".into(),
        });
    }
    Ok(())
}
