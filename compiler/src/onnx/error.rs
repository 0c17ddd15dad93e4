//! Errors of the ONNX front end.

use std::fmt;

/// One node the front end cannot lower, with why. Problems of the graph itself (its inputs and
/// outputs) have an empty `node` and print only the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeError {
    pub node: String,
    pub op_type: String,
    /// Operator domain; empty for the default `ai.onnx` domain.
    pub domain: String,
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
    #[error("cannot read {path}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} is empty (0 bytes), not an ONNX model")]
    Empty { path: String },
    #[error("{path} is not a valid ONNX model (truncated or not ONNX protobuf): {reason}")]
    Decode { path: String, reason: String },
    #[error("{path}: {reason}")]
    Model { path: String, reason: String },
    #[error("{path}: the model cannot be compiled ({} problem(s)):{}", .errors.len(), list(.errors))]
    Nodes { path: String, errors: Vec<NodeError> },
    #[error("internal error: the front end produced invalid IR for {path} (please report this)\n{source}")]
    Internal { path: String, source: veil_ir::VerifyError },
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
