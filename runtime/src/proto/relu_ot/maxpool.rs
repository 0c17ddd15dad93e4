//! MaxPool over OT ([`veil_ir::schedule::Kind::MaxPoolOt`]): a max tree over each window, level
//! by level, each level one batch of shift-0 ReLUs over OT ([`super`]) on differences,
//! `max(a, b) = b + ReLU(a − b)` with local adds. The pairing is public
//! ([`veil_ir::schedule::relu_ot::max_levels`]): candidates `(c₀, c₁), (c₂, c₃), …` of every window,
//! an odd last one waiting for the next level, so border windows of any size take part.
//!
//! Exact (equal to the garbled `max_trunc_mask` at shift 0 and to the simulator's signed max)
//! when no difference wraps, i.e. for non-negative operands, which the schedule requires
//! ([`veil_ir::schedule::nonnegative`]: a ReLU's output). The ReLU's convention makes the
//! client's share of each pair's result `b_c + r` with `r` its offline mask, so the client's
//! share of every tree value, and of the output, is fixed offline; the server's follow online.
//! All levels' OTs come in one silent-OT batch per direction, cut per level in order.

use veil_ir::ValueId;
use veil_ir::ring::Ring;
use veil_ir::schedule::script::label;

use super::drive::{client_online_as, client_ots_as, server_online_as, server_ots_as};
use super::{ClientOffline, ServerOffline, Spec};
use crate::exec::step::{ClientIo, Csprng, Cx, Protocol, ServerIo, StepFuture, Values, take};
use crate::garble::Block;
use crate::ot::RandChoice;
use crate::proto::mul::random_ring;

/// One party's candidates per window, reduced a level at a time. Secret.
pub struct MaxTree {
    ring: Ring,
    cands: Vec<Vec<u64>>,
}

impl std::fmt::Debug for MaxTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MaxTree {{ windows: {}, <redacted> }}", self.cands.len())
    }
}

impl MaxTree {
    /// This party's shares `x` gathered into `windows` (flat indices into `x`).
    pub fn new(ring: Ring, windows: &[Vec<usize>], x: &[u64]) -> MaxTree {
        MaxTree { ring, cands: windows.iter().map(|w| w.iter().map(|&i| x[i]).collect()).collect() }
    }

    /// Whether every window is down to its maximum.
    pub fn done(&self) -> bool {
        self.cands.iter().all(|c| c.len() <= 1)
    }

    /// This party's shares of the current level's differences `a − b`, pairs in order.
    pub fn differences(&self) -> Vec<u64> {
        let r = self.ring;
        self.cands.iter().flat_map(|c| c.chunks_exact(2).map(move |p| r.reduce(p[0].wrapping_sub(p[1])))).collect()
    }

    /// The next level from this party's shares of `ReLU(a − b)` (one per pair, in order):
    /// each pair becomes `b + ReLU(a − b)`.
    pub fn advance(&mut self, relu: &[u64]) {
        let mut it = relu.iter();
        for c in &mut self.cands {
            let next: Vec<u64> = c
                .chunks(2)
                .map(|p| match p {
                    [_, b] => self.ring.reduce(b.wrapping_add(*it.next().expect("one ReLU per pair"))),
                    [a] => *a,
                    _ => unreachable!("chunks of two"),
                })
                .collect();
            *c = next;
        }
        assert!(it.next().is_none(), "more ReLUs than pairs");
    }

    /// This party's share of each window's maximum, once [`MaxTree::done`].
    pub fn output(self) -> Vec<u64> {
        assert!(self.done(), "the max tree is not done");
        self.cands.into_iter().map(|c| c[0]).collect()
    }
}

/// The server's material per level of `levels` ReLUs each, hashed down from one batch's raw
/// OTs ([`super::drive`]: the pads it sent, its halves of those the client sent), cut in order.
pub fn split_server(spec: Spec, pads: &[[Block; 2]], reversed: &RandChoice, levels: &[usize]) -> Vec<ServerOffline> {
    let (mut a, mut b) = (0, 0);
    levels
        .iter()
        .map(|&n| {
            let (k, kr) = (n * spec.rots(), n * spec.rots_reversed());
            let off =
                ServerOffline::new(spec, &pads[a..a + k], &reversed.choices[b..b + kr], &reversed.pads[b..b + kr]);
            (a, b) = (a + k, b + kr);
            off
        })
        .collect()
}

/// The client's material per level, hashed down from one batch's raw OTs (its halves of those
/// the server sent, the pads of those it sent), with each level's masks `r`.
pub fn split_client(spec: Spec, ots: &RandChoice, reversed: &[[Block; 2]], r: Vec<Vec<u64>>) -> Vec<ClientOffline> {
    let (mut a, mut b) = (0, 0);
    r.into_iter()
        .map(|r| {
            let (k, kr) = (r.len() * spec.rots(), r.len() * spec.rots_reversed());
            let off = ClientOffline::new(spec, &ots.choices[a..a + k], &ots.pads[a..a + k], &reversed[b..b + kr], r);
            (a, b) = (a + k, b + kr);
            off
        })
        .collect()
}

