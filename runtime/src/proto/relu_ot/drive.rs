//! The async drivers of [`super`]: they only move OT batches and the flights of
//! [`Spec::flights`], with their exact sizes; all algebra is in the synchronous cores.

use rand::Rng;
use veil_ir::schedule::script::label;

use super::{Client, ClientOffline, Flight, Server, ServerOffline, Spec};
use crate::garble::Block;
use crate::net::{Channel, NetError};
use crate::ot::{OtReceive, OtSend, RandChoice};

/// The label of the step's OT batches.
const OTS: &str = label::RELU_OT_OTS;
/// The label of the step's online flights.
const STEP: &str = label::RELU_OT;

/// Server, offline: the random-choice OTs for `n` elements, both directions.
pub async fn server_offline(ot: &mut impl OtSend, spec: Spec, n: usize) -> Result<ServerOffline, NetError> {
    server_offline_as(OTS, ot, spec, n).await
}

/// [`server_offline`] with the OT batches labelled `label` (a step built on this protocol).
pub(crate) async fn server_offline_as(
    label: &'static str,
    ot: &mut impl OtSend,
    spec: Spec,
    n: usize,
) -> Result<ServerOffline, NetError> {
    let (pads, reversed) = server_ots_as(label, ot, spec, n).await?;
    // Hashed down at once; the pads go back to the OT for its next batches.
    let off = ServerOffline::new(spec, &pads, &reversed.choices, &reversed.pads);
    ot.recycle(pads, reversed);
    Ok(off)
}

/// The server's raw OTs for `n` elements, both directions, labelled `label`: the pads of those
/// it sent, its halves of those the client sent. Hash them down with [`ServerOffline::new`].
pub(crate) async fn server_ots_as(
    label: &'static str,
    ot: &mut impl OtSend,
    spec: Spec,
    n: usize,
) -> Result<(Vec<[Block; 2]>, RandChoice), NetError> {
    server_ots(label, ot, n * spec.rots(), n * spec.rots_reversed()).await
}

/// The server's raw random-choice OTs of a protocol over OT, labelled `label`: the pads of the
/// `sent` it sends, its halves of the `reversed` the client sends.
pub(crate) async fn server_ots(
    label: &'static str,
    ot: &mut impl OtSend,
    sent: usize,
    reversed: usize,
) -> Result<(Vec<[Block; 2]>, RandChoice), NetError> {
    let pads = ot.rand_choice(label, sent).await?;
    let reversed = ot.rand_choice_reversed(label, reversed).await?;
    Ok((pads, reversed))
}

/// Client, offline: the same OTs, and its output shares `r` (fixed now).
pub async fn client_offline(ot: &mut impl OtReceive, spec: Spec, r: Vec<u64>) -> Result<ClientOffline, NetError> {
    client_offline_as(OTS, ot, spec, r).await
}

/// [`client_offline`] with the OT batches labelled `label`.
pub(crate) async fn client_offline_as(
    label: &'static str,
    ot: &mut impl OtReceive,
    spec: Spec,
    r: Vec<u64>,
) -> Result<ClientOffline, NetError> {
    let (ots, reversed) = client_ots_as(label, ot, spec, r.len()).await?;
    // Hashed down at once; the pads go back to the OT for its next batches.
    let off = ClientOffline::new(spec, &ots.choices, &ots.pads, &reversed, r);
    ot.recycle(ots, reversed);
    Ok(off)
}

/// The client's raw OTs for `n` elements, both directions, labelled `label`: its halves of
/// those the server sent, the pads of those it sent. Hash them down with [`ClientOffline::new`].
pub(crate) async fn client_ots_as(
    label: &'static str,
    ot: &mut impl OtReceive,
    spec: Spec,
    n: usize,
) -> Result<(RandChoice, Vec<[Block; 2]>), NetError> {
    client_ots(label, ot, n * spec.rots(), n * spec.rots_reversed()).await
}

/// The client's half of [`server_ots`].
pub(crate) async fn client_ots(
    label: &'static str,
    ot: &mut impl OtReceive,
    sent: usize,
    reversed: usize,
) -> Result<(RandChoice, Vec<[Block; 2]>), NetError> {
    let ots = ot.rand_choice(label, sent).await?;
    let reversed = ot.rand_choice_reversed(label, reversed).await?;
    Ok((ots, reversed))
}

