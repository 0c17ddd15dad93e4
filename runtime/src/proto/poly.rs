//! A polynomial activation `q0 + q1·x + q2·x²` on shares `x = c + s` with one Beaver square
//! pair per element (docs/protocols.md, "Polynomial activation"). Both parties are in this file:
//! the share algebra in plain functions (no channel), and a thin async driver per party and
//! phase that moves their messages.
//!
//! Offline: the parties make square pairs `(a, a²)` ([`super::mul`]); the client, whose share `c`
//! is already known, sends `e_c = c − a_c` and draws its output mask `r`.
//! Online: the server sends `e_s = s − a_s`; both know `e = e_c + e_s = x − a`, so
//! `x² = e² + 2·e·a + a²` is linear in the pair's shares. The client computes its share of the
//! polynomial minus `r` and sends it (re-sharing to its offline mask, so the next linear layer's
//! offline correlation still applies); the server adds it to its own share.
//!
//! Wire: offline `n` ring elements client → server (after the pairs' product message); online
//! `n` ring elements each way.

use crate::exec::step::{ClientIo, Csprng, Cx, Protocol, ServerIo, StepFuture, Values, take};
use rand::{CryptoRng, RngCore};
use veil_ir::ring::Ring;
use veil_ir::schedule::script::label;
use veil_ir::{ElemType, Op};

use super::mul::{self, SquarePairs};
use crate::net::{Channel, NetError};
use crate::ot::{OtReceive, OtSend};

/// The quantized coefficients `[q0, q1, q2]` of `coeffs` (constant term first) for input scale
/// `s_in`, as the simulator computes them, zero-extended to degree 2.
pub fn coefficients(ring: Ring, coeffs: &[f32], s_in: u8) -> [u64; 3] {
    let q = veil_ir::eval::ring_ops::poly_coeffs(ring, coeffs, s_in);
    std::array::from_fn(|i| q.get(i).copied().unwrap_or(0))
}

/// What the client keeps between the phases: its square pairs, its masked share `e_c` and its
/// output mask `r` (its share of the output).
pub struct ClientState {
    pairs: SquarePairs,
    e_c: Vec<u64>,
    r: Vec<u64>,
}

/// What the server keeps between the phases: its square pairs and the client's `e_c`.
pub struct ServerState {
    pairs: SquarePairs,
    e_c: Vec<u64>,
}

impl std::fmt::Debug for ClientState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "poly::ClientState {{ n: {}, <redacted> }}", self.r.len())
    }
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "poly::ServerState {{ n: {}, <redacted> }}", self.e_c.len())
    }
}

/// `x − a` per element: a party's masked share (`e_c` from `c`, `e_s` from `s`).
pub fn masked_share(ring: Ring, x: &[u64], pairs: &SquarePairs) -> Vec<u64> {
    x.iter().zip(&pairs.a).map(|(&x, &a)| ring.reduce(x.wrapping_sub(a))).collect()
}

impl ClientState {
    /// Client, offline: from its share `c`, its pairs and its output mask `r`; the first
    /// element is the message to send (`e_c`).
    pub fn new(ring: Ring, c: &[u64], pairs: SquarePairs, r: Vec<u64>) -> (Vec<u64>, ClientState) {
        let e_c = masked_share(ring, c, &pairs);
        (e_c.clone(), ClientState { pairs, e_c, r })
    }

    /// The client's share of the output (its offline mask).
    pub fn output_share(&self) -> &[u64] {
        &self.r
    }

    /// Client, online: from the server's `e_s`, the message re-sharing the output,
    /// `q0 + q1·c + q2·(e² + 2·e·a_c + sq_c) − r`.
    pub fn reshare(self, ring: Ring, q: [u64; 3], c: &[u64], e_s: &[u64]) -> Vec<u64> {
        let ClientState { pairs, e_c, r } = self;
        (0..c.len())
            .map(|j| {
                let e = e_c[j].wrapping_add(e_s[j]);
                let sq = e
                    .wrapping_mul(e)
                    .wrapping_add(e.wrapping_mul(pairs.a[j]).wrapping_mul(2))
                    .wrapping_add(pairs.sq[j]);
                let z = q[0].wrapping_add(q[1].wrapping_mul(c[j])).wrapping_add(q[2].wrapping_mul(sq));
                ring.reduce(z.wrapping_sub(r[j]))
            })
            .collect()
    }
}

impl ServerState {
    /// Server, offline: its pairs and the client's `e_c`.
    pub fn new(pairs: SquarePairs, e_c: Vec<u64>) -> ServerState {
        ServerState { pairs, e_c }
    }

