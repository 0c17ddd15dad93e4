//! A matrix product `X·Y` of two shared values (`X` is `[.., m, k]`, `Y` is `[.., k, n]`, same
//! leading axes) with one **matrix Beaver triple** `(U, V, Z = U·V)` per batch element
//! (docs/protocols.md, "Product of two shared matrices"). Where the elementwise lowering opened
//! `2·m·k·n` masked values per matrix, this opens `m·k + k·n`.
//!
//! Offline, the triple: each party draws its shares of `U` and `V`; `Z = U·V` needs the two cross
//! products `U_c·V_s` and `U_s·V_c`, each a batch of Gilboa vector products from random OT
//! ([`super::matmul`], the dense layers' OT correlation): `U_c·V_s` row by row of `U_c` (the
//! server's "weights" `V_sᵀ`, `n × k`), `U_s·V_c` column by column of `V_c` (weights `U_s`,
//! `m × k`), then transposed. The client, whose operand shares `X_c`, `Y_c` are already known
//! (they are its masks), sends `D_c = X_c − U_c` and `E_c = Y_c − V_c`, and draws its output
//! mask `R`.
//! Online: the server sends `D_s = X_s − U_s` and `E_s = Y_s − V_s`; both know `D = X − U` and
//! `E = Y − V`, and `X·Y = Z + D·V + U·E + D·E` is linear in the triple's shares. The client sends
//! its share minus `R`; the server adds it to its own.
//!
//! What each party sees: `D` and `E` are `X` and `Y` masked by the uniform `U` and `V`, used once;
//! the Gilboa corrections are masked by PRG outputs of OT pads the client does not hold.
//!
//! Wire per batch element: offline `(m + n)·k·ℓ` random OTs, `m` frames of `⌈k·n·ℓ(ℓ+1)/16⌉`
//! bytes and `n` of `⌈k·m·ℓ(ℓ+1)/16⌉` server → client, `m·k + k·n` ring elements client →
//! server; online
//! `m·k + k·n` ring elements server → client and `m·n` client → server.

use rand::{CryptoRng, RngCore};
use veil_ir::eval::kernels;
use veil_ir::ring::Ring;
use veil_ir::schedule::script::label;

use super::matmul::{choice_bits, client_share, message_bytes, server_message};
use super::mul::random_ring;
use crate::exec::step::{ClientIo, Csprng, Cx, Protocol, ServerIo, StepFuture, Values, take};
use crate::net::{Channel, NetError};
use crate::ot::{OtReceive, OtSend};

/// `(batch, m, k, n)` of one product.
pub type Dims = (usize, usize, usize, usize);

/// One party's shares of matrix Beaver triples, batch-major and row-major.
#[derive(Clone)]
pub struct MatrixTriples {
    /// This party's shares of the random `U` (`batch × m × k`). Secret.
    pub u: Vec<u64>,
    /// This party's shares of the random `V` (`batch × k × n`). Secret.
    pub v: Vec<u64>,
    /// This party's shares of `Z = U·V` (`batch × m × n`). Secret.
    pub z: Vec<u64>,
}

impl std::fmt::Debug for MatrixTriples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MatrixTriples {{ u: {}, v: {}, <redacted> }}", self.u.len(), self.v.len())
    }
}

/// `a·b` in the ring for batched row-major matrices.
fn product(ring: Ring, a: &[u64], b: &[u64], dims: Dims) -> Vec<u64> {
    let out = kernels::matmul(a, b, dims, 0u64, |s, x, y| s.wrapping_add(x.wrapping_mul(y)));
    out.into_iter().map(|v| ring.reduce(v)).collect()
}

/// Each `rows × cols` matrix of a batch transposed.
fn transpose(x: &[u64], batch: usize, rows: usize, cols: usize) -> Vec<u64> {
    let mut out = vec![0; x.len()];
    for p in 0..batch {
        for i in 0..rows {
            for j in 0..cols {
                out[p * rows * cols + j * rows + i] = x[p * rows * cols + i * cols + j];
            }
        }
    }
    out
}

