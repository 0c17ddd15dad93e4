//! The importer: walks the ONNX graph in order, lowers each node, and collects every error.
//!
//! Each ONNX value becomes a [`Sym`]: a compile-time tensor (initializers and anything computed
//! only from them, such as exporters' `Shape → Gather → Concat → Reshape` chains), an IR value,
//! or a polynomial in an IR value that is only materialised when something other than `Mul`,
//! `Add`, `Sub`, `Div` or `Neg` reads it. That is how `x*x + x` becomes one `poly` node.

use std::collections::{HashMap, HashSet};

use veil_ir::{Const, Domain, Graph, Op, TensorType, ValueId};

use super::attrs::Attrs;
use super::consts::{self, CTensor};
use super::error::NodeError;
use super::proto::{GraphProto, NodeProto, TypeProto, tensor_proto::DataType, type_proto};
use super::{ImportOptions, ints, ops};

/// Highest polynomial degree recognised from `Mul`/`Add` chains.
pub const MAX_POLY_DEGREE: usize = 8;

/// What an ONNX value lowered to.
#[derive(Clone, Debug)]
pub enum Sym {
    /// Known at compile time.
    Const(CTensor),
    /// An IR value.
    Value(ValueId),
    /// `Σ coeffs[i] · base^i`, not yet materialised; `out` is the ONNX value name, `node` the
    /// ONNX node that produced it.
    Poly { base: ValueId, coeffs: Vec<f64>, node: String, out: String },
    /// `a + b·f(base)` with `f` Gelu's inner function, `Erf(x/√2)` or (`tanh`) the tanh form's
    /// `Tanh(√(2/π)(x + 0.044715x³))`, pending until Gelu's written-out form completes it
    /// (`ops::gelu_form`); `arg` is the tanh's operand (for the generic fallback), `node` and
    /// `out` the ONNX node and value.
    GeluInner { base: ValueId, a: f64, b: f64, tanh: bool, arg: Option<Box<Sym>>, node: String, out: String },
    /// `√(σ² + ε)` (or, `inverse`, its reciprocal) of the written-out LayerNormalization over the
    /// axes of `x` from `axis` on, pending until a division of the centred `x` completes it
    /// (`ops::norm_form`); `node` and `out` are the ONNX node and value. Any other reader of the
    /// reciprocal gets it computed on its own (`ops::norm::inv_std`); of the root, is refused.
    NormStd { x: ValueId, axis: usize, eps: f64, inverse: bool, node: String, out: String },
    /// Its producer failed (already reported); readers fail silently.
    Poisoned,
    /// An output the front end does not produce (for example MaxPool's indices).
    Missing(String),
}

/// Per-node context handed to op lowerings.
pub struct Ctx<'a> {
    pub node: &'a NodeProto,
    pub attrs: Attrs<'a>,
    /// Unique node name (the model's, or `<OpType>_<index>`).
    pub name: String,
    /// Version of the default ONNX operator set.
    pub opset: i64,
}

impl Ctx<'_> {
    /// Name of output `i` (ONNX value name).
    pub fn out(&self, i: usize) -> &str {
        self.node.output.get(i).map_or("", String::as_str)
    }
}

/// Importer state.
pub struct Importer {
    pub g: Graph,
    env: HashMap<String, Sym>,
    names: HashSet<String>,
    reveals: HashMap<ValueId, ValueId>,
    /// ONNX values computed by client-side post-processing (Softmax, ArgMax, and movement after them).
    post: HashSet<String>,
    /// ONNX values that only post-processing reads, up to the graph outputs (where a Sigmoid
    /// may run on the client; elsewhere it runs on shares).
    client_only: HashSet<String>,
    /// What the IR values of a written-out LayerNormalization are (`ops::norm_form`).
    pub norm_parts: HashMap<ValueId, ops::norm_form::Part>,
    /// The row statistics of each normalised operand, by operand, first axis and `ε` (bits), so
    /// a normalisation and its statistics share one inverse square root (`ops::norm`).
    pub norm_stats: HashMap<(ValueId, usize, u32), ops::norm::RowStats>,
    /// ONNX values computed from an integer-typed graph input, with their integer type
    /// (`ints`): only ops exact on integers may read them.
    ints: HashMap<String, DataType>,
    /// The element types of initializers and Constant outputs, by ONNX name (a
    /// QuantizeLinear's zero point gives its output type).
    pub const_types: HashMap<String, DataType>,
    /// Each computed DequantizeLinear's output, with what it dequantizes (`ops::quant`: a
    /// QuantizeLinear with the same parameters after a MaxPool undoes it).
    pub dequantized: HashMap<ValueId, ops::quant::Dequantized>,
}

