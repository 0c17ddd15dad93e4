//! Front-end behaviour on small ONNX models built in the test: polynomial recognition, folding,
//! and every rejection path, each with the message a user sees. `frontend/ops.rs` checks the
//! linear ops of today's exporters against direct computations, `frontend/external.rs` external
//! data (and attacks on its paths and sizes), `frontend/dynamo.rs` a model from torch's dynamo
//! exporter, `frontend/activations.rs` Sigmoid, HardSigmoid and the refused activations,
//! `frontend/int_inputs.rs` integer and boolean inputs and Pad's modes,
//! `frontend/layer_norm.rs` LayerNormalization, `frontend/norm_form.rs` its written-out form,
//! `frontend/channel_norm.rs` Instance- and GroupNormalization,
//! `frontend/max_pool3d.rs` ReduceMax, ReduceMin, 3-D pools and casts between float types,
//! `frontend/bench_models.rs` the ResNet-32 of `models/bench/` against onnxruntime,
//! `frontend/quant.rs` rounding, integer casts and onnxruntime's QDQ quantization,
//! `frontend/upsampling.rs` ConvTranspose, Resize and the other ops of decoders (`models/decoder/`),
//! `frontend/zoo.rs` torchvision's families of `models/zoo/` from both of torch's exporters,
//! `frontend/embedding.rs` token ids: embedding lookups and padding masks on the client's input.

// The dynamo and zoo tests report the measured errors on stderr (shown with --nocapture).
#![allow(clippy::print_stderr)]

#[path = "frontend/activations.rs"]
mod activations;
#[path = "frontend/bench_models.rs"]
mod bench_models;
#[path = "frontend/channel_norm.rs"]
mod channel_norm;
#[path = "frontend/conv3d.rs"]
mod conv3d;
#[path = "frontend/dynamo.rs"]
mod dynamo;
#[path = "frontend/embedding.rs"]
mod embedding;
#[path = "frontend/external.rs"]
mod external;
#[path = "frontend/gelu_form.rs"]
mod gelu_form;
#[path = "frontend/int_inputs.rs"]
mod int_inputs;
#[path = "frontend/layer_norm.rs"]
mod layer_norm;
#[path = "frontend/max_pool3d.rs"]
mod max_pool3d;
#[path = "frontend/norm_form.rs"]
mod norm_form;
#[path = "frontend/ops.rs"]
mod ops;
#[path = "frontend/quant.rs"]
mod quant;
#[path = "frontend/recurrent.rs"]
mod recurrent;
#[path = "frontend/secret_matmul.rs"]
mod secret_matmul;
#[path = "frontend/select_form.rs"]
mod select_form;
#[path = "frontend/shared_softmax.rs"]
mod shared_softmax;
#[path = "frontend/softmax_form.rs"]
mod softmax_form;
#[path = "frontend/upsampling.rs"]
mod upsampling;
#[path = "frontend/zoo.rs"]
mod zoo;

use prost::Message;
use veil_compiler::onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto, attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::Dimension,
    tensor_shape_proto::dimension, type_proto,
};
use veil_compiler::onnx::{ImportError, ImportOptions, import_bytes};
use veil_ir::{Op, Tensor, eval::run_float};

fn info(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(v) => dimension::Value::DimValue(*v),
                None => dimension::Value::DimParam("N".into()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn int_attr(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

/// A float tensor of shape `dims`.
fn tensor(name: &str, dims: &[usize], data: Vec<f32>) -> TensorProto {
    assert_eq!(dims.iter().product::<usize>(), data.len());
    TensorProto {
        name: Some(name.into()),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(DataType::Float as i32),
        float_data: data,
        ..Default::default()
    }
}

/// A 1-D INT64 tensor (axes, split sizes, shapes).
fn int64s(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: vec![v.len() as i64],
        data_type: Some(DataType::Int64 as i32),
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

fn ints_attr(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn scalar(name: &str, v: f32) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        data_type: Some(DataType::Float as i32),
        float_data: vec![v],
        ..Default::default()
    }
}

/// A `[n]` server weight of ones: `Mul(x, ones)` makes the rest of a test graph shared.
fn ones(name: &str, n: usize) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: vec![n as i64],
        data_type: Some(DataType::Float as i32),
        float_data: vec![1.0; n],
        ..Default::default()
    }
}

fn model(
    opset: i64,
    inputs: Vec<ValueInfoProto>,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    out: &str,
) -> Vec<u8> {
    model_proto(opset, inputs, nodes, inits, &[out]).encode_to_vec()
}

fn model_proto(
    opset: i64,
    inputs: Vec<ValueInfoProto>,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    outs: &[&str],
) -> ModelProto {
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(opset) }],
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: nodes,
            initializer: inits,
            input: inputs,
            output: outs.iter().map(|o| info(o, &[])).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn import(bytes: &[u8]) -> Result<veil_ir::Graph, ImportError> {
    import_bytes(bytes, "test.onnx", "test", &ImportOptions::default())
}

