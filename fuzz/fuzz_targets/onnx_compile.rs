//! Structure-aware: the fuzzer's bytes choose a small ONNX model (supported operators, their
//! attributes, weights of fitting or misfitting shapes, an operator set) and compiler options;
//! the model then goes through everything `veilc` does with a file: import, the whole pass
//! pipeline with the verifier after each pass, plan and weights encoding, decoding and lowering,
//! the cost model, and the float and fixed-point simulators on an input.
//!
//! `onnx_import` mutates raw protobuf bytes, so it mostly exercises the decoder and the
//! front end's refusals; this target reaches the passes with graphs no exporter wrote.
//!
//! Checks: no panic anywhere; a graph that imports verifies; a pass either rejects the model
//! (a user error) or leaves valid IR; a compiled graph encodes, decodes to the same hash, lowers
//! and is costed exactly when the runtime can run it; both simulators run it on an input
//! within the bound.
//!
//! `VEIL_FUZZ_DUMP=DIR` writes each model it imports (the growing model, then the final one) to
//! `DIR/<sequence>-<hash>.onnx`, to keep a crashing model as a regression input for
//! `tests/tests/fuzz_regressions.rs`; the last file is the one that crashed.
#![no_main]
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use veil_compiler::onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto, attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::Dimension,
    tensor_shape_proto::dimension, type_proto,
};
use veil_compiler::onnx::{ImportOptions, import_bytes};
use veil_passes::{Activation, LinearChoice, Objective, Options};

const OPS: &[&str] = &[
    "Relu",
    "LeakyRelu",
    "Clip",
    "Neg",
    "Sigmoid",
    "Tanh",
    "Exp",
    "Log",
    "Sqrt",
    "Reciprocal",
    "Identity",
    "Dropout",
    "Cast",
    "Softmax",
    "LogSoftmax",
    "ArgMax",
    "Flatten",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Reshape",
    "Shape",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "MaxPool",
    "AveragePool",
    "Pad",
    "Slice",
    "Concat",
    "Gather",
    "BatchNormalization",
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Square",
    "Where",
    "Equal",
];

/// A model under construction; `shapes[i]` is what the importer inferred for `values[i]`.
struct Gen<'a> {
    u: Unstructured<'a>,
    opset: i64,
    input: Vec<i64>,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    values: Vec<String>,
    shapes: Vec<Vec<usize>>,
    fresh: usize,
}

fn info(name: &str, dims: &[i64]) -> ValueInfoProto {
    let dim =
        dims.iter().map(|&d| Dimension { value: Some(dimension::Value::DimValue(d)), ..Default::default() }).collect();
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

fn ints(name: &str, v: Vec<i64>) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(AttributeType::Ints as i32), ints: v, ..Default::default() }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(v),
        ..Default::default()
    }
}

fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

