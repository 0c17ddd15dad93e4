//! The typing rules of [`Op`]: the output type (shape and element type, with the fixed-point
//! scales) of each op for its operands' types. The single definition of every op's typing rule:
//! builders and the verifier use it.

use crate::arena::Arena;
use crate::op::{Arity, Const, Constant, Op, RoundMode};
use crate::types::{ElemType, TensorType};

impl Op {
    /// The output type for operands of types `inputs`, or an error stating the typing rule broken.
    /// This is the single definition of every op's typing rule: builders and the verifier use it.
    pub fn infer(&self, inputs: &[&TensorType], consts: &Arena<Constant>) -> Result<TensorType, String> {
        let mut t = self.infer_shape(inputs, consts)?;
        t.elem = self.infer_elem(inputs, consts)?;
        Ok(t)
    }

    /// The element-type rule. Float graphs: constants are float, results `f32`. Fixed-point
    /// graphs (after `quantize`): every constant an op reads is quantized, and scales add up as
    /// each variant documents; client-side ops decode to `f32` (`i64` for `ArgMax`).
    fn infer_elem(&self, inputs: &[&TensorType], consts: &Arena<Constant>) -> Result<ElemType, String> {
        let cfb = |c: Const| consts[c].frac_bits;
        let x = inputs[0].elem;
        match self {
            Op::ArgMax { .. } => return Ok(ElemType::I64),
            Op::Softmax { .. } | Op::LogSoftmax { .. } | Op::Sigmoid => return Ok(ElemType::F32),
            _ => {}
        }
        let s = match x {
            ElemType::F32 => {
                if let Some(c) = self.consts().into_iter().find(|&c| cfb(c).is_some()) {
                    return Err(format!("constant @{} is quantized but the operand is float", c.index()));
                }
                if let Op::Truncate { .. } = self {
                    return Err("truncate needs a fixed-point operand".into());
                }
                return Ok(ElemType::F32);
            }
            ElemType::I64 => return Err("operand must be numeric, not i64".into()),
            ElemType::Fixed { frac_bits } => frac_bits,
        };
        let fixed = |bits: u32| -> Result<ElemType, String> {
            u8::try_from(bits)
                .ok()
                .filter(|&b| b <= 120)
                .map(|frac_bits| ElemType::Fixed { frac_bits })
                .ok_or_else(|| format!("scale {bits} is out of range"))
        };
        let quantized = |c: Const| {
            cfb(c).ok_or_else(|| format!("constant @{} is not quantized but the operand is fixed-point", c.index()))
        };
        let expect = |c: Option<Const>, want: u32, what: &str| -> Result<(), String> {
            match c {
                Some(c) if quantized(c)? as u32 != want => {
                    Err(format!("{what} @{} has scale {}, expected {want}", c.index(), quantized(c)?))
                }
                _ => Ok(()),
            }
        };
        let s32 = s as u32;
        match self {
            Op::Dense { weight, bias } | Op::Conv2d { weight, bias, .. } => {
                let out = s32 + quantized(*weight)? as u32;
                expect(*bias, out, "bias")?;
                fixed(out)
            }
            Op::Affine { scale, shift } => {
                let out = s32 + scale.map(quantized).transpose()?.unwrap_or(0) as u32;
                expect(*shift, out, "shift")?;
                fixed(out)
            }
            Op::Round { zero_point, .. } => {
                expect(*zero_point, 0, "zero point")?;
                fixed(s32)
            }
            Op::BatchNorm { .. } | Op::AvgPool { .. } => Err(format!(
                "{} has no fixed-point form (run fold_batchnorm and normalize_linear first)",
                self.mnemonic()
            )),
            Op::Poly { coeffs } => fixed(poly_scales(coeffs, s).1),
            Op::Rsqrt { .. } => fixed(crate::eval::ring_ops::rsqrt::output_scale(s) as u32),
            Op::Mul | Op::MatMul => match inputs[1].elem {
                ElemType::Fixed { frac_bits } => fixed(s32 + frac_bits as u32),
                other => Err(format!("operands must both be fixed-point, got {} and {other}", inputs[0].elem)),
            },
            Op::Truncate { bits, .. } => {
                if *bits > s {
                    return Err(format!("cannot truncate {bits} bits from scale {s}"));
                }
                fixed(s32 - *bits as u32)
            }
            Op::StochasticRelu { drop_bits: None, .. } => {
                Err("drop_bits must be chosen before fixed-point execution".into())
            }
            _ => Ok(ElemType::Fixed { frac_bits: s }),
        }
    }

