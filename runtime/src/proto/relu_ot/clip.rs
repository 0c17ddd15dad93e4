//! A Clip to `[lo, hi]` over OT ([`veil_ir::schedule::Kind::ClipOt`]; ReLU6 and kin with
//! `lo = 0`, Hardtanh where the compiler proved it exact): two ReLUs over OT ([`super`]) in turn,
//! `z = lo + ReLU(y − lo·2^f) >> f` with the truncation fused, then `hi − ReLU(hi − z)`, with
//! local adds between, all on the server's shares (`veil_ir::schedule::clip_ot` says when it is
//! exact). Each ReLU's convention makes the client's share of its output its offline mask, so the
//! client's share of `hi − z` (`−r₁`) and of the output (`−r₂`) are fixed offline; the server's
//! follow online. Both ReLUs' OTs come in one silent-OT batch per direction, cut in order.

use veil_ir::ValueId;
use veil_ir::ring::Ring;
use veil_ir::schedule::script::label;

use super::drive::{client_online_as, client_ots, server_online_as, server_ots};
use super::{ClientOffline, ServerOffline, Spec};
use crate::exec::step::{ClientIo, Csprng, Cx, Protocol, ServerIo, StepFuture, Values, take};
use crate::garble::Block;
use crate::ot::RandChoice;
use crate::proto::mul::random_ring;

const OTS: &str = label::CLIP_OT_OTS;
const STEP: &str = label::CLIP_OT;

/// The two ReLUs' shapes: the first with the fused shift, the second at shift 0.
fn specs(ring: Ring, shift: u8) -> [Spec; 2] {
    [Spec::new(ring, u32::from(shift)), Spec::new(ring, 0)]
}

/// `hi − v` for each of the server's shares (the server adds the public constants).
fn hi_minus(ring: Ring, hi: u64, v: &[u64]) -> Vec<u64> {
    v.iter().map(|&x| ring.reduce(hi.wrapping_sub(x))).collect()
}

/// `v + c` for each of the server's shares.
fn add(ring: Ring, c: u64, v: &[u64]) -> Vec<u64> {
    v.iter().map(|&x| ring.reduce(x.wrapping_add(c))).collect()
}

/// `−v` for each of the client's shares.
fn negate(ring: Ring, v: &[u64]) -> Vec<u64> {
    v.iter().map(|&x| ring.reduce(x.wrapping_neg())).collect()
}

/// The server's material for both ReLUs of `n` elements, hashed down from one batch per
/// direction (the pads it sent, its halves of those the client sent), cut in order.
fn split_server(specs: [Spec; 2], n: usize, pads: &[[Block; 2]], reversed: &RandChoice) -> [ServerOffline; 2] {
    let (k, kr) = (n * specs[0].rots(), n * specs[0].rots_reversed());
    [
        ServerOffline::new(specs[0], &pads[..k], &reversed.choices[..kr], &reversed.pads[..kr]),
        ServerOffline::new(specs[1], &pads[k..], &reversed.choices[kr..], &reversed.pads[kr..]),
    ]
}

/// The client's material for both ReLUs, from its halves of the server-sent batch and the pads
/// of the batch it sent, with each ReLU's output masks.
fn split_client(specs: [Spec; 2], ots: &RandChoice, reversed: &[[Block; 2]], r: [Vec<u64>; 2]) -> [ClientOffline; 2] {
    let [r1, r2] = r;
    let (k, kr) = (r1.len() * specs[0].rots(), r1.len() * specs[0].rots_reversed());
    [
        ClientOffline::new(specs[0], &ots.choices[..k], &ots.pads[..k], &reversed[..kr], r1),
        ClientOffline::new(specs[1], &ots.choices[k..], &ots.pads[k..], &reversed[kr..], r2),
    ]
}

/// The step's state between the phases.
pub struct ClipOtLayer {
    input: ValueId,
    shift: u8,
    lo: u64,
    hi: u64,
    server: Option<[ServerOffline; 2]>,
    client: Option<[ClientOffline; 2]>,
}

