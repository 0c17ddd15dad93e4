//! A product `x·y` of two shared values with one Beaver triple per output element
//! (docs/protocols.md, "Product of two shared values"). `y` broadcasts to `x`'s shape (a
//! squeeze-excite gate `[N, C, 1, 1]` times `[N, C, H, W]`): each party expands its own share
//! of `y`, so every output element has its own triple and no opened value is reused.
//! Both parties are in this file: the share algebra in plain functions (no channel), and a thin
//! async driver per party and phase.
//!
//! Offline: the parties make triples `(a, b, ab)` ([`super::mul`]); the client, whose shares
//! `x_c`, `y_c` are already known (they are its masks), sends `d_c = x_c − a_c` and
//! `e_c = y_c − b_c`, and draws its output mask `r`.
//! Online: the server sends `d_s = x_s − a_s` and `e_s = y_s − b_s`; both know `d = x − a` and
//! `e = y − b`, and `x·y = ab + d·b + e·a + d·e` is linear in the triple's shares. The client
//! sends its share minus `r` (re-sharing to its offline mask, so the next linear layer's offline
//! correlation still applies); the server adds it to its own share.
//!
//! What each party sees: `d` and `e` are `x` and `y` masked by the uniform `a` and `b`, used once.
//!
//! Wire: offline `2n` ring elements client → server (after the triples' two product messages);
//! online `2n` server → client and `n` client → server.

use rand::{CryptoRng, RngCore};
use veil_ir::ring::Ring;
use veil_ir::schedule::script::label;

use super::mul::{self, Triples};
use crate::exec::step::{ClientIo, Csprng, Cx, Protocol, ServerIo, StepFuture, Values, take};
use crate::net::{Channel, NetError};
use crate::ot::{OtReceive, OtSend};

/// `y`'s share expanded to `x`'s shape by ONNX unidirectional broadcasting.
pub fn broadcast(y: &[u64], y_shape: &[usize], x_shape: &[usize]) -> Vec<u64> {
    let at = veil_ir::eval::kernels::broadcast_index(y_shape, x_shape);
    (0..x_shape.iter().product()).map(|i| y[at(i)]).collect()
}

/// A party's masked operands, `x − a` then `y − b`, concatenated (the message).
pub fn masked(ring: Ring, x: &[u64], y: &[u64], t: &Triples) -> Vec<u64> {
    let sub = |v: &[u64], m: &[u64]| v.iter().zip(m).map(|(&v, &m)| ring.reduce(v.wrapping_sub(m))).collect::<Vec<_>>();
    let mut out = sub(x, &t.a);
    out.extend(sub(y, &t.b));
    out
}

/// A party's share of `x·y` from the opened `d = x − a`, `e = y − b` (each the sum of both
/// parties' masked operands): `ab + d·b + e·a`, plus `d·e` for the client alone.
fn share_of_product(ring: Ring, t: &Triples, mine: &[u64], theirs: &[u64], client: bool) -> Vec<u64> {
    let n = t.a.len();
    (0..n)
        .map(|j| {
            let d = mine[j].wrapping_add(theirs[j]);
            let e = mine[n + j].wrapping_add(theirs[n + j]);
            let z = t.ab[j].wrapping_add(d.wrapping_mul(t.b[j])).wrapping_add(e.wrapping_mul(t.a[j]));
            ring.reduce(if client { z.wrapping_add(d.wrapping_mul(e)) } else { z })
        })
        .collect()
}

/// What the client keeps between the phases: its triples, its masked operands and its output
/// mask `r` (its share of the output).
pub struct ClientState {
    triples: Triples,
    masked: Vec<u64>,
    r: Vec<u64>,
}

/// What the server keeps between the phases: its triples and the client's masked operands.
pub struct ServerState {
    triples: Triples,
    from_client: Vec<u64>,
}

impl std::fmt::Debug for ClientState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "secret_mul::ClientState {{ n: {}, <redacted> }}", self.r.len())
    }
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "secret_mul::ServerState {{ n: {}, <redacted> }}", self.triples.a.len())
    }
}

impl ClientState {
    /// Client, offline: from its shares `x_c`, `y_c` (broadcast), its triples and its output
    /// mask `r`; the first element is the message to send.
    pub fn new(ring: Ring, x: &[u64], y: &[u64], triples: Triples, r: Vec<u64>) -> (Vec<u64>, ClientState) {
        let m = masked(ring, x, y, &triples);
        (m.clone(), ClientState { triples, masked: m, r })
    }