    fn infer_shape(&self, inputs: &[&TensorType], consts: &Arena<Constant>) -> Result<TensorType, String> {
        match self.arity() {
            Arity::Exactly(n) if inputs.len() != n => {
                return Err(format!("takes {n} operand(s), got {}", inputs.len()));
            }
            Arity::AtLeast(n) if inputs.len() < n => {
                return Err(format!("takes at least {n} operand(s), got {}", inputs.len()));
            }
            _ => {}
        }
        for c in self.consts() {
            let k = consts.try_get(c).ok_or_else(|| format!("constant @{} does not exist", c.index()))?;
            if !k.data.is_empty() && k.data.len() != k.shape.iter().product::<usize>() {
                return Err(format!("constant @{} has {} values for shape {:?}", c.index(), k.data.len(), k.shape));
            }
        }
        let shape = |c: Const| consts[c].shape.clone();
        let x = inputs[0];
        let float_only = |x: &TensorType| -> Result<(), String> {
            if x.elem == ElemType::I64 { Err("operand must be numeric, not i64".into()) } else { Ok(()) }
        };
        float_only(x)?;
        let same = |t: Vec<usize>| Ok(TensorType { elem: x.elem, shape: t });
        match self {
            Op::Dense { weight, bias } => {
                let w = shape(*weight);
                let [n, k] = w[..] else { return Err(format!("weight must be [N, K], got {w:?}")) };
                if x.shape.last() != Some(&k) {
                    return Err(format!("input {:?} does not end in K = {k}", x.shape));
                }
                check_bias(*bias, n, consts)?;
                let mut s = x.shape.clone();
                *s.last_mut().expect("rank checked above") = n;
                same(s)
            }
            Op::Conv2d { weight, bias, window, groups } => {
                let [n, c, h, wd] = x.shape[..] else {
                    return Err(format!("input must be [N, C, H, W], got {:?}", x.shape));
                };
                let w = shape(*weight);
                let [m, cg, kh, kw] = w[..] else {
                    return Err(format!("weight must be [M, C/groups, kh, kw], got {w:?}"));
                };
                if *groups == 0 || c % groups != 0 || m % groups != 0 || cg * groups != c {
                    return Err(format!(
                        "{c} input channels, {m} output channels and weight {w:?} do not fit groups = {groups}"
                    ));
                }
                if window.kernel != [kh, kw] {
                    return Err(format!("kernel {:?} does not match weight {w:?}", window.kernel));
                }
                check_bias(*bias, m, consts)?;
                let [oh, ow] = window.output_hw([h, wd])?;
                same(vec![n, m, oh, ow])
            }
            Op::Affine { scale, shift } => {
                if scale.is_none() && shift.is_none() {
                    return Err("needs a scale or a shift".into());
                }
                for c in scale.iter().chain(shift.iter()) {
                    check_broadcast(&shape(*c), &x.shape)?;
                }
                same(x.shape.clone())
            }
            Op::BatchNorm { scale, bias, mean, var, epsilon } => {
                if x.rank() < 2 {
                    return Err(format!("input must have rank ≥ 2, got {:?}", x.shape));
                }
                for c in [scale, bias, mean, var] {
                    if shape(*c) != [x.shape[1]] {
                        return Err(format!("parameter @{} must be [{}], got {:?}", c.index(), x.shape[1], shape(*c)));
                    }
                }
                if epsilon.is_nan() || *epsilon < 0.0 {
                    return Err(format!("epsilon must be ≥ 0, got {epsilon}"));
                }
                same(x.shape.clone())
            }
            Op::Add | Op::Sub => {
                if inputs[1] != x {
                    return Err(format!("operands must have one type, got {x} and {}", inputs[1]));
                }
                same(x.shape.clone())
            }
            Op::Mul => {
                let y = inputs[1];
                if (x.elem == ElemType::F32) != (y.elem == ElemType::F32) {
                    return Err(format!("operands must both be float or both fixed-point, got {x} and {y}"));
                }
                check_broadcast(&y.shape, &x.shape)?;
                same(x.shape.clone())
            }
            Op::MatMul => {
                let y = inputs[1];
                if (x.elem == ElemType::F32) != (y.elem == ElemType::F32) {
                    return Err(format!("operands must both be float or both fixed-point, got {x} and {y}"));
                }
                let r = x.rank();
                if r < 2 || y.rank() != r || x.shape[..r - 2] != y.shape[..r - 2] || x.shape[r - 1] != y.shape[r - 2] {
                    return Err(format!(
                        "operands must be [.., m, k] and [.., k, n] with the same leading axes, got {x} and {y}"
                    ));
                }
                let mut s = x.shape.clone();
                s[r - 1] = y.shape[r - 1];
                same(s)
            }
            Op::Relu
            | Op::Reveal
            | Op::Truncate { .. }
            | Op::Sigmoid
            | Op::PlSigmoid
            | Op::PlGelu { .. }
            | Op::Exp2
            | Op::Reciprocal => same(x.shape.clone()),
            Op::OneHot { depth } => {
                if *depth == 0 || *depth > u32::MAX as usize {
                    return Err(format!("depth {depth} must be between 1 and 2^32 − 1"));
                }
                same([&x.shape[..], &[*depth]].concat())
            }
            Op::Round { mode, min, max, zero_point, grid } => {
                if grid.is_some() && zero_point.is_some() {
                    return Err("a rounding onto a float grid takes no zero point".into());
                }
                if let (Some(lo), Some(hi)) = (min, max)
                    && !(lo.is_finite() && hi.is_finite() && lo <= hi)
                {
                    return Err(format!("bounds must be finite with min ≤ max, got {lo} and {hi}"));
                }
                if let Some(z) = zero_point {
                    if *mode != RoundMode::HalfEven {
                        return Err(format!(
                            "a zero point breaks ties, so it needs mode half_even, not {}",
                            mode.as_str()
                        ));
                    }
                    check_broadcast(&shape(*z), &x.shape)?;
                }
                same(x.shape.clone())
            }
            Op::Rsqrt { eps } => {
                if !eps.is_finite() || *eps < 0.0 {
                    return Err(format!("eps must be finite and ≥ 0, got {eps}"));
                }
                same(x.shape.clone())
            }
            Op::StochasticRelu { drop_bits, test_bits, .. } => {
                if drop_bits.is_some_and(|k| k >= 62) {
                    return Err(format!("drop_bits {drop_bits:?} must be below the ring width"));
                }
                if let (Some(k), Some(m)) = (drop_bits, test_bits)
                    && (*m > crate::ring::MAX_RING_BITS || k + 1 >= *m)
                {
                    return Err(format!(
                        "test_bits {m} must exceed drop_bits {k} + 1 and be at most {}",
                        crate::ring::MAX_RING_BITS
                    ));
                }
                same(x.shape.clone())
            }
            Op::LeakyRelu { alpha } => {
                if !alpha.is_finite() {
                    return Err("alpha must be finite".into());
                }
                same(x.shape.clone())
            }
            Op::Clip { min, max } => {
                if let (Some(a), Some(b)) = (min, max)
                    && a > b
                {
                    return Err(format!("min {a} exceeds max {b}"));
                }
                same(x.shape.clone())
            }
            Op::Poly { coeffs } => {
                if coeffs.len() < 3 || coeffs.iter().any(|c| !c.is_finite()) {
                    return Err(format!("needs finite coefficients of degree ≥ 2, got {coeffs:?}"));
                }
                same(x.shape.clone())
            }
            Op::MaxPool { window } | Op::AvgPool { window, .. } | Op::SumPool { window } => {
                let [n, c, h, w] = x.shape[..] else {
                    return Err(format!("input must be [N, C, H, W], got {:?}", x.shape));
                };
                if window.pads[0] >= window.kernel[0] * window.dilations[0]
                    || window.pads[1] >= window.kernel[1] * window.dilations[1]
                {
                    return Err(format!("pads {:?} must be smaller than kernel {:?}", window.pads, window.kernel));
                }
                let [oh, ow] = window.output_hw([h, w])?;
                same(vec![n, c, oh, ow])
            }
            Op::Reshape { shape } => {
                if shape.iter().product::<usize>() != x.len() {
                    return Err(format!("cannot reshape {:?} ({} elements) to {shape:?}", x.shape, x.len()));
                }
                same(shape.clone())
            }
            Op::Select { indices, shape } => {
                if shape.iter().product::<usize>() != indices.len() {
                    return Err(format!("{} indices for shape {shape:?}", indices.len()));
                }
                if let Some(i) = indices.iter().find(|&&i| i as usize >= x.len()) {
                    return Err(format!("index {i} is out of range for {} elements", x.len()));
                }
                same(shape.clone())
            }
            Op::Transpose { perm } => {
                let mut seen = vec![false; x.rank()];
                if perm.len() != x.rank()
                    || perm.iter().any(|&p| p >= x.rank() || std::mem::replace(&mut seen[p], true))
                {
                    return Err(format!("perm {perm:?} is not a permutation of rank {}", x.rank()));
                }
                same(perm.iter().map(|&p| x.shape[p]).collect())
            }
            Op::Concat { axis } => {
                if *axis >= x.rank() {
                    return Err(format!("axis {axis} out of range for rank {}", x.rank()));
                }
                let mut s = x.shape.clone();
                for t in &inputs[1..] {
                    let fits = t.elem == x.elem
                        && t.rank() == x.rank()
                        && (0..x.rank()).all(|i| i == *axis || t.shape[i] == x.shape[i]);
                    if !fits {
                        return Err(format!("operand {t} does not concatenate with {x} on axis {axis}"));
                    }
                    s[*axis] += t.shape[*axis];
                }
                same(s)
            }
            Op::Pad { pads, value } => {
                if pads.len() != 2 * x.rank() || !value.is_finite() {
                    return Err(format!("needs 2 × rank = {} pads and a finite value, got {pads:?}", 2 * x.rank()));
                }
                same((0..x.rank()).map(|i| x.shape[i] + pads[i] + pads[x.rank() + i]).collect())
            }
            Op::Softmax { axis, .. } | Op::LogSoftmax { axis, .. } => {
                if *axis >= x.rank() {
                    return Err(format!("axis {axis} out of range for rank {}", x.rank()));
                }
                same(x.shape.clone())
            }
            Op::ArgMax { axis, keepdims, .. } => {
                if *axis >= x.rank() {
                    return Err(format!("axis {axis} out of range for rank {}", x.rank()));
                }
                let mut s = x.shape.clone();
                if *keepdims {
                    s[*axis] = 1;
                } else {
                    s.remove(*axis);
                }
                Ok(TensorType { elem: ElemType::I64, shape: s })
            }
        }
    }
}