    /// Server, online: its masked share `e_s` (the message to send) for its share `s`.
    pub fn masked(&self, ring: Ring, s: &[u64]) -> Vec<u64> {
        masked_share(ring, s, &self.pairs)
    }

    /// Server, online: its share of the output, `q1·s + q2·(2·e·a_s + sq_s)` plus the client's
    /// re-sharing message, from its share `s` and its own `e_s`.
    pub fn output(self, ring: Ring, q: [u64; 3], s: &[u64], e_s: &[u64], from_client: &[u64]) -> Vec<u64> {
        let ServerState { pairs, e_c } = self;
        (0..s.len())
            .map(|j| {
                let e = e_c[j].wrapping_add(e_s[j]);
                let sq = e.wrapping_mul(pairs.a[j]).wrapping_mul(2).wrapping_add(pairs.sq[j]);
                let z = q[1].wrapping_mul(s[j]).wrapping_add(q[2].wrapping_mul(sq));
                ring.reduce(z.wrapping_add(from_client[j]))
            })
            .collect()
    }
}

fn random(ring: Ring, n: usize, rng: &mut impl RngCore) -> Vec<u64> {
    (0..n).map(|_| ring.reduce(rng.next_u64())).collect()
}

/// Client driver, offline, for its share `c`.
pub async fn client_offline<R: RngCore + CryptoRng + Send>(
    ch: &mut Channel,
    ot: &mut impl OtReceive,
    ring: Ring,
    c: &[u64],
    rng: &mut R,
) -> Result<ClientState, NetError> {
    let pairs = mul::squares_client(ch, ot, ring, c.len(), rng).await?;
    let r = random(ring, c.len(), rng);
    let (e_c, st) = ClientState::new(ring, c, pairs, r);
    ch.send_u64s(label::POLY_MASKED, &e_c).await?;
    Ok(st)
}

/// Server driver, offline, for `n` elements.
pub async fn server_offline<R: RngCore + CryptoRng + Send>(
    ch: &mut Channel,
    ot: &mut impl OtSend,
    ring: Ring,
    n: usize,
    rng: &mut R,
) -> Result<ServerState, NetError> {
    let pairs = mul::squares_server(ch, ot, ring, n, rng).await?;
    let e_c = ch.recv_u64s(label::POLY_MASKED, n).await?;
    Ok(ServerState::new(pairs, e_c))
}

/// Client driver, online, for its share `c`.
pub async fn client_online(
    ch: &mut Channel,
    ring: Ring,
    q: [u64; 3],
    c: &[u64],
    st: ClientState,
) -> Result<(), NetError> {
    let e_s = ch.recv_u64s(label::POLY_MASKED, c.len()).await?;
    ch.send_u64s(label::POLY_RESHARE, &st.reshare(ring, q, c, &e_s)).await
}

/// Server driver, online, for its share `s`: returns its share of the output.
pub async fn server_online(
    ch: &mut Channel,
    ring: Ring,
    q: [u64; 3],
    s: &[u64],
    st: ServerState,
) -> Result<Vec<u64>, NetError> {
    let e_s = st.masked(ring, s);
    ch.send_u64s(label::POLY_MASKED, &e_s).await?;
    let from_client = ch.recv_u64s(label::POLY_RESHARE, s.len()).await?;
    Ok(st.output(ring, q, s, &e_s, &from_client))
}

/// The polynomial activation as a plan step ([`veil_ir::schedule::Kind::Poly`]): the node's
/// input, its coefficients from the node's op.
#[derive(Debug, Default)]
pub struct PolyLayer {
    server: Option<ServerState>,
    client: Option<ClientState>,
}

/// The step's quantized coefficients.
fn step_coefficients(cx: &Cx<'_>) -> [u64; 3] {
    let Op::Poly { coeffs } = &cx.node.op else { unreachable!("a polynomial step's node is a poly") };
    let s_in = match cx.g.values[cx.node.inputs[0]].ty.elem {
        ElemType::Fixed { frac_bits } => frac_bits,
        _ => 0,
    };
    coefficients(cx.ring, coeffs, s_in)
}

