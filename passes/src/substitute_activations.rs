//! `substitute_activations`: chooses how each ReLU is computed, per the activation policy.
//!
//! Requires a verified graph. Each `relu` stays an exact GC ReLU (`relu`), becomes Circa's
//! `stochastic_relu` (drop bits from `--drop-bits`, or chosen by `quantize` per layer), or the
//! polynomial `a·x² + b·x + c` (`poly`), by `--activation` unless `--layer NAME=...` names the
//! node. `poly` nodes from a model trained with polynomials, `leaky_relu`, `clip` and `maxpool`
//! are left as they are. Changes float semantics exactly where a ReLU becomes a polynomial.
//!
//! Under `--nonlinear ot`, an exact ReLU that reads a MaxPool (`ReLU(MaxPool(x))`, as in
//! `F.relu(F.max_pool2d(conv(x), 2))`) moves before it: `MaxPool(ReLU(x))` is the same value
//! (ReLU is monotone, so it commutes with a maximum, padded or not), and then the MaxPool reads
//! non-negative values and runs over OT as a max tree, and the ReLU takes the convolution's
//! truncation; left in place, the MaxPool of signed values with a truncation pending would be a
//! garbled circuit. The ReLU then runs on the pool's input, more elements than its output.

use veil_ir::{Graph, NodeId, Op};

use crate::{Activation, NonlinearChoice, Options, PassError, Report};

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
    if opts.nonlinear == NonlinearChoice::Ot {
        let moved = relus_before_pools(g);
        if moved > 0 {
            report.note(format!(
                "{moved} ReLU(s) moved before the MaxPool they read (the same values): both run over OT"
            ));
        }
    }
    for ((layers, elems), what) in counts.iter().zip(["exact GC ReLU", "Circa stochastic ReLU", "polynomial"]) {
        if *layers > 0 {
            report.note(format!("{layers} layer(s), {elems} activation(s): {what}"));
        }
    }
    Ok(report)
}

/// Rewrites each `ReLU(MaxPool(x))` whose pool output only the exact ReLU reads (and is no graph
/// output) into `MaxPool(ReLU(x))`, in place: the pool node becomes the ReLU (its output value
/// takes the input's type) and the ReLU node the pool, each keeping its op's name. Returns how
/// many moved.
fn relus_before_pools(g: &mut Graph) -> usize {
    let pairs: Vec<(NodeId, NodeId)> = g
        .body
        .iter()
        .copied()
        .filter(|&r| matches!(g.nodes[r].op, Op::Relu))
        .filter_map(|r| {
            let p = g.nodes[r].inputs[0];
            let m = g.def_node(p)?;
            (g.has_single_user(p) && matches!(g.nodes[m].op, Op::MaxPool { .. })).then_some((m, r))
        })
        .collect();
    for &(m, r) in &pairs {
        let x = g.nodes[m].inputs[0];
        let p = g.nodes[m].output;
        g.values[p].ty = g.values[x].ty.clone();
        let pool = std::mem::replace(&mut g.nodes[m].op, Op::Relu);
        g.nodes[r].op = pool;
        let (a, b) = (g.nodes[m].name.clone(), g.nodes[r].name.clone());
        g.nodes[m].name = b;
        g.nodes[r].name = a;
    }
    pairs.len()
}