/// Fixed-point form of [`Op::Poly`] at input scale `s`: the scale `fc` of the coefficients (0
/// when they are all integers, else `s`) and the output scale `deg·s + fc`. Coefficient `i` is
/// quantized at `(deg − i)·s + fc`, so every term lands on the output scale.
pub fn poly_scales(coeffs: &[f32], s: u8) -> (u32, u32) {
    let deg = coeffs.len().saturating_sub(1) as u32;
    let fc = if coeffs.iter().all(|c| c.fract() == 0.0) { 0 } else { s as u32 };
    (fc, deg * s as u32 + fc)
}

fn check_bias(bias: Option<Const>, n: usize, consts: &Arena<Constant>) -> Result<(), String> {
    match bias {
        Some(b) if consts[b].shape != [n] => Err(format!("bias must be [{n}], got {:?}", consts[b].shape)),
        _ => Ok(()),
    }
}

/// Whether `c` broadcasts to `x` without changing `x` (ONNX unidirectional broadcasting).
pub fn check_broadcast(c: &[usize], x: &[usize]) -> Result<(), String> {
    if c.len() > x.len() {
        return Err(format!("constant {c:?} has higher rank than operand {x:?}"));
    }
    let off = x.len() - c.len();
    for (i, &d) in c.iter().enumerate() {
        if d != 1 && d != x[off + i] {
            return Err(format!("constant {c:?} does not broadcast to {x:?}"));
        }
    }
    Ok(())
}
