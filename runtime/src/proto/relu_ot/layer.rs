//! A ReLU layer over OT as a plan step ([`veil_ir::schedule::Kind::ReluOt`]): the drivers of
//! [`super::drive`] on the session's OT halves and main channel, with the garbled-circuit step's
//! share convention (the client's output share is its offline mask `r`).

use veil_ir::ValueId;
use veil_ir::ring::Ring;

use super::drive::{client_offline, client_online, server_offline, server_online};
use super::{ClientOffline, ServerOffline, Spec};
use crate::exec::step::{ClientIo, Csprng, Cx, Protocol, ServerIo, StepFuture, Values, take};
use crate::proto::mul::random_ring;

/// The step's state between the phases.
pub struct ReluOtLayer {
    input: ValueId,
    shift: u8,
    server: Option<ServerOffline>,
    client: Option<ClientOffline>,
}

impl std::fmt::Debug for ReluOtLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReluOtLayer {{ shift: {}, <redacted> }}", self.shift)
    }
}

impl ReluOtLayer {
    /// ReLU of `input` then `>> shift` (the fused exact truncation, 0 for none).
    pub fn new(input: ValueId, shift: u8) -> ReluOtLayer {
        ReluOtLayer { input, shift, server: None, client: None }
    }

    fn spec(&self, ring: Ring) -> Spec {
        Spec::new(ring, u32::from(self.shift))
    }
}

impl Protocol for ReluOtLayer {
    fn server_offline<'a>(&'a mut self, io: &'a mut ServerIo, cx: Cx<'a>, _rng: &'a mut dyn Csprng) -> StepFuture<'a> {
        Box::pin(async move {
            self.server = Some(server_offline(&mut io.ot, self.spec(cx.ring), cx.len(self.input)).await?);
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
            let out = server_online(&mut io.ch, self.spec(cx.ring), take(&mut self.server), ys, rng).await?;
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
            self.client = Some(client_offline(&mut io.ot, self.spec(cx.ring), r.clone()).await?);
            values.set_share(cx.node.output, r);
            Ok(())
        })
    }

    fn client_online<'a>(&'a mut self, io: &'a mut ClientIo, cx: Cx<'a>, values: &'a mut Values) -> StepFuture<'a> {
        Box::pin(async move {
            let yc = values.share(self.input).to_vec();
            client_online(&mut io.ch, self.spec(cx.ring), take(&mut self.client), yc).await?;
            Ok(())
        })
    }
}
