//! A LeakyReLU over OT ([`veil_ir::schedule::Kind::LeakyReluOt`]): the simulator's fixed-point
//! LeakyReLU of `z = y >> f`, `z` for `z ≥ 0` else `(a·z mod 2^ℓ) >> 16`, composed exactly for
//! any slope `a` (`veil_ir::schedule::leaky_ot` says why) from three protocols in turn: `z` by a
//! truncation over OT ([`super::trunc_ot`]; none at `f = 0`), `t = (a·z) >> 16` by a second one
//! on the shares scaled locally by the public `a`, and `t + keep(z)·(z − t)` by a shift-0 ReLU
//! over OT used as a select ([`super::relu_ot::Server::select`]: the comparison reads `z`, the
//! products move `z − t`). Each part's convention makes the client's share of its output its
//! offline mask, so the client's shares of `z` (`r₁`), `t` (`r₂`) and the output (`r₂ + r₃`) are
//! fixed offline; the server's follow online. All parts' OTs come in one silent-OT batch per
//! direction, cut in order.

use veil_ir::ValueId;
use veil_ir::eval::LEAKY_ALPHA_BITS;
use veil_ir::ring::Ring;
use veil_ir::schedule::script::label;

use super::relu_ot::drive::{client_ots, client_select_as, server_ots, server_select_as};
use super::trunc_ot::layer::{client_online_as, server_online_as};
use super::{relu_ot, trunc_ot};
use crate::exec::step::{ClientIo, Csprng, Cx, Protocol, ServerIo, StepFuture, Values, take};
use crate::garble::Block;
use crate::ot::RandChoice;
use crate::proto::mul::random_ring;

const OTS: &str = label::LEAKY_OT_OTS;
const STEP: &str = label::LEAKY_OT;

/// The parts' shapes: the fused truncation (none at shift 0), the slope's truncation, the select.
#[derive(Debug, Clone, Copy)]
struct Specs {
    first: Option<trunc_ot::Spec>,
    slope: trunc_ot::Spec,
    select: relu_ot::Spec,
}

impl Specs {
    fn new(ring: Ring, shift: u8) -> Specs {
        Specs {
            first: (shift > 0).then(|| trunc_ot::Spec::new(ring, u32::from(shift))),
            slope: trunc_ot::Spec::new(ring, u32::from(LEAKY_ALPHA_BITS)),
            select: relu_ot::Spec::new(ring, 0),
        }
    }

    /// Server-sent OTs per element, all parts.
    fn rots(&self) -> usize {
        self.first.map_or(0, |s| s.rots()) + self.slope.rots() + self.select.rots()
    }

    /// Client-sent OTs per element, all parts.
    fn rots_reversed(&self) -> usize {
        self.first.map_or(0, |s| s.rots_reversed()) + self.slope.rots_reversed() + self.select.rots_reversed()
    }
}

/// One party's material for the three parts. Secret.
struct Parts<T, S> {
    first: Option<T>,
    slope: T,
    select: S,
}

type ServerParts = Parts<trunc_ot::ServerOffline, relu_ot::ServerOffline>;
type ClientParts = Parts<trunc_ot::ClientOffline, relu_ot::ClientOffline>;

/// The server's material for `n` elements, hashed down from one batch per direction (the pads
/// it sent, its halves of those the client sent), cut in order.
fn split_server(specs: Specs, n: usize, pads: &[[Block; 2]], rev: &RandChoice) -> ServerParts {
    let (mut at, mut rat) = (0, 0);
    let mut cut = |k: usize, r: usize| {
        let part = (&pads[at..at + n * k], &rev.choices[rat..rat + n * r], &rev.pads[rat..rat + n * r]);
        (at, rat) = (at + n * k, rat + n * r);
        part
    };
    let mut trunc = |s: trunc_ot::Spec| {
        let (p, c, q) = cut(s.rots(), s.rots_reversed());
        trunc_ot::ServerOffline::new(s, p, c, q)
    };
    let first = specs.first.map(&mut trunc);
    let slope = trunc(specs.slope);
    let (p, c, q) = cut(specs.select.rots(), specs.select.rots_reversed());
    Parts { first, slope, select: relu_ot::ServerOffline::new(specs.select, p, c, q) }
}

/// The client's material from its halves of the server-sent batch and the pads of the batch it
/// sent, with each part's output masks `[r₁, r₂, r₃]` (`r₁` unused at shift 0).
fn split_client(specs: Specs, ots: &RandChoice, rev: &[[Block; 2]], r: [Vec<u64>; 3]) -> ClientParts {
    let [r1, r2, r3] = r;
    let n = r2.len();
    let (mut at, mut rat) = (0, 0);
    let mut cut = |k: usize, q: usize| {
        let part = (&ots.choices[at..at + n * k], &ots.pads[at..at + n * k], &rev[rat..rat + n * q]);
        (at, rat) = (at + n * k, rat + n * q);
        part
    };
    let first = specs.first.map(|s| {
        let (c, p, q) = cut(s.rots(), s.rots_reversed());
        trunc_ot::ClientOffline::new(s, c, p, q, r1)
    });
    let (c, p, q) = cut(specs.slope.rots(), specs.slope.rots_reversed());
    let slope = trunc_ot::ClientOffline::new(specs.slope, c, p, q, r2);
    let (c, p, q) = cut(specs.select.rots(), specs.select.rots_reversed());
    Parts { first, slope, select: relu_ot::ClientOffline::new(specs.select, c, p, q, r3) }
}

