//! `fold_constants`: removes data movement and arithmetic that does nothing, and merges chains.
//!
//! Requires a verified graph. Does: drops reshapes to the same shape and identity transposes;
//! composes reshape∘reshape and transpose∘transpose; merges an `affine` into a following
//! `affine` when it has no other reader; drops affines that multiply by one and add zero;
//! removes nodes nobody reads. Preserves float semantics exactly (up to f32 rounding of merged
//! affine constants). Does not: evaluate constant subgraphs (the front end already has: the IR
//! has no constant-only nodes), or touch linear layers (see `normalize_linear`).

use veil_ir::{Domain, Graph, Op, check_broadcast};

use crate::util::{derived_const, sole_producer};
use crate::{Options, PassError, Report};

/// Broadcast shape of two constants that both broadcast to the same operand.
fn joint_shape(a: &[usize], b: &[usize]) -> Vec<usize> {
    let r = a.len().max(b.len());
    (0..r)
        .map(|i| {
            let da = if i + a.len() >= r { a[i + a.len() - r] } else { 1 };
            let db = if i + b.len() >= r { b[i + b.len() - r] } else { 1 };
            da.max(db)
        })
        .collect()
}

/// Values of constant `c` broadcast to `shape`.
fn expand(g: &Graph, c: Option<veil_ir::Const>, shape: &[usize], default: f32) -> Vec<f32> {
    let n = shape.iter().product();
    match c {
        None => vec![default; n],
        Some(c) => {
            let at = veil_ir::eval::kernels::broadcast_index(&g.consts[c].shape, shape);
            (0..n).map(|i| g.consts[c].data[at(i)]).collect()
        }
    }
}