    /// The client's share of the output (its offline mask).
    pub fn output_share(&self) -> &[u64] {
        &self.r
    }

    /// Client, online: from the server's masked operands, the message re-sharing the output.
    pub fn reshare(self, ring: Ring, from_server: &[u64]) -> Vec<u64> {
        let z = share_of_product(ring, &self.triples, &self.masked, from_server, true);
        z.iter().zip(&self.r).map(|(&z, &r)| ring.reduce(z.wrapping_sub(r))).collect()
    }
}

impl ServerState {
    /// Server, offline: its triples and the client's masked operands.
    pub fn new(triples: Triples, from_client: Vec<u64>) -> ServerState {
        ServerState { triples, from_client }
    }

    /// Server, online: its masked operands (the message) for its shares `x_s`, `y_s` (broadcast).
    pub fn masked(&self, ring: Ring, x: &[u64], y: &[u64]) -> Vec<u64> {
        masked(ring, x, y, &self.triples)
    }

    /// Server, online: its share of the output from its own masked operands and the client's
    /// re-sharing message.
    pub fn output(self, ring: Ring, mine: &[u64], reshare: &[u64]) -> Vec<u64> {
        let z = share_of_product(ring, &self.triples, mine, &self.from_client, false);
        z.iter().zip(reshare).map(|(&z, &m)| ring.reduce(z.wrapping_add(m))).collect()
    }
}

/// Client driver, offline, for its shares `x`, `y` (broadcast to `x`'s length).
pub async fn client_offline<R: RngCore + CryptoRng + Send>(
    ch: &mut Channel,
    ot: &mut impl OtReceive,
    ring: Ring,
    x: &[u64],
    y: &[u64],
    rng: &mut R,
) -> Result<ClientState, NetError> {
    let triples = mul::triples_client(ch, ot, ring, x.len(), rng).await?;
    let r = mul::random_ring(ring, x.len(), rng);
    let (msg, st) = ClientState::new(ring, x, y, triples, r);
    ch.send_u64s(label::MUL_MASKED, &msg).await?;
    Ok(st)
}

/// Server driver, offline, for `n` output elements.
pub async fn server_offline<R: RngCore + CryptoRng + Send>(
    ch: &mut Channel,
    ot: &mut impl OtSend,
    ring: Ring,
    n: usize,
    rng: &mut R,
) -> Result<ServerState, NetError> {
    let triples = mul::triples_server(ch, ot, ring, n, rng).await?;
    let from_client = ch.recv_u64s(label::MUL_MASKED, 2 * n).await?;
    Ok(ServerState::new(triples, from_client))
}

/// Client driver, online.
pub async fn client_online(ch: &mut Channel, ring: Ring, st: ClientState) -> Result<(), NetError> {
    let from_server = ch.recv_u64s(label::MUL_MASKED, 2 * st.r.len()).await?;
    ch.send_u64s(label::MUL_RESHARE, &st.reshare(ring, &from_server)).await
}

/// Server driver, online, for its shares `x`, `y` (broadcast): returns its share of `x·y`.
pub async fn server_online(
    ch: &mut Channel,
    ring: Ring,
    x: &[u64],
    y: &[u64],
    st: ServerState,
) -> Result<Vec<u64>, NetError> {
    let mine = st.masked(ring, x, y);
    ch.send_u64s(label::MUL_MASKED, &mine).await?;
    let reshare = ch.recv_u64s(label::MUL_RESHARE, x.len()).await?;
    Ok(st.output(ring, &mine, &reshare))
}

/// The product as a plan step ([`veil_ir::schedule::Kind::Mul`]).
#[derive(Debug, Default)]
pub struct SecretMul {
    server: Option<ServerState>,
    client: Option<ClientState>,
}

/// A party's shares of the step's two operands, the second broadcast to the first.
fn operands(cx: &Cx<'_>, values: &Values) -> (Vec<u64>, Vec<u64>) {
    let [a, b] = cx.node.inputs[..] else { unreachable!("verified: a product has two operands") };
    let shape = |v| &cx.g.values[v].ty.shape;
    (values.share(a).to_vec(), broadcast(values.share(b), shape(b), shape(a)))
}

