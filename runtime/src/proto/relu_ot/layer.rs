//! A ReLU layer over OT as a plan step ([`veil_ir::schedule::Kind::ReluOt`]), and Circa's
//! stochastic ReLU over OT ([`veil_ir::schedule::Kind::CircaOt`]: the shift-0 ReLU with its
//! comparison on the sign test's `m − k` bits, [`Spec::circa`]): the drivers of [`super::drive`]
//! on the session's OT halves and main channel, with the garbled-circuit step's share convention
//! (the client's output share is its offline mask `r`). The two differ only in their [`Spec`] and
//! labels. Circa's output is the garbled Circa's, `y·b` with `b`
//! [`veil_ir::ring::circa_nonnegative`] of the shares.

use veil_ir::ValueId;
use veil_ir::ring::Ring;
use veil_ir::schedule::script::label;

use super::drive::{client_offline_as, client_online_as, server_offline_as, server_online_as};
use super::{ClientOffline, ServerOffline, Spec};
use crate::exec::step::{ClientIo, Csprng, Cx, Protocol, ServerIo, StepFuture, Values, take};
use crate::proto::circa::SignTest;
use crate::proto::mul::random_ring;

/// Which comparison the layer runs.
#[derive(Debug, Clone, Copy)]
enum Test {
    /// ReLU then `>> shift` (the fused exact truncation, 0 for none), the comparison reading the
    /// shares' low `width` bits (ℓ: all), the output modulo `2^out`.
    Relu { shift: u8, width: u8, out: u8 },
    /// Circa's sign test.
    Circa(SignTest),
}

/// The step's state between the phases.
pub struct ReluOtLayer {
    input: ValueId,
    test: Test,
    server: Option<ServerOffline>,
    client: Option<ClientOffline>,
}

impl std::fmt::Debug for ReluOtLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReluOtLayer {{ {:?}, <redacted> }}", self.test)
    }
}

impl ReluOtLayer {
    /// ReLU of `input` then `>> shift` (the fused exact truncation, 0 for none), its operand
    /// read in `width` bits and its output modulo `2^out` (the plan's ℓ, or narrower:
    /// [`Spec::reading`]).
    pub fn new(input: ValueId, shift: u8, width: u8, out: u8) -> ReluOtLayer {
        ReluOtLayer { input, test: Test::Relu { shift, width, out }, server: None, client: None }
    }

    /// Circa's stochastic ReLU of `input` with the sign `test`.
    pub fn circa(input: ValueId, test: SignTest) -> ReluOtLayer {
        ReluOtLayer { input, test: Test::Circa(test), server: None, client: None }
    }

    fn spec(&self, ring: Ring) -> Spec {
        match self.test {
            Test::Relu { shift, width, out } if width < ring.bits || out < ring.bits => {
                Spec::reading(Ring::new(out), u32::from(shift), u32::from(width))
            }
            Test::Relu { shift, .. } => Spec::new(ring, u32::from(shift)),
            Test::Circa(test) => Spec::circa(ring, test),
        }
    }

    /// The labels of the OT batches and of the online flights.
    fn labels(&self) -> (&'static str, &'static str) {
        match self.test {
            Test::Relu { .. } => (label::RELU_OT_OTS, label::RELU_OT),
            Test::Circa(_) => (label::CIRCA_OVER_OT_OTS, label::CIRCA_OVER_OT),
        }
    }
}

impl Protocol for ReluOtLayer {
    fn server_offline<'a>(&'a mut self, io: &'a mut ServerIo, cx: Cx<'a>, _rng: &'a mut dyn Csprng) -> StepFuture<'a> {
        Box::pin(async move {
            let (spec, (ots, _)) = (self.spec(cx.ring), self.labels());
            self.server = Some(server_offline_as(ots, &mut io.ot, spec, cx.len(self.input)).await?);
            Ok(())
        })
    }

    fn server_online<'a>(
        &'a mut self,
        io: &'a mut ServerIo,
        cx: Cx<'a>,
        values: &'a mut Values,
        rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        Box::pin(async move {
            let ys = values.share(self.input).to_vec();
            let (spec, (_, step), off) = (self.spec(cx.ring), self.labels(), take(&mut self.server));
            let out = server_online_as(step, &mut io.ch, spec, off, ys, rng).await?;
            values.set_share(cx.node.output, out);
            Ok(())
        })
    }

    fn client_offline<'a>(
        &'a mut self,
        io: &'a mut ClientIo,
        cx: Cx<'a>,
        values: &'a mut Values,
        rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        Box::pin(async move {
            let r = random_ring(cx.ring, cx.len(self.input), rng);
            let (spec, (ots, _)) = (self.spec(cx.ring), self.labels());
            self.client = Some(client_offline_as(ots, &mut io.ot, spec, r.clone()).await?);
            values.set_share(cx.node.output, r);
            Ok(())
        })
    }

    fn client_online<'a>(&'a mut self, io: &'a mut ClientIo, cx: Cx<'a>, values: &'a mut Values) -> StepFuture<'a> {
        Box::pin(async move {
            let yc = values.share(self.input).to_vec();
            let (spec, (_, step), off) = (self.spec(cx.ring), self.labels(), take(&mut self.client));
            client_online_as(step, &mut io.ch, spec, off, yc).await?;
            Ok(())
        })
    }
}
