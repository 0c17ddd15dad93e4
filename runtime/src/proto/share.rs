//! Input sharing and output reveal (docs/protocols.md, "Sharing and reveal").
//!
//! Sharing a client value `x`: offline the client draws its share, a fresh mask `r`; online it
//! sends `x − r`, the server's share. Revealing a shared value: the server sends its share `s`,
//! the client adds its own, `c + s`. One frame of ring elements each, and nothing else.

use veil_ir::ValueId;
use veil_ir::ring::Ring;
use veil_ir::schedule::script::label;

use crate::exec::step::{ClientIo, Csprng, Cx, Protocol, ServerIo, StepFuture, Values};
use crate::proto::mul::random_ring;

/// `x − r` per element: the server's share of a client value `x` masked by `r`.
pub fn masked(ring: Ring, x: &[u64], r: &[u64]) -> Vec<u64> {
    x.iter().zip(r).map(|(&x, &r)| ring.reduce(x.wrapping_sub(r))).collect()
}

/// `c + s` per element: a shared value from both shares.
pub fn reconstruct(ring: Ring, c: &[u64], s: &[u64]) -> Vec<u64> {
    c.iter().zip(s).map(|(&a, &b)| ring.reduce(a.wrapping_add(b))).collect()
}

/// Sharing the client value `value` (the step [`veil_ir::schedule::Kind::Share`]).
#[derive(Debug)]
pub struct ShareInput {
    /// The client's plaintext value to share; both parties' shares are stored under the same id.
    pub value: ValueId,
}

impl Protocol for ShareInput {
    fn server_online<'a>(
        &'a mut self,
        io: &'a mut ServerIo,
        cx: Cx<'a>,
        values: &'a mut Values,
        _rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        Box::pin(async move {
            // The first input may come late: the client can preprocess before it has it.
            let first = values.share.iter().all(Option::is_none);
            let normal = first.then(|| io.ch.set_timeout(io.input_wait));
            let got = io.ch.recv_u64s(label::SHARE, cx.len(self.value)).await;
            if let Some(t) = normal {
                io.ch.set_timeout(t);
            }
            values.set_share(self.value, got?);
            Ok(())
        })
    }

    fn client_offline<'a>(
        &'a mut self,
        _io: &'a mut ClientIo,
        cx: Cx<'a>,
        values: &'a mut Values,
        rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        values.set_share(self.value, random_ring(cx.ring, cx.len(self.value), rng));
        Box::pin(async { Ok(()) })
    }

    fn client_online<'a>(&'a mut self, io: &'a mut ClientIo, cx: Cx<'a>, values: &'a mut Values) -> StepFuture<'a> {
        Box::pin(async move {
            let x = values.plain[self.value.index()].as_deref().expect("client value");
            let d = masked(cx.ring, x, values.share(self.value));
            io.ch.send_u64s(label::SHARE, &d).await?;
            Ok(())
        })
    }
}

/// Revealing the node's shared input to the client (the step [`veil_ir::schedule::Kind::Reveal`]).
#[derive(Debug)]
pub struct Reveal;

impl Protocol for Reveal {
    fn server_online<'a>(
        &'a mut self,
        io: &'a mut ServerIo,
        cx: Cx<'a>,
        values: &'a mut Values,
        _rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        Box::pin(async move {
            io.ch.send_u64s(label::REVEAL, values.share(cx.node.inputs[0])).await?;
            Ok(())
        })
    }

    fn client_online<'a>(&'a mut self, io: &'a mut ClientIo, cx: Cx<'a>, values: &'a mut Values) -> StepFuture<'a> {
        Box::pin(async move {
            let c = values.share(cx.node.inputs[0]);
            let s = io.ch.recv_u64s(label::REVEAL, c.len()).await?;
            values.plain[cx.node.output.index()] = Some(reconstruct(cx.ring, c, &s));
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_and_reconstruct_invert_each_other_at_the_ring_edges() {
        let ring = Ring::new(13);
        let top = 1u64 << 12;
        let x = [0, 1, ring.mask(), top, top - 1, 77];
        let r = [ring.mask(), 5, ring.mask(), top + 3, 0, 78];
        let s = masked(ring, &x, &r);
        assert!(s.iter().all(|&v| v <= ring.mask()), "reduced: {s:?}");
        assert_eq!(s[1], ring.reduce(1u64.wrapping_sub(5)));
        assert_eq!(reconstruct(ring, &r, &s), x.to_vec());
    }
}
