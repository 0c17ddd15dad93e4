//! Circa's stochastic ReLU: `y·b` where `b` is the sign test of `y = c + s` on the shares reduced
//! mod 2^m (the test ring, `m ≤ ℓ`) with their low `k` bits dropped
//! (`veil_ir::ring::circa_nonnegative`, exactly what the simulator computes), so the circuit
//! covers `m − k` bits instead of ℓ.
//!
//! The client's share `c` is known offline. With `σ` a random server bit:
//! - the garbled sign test outputs `β = b ⊕ σ`; the server hands the client the decoding bits
//!   offline, so the client decodes `β` (uniformly random to it);
//! - `P = y·σ`: the server holds `s·σ` itself, and `c·σ` is an offline product (OT, client `c`
//!   times server bit `σ`);
//! - `y·b = y·(β ⊕ σ) = P + β·Q` with `Q = y − 2P`; the client holds `β` and its share of `Q`; the
//!   product `β·Q_s` with the server's share uses a random OT whose choice `β₀` the client drew
//!   offline, derandomised online (`e = β ⊕ β₀` up, two masked messages down);
//! - the client re-shares its result to its offline mask `r` (so the next linear layer's HE,
//!   done offline, still applies).
//!
//! Online per element: server → client `16·(m − k + 1)` bytes of labels (`t_s` and `σ`) plus two
//! ring elements; client → server one bit plus one ring element; four flights.

use std::sync::Arc;

use crate::exec::ExecError;
use crate::store::{Slot, Store};

use crate::exec::step::{ClientIo, Csprng, Cx, Protocol, ServerIo, StepFuture, Values, take};
use crate::proto::mul::random_ring;
use rand::{CryptoRng, Rng, RngCore};
use veil_ir::CircaVariant;
use veil_ir::Garbling;
use veil_ir::ValueId;
use veil_ir::circuit::{Circuit, sign_test};
use veil_ir::ring::Ring;
use veil_ir::schedule::script::label;

use super::gc::{self, EvaluatorState, GarblerState, GcSpec};
use super::mul;
use crate::net::{Channel, NetError};
use crate::ot::{OtReceive, OtSend};
use crate::wire::{pack_bits, unpack_bits};

/// Inputs of the sign test: `t_c` (client), `t_s` and `σ` (server).
pub use veil_ir::schedule::CIRCA_SERVER_GROUPS as SERVER_GROUPS;

/// How a layer's sign test reads the shares: in the test ring Z_2^m, low `drop_bits` dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignTest {
    /// The test ring Z_2^m (`m ≤ ℓ`); each party reduces its share into it.
    pub ring: Ring,
    /// Low bits `k < m − 1` dropped from each share.
    pub drop_bits: u8,
    /// Which way the test may err.
    pub variant: CircaVariant,
}

impl SignTest {
    /// The sign-test circuit (as [`veil_ir::schedule`] builds it).
    pub fn circuit(self) -> Circuit {
        sign_test(u32::from(self.ring.bits - self.drop_bits))
    }

    /// The client's circuit input from its share `c`.
    pub fn client_input(self, c: u64) -> u64 {
        let offset = match self.variant {
            CircaVariant::PosZero => 0,
            CircaVariant::NegPass => 1 << self.drop_bits,
        };
        self.ring.reduce(c.wrapping_add(offset)) >> self.drop_bits
    }

    /// The server's circuit input from its share `s`.
    pub fn server_input(self, s: u64) -> u64 {
        self.ring.reduce(s) >> self.drop_bits
    }
}

/// What the client keeps between the phases.
pub struct ClientState {
    gc: EvaluatorState,
    p: Vec<u64>,
    choice: Vec<bool>,
    pads: Vec<u64>,
    r: Vec<u64>,
}

/// What the server keeps between the phases.
pub struct ServerState {
    gc: GarblerState,
    sigma: Vec<bool>,
    p: Vec<u64>,
    pads: Vec<[u64; 2]>,
}

impl std::fmt::Debug for ClientState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("circa::ClientState(<redacted>)")
    }
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("circa::ServerState(<redacted>)")
    }
}

