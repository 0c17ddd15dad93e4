//! The parser of the text form [`super::to_text`] prints: `parse(&to_text(g))` is `g` up to
//! what the text does not show.
//!
//! What the text omits, and what the parsed graph has instead:
//! - constant values (`data`, `frac_bits`, `qdata`): a `const` line may end in `= [v, ...]`
//!   (row-major floats) and may give a fixed-point scale `fxF` before its shape, which sets
//!   `frac_bits` and `qdata = round(v · 2^F)` as `quantize` computes it (the printer writes
//!   neither; hand-written file tests do). Without them the constant has no values, like a plan
//!   read without its weights file, and a quantized graph does not verify (its constants have
//!   no scale).
//!   [`parse_with_weights`] takes all three from a side input instead (a graph's `consts`);
//! - dead nodes and values (not in the body): value numbers are kept (`%k` is value `k`), so a
//!   gap in the numbering becomes a dead placeholder value (named `%k (not in the text)`)
//!   defined by a dead placeholder node; node numbers are the body order;
//! - `select` indices beyond the first eight are printed as `…(N total)`: such a line is
//!   refused (no bundled model has one).
//!
//! The parsed graph is verified ([`crate::verify`]). Every error names the line and column;
//! no input makes the parser panic.

use std::collections::HashMap;

use crate::graph::{Def, Graph, Node, NodeId, Value, ValueId};
use crate::op::{CircaVariant, Const, Constant, Op, TruncMode, Window2d};
use crate::types::{Domain, ElemType, TensorType};

/// Why a text did not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// The text is not in the form [`super::to_text`] prints.
    #[error("{line}:{column}: {message}")]
    Syntax {
        /// Line of the error, from 1 (0: about the side input, not a line).
        line: usize,
        /// Column in characters, from 1 (0 with line 0).
        column: usize,
        /// What was expected or what is wrong.
        message: String,
    },
    /// The text parses but the graph breaks an IR invariant.
    #[error("the parsed graph is invalid: {0}")]
    Invalid(#[from] crate::VerifyError),
}

/// Parses the text form; constants get the values written after `=` on their line (or none).
pub fn parse(text: &str) -> Result<Graph, ParseError> {
    let g = parse_unverified(text)?;
    crate::verify(&g)?;
    Ok(g)
}

/// [`parse`], with every constant's `data`, `frac_bits` and `qdata` taken from `weights` by
/// index (a constant missing from `weights`, or of another shape, is an error).
pub fn parse_with_weights(text: &str, weights: &crate::Arena<Constant>) -> Result<Graph, ParseError> {
    let mut g = parse_unverified(text)?;
    for i in 0..g.consts.len() {
        let c = Const::from_index(i);
        let Some(w) = weights.try_get(c) else {
            return Err(ParseError::Syntax {
                line: 0,
                column: 0,
                message: format!("@{i} has no weights in the side input"),
            });
        };
        let k = &mut g.consts[c];
        if w.shape != k.shape {
            return Err(ParseError::Syntax {
                line: 0,
                column: 0,
                message: format!("@{i} has shape {:?} but its weights {:?}", k.shape, w.shape),
            });
        }
        k.data = w.data.clone();
        k.frac_bits = w.frac_bits;
        k.qdata = w.qdata.clone();
    }
    crate::verify(&g)?;
    Ok(g)
}

/// A position in one line.
struct Cursor<'a> {
    line: usize,
    text: &'a str,
    pos: usize,
}

type Res<T> = Result<T, ParseError>;

impl<'a> Cursor<'a> {
    fn err<T>(&self, message: impl Into<String>) -> Res<T> {
        let column = self.text[..self.pos].chars().count() + 1;
        Err(ParseError::Syntax { line: self.line, column, message: message.into() })
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn ws(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start_matches(' ').len();
    }

    fn at_end(&self) -> bool {
        self.rest().is_empty()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.rest().starts_with(lit) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, lit: &str) -> Res<()> {
        self.ws();
        if self.eat(lit) { Ok(()) } else { self.err(format!("expected `{lit}`")) }
    }

    /// A run of characters up to a space (or the end of the line).
    fn token(&mut self) -> &'a str {
        self.ws();
        let r = self.rest();
        let n = r.find(' ').unwrap_or(r.len());
        self.pos += n;
        &r[..n]
    }

