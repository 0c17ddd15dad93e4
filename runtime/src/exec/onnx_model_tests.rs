//! ONNX models through both executors in one process, over the in-memory session (see
//! `memory_tests.rs`): models built in code (ReduceMax/ReduceMin as MaxPools, Gelu) and bundled
//! ones (LayerNorm, a ConvNeXt block, onnxruntime's QDQ CNN), each equal to the simulator bit for
//! bit and to the message scripts' bytes.

use veil_ir::schedule::lower;
use veil_ir::{Op, Tensor};
use veil_passes::Options;

use super::memory_tests::{check_traffic, in_memory};

/// A model built in code: `x [1, 2, 3, 4]` → a 1×1 Conv (server weights) → `ReduceMax` over
/// axes 1 and 3 (not adjacent: a transpose, then a MaxPool window), and `ReduceMin` over axis 2
/// (`−max(−x)`, the same MaxPool), as two outputs.
fn reduce_max_min_model() -> Vec<u8> {
    use prost::Message;
    use veil_compiler::onnx::proto::{
        AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
        TypeProto, ValueInfoProto, attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto,
        type_proto,
    };
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
    let node = |op: &str, inputs: &[&str], output: &str, keepdims: Option<i64>| NodeProto {
        op_type: Some(op.into()),
        name: Some(output.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: keepdims
            .map(|k| AttributeProto {
                name: Some("keepdims".into()),
                r#type: Some(AttributeType::Int as i32),
                i: Some(k),
                ..Default::default()
            })
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let floats = |name: &str, dims: &[i64], v: &[f32]| TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        float_data: v.to_vec(),
        ..Default::default()
    };
    let ints = |name: &str, v: &[i64]| TensorProto {
        name: Some(name.into()),
        dims: vec![v.len() as i64],
        data_type: Some(DataType::Int64 as i32),
        int64_data: v.to_vec(),
        ..Default::default()
    };
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(18) }],
        graph: Some(GraphProto {
            name: Some("reduce_max_min".into()),
            node: vec![
                node("Conv", &["x", "w", "b"], "c", None),
                node("ReduceMax", &["c", "axes_max"], "max", Some(0)),
                node("ReduceMin", &["c", "axes_min"], "min", Some(1)),
            ],
            initializer: vec![
                floats("w", &[3, 2, 1, 1], &[0.5, -1.25, 1.0, 0.75, -0.5, 2.0]),
                floats("b", &[3], &[0.25, -0.5, 0.0]),
                ints("axes_max", &[1, 3]),
                ints("axes_min", &[2]),
            ],
            input: vec![info("x", &[1, 2, 3, 4])],
            output: vec![info("max", &[1, 3]), info("min", &[1, 3, 1, 4])],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// ReduceMax and ReduceMin lowered onto MaxPool by the front end run between the two parties
/// as the garbled max tree: bit-exact with the simulator, every layer's framed bytes and rounds
/// as scripted.
#[test]
fn reduce_max_and_min_run_in_memory_as_maxpools_exactly_as_scripted() {
    let bytes = reduce_max_min_model();
    let x = Tensor::new(vec![1, 2, 3, 4], (0..24).map(|i| ((i * 7 % 24) as f32 - 11.5) / 8.0).collect()).unwrap();
    let opts = Options { input_bound: 1.5, exact_truncation: true, ..Options::default() };
    let model = veil_compiler::Model::Bytes { bytes: &bytes, name: "reduce_max_min" };
    let g = veil_compiler::compile(model, &opts.into()).unwrap().graph;
    let pools = g.live_nodes().filter(|(_, n)| matches!(n.op, Op::MaxPool { .. })).count();
    assert_eq!(pools, 2, "one MaxPool per reduction:\n{}", veil_ir::print::to_text(&g));
    let (out, cstats, sstats) = in_memory(&g, &x);
    let sim = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    assert_eq!(out, sim, "in memory differs from the simulator");
    // And the float model's max and min, computed directly, within the fixed-point error bound:
    // c[m, h, w] = b[m] + Σ_i w[m, i] · x[i, h, w].
    let (w, b) = ([[0.5, -1.25], [1.0, 0.75], [-0.5, 2.0]], [0.25, -0.5, 0.0]);
    let c = |m: usize, h: usize, wi: usize| b[m] + (0..2).map(|i| w[m][i] * x.data[i * 12 + h * 4 + wi]).sum::<f32>();
    let max: Vec<f32> = (0..3)
        .map(|h| (0..3).flat_map(|m| (0..4).map(move |wi| (m, wi))).map(|(m, wi)| c(m, h, wi)).fold(f32::MIN, f32::max))
        .collect();
    let min: Vec<f32> = (0..3)
        .flat_map(|m| (0..4).map(move |wi| (m, wi)))
        .map(|(m, wi)| (0..3).map(|h| c(m, h, wi)).fold(f32::MAX, f32::min))
        .collect();
    let bound = veil_passes::error_bound::error_bounds(&g, 1.5);
    for ((got, (shape, want)), &v) in out.iter().zip([(vec![1, 3], max), (vec![1, 3, 1, 4], min)]).zip(&g.outputs) {
        assert_eq!(got.shape, shape);
        for (a, b) in got.data.iter().zip(&want) {
            assert!(((a - b).abs() as f64) <= bound[v.index()] + 1e-6, "{a} vs float {b}");
        }
    }
    check_traffic("reduce_max_min", &g, &[&cstats, &sstats]);
    assert!(cstats.layers.iter().any(|l| l.protocol.contains("GC")), "{:?}", cstats.layers);
}

/// A model built in code: `x [1, 8]` → MatMul (server weights) + bias → Gelu → MatMul → Gelu
/// with `approximate = "tanh"`, at opset 20. Weights are a fixed pattern spanning both signs.
fn gelu_model() -> Vec<u8> {
    use prost::Message;
    use veil_compiler::onnx::proto::{
        AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
        TypeProto, ValueInfoProto, attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto,
        type_proto,
    };
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
    let node = |op: &str, inputs: &[&str], output: &str, approximate: Option<&str>| NodeProto {
        op_type: Some(op.into()),
        name: Some(output.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: approximate
            .map(|a| AttributeProto {
                name: Some("approximate".into()),
                r#type: Some(AttributeType::String as i32),
                s: Some(a.as_bytes().to_vec()),
                ..Default::default()
            })
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let floats = |name: &str, dims: &[i64], v: Vec<f32>| TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        float_data: v,
        ..Default::default()
    };
    ModelProto {
        ir_version: Some(9),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(20) }],
        graph: Some(GraphProto {
            name: Some("gelu".into()),
            node: vec![
                node("MatMul", &["x", "w1"], "m1", None),
                node("Add", &["m1", "b1"], "h1", None),
                node("Gelu", &["h1"], "g1", None),
                node("MatMul", &["g1", "w2"], "h2", None),
                node("Gelu", &["h2"], "y", Some("tanh")),
            ],
            initializer: vec![
                floats("w1", &[8, 8], gelu_weights(64)),
                floats("b1", &[8], (0..8).map(|i| i as f32 / 8.0 - 0.5).collect()),
                floats("w2", &[8, 4], gelu_weights(32)),
            ],
            input: vec![info("x", &[1, 8])],
            output: vec![info("y", &[1, 4])],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// `n` weights in [−1, 1) of both signs, a fixed pattern.
fn gelu_weights(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 37 % 64) as f32 - 32.0) / 32.0).collect()
}

/// The float model of [`gelu_model`], computed directly in f64 (the IR's float
/// interpreter is not used).
fn gelu_model_float(x: &[f32]) -> Vec<f64> {
    let gelu = |v: f64| 0.5 * v * (1.0 + erf_reference(v / std::f64::consts::SQRT_2));
    let gelu_tanh =
        |v: f64| 0.5 * v * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v * v * v)).tanh());
    let (w1, w2) = (gelu_weights(64), gelu_weights(32));
    let g1: Vec<f64> = (0..8)
        .map(|j| gelu((0..8).map(|k| x[k] as f64 * w1[k * 8 + j] as f64).sum::<f64>() + (j as f64 / 8.0 - 0.5)))
        .collect();
    (0..4).map(|j| gelu_tanh((0..8).map(|k| g1[k] * w2[k * 4 + j] as f64).sum())).collect()
}