impl Protocol for SecretMul {
    fn server_offline<'a>(
        &'a mut self,
        io: &'a mut ServerIo,
        cx: Cx<'a>,
        mut rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        Box::pin(async move {
            let n = cx.len(cx.node.output);
            self.server = Some(server_offline(&mut io.ch, &mut io.ot, cx.ring, n, &mut rng).await?);
            Ok(())
        })
    }

    fn server_online<'a>(
        &'a mut self,
        io: &'a mut ServerIo,
        cx: Cx<'a>,
        values: &'a mut Values,
        _rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        Box::pin(async move {
            let st = take(&mut self.server);
            let (x, y) = operands(&cx, values);
            let out = server_online(&mut io.ch, cx.ring, &x, &y, st).await?;
            values.set_share(cx.node.output, out);
            Ok(())
        })
    }

    fn client_offline<'a>(
        &'a mut self,
        io: &'a mut ClientIo,
        cx: Cx<'a>,
        values: &'a mut Values,
        mut rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        Box::pin(async move {
            let (x, y) = operands(&cx, values);
            let st = client_offline(&mut io.ch, &mut io.ot, cx.ring, &x, &y, &mut rng).await?;
            values.set_share(cx.node.output, st.output_share().to_vec());
            self.client = Some(st);
            Ok(())
        })
    }

    fn client_online<'a>(&'a mut self, io: &'a mut ClientIo, cx: Cx<'a>, _values: &'a mut Values) -> StepFuture<'a> {
        Box::pin(async move {
            client_online(&mut io.ch, cx.ring, take(&mut self.client)).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    use crate::proto::mul::random_ring as random;

    /// A dealer's Beaver triples for `n` elements: (the client's, the server's), with `ab_error`
    /// added to the server's `ab` (a bad triple).
    fn deal(ring: Ring, n: usize, ab_error: u64, rng: &mut impl RngCore) -> (Triples, Triples) {
        let (a_c, a_s, b_c, b_s) =
            (random(ring, n, rng), random(ring, n, rng), random(ring, n, rng), random(ring, n, rng));
        let ab_c = random(ring, n, rng);
        let ab_s: Vec<u64> = (0..n)
            .map(|i| {
                let ab = a_c[i].wrapping_add(a_s[i]).wrapping_mul(b_c[i].wrapping_add(b_s[i]));
                ring.reduce(ab.wrapping_sub(ab_c[i]).wrapping_add(ab_error))
            })
            .collect();
        (Triples { a: a_c, b: b_c, ab: ab_c }, Triples { a: a_s, b: b_s, ab: ab_s })
    }

    fn split(ring: Ring, x: &[u64], rng: &mut impl RngCore) -> (Vec<u64>, Vec<u64>) {
        let c = random(ring, x.len(), rng);
        let s = x.iter().zip(&c).map(|(&x, &c)| ring.reduce(x.wrapping_sub(c))).collect();
        (c, s)
    }

    /// The share algebra alone, no channel: dealer-made triples, messages handed across by
    /// hand, `y` broadcast from `[2, 1]` to `[2, 3]`; the shares reconstruct to `x·y` in the ring
    /// (including the extreme elements), and a triple with a wrong `ab` is caught.
    #[test]
    fn shares_reconstruct_the_broadcast_product() {
        let ring = Ring::new(41);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let (x_shape, y_shape) = ([2usize, 3], [2usize, 1]);
        let x = vec![0, 1, ring.mask(), ring.from_signed(-7), ring.reduce(rng.next_u64()), 12345];
        let y = vec![ring.mask(), ring.from_signed(3)];
        let run = |ab_error: u64, rng: &mut rand_chacha::ChaCha20Rng| {
            let (xc, xs) = split(ring, &x, rng);
            let (yc, ys) = split(ring, &y, rng);
            let (yc, ys) = (broadcast(&yc, &y_shape, &x_shape), broadcast(&ys, &y_shape, &x_shape));
            let n = x.len();
            let (tc, ts) = deal(ring, n, ab_error, rng);
            let r = random(ring, n, rng);
            let (msg, client) = ClientState::new(ring, &xc, &yc, tc, r.clone());
            assert_eq!(client.output_share(), r.as_slice());
            let server = ServerState::new(ts, msg);
            let mine = server.masked(ring, &xs, &ys);
            let reshare = client.reshare(ring, &mine);
            let out = server.output(ring, &mine, &reshare);
            (0..n).map(|i| ring.reduce(out[i].wrapping_add(r[i]))).collect::<Vec<_>>()
        };
        let want: Vec<u64> = (0..6).map(|i| ring.reduce(x[i].wrapping_mul(y[i / 3]))).collect();
        assert_eq!(run(0, &mut rng), want);
        assert_ne!(run(1, &mut rng), want, "a bad triple must show in the product");
    }

    /// The two drivers in memory with the ideal OT: the same reconstruction, and the online
    /// phase moves exactly the documented frames (`2n` elements down, `n` up).
    #[tokio::test]
    async fn drivers_in_memory_reconstruct_with_the_documented_traffic() {
        let (mut cc, mut sc) = crate::net::memory::pair(std::time::Duration::from_secs(20));
        let (mut ot_s, mut ot_r) = crate::ot::ideal::pair(6);
        let ring = Ring::new(45);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let n = 200;
        let (x, y) = (random(ring, n, &mut rng), random(ring, n, &mut rng));
        let ((xc, xs), (yc, ys)) = (split(ring, &x, &mut rng), split(ring, &y, &mut rng));
        let (mut rc, mut rs) = (rand_chacha::ChaCha20Rng::seed_from_u64(1), rand_chacha::ChaCha20Rng::seed_from_u64(2));
        let (st_c, st_s) = tokio::join!(
            client_offline(&mut cc, &mut ot_r, ring, &xc, &yc, &mut rc),
            server_offline(&mut sc, &mut ot_s, ring, n, &mut rs)
        );
        let (st_c, st_s) = (st_c.unwrap(), st_s.unwrap());
        let r = st_c.output_share().to_vec();
        let before = (cc.meter().snapshot(), sc.meter().snapshot());
        let (done, out) =
            tokio::join!(client_online(&mut cc, ring, st_c), server_online(&mut sc, ring, &xs, &ys, st_s));
        done.unwrap();
        let out = out.unwrap();
        assert_eq!(cc.meter().snapshot().bytes_sent - before.0.bytes_sent, 4 + 8 * n as u64);
        assert_eq!(sc.meter().snapshot().bytes_sent - before.1.bytes_sent, 4 + 16 * n as u64);
        for i in 0..n {
            assert_eq!(ring.reduce(out[i].wrapping_add(r[i])), ring.reduce(x[i].wrapping_mul(y[i])), "element {i}");
        }
    }

    /// A curious client studies what it received online (the server's masked operands) over
    /// many runs with one server operand and many with another, its own shares and output mask
    /// fixed: fresh triples make the two worlds look alike. Reusing one triple across two
    /// products would hand it `d₁ − d₂ = x₁ − x₂`, and the same distinguisher sees that.
    #[test]
    fn the_client_cannot_tell_the_servers_operands_apart_unless_a_triple_is_reused() {
        use crate::proto::distinguish::{Z_LEAK, max_bit_z};
        let ring = Ring::new(20);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        let n = 8;
        // The server's operand shares in the two worlds.
        let worlds = [(vec![5u64; n], vec![7u64; n]), (vec![ring.from_signed(-5); n], vec![ring.from_signed(900); n])];
        let bytes = |v: &[u64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let (mut fresh, mut reused) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
        for (w, (xs, ys)) in worlds.iter().enumerate() {
            for _ in 0..300 {
                // The client's half of the triple and its own shares (xc, yc, r) are the same
                // kind of value in both worlds; what differs is what the server sends.
                let (_, ts) = deal(ring, n, 0, &mut rng);
                let server = ServerState::new(ts.clone(), Vec::new());
                let seen = server.masked(ring, xs, ys);
                fresh[w].push(bytes(&seen));
                // The same triple for a second product with the server's operands (0, 0).
                let again = ServerState::new(ts, Vec::new()).masked(ring, &vec![0; n], &vec![0; n]);
                let diff: Vec<u64> = seen.iter().zip(&again).map(|(&p, &q)| ring.reduce(p.wrapping_sub(q))).collect();
                reused[w].push(bytes(&diff));
            }
        }
        let z = max_bit_z(&fresh[0], &fresh[1]);
        assert!(z < Z_LEAK, "the client's view tells the worlds apart: |z| = {z:.1}");
        let z_reused = max_bit_z(&reused[0], &reused[1]);
        assert!(z_reused > Z_LEAK, "a reused triple should leak the operands' difference: |z| = {z_reused:.1}");
    }
}