    /// A word: letters, digits, `_`.
    fn word(&mut self) -> Res<&'a str> {
        self.ws();
        let r = self.rest();
        let n = r.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(r.len());
        if n == 0 {
            return self.err("expected a word");
        }
        self.pos += n;
        Ok(&r[..n])
    }

    fn number<T: std::str::FromStr>(&mut self, what: &str) -> Res<T> {
        self.ws();
        let r = self.rest();
        let n = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        match r[..n].parse() {
            Ok(v) => {
                self.pos += n;
                Ok(v)
            }
            Err(_) => self.err(format!("expected {what}")),
        }
    }

    /// `%k`.
    fn value(&mut self) -> Res<usize> {
        self.expect("%")?;
        self.number("a value number after `%`")
    }

    /// A string as Rust's `{:?}` prints it.
    fn string(&mut self) -> Res<String> {
        self.expect("\"")?;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else { return self.err("unterminated string") };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let Some(e) = self.peek() else { return self.err("unterminated escape") };
                    self.pos += e.len_utf8();
                    match e {
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        '0' => out.push('\0'),
                        '\\' | '"' | '\'' => out.push(e),
                        'u' => {
                            self.expect("{")?;
                            let r = self.rest();
                            let n = r.find('}').unwrap_or(r.len());
                            let ch = u32::from_str_radix(&r[..n], 16).ok().and_then(char::from_u32);
                            let Some(ch) = ch else { return self.err("bad \\u{...} escape") };
                            self.pos += n;
                            self.expect("}")?;
                            out.push(ch);
                        }
                        _ => {
                            self.pos -= e.len_utf8();
                            return self.err(format!("unknown escape \\{e}"));
                        }
                    }
                }
                _ => out.push(c),
            }
        }
    }

    fn domain(&mut self) -> Res<Domain> {
        let start = self.pos;
        match self.word()? {
            "public" => Ok(Domain::Public),
            "client" => Ok(Domain::Client),
            "server" => Ok(Domain::Server),
            "shared" => Ok(Domain::Shared),
            w => {
                self.pos = start;
                self.ws();
                self.err(format!("unknown domain {w:?} (expected public, client, server or shared)"))
            }
        }
    }

    /// `[a,b,...]` of unsigned integers.
    fn dims(&mut self) -> Res<Vec<usize>> {
        self.expect("[")?;
        let mut out = Vec::new();
        if self.eat("]") {
            return Ok(out);
        }
        loop {
            out.push(self.number("a dimension")?);
            if self.eat("]") {
                return Ok(out);
            }
            self.expect(",")?;
        }
    }

    /// `f32[...]`, `fx12[...]` or `i64[...]`.
    fn ty(&mut self) -> Res<TensorType> {
        self.ws();
        let elem = if self.eat("f32") {
            ElemType::F32
        } else if self.eat("i64") {
            ElemType::I64
        } else if self.eat("fx") {
            ElemType::Fixed { frac_bits: self.number("fractional bits after `fx`")? }
        } else {
            return self.err("expected a type (f32[..], fxF[..] or i64[..])");
        };
        Ok(TensorType { elem, shape: self.dims()? })
    }
}

/// Parses a whole attribute value (the text after `key=`), at `cur`'s line for errors.
fn attr<T>(cur: &Cursor, at: usize, key: &str, v: &str, f: impl FnOnce(&str) -> Option<T>) -> Res<T> {
    f(v).map_or_else(
        || {
            let c = Cursor { line: cur.line, text: cur.text, pos: at };
            c.err(format!("bad value {v:?} for `{key}`"))
        },
        Ok,
    )
}