/// Ops that run on the client after the reveal when they end the model.
const POST_OPS: &[&str] = &["Softmax", "LogSoftmax", "ArgMax", "Sigmoid"];
/// Ops that may follow post-processing (data movement on the revealed result).
const POST_MOVEMENT: &[&str] = &["Identity", "Cast", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Dropout"];

/// The ONNX name of a graph input's element type (`""` when it has none).
fn elem_name(input: &super::proto::ValueInfoProto) -> &'static str {
    match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(tt)) => {
            DataType::try_from(tt.elem_type()).unwrap_or(DataType::Undefined).as_str_name()
        }
        _ => "",
    }
}

/// A graph input's type, and its element type when it is an integer type (`ints`).
fn input_type(name: &str, t: &TypeProto, batch: usize) -> Result<(TensorType, Option<DataType>), String> {
    let Some(type_proto::Value::TensorType(tt)) = &t.value else {
        return Err(format!("graph input {name:?} is not a tensor"));
    };
    let et = DataType::try_from(tt.elem_type()).unwrap_or(DataType::Undefined);
    let int = ints::range(et).map(|_| et);
    // The 8- and 4-bit floats and bfloat16 are reals like FLOAT16 (`.npy` stores them as raw
    // bytes, `Graph::raw_inputs`).
    let small_float = veil_ir::RawDtype::from_name(et.as_str_name()).is_some_and(|t| !t.is_integer());
    if !matches!(et, DataType::Float | DataType::Double | DataType::Float16) && int.is_none() && !small_float {
        return Err(format!(
            "graph input {name:?} has element type {}; Veil takes float, integer and boolean inputs",
            et.as_str_name()
        ));
    }
    let Some(shape) = &tt.shape else {
        return Err(format!("graph input {name:?} has no shape; export the model with a static input shape"));
    };
    let mut dims = Vec::new();
    for (i, d) in shape.dim.iter().enumerate() {
        use super::proto::tensor_shape_proto::dimension::Value as D;
        match &d.value {
            Some(D::DimValue(v)) if *v > 0 => dims.push(*v as usize),
            Some(D::DimValue(0)) => return Err(format!("graph input {name:?} has an empty dimension {i}")),
            _ if i == 0 => dims.push(batch),
            other => {
                let what = match other {
                    Some(D::DimParam(p)) => format!(" ({p:?})"),
                    _ => String::new(),
                };
                return Err(format!(
                    "graph input {name:?} has a dynamic dimension {i}{what}; only the batch dimension (0) may be dynamic"
                ));
            }
        }
    }
    Ok((TensorType::f32(dims), int))
}

impl Importer {
    pub fn new(name: &str) -> Self {
        Self {
            g: Graph::new(name),
            env: HashMap::new(),
            names: HashSet::new(),
            reveals: HashMap::new(),
            post: HashSet::new(),
            client_only: HashSet::new(),
            norm_parts: HashMap::new(),
            norm_stats: HashMap::new(),
            ints: HashMap::new(),
            const_types: HashMap::new(),
            dequantized: HashMap::new(),
        }
    }

    /// A value name not used yet, based on `base`.
    pub fn fresh(&mut self, base: &str) -> String {
        let base = if base.is_empty() { "tmp" } else { base };
        let mut name = base.to_string();
        let mut k = 1;
        while self.names.contains(&name) {
            name = format!("{base}.{k}");
            k += 1;
        }
        self.names.insert(name.clone());
        name
    }

    /// Adds an IR node; `out` names its output value.
    pub fn add(&mut self, node: &str, out: &str, op: Op, inputs: &[ValueId]) -> Result<ValueId, String> {
        // An empty result may end the model (ONNX allows it); nothing may compute on one.
        if let Some(&u) = inputs.iter().find(|&&u| self.g.values[u].ty.shape.contains(&0)) {
            return Err(format!(
                "operand {:?} is empty (shape {:?}); Veil computes only on tensors with elements",
                self.g.values[u].name, self.g.values[u].ty.shape
            ));
        }
        let out = self.fresh(out);
        self.g.add_node(node, out, op, inputs).map_err(|e| format!("{}: {}", e.op, e.reason))
    }