/// Client, offline, for its shares `c`; `r` is its share of the output. The sign test's tables
/// and labels go to `store` when given (the rest, about 25 bytes per element, stays in memory).
#[allow(clippy::too_many_arguments)]
pub async fn client_offline<R: RngCore + CryptoRng + Send>(
    ch: &mut Channel,
    ot: &mut impl OtReceive,
    ring: Ring,
    (circuit, garbling): (&Circuit, Garbling),
    test: SignTest,
    c: &[u64],
    r: Vec<u64>,
    rng: &mut R,
    store: Option<(&Arc<Store>, Slot)>,
) -> Result<ClientState, ExecError> {
    let spec = GcSpec { circuit, server_groups: &SERVER_GROUPS, garbling };
    let t: Vec<Vec<u64>> = c.iter().map(|&v| vec![test.client_input(v)]).collect();
    let mut gc = gc::evaluate_offline_to(ch, ot, spec, &t, store).await?;
    gc::recv_decoding(ch, &mut gc, 1).await?;
    let p = mul::product_client(ch, ot, ring, c).await?;
    let choice: Vec<bool> = (0..c.len()).map(|_| rng.random()).collect();
    let pads = ot.random(label::CIRCA_OT, &choice).await?;
    Ok(ClientState { gc, p, choice, pads: pads.iter().map(|b| ring.reduce(b.0 as u64)).collect(), r })
}

/// Server, offline, for `n` elements; AND-gate tweaks from `gate_offset`.
pub async fn server_offline<R: RngCore + CryptoRng + Send>(
    ch: &mut Channel,
    ot: &mut impl OtSend,
    ring: Ring,
    (circuit, garbling): (&Circuit, Garbling),
    n: usize,
    gate_offset: u64,
    rng: &mut R,
) -> Result<ServerState, NetError> {
    let spec = GcSpec { circuit, server_groups: &SERVER_GROUPS, garbling };
    let gc = gc::garble_offline(ch, ot, spec, n, gate_offset, rng).await?;
    gc::send_decoding(ch, &gc).await?;
    let sigma: Vec<bool> = (0..n).map(|_| rng.random()).collect();
    let as_ring: Vec<u64> = sigma.iter().map(|&b| u64::from(b)).collect();
    let p = mul::product_server(ch, ot, ring, &as_ring).await?;
    let pads = ot.random(label::CIRCA_OT, n).await?;
    let pads = pads.iter().map(|[a, b]| [ring.reduce(a.0 as u64), ring.reduce(b.0 as u64)]).collect();
    Ok(ServerState { gc, sigma, p, pads })
}

impl ClientState {
    /// Client, online: the derandomised choices `e = β ⊕ β₀` to send, from the decoded sign
    /// bits `beta`.
    pub fn choices(&self, beta: &[bool]) -> Vec<bool> {
        beta.iter().zip(&self.choice).map(|(a, b)| a ^ b).collect()
    }

    /// Client, online: its re-sharing message `P_c + β·Q_c + (β·Q_s + μ)_c − r` from its share
    /// `c`, the sign bits `beta` and the server's two masked messages per element `w`.
    pub fn reshare(&self, ring: Ring, c: &[u64], beta: &[bool], w: &[u64]) -> Vec<u64> {
        (0..c.len())
            .map(|i| {
                let b = u64::from(beta[i]);
                let q_c = c[i].wrapping_sub(self.p[i].wrapping_mul(2));
                let got = w[2 * i + beta[i] as usize].wrapping_sub(self.pads[i]);
                let z = self.p[i].wrapping_add(b.wrapping_mul(q_c)).wrapping_add(got);
                ring.reduce(z.wrapping_sub(self.r[i]))
            })
            .collect()
    }
}

impl ServerState {
    /// Server, online: its circuit inputs per element, `t_s` (its share `s` in the test ring
    /// without the low `k` bits) and `σ`.
    pub fn circuit_inputs(&self, test: SignTest, s: &[u64]) -> Vec<Vec<u64>> {
        s.iter().zip(&self.sigma).map(|(&v, &sg)| vec![test.server_input(v), u64::from(sg)]).collect()
    }