/// erf by Abramowitz–Stegun 7.1.26 (within 1.5·10⁻⁷), independent of the IR's.
fn erf_reference(z: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * z.abs());
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    (1.0 - poly * (-z * z).exp()).copysign(z)
}

/// Gelu (both forms) runs between the two parties as the garbled `pl_gelu` circuit with the
/// truncation fused: bit-exact with the simulator, every layer's framed bytes and rounds as
/// scripted, and within the derived error bound of the float model computed directly.
#[test]
fn gelu_runs_in_memory_as_a_garbled_circuit_exactly_as_scripted() {
    let bytes = gelu_model();
    let x = Tensor::new(vec![1, 8], (0..8).map(|i| ((i * 5 % 8) as f32 - 3.5) / 2.0).collect()).unwrap();
    let opts = Options { input_bound: 2.0, exact_truncation: true, ..Options::default() };
    let model = veil_compiler::Model::Bytes { bytes: &bytes, name: "gelu" };
    let g = veil_compiler::compile(model, &opts.into()).unwrap().graph;
    let gelus = g.live_nodes().filter(|(_, n)| matches!(n.op, Op::PlGelu { .. })).count();
    let truncs = g.live_nodes().filter(|(_, n)| matches!(n.op, Op::Truncate { .. })).count();
    assert_eq!(gelus, 2, "{}", veil_ir::print::to_text(&g));
    let steps = lower(&g).unwrap();
    let gc = steps.iter().filter(|s| matches!(s.kind, veil_ir::schedule::Kind::Activation { .. })).count();
    assert_eq!(gc, 2, "each truncation fuses into its Gelu's circuit ({truncs} truncations)");
    let (out, cstats, sstats) = in_memory(&g, &x);
    let sim = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    assert_eq!(out, sim, "in memory differs from the simulator");
    let want = gelu_model_float(&x.data);
    let bound = veil_passes::error_bound::error_bounds(&g, 2.0)[g.outputs[0].index()];
    assert!(bound < 0.1, "bound {bound}");
    for (a, b) in out[0].data.iter().zip(&want) {
        assert!((*a as f64 - b).abs() <= bound, "{a} vs float {b} (bound {bound})");
    }
    check_traffic("gelu", &g, &[&cstats, &sstats]);
    let gc_layers = cstats.layers.iter().filter(|l| l.protocol.contains("GC")).count();
    assert_eq!(gc_layers, 2, "{:?}", cstats.layers);
}

