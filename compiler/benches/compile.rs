//! `cargo bench -p veil-compiler --bench compile`: compile time of a ResNet-18-sized model
//! (11.7 M parameters, CIFAR-shaped 3×32×32 input, BatchNorm after every conv, residual adds),
//! generated here as ONNX bytes, and `eval` time over the 500 bundled digits test images.
//! Prints a table; the targets (issue 3) are < 2 s and < 10 s in release builds.

// A bench binary: its table on stdout is its output.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::Instant;

use prost::Message;
use veil_compiler::onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto, attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::Dimension,
    tensor_shape_proto::dimension, type_proto,
};
use veil_compiler::{CompileOptions, Model, compile};
use veil_ir::{Tensor, npy::NpzArray};
use veil_passes::Options;

struct Net {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    seed: u64,
    params: usize,
}

impl Net {
    /// Approximately normal(0, std) weights from a fixed-seed generator.
    fn tensor(&mut self, name: &str, dims: &[usize], std: f32) -> String {
        let n: usize = dims.iter().product();
        self.params += n;
        let data = (0..n)
            .map(|_| {
                let mut u = 0f32;
                for _ in 0..4 {
                    self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    u += (self.seed >> 40) as f32 / (1u64 << 24) as f32;
                }
                (u - 2.0) * std * 1.732
            })
            .collect();
        self.inits.push(TensorProto {
            name: Some(name.into()),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(DataType::Float as i32),
            float_data: data,
            ..Default::default()
        });
        name.into()
    }

    fn node(&mut self, op: &str, inputs: &[&str], out: &str, attrs: Vec<AttributeProto>) -> String {
        self.nodes.push(NodeProto {
            op_type: Some(op.into()),
            name: Some(out.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.into()],
            attribute: attrs,
            ..Default::default()
        });
        out.into()
    }

    /// Conv (`channels` = (in, out), `kernel` = (size, stride)) + BatchNorm (+ ReLU).
    fn conv_bn(&mut self, x: &str, name: &str, channels: (usize, usize), kernel: (usize, usize), relu: bool) -> String {
        let ((cin, cout), (k, stride)) = (channels, kernel);
        let w = self.tensor(&format!("{name}.w"), &[cout, cin, k, k], (2.0 / (cin * k * k) as f32).sqrt());
        let ints = |n: &str, v: Vec<i64>| AttributeProto {
            name: Some(n.into()),
            r#type: Some(AttributeType::Ints as i32),
            ints: v,
            ..Default::default()
        };
        let p = (k / 2) as i64;
        let c = self.node(
            "Conv",
            &[x, &w],
            &format!("{name}.conv"),
            vec![ints("strides", vec![stride as i64; 2]), ints("pads", vec![p; 4])],
        );
        let g = self.tensor(&format!("{name}.g"), &[cout], 0.1);
        let b = self.tensor(&format!("{name}.b"), &[cout], 0.1);
        let m = self.tensor(&format!("{name}.m"), &[cout], 0.1);
        let v = self.tensor(&format!("{name}.v"), &[cout], 0.0);
        // Variance must be positive: 1 + small noise.
        if let Some(t) = self.inits.last_mut() {
            t.float_data.iter_mut().for_each(|x| *x = 1.0 + x.abs());
        }
        if let Some(t) = self.inits.iter_mut().rev().nth(3) {
            t.float_data.iter_mut().for_each(|x| *x += 1.0);
        }
        let y = self.node("BatchNormalization", &[&c, &g, &b, &m, &v], &format!("{name}.bn"), vec![]);
        if relu { self.node("Relu", &[&y], &format!("{name}.relu"), vec![]) } else { y }
    }
}