    /// Adds a server-private constant (a weight).
    pub fn weight(&mut self, name: &str, shape: Vec<usize>, data: Vec<f32>) -> Const {
        self.g.add_const(name, shape, Domain::Server, data)
    }

    /// A constant that is part of the architecture, not a weight (an activation's fixed slope):
    /// public, so both parties apply it to their own shares.
    pub fn public(&mut self, name: &str, shape: Vec<usize>, data: Vec<f32>) -> Const {
        self.g.add_const(name, shape, Domain::Public, data)
    }

    pub fn ty(&self, v: ValueId) -> &TensorType {
        &self.g.values[v].ty
    }

    /// The IR value of `s`, materialising a pending polynomial.
    pub fn value(&mut self, s: &Sym) -> Result<ValueId, String> {
        match s {
            Sym::Value(v) => Ok(*v),
            Sym::Poly { base, coeffs, node, out } => {
                if let Some(Sym::Value(v)) = self.env.get(out) {
                    return Ok(*v);
                }
                let v = self.materialize(*base, coeffs, node, out)?;
                self.env.insert(out.clone(), Sym::Value(v));
                Ok(v)
            }
            Sym::GeluInner { out, .. } => {
                if let Some(Sym::Value(v)) = self.env.get(out) {
                    return Ok(*v);
                }
                let v = ops::gelu_form::materialize(self, s)?;
                self.env.insert(out.clone(), Sym::Value(v));
                Ok(v)
            }
            Sym::NormStd { x, axis, eps, inverse: true, node, out } => {
                if let Some(Sym::Value(v)) = self.env.get(out) {
                    return Ok(*v);
                }
                let v = ops::norm::inv_std(self, node, out, *x, *axis, *eps as f32)?;
                self.env.insert(out.clone(), Sym::Value(v));
                Ok(v)
            }
            Sym::NormStd { inverse: false, node, out, .. } => {
                Err(format!("reads {out:?} (from node {node:?}), {}", ops::norm_form::SQRT_ALONE))
            }
            Sym::Const(_) => Err("a constant operand where a computed value is expected (not supported)".into()),
            Sym::Poisoned | Sym::Missing(_) => Err("operand unavailable".into()),
        }
    }

    fn materialize(&mut self, base: ValueId, coeffs: &[f64], node: &str, out: &str) -> Result<ValueId, String> {
        let mut c = coeffs.to_vec();
        while c.len() > 1 && c.last() == Some(&0.0) {
            c.pop();
        }
        if c.len() >= 3 {
            return self.add(node, out, Op::Poly { coeffs: c.iter().map(|&x| x as f32).collect() }, &[base]);
        }
        let (c0, c1) = (c[0], c.get(1).copied().unwrap_or(0.0));
        if c0 == 0.0 && c1 == 1.0 {
            return Ok(base);
        }
        let scale = (c1 != 1.0).then(|| self.weight(&format!("{out}.scale"), vec![], vec![c1 as f32]));
        let shift = (c0 != 0.0).then(|| self.weight(&format!("{out}.shift"), vec![], vec![c0 as f32]));
        self.add(node, out, Op::Affine { scale, shift }, &[base])
    }

    /// `v` revealed to the client (one reveal per value).
    pub fn revealed(&mut self, v: ValueId, node: &str) -> Result<ValueId, String> {
        if self.g.values[v].domain == Domain::Client {
            return Ok(v);
        }
        if let Some(&r) = self.reveals.get(&v) {
            return Ok(r);
        }
        let out = format!("{}/revealed", self.g.values[v].name);
        let r = self.add(&format!("reveal:{node}"), &out, Op::Reveal, &[v])?;
        self.reveals.insert(v, r);
        Ok(r)
    }