/// One level of the client's tree: its shares of the differences (the ReLUs' inputs) and the
/// ReLUs' output masks `r`. Secret.
pub type ClientLevel = (Vec<u64>, Vec<u64>);

/// The client's offline run of the tree on its input shares `xc`: per level its ReLU inputs
/// (differences) and masks `r` (drawn from `rng`), and its output shares.
pub fn client_tree(
    ring: Ring,
    windows: &[Vec<usize>],
    xc: &[u64],
    rng: &mut (impl rand::RngCore + ?Sized),
) -> (Vec<ClientLevel>, Vec<u64>) {
    let mut tree = MaxTree::new(ring, windows, xc);
    let mut levels = Vec::new();
    while !tree.done() {
        let d = tree.differences();
        let r = random_ring(ring, d.len(), rng);
        tree.advance(&r);
        levels.push((d, r));
    }
    (levels, tree.output())
}

/// The step's state between the phases.
pub struct MaxPoolOtLayer {
    input: ValueId,
    windows: Vec<Vec<usize>>,
    /// Bits of each difference the comparisons read.
    width: u8,
    server: Option<Vec<ServerOffline>>,
    /// Per level: the client's OT material and its differences.
    client: Option<Vec<(ClientOffline, Vec<u64>)>>,
}

impl std::fmt::Debug for MaxPoolOtLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MaxPoolOtLayer {{ windows: {}, <redacted> }}", self.windows.len())
    }
}

impl MaxPoolOtLayer {
    /// The max of each window of `input` (flat indices per output element), the comparisons
    /// reading `width` bits of each difference (`veil_ir::schedule::maxpool_ot_width`).
    pub fn new(input: ValueId, windows: Vec<Vec<usize>>, width: u8) -> MaxPoolOtLayer {
        MaxPoolOtLayer { input, windows, width, server: None, client: None }
    }

    /// The shift-0 ReLUs' spec: the whole ring's products, comparisons on `width` bits.
    fn spec(&self, ring: Ring) -> Spec {
        if self.width < ring.bits { Spec::reading(ring, 0, u32::from(self.width)) } else { Spec::new(ring, 0) }
    }

    fn levels(&self) -> Vec<usize> {
        veil_ir::schedule::relu_ot::max_levels(&self.windows).into_iter().map(|n| n as usize).collect()
    }
}

const OTS: &str = label::MAXPOOL_OT_OTS;
const STEP: &str = label::MAXPOOL_OT;

impl Protocol for MaxPoolOtLayer {
    fn server_offline<'a>(&'a mut self, io: &'a mut ServerIo, cx: Cx<'a>, _rng: &'a mut dyn Csprng) -> StepFuture<'a> {
        Box::pin(async move {
            let (spec, levels) = (self.spec(cx.ring), self.levels());
            let n: usize = levels.iter().sum();
            let off = if n == 0 {
                Vec::new()
            } else {
                let (pads, reversed) = server_ots_as(OTS, &mut io.ot, spec, n).await?;
                // Hashed down per level; the pads go at the end of this block.
                split_server(spec, &pads, &reversed, &levels)
            };
            self.server = Some(off);
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
            let spec = self.spec(cx.ring);
            let mut tree = MaxTree::new(cx.ring, &self.windows, values.share(self.input));
            for off in take(&mut self.server) {
                let relu = server_online_as(STEP, &mut io.ch, spec, off, tree.differences(), rng).await?;
                tree.advance(&relu);
            }
            values.set_share(cx.node.output, tree.output());
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
            let (spec, levels) = (self.spec(cx.ring), self.levels());
            let (tree, out) = client_tree(cx.ring, &self.windows, values.share(self.input), rng);
            let (d, r): (Vec<Vec<u64>>, Vec<Vec<u64>>) = tree.into_iter().unzip();
            let mut state = Vec::new();
            if !d.is_empty() {
                let (ots, reversed) = client_ots_as(OTS, &mut io.ot, spec, levels.iter().sum()).await?;
                state = split_client(spec, &ots, &reversed, r).into_iter().zip(d).collect();
            }
            self.client = Some(state);
            values.set_share(cx.node.output, out);
            Ok(())
        })
    }

