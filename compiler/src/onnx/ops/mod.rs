//! The operator registry: which ONNX ops lower, and to what. Split by family like tract's
//! `onnx/src/ops`: `nn` (conv, pooling, batch normalisation, activations), `conv_transpose`,
//! `relu_forms` (Abs, PRelu), `resize` (Resize, Upsample), `movement` (Tile, Expand, DepthToSpace,
//! SpaceToDepth), `variadic` (Sum and Mean of many operands), `norm` (LayerNormalization),
//! `norm_form` (its written-out form), `channel_norm` (InstanceNormalization, GroupNormalization), `math` (Gemm, MatMul,
//! elementwise arithmetic and polynomials), `minmax` (Max and Min as clips or ReLUs), `batched` (MatMul with batched constant operands),
//! `reduce` (ReduceSum, ReduceMean, ReduceMax, ReduceMin), `array` and `join` (data movement), `post` (client-side
//! post-processing), `quant` (Round, Floor, Ceil, integer Casts, QuantizeLinear and DequantizeLinear), and `fold` (compile-time evaluation of constant subgraphs).

mod array;
mod batched;
mod channel_norm;
pub mod client_mask;
mod conv3d;
mod conv_transpose;
mod embedding;
mod fold;
pub mod gelu_form;
mod join;
mod math;
mod minmax;
mod movement;
mod nn;
pub mod norm;
pub mod norm_form;
mod pad;
mod pool3d;
mod post;
pub mod quant;
mod recurrent;
mod reduce;
mod relu_forms;
mod resize;
mod secret_matmul;
mod shared_softmax;
mod variadic;
mod window;

use super::consts::CTensor;
use super::import::{Ctx, Importer, Sym};

type Lowering = fn(&mut Importer, &Ctx, &[Option<Sym>]) -> Result<Vec<Sym>, String>;

/// The lowering of an op type, if Veil supports it.
fn lowering(op: &str) -> Option<Lowering> {
    Some(match op {
        "Conv" => nn::conv,
        "ConvTranspose" => conv_transpose::conv_transpose,
        "MaxPool" | "GlobalMaxPool" => nn::max_pool,
        "AveragePool" | "GlobalAveragePool" => nn::avg_pool,
        "BatchNormalization" => nn::batch_norm,
        "LayerNormalization" => norm::layer_norm,
        "InstanceNormalization" => channel_norm::instance_norm,
        "GroupNormalization" => channel_norm::group_norm,
        "Relu" => nn::relu,
        "Abs" => relu_forms::abs,
        "PRelu" => relu_forms::prelu,
        "LeakyRelu" => nn::leaky_relu,
        "Clip" => nn::clip,
        "Gemm" => math::gemm,
        "MatMul" => math::matmul,
        "Add" | "Sub" | "Mul" | "Div" => math::arith,
        "Neg" => math::neg,
        "Sum" | "Mean" => variadic::sum_or_mean,
        "Pow" => math::pow,
        "Max" | "Min" => minmax::min_max,
        "CastLike" => array::cast_like,
        "Flatten" => array::flatten,
        "Reshape" => array::reshape,
        "Squeeze" => array::squeeze,
        "Unsqueeze" => array::unsqueeze,
        "Transpose" => array::transpose,
        "Concat" => join::concat,
        "Split" => join::split,
        "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin" => reduce::reduce,
        "Pad" => pad::pad,
        "Resize" | "Upsample" => resize::resize,
        "Identity" | "Dropout" | "Cast" => array::identity,
        "Shape" => array::shape,
        "Size" => array::size,
        "Gather" | "Slice" | "Tile" | "Expand" | "DepthToSpace" | "SpaceToDepth" | "GatherND" | "GatherElements" => {
            array::select
        }
        "Softmax" | "LogSoftmax" => post::softmax,
        "ArgMax" => post::argmax,
        "Sigmoid" => post::sigmoid,
        "HardSigmoid" => nn::hard_sigmoid,
        "HardSwish" => nn::hard_swish,
        "Tanh" => gelu_form::tanh,
        "Erf" => gelu_form::erf,
        "Sqrt" => norm_form::sqrt,
        "Reciprocal" => norm_form::reciprocal,
        "Gelu" => nn::gelu,
        "RNN" | "GRU" | "LSTM" => recurrent::recurrent,
        "Round" | "Floor" | "Ceil" => quant::round,
        "QuantizeLinear" => quant::quantize_linear,
        "DequantizeLinear" => quant::dequantize_linear,
        "Equal" => client_mask::equal,
        "Where" => client_mask::where_,
        "IsNaN" | "IsInf" => client_mask::never,
        "Not" | "And" | "Or" | "Xor" => client_mask::logic,
        "Greater" | "Less" | "GreaterOrEqual" | "LessOrEqual" => fold::only_constants,
        _ if fold::FOLD_ONLY.contains(&op) => fold::only_constants,
        _ => return None,
    })
}