fn add(ring: Ring, a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().zip(b).map(|(&a, &b)| ring.reduce(a.wrapping_add(b))).collect()
}

fn sub(ring: Ring, a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().zip(b).map(|(&a, &b)| ring.reduce(a.wrapping_sub(b))).collect()
}

/// Client side of a batch of Gilboa vector products: its shares (`batch × rows × cols`) of
/// `c_p · W_p` for its `c` (`batch × rows × k`) and the server's per-batch weights; one frame
/// per row (`k·cols` corrections), so no frame outgrows a row however large the matrices.
async fn cross_client(
    ch: &mut Channel,
    ot: &mut impl OtReceive,
    ring: Ring,
    c: &[u64],
    (batch, rows, k, cols): Dims,
) -> Result<Vec<u64>, NetError> {
    let bits = choice_bits(ring, c);
    let pads = ot.random(label::MATMUL_OT, &bits).await?;
    let per = message_bytes(ring, k, cols);
    let mut out = Vec::with_capacity(batch * rows * cols);
    for row in 0..batch * rows {
        let msg = ch.recv_exact(label::MATMUL_PRODUCT, per).await?;
        out.extend(crate::compute(|| client_share(ring, &bits, &pads, &msg, row, k, cols)));
    }
    Ok(out)
}

/// Server side of [`cross_client`]: `w` holds each batch element's weights (`cols × k`,
/// row-major); returns its shares.
async fn cross_server(
    ch: &mut Channel,
    ot: &mut impl OtSend,
    ring: Ring,
    w: &[u64],
    (batch, rows, k, cols): Dims,
) -> Result<Vec<u64>, NetError> {
    let pads = ot.random(label::MATMUL_OT, batch * rows * k * ring.bits as usize).await?;
    let mut shares = Vec::with_capacity(batch * rows * cols);
    for p in 0..batch {
        let wp: Vec<i64> = w[p * cols * k..(p + 1) * cols * k].iter().map(|&x| x as i64).collect();
        for i in 0..rows {
            let (msg, s) = crate::compute(|| server_message(ring, &wp, &pads, p * rows + i, k, cols));
            ch.send(label::MATMUL_PRODUCT, &msg).await?;
            shares.extend(s);
        }
    }
    Ok(shares)
}

/// Client side of the triples (the client is the OT receiver of both cross products).
pub async fn triples_client<R: RngCore + CryptoRng + Send>(
    ch: &mut Channel,
    ot: &mut impl OtReceive,
    ring: Ring,
    (batch, m, k, n): Dims,
    rng: &mut R,
) -> Result<MatrixTriples, NetError> {
    let (u, v) = (random_ring(ring, batch * m * k, rng), random_ring(ring, batch * k * n, rng));
    let t1 = cross_client(ch, ot, ring, &u, (batch, m, k, n)).await?; // U_c·V_s
    let t2 = cross_client(ch, ot, ring, &transpose(&v, batch, k, n), (batch, n, k, m)).await?; // (U_s·V_c)ᵀ
    Ok(assemble(ring, u, v, &t1, &t2, (batch, m, k, n)))
}

/// Server side of the triples.
pub async fn triples_server<R: RngCore + CryptoRng + Send>(
    ch: &mut Channel,
    ot: &mut impl OtSend,
    ring: Ring,
    (batch, m, k, n): Dims,
    rng: &mut R,
) -> Result<MatrixTriples, NetError> {
    let (u, v) = (random_ring(ring, batch * m * k, rng), random_ring(ring, batch * k * n, rng));
    let t1 = cross_server(ch, ot, ring, &transpose(&v, batch, k, n), (batch, m, k, n)).await?;
    let t2 = cross_server(ch, ot, ring, &u, (batch, n, k, m)).await?;
    Ok(assemble(ring, u, v, &t1, &t2, (batch, m, k, n)))
}

