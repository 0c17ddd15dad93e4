//! The stable text form, one item per line:
//!
//! ```text
//! graph "mlp"
//! const @0 "fc1.weight" server [128,784]
//! input %0 "x" client f32[1,784]
//! input %1 "q" client f32[4] stored=INT4
//! %1 "fc1" = dense %0 weight=@0 bias=@1 : shared f32[1,128]    # node "/fc1/Gemm"
//! output %9
//! ```

use std::fmt::Write;

use super::attributes;
use crate::graph::Graph;

/// The graph in the text form above.
pub fn to_text(g: &Graph) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(s, "graph {:?}", g.name);
    if let Some(l) = g.ring_bits {
        let _ = writeln!(s, "ring {l} bits");
    }
    if let Some(b) = g.input_bound {
        let _ = writeln!(s, "input bound {b:?}");
    }
    if g.garbling != crate::Garbling::default() {
        let _ = writeln!(s, "garbling {}", g.garbling);
    }
    if g.ot_extension != crate::OtExtension::default() {
        let _ = writeln!(s, "ot extension {}", g.ot_extension);
    }
    for (c, k) in g.consts.iter() {
        let _ = writeln!(s, "const @{} {:?} {} {}", c.index(), k.name, k.domain, super::list(&k.shape));
    }
    for (i, &v) in g.inputs.iter().enumerate() {
        let value = &g.values[v];
        let _ = write!(s, "input %{} {:?} {} {}", v.index(), value.name, value.domain, value.ty);
        let _ = match g.raw_input(i) {
            Some(t) => writeln!(s, " stored={t}"),
            None => writeln!(s),
        };
    }
    for (id, node) in g.live_nodes() {
        let out = &g.values[node.output];
        let _ = write!(s, "%{} {:?} = {}", node.output.index(), out.name, node.op.mnemonic());
        for (i, v) in node.inputs.iter().enumerate() {
            let _ = write!(s, "{}%{}", if i == 0 { " " } else { ", " }, v.index());
        }
        for (k, v) in attributes(&node.op) {
            let _ = write!(s, " {k}={v}");
        }
        if g.over_ot.contains(&id) {
            let _ =
                write!(s, " {}=ot", if matches!(node.op, crate::Op::Dense { .. }) { "offline" } else { "nonlinear" });
        }
        if let Some(w) = crate::schedule::narrow_bits(g, id) {
            let key = if matches!(node.op, crate::Op::Dense { .. } | crate::Op::Conv2d { .. }) {
                "he_bits"
            } else {
                "in_bits"
            };
            let _ = write!(s, " {key}={w}");
        }
        let _ = writeln!(s, " : {} {}    # node {:?}", out.domain, out.ty, node.name);
    }
    let outs: Vec<String> = g.outputs.iter().map(|v| format!("%{}", v.index())).collect();
    let _ = writeln!(s, "output {}", outs.join(", "));
    s
}

/// [`to_text`] with every constant's values (`= [v, ...]`, and its scale `fxF` once quantized)
/// on its `const` line: the form [`super::parse`] reads back whole, which file tests use as
/// their input.
pub fn to_text_with_values(g: &Graph) -> String {
    let mut out = String::new();
    let mut consts = g.consts.iter();
    for line in to_text(g).lines() {
        out += line;
        if line.starts_with("const @")
            && let Some((_, k)) = consts.next()
        {
            if let Some(f) = k.frac_bits {
                // `const @i "name" domain [shape]` → `... domain fxF [shape]`.
                if let Some(at) = out.rfind(" [") {
                    out.insert_str(at, &format!(" fx{f}"));
                }
            }
            if !k.data.is_empty() {
                let vals: Vec<String> = k.data.iter().map(|v| format!("{v:?}")).collect();
                out += &format!(" = [{}]", vals.join(", "));
            }
        }
        out.push('\n');
    }
    out
}
