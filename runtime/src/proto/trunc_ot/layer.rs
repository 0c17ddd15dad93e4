//! An exact truncation over OT as a plan step ([`veil_ir::schedule::Kind::TruncOt`]): the async
//! drivers of [`super`] on the session's OT halves and main channel (they only move the OT
//! batches and the flights of [`Spec::flights`], with their exact sizes), with the garbled
//! step's share convention (the client's output share is its offline mask `r`).

use rand::Rng;
use veil_ir::ValueId;
use veil_ir::schedule::script::label;

use super::{Client, ClientOffline, Server, ServerOffline, Spec};
use crate::exec::step::{ClientIo, Csprng, Cx, Protocol, ServerIo, StepFuture, Values, take};
use crate::net::{Channel, NetError};
use crate::ot::{OtReceive, OtSend};
use crate::proto::mul::random_ring;
use crate::proto::relu_ot::drive::{ClientCore, ServerCore, client_ots, play, serve, server_ots};

const OTS: &str = label::TRUNC_OT_OTS;
const STEP: &str = label::TRUNC_OT;

/// Server, offline: the random-choice OTs for `n` elements, both directions, hashed down.
pub async fn server_offline(ot: &mut impl OtSend, spec: Spec, n: usize) -> Result<ServerOffline, NetError> {
    let (pads, reversed) = server_ots(OTS, ot, n * spec.rots(), n * spec.rots_reversed()).await?;
    // Hashed down at once; the pads go when this returns.
    Ok(ServerOffline::new(spec, &pads, &reversed.choices, &reversed.pads))
}

/// Client, offline: the same OTs, and its output shares `r` (fixed now).
pub async fn client_offline(ot: &mut impl OtReceive, spec: Spec, r: Vec<u64>) -> Result<ClientOffline, NetError> {
    let (ots, reversed) = client_ots(OTS, ot, r.len() * spec.rots(), r.len() * spec.rots_reversed()).await?;
    Ok(ClientOffline::new(spec, &ots.choices, &ots.pads, &reversed, r))
}

/// Server, online: its output shares `(y >> f) − r` from its input shares `ys`.
pub async fn server_online(
    ch: &mut Channel,
    spec: Spec,
    off: ServerOffline,
    ys: Vec<u64>,
    rng: &mut (impl Rng + ?Sized),
) -> Result<Vec<u64>, NetError> {
    server_online_as(STEP, ch, spec, off, ys, rng).await
}

/// [`server_online`] with the flights labelled `label` (a step built on this protocol).
pub(crate) async fn server_online_as(
    label: &'static str,
    ch: &mut Channel,
    spec: Spec,
    off: ServerOffline,
    ys: Vec<u64>,
    rng: &mut (impl Rng + ?Sized),
) -> Result<Vec<u64>, NetError> {
    let flights = spec.flights(ys.len());
    let mut server = Server::new(spec, off, ys);
    serve(label, ch, &flights, &mut server, rng).await?;
    Ok(server.output())
}

/// Client, online: its output shares are `r` (from the offline phase); this runs its flights.
pub async fn client_online(ch: &mut Channel, spec: Spec, off: ClientOffline, yc: Vec<u64>) -> Result<(), NetError> {
    client_online_as(STEP, ch, spec, off, yc).await
}

/// [`client_online`] with the flights labelled `label`.
pub(crate) async fn client_online_as(
    label: &'static str,
    ch: &mut Channel,
    spec: Spec,
    off: ClientOffline,
    yc: Vec<u64>,
) -> Result<(), NetError> {
    let flights = spec.flights(yc.len());
    let (mut client, first) = Client::start(spec, off, yc);
    play(label, ch, &flights, &mut client, first).await
}

impl ServerCore for Server {
    fn answer(&mut self, msg: &[u8], rng: &mut (impl Rng + ?Sized)) -> Option<Vec<u8>> {
        self.reply(msg, rng)
    }
}

impl ClientCore for Client {
    fn answer(&mut self, msg: &[u8]) -> Vec<u8> {
        self.reply(msg)
    }
}

/// The step's state between the phases.
pub struct TruncOtLayer {
    input: ValueId,
    shift: u8,
    server: Option<ServerOffline>,
    client: Option<ClientOffline>,
}

impl std::fmt::Debug for TruncOtLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TruncOtLayer {{ shift: {}, <redacted> }}", self.shift)
    }
}