/// `a·v` for each share (the public slope scales both parties' shares).
fn scale(ring: Ring, a: u64, v: &[u64]) -> Vec<u64> {
    v.iter().map(|&x| ring.reduce(x.wrapping_mul(a))).collect()
}

/// `u − v` share by share.
fn minus(ring: Ring, u: &[u64], v: &[u64]) -> Vec<u64> {
    u.iter().zip(v).map(|(&a, &b)| ring.reduce(a.wrapping_sub(b))).collect()
}

/// `u + v` share by share.
fn plus(ring: Ring, u: &[u64], v: &[u64]) -> Vec<u64> {
    u.iter().zip(v).map(|(&a, &b)| ring.reduce(a.wrapping_add(b))).collect()
}

/// The step's state between the phases.
pub struct LeakyOtLayer {
    input: ValueId,
    shift: u8,
    alpha: u64,
    server: Option<ServerParts>,
    client: Option<ClientParts>,
}

impl std::fmt::Debug for LeakyOtLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LeakyOtLayer {{ shift: {}, alpha: {}, <redacted> }}", self.shift, self.alpha)
    }
}

impl LeakyOtLayer {
    /// LeakyReLU of `input >> shift` with the slope `alpha` (in the ring at 16 fractional bits).
    pub fn new(input: ValueId, shift: u8, alpha: u64) -> LeakyOtLayer {
        LeakyOtLayer { input, shift, alpha, server: None, client: None }
    }
}

impl Protocol for LeakyOtLayer {
    fn server_offline<'a>(&'a mut self, io: &'a mut ServerIo, cx: Cx<'a>, _rng: &'a mut dyn Csprng) -> StepFuture<'a> {
        Box::pin(async move {
            let (specs, n) = (Specs::new(cx.ring, self.shift), cx.len(self.input));
            let (pads, reversed) = server_ots(OTS, &mut io.ot, n * specs.rots(), n * specs.rots_reversed()).await?;
            // Hashed down at once; the pads go at the end of this block.
            self.server = Some(split_server(specs, n, &pads, &reversed));
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
            let (specs, ring) = (Specs::new(cx.ring, self.shift), cx.ring);
            let Parts { first, slope, select } = take(&mut self.server);
            let ys = values.share(self.input).to_vec();
            let z = match (specs.first, first) {
                (Some(s), Some(off)) => server_online_as(STEP, &mut io.ch, s, off, ys, rng).await?,
                _ => ys,
            };
            let t = server_online_as(STEP, &mut io.ch, specs.slope, slope, scale(ring, self.alpha, &z), rng).await?;
            let d = minus(ring, &z, &t);
            let kept = server_select_as(STEP, &mut io.ch, specs.select, select, (z, d), rng).await?;
            values.set_share(cx.node.output, plus(ring, &t, &kept));
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
            let (specs, n) = (Specs::new(cx.ring, self.shift), cx.len(self.input));
            let r1 = if specs.first.is_some() { random_ring(cx.ring, n, rng) } else { vec![0; n] };
            let r = [r1, random_ring(cx.ring, n, rng), random_ring(cx.ring, n, rng)];
            let (ots, reversed) = client_ots(OTS, &mut io.ot, n * specs.rots(), n * specs.rots_reversed()).await?;
            values.set_share(cx.node.output, plus(cx.ring, &r[1], &r[2]));
            self.client = Some(split_client(specs, &ots, &reversed, r));
            Ok(())
        })
    }

    fn client_online<'a>(&'a mut self, io: &'a mut ClientIo, cx: Cx<'a>, values: &'a mut Values) -> StepFuture<'a> {
        Box::pin(async move {
            let (specs, ring) = (Specs::new(cx.ring, self.shift), cx.ring);
            let Parts { first, slope, select } = take(&mut self.client);
            let yc = values.share(self.input).to_vec();
            let z = match (specs.first, first) {
                (Some(s), Some(off)) => {
                    let z = off.r.clone();
                    client_online_as(STEP, &mut io.ch, s, off, yc).await?;
                    z
                }
                _ => yc,
            };
            let t = slope.r.clone();
            client_online_as(STEP, &mut io.ch, specs.slope, slope, scale(ring, self.alpha, &z)).await?;
            let d = minus(ring, &z, &t);
            client_select_as(STEP, &mut io.ch, specs.select, select, (z, d)).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