fn resnet18() -> (Vec<u8>, usize) {
    let mut net = Net { nodes: Vec::new(), inits: Vec::new(), seed: 7, params: 0 };
    let mut x = net.conv_bn("input", "stem", (3, 64), (3, 1), true);
    let mut cin = 64;
    for (stage, &cout) in [64usize, 128, 256, 512].iter().enumerate() {
        for block in 0..2 {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let name = format!("layer{}.{block}", stage + 1);
            let h = net.conv_bn(&x, &format!("{name}.1"), (cin, cout), (3, stride), true);
            let h = net.conv_bn(&h, &format!("{name}.2"), (cout, cout), (3, 1), false);
            let skip = if stride != 1 || cin != cout {
                net.conv_bn(&x, &format!("{name}.down"), (cin, cout), (1, stride), false)
            } else {
                x.clone()
            };
            let s = net.node("Add", &[&h, &skip], &format!("{name}.add"), vec![]);
            x = net.node("Relu", &[&s], &format!("{name}.out"), vec![]);
            cin = cout;
        }
    }
    let p = net.node("GlobalAveragePool", &[&x], "pool", vec![]);
    let f = net.node("Flatten", &[&p], "flat", vec![]);
    let w = net.tensor("fc.w", &[1000, 512], (1.0 / 512f32).sqrt());
    let b = net.tensor("fc.b", &[1000], 0.01);
    net.node(
        "Gemm",
        &[&f, &w, &b],
        "logits",
        vec![AttributeProto {
            name: Some("transB".into()),
            r#type: Some(AttributeType::Int as i32),
            i: Some(1),
            ..Default::default()
        }],
    );
    let info = |name: &str, dims: &[i64]| ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension { value: Some(dimension::Value::DimValue(d)), ..Default::default() })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }],
        graph: Some(GraphProto {
            name: Some("resnet18".into()),
            node: net.nodes,
            initializer: net.inits,
            input: vec![info("input", &[1, 3, 32, 32])],
            output: vec![info("logits", &[1, 1000])],
            ..Default::default()
        }),
        ..Default::default()
    };
    (model.encode_to_vec(), net.params)
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (bytes, params) = resnet18();
    println!("ResNet-18-sized model: {params} parameters, {:.1} MB of ONNX", bytes.len() as f64 / 1e6);
    let calib =
        Tensor::new(vec![1, 3, 32, 32], (0..3 * 32 * 32).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect())
            .unwrap();
    let opts = Options { calibration: vec![calib], ..Options::default() };

    println!("\n| stage | time |\n|---|---|");
    let start = Instant::now();
    let model = Model::Bytes { bytes: &bytes, name: "resnet18" };
    let runs = compile(model, &CompileOptions { passes: opts, verify: false, encode: false, ..Default::default() })
        .expect("compiles")
        .runs;
    let passes: f64 = runs.iter().map(|r| r.time.as_secs_f64()).sum();
    println!("| import (decode + lower) | {:.0} ms |", (start.elapsed().as_secs_f64() - passes) * 1e3);
    for r in &runs {
        println!("| {} | {:.0} ms |", r.pass, r.time.as_secs_f64() * 1e3);
    }
    let total = start.elapsed();
    println!("| **compile total** | **{:.2} s** (target < 2 s) |", total.as_secs_f64());
    for r in &runs {
        for note in &r.report.notes {
            println!("  {}: {note}", r.pass);
        }
    }

    let data = root.join("models/digits_test.npz");
    let NpzArray::Float(x) = veil_ir::npy::read_npz(&data, "x").expect("digits x") else { panic!("x holds floats") };
    let NpzArray::Int { data: y, .. } = veil_ir::npy::read_npz(&data, "y").expect("digits y") else {
        panic!("y holds labels")
    };
    let xs = veil_passes::range::samples(&x, &[1, 1, 8, 8]).expect("digits shape");
    println!("\n| eval over {} digits images | time | fixed accuracy |\n|---|---|---|", xs.len());
    for (what, opts) in [
        ("relu", Options::default()),
        ("circa", Options { activation: veil_passes::Activation::Circa, ..Options::default() }),
    ] {
        let t = Instant::now();
        let opts = CompileOptions { passes: opts, verify: false, encode: false, ..Default::default() };
        let c = compile(&root.join("models/digits_relu.onnx"), &opts).expect("compiles");
        let r = veil_compiler::evaluate(&c.float, &c.graph, &xs, Some(&y), 0).expect("evaluates");
        println!(
            "| digits_relu, {what} (compile + eval) | {:.2} s (target < 10 s) | {:.1}% |",
            t.elapsed().as_secs_f64(),
            100.0 * r.accuracy.unwrap_or(0.0)
        );
    }
}
