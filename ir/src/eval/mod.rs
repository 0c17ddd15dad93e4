//! Reference semantics: plaintext interpreters of the IR.
//!
//! [`run_float`] executes a float graph (before quantisation) exactly as each op's doc in
//! [`crate::Op`] defines it; it is the float reference that `veilc simulate --float` prints and
//! that tests compare against tract's inference.

mod fixed;
mod float;
pub mod kernels;
pub mod ring_ops;

pub use fixed::{FixedRun, LEAKY_ALPHA_BITS, decode_value, encode_inputs, run_fixed};
pub use float::{run_float, run_float_values};

/// The interpreter cannot run a graph on the given inputs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("the model takes {expected} input(s), got {got}")]
    InputCount { expected: usize, got: usize },
    #[error("input {index} ({name:?}) must have shape {expected:?}, got {got:?}{}", batch_hint(expected, got))]
    InputShape { index: usize, name: String, expected: Vec<usize>, got: Vec<usize> },
    #[error("input {index} ({name:?}) holds a non-finite value at flat index {at}")]
    NonFinite { index: usize, name: String, at: usize },
    #[error("node {node:?} is a fixed-point op; run the graph with the fixed-point interpreter")]
    NotFloat { node: String },
    #[error("the graph is not quantized (no ring width or a float input); run `quantize` first")]
    NotFixed,
    #[error(
        "input {index} ({name:?}) holds {value} at flat index {at}, which does not fit the plan's fixed-point range"
    )]
    InputRange { index: usize, name: String, at: usize, value: f32 },
    #[error(
        "input {index} ({name:?}) holds {value} at flat index {at}, beyond the bound |x| ≤ {bound} the model was compiled for (compile with a larger --input-bound or --calibrate)"
    )]
    OutOfBound { index: usize, name: String, at: usize, value: f32, bound: f32 },
    #[error("constant {name:?} has no data (a graph read from a plan needs its weights file)")]
    MissingConstant { name: String },
    #[error(
        "node {node:?}: LeakyReLU's slope {alpha} does not fit the plan's {ring_bits}-bit ring at 16 fractional bits"
    )]
    SlopeRange { node: String, alpha: f32, ring_bits: u8 },
}

/// What to say when an input's shape differs from the model's only in its leading (batch)
/// dimension: the plan was compiled for another batch size (`--batch N`). Empty otherwise.
pub fn batch_hint(expected: &[usize], got: &[usize]) -> String {
    match (expected.split_first(), got.split_first()) {
        (Some((e, erest)), Some((g, grest))) if erest == grest && e != g => {
            format!(" (only the batch differs: the model was compiled for batch {e}; compile with --batch {g})")
        }
        _ => String::new(),
    }
}

/// Checks `inputs` against the graph inputs: count, shapes, and finite values.
fn check_inputs(g: &crate::Graph, inputs: &[crate::Tensor]) -> Result<(), EvalError> {
    if inputs.len() != g.inputs.len() {
        return Err(EvalError::InputCount { expected: g.inputs.len(), got: inputs.len() });
    }
    for (index, (&v, t)) in g.inputs.iter().zip(inputs).enumerate() {
        let value = &g.values[v];
        if t.shape != value.ty.shape {
            return Err(EvalError::InputShape {
                index,
                name: value.name.clone(),
                expected: value.ty.shape.clone(),
                got: t.shape.clone(),
            });
        }
        if let Some(at) = t.data.iter().position(|x| !x.is_finite()) {
            return Err(EvalError::NonFinite { index, name: value.name.clone(), at });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::batch_hint;

    #[test]
    fn a_batch_only_mismatch_suggests_the_batch_option() {
        assert!(batch_hint(&[1, 784], &[8, 784]).contains("compile with --batch 8"));
        assert_eq!(batch_hint(&[1, 784], &[1, 5]), "");
        assert_eq!(batch_hint(&[1, 784], &[784]), "");
        assert_eq!(batch_hint(&[], &[]), "");
    }
}
