//! Which exact truncations run over OT (`schedule::trunc_ot::kind`), on hand-built graphs.

use veil_ir::schedule::{Kind, lower, trunc_ot};
use veil_ir::{Domain, ElemType, Graph, Op, TensorType, TruncMode};

/// x (scale 12) → dense (scale 24) → truncate `bits` (exact) → `reader` → reveal, ℓ = 40, the
/// truncation listed in `over_ot`. Returns what the schedule lowers it to (`None`: fused into
/// its reader, no step of its own), or the refusal.
fn lowered(bits: u8, reader: Op) -> Result<Option<Kind>, String> {
    let mut g = Graph::new("trunc");
    let x = g.add_input("x", TensorType { elem: ElemType::Fixed { frac_bits: 12 }, shape: vec![1, 4] });
    let w = g.add_const("w", vec![4, 4], Domain::Server, vec![0.5; 16]);
    g.consts[w].frac_bits = Some(12);
    g.consts[w].qdata = vec![2048; 16];
    let h = g.add_node("fc", "h", Op::Dense { weight: w, bias: None }, &[x]).unwrap();
    g.values[h].ty.elem = ElemType::Fixed { frac_bits: 24 };
    let t = g.add_node("t", "t", Op::Truncate { bits, mode: TruncMode::Exact }, &[h]).unwrap();
    g.values[t].ty.elem = ElemType::Fixed { frac_bits: 24 - bits };
    let a = g.add_node("a", "a", reader, &[t]).unwrap();
    let y = g.add_node("reveal", "y", Op::Reveal, &[a]).unwrap();
    g.outputs.push(y);
    g.ring_bits = Some(40);
    let id = g.live_nodes().find(|(_, n)| n.name == "t").map(|(id, _)| id).unwrap();
    let eligible = trunc_ot::kind(&g, id);
    g.over_ot.push(id);
    veil_ir::verify(&g).map_err(|e| e.to_string())?;
    let steps = lower(&g).map_err(|e| e.to_string())?;
    let step = steps.into_iter().find(|s| s.node == id).map(|s| s.kind);
    // The pass's eligibility and the schedule's lowering are the same rule.
    if step.is_some() {
        assert_eq!(format!("{eligible:?}"), format!("{step:?}"));
    }
    Ok(step)
}

#[test]
fn an_unfused_exact_truncation_runs_over_ot() {
    let reshape = Op::Reshape { shape: vec![4] };
    match lowered(12, reshape) {
        Ok(Some(Kind::TruncOt { shift: 12, .. })) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_truncation_fused_into_its_reader_has_no_step_of_its_own() {
    assert!(matches!(lowered(12, Op::Relu), Ok(None)));
}

#[test]
fn a_shift_of_zero_is_refused_over_ot_by_name() {
    let err = lowered(0, Op::Reshape { shape: vec![4] }).unwrap_err();
    assert!(err.contains("an exact truncation over OT must shift by at least 1"), "{err}");
}
