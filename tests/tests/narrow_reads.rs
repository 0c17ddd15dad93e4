//! Narrowed reads (`Graph::narrow_bits`) of the circuits added after ReLU, MaxPool and Clip:
//! roundings and exact truncations in their own circuits, on onnxruntime's QDQ model
//! (`models/qdq_cnn/`). Checked here: which truncations are listed and when the simulator reads
//! them narrowed, that the plan reads back through the text IR, and that the verifier refuses
//! an entry the runtime would not honour. The two parties' runs are the runtime's memory tests'.

use veil_ir::{Graph, NodeId, Op, TruncMode};
use veil_passes::Options;
use veil_tests::root;

fn qdq(exact_truncation: bool) -> Graph {
    let path = root().join("models/qdq_cnn/model.onnx");
    let opts = Options { input_bound: 2.0, exact_truncation, ..Options::default() };
    veil_compiler::compile(veil_compiler::Model::File(&path), &opts.into()).unwrap().graph
}

fn listed(g: &Graph, f: fn(&Op) -> bool) -> Vec<NodeId> {
    g.narrow_bits.iter().filter(|(n, _)| f(&g.nodes[*n].op)).map(|&(n, _)| n).collect()
}

#[test]
fn exact_truncations_in_their_own_circuits_are_read_narrowed_and_only_those() {
    let g = qdq(true);
    let truncs = listed(&g, |o| matches!(o, Op::Truncate { .. }));
    assert!(!truncs.is_empty() && !listed(&g, |o| matches!(o, Op::Round { .. })).is_empty(), "{:?}", g.narrow_bits);
    for &t in &truncs {
        assert!(matches!(g.nodes[t].op, Op::Truncate { mode: TruncMode::Exact, .. }));
        assert!(!veil_ir::schedule::fuses_into_reader(&g, g.nodes[t].output));
    }
    let reads = veil_ir::schedule::narrowed_reads(&g);
    assert!(truncs.iter().all(|t| reads.iter().any(|(n, _)| n == t)));
    // The widths read back from the text IR.
    let back = veil_ir::print::parse_with_weights(&veil_ir::print::to_text(&g), &g.consts).unwrap();
    assert_eq!(back.narrow_bits, g.narrow_bits);

    // Listed while still local (between `quantize` and `fuse_truncation`), the simulator reads
    // the truncation whole.
    let mut local = g.clone();
    let Op::Truncate { bits, .. } = local.nodes[truncs[0]].op else { unreachable!() };
    local.nodes[truncs[0]].op = Op::Truncate { bits, mode: TruncMode::Local };
    assert!(veil_ir::verify(&local).is_ok());
    assert!(!veil_ir::schedule::narrowed_reads(&local).iter().any(|(n, _)| *n == truncs[0]));

    // A truncation its reader fuses is read by the reader's circuit: an entry of its own is
    // refused, and so is one that leaves no bit above the shift.
    let fused = g
        .live_nodes()
        .find(|(_, n)| matches!(n.op, Op::Truncate { .. }) && veil_ir::schedule::fuses_into_reader(&g, n.output))
        .map(|(id, _)| id)
        .expect("a fused truncation");
    let mut h = g.clone();
    h.narrow_bits.push((fused, g.ring_bits.unwrap() - 1));
    let err = veil_ir::verify(&h).unwrap_err().to_string();
    assert!(err.contains("narrow_bits names"), "{err}");
    let mut h = g.clone();
    h.narrow_bits.retain(|&(n, _)| n != truncs[0]);
    h.narrow_bits.push((truncs[0], bits));
    assert!(veil_ir::verify(&h).is_err());

    // Local truncations (no --exact-truncation) are never listed.
    let g = qdq(false);
    assert!(listed(&g, |o| matches!(o, Op::Truncate { .. })).is_empty(), "{:?}", g.narrow_bits);
}
