//! The closed set of IR operations, with their semantics (each variant's doc); their typing
//! rules are in `op_infer.rs` ([`Op::infer`]).
//!
//! Every op has one output. Layout conventions are ONNX's: images are `[N, C, H, W]`, 2-D pads
//! are `[h_begin, w_begin, h_end, w_end]`. Constants (`@k`) are referenced by handle; they live in
//! [`crate::Graph::consts`] and never travel in a plan.
//!
//! "Protocols" in each variant's doc says which two-party protocols can run it (docs/protocols.md):
//! HE (linear, offline) + local plaintext online, SS (local on additive shares), GC (garbled
//! circuit), or client-side (after [`Op::Reveal`]).

use serde::{Deserialize, Serialize};

use crate::arena::{Arena, Handle};
pub use crate::op_modes::{CircaVariant, FloatGrid, Overflow, RoundMode, TruncMode};
use crate::types::Domain;

/// A constant tensor: weights (server-private) or public parameters.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Constant {
    /// Name from the model (ONNX initializer name), for dumps and errors.
    pub name: String,
    /// Dimensions, outermost first; `data` has their product of elements.
    pub shape: Vec<usize>,
    /// [`Domain::Server`] for weights, [`Domain::Public`] for values the plan may carry.
    pub domain: Domain,
    /// Row-major values; `shape.iter().product()` of them. Never serialized with the graph:
    /// the weights file carries server constants.
    #[serde(skip)]
    pub data: Vec<f32>,
    /// After `quantize`: the fixed-point scale of `qdata` (`None` for a float constant).
    pub frac_bits: Option<u8>,
    /// After `quantize`: `round(data · 2^frac_bits)` as signed integers (taken mod 2^ℓ when
    /// used). Never serialized with the graph.
    #[serde(skip)]
    pub qdata: Vec<i64>,
}

impl std::fmt::Debug for Constant {
    /// Redacted: weight values never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Constant")
            .field("name", &self.name)
            .field("shape", &self.shape)
            .field("domain", &self.domain)
            .field("data", &format_args!("<{} values>", self.data.len()))
            .field("frac_bits", &self.frac_bits)
            .finish_non_exhaustive()
    }
}

/// Handle of a [`Constant`] (printed `@k`).
pub type Const = Handle<Constant>;

/// Sliding-window geometry over the two spatial axes of an `[N, C, H, W]` tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window2d {
    /// Window extent `[kh, kw]` before dilation.
    pub kernel: [usize; 2],
    /// Step `[h, w]` between windows; positive.
    pub strides: [usize; 2],
    /// `[h_begin, w_begin, h_end, w_end]`.
    pub pads: [usize; 4],
    /// Spacing `[h, w]` between kernel taps (1: dense); positive.
    pub dilations: [usize; 2],
}

impl Window2d {
    /// Output spatial size for input `[h, w]`, or an error if the window does not fit.
    pub fn output_hw(&self, hw: [usize; 2]) -> Result<[usize; 2], String> {
        let mut out = [0; 2];
        for a in 0..2 {
            let padded = hw[a] + self.pads[a] + self.pads[a + 2];
            let span = self.dilations[a] * (self.kernel[a].max(1) - 1) + 1;
            if self.strides[a] == 0 || self.dilations[a] == 0 || self.kernel[a] == 0 {
                return Err("kernel, strides and dilations must be positive".into());
            }
            if span > padded {
                return Err(format!(
                    "window of extent {span} does not fit padded input of size {padded} on spatial axis {a}"
                ));
            }
            out[a] = (padded - span) / self.strides[a] + 1;
        }
        Ok(out)
    }
}

