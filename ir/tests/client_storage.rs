//! The client's storage between the phases (`schedule::script::client_storage`), by hand for a
//! Circa layer from docs/protocols.md.

use veil_ir::schedule::{Kind, lower, script::client_storage};
use veil_ir::{CircaVariant, Domain, ElemType, Graph, Op, TensorType};

/// x (scale 12) → dense (4 outputs, scale 24) → Circa (k = 7, test ring m = 20) → reveal, ℓ = 40.
/// The sign test
/// covers m − k = 13 bits: 12 AND gates, so 32·12 bytes of tables per element plus the 16-byte
/// hash key; 13 client input labels of 16 bytes per element; ⌈100/8⌉ decoding bytes; and per
/// element three ring elements (mask, c·σ share, OT pad) plus a choice bit.
#[test]
fn circa_storage_is_tables_labels_and_masks() {
    let n = 4u64;
    let mut g = Graph::new("circa");
    let x = g.add_input("x", TensorType { elem: ElemType::Fixed { frac_bits: 12 }, shape: vec![1, 4] });
    let w = g.add_const("w", vec![4, 4], Domain::Server, vec![0.5; 16]);
    g.consts[w].frac_bits = Some(12);
    g.consts[w].qdata = vec![2048; 16];
    let h = g.add_node("fc", "h", Op::Dense { weight: w, bias: None }, &[x]).unwrap();
    let op = Op::StochasticRelu { drop_bits: Some(7), variant: CircaVariant::PosZero, test_bits: Some(20) };
    let r = g.add_node("s", "r", op, &[h]).unwrap();
    let y = g.add_node("reveal", "y", Op::Reveal, &[r]).unwrap();
    g.outputs.push(y);
    g.ring_bits = Some(40);
    veil_ir::verify(&g).unwrap();
    let steps = lower(&g).unwrap();
    let circa = steps.iter().find(|s| matches!(s.kind, Kind::Circa { .. })).unwrap();
    let tables = 32 * 12 * n + 16;
    let labels = 16 * 13 * n;
    let masks = 3 * 8 * n + n.div_ceil(8);
    assert_eq!(client_storage(&g, circa), tables + n.div_ceil(8) + labels + masks);
    // The dense layer keeps its output share; the reveal keeps nothing.
    let dense = steps.iter().find(|s| matches!(s.kind, Kind::Linear { .. })).unwrap();
    assert_eq!(client_storage(&g, dense), 8 * n);
    assert_eq!(client_storage(&g, steps.iter().find(|s| matches!(s.kind, Kind::Reveal)).unwrap()), 0);
}

/// x → dense (4 outputs) → ReLU over OT (no fused truncation) → reveal, ℓ = 40: the client keeps
/// its output mask (8 B per element) and its OTs hashed down (docs/protocols.md, "ReLU over
/// OT"), per element 39 + 2·10 − 1 = 58 bits of comparison choices and keys, its 14 ANDs as
/// 4 triples (3 bits each) and 5 pairs (5 bits each), one product choice bit and its 40-bit pad,
/// and the two 40-bit pads of the OT it sent, each part packed over the 4 elements:
/// 29 + 6 + 13 + 1 + 20 + 40 = 109 bytes, not the OTs' 16-byte pads it held before they were
/// hashed down.
#[test]
fn relu_over_ot_storage_is_its_mask_and_the_hashed_down_ots() {
    let mut g = Graph::new("relu_ot");
    let x = g.add_input("x", TensorType { elem: ElemType::Fixed { frac_bits: 12 }, shape: vec![1, 4] });
    let w = g.add_const("w", vec![4, 4], Domain::Server, vec![0.5; 16]);
    g.consts[w].frac_bits = Some(12);
    g.consts[w].qdata = vec![2048; 16];
    let h = g.add_node("fc", "h", Op::Dense { weight: w, bias: None }, &[x]).unwrap();
    let r = g.add_node("relu", "r", Op::Relu, &[h]).unwrap();
    let y = g.add_node("reveal", "y", Op::Reveal, &[r]).unwrap();
    g.outputs.push(y);
    g.ring_bits = Some(40);
    let relu = g.live_nodes().find(|(_, n)| n.name == "relu").map(|(id, _)| id).unwrap();
    g.over_ot.push(relu);
    veil_ir::verify(&g).unwrap();
    let steps = lower(&g).unwrap();
    let step = steps.iter().find(|s| matches!(s.kind, Kind::ReluOt { shift: 0, .. })).unwrap();
    assert_eq!(client_storage(&g, step), 8 * 4 + 109);
}

/// The Circa layer of [`circa_storage_is_tables_labels_and_masks`] over OT (listed in
/// `over_ot`): the client keeps its output mask (8 B per element) and its OTs hashed down
/// (docs/protocols.md, "Circa over OT"). The comparison covers the low m − k − 1 = 12 bits:
/// 12 + 2·3 − 1 = 17 bits of choices and keys, a tree of 3 digits with 2 ANDs (6 triple bits),
/// one product choice bit and its 40-bit pad, the two 40-bit pads of the OT it sent; each part
/// packed over the 4 elements: 9 + 3 + 1 + 20 + 40 = 73 bytes, against the garbled test's
/// 1,552 bytes of tables and 832 of labels.
#[test]
fn circa_over_ot_storage_is_its_mask_and_the_hashed_down_ots() {
    let mut g = Graph::new("circa_ot");
    let x = g.add_input("x", TensorType { elem: ElemType::Fixed { frac_bits: 12 }, shape: vec![1, 4] });
    let w = g.add_const("w", vec![4, 4], Domain::Server, vec![0.5; 16]);
    g.consts[w].frac_bits = Some(12);
    g.consts[w].qdata = vec![2048; 16];
    let h = g.add_node("fc", "h", Op::Dense { weight: w, bias: None }, &[x]).unwrap();
    let op = Op::StochasticRelu { drop_bits: Some(7), variant: CircaVariant::PosZero, test_bits: Some(20) };
    let r = g.add_node("s", "r", op, &[h]).unwrap();
    let y = g.add_node("reveal", "y", Op::Reveal, &[r]).unwrap();
    g.outputs.push(y);
    g.ring_bits = Some(40);
    let circa = g.live_nodes().find(|(_, n)| n.name == "s").map(|(id, _)| id).unwrap();
    g.over_ot.push(circa);
    veil_ir::verify(&g).unwrap();
    let steps = lower(&g).unwrap();
    let step = steps.iter().find(|s| matches!(s.kind, Kind::CircaOt { drop_bits: 7, test_bits: 20, .. })).unwrap();
    assert_eq!(client_storage(&g, step), 8 * 4 + 73);
    assert!(!steps.iter().any(|s| matches!(s.kind, Kind::Circa { .. })), "no garbled Circa left");
}