    /// A graph output that is a constant computed only from the input's shape (`shape_only`):
    /// public, as the plan's shapes are, so the client computes it from its own input as
    /// `x[0]·0 + c` (a `select` of one element per output element and a public affine; the input
    /// is finite, checked before it is encoded), with nothing to share or reveal.
    fn public_output(&mut self, c: &super::consts::CTensor, name: &str) -> Result<ValueId, String> {
        let Some(&x) = self.g.inputs.first() else {
            return Err(format!("graph output {name:?} is a constant and the model has no graph input"));
        };
        let shape = c.shape.clone();
        let n = shape.iter().product::<usize>();
        if n == 0 {
            // Nothing to compute: an empty selection (ONNX allows empty outputs).
            return self.add(name, name, Op::Select { indices: vec![], shape }, &[x]).map_err(|e| e.to_string());
        }
        let out = self.fresh(&format!("{name}/element"));
        let one =
            self.add(&format!("{name}/element"), &out, Op::Select { indices: vec![0; n], shape: shape.clone() }, &[x])?;
        let zero = self.g.add_const(format!("{name}.zero"), vec![], Domain::Public, vec![0.0]);
        let value = self.g.add_const(format!("{name}.value"), shape, Domain::Public, c.floats());
        self.add(name, name, Op::Affine { scale: Some(zero), shift: Some(value) }, &[one]).map_err(|e| e.to_string())
    }

    /// Whether only post-processing reads the ONNX value `name`, up to the graph outputs.
    pub fn is_client_only(&self, name: &str) -> bool {
        self.client_only.contains(name)
    }

