//! Two-party protocols over the transport: the message flows of docs/protocols.md, one module
//! each, both parties side by side. Each module has a synchronous core (share algebra, typed
//! states that redact their secrets in `Debug`) and thin async drivers per party and phase,
//! and implements [`Protocol`] for its plan step. [`register`] is the one place that maps a
//! schedule step's kind to its protocol: adding a protocol touches its module and that function.

pub mod bit_triple;
pub mod circa;
#[cfg(test)]
mod distinguish;
pub mod gc;
pub mod he_linear;
pub mod he_weights;
pub mod leaky_ot;
pub mod matmul;
pub mod millionaire;
pub mod mul;
pub mod poly;
pub mod relu_ot;
pub mod secret_matmul;
pub mod secret_mul;
pub mod share;
pub mod trunc_ot;

use veil_ir::Graph;
use veil_ir::ring::Ring;
use veil_ir::schedule::{Kind, LinearOffline, Step};

use crate::exec::local::{ClientDomain, LocalStep};
use crate::exec::step::Protocol;

/// The protocol that runs `step` of plan `g`, before its offline phase.
pub fn register(g: &Graph, step: &Step) -> Box<dyn Protocol> {
    match &step.kind {
        Kind::Share { value } => Box::new(share::ShareInput { value: *value }),
        Kind::Linear { offline: LinearOffline::He } => Box::<he_linear::HeLinear>::default(),
        Kind::Linear { offline: LinearOffline::Ot } => Box::<matmul::OtLinear>::default(),
        Kind::Activation { input, read, .. } => {
            let n = g.values[*input].ty.shape.iter().product();
            Box::new(gc::GcLayer::elementwise(*input, n).reading(*read))
        }
        Kind::ReluOt { input, shift, width, out } => {
            Box::new(relu_ot::layer::ReluOtLayer::new(*input, *shift, *width, *out))
        }
        Kind::MaxPoolOt { input, windows, width } => {
            Box::new(relu_ot::maxpool::MaxPoolOtLayer::new(*input, windows.clone(), *width))
        }
        Kind::ClipOt { input, shift, lo, hi } => Box::new(relu_ot::clip::ClipOtLayer::new(*input, *shift, *lo, *hi)),
        Kind::LeakyReluOt { input, shift, alpha } => Box::new(leaky_ot::LeakyOtLayer::new(*input, *shift, *alpha)),
        Kind::TruncOt { input, shift } => Box::new(trunc_ot::layer::TruncOtLayer::new(*input, *shift)),
        Kind::MaxPool { input, read, windows, circuits, .. } => {
            Box::new(gc::GcLayer::windows(*input, windows.clone(), circuits.iter().map(|(k, _)| *k)).reading(*read))
        }
        Kind::Circa { input, drop_bits, variant, test_bits, circuit } => {
            let test = circa::SignTest { ring: Ring::new(*test_bits), drop_bits: *drop_bits, variant: *variant };
            Box::new(circa::CircaLayer::new(*input, test, circuit.clone()))
        }
        Kind::CircaOt { input, drop_bits, variant, test_bits } => {
            let test = circa::SignTest { ring: Ring::new(*test_bits), drop_bits: *drop_bits, variant: *variant };
            Box::new(relu_ot::layer::ReluOtLayer::circa(*input, test))
        }
        Kind::Poly => Box::<poly::PolyLayer>::default(),
        Kind::Mul => Box::<secret_mul::SecretMul>::default(),
        Kind::MatMul => Box::<secret_matmul::SecretMatMul>::default(),
        Kind::Local => Box::new(LocalStep),
        Kind::Reveal => Box::new(share::Reveal),
        Kind::Client => Box::new(ClientDomain),
    }
}