/// An IR operation. See the module doc for conventions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// `y[.., n] = Σ_k x[.., k] · weight[n, k] + bias[n]`: a matrix product over the last axis.
    /// `weight` is `[N, K]`, `bias` `[N]`. Output shape: the input's with the last axis `N`.
    /// Protocols: HE offline, local online.
    Dense {
        /// Weights `[N, K]`.
        weight: Const,
        /// Bias `[N]`, if any.
        bias: Option<Const>,
    },
    /// 2-D convolution (ONNX `Conv`, cross-correlation). Input `[N, C, H, W]`, `weight`
    /// `[M, C / groups, kh, kw]`, `bias` `[M]`, output `[N, M, H', W']` with `H'`, `W'` from
    /// [`Window2d::output_hw`]; zero padding. `groups` divides `C` and `M`.
    /// Protocols: HE offline, local online.
    Conv2d {
        /// Kernels `[M, C / groups, kh, kw]`.
        weight: Const,
        /// Bias `[M]`, if any.
        bias: Option<Const>,
        /// Kernel size, strides, pads and dilations.
        window: Window2d,
        /// Channel groups (1: ordinary; `C = M`: depthwise).
        groups: usize,
    },
    /// `y = x · scale + shift`, each constant broadcast to `x`'s shape by ONNX (numpy) rules
    /// without changing it. At least one of the two is present.
    /// Protocols: local on shares (the scale is a public or server-side constant: HE when secret).
    Affine {
        /// Multiplier, broadcast to `x`.
        scale: Option<Const>,
        /// Addend, broadcast to `x`.
        shift: Option<Const>,
    },
    /// Inference-mode batch normalisation over axis 1:
    /// `y = (x − mean[c]) / sqrt(var[c] + epsilon) · scale[c] + bias[c]`. All four constants are
    /// `[C]`; input rank ≥ 2. Folded away by the `fold_batchnorm` pass.
    BatchNorm {
        /// γ, `[C]`.
        scale: Const,
        /// β, `[C]`.
        bias: Const,
        /// Running mean, `[C]`.
        mean: Const,
        /// Running variance, `[C]`.
        var: Const,
        /// Added to the variance before the square root.
        epsilon: f32,
    },
    /// Elementwise `a + b` of two values of the same shape. Protocols: local on shares.
    Add,
    /// Elementwise `a − b` of two values of the same shape. Protocols: local on shares.
    Sub,
    /// Elementwise `max(x, 0)`. Protocols: GC (exact), or a stochastic / polynomial substitute.
    Relu,
    /// Circa's stochastic ReLU: `x · [x ≥ 0]` where the sign is tested on shares with their low
    /// `drop_bits` bits dropped (`None` until `quantize` picks it per layer). In float semantics
    /// it is exactly ReLU; the fixed-point simulator models its faults (docs/fixed-point.md): with
    /// `PosZero` small positives may become 0, with `NegPass` small negatives may pass.
    /// The test reads the shares in Z_2^m, `m = test_bits` (each party reduces its share mod
    /// 2^m, locally), which is exact while `|x|` stays clear of 2^(m−1) (docs/decisions.md,
    /// "Circa's sign-test ring").
    /// Protocols: GC sign test on `m − drop_bits` bits, then a bit-times-share product.
    StochasticRelu {
        /// Low bits `k` dropped before the sign test; below `m − 1` once set.
        drop_bits: Option<u8>,
        /// Which way the test may err.
        variant: CircaVariant,
        /// Width m ≤ ℓ of the ring the sign test reads the shares in (`None`: the plan's ℓ).
        test_bits: Option<u8>,
    },
    /// Elementwise `x ≥ 0 ? x : alpha · x`. Protocols: GC.
    LeakyRelu {
        /// Slope for negative inputs; finite.
        alpha: f32,
    },
    /// Elementwise clamp to `[min, max]` (either bound may be absent). Protocols: GC.
    Clip {
        /// Lower bound, if any.
        min: Option<f32>,
        /// Upper bound, if any.
        max: Option<f32>,
    },
    /// Elementwise polynomial `Σ_i coeffs[i] · x^i` (ascending powers), degree ≥ 2.
    /// Protocols: SS with Beaver squares / triples.
    Poly {
        /// `coeffs[i]` multiplies `x^i`; at least three.
        coeffs: Vec<f32>,
    },
    /// Max over each window, padding never selected. Input `[N, C, H, W]`, output `[N, C, H', W']`.
    /// Protocols: GC comparison tree.
    MaxPool {
        /// Kernel size, strides, pads and dilations.
        window: Window2d,
    },
    /// Mean over each window. With `count_include_pad` the divisor is the full kernel size,
    /// otherwise the number of non-padding elements. Input `[N, C, H, W]`.
    /// Protocols: local sum on shares plus a public rescale.
    AvgPool {
        /// Kernel size, strides, pads and dilations.
        window: Window2d,
        /// Divide by the full kernel size, padding included.
        count_include_pad: bool,
    },
    /// Sum over each window (zero padding). Input `[N, C, H, W]`, output `[N, C, H', W']`.
    /// Protocols: local on shares.
    SumPool {
        /// Kernel size, strides, pads and dilations.
        window: Window2d,
    },
    /// Lowers the fixed-point scale by `bits`: `y = ⌊x / 2^bits⌋` on the signed value. Only in
    /// fixed-point graphs. With [`TruncMode::Exact`] it runs inside the garbled circuit that
    /// follows (free and exact); with [`TruncMode::Local`] each party shifts its own share, which
    /// gives `⌊x / 2^bits⌋` or one more, and fails (wraps) with probability about
    /// `2^(bits(|x|) + 1 − ℓ)` (see [`crate::ring::local_truncate`]); with
    /// [`TruncMode::Stochastic`] the garbled ReLU or MaxPool that follows reads the shares
    /// already shifted, `⌊x / 2^bits⌋` or one more, without the wrap.
    Truncate {
        /// How many fractional bits to drop.
        bits: u8,
        /// Inside the next garbled circuit, or on each share.
        mode: TruncMode,
    },
    /// Static gather: output element `i` (row-major, in shape `shape`) is input element
    /// `indices[i]` (row-major). What `Slice` and `Gather` with constant indices lower to.
    /// Protocols: local (data movement).
    Select {
        /// Row-major input index of each output element; `shape`'s product of them.
        indices: Vec<u32>,
        /// Output shape.
        shape: Vec<usize>,
    },
    /// Same elements, row-major order, in shape `shape` (equal element count).
    /// Protocols: local (data movement).
    Reshape {
        /// Output shape; same element count as the input.
        shape: Vec<usize>,
    },
    /// Axis permutation: output axis `i` is input axis `perm[i]`. Protocols: local.
    Transpose {
        /// A permutation of `0..rank`.
        perm: Vec<usize>,
    },
    /// Concatenation of all inputs (≥ 1, same rank, equal except on `axis`) along `axis`.
    /// Protocols: local.
    Concat {
        /// Axis joined along, below the rank.
        axis: usize,
    },
    /// Constant padding: `pads[i]` elements before and `pads[rank + i]` after axis `i`, filled
    /// with `value`. Protocols: local.
    Pad {
        /// `2·rank` counts: all the befores, then all the afters.
        pads: Vec<usize>,
        /// Fill value.
        value: f32,
    },
    /// The one protocol step of the float graph: the server sends its share, and the client
    /// learns the value. Input [`Domain::Shared`] (or already client-side), output
    /// [`Domain::Client`]; same type.
    Reveal,
    /// Softmax over `axis`; with `coerce_2d` (ONNX opset < 13) over all axes from `axis` on,
    /// as one flattened axis. Client-side only (input must be [`Domain::Client`]).
    Softmax {
        /// Axis normalised over (the first one with `coerce_2d`).
        axis: usize,
        /// Treat all axes from `axis` on as one (ONNX opset < 13).
        coerce_2d: bool,
    },
    /// `log(softmax(x))`, same axis rules as [`Op::Softmax`]. Client-side only.
    LogSoftmax {
        /// Axis normalised over (the first one with `coerce_2d`).
        axis: usize,
        /// Treat all axes from `axis` on as one (ONNX opset < 13).
        coerce_2d: bool,
    },
    /// Index of the maximum along `axis` (first one, or last with `select_last_index`), `i64`
    /// output; `keepdims` keeps the axis with size 1. Client-side only.
    ArgMax {
        /// Axis searched.
        axis: usize,
        /// Keep `axis` with size 1 instead of removing it.
        keepdims: bool,
        /// On ties, the last index rather than the first.
        select_last_index: bool,
    },
    /// The logistic function 1 / (1 + e^−x) elementwise, `f32` output, same shape (a binary
    /// classifier's last op). Client-side only: Veil has no two-party protocol for it, so it
    /// runs on the revealed value like [`Op::Softmax`].
    Sigmoid,
    /// Elementwise `a · b` of two computed values: `b` broadcasts to `a`'s shape by ONNX (numpy)
    /// unidirectional rules (`[N, C, 1, 1]` to `[N, C, H, W]` for a squeeze-excite gate). In
    /// fixed point the scales add (`s_a + s_b`), like a linear layer's.
    /// Protocols: SS with one Beaver triple per output element.
    Mul,
    /// The logistic function on shares (a Sigmoid the model computes on: SiLU, squeeze-excite
    /// gates, Tanh), as a piecewise-linear approximation
    /// ([`crate::eval::ring_ops::pl_sigmoid`], largest error
    /// [`crate::eval::ring_ops::PL_SIGMOID_MAX_ERROR`]). Float semantics: the exact logistic
    /// function (the model's); fixed point: the approximation at the operand's scale, output at
    /// the same scale. Protocols: GC, with the preceding exact truncation fused.
    PlSigmoid,
    /// Gelu on shares, as `ReLU(x) − h̃(|x|)` with a piecewise-linear `h̃ ≈ x·Φ(−|x|)`
    /// ([`crate::eval::ring_ops::pl_gelu`], largest error
    /// [`crate::eval::ring_ops::PL_GELU_MAX_ERROR`] from either form). Float semantics: the
    /// model's Gelu, exact (`x·Φ(x)` with erf) or ONNX's `approximate = "tanh"` form when `tanh`;
    /// fixed point: the approximation at the operand's scale, output at the same scale.
    /// Protocols: GC, with the preceding exact truncation fused.
    PlGelu {
        /// Whether the model asks for the tanh form (float semantics only).
        tanh: bool,
    },
    /// `1/√(x + eps)` elementwise on shares (a normalisation's inverse standard deviation, once
    /// per normalised row). Float semantics: exactly that (the operand is a variance, `x ≥ 0`);
    /// fixed point ([`crate::eval::ring_ops::rsqrt`]): `⌊2^S / ⌊√u⌋⌋` for the argument `u` at
    /// the even scale `S = s + (s mod 2)` (a non-positive argument saturates to `2^−s`), output
    /// at scale `⌈s/2⌉`, half the operand's, so it wants a high operand scale. Protocols: GC
    /// (integer square root and division), with the preceding exact truncation fused.
    Rsqrt {
        /// Added to the operand before the root (ONNX's `epsilon`), `≥ 0`.
        eps: f32,
    },
    /// Matrix product `a · b` of two computed values (attention's `Q·Kᵀ`, bilinear layers):
    /// `a` is `[.., m, k]`, `b` is `[.., k, n]` with the same leading (batch) axes, the output
    /// `[.., m, n]`. In fixed point the scales add, like [`Op::Mul`]'s.
    /// Protocols: SS with one matrix Beaver triple `(U, V, U·V)` per batch element.
    MatMul,
    /// Rounds each element to an integer ([`RoundMode`]: ONNX's `Round`, `Floor` and `Ceil`,
    /// a `Cast` of a real to an integer type), then clamps it to `[min, max]` where given
    /// (`QuantizeLinear`: the rounding and the saturation to its type's range in one circuit).
    /// Float semantics: exactly that; fixed point ([`crate::eval::ring_ops::round`]): the same
    /// rounding of the operand's value at its scale `s`, clamped to the bounds encoded at `s`
    /// (one beyond the ring never binds, as a Clip's), output at scale `s` (the low `s` bits
    /// zero), so exact whenever the operand is. Protocols: GC, with the preceding exact
    /// truncation fused.
    ///
    /// With a `zero_point` `z` (QuantizeLinear's, already added to the operand) the rounding is
    /// `round(x − z) + z`: ONNX rounds `x/s` to even *before* adding `z`, so for an odd `z` a
    /// tie goes to the odd neighbour of `x`. Only with [`RoundMode::HalfEven`], for which
    /// nothing else changes (the other modes commute with adding an integer or, toward zero,
    /// do not). The garbled circuit takes each element's `z mod 2` as a server input bit.
    ///
    /// With a `grid` the rounding is onto a small float type's values instead of the integers
    /// ([`FloatGrid`]; [`crate::eval::ring_ops::float_grid`], [`crate::circuit::float_grid_trunc_mask_narrow`]),
    /// the bounds its largest finite value; no zero point.
    Round {
        /// Which integer a value between two goes to.
        mode: RoundMode,
        /// The lower bound after rounding (an integer), if any.
        min: Option<f32>,
        /// The upper bound after rounding (an integer, at least `min`), if any.
        max: Option<f32>,
        /// Integers broadcast to the operand whose parity breaks ties (a server weight, at
        /// scale 0 in fixed point), if any.
        zero_point: Option<Const>,
        /// The float type's grid rounded onto, if not the integers.
        grid: Option<FloatGrid>,
    },
    /// `2^min(x, 0)` elementwise on shares: the exponentials of a Softmax inside the network,
    /// whose operand `(x − max x)·log₂e` is never positive. Float semantics: exactly that;
    /// fixed point ([`crate::eval::ring_ops::exp2`]): chords through sixteen knots per octave,
    /// within [`crate::eval::ring_ops::exp2::EXP2_MAX_ERROR`] plus its rounding, output at the
    /// operand's scale. Protocols: GC, with the preceding exact truncation fused.
    Exp2,
    /// `1/max(x, 1)` elementwise on shares: a Softmax's normaliser, whose operand (a sum of
    /// exponentials one of which is `2^0`) is at least one. Float semantics: exactly that;
    /// fixed point ([`crate::eval::ring_ops::reciprocal`]): the floor of the quotient, output at
    /// the operand's scale. Protocols: GC (long division), with the preceding exact truncation
    /// fused.
    Reciprocal,
    /// `y[.., k] = 1` where `x[..] = k` (or `k − depth`, ONNX's negative index), else 0: the
    /// one-hot rows of integer indices, shape `x ++ [depth]`. An index outside `[−depth, depth)`
    /// gives a zero row. Runs on the client's own plaintext (the operand must be
    /// [`Domain::Client`]): a `Gather` of the server's table by the client's token ids is this,
    /// then a dense layer with the table. The operand is integer-valued (the front end makes
    /// `one_hot` only of integer-typed values); both forms read it rounded to the nearest
    /// integer ([`crate::eval::ring_ops::one_hot`]), output at the operand's scale. Protocols:
    /// none (the client alone).
    OneHot {
        /// The number of rows of the table (the last output axis).
        depth: usize,
    },
}

