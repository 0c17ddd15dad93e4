//! Activations that are a ReLU and linear steps: `Abs(x) = 2·ReLU(x) − x` and
//! `PRelu(x, slope) = ReLU(x) + slope · (x − ReLU(x))`. The ReLU is the plan's one garbled (or
//! OT) step; the rest are additions of shares, and PRelu's learned slope is a weight, applied as
//! a server-private elementwise scaling (like any other weight, it stays the server's).

use veil_ir::Op;

use super::super::consts;
use super::super::import::{Ctx, Importer, Sym};
use super::{arg, konst};

/// `Abs(x)`: `ReLU(x) + ReLU(x) − x`, exact (no scaling, so no truncation).
pub fn abs(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let x = imp.value(arg(inputs, 0)?)?;
    let out = ctx.out(0);
    let r = imp.add(&ctx.name, &format!("{out}/relu"), Op::Relu, &[x])?;
    let twice = imp.add(&ctx.name, &format!("{out}/twice"), Op::Add, &[r, r])?;
    Ok(vec![Sym::Value(imp.add(&ctx.name, out, Op::Sub, &[twice, x])?)])
}

/// `PRelu(x, slope)` with a constant slope broadcast to `x` (one per channel, or one in all).
pub fn prelu(imp: &mut Importer, ctx: &Ctx, inputs: &[Option<Sym>]) -> Result<Vec<Sym>, String> {
    let x = imp.value(arg(inputs, 0)?)?;
    let slope = konst(inputs, 1, "slope")?;
    let shape = imp.ty(x).shape.clone();
    if consts::broadcast_shape(&shape, &slope.shape).ok().as_ref() != Some(&shape) {
        return Err(format!("slope of shape {:?} does not broadcast to the operand's {shape:?}", slope.shape));
    }
    let out = ctx.out(0);
    let r = imp.add(&ctx.name, &format!("{out}/relu"), Op::Relu, &[x])?;
    let neg = imp.add(&ctx.name, &format!("{out}/negative_part"), Op::Sub, &[x, r])?;
    let w = imp.weight(&format!("{}.slope", ctx.name), slope.shape.clone(), slope.floats());
    let scaled = imp.add(&ctx.name, &format!("{out}/scaled"), Op::Affine { scale: Some(w), shift: None }, &[neg])?;
    Ok(vec![Sym::Value(imp.add(&ctx.name, out, Op::Add, &[r, scaled])?)])
}