pub fn run(g: &mut Graph, _: &Options) -> Result<Report, PassError> {
    let mut report = Report::default();
    let (mut dropped, mut merged) = (0, 0);
    for n in g.body.clone() {
        let x = g.nodes[n].inputs.first().copied();
        let out = g.nodes[n].output;
        match g.nodes[n].op.clone() {
            Op::Reshape { shape } => {
                let x = x.expect("reshape has an operand");
                if let Some(p) = g.def_node(x)
                    && matches!(g.nodes[p].op, Op::Reshape { .. })
                {
                    g.nodes[n].inputs[0] = g.nodes[p].inputs[0];
                    merged += 1;
                }
                if g.values[g.nodes[n].inputs[0]].ty.shape == shape {
                    let src = g.nodes[n].inputs[0];
                    g.replace_uses(out, src);
                    g.remove_node(n);
                    dropped += 1;
                }
            }
            Op::Transpose { perm } => {
                let x = x.expect("transpose has an operand");
                let mut perm = perm;
                if let Some(p) = g.def_node(x)
                    && let Op::Transpose { perm: inner } = &g.nodes[p].op
                {
                    perm = perm.iter().map(|&i| inner[i]).collect();
                    g.nodes[n].inputs[0] = g.nodes[p].inputs[0];
                    g.nodes[n].op = Op::Transpose { perm: perm.clone() };
                    merged += 1;
                }
                if perm.iter().enumerate().all(|(i, &p)| i == p) {
                    let src = g.nodes[n].inputs[0];
                    g.replace_uses(out, src);
                    g.remove_node(n);
                    dropped += 1;
                }
            }
            Op::Affine { scale, shift } => {
                let x = x.expect("affine has an operand");
                let shape = g.values[x].ty.shape.clone();
                let (mut scale, mut shift) = (scale, shift);
                if let Some(p) = sole_producer(g, x)
                    && let Op::Affine { scale: s1, shift: t1 } = g.nodes[p].op.clone()
                {
                    // (x·s1 + t1)·s2 + t2 = x·(s1·s2) + (t1·s2 + t2)
                    let cs: Vec<_> = [s1, t1, scale, shift].into_iter().flatten().collect();
                    let js = cs.iter().fold(Vec::new(), |acc, &c| joint_shape(&acc, &g.consts[c].shape));
                    let (a1, b1, a2, b2) = (
                        expand(g, s1, &js, 1.0),
                        expand(g, t1, &js, 0.0),
                        expand(g, scale, &js, 1.0),
                        expand(g, shift, &js, 0.0),
                    );
                    // Secret if any part is: the merged constants take the most private domain.
                    let like = *cs.iter().max_by_key(|&&c| g.consts[c].domain).expect("an affine has a constant");
                    let name = g.nodes[n].name.clone();
                    let s = (0..a1.len()).map(|i| a1[i] * a2[i]).collect();
                    let t = (0..a1.len()).map(|i| b1[i] * a2[i] + b2[i]).collect();
                    // Two shifts stay a shift (a scale of ones would be a server-private
                    // elementwise product on shares), two scales a scale.
                    let scaled = s1.is_some() || scale.is_some();
                    let shifted = t1.is_some() || shift.is_some();
                    scale = scaled.then(|| derived_const(g, like, format!("{name}.scale"), js.clone(), s));
                    shift = shifted.then(|| derived_const(g, like, format!("{name}.shift"), js.clone(), t));
                    debug_assert!(check_broadcast(&js, &shape).is_ok());
                    g.nodes[n].inputs[0] = g.nodes[p].inputs[0];
                    g.nodes[n].op = Op::Affine { scale, shift };
                    g.remove_node(p);
                    merged += 1;
                }
                // Only public constants: whether a weight is trivial must not show in the plan.
                let one = |c: Option<veil_ir::Const>, v: f32| {
                    c.is_none_or(|c| g.consts[c].domain == Domain::Public && g.consts[c].data.iter().all(|&d| d == v))
                };
                if one(scale, 1.0) && one(shift, 0.0) {
                    let src = g.nodes[n].inputs[0];
                    g.replace_uses(out, src);
                    g.remove_node(n);
                    dropped += 1;
                }
            }
            _ => {}
        }
    }
    let dead = g.remove_dead();
    // Domains follow the operands again, and a reveal of what is now the client's goes (a
    // dropped or merged node may be what made a value shared).
    g.refresh_domains();
    if merged + dropped + dead > 0 {
        report
            .note(format!("merged {merged} chained op(s), dropped {dropped} no-op(s), removed {dead} unused node(s)"));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_ir::{Domain, Tensor, TensorType, eval::run_float, verify};

    #[test]
    fn chains_of_reshapes_transposes_and_affines_collapse() {
        let mut g = Graph::new("t");
        let x = g.add_input("x", TensorType::f32(vec![2, 3]));
        let s = g.add_const("s", vec![3], Domain::Server, vec![2.0, 3.0, 4.0]);
        let t = g.add_const("t", vec![], Domain::Server, vec![1.0]);
        let a = g.add_node("a1", "a", Op::Affine { scale: Some(s), shift: None }, &[x]).unwrap();
        let b = g.add_node("a2", "b", Op::Affine { scale: None, shift: Some(t) }, &[a]).unwrap();
        let r1 = g.add_node("r1", "r1", Op::Reshape { shape: vec![3, 2] }, &[b]).unwrap();
        let r2 = g.add_node("r2", "r2", Op::Reshape { shape: vec![2, 3] }, &[r1]).unwrap();
        let t1 = g.add_node("t1", "t1", Op::Transpose { perm: vec![1, 0] }, &[r2]).unwrap();
        let t2 = g.add_node("t2", "t2", Op::Transpose { perm: vec![1, 0] }, &[t1]).unwrap();
        let y = g.add_node("rev", "y", Op::Reveal, &[t2]).unwrap();
        g.outputs.push(y);
        let input = Tensor::new(vec![2, 3], vec![1.0, -2.0, 0.5, 3.0, 0.0, -1.0]).unwrap();
        let before = run_float(&g, std::slice::from_ref(&input)).unwrap();
        run(&mut g, &Options::default()).unwrap();
        verify(&g).unwrap();
        let ops: Vec<&str> = g.live_nodes().map(|(_, n)| n.op.mnemonic()).collect();
        assert_eq!(ops, ["affine", "reveal"], "{}", veil_ir::print::to_text(&g));
        assert_eq!(run_float(&g, &[input]).unwrap(), before);
    }

    /// Two shifts (BERT's word, position and token-type embeddings summed) merge into one
    /// shift: a scale of ones would be a server-private elementwise product on shares, which the
    /// runtime does not run.
    #[test]
    fn two_shifts_merge_into_a_shift() {
        let mut g = Graph::new("t");
        let x = g.add_input("x", TensorType::f32(vec![1, 2, 3]));
        let p = g.add_const("p", vec![1, 2, 3], Domain::Server, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let t = g.add_const("t", vec![3], Domain::Server, vec![0.5, -0.5, 0.25]);
        let a = g.add_node("a1", "a", Op::Affine { scale: None, shift: Some(p) }, &[x]).unwrap();
        let b = g.add_node("a2", "b", Op::Affine { scale: None, shift: Some(t) }, &[a]).unwrap();
        let y = g.add_node("rev", "y", Op::Reveal, &[b]).unwrap();
        g.outputs.push(y);
        let input = Tensor::new(vec![1, 2, 3], vec![1.0, -2.0, 0.5, 3.0, 0.0, -1.0]).unwrap();
        let before = run_float(&g, std::slice::from_ref(&input)).unwrap();
        run(&mut g, &Options::default()).unwrap();
        verify(&g).unwrap();
        let affines: Vec<&Op> =
            g.live_nodes().map(|(_, n)| &n.op).filter(|op| matches!(op, Op::Affine { .. })).collect();
        assert!(matches!(affines[..], [Op::Affine { scale: None, shift: Some(_) }]), "{}", veil_ir::print::to_text(&g));
        assert_eq!(run_float(&g, &[input]).unwrap(), before);
    }
}