pub fn is_supported(op: &str) -> bool {
    lowering(op).is_some()
}

/// Why an op type is not supported, for the error message.
pub fn unsupported_reason(op: &str) -> String {
    const SUPPORTED: &str = "supported non-linearities: Relu, LeakyRelu, Clip, HardSigmoid, HardSwish, MaxPool, polynomials, \
products of two computed values, Sigmoid, Tanh and Gelu (piecewise-linear, within 0.00076, 0.0015 and 0.0079), and Softmax, \
LogSoftmax or ArgMax at the end of the model";
    match op {
        "Elu" | "Selu" | "Softplus" | "Softsign" | "Mish" | "Celu" => {
            return format!(
                "not supported: {op} is a smooth non-linearity of secret values, and Veil has no two-party protocol \
for it yet (it would need a garbled approximation with a stated error); {SUPPORTED}"
            );
        }
        _ => {}
    }
    match op {
        "QLinearConv"
        | "QLinearMatMul"
        | "QLinearAdd"
        | "QLinearMul"
        | "QLinearAveragePool"
        | "QLinearGlobalAveragePool"
        | "QLinearConcat"
        | "QLinearSigmoid"
        | "QLinearLeakyRelu" => {
            return format!(
                "not supported: {op} is onnxruntime's QOperator quantization format, whose integer kernels wrap and \
requantize in ways Veil's fixed point does not reproduce; quantize in the QDQ format instead \
(quantize_static(..., quant_format=QuantFormat.QDQ), the default), which Veil runs"
            );
        }
        "MatMulInteger" | "ConvInteger" | "DynamicQuantizeLinear" => {
            return format!(
                "not supported: {op} is dynamic quantization (scales computed from each input at run time); \
quantize statically in the QDQ format instead (onnxruntime's quantize_static), which Veil runs"
            );
        }
        _ => {}
    }
    const NO_PROTOCOL: &[&str] = &["Exp", "Log", "LRN", "TopK"];
    if NO_PROTOCOL.contains(&op) {
        format!("not supported: Veil has no sound two-party protocol for it ({SUPPORTED})")
    } else {
        "not supported".into()
    }
}

/// Lowers one node whose operands are all available.
pub fn lower(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let op = ctx.node.op_type();
    let f = lowering(op).ok_or_else(|| unsupported_reason(op))?;
    let all_const = inputs.iter().all(|s| matches!(s, None | Some(Sym::Const(_))));
    if all_const && fold::can_fold(op) {
        return fold::fold(ctx, inputs).map(|t| vec![Sym::Const(t)]);
    }
    f(imp, ctx, inputs)
}

/// Operand `i`, required.
fn arg(inputs: &[Option<Sym>], i: usize) -> Result<&Sym, String> {
    inputs.get(i).and_then(Option::as_ref).ok_or_else(|| format!("input {i} is required"))
}

/// Operand `i` as a compile-time tensor, if present; an error if present but computed at run time.
fn opt_const<'a>(inputs: &'a [Option<Sym>], i: usize, what: &str) -> Result<Option<&'a CTensor>, String> {
    match inputs.get(i).and_then(Option::as_ref) {
        None => Ok(None),
        Some(Sym::Const(t)) => Ok(Some(t)),
        Some(_) => Err(format!(
            "{what} (input {i}) must be a constant (an initializer or foldable), not computed from the model input"
        )),
    }
}

/// Operand `i` as a compile-time tensor, required.
fn konst<'a>(inputs: &'a [Option<Sym>], i: usize, what: &str) -> Result<&'a CTensor, String> {
    opt_const(inputs, i, what)?.ok_or_else(|| format!("{what} (input {i}) is required"))
}

/// Elements a data-movement op may produce: its index map takes 4 bytes each (1 GiB here), so
/// a model asking for more (a corrupt or hostile size) is refused before anything is allocated.
pub(super) const MAX_MOVED: usize = 1 << 28;

/// The element count of `shape`, refused past [`MAX_MOVED`] (or on overflow), naming `what`.
pub(super) fn moved_elements(shape: &[usize], what: &str) -> Result<usize, String> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_MOVED)
        .ok_or_else(|| format!("{what} of shape {shape:?} is too large (more than {MAX_MOVED} elements)"))
}

/// A possibly negative axis normalised against `rank`.
fn axis(a: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    if a < -r || a >= r {
        return Err(format!("axis {a} is out of range for rank {rank}"));
    }
    Ok(if a < 0 { (a + r) as usize } else { a as usize })
}