fn size(f: Option<&Flight>) -> usize {
    match f {
        Some(Flight::ToServer(b) | Flight::ToClient(b)) => *b,
        None => 0,
    }
}

/// Server, online: its output shares `(ReLU(y) >> f) − r` from its input shares `ys`.
pub async fn server_online(
    ch: &mut Channel,
    spec: Spec,
    off: ServerOffline,
    ys: Vec<u64>,
    rng: &mut (impl Rng + ?Sized),
) -> Result<Vec<u64>, NetError> {
    server_online_as(STEP, ch, spec, off, ys, rng).await
}

/// [`server_online`] with the flights labelled `label`.
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

/// Server, online, a select at shift 0 ([`Server::select`]): its shares of `keep(y)·v − r` from
/// its shares `ys` of `y` and `vs` of `v`, the flights labelled `label`.
pub(crate) async fn server_select_as(
    label: &'static str,
    ch: &mut Channel,
    spec: Spec,
    off: ServerOffline,
    (ys, vs): (Vec<u64>, Vec<u64>),
    rng: &mut (impl Rng + ?Sized),
) -> Result<Vec<u64>, NetError> {
    let flights = spec.flights(ys.len());
    let mut server = Server::select(spec, off, ys, vs);
    serve(label, ch, &flights, &mut server, rng).await?;
    Ok(server.output())
}

/// A server's synchronous core of a flight protocol over OT: this ReLU's [`Server`], the
/// truncation's (`trunc_ot::Server`).
pub(crate) trait ServerCore {
    /// Its answer to the client's flight `msg`, `None` after the last one.
    fn answer(&mut self, msg: &[u8], rng: &mut (impl Rng + ?Sized)) -> Option<Vec<u8>>;
}