impl std::fmt::Debug for ClipOtLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClipOtLayer {{ shift: {}, lo: {}, hi: {}, <redacted> }}", self.shift, self.lo, self.hi)
    }
}

impl ClipOtLayer {
    /// `clamp(input >> shift, lo, hi)`, `lo ≤ hi` the public bounds in the ring.
    pub fn new(input: ValueId, shift: u8, lo: u64, hi: u64) -> ClipOtLayer {
        ClipOtLayer { input, shift, lo, hi, server: None, client: None }
    }
}

impl Protocol for ClipOtLayer {
    fn server_offline<'a>(&'a mut self, io: &'a mut ServerIo, cx: Cx<'a>, _rng: &'a mut dyn Csprng) -> StepFuture<'a> {
        Box::pin(async move {
            let (specs, n) = (specs(cx.ring, self.shift), cx.len(self.input));
            let (pads, reversed) = server_ots(
                OTS,
                &mut io.ot,
                n * (specs[0].rots() + specs[1].rots()),
                n * (specs[0].rots_reversed() + specs[1].rots_reversed()),
            )
            .await?;
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
            let [s1, s2] = specs(cx.ring, self.shift);
            let [off1, off2] = take(&mut self.server);
            let ring = cx.ring;
            let ys = add(ring, (self.lo << self.shift).wrapping_neg(), values.share(self.input));
            let z = add(ring, self.lo, &server_online_as(STEP, &mut io.ch, s1, off1, ys, rng).await?);
            let u = hi_minus(ring, self.hi, &z);
            let relu = server_online_as(STEP, &mut io.ch, s2, off2, u, rng).await?;
            values.set_share(cx.node.output, hi_minus(cx.ring, self.hi, &relu));
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
            let (specs, n) = (specs(cx.ring, self.shift), cx.len(self.input));
            let r = [random_ring(cx.ring, n, rng), random_ring(cx.ring, n, rng)];
            let (ots, reversed) = client_ots(
                OTS,
                &mut io.ot,
                n * (specs[0].rots() + specs[1].rots()),
                n * (specs[0].rots_reversed() + specs[1].rots_reversed()),
            )
            .await?;
            values.set_share(cx.node.output, negate(cx.ring, &r[1]));
            self.client = Some(split_client(specs, &ots, &reversed, r));
            Ok(())
        })
    }