/// `models/<folder>/model.onnx` compiled with the options `opts` makes of its input, with that
/// input (`input.npy`) and onnxruntime's output for it (`ort.npy`).
fn onnx_case(folder: &str, opts: impl Fn(&Tensor) -> Options) -> (veil_ir::Graph, Tensor, Tensor) {
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models").join(folder);
    let x = veil_ir::npy::read_npy(&models.join("input.npy")).unwrap();
    let want = veil_ir::npy::read_npy(&models.join("ort.npy")).unwrap();
    let path = models.join("model.onnx");
    let g = veil_compiler::compile(veil_compiler::Model::File(&path), &opts(&x).into()).unwrap().graph;
    (g, x, want)
}

/// LayerNormalization (`models/layer_norm/model.onnx`) runs between the two parties: the inverse
/// square root as one garbled circuit per row, the squares and the normalising product as
/// Beaver steps, `γ`/`β` folded into the next layer; bit-exact with the simulator, every
/// layer's framed bytes and rounds as scripted, and within the derived bound of onnxruntime.
#[test]
fn layer_norm_runs_in_memory_exactly_as_scripted() {
    let (g, x, want) =
        onnx_case("layer_norm", |_| Options { input_bound: 2.0, exact_truncation: true, ..Options::default() });
    let roots = g.live_nodes().filter(|(_, n)| matches!(n.op, Op::Rsqrt { .. })).count();
    assert_eq!(roots, 1, "{}", veil_ir::print::to_text(&g));
    let steps = lower(&g).unwrap();
    let rsqrt = steps.iter().find(|s| matches!(g.nodes[s.node].op, Op::Rsqrt { .. })).unwrap();
    assert!(matches!(rsqrt.kind, veil_ir::schedule::Kind::Activation { .. }), "{:?}", rsqrt.kind);
    let (out, cstats, sstats) = in_memory(&g, &x);
    let sim = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    assert_eq!(out, sim, "in memory differs from the simulator");
    let bound = veil_passes::error_bound::error_bounds(&g, 2.0)[g.outputs[0].index()];
    let worst = out[0].data.iter().zip(&want.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst as f64 <= bound, "{worst} beyond the bound {bound}");
    assert!(worst > 0.0, "fixed point rounds somewhere");
    check_traffic("layer_norm", &g, &[&cstats, &sstats]);
    let gc = cstats.layers.iter().filter(|l| l.protocol.contains("GC")).count();
    assert!(gc >= 1, "{:?}", cstats.layers);
}