impl Gen<'_> {
    fn model(&self, out: &str) -> Vec<u8> {
        ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(self.opset) }],
            graph: Some(GraphProto {
                name: Some("g".into()),
                node: self.nodes.clone(),
                initializer: self.inits.clone(),
                input: vec![info("x", &self.input)],
                output: vec![info(out, &[])],
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn name(&mut self, prefix: &str) -> String {
        self.fresh += 1;
        format!("{prefix}{}", self.fresh)
    }

    /// A small dimension, usually `fit`.
    fn dim(&mut self, fit: usize) -> Result<i64> {
        Ok(if self.u.ratio(7, 8)? { fit as i64 } else { self.u.int_in_range(0..=9)? })
    }

    /// A float initializer of shape `dims` (at most 4096 elements; bigger shapes get no data,
    /// which the importer must refuse).
    fn weight(&mut self, dims: Vec<i64>) -> Result<String> {
        let name = self.name("w");
        let n: i64 = dims.iter().map(|&d| d.max(0)).product();
        let n = if n <= 4096 { n as usize } else { 0 };
        let mut data = Vec::with_capacity(n);
        for _ in 0..n {
            data.push(f32::from(self.u.arbitrary::<i8>()?) / 32.0);
        }
        self.inits.push(TensorProto {
            name: Some(name.clone()),
            dims,
            data_type: Some(DataType::Float as i32),
            float_data: data,
            ..Default::default()
        });
        Ok(name)
    }

    fn int64s(&mut self, v: Vec<i64>) -> String {
        let name = self.name("k");
        self.inits.push(TensorProto {
            name: Some(name.clone()),
            dims: vec![v.len() as i64],
            data_type: Some(DataType::Int64 as i32),
            int64_data: v,
            ..Default::default()
        });
        name
    }

    fn axis(&mut self, rank: usize) -> Result<i64> {
        let r = rank as i64;
        self.u.int_in_range(-r.max(1)..=r)
    }

    fn pads(&mut self, n: usize) -> Result<Vec<i64>> {
        (0..2 * n).map(|_| self.u.int_in_range(0..=2)).collect()
    }

    /// Window attributes of Conv and the pools over `spatial` dimensions.
    fn window(&mut self, attrs: &mut Vec<AttributeProto>, spatial: usize, kernel: bool) -> Result<Vec<i64>> {
        let k: Vec<i64> = (0..spatial).map(|_| self.u.int_in_range(1..=3)).collect::<Result<_>>()?;
        if kernel {
            attrs.push(ints("kernel_shape", k.clone()));
        }
        if self.u.ratio(1, 2)? {
            let s = (0..spatial).map(|_| self.u.int_in_range(1..=3)).collect::<Result<_>>()?;
            attrs.push(ints("strides", s));
        }
        if self.u.ratio(1, 3)? {
            let d = (0..spatial).map(|_| self.u.int_in_range(1..=2)).collect::<Result<_>>()?;
            attrs.push(ints("dilations", d));
        }
        match self.u.int_in_range(0..=4)? {
            0 => attrs.push(ints("pads", self.pads(spatial)?)),
            1 => attrs.push(string("auto_pad", *self.u.choose(&["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"])?)),
            _ => {}
        }
        Ok(k)
    }

    /// An operand broadcastable to `shape` (or, rarely, not).
    fn operand(&mut self, shape: &[usize]) -> Result<String> {
        if self.u.ratio(1, 3)? && !self.values.is_empty() {
            let i = self.u.choose_index(self.values.len())?;
            return Ok(self.values[i].clone());
        }
        let keep = self.u.int_in_range(0..=shape.len())?;
        let mut dims = Vec::new();
        for &d in &shape[shape.len() - keep..] {
            dims.push(if self.u.ratio(1, 3)? { 1 } else { self.dim(d)? });
        }
        self.weight(dims)
    }

    /// Appends one node reading the value `x` of shape `s`; returns its output's name.
    fn node(&mut self, x: String, s: Vec<usize>) -> Result<String> {
        let op = *self.u.choose(OPS)?;
        let rank = s.len();
        let c = s.get(1).copied().unwrap_or(1);
        let last = s.last().copied().unwrap_or(1);
        let mut inputs = vec![x.clone()];
        let mut attrs = Vec::new();
        let op = match op {
            "LeakyRelu" => {
                attrs.push(float("alpha", f32::from(self.u.arbitrary::<i8>()?) / 64.0));
                op
            }
            "Clip" => {
                let (lo, hi) =
                    (f32::from(self.u.arbitrary::<i8>()?) / 16.0, f32::from(self.u.arbitrary::<i8>()?) / 16.0);
                if self.opset < 11 {
                    attrs.push(float("min", lo));
                    attrs.push(float("max", hi));
                } else {
                    let lo = self.weight(vec![])?;
                    inputs.push(lo);
                    if self.u.ratio(1, 2)? {
                        let hi = self.weight(vec![])?;
                        inputs.push(hi);
                    }
                }
                op
            }
            "Cast" => {
                attrs.push(int("to", *self.u.choose(&[1, 1, 1, 7, 6, 10, 11])?));
                op
            }
            "Softmax" | "LogSoftmax" | "Flatten" => {
                attrs.push(int("axis", self.axis(rank)?));
                op
            }
            "ArgMax" => {
                attrs.push(int("axis", self.axis(rank)?));
                attrs.push(int("keepdims", self.u.int_in_range(0..=1)?));
                op
            }
            "Transpose" => {
                let mut perm: Vec<i64> = (0..rank as i64).collect();
                for i in (1..perm.len()).rev() {
                    let j = self.u.int_in_range(0..=i)?;
                    perm.swap(i, j);
                }
                if self.u.ratio(1, 8)? {
                    perm.pop();
                }
                attrs.push(ints("perm", perm));
                op
            }
            "Squeeze" | "Unsqueeze" => {
                let mut axes = vec![self.axis(rank)?];
                if self.u.ratio(1, 4)? {
                    axes.push(self.axis(rank)?);
                }
                if self.opset >= 13 {
                    inputs.push(self.int64s(axes));
                } else {
                    attrs.push(ints("axes", axes));
                }
                op
            }
            "Reshape" => {
                let n: usize = s.iter().product();
                let target = match self.u.int_in_range(0..=3)? {
                    0 => vec![1, -1],
                    1 => vec![-1],
                    2 => vec![1, n as i64],
                    _ => {
                        (0..self.u.int_in_range(0..=4)?).map(|_| self.u.int_in_range(-1..=8)).collect::<Result<_>>()?
                    }
                };
                inputs.push(self.int64s(target));
                op
            }
            "MaxPool" | "AveragePool" => {
                self.window(&mut attrs, rank.saturating_sub(2), true)?;
                if self.u.ratio(1, 4)? {
                    attrs.push(int("ceil_mode", 1));
                }
                if op == "AveragePool" && self.u.ratio(1, 4)? {
                    attrs.push(int("count_include_pad", 1));
                }
                op
            }
            "Pad" => {
                let pads = self.pads(rank)?;
                let mode = *self.u.choose(&["constant", "constant", "reflect", "edge"])?;
                attrs.push(string("mode", mode));
                if self.opset >= 11 {
                    inputs.push(self.int64s(pads));
                    if self.u.ratio(1, 2)? {
                        inputs.push(self.weight(vec![])?);
                    }
                } else {
                    attrs.push(ints("pads", pads));
                }
                op
            }
            "Slice" => {
                let a = self.axis(rank)?;
                let (b, e) = (self.u.int_in_range(-3..=4)?, self.u.int_in_range(-3..=9)?);
                if self.opset >= 10 {
                    let (bs, es, axs) = (self.int64s(vec![b]), self.int64s(vec![e]), self.int64s(vec![a]));
                    inputs.extend([bs, es, axs]);
                    if self.u.ratio(1, 2)? {
                        let st = self.u.int_in_range(-2..=2)?;
                        inputs.push(self.int64s(vec![st]));
                    }
                } else {
                    attrs.extend([ints("starts", vec![b]), ints("ends", vec![e]), ints("axes", vec![a])]);
                }
                op
            }
            "Concat" => {
                inputs.push(self.operand(&s)?);
                attrs.push(int("axis", self.axis(rank)?));
                op
            }
            "Gather" => {
                let idx =
                    (0..self.u.int_in_range(1..=3)?).map(|_| self.u.int_in_range(-2..=4)).collect::<Result<_>>()?;
                inputs.push(self.int64s(idx));
                attrs.push(int("axis", self.axis(rank)?));
                op
            }
            "BatchNormalization" => {
                for _ in 0..4 {
                    let d = self.dim(c)?;
                    inputs.push(self.weight(vec![d])?);
                }
                attrs.push(float("epsilon", 1e-5));
                op
            }
            "Conv" => {
                let group = if self.u.ratio(1, 4)? { c.max(1) as i64 } else { 1 };
                let kernel_attr = self.u.ratio(1, 2)?;
                let k = self.window(&mut attrs, rank.saturating_sub(2), kernel_attr)?;
                let m = self.u.int_in_range(1..=4)? * group;
                let cin = self.dim(c / group.max(1) as usize)?;
                let mut dims = vec![m, cin];
                dims.extend(k);
                inputs.push(self.weight(dims)?);
                if self.u.ratio(1, 2)? {
                    let d = self.dim(m as usize)?;
                    inputs.push(self.weight(vec![d])?);
                }
                if group > 1 {
                    attrs.push(int("group", group));
                }
                op
            }
            "Gemm" | "MatMul" => {
                let n = self.u.int_in_range(1..=8)?;
                let k = self.dim(last)?;
                let trans_b = op == "Gemm" && self.u.ratio(1, 2)?;
                inputs.push(self.weight(if trans_b { vec![n, k] } else { vec![k, n] })?);
                if op == "Gemm" {
                    if trans_b {
                        attrs.push(int("transB", 1));
                    }
                    if self.u.ratio(1, 8)? {
                        attrs.push(int("transA", 1));
                    }
                    if self.u.ratio(1, 4)? {
                        attrs.push(float("alpha", f32::from(self.u.arbitrary::<i8>()?) / 32.0));
                    }
                    if self.u.ratio(2, 3)? {
                        let d = self.dim(n as usize)?;
                        inputs.push(self.weight(vec![d])?);
                    }
                }
                op
            }
            "Add" | "Sub" | "Mul" | "Div" => {
                inputs.push(self.operand(&s)?);
                if self.u.ratio(1, 4)? {
                    inputs.swap(0, 1);
                }
                op
            }
            // x·x: the front end's polynomial recognition.
            "Square" => {
                inputs.push(x);
                "Mul"
            }
            "Where" => {
                let cond = self.name("c");
                let zero = self.weight(vec![])?;
                self.nodes.push(NodeProto {
                    op_type: Some("Equal".into()),
                    name: Some(cond.clone()),
                    input: vec![inputs[0].clone(), zero],
                    output: vec![cond.clone()],
                    ..Default::default()
                });
                let other = self.operand(&s)?;
                inputs = vec![cond, inputs[0].clone(), other];
                op
            }
            "Equal" => {
                inputs.push(self.operand(&s)?);
                op
            }
            _ => op,
        };
        let out = self.name("v");
        self.nodes.push(NodeProto {
            op_type: Some(op.into()),
            name: Some(out.clone()),
            input: inputs,
            output: vec![out.clone()],
            attribute: attrs,
            ..Default::default()
        });
        Ok(out)
    }
}

fn import(bytes: &[u8]) -> Option<veil_ir::Graph> {
    if let Ok(dir) = std::env::var("VEIL_FUZZ_DUMP") {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut h);
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = std::fs::write(format!("{dir}/{seq:06}-{:016x}.onnx", h.finish()), bytes);
    }
    let g = import_bytes(bytes, "fuzz.onnx", "fuzz", &ImportOptions::default()).ok()?;
    assert!(veil_ir::verify(&g).is_ok(), "the importer returned an unverified graph");
    Some(g)
}