impl TruncOtLayer {
    /// `input >> shift`, exactly, `1 ≤ shift < ℓ`.
    pub fn new(input: ValueId, shift: u8) -> TruncOtLayer {
        TruncOtLayer { input, shift, server: None, client: None }
    }
}

impl Protocol for TruncOtLayer {
    fn server_offline<'a>(&'a mut self, io: &'a mut ServerIo, cx: Cx<'a>, _rng: &'a mut dyn Csprng) -> StepFuture<'a> {
        Box::pin(async move {
            let spec = Spec::new(cx.ring, u32::from(self.shift));
            self.server = Some(server_offline(&mut io.ot, spec, cx.len(self.input)).await?);
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
            let spec = Spec::new(cx.ring, u32::from(self.shift));
            let out = server_online(&mut io.ch, spec, take(&mut self.server), ys, rng).await?;
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
            let spec = Spec::new(cx.ring, u32::from(self.shift));
            self.client = Some(client_offline(&mut io.ot, spec, r.clone()).await?);
            values.set_share(cx.node.output, r);
            Ok(())
        })
    }

    fn client_online<'a>(&'a mut self, io: &'a mut ClientIo, cx: Cx<'a>, values: &'a mut Values) -> StepFuture<'a> {
        Box::pin(async move {
            let yc = values.share(self.input).to_vec();
            let spec = Spec::new(cx.ring, u32::from(self.shift));
            client_online(&mut io.ch, spec, take(&mut self.client), yc).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ot::{OtReceiver, OtSender};
    use crate::proto::relu_ot::Flight;
    use rand::SeedableRng;
    use veil_ir::ring::Ring;

    /// Over QUIC with the real silent OT, both directions: the simulator's exact truncation for
    /// values of both signs and random ones, and the online bytes each way are the flights' plus a
    /// 4-byte frame prefix each.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn truncation_over_silent_ot_on_quic_equals_the_simulator() {
        let (mut c, mut s) = crate::ot::tests::session_pair().await;
        let (cc, sc) = (c.channel().await.unwrap(), s.channel().await.unwrap());
        let (mut ch_c, mut ch_s) = (c.channel().await.unwrap(), s.channel().await.unwrap());
        let (mut recv, mut send) = (OtReceiver::new(c.ot_connection(), cc), OtSender::new(s.ot_connection(), sc));
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        let (ring, n) = (Ring::new(41), 1500);
        let spec = Spec::new(ring, 13);
        let y: Vec<u64> = (0..n as i64)
            .map(|i| if i % 2 == 0 { ring.from_signed((i - 750) << 10) } else { ring.reduce(rng.random()) })
            .collect();
        let yc: Vec<u64> = (0..n).map(|_| ring.reduce(rng.random())).collect();
        let ys: Vec<u64> = y.iter().zip(&yc).map(|(&v, &c)| ring.reduce(v.wrapping_sub(c))).collect();
        let r: Vec<u64> = (0..n).map(|_| ring.reduce(rng.random())).collect();
        let (r2, yc2) = (r.clone(), yc.clone());
        let client = tokio::spawn(async move {
            let off = client_offline(&mut recv, spec, r2).await.unwrap();
            let before = ch_c.meter().snapshot();
            client_online(&mut ch_c, spec, off, yc2).await.unwrap();
            ch_c.meter().snapshot() - before
        });
        let off = server_offline(&mut send, spec, n).await.unwrap();
        let before = ch_s.meter().snapshot();
        let out = server_online(&mut ch_s, spec, off, ys, &mut rng).await.unwrap();
        let (c_on, s_on) = (client.await.unwrap(), ch_s.meter().snapshot() - before);
        for i in 0..n {
            let want = ring.reduce(ring.truncate(y[i], 13).wrapping_sub(r[i]));
            assert_eq!(out[i], want, "y = {}", ring.to_signed(y[i]));
        }
        let (mut c2s, mut s2c) = (0u64, 0u64);
        for f in spec.flights(n) {
            match f {
                Flight::ToServer(b) => c2s += 4 + b as u64,
                Flight::ToClient(b) => s2c += 4 + b as u64,
            }
        }
        assert_eq!((c_on.bytes_sent, s_on.bytes_sent), (c2s, s2c));
    }
}
