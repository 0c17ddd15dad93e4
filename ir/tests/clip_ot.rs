//! Which Clips run over OT (`schedule::clip_ot::kind`): the bounds rule, on hand-built graphs.

use veil_ir::schedule::{Kind, clip_ot, lower};
use veil_ir::{Domain, ElemType, Graph, Op, TensorType};

/// x (scale 12) → dense (scale 24) → truncate 12 (exact) → Clip(min, max) → reveal, ℓ = 40;
/// the Clip listed in `over_ot`. Returns what the schedule lowers the Clip to (or its refusal).
fn lowered(min: Option<f32>, max: Option<f32>) -> Result<Kind, String> {
    let mut g = Graph::new("clip");
    let x = g.add_input("x", TensorType { elem: ElemType::Fixed { frac_bits: 12 }, shape: vec![1, 4] });
    let w = g.add_const("w", vec![4, 4], Domain::Server, vec![0.5; 16]);
    g.consts[w].frac_bits = Some(12);
    g.consts[w].qdata = vec![2048; 16];
    let h = g.add_node("fc", "h", Op::Dense { weight: w, bias: None }, &[x]).unwrap();
    g.values[h].ty.elem = ElemType::Fixed { frac_bits: 24 };
    let t = g.add_node("t", "t", Op::Truncate { bits: 12, mode: veil_ir::TruncMode::Exact }, &[h]).unwrap();
    g.values[t].ty.elem = ElemType::Fixed { frac_bits: 12 };
    let c = g.add_node("clip", "c", Op::Clip { min, max }, &[t]).unwrap();
    g.values[c].ty.elem = ElemType::Fixed { frac_bits: 12 };
    let y = g.add_node("reveal", "y", Op::Reveal, &[c]).unwrap();
    g.outputs.push(y);
    g.ring_bits = Some(40);
    let clip = g.live_nodes().find(|(_, n)| n.name == "clip").map(|(id, _)| id).unwrap();
    let (eligible, listed) = (clip_ot::kind(&g, clip), clip_ot::listed(&g, clip));
    g.over_ot.push(clip);
    veil_ir::verify(&g).map_err(|e| e.to_string())?;
    let steps = lower(&g).map_err(|e| e.to_string())?;
    let step = steps.into_iter().find(|s| s.node == clip).unwrap();
    // The schedule runs what `listed` says; `kind` (no range proof needed) agrees where it has
    // an answer, which is for a lower bound of 0.
    assert_eq!(format!("{listed:?}"), format!("{:?}", Some(&step.kind)));
    if min == Some(0.0) {
        assert_eq!(format!("{eligible:?}"), format!("{listed:?}"));
    } else {
        assert!(eligible.is_none(), "a lower bound other than 0 needs the compiler's range proof");
    }
    Ok(step.kind)
}

#[test]
fn a_clip_to_zero_and_hi_runs_as_two_relus_with_the_bound_at_the_operands_scale() {
    match lowered(Some(0.0), Some(6.0)) {
        Ok(Kind::ClipOt { shift: 12, hi, .. }) => assert_eq!(hi, 6 << 12),
        other => panic!("{other:?}"),
    }
    // An upper bound of 0 is a bound (the output is 0).
    assert!(matches!(lowered(Some(0.0), Some(0.0)), Ok(Kind::ClipOt { hi: 0, .. })));
}

#[test]
fn a_clip_whose_upper_bound_never_binds_is_a_relu() {
    assert!(matches!(lowered(Some(0.0), None), Ok(Kind::ReluOt { shift: 12, .. })));
    // Beyond the ring at scale 12 (2^27 > 2^39 / 2^12).
    assert!(matches!(lowered(Some(0.0), Some(1e9)), Ok(Kind::ReluOt { shift: 12, .. })));
}

/// A lower bound other than 0 runs over OT when the plan lists the Clip (the compiler lists one
/// only after its range analysis proved no intermediate wraps), with the bound in the ring.
#[test]
fn a_listed_clip_with_another_lower_bound_runs_with_it() {
    match lowered(Some(-1.0), Some(1.0)) {
        Ok(Kind::ClipOt { shift: 12, lo, hi, .. }) => assert_eq!((lo, hi), ((1 << 40) - (1 << 12), 1 << 12)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(lowered(Some(0.5), Some(6.0)), Ok(Kind::ClipOt { lo: 2048, .. })));
}

#[test]
fn other_bounds_are_refused_over_ot_by_name() {
    for (min, max) in [(None, Some(6.0)), (Some(-1.0), None)] {
        let err = lowered(min, max).unwrap_err();
        assert!(err.contains("a Clip over OT needs a lower bound and an upper bound"), "{min:?}..{max:?}: {err}");
    }
}