fn problems(bytes: &[u8]) -> String {
    match import(bytes) {
        Err(e @ ImportError::Nodes { .. }) => e.to_string(),
        Err(e) => panic!("expected node problems, got {e}"),
        Ok(g) => panic!("expected an error, got\n{}", veil_ir::print::to_text(&g)),
    }
}

#[test]
fn a_polynomial_in_one_value_becomes_one_poly_node() {
    // y = (0.5·x·x + x − 1) / 2
    let b = model(
        13,
        vec![info("in", &[Some(1), Some(4)])],
        vec![
            node("Mul", "w", &["in", "ones"], &["x"]),
            node("Mul", "sq", &["x", "x"], &["x2"]),
            node("Mul", "half", &["x2", "h"], &["a"]),
            node("Add", "plus", &["a", "x"], &["b"]),
            node("Sub", "minus", &["b", "one"], &["c"]),
            node("Div", "div", &["c", "two"], &["y"]),
        ],
        vec![scalar("h", 0.5), scalar("one", 1.0), scalar("two", 2.0), ones("ones", 4)],
        "y",
    );
    let g = import(&b).unwrap();
    let polys: Vec<_> = g.live_nodes().filter(|(_, n)| matches!(n.op, Op::Poly { .. })).collect();
    assert_eq!(g.body.len(), 3, "the weight, one poly and the reveal:\n{}", veil_ir::print::to_text(&g));
    let Op::Poly { coeffs } = &polys[0].1.op else { unreachable!() };
    assert_eq!(coeffs, &vec![-0.5, 0.5, 0.25]);
    assert_eq!(polys[0].1.name, "div", "named after the node that ends the chain");
    let xs = [-2.0f32, -0.5, 0.0, 3.0];
    let y = run_float(&g, &[Tensor::new(vec![1, 4], xs.to_vec()).unwrap()]).unwrap();
    let want: Vec<f32> = xs.iter().map(|x| (0.5 * x * x + x - 1.0) / 2.0).collect();
    assert_eq!(y[0].data, want);
}

#[test]
fn a_square_used_twice_is_computed_once() {
    // t = x·x feeds a Relu and then t + x: once t exists, t + x is a free local add, not a
    // second square.
    let b = model(
        13,
        vec![info("in", &[Some(1), Some(3)])],
        vec![
            node("Mul", "w", &["in", "ones"], &["x"]),
            node("Mul", "sq", &["x", "x"], &["t"]),
            node("Relu", "r", &["t"], &["rt"]),
            node("Add", "p", &["t", "x"], &["u"]),
            node("Add", "sum", &["rt", "u"], &["y"]),
        ],
        vec![ones("ones", 3)],
        "y",
    );
    let g = import(&b).unwrap();
    let text = veil_ir::print::to_text(&g);
    assert!(text.contains("\"t\" = poly %1 coeffs=[0.0,0.0,1.0] : shared"), "{text}");
    assert!(text.contains("\"u\" = add %2, %1 : shared"), "{text}");
    assert_eq!(text.matches("poly").count(), 1, "{text}");
    let y = run_float(&g, &[Tensor::new(vec![1, 3], vec![-1.0, 0.5, 2.0]).unwrap()]).unwrap();
    assert_eq!(y[0].data, vec![1.0 + 0.0, 0.25 + 0.75, 4.0 + 6.0]);
}