fn options(u: &mut Unstructured) -> Result<Options> {
    Ok(Options {
        activation: *u.choose(&[Activation::Relu, Activation::Circa, Activation::Poly])?,
        frac_bits: u.int_in_range(6..=16)?,
        ring_bits: if u.ratio(1, 4)? { Some(u.int_in_range(16..=64)?) } else { None },
        drop_bits: if u.ratio(1, 4)? { Some(u.int_in_range(0..=20)?) } else { None },
        input_bound: *u.choose(&[1.0, 4.0, 0.25, 100.0])?,
        objective: *u.choose(&[Objective::Online, Objective::Total])?,
        linear_offline: *u.choose(&[LinearChoice::Auto, LinearChoice::He, LinearChoice::Ot])?,
        ..Options::default()
    })
}

fn build(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let opset = if u.ratio(15, 16)? { u.int_in_range(9..=21)? } else { u.int_in_range(1..=30)? };
    let rank = *u.choose(&[4, 4, 2, 3, 1])?;
    let mut input = vec![1i64];
    for _ in 1..rank {
        input.push(u.int_in_range(1..=8)?);
    }
    let mut g = Gen { u, opset, input, nodes: vec![], inits: vec![], values: vec![], shapes: vec![], fresh: 0 };
    let mut cur = ("x".to_string(), g.input.iter().map(|&d| d as usize).collect::<Vec<_>>());
    for _ in 0..g.u.int_in_range(1..=6)? {
        let (nodes, inits) = (g.nodes.len(), g.inits.len());
        let out = g.node(cur.0.clone(), cur.1.clone())?;
        // The importer is the shape oracle: keep the node if the model still imports, else
        // (after having exercised the refusal) drop it and go on from the last good value.
        match import(&g.model(&out)) {
            // Work is bounded: a model whose values grow past 2^18 elements (nine-dimensional
            // pads multiply quickly) is valid but only slow; drop the node as if refused.
            Some(ig) if ig.values.iter().all(|(_, v)| v.ty.shape.iter().product::<usize>() <= 1 << 18) => {
                let shape = ig.values[ig.outputs[0]].ty.shape.clone();
                g.values.push(out.clone());
                g.shapes.push(shape.clone());
                cur = (out, shape);
            }
            _ => {
                g.nodes.truncate(nodes);
                g.inits.truncate(inits);
            }
        }
    }
    if cur.0 == "x" {
        return Ok(());
    }
    let bytes = g.model(&cur.0);
    let opts = options(&mut g.u)?;
    compile(&bytes, &opts);
    Ok(())
}