/// How many inputs an op takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// Exactly this many operands.
    Exactly(usize),
    /// At least this many operands (`concat`).
    AtLeast(usize),
}

impl Op {
    /// Short lower-case mnemonic used by the printers.
    pub fn mnemonic(&self) -> &'static str {
        match self {
            Op::Dense { .. } => "dense",
            Op::Conv2d { .. } => "conv2d",
            Op::Affine { .. } => "affine",
            Op::BatchNorm { .. } => "batchnorm",
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Relu => "relu",
            Op::StochasticRelu { .. } => "stochastic_relu",
            Op::LeakyRelu { .. } => "leaky_relu",
            Op::Clip { .. } => "clip",
            Op::Poly { .. } => "poly",
            Op::MaxPool { .. } => "maxpool",
            Op::AvgPool { .. } => "avgpool",
            Op::SumPool { .. } => "sumpool",
            Op::Truncate { .. } => "truncate",
            Op::Select { .. } => "select",
            Op::Reshape { .. } => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::Concat { .. } => "concat",
            Op::Pad { .. } => "pad",
            Op::Reveal => "reveal",
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::ArgMax { .. } => "argmax",
            Op::Sigmoid => "sigmoid",
            Op::Mul => "mul",
            Op::PlSigmoid => "pl_sigmoid",
            Op::Round { .. } => "round",
            Op::PlGelu { .. } => "pl_gelu",
            Op::Rsqrt { .. } => "rsqrt",
            Op::MatMul => "matmul",
            Op::Exp2 => "exp2",
            Op::Reciprocal => "reciprocal",
            Op::OneHot { .. } => "one_hot",
        }
    }

    /// How many operands the op takes (checked by the builder and the verifier).
    pub fn arity(&self) -> Arity {
        match self {
            Op::Add | Op::Sub | Op::Mul | Op::MatMul => Arity::Exactly(2),
            Op::Concat { .. } => Arity::AtLeast(1),
            _ => Arity::Exactly(1),
        }
    }

    /// Whether the op runs on the client after [`Op::Reveal`].
    pub fn is_client_side(&self) -> bool {
        matches!(self, Op::Softmax { .. } | Op::LogSoftmax { .. } | Op::ArgMax { .. } | Op::Sigmoid)
    }

    /// The constants the op reads, in a fixed order.
    pub fn consts(&self) -> Vec<Const> {
        match self {
            Op::Dense { weight, bias } | Op::Conv2d { weight, bias, .. } => {
                std::iter::once(*weight).chain(*bias).collect()
            }
            Op::Affine { scale, shift } => scale.iter().chain(shift.iter()).copied().collect(),
            Op::Round { zero_point, .. } => zero_point.iter().copied().collect(),
            Op::BatchNorm { scale, bias, mean, var, .. } => vec![*scale, *bias, *mean, *var],
            _ => Vec::new(),
        }
    }

    /// The domain of the output given the operands' domains, or an error naming the rule broken.
    pub fn output_domain(&self, inputs: &[Domain], consts: &Arena<Constant>) -> Result<Domain, String> {
        if let Op::Reveal = self {
            return match inputs {
                [Domain::Shared | Domain::Client] => Ok(Domain::Client),
                [d] => Err(format!("reveal of a {d} value")),
                _ => Err("reveal takes one operand".into()),
            };
        }
        if matches!(self, Op::OneHot { .. }) && inputs != [Domain::Client] {
            return Err("one_hot runs on the client's own plaintext and needs a client operand".into());
        }
        if self.is_client_side() && inputs.iter().any(|d| *d != Domain::Client) {
            return Err(format!("{} runs on the client and needs a revealed (client) operand", self.mnemonic()));
        }
        let mut d = inputs.iter().copied().fold(Domain::Public, Domain::join);
        for c in self.consts() {
            d = d.join(consts.try_get(c).map_or(Domain::Server, |c| c.domain));
        }
        Ok(d)
    }
}

pub use crate::op_infer::{check_broadcast, poly_scales};
