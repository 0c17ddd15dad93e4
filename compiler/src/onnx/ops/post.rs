//! Client-side post-processing at the end of the model: the secure part reveals its result to
//! the client, which then applies Softmax, LogSoftmax, ArgMax or Sigmoid (a binary classifier's
//! last op) itself.

use veil_ir::Op;

use super::{arg, axis};
use crate::onnx::import::{Ctx, Importer, Sym};

pub fn softmax(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let v = imp.value(arg(inputs, 0)?)?;
    let x = imp.revealed(v, &ctx.name)?;
    let rank = imp.ty(x).rank();
    let legacy = ctx.opset < 13;
    let a = axis(ctx.attrs.int_or("axis", if legacy { 1 } else { -1 })?, rank)?;
    let coerce_2d = legacy && a + 1 < rank;
    let op = if ctx.node.op_type() == "Softmax" {
        Op::Softmax { axis: a, coerce_2d }
    } else {
        Op::LogSoftmax { axis: a, coerce_2d }
    };
    Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), op, &[x])?)])
}

pub fn argmax(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let v = imp.value(arg(inputs, 0)?)?;
    let x = imp.revealed(v, &ctx.name)?;
    let a = axis(ctx.attrs.int_or("axis", 0)?, imp.ty(x).rank())?;
    let op = Op::ArgMax {
        axis: a,
        keepdims: ctx.attrs.int_or("keepdims", 1)? != 0,
        select_last_index: ctx.attrs.int_or("select_last_index", 0)? != 0,
    };
    Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), op, &[x])?)])
}

/// A trailing Sigmoid: on the client, after the reveal (Veil has no two-party protocol for it;
/// a Sigmoid whose result the model computes on is refused by the importer).
pub fn sigmoid(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let v = imp.value(arg(inputs, 0)?)?;
    let x = imp.revealed(v, &ctx.name)?;
    Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), Op::Sigmoid, &[x])?)])
}