    /// Server, online: from the client's choices `e`, the two masked messages per element to
    /// send (the OT pads re-ordered by `e`, one carrying `Q_s`, both masked by a fresh `μ`) and
    /// its own part of the output, `P_s + μ`.
    pub fn masked_products(&self, ring: Ring, s: &[u64], e: &[bool], rng: &mut impl RngCore) -> (Vec<u64>, Vec<u64>) {
        let mut w = Vec::with_capacity(2 * s.len());
        let mut mine = Vec::with_capacity(s.len());
        for i in 0..s.len() {
            let p_s = self.p[i].wrapping_add(s[i].wrapping_mul(u64::from(self.sigma[i])));
            let q_s = s[i].wrapping_sub(p_s.wrapping_mul(2));
            let mu = ring.reduce(rng.next_u64());
            for j in 0..2usize {
                let pad = self.pads[i][j ^ e[i] as usize];
                w.push(ring.reduce(pad.wrapping_add((j as u64).wrapping_mul(q_s)).wrapping_sub(mu)));
            }
            mine.push(p_s.wrapping_add(mu));
        }
        (w, mine)
    }
}

/// Server, online: its share of `y·b`, its own part plus the client's re-sharing message.
pub fn server_output(ring: Ring, mine: &[u64], from_client: &[u64]) -> Vec<u64> {
    mine.iter().zip(from_client).map(|(&a, &b)| ring.reduce(a.wrapping_add(b))).collect()
}

/// Client driver, online.
pub async fn client_online(
    ch: &mut Channel,
    ring: Ring,
    (circuit, garbling): (&Circuit, Garbling),
    st: ClientState,
    c: &[u64],
    gate_offset: u64,
) -> Result<(), ExecError> {
    let spec = GcSpec { circuit, server_groups: &SERVER_GROUPS, garbling };
    let beta = gc::evaluate_decode(ch, spec, &st.gc, gate_offset).await?;
    ch.send(label::CIRCA_CHOICES, &pack_bits(&st.choices(&beta))).await?;
    let w = ch.recv_u64s(label::CIRCA_PRODUCTS, 2 * c.len()).await?;
    Ok(ch.send_u64s(label::CIRCA_RESHARE, &st.reshare(ring, c, &beta, &w)).await?)
}

/// Server driver, online: returns its share of `y·b`.
pub async fn server_online<R: RngCore + CryptoRng + Send>(
    ch: &mut Channel,
    ring: Ring,
    (test, circuit, garbling): (SignTest, &Circuit, Garbling),
    st: ServerState,
    s: &[u64],
    rng: &mut R,
) -> Result<Vec<u64>, NetError> {
    let spec = GcSpec { circuit, server_groups: &SERVER_GROUPS, garbling };
    gc::send_labels(ch, spec, &st.gc, &st.circuit_inputs(test, s)).await?;
    let packed = ch.recv_exact(label::CIRCA_CHOICES, s.len().div_ceil(8)).await?;
    let (w, mine) = st.masked_products(ring, s, &unpack_bits(&packed, s.len()), rng);
    ch.send_u64s(label::CIRCA_PRODUCTS, &w).await?;
    let from_client = ch.recv_u64s(label::CIRCA_RESHARE, s.len()).await?;
    Ok(server_output(ring, &mine, &from_client))
}

/// Circa as a plan step ([`veil_ir::schedule::Kind::Circa`]).
pub struct CircaLayer {
    input: ValueId,
    test: SignTest,
    circuit: Circuit,
    server: Option<ServerState>,
    client: Option<ClientState>,
}

impl std::fmt::Debug for CircaLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CircaLayer {{ {:?}, states: <redacted> }}", self.test)
    }
}

impl CircaLayer {
    /// The layer on `input` with its sign-test `circuit` (as the schedule built it from `test`).
    pub fn new(input: ValueId, test: SignTest, circuit: Circuit) -> CircaLayer {
        CircaLayer { input, test, circuit, server: None, client: None }
    }
}

