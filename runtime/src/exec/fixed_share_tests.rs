//! An attack on local truncation: a value whose client share the plan fixes (here the rows of a
//! Concat with a constant, which the front end pads and selects, then shifts by the constant)
//! reconstructs far from its value when each party truncates its own share, since the server's
//! half assumes a random client share (`veil_ir::ring::local_truncate`). `fuse_truncation`
//! makes such truncations exact; this runs the plan between the two parties and checks the
//! constant row's mean.

use prost::Message;
use veil_compiler::onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto, attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
};
use veil_ir::{Op, Tensor, TruncMode};
use veil_passes::Options;

use super::memory_tests::in_memory;

/// `x·W` (`[1, 4]`) stacked over the constant row `C` (`[2, 4]`), then its mean per row
/// (`[2, 1]`): the second row's sum has client share 0 in every plan.
fn stacked_mean_model() -> Vec<u8> {
    let info = |name: &str, dims: &[i64]| ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| tensor_shape_proto::Dimension {
                            value: Some(tensor_shape_proto::dimension::Value::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let int = |name: &str, v: i64| AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    };
    let node = |op: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>| NodeProto {
        op_type: Some(op.into()),
        name: Some(output.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attrs,
        ..Default::default()
    };
    let tensor = |name: &str, dims: &[i64], data_type: DataType, f: Vec<f32>, i: Vec<i64>| TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(data_type as i32),
        float_data: f,
        int64_data: i,
        ..Default::default()
    };
    let w: Vec<f32> = (0..16).map(|i| [0.5, -1.0, 0.25, 1.5][i % 4] * if i % 5 == 0 { 1.0 } else { 0.5 }).collect();
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(18) }],
        graph: Some(GraphProto {
            name: Some("stacked_mean".into()),
            node: vec![
                node("MatMul", &["x", "w"], "h", vec![]),
                node("Concat", &["h", "c"], "stacked", vec![int("axis", 0)]),
                node("ReduceMean", &["stacked", "axes"], "y", vec![int("keepdims", 1)]),
            ],
            initializer: vec![
                tensor("w", &[4, 4], DataType::Float, w, vec![]),
                tensor("c", &[1, 4], DataType::Float, vec![1.5, 2.25, 0.75, 3.0], vec![]),
                tensor("axes", &[1], DataType::Int64, vec![], vec![1]),
            ],
            input: vec![info("x", &[1, 4])],
            output: vec![info("y", &[2, 1])],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn a_constant_rows_mean_survives_its_truncation_between_the_parties() {
    let bytes = stacked_mean_model();
    let model = veil_compiler::Model::Bytes { bytes: &bytes, name: "stacked_mean" };
    // Local truncations allowed: only the rule for fixed client shares makes this one exact.
    let opts = Options { input_bound: 2.0, ..Options::default() };
    let g = veil_compiler::compile(model, &opts.into()).unwrap().graph;
    let x = Tensor::new(vec![1, 4], vec![0.75, -1.5, 1.25, 0.5]).unwrap();
    let (out, _, _) = in_memory(&g, &x);
    let want = (1.5 + 2.25 + 0.75 + 3.0) / 4.0;
    let bound = veil_passes::error_bound::error_bounds(&g, 2.0)[g.outputs[0].index()];
    assert!(((out[0].data[1] - want) as f64).abs() <= bound, "{} vs {want} (bound {bound})", out[0].data[1]);
    // What made it so: a truncation exact because of its operand's fixed client share.
    let fixed = veil_passes::fixed_client_shares(&g);
    let exact_own = g
        .live_nodes()
        .filter(|(_, n)| matches!(n.op, Op::Truncate { mode: TruncMode::Exact, .. }) && fixed[n.inputs[0].index()])
        .count();
    assert!(exact_own >= 1, "{}", veil_ir::print::to_text(&g));
}
