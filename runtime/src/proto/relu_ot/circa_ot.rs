//! Circa's stochastic ReLU over OT as a plan step ([`veil_ir::schedule::Kind::CircaOt`]): the
//! shift-0 ReLU over OT with its comparison on the sign test's `m − k` bits ([`Spec::circa`]),
//! on the session's OT halves and main channel, with its own labels. The output is the garbled
//! Circa's, `y·b` with `b` [`veil_ir::ring::circa_nonnegative`] of the shares, and so is the share
//! convention (the client's output share is its offline mask `r`).

use veil_ir::ValueId;
use veil_ir::ring::Ring;
use veil_ir::schedule::script::label;

use super::drive::{client_offline_as, client_online_as, server_offline_as, server_online_as};
use super::{ClientOffline, ServerOffline, Spec};
use crate::exec::step::{ClientIo, Csprng, Cx, Protocol, ServerIo, StepFuture, Values, take};
use crate::proto::circa::SignTest;
use crate::proto::mul::random_ring;

/// The step's state between the phases.
pub struct CircaOtLayer {
    input: ValueId,
    test: SignTest,
    server: Option<ServerOffline>,
    client: Option<ClientOffline>,
}

impl std::fmt::Debug for CircaOtLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CircaOtLayer {{ {:?}, <redacted> }}", self.test)
    }
}

impl CircaOtLayer {
    /// Circa's stochastic ReLU of `input` with the sign `test`.
    pub fn new(input: ValueId, test: SignTest) -> CircaOtLayer {
        CircaOtLayer { input, test, server: None, client: None }
    }

    fn spec(&self, ring: Ring) -> Spec {
        Spec::circa(ring, self.test)
    }
}

impl Protocol for CircaOtLayer {
    fn server_offline<'a>(&'a mut self, io: &'a mut ServerIo, cx: Cx<'a>, _rng: &'a mut dyn Csprng) -> StepFuture<'a> {
        Box::pin(async move {
            let spec = self.spec(cx.ring);
            self.server =
                Some(server_offline_as(label::CIRCA_OVER_OT_OTS, &mut io.ot, spec, cx.len(self.input)).await?);
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
            let (spec, off) = (self.spec(cx.ring), take(&mut self.server));
            let out = server_online_as(label::CIRCA_OVER_OT, &mut io.ch, spec, off, ys, rng).await?;
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
            let spec = self.spec(cx.ring);
            self.client = Some(client_offline_as(label::CIRCA_OVER_OT_OTS, &mut io.ot, spec, r.clone()).await?);
            values.set_share(cx.node.output, r);
            Ok(())
        })
    }

    fn client_online<'a>(&'a mut self, io: &'a mut ClientIo, cx: Cx<'a>, values: &'a mut Values) -> StepFuture<'a> {
        Box::pin(async move {
            let yc = values.share(self.input).to_vec();
            let (spec, off) = (self.spec(cx.ring), take(&mut self.client));
            client_online_as(label::CIRCA_OVER_OT, &mut io.ch, spec, off, yc).await?;
            Ok(())
        })
    }
}