impl Protocol for CircaLayer {
    fn server_offline<'a>(
        &'a mut self,
        io: &'a mut ServerIo,
        cx: Cx<'a>,
        mut rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        Box::pin(async move {
            let n = cx.len(self.input);
            let f = server_offline(
                &mut io.ch,
                &mut io.ot,
                cx.ring,
                (&self.circuit, cx.g.garbling),
                n,
                cx.gate_offset,
                &mut rng,
            );
            self.server = Some(f.await?);
            Ok(())
        })
    }

    fn server_online<'a>(
        &'a mut self,
        io: &'a mut ServerIo,
        cx: Cx<'a>,
        values: &'a mut Values,
        mut rng: &'a mut dyn Csprng,
    ) -> StepFuture<'a> {
        Box::pin(async move {
            let st = take(&mut self.server);
            let s = values.share(self.input);
            let out =
                server_online(&mut io.ch, cx.ring, (self.test, &self.circuit, cx.g.garbling), st, s, &mut rng).await?;
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
            let c = values.share(self.input);
            let r = random_ring(cx.ring, c.len(), rng);
            let store = io.store.as_ref().map(|s| (s, Slot { step: cx.index, part: 0 }));
            let f = client_offline(
                &mut io.ch,
                &mut io.ot,
                cx.ring,
                (&self.circuit, cx.g.garbling),
                self.test,
                c,
                r.clone(),
                &mut rng,
                store,
            );
            self.client = Some(f.await?);
            values.set_share(cx.node.output, r);
            Ok(())
        })
    }

    fn client_online<'a>(&'a mut self, io: &'a mut ClientIo, cx: Cx<'a>, values: &'a mut Values) -> StepFuture<'a> {
        Box::pin(async move {
            let st = take(&mut self.client);
            client_online(
                &mut io.ch,
                cx.ring,
                (&self.circuit, cx.g.garbling),
                st,
                values.share(self.input),
                cx.gate_offset,
            )
            .await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::memory;
    use crate::ot::ideal;
    use rand::SeedableRng;
    use std::time::Duration;
    use veil_ir::ring::circa_nonnegative;

    /// Both parties in memory with the ideal OT; the online phase's traffic is exactly the
    /// module doc's (the offline phase's includes the GC tables and product messages).
    #[tokio::test]
    async fn stochastic_relu_equals_the_share_level_reference() {
        let (mut cc, mut sc) = memory::pair(Duration::from_secs(20));
        let (mut ot_s, mut ot_r) = ideal::pair(5);
        let ring = Ring::new(61);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let n = 3000;
        let top = 1u64 << 60;
        // Values near zero (where faults happen), extremes, and random ones.
        let y: Vec<u64> = (0..n)
            .map(|i| match i % 4 {
                0 => ring.from_signed(rng.random_range(-(1i64 << 20)..(1i64 << 20))),
                1 => [0, 1, ring.mask(), top, top - 1][i % 5],
                _ => ring.reduce(rng.next_u64()),
            })
            .collect();
        let mut offset = 0;
        for (k, variant) in [(19u8, CircaVariant::PosZero), (11, CircaVariant::NegPass)] {
            let cs: Vec<u64> = (0..n).map(|_| ring.reduce(rng.next_u64())).collect();
            let ss: Vec<u64> = y.iter().zip(&cs).map(|(&v, &m)| ring.reduce(v.wrapping_sub(m))).collect();
            let r: Vec<u64> = (0..n).map(|_| ring.reduce(rng.next_u64())).collect();
            let test = SignTest { ring, drop_bits: k, variant };
            let circ = test.circuit();
            let mut crng = rand_chacha::ChaCha20Rng::seed_from_u64(k as u64);
            let mut srng = rand_chacha::ChaCha20Rng::seed_from_u64(100 + k as u64);
            let (st_c, st_s) = tokio::join!(
                client_offline(
                    &mut cc,
                    &mut ot_r,
                    ring,
                    (&circ, Garbling::HalfGates),
                    test,
                    &cs,
                    r.clone(),
                    &mut crng,
                    None
                ),
                server_offline(&mut sc, &mut ot_s, ring, (&circ, Garbling::HalfGates), n, offset, &mut srng)
            );
            let before = (cc.meter().snapshot(), sc.meter().snapshot());
            let (done, out) = tokio::join!(
                client_online(&mut cc, ring, (&circ, Garbling::HalfGates), st_c.unwrap(), &cs, offset),
                server_online(&mut sc, ring, (test, &circ, Garbling::HalfGates), st_s.unwrap(), &ss, &mut srng)
            );
            done.unwrap();
            let out = out.unwrap();
            let (c_on, s_on) = (cc.meter().snapshot() - before.0, sc.meter().snapshot() - before.1);
            let labels = 16 * (ring.bits - k + 1) as usize * n; // t_s and σ
            assert_eq!(s_on.bytes_sent, (4 + labels + 4 + 16 * n) as u64, "{s_on:?}");
            assert_eq!(c_on.bytes_sent, (4 + n.div_ceil(8) + 4 + 8 * n) as u64, "{c_on:?}");
            assert_eq!(c_on.bytes_received, s_on.bytes_sent);
            offset += (n * circ.and_count()) as u64;
            let mut faults = 0;
            for i in 0..n {
                let nonneg = circa_nonnegative(ring, cs[i], ss[i], k, variant);
                let want = if nonneg { y[i] } else { 0 };
                assert_eq!(ring.reduce(out[i].wrapping_add(r[i])), want, "element {i}, k={k} {variant:?}");
                faults += usize::from(nonneg != (ring.to_signed(y[i]) >= 0));
            }
            assert!(faults > 0, "the near-zero values exercise the fault path");
        }
    }

    /// The two-party protocol in memory at the worst-case value of a bound: with the test ring
    /// the narrowest meeting a deliberately large budget (2^−3), the wrap-around fault rate is
    /// the model's (`circa_wrap_probability`) within five binomial standard deviations; with
    /// the ring the default budget (2^−20) picks, no faults at all.
    #[tokio::test]
    async fn wrap_faults_match_the_model_in_the_chosen_test_ring() {
        use veil_ir::ring::circa_wrap_probability;
        let (mut cc, mut sc) = memory::pair(Duration::from_secs(20));
        let (mut ot_s, mut ot_r) = ideal::pair(9);
        let (ring, k, variant, bound) = (Ring::new(40), 7u8, CircaVariant::PosZero, 3985u64);
        let n = 4096;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let mut offset = 0;
        for budget in [1.0 / 8.0, 1.0 / (1u64 << 20) as f64] {
            let m = (k + 2..=ring.bits)
                .find(|&m| circa_wrap_probability(Ring::new(m), bound, k, variant) <= budget)
                .unwrap();
            let test = SignTest { ring: Ring::new(m), drop_bits: k, variant };
            let p = circa_wrap_probability(test.ring, bound, k, variant);
            let y = ring.from_signed(-(bound as i64));
            let cs: Vec<u64> = (0..n).map(|_| ring.reduce(rng.next_u64())).collect();
            let ss: Vec<u64> = cs.iter().map(|&c| ring.reduce(y.wrapping_sub(c))).collect();
            let r: Vec<u64> = (0..n).map(|_| ring.reduce(rng.next_u64())).collect();
            let circ = test.circuit();
            let mut crng = rand_chacha::ChaCha20Rng::seed_from_u64(u64::from(m));
            let mut srng = rand_chacha::ChaCha20Rng::seed_from_u64(100 + u64::from(m));
            let (st_c, st_s) = tokio::join!(
                client_offline(
                    &mut cc,
                    &mut ot_r,
                    ring,
                    (&circ, Garbling::HalfGates),
                    test,
                    &cs,
                    r.clone(),
                    &mut crng,
                    None
                ),
                server_offline(&mut sc, &mut ot_s, ring, (&circ, Garbling::HalfGates), n, offset, &mut srng)
            );
            let (done, out) = tokio::join!(
                client_online(&mut cc, ring, (&circ, Garbling::HalfGates), st_c.unwrap(), &cs, offset),
                server_online(&mut sc, ring, (test, &circ, Garbling::HalfGates), st_s.unwrap(), &ss, &mut srng)
            );
            done.unwrap();
            offset += (n * circ.and_count()) as u64;
            // A fault passes the negative value; otherwise the output is 0.
            let faults = out.unwrap().iter().zip(&r).filter(|&(&o, &ri)| ring.reduce(o.wrapping_add(ri)) == y).count();
            let rate = faults as f64 / n as f64;
            let sd = (p * (1.0 - p) / n as f64).sqrt();
            assert!((rate - p).abs() <= 5.0 * sd, "m={m}: wrap fault rate {rate}, model {p}");
            if budget < 0.01 {
                assert_eq!((m, faults), (14, 0), "the default budget leaves no wrap faults");
            } else {
                assert_eq!((m, p), (13, 1.0 / 8.0), "a 2^-3 budget is met exactly at 13 bits");
            }
        }
    }
}
