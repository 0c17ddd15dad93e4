//! Graphviz dot: one box per node, one ellipse per graph input, edges labelled with types.

use std::fmt::Write;

use super::attributes;
use crate::graph::{Def, Graph};

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The graph as a `digraph` (render with `dot -Tsvg`).
pub fn to_dot(g: &Graph) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "digraph \"{}\" {{\n  rankdir=TB;\n  node [fontname=\"monospace\"];", esc(&g.name));
    for &v in &g.inputs {
        let value = &g.values[v];
        let _ = writeln!(
            s,
            "  v{} [shape=ellipse, label=\"{}\\n{} {}\"];",
            v.index(),
            esc(&value.name),
            value.domain,
            value.ty
        );
    }
    for (n, node) in g.live_nodes() {
        let attrs: Vec<String> = attributes(&node.op).into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            s,
            "  n{} [shape=box, label=\"{}\\n{}\\n{}\"];",
            n.index(),
            node.op.mnemonic(),
            esc(&node.name),
            esc(&attrs.join(" "))
        );
        for &v in &node.inputs {
            let src = match g.values[v].def {
                Def::Input(_) => format!("v{}", v.index()),
                Def::Node(p) => format!("n{}", p.index()),
            };
            let value = &g.values[v];
            let _ = writeln!(s, "  {src} -> n{} [label=\"{} {}\"];", n.index(), value.domain, value.ty);
        }
    }
    for (i, &v) in g.outputs.iter().enumerate() {
        let value = &g.values[v];
        let _ = writeln!(s, "  out{i} [shape=ellipse, label=\"{}\"];", esc(&value.name));
        if let Def::Node(p) = value.def {
            let _ = writeln!(s, "  n{} -> out{i} [label=\"{} {}\"];", p.index(), value.domain, value.ty);
        }
    }
    s.push_str("}\n");
    s
}
