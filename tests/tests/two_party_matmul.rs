//! MatMul of two computed values between the parties: attention's `Q·Kᵀ` from an ONNX model
//! built here, exactly what the simulator computes, close to the float model, and every
//! layer's bytes and rounds as the cost model predicts.

mod common;

use common::two_party;
use prost::Message;
use veil_compiler::onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto, attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::Dimension,
    tensor_shape_proto::dimension, type_proto,
};
use veil_compiler::{CompileOptions, compile};
use veil_passes::Options;

fn info(name: &str, dims: &[i64]) -> ValueInfoProto {
    let dim =
        dims.iter().map(|&d| Dimension { value: Some(dimension::Value::DimValue(d)), ..Default::default() }).collect();
    let tensor = type_proto::Tensor { elem_type: Some(DataType::Float as i32), shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto { value: Some(type_proto::Value::TensorType(tensor)), ..Default::default() }),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(output.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    }
}

fn weight(name: &str, seed: usize) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: vec![4, 4],
        data_type: Some(DataType::Float as i32),
        float_data: (0..16).map(|i| ((i * 7 + seed * 5) % 11) as f32 / 10.0 - 0.5).collect(),
        ..Default::default()
    }
}

/// `in` `[batch, 3, 4]`; `Q = in·wq`, `K = in·wk`; `y = Q·Kᵀ` `[batch, 3, 3]`.
fn attention_scores(batch: i64) -> Vec<u8> {
    let mut kt = node("Transpose", &["k"], "kt");
    kt.attribute = vec![AttributeProto {
        name: Some("perm".into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: vec![0, 2, 1],
        ..Default::default()
    }];
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }],
        graph: Some(GraphProto {
            name: Some("attention".into()),
            node: vec![node("MatMul", &["in", "wq"], "q"), node("MatMul", &["in", "wk"], "k"), kt, {
                node("MatMul", &["q", "kt"], "y")
            }],
            initializer: vec![weight("wq", 1), weight("wk", 2)],
            input: vec![info("in", &[batch, 3, 4])],
            output: vec![info("y", &[])],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn q_times_k_transposed_equals_the_simulator_bit_for_bit() {
    check(1);
}

/// Two batch elements: one matrix triple each, the frames per batch element as predicted.
#[test]
fn a_batch_of_matrix_products_equals_the_simulator_bit_for_bit() {
    check(2);
}

fn check(batch: usize) {
    let bytes = attention_scores(batch as i64);
    let g = veil_compiler::onnx::import_bytes(&bytes, "attention.onnx", "attention", &Default::default()).unwrap();
    let x =
        veil_ir::Tensor::new(vec![batch, 3, 4], (0..12 * batch).map(|i| ((i * 5) % 13) as f32 / 6.0 - 1.0).collect())
            .unwrap();
    let float = veil_ir::eval::run_float(&g, std::slice::from_ref(&x)).unwrap();
    let passes = Options { input_bound: 1.0, exact_truncation: true, ..Options::default() };
    let g = compile(g, &CompileOptions { passes, ..CompileOptions::default() }).unwrap().graph;
    assert!(g.live_nodes().any(|(_, n)| n.op == veil_ir::Op::MatMul), "{}", veil_ir::print::to_text(&g));
    let want = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    let err = veil_tests::max_rel_error(&want[0], &float[0], 1.0);
    assert!(err < 1e-2, "simulator against float: {err}");
    let (got, cs, _) = two_party(&g, &x);
    assert_eq!(got, want, "two-party output differs from the simulator");
    let predicted = veil_passes::cost::plan_cost(&g).unwrap();
    assert_eq!(predicted.layers.len(), cs.layers.len());
    let mut beaver = false;
    for (p, m) in predicted.layers.iter().zip(&cs.layers) {
        let got = (m.online.bytes_client_to_server, m.online.bytes_server_to_client, m.online.rounds);
        let want = (p.online.bytes_client_to_server, p.online.bytes_server_to_client, p.online.rounds);
        assert_eq!(got, want, "layer {} ({}) online (c→s, s→c, rounds)", m.name, m.protocol);
        let got = (m.offline.bytes_client_to_server, m.offline.bytes_server_to_client);
        let want = (p.offline.bytes_client_to_server, p.offline.bytes_server_to_client);
        assert_eq!(got, want, "layer {} ({}) offline (c→s, s→c)", m.name, m.protocol);
        // The matrix triple opens `m·k + k·n = 24` ring elements server → client and re-shares
        // `m·n = 9` per batch element, where one triple per product (3·4·3 = 36) opened 72 and
        // re-shared 36.
        if m.protocol.contains("matrix Beaver") {
            let b = batch as u64;
            assert!(m.online.bytes_server_to_client < b * 72 * 8 / 2, "{m:?}");
            assert!(m.online.bytes_client_to_server < b * 36 * 8 / 2, "{m:?}");
            assert!(m.online.bytes_client_to_server >= b * 9, "{m:?}");
            beaver = true;
        }
    }
    assert!(beaver, "no Beaver layer among {:?}", cs.layers.iter().map(|l| &l.protocol).collect::<Vec<_>>());
}