/// `x ** 2` as torch exports it, `Pow(x, 2.0)`, is the polynomial `x·x`; a whole exponent of a
/// polynomial multiplies it out; a constant base to a constant power folds. (Found by the zoo:
/// the TorchScript exporter below opset 17 writes LayerNorm's variance as `Pow(x − mean, 2)`,
/// refused as "no sound two-party protocol" before the real reason, the square root.)
#[test]
fn pow_by_a_whole_constant_is_a_polynomial() {
    let b = model(
        13,
        vec![info("in", &[Some(1), Some(4)])],
        vec![
            node("Mul", "w", &["in", "ones"], &["x"]),
            node("Pow", "sq", &["x", "two"], &["x2"]),
            node("Add", "shift", &["x", "one"], &["x1"]),
            node("Pow", "cube", &["x1", "three"], &["x3"]),
            node("Relu", "r", &["x2"], &["a"]),
            node("Relu", "r3", &["x3"], &["c"]),
            node("Pow", "k", &["kk", "two"], &["k2"]),
            node("Mul", "scaled", &["c", "k2"], &["d"]),
            node("Add", "sum", &["a", "d"], &["ad"]),
            node("Pow", "unit", &["x", "zero"], &["x0"]),
            node("Add", "plus_one", &["ad", "x0"], &["y"]),
        ],
        vec![
            scalar("zero", 0.0),
            scalar("two", 2.0),
            scalar("three", 3.0),
            scalar("one", 1.0),
            tensor("kk", &[4], vec![1.0, -2.0, 0.5, 3.0]),
            ones("ones", 4),
        ],
        "y",
    );
    let g = import(&b).unwrap();
    let text = veil_ir::print::to_text(&g);
    assert!(text.contains("\"x2\" = poly %1 coeffs=[0.0,0.0,1.0]"), "{text}");
    assert!(text.contains("\"x3\" = poly %1 coeffs=[1.0,3.0,3.0,1.0]"), "{text}");
    assert!(!text.contains("pow"), "{text}");
    let xs = [-2.0f32, -0.5, 0.25, 1.5];
    let y = run_float(&g, &[Tensor::new(vec![1, 4], xs.to_vec()).unwrap()]).unwrap();
    let k = [1.0f32, -2.0, 0.5, 3.0];
    for (i, &x) in xs.iter().enumerate() {
        let want = x.powi(2) + (x + 1.0).powi(3).max(0.0) * k[i] * k[i] + 1.0;
        assert!((y[0].data[i] - want).abs() <= 1e-5 * want.abs().max(1.0), "x = {x}: {} vs {want}", y[0].data[i]);
    }
    ops::fixed_point_within_bound(&g, &[Tensor::new(vec![1, 4], xs.to_vec()).unwrap()]);
}