fn list<T: std::str::FromStr>(v: &str) -> Option<Vec<T>> {
    let inner = v.strip_prefix('[')?.strip_suffix(']')?;
    if inner.is_empty() {
        return Some(Vec::new());
    }
    inner.split(',').map(|x| x.parse().ok()).collect()
}

fn array<const N: usize>(v: &str) -> Option<[usize; N]> {
    list::<usize>(v)?.try_into().ok()
}

fn const_ref(v: &str) -> Option<Const> {
    v.strip_prefix('@')?.parse().ok().map(Const::from_index)
}

fn opt_f32(v: &str) -> Option<Option<f32>> {
    if v == "none" { Some(None) } else { v.parse().ok().map(Some) }
}

fn boolean(v: &str) -> Option<bool> {
    v.parse().ok()
}

/// The attributes of one node line, by name, with the column each value starts at.
struct Attrs<'c, 'a> {
    cur: &'c Cursor<'a>,
    items: Vec<(&'a str, &'a str, usize)>,
    used: Vec<bool>,
}

impl<'a> Attrs<'_, 'a> {
    fn get<T>(&mut self, key: &str, f: impl FnOnce(&str) -> Option<T>) -> Res<Option<T>> {
        match self.items.iter().position(|(k, _, _)| *k == key) {
            None => Ok(None),
            Some(i) => {
                self.used[i] = true;
                let (_, v, at) = self.items[i];
                attr(self.cur, at, key, v, f).map(Some)
            }
        }
    }

    fn req<T>(&mut self, key: &str, f: impl FnOnce(&str) -> Option<T>) -> Res<T> {
        match self.get(key, f)? {
            Some(v) => Ok(v),
            None => self.cur.err(format!("missing attribute `{key}`")),
        }
    }

    fn window(&mut self) -> Res<Window2d> {
        Ok(Window2d {
            kernel: self.req("kernel", array::<2>)?,
            strides: self.req("strides", array::<2>)?,
            pads: self.req("pads", array::<4>)?,
            dilations: self.req("dilations", array::<2>)?,
        })
    }

    /// Refuses attributes the op does not have.
    fn finish(&self) -> Res<()> {
        match self.items.iter().zip(&self.used).find(|(_, used)| !**used) {
            None => Ok(()),
            Some(((k, _, at), _)) => {
                let c = Cursor { line: self.cur.line, text: self.cur.text, pos: at - k.len() - 1 };
                c.err(format!("unknown attribute `{k}` for this op"))
            }
        }
    }
}