impl Protocol for PolyLayer {
    fn server_offline<'a>(
        &'a mut self,
        io: &'a mut ServerIo,
        cx: Cx<'a>,
        mut rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        Box::pin(async move {
            let n = cx.len(cx.node.inputs[0]);
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
            let s = values.share(cx.node.inputs[0]);
            let out = server_online(&mut io.ch, cx.ring, step_coefficients(&cx), s, st).await?;
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
            let c = values.share(cx.node.inputs[0]);
            let st = client_offline(&mut io.ch, &mut io.ot, cx.ring, c, &mut rng).await?;
            values.set_share(cx.node.output, st.output_share().to_vec());
            self.client = Some(st);
            Ok(())
        })
    }

    fn client_online<'a>(&'a mut self, io: &'a mut ClientIo, cx: Cx<'a>, values: &'a mut Values) -> StepFuture<'a> {
        Box::pin(async move {
            let st = take(&mut self.client);
            client_online(&mut io.ch, cx.ring, step_coefficients(&cx), values.share(cx.node.inputs[0]), st).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The share algebra alone, no channel: dealer-made square pairs, both parties' messages
    /// handed across by hand; the shares reconstruct to the polynomial evaluated in the clear.
    #[test]
    fn shares_reconstruct_the_polynomial() {
        let ring = Ring::new(37);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let n = 500;
        let x: Vec<u64> =
            (0..n).map(|i| if i < 3 { [0, 1, ring.mask()][i] } else { ring.reduce(rng.next_u64()) }).collect();
        let c = random(ring, n, &mut rng);
        let s: Vec<u64> = x.iter().zip(&c).map(|(&x, &c)| ring.reduce(x.wrapping_sub(c))).collect();
        // A trusted dealer's pairs: a = a_c + a_s, sq = sq_c + sq_s = a².
        let (a_c, a_s) = (random(ring, n, &mut rng), random(ring, n, &mut rng));
        let sq_c = random(ring, n, &mut rng);
        let sq_s: Vec<u64> = (0..n)
            .map(|i| {
                let a = a_c[i].wrapping_add(a_s[i]);
                ring.reduce(a.wrapping_mul(a).wrapping_sub(sq_c[i]))
            })
            .collect();
        let r = random(ring, n, &mut rng);
        let q = [ring.reduce(12345), ring.from_signed(-77), 3];
        let (e_c, client) = ClientState::new(ring, &c, SquarePairs { a: a_c, sq: sq_c }, r.clone());
        assert_eq!(client.output_share(), r.as_slice());
        let server = ServerState::new(SquarePairs { a: a_s, sq: sq_s }, e_c);
        let e_s = server.masked(ring, &s);
        let msg = client.reshare(ring, q, &c, &e_s);
        let out = server.output(ring, q, &s, &e_s, &msg);
        for i in 0..n {
            let want =
                q[0].wrapping_add(q[1].wrapping_mul(x[i])).wrapping_add(q[2].wrapping_mul(x[i]).wrapping_mul(x[i]));
            assert_eq!(ring.reduce(out[i].wrapping_add(r[i])), ring.reduce(want), "element {i}");
        }
    }

    /// The two drivers in memory with the ideal OT: the same reconstruction, and the online
    /// phase moves exactly one frame of `n` ring elements each way.
    #[tokio::test]
    async fn drivers_in_memory_reconstruct_with_the_documented_traffic() {
        let (mut cc, mut sc) = crate::net::memory::pair(std::time::Duration::from_secs(20));
        let (mut ot_s, mut ot_r) = crate::ot::ideal::pair(4);
        let ring = Ring::new(45);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
        let n = 300;
        let x = random(ring, n, &mut rng);
        let c = random(ring, n, &mut rng);
        let s: Vec<u64> = x.iter().zip(&c).map(|(&x, &c)| ring.reduce(x.wrapping_sub(c))).collect();
        let q = coefficients(ring, &[0.25, -0.5, 0.125], 8);
        let (mut rc, mut rs) = (rand_chacha::ChaCha20Rng::seed_from_u64(1), rand_chacha::ChaCha20Rng::seed_from_u64(2));
        let (st_c, st_s) = tokio::join!(
            client_offline(&mut cc, &mut ot_r, ring, &c, &mut rc),
            server_offline(&mut sc, &mut ot_s, ring, n, &mut rs)
        );
        let (st_c, st_s) = (st_c.unwrap(), st_s.unwrap());
        let r = st_c.output_share().to_vec();
        let before = (cc.meter().snapshot(), sc.meter().snapshot());
        let (done, out) =
            tokio::join!(client_online(&mut cc, ring, q, &c, st_c), server_online(&mut sc, ring, q, &s, st_s));
        done.unwrap();
        let out = out.unwrap();
        let frame = 4 + 8 * n as u64;
        assert_eq!(cc.meter().snapshot().bytes_sent - before.0.bytes_sent, frame);
        assert_eq!(sc.meter().snapshot().bytes_sent - before.1.bytes_sent, frame);
        for i in 0..n {
            let want =
                q[0].wrapping_add(q[1].wrapping_mul(x[i])).wrapping_add(q[2].wrapping_mul(x[i]).wrapping_mul(x[i]));
            assert_eq!(ring.reduce(out[i].wrapping_add(r[i])), ring.reduce(want), "element {i}");
        }
    }
}
