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
pub use float::{run_float, run_float_approximated, run_float_ieee, run_float_values, run_real_values};

/// The interpreter cannot run a graph on the given inputs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// Wrong number of inputs.
    #[error("the model takes {expected} input(s), got {got}")]
    InputCount {
        /// Inputs the graph declares.
        expected: usize,
        /// Inputs given.
        got: usize,
    },
    /// An input's shape differs from the graph's.
    #[error("input {index} ({name:?}) must have shape {expected:?}, got {got:?}{}", batch_hint(expected, got))]
    InputShape {
        /// Position of the input, from 0.
        index: usize,
        /// The input value's name.
        name: String,
        /// Shape the graph declares.
        expected: Vec<usize>,
        /// Shape given.
        got: Vec<usize>,
    },
    /// An input holds a NaN or an infinity.
    #[error("input {index} ({name:?}) holds a non-finite value at flat index {at}")]
    NonFinite {
        /// Position of the input, from 0.
        index: usize,
        /// The input value's name.
        name: String,
        /// Row-major index of the first such element.
        at: usize,
    },
    /// The float interpreter met a `truncate`, which exists only in fixed-point graphs.
    #[error("node {node:?} is a fixed-point op; run the graph with the fixed-point interpreter")]
    NotFloat {
        /// Name of the node.
        node: String,
    },
    /// The fixed-point interpreter was given a graph without a ring width or with a float input.
    #[error("the graph is not quantized (no ring width or a float input); run `quantize` first")]
    NotFixed,
    /// An input element does not fit the ring at the input's scale.
    #[error(
        "input {index} ({name:?}) holds {value} at flat index {at}, which does not fit the plan's fixed-point range"
    )]
    InputRange {
        /// Position of the input, from 0.
        index: usize,
        /// The input value's name.
        name: String,
        /// Row-major index of the first such element.
        at: usize,
        /// The element.
        value: f32,
    },
    /// An input element exceeds the graph's input bound, for which its ranges hold.
    #[error(
        "input {index} ({name:?}) holds {value} at flat index {at}, beyond the bound |x| ≤ {bound} the model was compiled for (compile with a larger --input-bound or --calibrate)"
    )]
    OutOfBound {
        /// Position of the input, from 0.
        index: usize,
        /// The input value's name.
        name: String,
        /// Row-major index of the first such element.
        at: usize,
        /// The element.
        value: f32,
        /// The bound on `|x|` the graph was quantized for.
        bound: f32,
    },
    /// A constant the graph reads has no values (a plan without its weights).
    #[error("constant {name:?} has no data (a graph read from a plan needs its weights file)")]
    MissingConstant {
        /// The constant's name.
        name: String,
    },
    /// A LeakyReLU slope does not fit the ring at [`LEAKY_ALPHA_BITS`] fractional bits.
    #[error(
        "node {node:?}: LeakyReLU's slope {alpha} does not fit the plan's {ring_bits}-bit ring at 16 fractional bits"
    )]
    SlopeRange {
        /// Name of the node.
        node: String,
        /// The slope.
        alpha: f32,
        /// Ring width ℓ.
        ring_bits: u8,
    },
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

/// Checks `inputs` against the graph inputs: count, shapes, and (if `finite`) finite values.
fn check_inputs(g: &crate::Graph, inputs: &[crate::Tensor], finite: bool) -> Result<(), EvalError> {
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
        if let Some(at) = t.data.iter().position(|x| finite && !x.is_finite()) {
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