fn op(mnemonic: &str, at: usize, a: &mut Attrs) -> Res<Op> {
    let op = match mnemonic {
        "dense" => Op::Dense { weight: a.req("weight", const_ref)?, bias: a.get("bias", const_ref)? },
        "conv2d" => Op::Conv2d {
            weight: a.req("weight", const_ref)?,
            bias: a.get("bias", const_ref)?,
            window: a.window()?,
            groups: a.req("groups", |v| v.parse().ok())?,
        },
        "affine" => Op::Affine { scale: a.get("scale", const_ref)?, shift: a.get("shift", const_ref)? },
        "batchnorm" => Op::BatchNorm {
            scale: a.req("scale", const_ref)?,
            bias: a.req("bias", const_ref)?,
            mean: a.req("mean", const_ref)?,
            var: a.req("var", const_ref)?,
            epsilon: a.req("epsilon", |v| v.parse().ok())?,
        },
        "add" => Op::Add,
        "mul" => Op::Mul,
        "matmul" => Op::MatMul,
        "pl_sigmoid" => Op::PlSigmoid,
        "exp2" => Op::Exp2,
        "reciprocal" => Op::Reciprocal,
        "rsqrt" => Op::Rsqrt { eps: a.req("eps", |v| v.parse().ok())? },
        "one_hot" => Op::OneHot { depth: a.req("depth", |v| v.parse().ok())? },
        "round" => Op::Round {
            mode: a.req("mode", crate::RoundMode::parse)?,
            min: a.get("min", opt_f32)?.flatten(),
            max: a.get("max", opt_f32)?.flatten(),
            zero_point: a.get("zero_point", const_ref)?,
            grid: a.get("grid", crate::FloatGrid::parse)?,
        },
        "pl_gelu" => Op::PlGelu { tanh: a.get("tanh", boolean)?.unwrap_or(false) },
        "sub" => Op::Sub,
        "relu" => Op::Relu,
        "reveal" => Op::Reveal,
        "leaky_relu" => Op::LeakyRelu { alpha: a.req("alpha", |v| v.parse().ok())? },
        "clip" => Op::Clip { min: a.req("min", opt_f32)?, max: a.req("max", opt_f32)? },
        "poly" => Op::Poly { coeffs: a.req("coeffs", list::<f32>)? },
        "maxpool" => Op::MaxPool { window: a.window()? },
        "sumpool" => Op::SumPool { window: a.window()? },
        "avgpool" => Op::AvgPool { window: a.window()?, count_include_pad: a.req("count_include_pad", boolean)? },
        "stochastic_relu" => Op::StochasticRelu {
            drop_bits: a.req("drop_bits", |v| if v == "auto" { Some(None) } else { v.parse().ok().map(Some) })?,
            variant: a.req("variant", |v| match v {
                "pos-zero" => Some(CircaVariant::PosZero),
                "neg-pass" => Some(CircaVariant::NegPass),
                _ => None,
            })?,
            test_bits: a.get("test_bits", |v| v.parse().ok())?,
        },
        "truncate" => Op::Truncate {
            bits: a.req("bits", |v| v.parse().ok())?,
            mode: a.req("mode", |v| match v {
                "exact" => Some(TruncMode::Exact),
                "local" => Some(TruncMode::Local),
                "stochastic" => Some(TruncMode::Stochastic),
                _ => None,
            })?,
        },
        "reshape" => Op::Reshape { shape: a.req("shape", list::<usize>)? },
        "select" => {
            let shape = a.req("shape", list::<usize>)?;
            let indices = a.req("indices", |v| if v.contains('…') { None } else { list::<u32>(v) })?;
            Op::Select { indices, shape }
        }
        "transpose" => Op::Transpose { perm: a.req("perm", list::<usize>)? },
        "concat" => Op::Concat { axis: a.req("axis", |v| v.parse().ok())? },
        "pad" => Op::Pad { pads: a.req("pads", list::<usize>)?, value: a.req("value", |v| v.parse().ok())? },
        "softmax" | "log_softmax" => {
            let axis = a.req("axis", |v| v.parse().ok())?;
            let coerce_2d = a.get("coerce_2d", boolean)?.unwrap_or(false);
            if mnemonic == "softmax" { Op::Softmax { axis, coerce_2d } } else { Op::LogSoftmax { axis, coerce_2d } }
        }
        "sigmoid" => Op::Sigmoid,
        "argmax" => Op::ArgMax {
            axis: a.req("axis", |v| v.parse().ok())?,
            keepdims: a.req("keepdims", boolean)?,
            select_last_index: a.get("select_last_index", boolean)?.unwrap_or(false),
        },
        _ => return Cursor { line: a.cur.line, text: a.cur.text, pos: at }.err(format!("unknown op {mnemonic:?}")),
    };
    a.finish()?;
    Ok(op)
}

/// What the lines say, before the arenas are built.
struct Parsed {
    values: HashMap<usize, (Value, usize)>,
    /// Each node, whether it runs over OT, and its narrowed operand width (`in_bits=W`).
    nodes: Vec<(Node, bool, Option<u8>)>,
}