/// A ConvNeXt block, width-reduced (`models/convnext_block/`: depthwise conv, LayerNormalization
/// over channels, two pointwise layers with Gelu, layer scale, residual), runs between the two
/// parties: bit-exact with the simulator, every layer's framed bytes and rounds as scripted,
/// and within the calibrated error bound of onnxruntime. Reports its costs on stderr.
#[test]
#[allow(clippy::print_stderr)]
fn convnext_block_runs_in_memory_exactly_as_scripted() {
    let (g, x, want) = onnx_case("convnext_block", |x| Options {
        calibration: vec![x.clone()],
        exact_truncation: true,
        ..Options::default()
    });
    let count = |f: fn(&Op) -> bool| g.live_nodes().filter(|(_, n)| f(&n.op)).count();
    assert_eq!(count(|o| matches!(o, Op::Rsqrt { .. })), 1, "{}", veil_ir::print::to_text(&g));
    assert_eq!(count(|o| matches!(o, Op::PlGelu { .. })), 1);
    let (out, cstats, sstats) = in_memory(&g, &x);
    let sim = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    assert_eq!(out, sim, "in memory differs from the simulator");
    let e = veil_passes::error_bound::calibrated_error_bounds(&g, std::slice::from_ref(&x)).unwrap();
    let bound = e[g.outputs[0].index()];
    let worst = out[0].data.iter().zip(&want.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst as f64 <= bound, "{worst} beyond the calibrated bound {bound}");
    check_traffic("convnext_block", &g, &[&cstats, &sstats]);
    eprintln!(
        "convnext block: ring {}, error {worst:.2e} (calibrated bound {bound:.2e}), {} steps, offline {} B in {:.2} s, online {} B in {:.2} s",
        g.ring_bits.unwrap(),
        cstats.layers.len(),
        cstats.offline.bytes(),
        cstats.offline.seconds,
        cstats.online.bytes(),
        cstats.online.seconds,
    );
}

/// onnxruntime's QDQ quantization of a small CNN (`models/qdq_cnn/`): each QuantizeLinear of
/// a computed value runs as one garbled rounding (ties to even, the truncation fused) clamped
/// to the uint8 range, its scales as server-private diagonal layers or folded into a layer, but
/// the one requantizing a MaxPool, which pools the integers instead. Bit-exact
/// with the simulator, every layer's framed bytes and rounds as scripted, onnxruntime's top-1,
/// and within the derived error bound of onnxruntime's output.
#[test]
fn a_qdq_quantized_cnn_runs_in_memory_exactly_as_scripted() {
    let (g, x, want) =
        onnx_case("qdq_cnn", |_| Options { input_bound: 2.0, exact_truncation: true, ..Options::default() });
    let steps = lower(&g).unwrap();
    let rounds = steps
        .iter()
        .filter(|s| matches!(g.nodes[s.node].op, Op::Round { .. }))
        .inspect(|s| assert!(matches!(s.kind, veil_ir::schedule::Kind::Activation { .. }), "{:?}", s.kind))
        .count();
    // Seven QuantizeLinear, but the one after `DequantizeLinear → MaxPool` is a MaxPool of the
    // integers (`onnx::ops::quant`).
    assert_eq!(rounds, 6, "{}", veil_ir::print::to_text(&g));
    let pool = g.live_nodes().find(|(_, n)| matches!(n.op, Op::MaxPool { .. })).expect("a MaxPool").1;
    assert!(g.producer(pool.inputs[0]).is_some_and(|p| matches!(p.op, Op::Round { .. })), "the pool reads integers");
    // A rounding and an exact truncation in its own circuit read their operands narrowed (in
    // fewer bits than the ring; `quantize`).
    let narrowed = |f: fn(&Op) -> bool| g.narrow_bits.iter().filter(|(n, _)| f(&g.nodes[*n].op)).count();
    assert!(narrowed(|o| matches!(o, Op::Round { .. })) >= 1, "{:?}", g.narrow_bits);
    assert!(narrowed(|o| matches!(o, Op::Truncate { .. })) >= 1, "{:?}", g.narrow_bits);
    let (out, cstats, sstats) = in_memory(&g, &x);
    let sim = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    assert_eq!(out, sim, "in memory differs from the simulator");
    let argmax = |v: &[f32]| v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
    assert_eq!(argmax(&out[0].data), argmax(&want.data), "{:?} vs onnxruntime {:?}", out[0].data, want.data);
    let bound = veil_passes::error_bound::error_bounds(&g, 2.0)[g.outputs[0].index()];
    let worst = out[0].data.iter().zip(&want.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst as f64 <= bound, "{worst} beyond the bound {bound}");
    check_traffic("qdq_cnn", &g, &[&cstats, &sstats]);
}