/// A party's triples from its halves `U`, `V` and its shares of the cross products, `t1` of
/// `U_c·V_s` and `t2` of `(U_s·V_c)ᵀ`: `Z = U·V + t1 + t2ᵀ` (its own product plus the cross terms).
fn assemble(ring: Ring, u: Vec<u64>, v: Vec<u64>, t1: &[u64], t2: &[u64], (batch, m, k, n): Dims) -> MatrixTriples {
    let z = add(ring, &add(ring, &product(ring, &u, &v, (batch, m, k, n)), t1), &transpose(t2, batch, n, m));
    MatrixTriples { u, v, z }
}

/// A party's masked operands, `X − U` then `Y − V`, concatenated (the message).
pub fn masked(ring: Ring, x: &[u64], y: &[u64], t: &MatrixTriples) -> Vec<u64> {
    let mut out = sub(ring, x, &t.u);
    out.extend(sub(ring, y, &t.v));
    out
}

/// A party's share of `X·Y` from both parties' masked operands: `Z + D·V + U·E`, plus `D·E`
/// for the client alone (as `D·(V + E)`: two matrix products for either party).
fn share_of_product(ring: Ring, t: &MatrixTriples, mine: &[u64], theirs: &[u64], dims: Dims, client: bool) -> Vec<u64> {
    let opened = add(ring, mine, theirs);
    let (d, e) = opened.split_at(t.u.len());
    let dv = if client { product(ring, d, &add(ring, &t.v, e), dims) } else { product(ring, d, &t.v, dims) };
    let z = add(ring, &t.z, &dv);
    add(ring, &z, &product(ring, &t.u, e, dims))
}

/// What the client keeps between the phases: its triples, its masked operands and its output
/// mask `R` (its share of the output).
pub struct ClientState {
    triples: MatrixTriples,
    masked: Vec<u64>,
    r: Vec<u64>,
    dims: Dims,
}

/// What the server keeps between the phases: its triples and the client's masked operands.
pub struct ServerState {
    triples: MatrixTriples,
    from_client: Vec<u64>,
    dims: Dims,
}

impl std::fmt::Debug for ClientState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "secret_matmul::ClientState {{ dims: {:?}, <redacted> }}", self.dims)
    }
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "secret_matmul::ServerState {{ dims: {:?}, <redacted> }}", self.dims)
    }
}

impl ClientState {
    /// Client, offline: from its shares `X_c`, `Y_c`, its triples and its output mask `R`; the
    /// first element is the message to send.
    pub fn new(
        ring: Ring,
        x: &[u64],
        y: &[u64],
        triples: MatrixTriples,
        r: Vec<u64>,
        dims: Dims,
    ) -> (Vec<u64>, ClientState) {
        let m = masked(ring, x, y, &triples);
        (m.clone(), ClientState { triples, masked: m, r, dims })
    }

    /// The client's share of the output (its offline mask).
    pub fn output_share(&self) -> &[u64] {
        &self.r
    }

    /// Client, online: from the server's masked operands, the message re-sharing the output.
    pub fn reshare(self, ring: Ring, from_server: &[u64]) -> Vec<u64> {
        let z = share_of_product(ring, &self.triples, &self.masked, from_server, self.dims, true);
        sub(ring, &z, &self.r)
    }
}

impl ServerState {
    /// Server, offline: its triples and the client's masked operands.
    pub fn new(triples: MatrixTriples, from_client: Vec<u64>, dims: Dims) -> ServerState {
        ServerState { triples, from_client, dims }
    }

    /// Server, online: its masked operands (the message) for its shares `X_s`, `Y_s`.
    pub fn masked(&self, ring: Ring, x: &[u64], y: &[u64]) -> Vec<u64> {
        masked(ring, x, y, &self.triples)
    }