/// Everything `veilc compile` and `veilc simulate` do with the model's bytes.
fn compile(bytes: &[u8], opts: &Options) {
    let Some(float) = import(bytes) else { return };
    let files = match veil_compiler::compile(&float, &opts.clone().into()) {
        Ok(c) => c.files.expect("the whole pipeline encodes"),
        Err(veil_compiler::CompileError::Pass(e)) if e.is_user_error() => return,
        Err(e) => panic!("{e}"),
    };
    let veil_compiler::PlanFiles { plan, weights, hash } = files;
    let (mut decoded, h2) = veil_ir::plan::decode_plan(&plan).expect("an encoded plan decodes");
    assert_eq!(hash, h2, "the decoded plan's hash differs");
    veil_ir::plan::attach_weights(&mut decoded, &hash, &weights).expect("its own weights attach");
    // A plan the runtime cannot run yet is reported by `emit` (and refused by `veil`); the
    // cost model refuses the same plans.
    let lowered = veil_ir::schedule::lower(&decoded.graph);
    assert_eq!(lowered.is_ok(), veil_passes::cost::plan_cost(&decoded.graph).is_ok(), "lowering and costing disagree");
    let x: Vec<veil_ir::Tensor> = float
        .inputs
        .iter()
        .map(|&v| {
            let shape = float.values[v].ty.shape.clone();
            let n = shape.iter().product::<usize>();
            let data = (0..n).map(|i| ((i % 7) as f32 - 3.0) / 3.0 * opts.input_bound.min(1.0)).collect();
            veil_ir::Tensor::new(shape, data).expect("data fits the shape")
        })
        .collect();
    veil_ir::eval::run_float(&float, &x).expect("the float graph runs");
    veil_ir::eval::run_fixed(&decoded.graph, &x, 1).expect("the compiled plan runs on an input within its bound");
}

fuzz_target!(|data: &[u8]| {
    let _ = build(data);
});