    /// Imports the whole graph, returning every node error.
    pub fn run(&mut self, graph: &GraphProto, opts: &ImportOptions, opset: i64) -> Result<(), Vec<NodeError>> {
        let mut errors = Vec::new();
        let model_err =
            |reason: String| NodeError { node: String::new(), op_type: String::new(), domain: String::new(), reason };
        for init in &graph.initializer {
            self.const_types
                .insert(init.name().to_string(), DataType::try_from(init.data_type()).unwrap_or(DataType::Undefined));
            match consts::from_proto(init) {
                Ok(t) => {
                    self.env.insert(init.name().to_string(), Sym::Const(t));
                }
                Err(e) => errors.push(model_err(e)),
            }
        }
        for input in &graph.input {
            let name = input.name();
            // Old exporters list initializers as inputs too: those are weights.
            if self.env.contains_key(name) {
                continue;
            }
            let ty = input.r#type.as_ref().ok_or_else(|| format!("graph input {name:?} has no type"));
            match ty.and_then(|t| input_type(name, t, opts.batch)) {
                Ok((ty, int)) => {
                    if let Some(t) = int {
                        self.ints.insert(name.to_string(), t);
                    }
                    if let Some(t) = veil_ir::RawDtype::from_name(elem_name(input)) {
                        self.g.raw_inputs.push((self.g.inputs.len(), t));
                    }
                    self.names.insert(name.to_string());
                    let v = self.g.add_input(name, ty);
                    self.env.insert(name.to_string(), Sym::Value(v));
                }
                Err(e) => {
                    errors.push(model_err(e));
                    self.env.insert(name.to_string(), Sym::Poisoned);
                }
            }
        }
        self.client_only = client_only(graph);
        if self.g.inputs.is_empty() && errors.is_empty() {
            errors.push(model_err("the model has no (non-initializer) graph input".into()));
        }
        for (i, node) in graph.node.iter().enumerate() {
            let name = if node.name().is_empty() { format!("{}_{i}", node.op_type()) } else { node.name().to_string() };
            let fail = |reason: String| NodeError {
                node: name.clone(),
                op_type: node.op_type().to_string(),
                domain: node.domain().to_string(),
                reason,
            };
            match self.node(node, &name, opset) {
                Ok(syms) => {
                    for (k, out) in node.output.iter().enumerate() {
                        if out.is_empty() {
                            continue;
                        }
                        let s = syms.get(k).cloned().unwrap_or_else(|| {
                            Sym::Missing(format!(
                                "output {k} ({out:?}) of node {name:?} ({}), which Veil does not compute",
                                node.op_type()
                            ))
                        });
                        self.env.insert(out.clone(), s);
                    }
                }
                Err(reason) => {
                    if let Some(reason) = reason {
                        errors.push(fail(reason));
                    }
                    for out in &node.output {
                        self.env.insert(out.clone(), Sym::Poisoned);
                    }
                }
            }
        }
        for out in &graph.output {
            let name = out.name();
            let s = self.env.get(name).cloned();
            let result = match s {
                None => Err(format!("graph output {name:?} is not computed by any node")),
                Some(Sym::Poisoned) => continue,
                Some(Sym::Missing(why)) => Err(format!("graph output {name:?} is {why}")),
                Some(Sym::Const(c)) if shape_only(graph, name) => self.public_output(&c, name),
                Some(Sym::Const(_)) => Err(format!(
                    "graph output {name:?} is a constant; Veil compiles models whose outputs depend on the input \
(a constant computed only from the input's shape is returned as it is)"
                )),
                Some(s) => self.value(&s).and_then(|v| self.revealed(v, name)),
            };
            match result {
                Ok(v) => self.g.outputs.push(v),
                Err(e) => errors.push(model_err(e)),
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// Lowers one node. `Err(None)`: an operand failed earlier (already reported).
    fn node(&mut self, node: &NodeProto, name: &str, opset: i64) -> Result<Vec<Sym>, Option<String>> {
        let op = node.op_type();
        if !(node.domain().is_empty() || node.domain() == "ai.onnx") {
            return Err(Some("not supported (custom operator domain)".into()));
        }
        let known = ops::is_supported(op);
        let mut inputs = Vec::with_capacity(node.input.len());
        let mut poisoned = false;
        for input in &node.input {
            if input.is_empty() {
                inputs.push(None);
                continue;
            }
            match self.env.get(input) {
                None => {
                    return Err(Some(format!(
                        "input {input:?} is not defined by an initializer, a graph input or an earlier node"
                    )));
                }
                Some(Sym::Poisoned) => poisoned = true,
                Some(Sym::Missing(why)) if known => return Err(Some(format!("reads {why}"))),
                Some(_) => {}
            }
            inputs.push(self.env.get(input).cloned());
        }
        if !known {
            return Err(Some(ops::unsupported_reason(op)));
        }
        if poisoned {
            return Err(None);
        }
        // Client-side post-processing must end the model.
        let reads_post = node.input.iter().find(|i| self.post.contains(*i));
        // A Sigmoid or Softmax the model computes on runs on shares.
        let is_post = (POST_OPS.contains(&op)
            && (!matches!(op, "Sigmoid" | "Softmax") || self.is_client_only(node.output[0].as_str())))
            || (POST_MOVEMENT.contains(&op) && reads_post.is_some());
        if let (Some(i), false) = (reads_post, is_post) {
            return Err(Some(format!(
                "reads {i:?}, the result of client-side post-processing; LogSoftmax and ArgMax run on the client after the result is revealed (Veil has no two-party protocol for them), so they are supported only at the end of the model"
            )));
        }
        if is_post {
            self.post.extend(node.output.iter().cloned());
        }
        let ctx = Ctx { node, attrs: Attrs::new(node), name: name.to_string(), opset };
        if op == "Constant"
            && let (Some(out), Ok(Some(t))) = (node.output.first(), ctx.attrs.tensor("value"))
        {
            self.const_types.insert(out.clone(), DataType::try_from(t.data_type()).unwrap_or(DataType::Undefined));
        }
        let reads_int = node.input.first().is_some_and(|i| self.ints.contains_key(i));
        let (out, int_out) = if matches!(op, "Cast" | "CastLike") && reads_int {
            // `int_output` decides the cast: when exact, the value passes unchanged; to BOOL
            // it is `x ≠ 0`.
            let t = self.int_output(&ctx, &inputs).map_err(Some)?;
            let from = node.input.first().and_then(|i| self.ints.get(i).copied());
            if t == Some(DataType::Bool) && from != Some(DataType::Bool) {
                (ops::client_mask::nonzero(self, &ctx, &inputs).map_err(Some)?, t)
            } else {
                (vec![inputs[0].clone().ok_or_else(|| Some("input 0 is required".to_string()))?], t)
            }
        } else {
            // The op's own refusal first (a shape computed from the input, say), then whether
            // it is exact on integers.
            let out = ops::lower(self, &ctx, &inputs).map_err(Some)?;
            // QuantizeLinear and a Cast to an integer type make integers of a real.
            let made = ops::quant::integer_result(self, &ctx).map_err(Some)?;
            (out, self.int_output(&ctx, &inputs).map_err(Some)?.or(made))
        };
        if let Some(t) = int_out {
            for (o, s) in node.output.iter().zip(&out) {
                if !matches!(s, Sym::Const(_)) {
                    self.ints.insert(o.clone(), t);
                }
            }
        }
        Ok(out)
    }

    /// The integer type of ONNX value `name` when it is computed from an integer input or made
    /// integer by a QuantizeLinear or Cast (`ints`).
    pub fn int_type(&self, name: &str) -> Option<DataType> {
        self.ints.get(name).copied()
    }

    /// The integer type of the node's outputs when it reads an integer-typed computed value
    /// (`ints::output_type`), or why it cannot. A `Cast` or `CastLike` of such a value is
    /// decided here; the op's own lowering passes it through.
    fn int_output(&self, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Option<DataType>, String> {
        let node = ctx.node;
        // A gather's output holds its data's values: an integer index into a table of reals
        // (an embedding) gives reals.
        let typed = if node.op_type().starts_with("Gather") { 1 } else { node.input.len() };
        let Some(t) = node.input.iter().zip(inputs).take(typed).find_map(|(name, s)| match s {
            Some(Sym::Const(_)) | None => None,
            Some(_) => self.ints.get(name).copied(),
        }) else {
            return Ok(None);
        };
        let cast_to = match node.op_type() {
            "Cast" => {
                let to = ctx.attrs.int("to")?.ok_or("attribute to is required")?;
                Some(DataType::try_from(to as i32).unwrap_or(DataType::Undefined))
            }
            "CastLike" => match inputs.get(1) {
                Some(Some(Sym::Const(c))) => {
                    Some(if matches!(c.data, consts::CData::F(_)) { DataType::Float } else { DataType::Int64 })
                }
                _ => node.input.get(1).and_then(|n| self.ints.get(n).copied()).or(Some(DataType::Float)),
            },
            _ => None,
        };
        ints::output_type(node.op_type(), t, cast_to)
    }
}

/// Whether ONNX value `name` is computed only from the static shapes of computed values: every
/// path back from it ends at a `Shape` or `Size` node, with no initializer, graph input or tensor
/// attribute (`Constant`, `ConstantOfShape`'s value) on the way (those could be the model's
/// weights or the client's data). Such a value is as public as the plan's shapes.
fn shape_only(graph: &GraphProto, name: &str) -> bool {
    let producer: HashMap<&str, &NodeProto> =
        graph.node.iter().flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n))).collect();
    let mut seen = HashSet::new();
    let mut todo = vec![name];
    while let Some(v) = todo.pop() {
        if !seen.insert(v) {
            continue;
        }
        let Some(node) = producer.get(v) else { return false };
        match node.op_type() {
            "Shape" | "Size" => {}
            // A tensor in an attribute (Constant's, ConstantOfShape's value) is the model's data.
            _ if node.attribute.iter().any(|a| a.t.is_some() || !a.tensors.is_empty()) => return false,
            _ => {
                let inputs: Vec<&str> = node.input.iter().map(String::as_str).filter(|i| !i.is_empty()).collect();
                if inputs.is_empty() {
                    return false;
                }
                todo.extend(inputs);
            }
        }
    }
    true
}

/// The ONNX values that only client-side post-processing (or movement after it) reads, up to
/// the graph outputs: every reader is such an op and its outputs are such values. Nodes are in
/// topological order, so one backward sweep settles every value after its readers.
fn client_only(graph: &GraphProto) -> HashSet<String> {
    let mut readers: HashMap<&str, Vec<&NodeProto>> = HashMap::new();
    for n in &graph.node {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            readers.entry(i.as_str()).or_default().push(n);
        }
    }
    let mut out = HashSet::new();
    for n in graph.node.iter().rev() {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            let ok = readers.get(o.as_str()).is_none_or(|rs| {
                rs.iter().all(|r| {
                    (POST_OPS.contains(&r.op_type()) || POST_MOVEMENT.contains(&r.op_type()))
                        && r.output.iter().all(|x| x.is_empty() || out.contains(x))
                })
            });
            if ok {
                out.insert(o.clone());
            }
        }
    }
    out
}
