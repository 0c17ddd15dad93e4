//! `substitute_activations`: chooses how each ReLU is computed, per the activation policy.
//!
//! Requires a verified graph. Each `relu` stays an exact GC ReLU (`relu`), becomes Circa's
//! `stochastic_relu` (drop bits from `--drop-bits`, or chosen by `quantize` per layer), or the
//! polynomial `a·x² + b·x + c` (`poly`), by `--activation` unless `--layer NAME=...` names the
//! node. `poly` nodes from a model trained with polynomials, `leaky_relu`, `clip` and `maxpool`
//! are left as they are. Changes float semantics exactly where a ReLU becomes a polynomial.

use veil_ir::{Graph, Op};

use crate::{Activation, Options, PassError, Report};

pub fn run(g: &mut Graph, opts: &Options) -> Result<Report, PassError> {
    let relus: Vec<_> = g.body.iter().copied().filter(|&n| matches!(g.nodes[n].op, Op::Relu)).collect();
    let names: Vec<&str> = relus.iter().map(|&n| g.nodes[n].name.as_str()).collect();
    let unknown: Vec<&String> = opts.layer_activation.keys().filter(|k| !names.contains(&k.as_str())).collect();
    if !unknown.is_empty() {
        return Err(PassError::Rejected {
            pass: crate::Pass::SubstituteActivations,
            reason: format!(
                "--layer names {} but the model has no ReLU node by that name; its ReLU nodes are: {}",
                unknown.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", "),
                if names.is_empty() { "(none)".to_string() } else { names.join(", ") }
            ),
        });
    }
    let [a, b, c] = opts.poly;
    if !(a.is_finite() && b.is_finite() && c.is_finite()) || a == 0.0 {
        return Err(PassError::Rejected {
            pass: crate::Pass::SubstituteActivations,
            reason: format!("--poly {a},{b},{c}: coefficients must be finite and a ≠ 0"),
        });
    }
    let mut counts = [(0usize, 0usize); 3];
    for n in relus {
        let policy = opts.layer_activation.get(&g.nodes[n].name).copied().unwrap_or(opts.activation);
        let elems = g.values[g.nodes[n].output].ty.len();
        let (slot, op) = match policy {
            Activation::Relu => (0, Op::Relu),
            Activation::Circa => {
                (1, Op::StochasticRelu { drop_bits: opts.drop_bits, variant: opts.circa_variant, test_bits: None })
            }
            Activation::Poly => (2, Op::Poly { coeffs: vec![c, b, a] }),
        };
        g.nodes[n].op = op;
        counts[slot].0 += 1;
        counts[slot].1 += elems;
    }
    let mut report = Report::default();
    for ((layers, elems), what) in counts.iter().zip(["exact GC ReLU", "Circa stochastic ReLU", "polynomial"]) {
        if *layers > 0 {
            report.note(format!("{layers} layer(s), {elems} activation(s): {what}"));
        }
    }
    Ok(report)
}