    fn client_online<'a>(&'a mut self, io: &'a mut ClientIo, cx: Cx<'a>, values: &'a mut Values) -> StepFuture<'a> {
        Box::pin(async move {
            let [s1, s2] = specs(cx.ring, self.shift);
            let [off1, off2] = take(&mut self.client);
            let u = negate(cx.ring, &off1.r);
            client_online_as(STEP, &mut io.ch, s1, off1, values.share(self.input).to_vec()).await?;
            client_online_as(STEP, &mut io.ch, s2, off2, u).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Client, Server};
    use super::*;
    use crate::proto::bit_triple::deal;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use veil_ir::circuit::clip_trunc_mask;
    use veil_ir::schedule::clip_ot;

    /// One ReLU over OT in memory: the server's output shares.
    fn relu(
        spec: Spec,
        so: ServerOffline,
        co: ClientOffline,
        xs: Vec<u64>,
        xc: Vec<u64>,
        rng: &mut ChaCha8Rng,
    ) -> Vec<u64> {
        let mut server = Server::new(spec, so, xs);
        let (mut client, mut msg) = Client::start(spec, co, xc);
        while let Some(back) = server.reply(&msg, rng) {
            msg = client.reply(&back);
        }
        server.output()
    }

    /// Both parties' layer in memory with a dealer's OTs, cut as the layer cuts its batches:
    /// the server's output shares and the client's (fixed offline).
    fn run(ring: Ring, shift: u8, hi: u64, ys: &[u64], yc: &[u64], rng: &mut ChaCha8Rng) -> (Vec<u64>, Vec<u64>) {
        run_lo(ring, shift, 0, hi, ys, yc, rng)
    }

    /// [`run`] with a lower bound `lo` (the server's shift of its shares, as the layer does).
    fn run_lo(
        ring: Ring,
        shift: u8,
        lo: u64,
        hi: u64,
        ys: &[u64],
        yc: &[u64],
        rng: &mut ChaCha8Rng,
    ) -> (Vec<u64>, Vec<u64>) {
        let (specs, n) = (specs(ring, shift), ys.len());
        let (pads, ots) = deal(rng, n * (specs[0].rots() + specs[1].rots()));
        let (rev_pads, reversed) = deal(rng, n * (specs[0].rots_reversed() + specs[1].rots_reversed()));
        let r = [random_ring(ring, n, rng), random_ring(ring, n, rng)];
        let out_c = negate(ring, &r[1]);
        let [s1, s2] = split_server(specs, n, &pads, &reversed);
        let [c1, c2] = split_client(specs, &ots, &rev_pads, r);
        let u_c = negate(ring, &c1.r);
        let ys = add(ring, (lo << shift).wrapping_neg(), ys);
        let z = add(ring, lo, &relu(specs[0], s1, c1, ys, yc.to_vec(), rng));
        let v = relu(specs[1], s2, c2, hi_minus(ring, hi, &z), u_c, rng);
        (hi_minus(ring, hi, &v), out_c)
    }

    /// Every value of an 8-bit ring under every shift and several bounds (0, 1, within the
    /// truncated range, the largest), random shares; then random and edge values at ℓ = 41 and
    /// 61: the output equals the garbled `clip_trunc_mask` with lower bound 0, evaluated apart.
    #[test]
    fn the_clip_equals_the_gc_circuit() {
        let mut rng = ChaCha8Rng::seed_from_u64(41);
        let ring = Ring::new(8);
        for shift in 0..8u8 {
            for hi in [0u64, 1, 3, 6, 50, 127] {
                let y: Vec<u64> = (0..256).collect();
                let yc: Vec<u64> = y.iter().map(|_| ring.reduce(rng.random())).collect();
                let ys: Vec<u64> = y.iter().zip(&yc).map(|(&v, &c)| ring.reduce(v.wrapping_sub(c))).collect();
                let (out_s, out_c) = run(ring, shift, hi, &ys, &yc, &mut rng);
                let circuit = clip_trunc_mask(8, u32::from(shift), Some(0), Some(hi as i64));
                for i in 0..256 {
                    let want = circuit.eval_u64(&[ys[i], yc[i], 0]);
                    assert_eq!(ring.reduce(out_s[i].wrapping_add(out_c[i])), want, "shift {shift}, hi {hi}, y {i}");
                }
            }
        }
        for (bits, shift, hi) in [(41u8, 13u8, 6u64 << 13), (61, 12, 6 << 12), (61, 0, 1 << 40), (41, 0, 0)] {
            let ring = Ring::new(bits);
            let top = (1u64 << (bits - 1)) - 1;
            let y: Vec<u64> = (0..400u64)
                .map(|i| match i {
                    0 => 0,
                    1 => top,
                    2 => top + 1,
                    3 => ring.reduce(u64::MAX),
                    4 => hi << shift,
                    5 => (hi << shift).saturating_sub(1),
                    _ if i % 2 == 0 => {
                        ring.from_signed(rng.random_range(-(8 * hi as i64 + 9) << shift..(8 * hi as i64 + 9) << shift))
                    }
                    _ => ring.reduce(rng.random()),
                })
                .map(|v| ring.reduce(v))
                .collect();
            let yc: Vec<u64> = y.iter().map(|_| ring.reduce(rng.random())).collect();
            let ys: Vec<u64> = y.iter().zip(&yc).map(|(&v, &c)| ring.reduce(v.wrapping_sub(c))).collect();
            let (out_s, out_c) = run(ring, shift, hi, &ys, &yc, &mut rng);
            let circuit = clip_trunc_mask(u32::from(bits), u32::from(shift), Some(0), Some(hi as i64));
            for i in 0..y.len() {
                let want = circuit.eval_u64(&[ys[i], yc[i], 0]);
                assert_eq!(ring.reduce(out_s[i].wrapping_add(out_c[i])), want, "ℓ = {bits}, shift {shift}, y {}", y[i]);
            }
        }
    }

    /// A lower bound `lo ≠ 0` (Hardtanh's `[−1, 1]` and others), on every value of an 8-bit ring
    /// under several shifts: the clip equals the garbled `clip_trunc_mask` on every value for
    /// which `y − lo·2^f` and `hi − max(y >> f, lo)` stay in the signed range (what the
    /// compiler's range analysis proves before it lists such a Clip), and differs on some of the
    /// others: without the proof it is not exact, so the compiler must not list it.
    #[test]
    fn a_nonzero_lower_bound_is_exact_where_nothing_wraps_and_only_there() {
        let mut rng = ChaCha8Rng::seed_from_u64(44);
        let ring = Ring::new(8);
        let signed = |v: i64| (-128..128).contains(&v);
        let mut wrong_outside = 0;
        for shift in [0u8, 1, 3] {
            for (lo, hi) in [(-1i64, 1i64), (-3, 2), (2, 5), (-100, 100)] {
                let y: Vec<u64> = (0..256).collect();
                let yc: Vec<u64> = y.iter().map(|_| ring.reduce(rng.random())).collect();
                let ys: Vec<u64> = y.iter().zip(&yc).map(|(&v, &c)| ring.reduce(v.wrapping_sub(c))).collect();
                let (lo_r, hi_r) = (ring.from_signed(lo), ring.from_signed(hi));
                let (out_s, out_c) = run_lo(ring, shift, lo_r, hi_r, &ys, &yc, &mut rng);
                let circuit = clip_trunc_mask(8, u32::from(shift), Some(lo), Some(hi));
                for i in 0..256 {
                    let want = circuit.eval_u64(&[ys[i], yc[i], 0]);
                    let got = ring.reduce(out_s[i].wrapping_add(out_c[i]));
                    let v = ring.to_signed(y[i]);
                    let fits = signed(v - (lo << shift)) && signed(hi - (v >> shift).max(lo));
                    if fits {
                        assert_eq!(got, want, "shift {shift}, [{lo}, {hi}], y {v}");
                    } else {
                        wrong_outside += usize::from(got != want);
                    }
                }
            }
        }
        assert!(wrong_outside > 0, "some values that wrap come out wrong");
    }

    /// The client's state between the phases (both ReLUs' hashed-down OTs and masks) is what
    /// the plan counts for it besides its output shares (`schedule::clip_ot::client_bytes`).
    #[test]
    fn the_clients_state_is_the_plans_storage() {
        let mut rng = ChaCha8Rng::seed_from_u64(43);
        for (bits, shift) in [(8u8, 3u8), (41, 13), (61, 0)] {
            let (ring, n) = (Ring::new(bits), 37);
            let specs = specs(ring, shift);
            let (_, ots) = deal(&mut rng, n * (specs[0].rots() + specs[1].rots()));
            let (rev_pads, _) = deal(&mut rng, n * (specs[0].rots_reversed() + specs[1].rots_reversed()));
            let r = [random_ring(ring, n, &mut rng), random_ring(ring, n, &mut rng)];
            let state = split_client(specs, &ots, &rev_pads, r);
            // The second ReLU's masks are the output shares (negated): counted as those.
            let bytes = state[0].ot_bytes() + 8 * n + state[1].ot_bytes();
            let want = clip_ot::client_bytes(u32::from(bits), u32::from(shift), n as u64);
            assert_eq!(bytes as u64, want, "ℓ = {bits}, shift {shift}");
        }
    }
}
