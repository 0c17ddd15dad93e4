//! Client-side post-processing at the end of the model: the secure part reveals its result to
//! the client, which then applies Softmax, LogSoftmax, ArgMax or Sigmoid (a binary classifier's
//! last op) itself. A Sigmoid or Softmax the model computes on runs on shares instead
//! ([`super::shared_softmax`] for the Softmax).

use veil_ir::Op;

use super::{arg, axis};
use crate::onnx::import::{Ctx, Importer, Sym};

/// Softmax and LogSoftmax: on the client when only post-processing reads them; a Softmax the
/// model computes on (attention) runs on shares, a LogSoftmax there is refused.
pub fn softmax(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let v = imp.value(arg(inputs, 0)?)?;
    let rank = imp.ty(v).rank();
    let legacy = ctx.opset < 13;
    let a = axis(ctx.attrs.int_or("axis", if legacy { 1 } else { -1 })?, rank)?;
    let coerce_2d = legacy && a + 1 < rank;
    if !imp.is_client_only(ctx.out(0)) {
        if ctx.node.op_type() != "Softmax" {
            return Err("LogSoftmax inside the network (read by more than client-side post-processing) has no two-party protocol in Veil (it needs a logarithm); only at the end of the model".into());
        }
        let y = super::shared_softmax::softmax(imp, ctx, v, a, coerce_2d, ctx.out(0))?;
        return Ok(vec![Sym::Value(y)]);
    }
    let x = imp.revealed(v, &ctx.name)?;
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

/// Sigmoid: when only post-processing reads it (a binary classifier's last op), exactly on the
/// client after the reveal; otherwise (SiLU, squeeze-excite gates) on shares as the
/// piecewise-linear `pl_sigmoid` circuit, whose largest error the IR op states.
pub fn sigmoid(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let v = imp.value(arg(inputs, 0)?)?;
    if !imp.is_client_only(ctx.out(0)) {
        return Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), Op::PlSigmoid, &[v])?)]);
    }
    let x = imp.revealed(v, &ctx.name)?;
    Ok(vec![Sym::Value(imp.add(&ctx.name, ctx.out(0), Op::Sigmoid, &[x])?)])
}