fn parse_unverified(text: &str) -> Res<Graph> {
    let mut g = Graph::default();
    let mut p = Parsed { values: HashMap::new(), nodes: Vec::new() };
    let mut seen_graph = false;
    let mut outputs_line = None;
    let mut last_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let mut cur = Cursor { line: i + 1, text: raw, pos: 0 };
        last_line = i + 1;
        cur.ws();
        // Blank lines and comment lines (file tests' `; run:` headers) are skipped.
        if cur.at_end() || cur.peek() == Some(';') {
            continue;
        }
        if !seen_graph {
            cur.expect("graph")?;
            g.name = cur.string()?;
            seen_graph = true;
        } else if outputs_line.is_some() {
            return cur.err("nothing may follow the `output` line");
        } else if cur.eat("ring") {
            g.ring_bits = Some(cur.number("the ring width")?);
            cur.expect("bits")?;
        } else if cur.eat("input bound") {
            let at = cur.pos;
            let t = cur.token();
            g.input_bound = Some(attr(&cur, at, "input bound", t, |v| v.parse().ok())?);
        } else if cur.eat("garbling") {
            let at = cur.pos;
            let t = cur.token();
            g.garbling = attr(&cur, at, "garbling scheme", t, |v| v.parse().ok())?;
        } else if cur.eat("ot extension") {
            let at = cur.pos;
            let t = cur.token();
            g.ot_extension = attr(&cur, at, "OT extension", t, |v| v.parse().ok())?;
        } else if cur.eat("const") {
            const_line(&mut cur, &mut g)?;
        } else if cur.eat("input") {
            cur.ws();
            let at = cur.pos;
            let k = cur.value()?;
            let name = cur.string()?;
            let domain = cur.domain()?;
            let ty = cur.ty()?;
            cur.ws();
            if cur.eat("stored=") {
                let at = cur.pos;
                let t = cur.token();
                let raw = attr(&cur, at, "stored element type", t, crate::RawDtype::from_name)?;
                g.raw_inputs.push((g.inputs.len(), raw));
            }
            let def = Def::Input(g.inputs.len());
            if p.values.insert(k, (Value { name, ty, domain, def }, cur.line)).is_some() {
                cur.pos = at;
                return cur.err(format!("%{k} is defined twice"));
            }
            g.inputs.push(ValueId::from_index(k));
        } else if cur.peek() == Some('%') {
            node_line(&mut cur, &mut p)?;
        } else if cur.eat("output") {
            let mut outs = Vec::new();
            cur.ws();
            while !cur.at_end() {
                if !outs.is_empty() {
                    cur.expect(",")?;
                }
                let at = cur.pos;
                let k = cur.value()?;
                if !p.values.contains_key(&k) {
                    cur.pos = at;
                    cur.ws();
                    return cur.err(format!("%{k} is not defined"));
                }
                outs.push(ValueId::from_index(k));
                cur.ws();
            }
            g.outputs = outs;
            outputs_line = Some(cur.line);
            continue;
        } else {
            return cur.err("expected `ring`, `input bound`, `const`, `input`, a node `%k ...` or `output`");
        }
        cur.ws();
        if !cur.at_end() {
            return cur.err("unexpected text at the end of the line");
        }
    }
    if !seen_graph {
        return Err(ParseError::Syntax { line: 1, column: 1, message: "expected `graph \"name\"`".into() });
    }
    if outputs_line.is_none() {
        return Err(ParseError::Syntax { line: last_line + 1, column: 1, message: "missing the `output` line".into() });
    }
    // Values at their printed numbers; gaps become dead placeholders.
    let count = p.values.keys().max().map_or(0, |m| m + 1);
    if count > p.values.len().saturating_mul(2).saturating_add(1 << 16) {
        return Err(ParseError::Syntax {
            line: 0,
            column: 0,
            message: format!("value numbers up to %{} for {} values", count - 1, p.values.len()),
        });
    }
    let mut fillers = Vec::new();
    for k in 0..count {
        match p.values.remove(&k) {
            Some((v, _)) => {
                g.values.append(v);
            }
            None => {
                let name = format!("%{k} (not in the text)");
                let node = NodeId::from_index(p.nodes.len() + fillers.len());
                g.values.append(Value {
                    name: name.clone(),
                    ty: TensorType::f32(vec![1]),
                    domain: Domain::Public,
                    def: Def::Node(node),
                });
                fillers.push(Node { name, op: Op::Reveal, inputs: Vec::new(), output: ValueId::from_index(k) });
            }
        }
    }
    for (i, (node, ot, bits)) in p.nodes.into_iter().enumerate() {
        let id = NodeId::from_index(i);
        g.nodes.append(node);
        g.body.push(id);
        if ot {
            g.over_ot.push(id);
        }
        if let Some(w) = bits {
            g.narrow_bits.push((id, w));
        }
    }
    for f in fillers {
        g.nodes.append(f);
    }
    Ok(g)
}