    fn client_online<'a>(&'a mut self, io: &'a mut ClientIo, cx: Cx<'a>, _values: &'a mut Values) -> StepFuture<'a> {
        Box::pin(async move {
            let spec = self.spec(cx.ring);
            for (off, d) in take(&mut self.client) {
                client_online_as(STEP, &mut io.ch, spec, off, d).await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Client, Server};
    use super::*;
    use crate::proto::bit_triple::deal;
    use crate::proto::distinguish::{Z_LEAK, max_bit_z};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use veil_ir::circuit::max_trunc_mask;
    use veil_ir::schedule::relu_ot::{max_levels, maxpool_client_bytes as max_client_bytes};

    /// Both parties' whole tree in memory with a dealer's OTs: the server's output shares, the
    /// client's (fixed before any flight), and every byte the client received.
    fn run(
        ring: Ring,
        windows: &[Vec<usize>],
        xs: &[u64],
        xc: &[u64],
        rng: &mut ChaCha8Rng,
    ) -> (Vec<u64>, Vec<u64>, Vec<u8>) {
        run_reading(ring, ring.bits, windows, xs, xc, rng)
    }

    /// [`run`] with the comparisons reading `width` bits of each difference.
    fn run_reading(
        ring: Ring,
        width: u8,
        windows: &[Vec<usize>],
        xs: &[u64],
        xc: &[u64],
        rng: &mut ChaCha8Rng,
    ) -> (Vec<u64>, Vec<u64>, Vec<u8>) {
        let layer = MaxPoolOtLayer::new(ValueId::from_index(0), windows.to_vec(), width);
        let spec = layer.spec(ring);
        let (levels, out_c) = client_tree(ring, windows, xc, rng);
        let sizes: Vec<usize> = levels.iter().map(|(d, _)| d.len()).collect();
        let want: Vec<usize> = max_levels(windows).into_iter().map(|n| n as usize).collect();
        assert_eq!(sizes, want, "the plan's levels");
        let n: usize = sizes.iter().sum();
        let (pads, ots) = deal(rng, n * spec.rots());
        let (rev_pads, reversed) = deal(rng, n * spec.rots_reversed());
        let r: Vec<Vec<u64>> = levels.iter().map(|(_, r)| r.clone()).collect();
        let s_off = split_server(spec, &pads, &reversed, &sizes);
        let c_off = split_client(spec, &ots, &rev_pads, r);
        let mut tree = MaxTree::new(ring, windows, xs);
        let mut seen = Vec::new();
        for ((so, co), (d, _)) in s_off.into_iter().zip(c_off).zip(levels) {
            let mut server = Server::new(spec, so, tree.differences());
            let (mut client, mut msg) = Client::start(spec, co, d);
            while let Some(back) = server.reply(&msg, rng) {
                seen.extend_from_slice(&back);
                msg = client.reply(&back);
            }
            tree.advance(&server.output());
        }
        (tree.output(), out_c, seen)
    }

    /// Windows of every size 1..=6 (a 2×2 pool's 4 and its border windows' 1 and 2 among them),
    /// values from 0 to the largest non-negative one with ties; the output equals the garbled
    /// `max_trunc_mask` at shift 0 and the plain max, computed separately. Also with the
    /// comparisons reading `w < ℓ` bits of the differences (`schedule::maxpool_ot_width`), for
    /// values below `2^(w − 1)` (a narrowed ReLU's outputs): the same max, fewer OTs.
    #[test]
    fn the_max_tree_equals_the_gc_circuit_on_non_negative_values() {
        let mut rng = ChaCha8Rng::seed_from_u64(31);
        for (bits, width) in [(3u8, 3u8), (6, 6), (16, 16), (61, 61), (16, 5), (61, 9), (61, 30)] {
            let ring = Ring::new(bits);
            let top = (1u64 << (width - 1)) - 1;
            let mut x: Vec<u64> = Vec::new();
            let mut windows = Vec::new();
            for k in 1..=6usize {
                for case in 0..8 {
                    let w: Vec<u64> = (0..k)
                        .map(|i| match case {
                            0 => 0,
                            1 => top,
                            2 => [0, top][i % 2],
                            3 => 5.min(top),
                            _ => rng.random_range(0..=top),
                        })
                        .collect();
                    windows.push((x.len()..x.len() + k).collect::<Vec<_>>());
                    x.extend(w);
                }
            }
            let xc: Vec<u64> = x.iter().map(|_| ring.reduce(rng.random())).collect();
            let xs: Vec<u64> = x.iter().zip(&xc).map(|(&v, &c)| ring.reduce(v.wrapping_sub(c))).collect();
            let (out_s, out_c, _) = run_reading(ring, width, &windows, &xs, &xc, &mut rng);
            if width < bits {
                let (narrow, whole) = (MaxPoolOtLayer::new(ValueId::from_index(0), vec![], width), Spec::new(ring, 0));
                assert!(narrow.spec(ring).rots() < whole.rots(), "ℓ = {bits}, w = {width}");
            }
            for (j, w) in windows.iter().enumerate() {
                let got = ring.reduce(out_s[j].wrapping_add(out_c[j]));
                let plain = w.iter().map(|&i| x[i]).max().expect("nonempty");
                let k = w.len();
                let mut inputs: Vec<u64> = w.iter().map(|&i| xs[i]).collect();
                inputs.extend(w.iter().map(|&i| xc[i]));
                inputs.push(0);
                assert_eq!(max_trunc_mask(k as u32, u32::from(bits), 0).eval_u64(&inputs), plain, "the references");
                assert_eq!(got, plain, "ℓ = {bits}, window {:?}", w.iter().map(|&i| x[i]).collect::<Vec<_>>());
            }
        }
    }

    /// The client's state between the phases, as the layer keeps it (per level its hashed-down
    /// OTs, masks and differences), is exactly what the plan counts for it besides its output
    /// shares (`schedule::relu_ot::maxpool_client_bytes`, in `script::client_storage`), and per
    /// MaxPool output of a 2×2 window far below the pads it replaced (3 ReLUs' 16-byte pads).
    #[test]
    fn the_clients_state_is_the_plans_storage() {
        let mut rng = ChaCha8Rng::seed_from_u64(33);
        // 2×2 windows, border windows of 2 and 1, and a 3×3 one.
        let windows: Vec<Vec<usize>> = [4, 4, 4, 2, 1, 9]
            .iter()
            .scan(0, |at, &k| {
                Some(
                    (*at..{
                        *at += k;
                        *at
                    })
                        .collect(),
                )
            })
            .collect();
        for bits in [8u8, 40, 61] {
            let (ring, spec) = (Ring::new(bits), Spec::new(Ring::new(bits), 0));
            let xc: Vec<u64> = (0..24).map(|_| ring.reduce(rng.random())).collect();
            let (levels, _) = client_tree(ring, &windows, &xc, &mut rng);
            let n: usize = levels.iter().map(|(d, _)| d.len()).sum();
            let (_, ots) = deal(&mut rng, n * spec.rots());
            let (rev_pads, _) = deal(&mut rng, n * spec.rots_reversed());
            let (d, r): (Vec<Vec<u64>>, Vec<Vec<u64>>) = levels.into_iter().unzip();
            let state: Vec<(ClientOffline, Vec<u64>)> =
                split_client(spec, &ots, &rev_pads, r).into_iter().zip(d).collect();
            let bytes: usize = state.iter().map(|(off, d)| off.ot_bytes() + 8 * off.r.len() + 8 * d.len()).sum();
            assert_eq!(bytes as u64, max_client_bytes(u32::from(bits), u32::from(bits), &windows), "ℓ = {bits}");
            let four = max_client_bytes(u32::from(bits), u32::from(bits), &windows[..1]);
            // Before: per ReLU its mask, difference and the 16-byte pads of its OTs (both directions).
            let pads = 3 * (16 + 16 * (spec.rots() + spec.rots_reversed()) as u64);
            assert!(four * 5 < pads, "ℓ = {bits}: {four} B for a 2×2 window, {pads} B with the pads");
        }
    }

    /// The client's view of the tree (every byte the server sent, all levels) over many runs
    /// with the window's maximum first against last (the others equal), its own shares fixed:
    /// the distinguisher sees nothing; with the server's shares themselves (the control) it fires.
    #[test]
    fn the_client_cannot_tell_which_element_of_a_window_is_the_max() {
        let ring = Ring::new(16);
        let mut rng = ChaCha8Rng::seed_from_u64(32);
        let windows: Vec<Vec<usize>> = (0..6).map(|j| (4 * j..4 * j + 4).collect()).collect();
        let own: Vec<u64> = (0..24).map(|_| ring.reduce(rng.random())).collect();
        let worlds = [[900u64, 7, 7, 7], [7, 7, 7, 900]].map(|w| w.repeat(6));
        let (mut seen, mut leak) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
        for (w, x) in worlds.iter().enumerate() {
            let xs: Vec<u64> = x.iter().zip(&own).map(|(&v, &c)| ring.reduce(v.wrapping_sub(c))).collect();
            for _ in 0..300 {
                let (out_s, out_c, view) = run(ring, &windows, &xs, &own, &mut rng);
                assert!(out_s.iter().zip(&out_c).all(|(s, c)| ring.reduce(s + c) == 900), "the max");
                seen[w].push(view);
                leak[w].push(xs.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());
            }
        }
        let z = max_bit_z(&seen[0], &seen[1]);
        assert!(z < Z_LEAK, "the client's view tells where the max is: |z| = {z:.1}");
        let z_leak = max_bit_z(&leak[0], &leak[1]);
        assert!(z_leak > Z_LEAK, "the distinguisher misses the server's shares: |z| = {z_leak:.1}");
    }
}