    /// Server, online: its share of the output from its own masked operands and the client's
    /// re-sharing message.
    pub fn output(self, ring: Ring, mine: &[u64], reshare: &[u64]) -> Vec<u64> {
        let z = share_of_product(ring, &self.triples, mine, &self.from_client, self.dims, false);
        add(ring, &z, reshare)
    }
}

/// Client driver, offline, for its shares `X`, `Y`.
pub async fn client_offline<R: RngCore + CryptoRng + Send>(
    ch: &mut Channel,
    ot: &mut impl OtReceive,
    ring: Ring,
    x: &[u64],
    y: &[u64],
    dims: Dims,
    rng: &mut R,
) -> Result<ClientState, NetError> {
    let triples = triples_client(ch, ot, ring, dims, rng).await?;
    let r = random_ring(ring, dims.0 * dims.1 * dims.3, rng);
    let (msg, st) = crate::compute(|| ClientState::new(ring, x, y, triples, r, dims));
    ch.send_u64s(label::MATMUL_MASKED, &msg).await?;
    Ok(st)
}

/// Server driver, offline.
pub async fn server_offline<R: RngCore + CryptoRng + Send>(
    ch: &mut Channel,
    ot: &mut impl OtSend,
    ring: Ring,
    dims: Dims,
    rng: &mut R,
) -> Result<ServerState, NetError> {
    let triples = triples_server(ch, ot, ring, dims, rng).await?;
    let (b, m, k, n) = dims;
    let from_client = ch.recv_u64s(label::MATMUL_MASKED, b * (m * k + k * n)).await?;
    Ok(ServerState::new(triples, from_client, dims))
}

/// Client driver, online.
pub async fn client_online(ch: &mut Channel, ring: Ring, st: ClientState) -> Result<(), NetError> {
    let (b, m, k, n) = st.dims;
    let from_server = ch.recv_u64s(label::MATMUL_MASKED, b * (m * k + k * n)).await?;
    let msg = crate::compute(|| st.reshare(ring, &from_server));
    ch.send_u64s(label::MATMUL_RESHARE, &msg).await
}

/// Server driver, online, for its shares `X`, `Y`: returns its share of `X·Y`.
pub async fn server_online(
    ch: &mut Channel,
    ring: Ring,
    x: &[u64],
    y: &[u64],
    st: ServerState,
) -> Result<Vec<u64>, NetError> {
    let (b, m, _, n) = st.dims;
    let mine = st.masked(ring, x, y);
    ch.send_u64s(label::MATMUL_MASKED, &mine).await?;
    let reshare = ch.recv_u64s(label::MATMUL_RESHARE, b * m * n).await?;
    Ok(crate::compute(|| st.output(ring, &mine, &reshare)))
}

/// The matrix product as a plan step ([`veil_ir::schedule::Kind::MatMul`]).
#[derive(Debug, Default)]
pub struct SecretMatMul {
    server: Option<ServerState>,
    client: Option<ClientState>,
}

/// The step's `(batch, m, k, n)`.
fn dims(cx: &Cx<'_>) -> Dims {
    veil_ir::schedule::matmul_dims(cx.g, cx.node)
}

/// A party's shares of the step's two operands.
fn operands(cx: &Cx<'_>, values: &Values) -> (Vec<u64>, Vec<u64>) {
    let [a, b] = cx.node.inputs[..] else { unreachable!("verified: a matrix product has two operands") };
    (values.share(a).to_vec(), values.share(b).to_vec())
}

impl Protocol for SecretMatMul {
    fn server_offline<'a>(
        &'a mut self,
        io: &'a mut ServerIo,
        cx: Cx<'a>,
        mut rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        Box::pin(async move {
            self.server = Some(server_offline(&mut io.ch, &mut io.ot, cx.ring, dims(&cx), &mut rng).await?);
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
            let st = client_offline(&mut io.ch, &mut io.ot, cx.ring, &x, &y, dims(&cx), &mut rng).await?;
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
mod tests;
