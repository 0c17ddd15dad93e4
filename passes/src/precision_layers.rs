//! Per-layer `F` (issue 16), the second half of the precision search: once
//! [`crate::precision::choose`] has the smallest global `F` meeting the error target, lower `F`
//! one bit at a time in the layers that set the ring width, as long as the ring narrows and the
//! target still holds.
//!
//! **Why there.** The ring ℓ is the widest value's bits plus the headroom (`quantize`). That
//! value is the largest in magnitude at the highest scale, typically a linear layer's
//! pre-truncation output at `s + F` (or a residual sum of one): a large value keeps its relative
//! precision with fewer fractional bits, while every garbled circuit, label, OT correlation and
//! HE ciphertext of the plan shrinks with ℓ. Layers that do not set ℓ keep the global `F`:
//! lowering them saves nothing.
//!
//! **A step.** `quantize` reports the values needing the most bits when they set ℓ
//! ([`crate::quantize::run_detailed`]). Their *origins* are the nodes whose `F` gave them their
//! scale ([`origins`]); each origin's `F` drops by one ([`Options::layer_frac_bits`]), so a
//! linear layer and the activation feeding it drop together (the activation's fused exact
//! truncation absorbs the extra bit, and no local truncation appears). The step is kept if the
//! plan's ℓ is narrower and the simulated error (the same samples, reference and measure as the
//! global search) is still at most the target; the search stops at the first step that is not,
//! or after [`MAX_STEPS`]. A refused step costs one `quantize` and at most one batch of samples.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use veil_ir::{Graph, Op, Tensor, ValueId};

use crate::precision::{MIN_FRAC_BITS, measure_until};
use crate::range::RangeSource;
use crate::{Options, PassError};

/// Steps tried at most (each narrows ℓ by at least one bit).
pub const MAX_STEPS: usize = 8;

/// What the per-layer search kept.
#[derive(Clone, Debug, PartialEq)]
pub struct Layers {
    /// Nodes whose `F` is lower than the global one, with their `F`.
    pub frac_bits: BTreeMap<String, u8>,
    /// The ring width with those.
    pub ring_bits: u8,
    /// The error reached with those (a fraction of the output range).
    pub error: f64,
}

/// The samples and reference the search measures on.
pub struct Measure<'a> {
    /// Sample inputs, one `Vec` (every graph input) per sample.
    pub xs: &'a [Vec<Tensor>],
    /// The float outputs per sample.
    pub reference: &'a [Vec<Tensor>],
    /// The target (a fraction of the output range).
    pub max_error: f64,
}

/// From the global choice (`frac`, its ring `ring` and error `error`), lowers `F` where it
/// narrows the ring (see the module doc). `base` is the graph after `substitute_activations`.
pub fn refine(
    base: &Graph,
    opts: &Options,
    bounds: &(Vec<f64>, RangeSource),
    (frac, ring, error): (u8, u8, f64),
    m: &Measure<'_>,
) -> Result<Layers, PassError> {
    let mut kept = Layers { frac_bits: BTreeMap::new(), ring_bits: ring, error };
    let at = |layer: &BTreeMap<String, u8>| Options { frac_bits: frac, layer_frac_bits: layer.clone(), ..opts.clone() };
    let mut g = base.clone();
    let (_, mut widest) = crate::quantize::run_detailed(&mut g, &at(&kept.frac_bits), Some(bounds))?;
    for _ in 0..MAX_STEPS {
        let Some(values) = widest.take() else { break };
        let names = origins(&g, &values);
        if names.is_empty() {
            break;
        }
        let mut trial = kept.frac_bits.clone();
        for n in &names {
            let f = trial.get(n).copied().unwrap_or(frac);
            if f <= MIN_FRAC_BITS {
                return Ok(kept);
            }
            trial.insert(n.clone(), f - 1);
        }
        let mut t = base.clone();
        let opts_t = at(&trial);
        let quantized = crate::quantize::run_detailed(&mut t, &opts_t, Some(bounds));
        let next = match quantized {
            Err(PassError::Rejected { .. }) => break,
            Err(e) => return Err(e),
            Ok((_, next)) => next,
        };
        // Origins read the truncations `quantize` named after their node: keep the plan from
        // before `fuse_truncation` for the next step.
        let pre = t.clone();
        crate::precision::after_quantize(&mut t, &opts_t)?;
        let ring_t = t.ring_bits.expect("quantized");
        if ring_t >= kept.ring_bits {
            break;
        }
        let (e, _) = measure_until(&t, m.xs, m.reference, m.max_error)?;
        if e > m.max_error {
            break;
        }
        (kept.frac_bits, kept.ring_bits, kept.error) = (trial, ring_t, e);
        (g, widest) = (pre, next);
    }
    Ok(kept)
}

/// The nodes (of the float graph, by name) whose `F` gave `values` of quantized graph `g` their
/// scale: a truncation `quantize` inserted for node `X` (named `X/truncate`) comes from `X`; an
/// op that lowers its operands to its own `F` (linear layers, products, the garbled and
/// polynomial activations) from itself and from where its operands' scales came; an alignment
/// (`X/align`) from nothing, as it only follows the other operands of a sum; anything else (sums,
/// data movement, sum pools) from its operands' origins. Graph inputs, at the global `F`, have
/// none.
pub fn origins(g: &Graph, values: &[ValueId]) -> BTreeSet<String> {
    let mut memo: HashMap<ValueId, BTreeSet<String>> = HashMap::new();
    let mut out = BTreeSet::new();
    for &v in values {
        out.extend(origin(g, v, &mut memo));
    }
    out
}

fn origin(g: &Graph, v: ValueId, memo: &mut HashMap<ValueId, BTreeSet<String>>) -> BTreeSet<String> {
    if let Some(s) = memo.get(&v) {
        return s.clone();
    }
    let Some(n) = g.producer(v) else { return BTreeSet::new() };
    let set = if let Some(x) = n.name.strip_suffix("/truncate") {
        BTreeSet::from([x.to_string()])
    } else if n.name.ends_with("/align") {
        BTreeSet::new()
    } else {
        let mut s: BTreeSet<String> = BTreeSet::new();
        for &u in &n.inputs {
            s.extend(origin(g, u, memo));
        }
        let own = matches!(
            n.op,
            Op::Dense { .. }
                | Op::Conv2d { .. }
                | Op::Affine { scale: Some(_), .. }
                | Op::Mul
                | Op::MatMul
                | Op::Poly { .. }
                | Op::Relu
                | Op::MaxPool { .. }
                | Op::Clip { .. }
                | Op::LeakyRelu { .. }
                | Op::PlSigmoid
                | Op::PlGelu { .. }
                | Op::Rsqrt { .. }
                | Op::Round { .. }
                | Op::Exp2
                | Op::Reciprocal
        );
        if own {
            s.insert(n.name.clone());
        }
        s
    };
    memo.insert(v, set.clone());
    set
}
