//! Dumps of a [`Graph`]: stable text (for people and snapshots), JSON, and Graphviz dot.
//!
//! All three are deterministic: items print in arena or body order, floats in Rust's shortest
//! round-trip form. Constant values never print (only names, shapes and domains).

mod dot;
mod parse;
mod text;

pub use dot::to_dot;
pub use parse::{ParseError, parse, parse_with_weights};
pub use text::{to_text, to_text_with_values};

use crate::graph::Graph;
use crate::op::{Op, Window2d};

/// The graph as pretty JSON (the serde form of [`Graph`]; constant data is never serialized).
pub fn to_json(g: &Graph) -> String {
    serde_json::to_string_pretty(g).expect("the IR serializes: every map key is a string")
}

fn list<T: std::fmt::Display>(xs: &[T]) -> String {
    let items: Vec<String> = xs.iter().map(ToString::to_string).collect();
    format!("[{}]", items.join(","))
}

fn window(w: &Window2d, out: &mut Vec<(&'static str, String)>) {
    out.push(("kernel", list(&w.kernel)));
    out.push(("strides", list(&w.strides)));
    out.push(("pads", list(&w.pads)));
    out.push(("dilations", list(&w.dilations)));
}

fn opt<T: std::fmt::Debug>(x: &Option<T>) -> String {
    x.as_ref().map_or_else(|| "none".to_string(), |v| format!("{v:?}"))
}

/// An op's attributes as `(name, value)` pairs, in a fixed order.
pub fn attributes(op: &Op) -> Vec<(&'static str, String)> {
    let c = |h: crate::op::Const| format!("@{}", h.index());
    let mut out = Vec::new();
    match op {
        Op::Dense { weight, bias } => {
            out.push(("weight", c(*weight)));
            if let Some(b) = bias {
                out.push(("bias", c(*b)));
            }
        }
        Op::Conv2d { weight, bias, window: w, groups } => {
            out.push(("weight", c(*weight)));
            if let Some(b) = bias {
                out.push(("bias", c(*b)));
            }
            window(w, &mut out);
            out.push(("groups", groups.to_string()));
        }
        Op::Affine { scale, shift } => {
            if let Some(s) = scale {
                out.push(("scale", c(*s)));
            }
            if let Some(s) = shift {
                out.push(("shift", c(*s)));
            }
        }
        Op::BatchNorm { scale, bias, mean, var, epsilon } => {
            out.push(("scale", c(*scale)));
            out.push(("bias", c(*bias)));
            out.push(("mean", c(*mean)));
            out.push(("var", c(*var)));
            out.push(("epsilon", format!("{epsilon:?}")));
        }
        Op::Add
        | Op::Sub
        | Op::Mul
        | Op::MatMul
        | Op::Relu
        | Op::Reveal
        | Op::Sigmoid
        | Op::PlSigmoid
        | Op::Exp2
        | Op::Reciprocal => {}
        Op::PlGelu { tanh } => {
            if *tanh {
                out.push(("tanh", "true".into()));
            }
        }
        Op::LeakyRelu { alpha } => out.push(("alpha", format!("{alpha:?}"))),
        Op::Rsqrt { eps } => out.push(("eps", format!("{eps:?}"))),
        Op::OneHot { depth } => out.push(("depth", depth.to_string())),
        Op::Round { mode, min, max, zero_point, grid } => {
            out.push(("mode", mode.as_str().to_string()));
            if let Some(grid) = grid {
                out.push(("grid", grid.as_text()));
            }
            if min.is_some() || max.is_some() {
                out.push(("min", opt(min)));
                out.push(("max", opt(max)));
            }
            if let Some(z) = zero_point {
                out.push(("zero_point", c(*z)));
            }
        }
        Op::Clip { min, max } => {
            out.push(("min", opt(min)));
            out.push(("max", opt(max)));
        }
        Op::Poly { coeffs } => out.push(("coeffs", format!("{coeffs:?}").replace(' ', ""))),
        Op::MaxPool { window: w } | Op::SumPool { window: w } => window(w, &mut out),
        Op::StochasticRelu { drop_bits, variant, test_bits } => {
            out.push(("drop_bits", drop_bits.map_or_else(|| "auto".to_string(), |k| k.to_string())));
            out.push(("variant", variant.as_str().to_string()));
            if let Some(m) = test_bits {
                out.push(("test_bits", m.to_string()));
            }
        }
        Op::AvgPool { window: w, count_include_pad } => {
            window(w, &mut out);
            out.push(("count_include_pad", count_include_pad.to_string()));
        }
        Op::Truncate { bits, mode } => {
            out.push(("bits", bits.to_string()));
            out.push(("mode", format!("{mode:?}").to_lowercase()));
        }
        Op::Reshape { shape } => out.push(("shape", list(shape))),
        Op::Select { indices, shape } => {
            out.push(("shape", list(shape)));
            let head: Vec<String> = indices.iter().take(8).map(ToString::to_string).collect();
            let more = if indices.len() > 8 { format!(",…({} total)", indices.len()) } else { String::new() };
            out.push(("indices", format!("[{}{more}]", head.join(","))));
        }
        Op::Transpose { perm } => out.push(("perm", list(perm))),
        Op::Concat { axis } => out.push(("axis", axis.to_string())),
        Op::Pad { pads, value } => {
            out.push(("pads", list(pads)));
            out.push(("value", format!("{value:?}")));
        }
        Op::Softmax { axis, coerce_2d } | Op::LogSoftmax { axis, coerce_2d } => {
            out.push(("axis", axis.to_string()));
            if *coerce_2d {
                out.push(("coerce_2d", "true".into()));
            }
        }
        Op::ArgMax { axis, keepdims, select_last_index } => {
            out.push(("axis", axis.to_string()));
            out.push(("keepdims", keepdims.to_string()));
            if *select_last_index {
                out.push(("select_last_index", "true".into()));
            }
        }
    }
    out
}