/// `const @i "name" domain [shape]`, with an optional scale `fxF` before the shape and values
/// `= [v, ...]` after it.
fn const_line(cur: &mut Cursor, g: &mut Graph) -> Res<()> {
    cur.expect("@")?;
    let at = cur.pos;
    let i: usize = cur.number("a constant number after `@`")?;
    if i != g.consts.len() {
        cur.pos = at;
        return cur.err(format!("expected @{} (constants are numbered in order)", g.consts.len()));
    }
    let name = cur.string()?;
    let domain = cur.domain()?;
    cur.ws();
    let frac_bits: Option<u8> = if cur.eat("fx") { Some(cur.number("fractional bits after `fx`")?) } else { None };
    let shape = cur.dims()?;
    let mut data = Vec::new();
    cur.ws();
    if cur.eat("=") {
        cur.expect("[")?;
        loop {
            cur.ws();
            if cur.eat("]") {
                break;
            }
            if !data.is_empty() {
                cur.expect(",")?;
                cur.ws();
            }
            let r = cur.rest();
            let n = r.find([',', ']', ' ']).unwrap_or(r.len());
            let Ok(v) = r[..n].parse::<f32>() else { return cur.err("expected a number") };
            data.push(v);
            cur.pos += n;
        }
        let want = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if want != Some(data.len()) {
            return cur.err(format!("{} values for shape {shape:?}", data.len()));
        }
    }
    // Quantized as `quantize` does: round(v · 2^F), within 2^60.
    let mut qdata = Vec::new();
    if let Some(f) = frac_bits.filter(|_| !data.is_empty()) {
        let m = f64::from(f).exp2();
        for &x in &data {
            let v = (f64::from(x) * m).round();
            if v.is_nan() || v.abs() >= 2f64.powi(60) {
                return cur.err(format!("{x} does not fit 61 bits at scale {f}"));
            }
            qdata.push(v as i64);
        }
    }
    g.consts.append(Constant { name, shape, domain, data, frac_bits, qdata });
    Ok(())
}

