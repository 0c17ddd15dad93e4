//! `Max` and `Min` (variadic, numpy broadcasting) with the ops the IR already has: of one
//! computed value and constant bounds, a `clip` (a `relu` for `Max(x, 0)`, how opset-18 function
//! bodies and some exporters write ReLU); of two computed values `a`, `b` of one shape,
//! `max = a + relu(b − a)` and `min = a − relu(a − b)` (one ReLU circuit, local adds). Anything
//! else is refused with the reason.

use veil_ir::Op;

use crate::onnx::import::{Ctx, Importer, Sym};

pub fn min_max(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let op = ctx.node.op_type();
    let is_max = op == "Max";
    let mut values = Vec::new();
    let mut bound: Option<f32> = None;
    let mut const_rank = 0;
    for (i, s) in inputs.iter().enumerate() {
        match s {
            None => return Err(format!("input {i} is required")),
            Some(Sym::Const(t)) => {
                let v = t.floats();
                let Some(&first) = v.first() else { return Err(format!("input {i} is an empty constant")) };
                if v.iter().any(|&x| x != first) {
                    return Err(format!(
                        "input {i} is a constant whose elements differ; only a single bound (one value for every element) is supported"
                    ));
                }
                if !first.is_finite() {
                    return Err(format!("input {i} holds {first}, which is not a usable bound"));
                }
                bound = Some(match bound {
                    None => first,
                    Some(b) if is_max => b.max(first),
                    Some(b) => b.min(first),
                });
                const_rank = const_rank.max(t.shape.len());
            }
            Some(s) => values.push(imp.value(s)?),
        }
    }
    match (values.as_slice(), bound) {
        ([], _) => {
            Err(format!("every operand is a constant; Veil computes {op} only on values computed from the input"))
        }
        (&[x], None) => Ok(vec![Sym::Value(x)]),
        (&[x], Some(b)) => {
            if const_rank > imp.ty(x).rank() {
                return Err(format!(
                    "a constant operand of rank {const_rank} would broadcast the rank-{} result to a larger shape",
                    imp.ty(x).rank()
                ));
            }
            let op = match is_max {
                true if b == 0.0 => Op::Relu,
                true => Op::Clip { min: Some(b), max: None },
                false => Op::Clip { min: None, max: Some(b) },
            };
            Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), op, &[x])?)])
        }
        (&[a, b], None) => {
            if imp.ty(a) != imp.ty(b) {
                return Err(format!(
                    "operands {} and {} differ in shape; broadcasting between computed values is not supported",
                    imp.ty(a),
                    imp.ty(b)
                ));
            }
            // max(a, b) = a + relu(b − a); min(a, b) = a − relu(a − b).
            let (p, q) = if is_max { (b, a) } else { (a, b) };
            let out = ctx.out(0);
            let d = imp.add(&format!("{}/sub", ctx.name), &format!("{out}/diff"), Op::Sub, &[p, q])?;
            let r = imp.add(&format!("{}/relu", ctx.name), &format!("{out}/relu"), Op::Relu, &[d])?;
            let op = if is_max { Op::Add } else { Op::Sub };
            Ok(vec![Sym::Value(imp.add(&ctx.name, out, op, &[a, r])?)])
        }
        _ => Err(format!(
            "{op} of {} computed value(s){} is not supported (one computed value with constant bounds, or two computed values of one shape)",
            values.len(),
            if bound.is_some() { " and a constant" } else { "" }
        )),
    }
}