/// A client's synchronous core of a flight protocol over OT ([`Client`], `trunc_ot::Client`).
pub(crate) trait ClientCore {
    /// Its answer to the server's flight `msg`.
    fn answer(&mut self, msg: &[u8]) -> Vec<u8>;
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

/// Answers the client's `flights` (each received at its exact size) until the last one; the
/// server's output is then in `server`.
pub(crate) async fn serve(
    label: &'static str,
    ch: &mut Channel,
    flights: &[Flight],
    server: &mut impl ServerCore,
    rng: &mut (impl Rng + ?Sized),
) -> Result<(), NetError> {
    let mut k = 0;
    loop {
        let msg = ch.recv_exact(label, size(flights.get(k))).await?;
        k += 1;
        match server.answer(&msg, rng) {
            None => return Ok(()),
            Some(back) => {
                ch.send(label, &back).await?;
                k += 1;
            }
        }
    }
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

/// Client, online, a select at shift 0 ([`Client::select`]) on its shares `yc` of `y` and `vc`
/// of `v`, the flights labelled `label`.
pub(crate) async fn client_select_as(
    label: &'static str,
    ch: &mut Channel,
    spec: Spec,
    off: ClientOffline,
    (yc, vc): (Vec<u64>, Vec<u64>),
) -> Result<(), NetError> {
    let flights = spec.flights(yc.len());
    let (mut client, first) = Client::select(spec, off, yc, vc);
    play(label, ch, &flights, &mut client, first).await
}

/// Sends the client's first flight and answers each of the server's `flights`.
pub(crate) async fn play(
    label: &'static str,
    ch: &mut Channel,
    flights: &[Flight],
    client: &mut impl ClientCore,
    first: Vec<u8>,
) -> Result<(), NetError> {
    ch.send(label, &first).await?;
    // Flights alternate, the client's first and last: answer each of the server's.
    for k in (1..flights.len()).step_by(2) {
        let msg = ch.recv_exact(label, size(flights.get(k))).await?;
        let back = client.answer(&msg);
        ch.send(label, &back).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::memory;
    use crate::ot::ideal;
    use crate::ot::{OtReceiver, OtSender};
    use rand::SeedableRng;
    use std::time::Duration;
    use veil_ir::circuit::relu_trunc_mask;
    use veil_ir::ring::Ring;

    fn inputs(ring: Ring, n: usize, rng: &mut impl Rng) -> (Vec<u64>, Vec<u64>, Vec<u64>) {
        let y: Vec<u64> =
            (0..n)
                .map(|i| {
                    if i % 2 == 0 { ring.from_signed(rng.random_range(-5000..5000)) } else { ring.reduce(rng.random()) }
                })
                .collect();
        let yc: Vec<u64> = (0..n).map(|_| ring.reduce(rng.random())).collect();
        let ys = y.iter().zip(&yc).map(|(&y, &c)| ring.reduce(y.wrapping_sub(c))).collect();
        let r = (0..n).map(|_| ring.reduce(rng.random())).collect();
        (ys, yc, r)
    }

    fn check(spec: Spec, ys: &[u64], yc: &[u64], r: &[u64], out: &[u64]) {
        let c = relu_trunc_mask(u32::from(spec.ring.bits), spec.shift);
        for i in 0..ys.len() {
            assert_eq!(out[i], c.eval_u64(&[ys[i], yc[i], r[i]]), "element {i}");
        }
    }

    /// In memory with the ideal OT: the GC circuit's output, and the online bytes are the
    /// flights' plus a 4-byte frame prefix each.
    #[tokio::test]
    async fn relu_over_ideal_ot_equals_the_gc_circuit_and_its_flights() {
        let (mut cc, mut sc) = memory::pair(Duration::from_secs(20));
        let (mut ot_s, mut ot_r) = ideal::pair(7);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let spec = Spec::new(Ring::new(61), 12);
        let n = 1500;
        let (ys, yc, r) = inputs(spec.ring, n, &mut rng);
        let (off_c, off_s) =
            tokio::join!(client_offline(&mut ot_r, spec, r.clone()), server_offline(&mut ot_s, spec, n));
        let before = (cc.meter().snapshot(), sc.meter().snapshot());
        let mut srng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
        let (done, out) = tokio::join!(
            client_online(&mut cc, spec, off_c.unwrap(), yc.clone()),
            server_online(&mut sc, spec, off_s.unwrap(), ys.clone(), &mut srng)
        );
        done.unwrap();
        check(spec, &ys, &yc, &r, &out.unwrap());
        let (c_on, s_on) = (cc.meter().snapshot() - before.0, sc.meter().snapshot() - before.1);
        let (mut c2s, mut s2c) = (0u64, 0u64);
        for f in spec.flights(n) {
            match f {
                Flight::ToServer(b) => c2s += 4 + b as u64,
                Flight::ToClient(b) => s2c += 4 + b as u64,
            }
        }
        assert_eq!((c_on.bytes_sent, s_on.bytes_sent), (c2s, s2c));
    }

    /// Over QUIC with the real silent OT: the same output, and the total traffic per ReLU
    /// (offline OTs included) stays under the 150 B at ℓ = 61.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relu_over_silent_ot_on_quic_equals_the_gc_circuit() {
        let (mut c, mut s) = crate::ot::tests::session_pair().await;
        let (cc, sc) = (c.channel().await.unwrap(), s.channel().await.unwrap());
        let (mut ch_c, mut ch_s) = (c.channel().await.unwrap(), s.channel().await.unwrap());
        let (mut recv, mut send) = (OtReceiver::new(c.ot_connection(), cc), OtSender::new(s.ot_connection(), sc));
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let spec = Spec::new(Ring::new(61), 12);
        let n = 2000;
        let (ys, yc, r) = inputs(spec.ring, n, &mut rng);
        let (r2, yc2) = (r.clone(), yc.clone());
        let client = tokio::spawn(async move {
            let off = client_offline(&mut recv, spec, r2).await.unwrap();
            client_online(&mut ch_c, spec, off, yc2).await.unwrap();
            c
        });
        let off = server_offline(&mut send, spec, n).await.unwrap();
        let out = server_online(&mut ch_s, spec, off, ys.clone(), &mut rng).await.unwrap();
        let c = client.await.unwrap();
        check(spec, &ys, &yc, &r, &out);
        let total = s.meter().snapshot().bytes_sent + c.meter().snapshot().bytes_sent;
        // The silent OTs' fixed cost (base OTs, one batch per direction) is amortised over n.
        assert!(total > (100 * n) as u64 && total < (150 * n) as u64 + 300_000, "{total} B for {n} ReLUs");
    }
}
