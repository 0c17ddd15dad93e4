//! Errors of the ONNX front end.

use std::fmt;

/// One node the front end cannot lower, with why. Problems of the graph itself (its inputs and
/// outputs) have an empty `node` and print only the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeError {
    /// ONNX node name; empty for a problem of the graph itself.
    pub node: String,
    /// ONNX op type (`Conv`, `Relu`, ...).
    pub op_type: String,
    /// Operator domain; empty for the default `ai.onnx` domain.
    pub domain: String,
    /// Why it cannot be lowered, in words.
    pub reason: String,
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.node.is_empty() {
            f.write_str(&self.reason)
        } else if self.domain.is_empty() || self.domain == "ai.onnx" {
            write!(f, "node {:?} ({}): {}", self.node, self.op_type, self.reason)
        } else {
            write!(f, "node {:?} ({}, domain {}): {}", self.node, self.op_type, self.domain, self.reason)
        }
    }
}

/// Why a model could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The model file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file's path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The model file has no bytes.
    #[error("{path} is empty (0 bytes), not an ONNX model")]
    Empty {
        /// The file's path.
        path: String,
    },
    /// The bytes are not an ONNX `ModelProto` with a graph.
    #[error("{path} is not a valid ONNX model (truncated or not ONNX protobuf): {reason}")]
    Decode {
        /// The file's path (or the model's name).
        path: String,
        /// What the protobuf decoder said.
        reason: String,
    },
    /// The model as a whole cannot be compiled (no or an unsupported operator set, batch size 0).
    #[error("{path}: {reason}")]
    Model {
        /// The file's path (or the model's name).
        path: String,
        /// What is unsupported.
        reason: String,
    },
    /// Everything that cannot be lowered (nodes, graph inputs/outputs, external data), all at once.
    #[error("{path}: the model cannot be compiled ({} problem(s)):{}", .errors.len(), list(.errors))]
    Nodes {
        /// The file's path (or the model's name).
        path: String,
        /// One entry per problem.
        errors: Vec<NodeError>,
    },
    /// The front end built IR that fails the verifier (a compiler bug).
    #[error("internal error: the front end produced invalid IR for {path} (please report this)\n{source}")]
    Internal {
        /// The file's path (or the model's name).
        path: String,
        /// The violations.
        source: veil_ir::VerifyError,
    },
}

impl ImportError {
    /// Whether the error is the user's input being rejected (exit code 1) rather than an
    /// internal failure (exit code 2).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, ImportError::Internal { .. })
    }
}

fn list(errors: &[NodeError]) -> String {
    errors.iter().map(|e| format!("\n  {e}")).collect()
}