/// `%k "name" = op %a, %b attr=v ... [offline=ot | nonlinear=ot] [in_bits=W] : domain type    # node "name"`.
fn node_line(cur: &mut Cursor, p: &mut Parsed) -> Res<()> {
    let at = cur.pos;
    let k = cur.value()?;
    if p.values.contains_key(&k) {
        cur.pos = at;
        return cur.err(format!("%{k} is defined twice"));
    }
    let value_name = cur.string()?;
    cur.expect("=")?;
    let mnemonic = cur.word()?;
    let mnemonic_at = cur.pos - mnemonic.len();
    let mut inputs = Vec::new();
    let mut items = Vec::new();
    loop {
        cur.ws();
        match cur.peek() {
            None => return cur.err("expected ` : domain type` after the operands"),
            Some(':') => break,
            Some('%') | Some(',') => {
                if !items.is_empty() {
                    return cur.err("operands come before attributes");
                }
                if !inputs.is_empty() {
                    cur.expect(",")?;
                    cur.ws();
                }
                let at = cur.pos;
                let v = cur.value()?;
                if !p.values.contains_key(&v) {
                    cur.pos = at;
                    return cur.err(format!("%{v} is used before it is defined"));
                }
                inputs.push(ValueId::from_index(v));
            }
            Some(_) => {
                let start = cur.pos;
                let t = cur.token();
                let Some((key, value)) = t.split_once('=') else {
                    cur.pos = start;
                    return cur.err(format!("expected `key=value`, an operand `%k` or ` : `, found {t:?}"));
                };
                items.push((key, value, start + key.len() + 1));
            }
        }
    }
    let ot = match items.iter().position(|(k, _, _)| *k == "offline" || *k == "nonlinear") {
        Some(i) if items[i].1 == "ot" => {
            items.remove(i);
            true
        }
        Some(i) => {
            cur.pos = items[i].2;
            return cur.err(format!("`{}` can only be `ot`", items[i].0));
        }
        None => false,
    };
    // `in_bits=W` (a narrowed read) or `he_bits=K` (an HE layer's plaintext width): both are
    // `Graph::narrow_bits` entries.
    let bits = match items.iter().position(|(k, _, _)| *k == "in_bits" || *k == "he_bits") {
        Some(i) => {
            let (key, v, at) = items.remove(i);
            match v.parse::<u8>() {
                Ok(w) => Some(w),
                Err(_) => {
                    cur.pos = at;
                    return cur.err(format!("`{key}` must be a width in bits, found {v:?}"));
                }
            }
        }
        None => None,
    };
    let n = items.len();
    let snapshot = Cursor { line: cur.line, text: cur.text, pos: cur.pos };
    let mut attrs = Attrs { cur: &snapshot, items, used: vec![false; n] };
    let op = op(mnemonic, mnemonic_at, &mut attrs)?;
    cur.expect(":")?;
    let domain = cur.domain()?;
    let ty = cur.ty()?;
    cur.expect("#")?;
    cur.expect("node")?;
    cur.ws();
    let node_name = cur.string()?;
    let id = NodeId::from_index(p.nodes.len());
    let output = ValueId::from_index(k);
    p.values.insert(k, (Value { name: value_name, ty, domain, def: Def::Node(id) }, cur.line));
    p.nodes.push((Node { name: node_name, op, inputs, output }, ot, bits));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MLP: &str = "graph \"tiny\"
const @0 \"w\" server [2,2] = [1, -2, 0.5, 4]
input %0 \"x\" client f32[1,2]
%1 \"h\" = dense %0 weight=@0 : shared f32[1,2]    # node \"fc\"
%2 \"y\" = reveal %1 : client f32[1,2]    # node \"reveal\"
output %2
";

    #[test]
    fn a_hand_written_graph_parses_with_its_values() {
        let g = parse(MLP).unwrap();
        assert_eq!(g.consts[Const::from_index(0)].data, [1.0, -2.0, 0.5, 4.0]);
        assert_eq!(g.body.len(), 2);
        // The printer omits the values.
        assert_eq!(super::super::to_text(&g), MLP.replace(" = [1, -2, 0.5, 4]", ""));
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_line_and_column() {
        assert_eq!(err(&MLP.replace("dense", "dens")), "4:10: unknown op \"dens\"");
        assert_eq!(
            err(&MLP.replace("%1 \"h\" = dense %0", "%1 \"h\" = dense %7")),
            "4:16: %7 is used before it is defined"
        );
        assert_eq!(err(&MLP.replace("weight=@0", "weight=@x")), "4:26: bad value \"@x\" for `weight`");
        assert_eq!(err(&MLP.replace("weight=@0", "weight=@0 bits=3")), "4:29: unknown attribute `bits` for this op");
        assert_eq!(
            err(&MLP.replace("server [2,2]", "sever [2,2]")),
            "2:14: unknown domain \"sever\" (expected public, client, server or shared)"
        );
        assert_eq!(err(&MLP.replace("[1, -2, 0.5, 4]", "[1, -2]")), "2:36: 2 values for shape [2, 2]");
        assert_eq!(err(&MLP.replace("output %2\n", "")), "6:1: missing the `output` line");
        assert!(
            err(&MLP.replace("\"tiny\"", "\"tiny")).starts_with("1:12: unterminated string"),
            "{}",
            err(&MLP.replace("\"tiny\"", "\"tiny"))
        );
        assert!(
            err(&MLP.replace("client f32[1,2]\n%1", "client f32[1,3]\n%1")).starts_with("the parsed graph is invalid")
        );
    }
}