#[test]
fn pow_by_a_fraction_or_a_computed_exponent_is_refused_with_the_reason() {
    let b = model(
        13,
        vec![info("x", &[Some(1), Some(3)])],
        vec![
            node("Relu", "r", &["x"], &["a"]),
            node("Pow", "root", &["a", "half"], &["s"]),
            node("Pow", "big", &["a", "nine"], &["t"]),
            node("Pow", "exp", &["two", "x"], &["u"]),
            node("Add", "st", &["s", "t"], &["v"]),
            node("Add", "y", &["v", "u"], &["y"]),
        ],
        vec![scalar("half", 0.5), scalar("nine", 9.0), scalar("two", 2.0)],
        "y",
    );
    let e = problems(&b);
    assert!(
        e.contains(r#"node "root" (Pow): exponent [0.5]: only a single whole exponent from 0 to 8 is supported (a polynomial); other powers of secret values have no two-party protocol"#),
        "{e}"
    );
    assert!(e.contains(r#"node "big" (Pow): exponent [9.0]: only a single whole exponent from 0 to 8"#), "{e}");
    assert!(e.contains(r#"node "exp" (Pow): a constant base with a computed exponent is not supported"#), "{e}");
}

#[test]
fn a_product_of_two_computed_values_is_a_mul_node_in_either_order() {
    // relu(x) · x, and the same with the operands swapped: one `mul` each, the value unchanged.
    for (l, r) in [("a", "x"), ("x", "a")] {
        let b = model(
            13,
            vec![info("x", &[Some(1), Some(3)])],
            vec![node("Relu", "r", &["x"], &["a"]), node("Mul", "gate", &[l, r], &["y"])],
            vec![],
            "y",
        );
        let g = import(&b).unwrap();
        let text = veil_ir::print::to_text(&g);
        assert_eq!(text.matches("= mul %").count(), 1, "{text}");
        let y = run_float(&g, &[Tensor::new(vec![1, 3], vec![-2.0, 0.5, 3.0]).unwrap()]).unwrap();
        assert_eq!(y[0].data, vec![0.0, 0.25, 9.0]);
    }
}

#[test]
fn a_product_whose_operands_do_not_broadcast_is_refused_with_both_shapes() {
    let b = model(
        13,
        vec![info("x", &[Some(1), Some(2), Some(3)])],
        vec![
            node("Relu", "r", &["x"], &["a"]),
            node("Transpose", "t", &["x"], &["xt"]),
            node("Mul", "gate", &["a", "xt"], &["y"]),
        ],
        vec![],
        "y",
    );
    let e = problems(&b);
    assert!(
        e.contains(r#"node "gate" (Mul): operands [1, 2, 3] and [3, 2, 1]: a product of two computed values needs one to broadcast to the other's shape"#),
        "{e}"
    );
}

#[test]
fn argmax_in_the_middle_is_rejected() {
    let b = model(
        13,
        vec![info("x", &[Some(1), Some(3)])],
        vec![node("ArgMax", "attn", &["x"], &["s"]), node("Relu", "after", &["s"], &["y"])],
        vec![],
        "y",
    );
    let e = problems(&b);
    assert!(e.contains(r#"node "after" (Relu): reads "s", the result of client-side post-processing"#), "{e}");
}

#[test]
fn trailing_softmax_and_argmax_run_on_the_client() {
    let mut am = node("ArgMax", "am", &["p"], &["y"]);
    am.attribute = vec![int_attr("axis", 1), int_attr("keepdims", 0)];
    let b = model(
        13,
        vec![info("in", &[Some(1), Some(3)])],
        vec![
            node("Mul", "w", &["in", "ones"], &["x"]),
            node("Relu", "r", &["x"], &["a"]),
            node("Softmax", "sm", &["a"], &["p"]),
            am,
        ],
        vec![ones("ones", 3)],
        "y",
    );
    let g = import(&b).unwrap();
    let text = veil_ir::print::to_text(&g);
    assert!(text.contains("\"a\" = relu %1 : shared"), "{text}");
    assert!(text.contains("= reveal %2 : client"), "{text}");
    assert!(text.contains("= softmax %3 axis=1 : client f32[1,3]"), "{text}");
    assert!(text.contains("= argmax %4 axis=1 keepdims=false : client i64[1]"), "{text}");
    let y = run_float(&g, &[Tensor::new(vec![1, 3], vec![0.1, 3.0, -2.0]).unwrap()]).unwrap();
    assert_eq!(y[0].data, vec![1.0]);
}

#[test]
fn opsets_9_to_28_are_read_and_others_refused() {
    for opset in 9..=28 {
        let b =
            model(opset, vec![info("x", &[Some(1), Some(3)])], vec![node("Relu", "r", &["x"], &["y"])], vec![], "y");
        import(&b).unwrap_or_else(|e| panic!("opset {opset}: {e}"));
    }
    for opset in [8, 29] {
        let b =
            model(opset, vec![info("x", &[Some(1), Some(3)])], vec![node("Relu", "r", &["x"], &["y"])], vec![], "y");
        let e = import(&b).unwrap_err().to_string();
        assert!(e.contains(&format!("operator set {opset} is not supported (Veil reads opsets 9 to 28)")), "{e}");
    }
}

#[test]
fn batch_dimension_is_fixed_and_other_dynamic_dimensions_refused() {
    let b = model(13, vec![info("x", &[None, Some(3)])], vec![node("Relu", "r", &["x"], &["y"])], vec![], "y");
    let g = import_bytes(&b, "t.onnx", "t", &ImportOptions { batch: 4 }).unwrap();
    assert_eq!(g.values[g.inputs[0]].ty.shape, vec![4, 3]);
    assert_eq!(import(&b).unwrap().values[g.inputs[0]].ty.shape, vec![1, 3]);

    let b = model(13, vec![info("x", &[Some(1), None])], vec![node("Relu", "r", &["x"], &["y"])], vec![], "y");
    let e = problems(&b);
    assert!(
        e.contains(r#"graph input "x" has a dynamic dimension 1 ("N"); only the batch dimension (0) may be dynamic"#),
        "{e}"
    );
}

#[test]
fn clip_at_zero_is_relu_and_reads_opset_11_inputs() {
    let b = model(
        13,
        vec![info("x", &[Some(1), Some(3)])],
        vec![node("Clip", "c", &["x", "zero", ""], &["a"]), node("Clip", "c6", &["a", "zero", "six"], &["y"])],
        vec![scalar("zero", 0.0), scalar("six", 6.0)],
        "y",
    );
    let text = veil_ir::print::to_text(&import(&b).unwrap());
    assert!(text.contains("\"a\" = relu %0"), "{text}");
    assert!(text.contains("\"y\" = clip %1 min=0.0 max=6.0"), "{text}");
}

#[test]
fn an_undefined_operand_and_an_unknown_output_are_reported() {
    let b = model(13, vec![info("x", &[Some(1), Some(3)])], vec![node("Relu", "r", &["ghost"], &["y"])], vec![], "z");
    let e = problems(&b);
    assert!(e.contains(r#"node "r" (Relu): input "ghost" is not defined"#), "{e}");
    assert!(e.contains(r#"graph output "z" is not computed by any node"#), "{e}");
}

#[test]
fn external_weights_are_refused_for_a_model_read_from_memory() {
    let mut w = scalar("w", 1.0);
    w.float_data.clear();
    w.data_location = Some(1); // EXTERNAL
    let b = model(13, vec![info("x", &[Some(1), Some(1)])], vec![node("Mul", "m", &["x", "w"], &["y"])], vec![w], "y");
    let e = problems(&b);
    assert!(e.contains(r#"tensor "w" keeps its data in an external file; import the model from its file"#), "{e}");
}

#[test]
fn a_corrupt_initializer_is_refused_not_trusted() {
    let mut w = scalar("w", 1.0);
    w.dims = vec![1000, 1000];
    let b = model(13, vec![info("x", &[Some(1), Some(1)])], vec![node("Mul", "m", &["x", "w"], &["y"])], vec![w], "y");
    let e = problems(&b);
    assert!(e.contains(r#"tensor "w" has 1 values for shape [1000, 1000] (corrupt or truncated)"#), "{e}");
}

#[test]
fn an_empty_buffer_is_not_a_model() {
    assert!(matches!(import(&[]), Err(ImportError::Empty { .. })));
    // A protobuf that decodes but holds no graph.
    let e = import(&ModelProto { ir_version: Some(8), ..Default::default() }.encode_to_vec()).unwrap_err();
    assert!(e.to_string().contains("no ir_version or graph"), "{e}");
}

/// A graph output computed only from the input's shape (`Shape`, then arithmetic on it) is
/// public, as the plan's shapes are: the client computes it from its own input with public
/// constants only, and nothing is shared. One that also reads an initializer or a tensor
/// attribute (which may be a weight) is refused, and so is a model whose output is a constant of
/// its own.
#[test]
fn an_output_computed_from_the_input_shape_alone_is_public() {
    let mut sh = node("Shape", "shape", &["x"], &["s"]);
    sh.attribute = vec![int_attr("start", 1)];
    let x_info = || vec![info("x", &[Some(2), Some(3), Some(5)])];
    let b = model(21, x_info(), vec![sh.clone(), node("Mul", "square", &["s", "s"], &["y"])], vec![], "y");
    let g = import(&b).unwrap();
    assert!(g.consts.iter().all(|(_, c)| c.domain == veil_ir::Domain::Public), "{}", veil_ir::print::to_text(&g));
    assert!(g.live_nodes().all(|(_, n)| !matches!(n.op, Op::Reveal)), "nothing to reveal");
    let x = Tensor::new(vec![2, 3, 5], (0..30).map(|i| i as f32 * 0.5 - 3.0).collect()).unwrap();
    let y = run_float(&g, std::slice::from_ref(&x)).unwrap().remove(0);
    assert_eq!((y.shape, y.data), (vec![2], vec![9.0, 25.0]));
    ops::fixed_point_within_bound(&g, &[x]);

    let b = model(21, x_info(), vec![sh, node("Add", "plus", &["s", "k"], &["y"])], vec![int64s("k", &[1, 1])], "y");
    let e = import(&b).unwrap_err().to_string();
    assert!(e.contains(r#"graph output "y" is a constant"#) && e.contains("only from the input's shape"), "{e}");
    let mut c = node("Constant", "c", &[], &["y"]);
    c.attribute = vec![AttributeProto {
        name: Some("value".into()),
        r#type: Some(AttributeType::Tensor as i32),
        t: Some(int64s("v", &[4, 5])),
        ..Default::default()
    }];
    let b = model(21, x_info(), vec![c], vec![], "y");
    assert!(import(&b).unwrap_err().to_string().contains(r#"graph output "y" is a constant"#));
    // ConstantOfShape's value is the model's data, even on a shape.
    let mut fill = node("ConstantOfShape", "fill", &["s"], &["y"]);
    fill.attribute = vec![AttributeProto {
        name: Some("value".into()),
        r#type: Some(AttributeType::Tensor as i32),
        t: Some(tensor("v", &[1], vec![0.37])),
        ..Default::default()
    }];
    let mut sh = node("Shape", "shape", &["x"], &["s"]);
    sh.attribute = vec![int_attr("start", 1)];
    let b = model(21, x_info(), vec![sh, fill], vec![], "y");
    assert!(import(&b).unwrap_err().to_string().contains(r#"graph output "y" is a constant"#));
}
