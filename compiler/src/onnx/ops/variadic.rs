//! `Sum` of more than two operands and `Mean` of any number (numpy broadcasting): additions of shares, and
//! for `Mean` a public scaling by `1/n` (local on shares). Constant operands are summed at
//! compile time and added once, as a weight (a model constant, like any other).

use veil_ir::{Op, ValueId};

use super::super::consts::{self, CTensor};
use super::super::import::{Ctx, Importer, Sym};

/// `Sum` (`mean = false`) or `Mean` of the node's operands.
pub fn sum_or_mean(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let mean = ctx.node.op_type() == "Mean";
    if !mean && inputs.len() <= 2 {
        // One or two: `Add`'s lowering, which also completes Gelu's written-out `Sum(1, Erf(…))`.
        return super::math::sum(imp, ctx, inputs);
    }
    let ops: Vec<&Sym> = inputs.iter().flatten().collect();
    if ops.is_empty() {
        return Err(format!("{} needs at least one operand", ctx.node.op_type()));
    }
    let n = ops.len() as f32;
    let mut constant: Option<CTensor> = None;
    let mut values = Vec::new();
    for s in &ops {
        match s {
            Sym::Const(c) => {
                constant = Some(match constant {
                    None => c.clone(),
                    Some(acc) => consts::binary(&acc, c, |a, b| a + b, i64::checked_add)?,
                })
            }
            s => values.push(imp.value(s)?),
        }
    }
    let out = ctx.out(0).to_string();
    let Some(&first) = values.first() else {
        // All constant: folded.
        let c = constant.expect("at least one operand");
        let f = if mean { 1.0 / n } else { 1.0 };
        return Ok(vec![Sym::Const(CTensor::f32(c.shape.clone(), c.floats().iter().map(|v| v * f).collect()))]);
    };
    let mut shape = imp.ty(first).shape.clone();
    for &v in &values[1..] {
        shape = consts::broadcast_shape(&shape, &imp.ty(v).shape)
            .map_err(|_| format!("operand {} does not broadcast with {shape:?}", imp.ty(v)))?;
    }
    if let Some(c) = &constant
        && consts::broadcast_shape(&shape, &c.shape)? != shape
    {
        return Err(format!(
            "constant operand of shape {:?} would change the computed operands' shape {shape:?}",
            c.shape
        ));
    }
    let last_add = constant.is_none() && !mean;
    let mut acc: Option<ValueId> = None;
    for (k, &v) in values.iter().enumerate() {
        let v = super::math::broadcast_to(imp, ctx, v, &shape, &format!("{out}/broadcast_{k}"))?;
        acc = Some(match acc {
            None => v,
            Some(a) => {
                let name = if last_add && k + 1 == values.len() { out.clone() } else { format!("{out}/sum_{k}") };
                imp.add(&ctx.name, &name, Op::Add, &[a, v])?
            }
        });
    }
    let acc = acc.expect("at least one computed operand");
    if constant.is_none() && !mean {
        return Ok(vec![Sym::Value(acc)]);
    }
    let scale = mean.then(|| imp.public(&format!("{}.1/n", ctx.name), vec![], vec![1.0 / n]));
    let shift = constant.map(|c| {
        let f = if mean { 1.0 / n } else { 1.0 };
        imp.weight(&format!("{}.constant", ctx.name), c.shape.clone(), c.floats().iter().map(|v| v * f).collect())
    });
    Ok(vec![Sym::Value(imp.add(&ctx.name, &out, Op::Affine { scale, shift }, &[acc])?)])
}
