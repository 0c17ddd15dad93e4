//! Whole bundled plans through both executors in one process, over the in-memory session
//! ([`crate::net::memory::session_pair`]: memory channels and the insecure ideal OT, framed like
//! the real one), so no QUIC, TLS or OT extension runs.
//!
//! Checked: exact plans equal the simulator bit for bit; plans with local truncations or Circa
//! (share-dependent low bits and sign faults) stay within twice the sound error bound of the
//! simulator's output (both are within the bound of the float model) and agree on the top-1; and
//! every layer's measured bytes each way and rounds, both phases, equal the message scripts'
//! framed messages (the cost model's fold without the OT library's stream bytes, which the
//! ideal OT does not send; the QUIC tests pin those).

use std::time::Duration;

use rand::SeedableRng;
use veil_ir::plan::{attach_weights, decode_plan, encode};
use veil_ir::schedule::lower;
use veil_ir::schedule::script::{Phase, Sent, Wire, script};
use veil_ir::{Graph, Op, Tensor, TruncMode};
use veil_passes::cost::Traffic;
use veil_passes::{Activation, GarblingChoice, NonlinearChoice, Options};

use super::{Stats, client, server};
use crate::net::memory::session_pair;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The bundled model `name` compiled under `activation` for its sample input's magnitude, its
/// non-linear layers in garbled circuits (`--nonlinear gc`; the tests of the OT protocols below
/// ask for them).
pub(super) fn compiled(name: &str, activation: Activation) -> (Graph, Tensor) {
    compiled_with(name, Options { activation, nonlinear: NonlinearChoice::Gc, ..Options::default() })
}

/// The bundled model `name` compiled under `opts` for its sample input's magnitude.
fn compiled_with(name: &str, opts: Options) -> (Graph, Tensor) {
    let x = veil_ir::npy::read_npy(&root().join("models/inputs").join(format!("{name}.npy"))).unwrap();
    let bound = x.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    let opts = Options { input_bound: bound, ..opts };
    let path = root().join("models").join(format!("{name}.onnx"));
    (veil_compiler::compile(&path, &opts.into()).unwrap().graph, x)
}

/// Runs `g` on `x` between the two executors in memory: the client's outputs, both stats.
pub(super) fn in_memory(g: &Graph, x: &Tensor) -> (Vec<Tensor>, Stats, Stats) {
    let (plan, weights, hash) = encode(g).unwrap();
    let (public, h) = decode_plan(&plan).unwrap();
    let mut private = public.clone();
    attach_weights(&mut private, &h, &weights).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (mut cs, mut ss) = session_pair(Duration::from_secs(60), 21);
        let mut srng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let mut crng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        let (c, s) = tokio::join!(
            client::run(&mut cs, &public.graph, &h, std::slice::from_ref(x), &mut crng),
            server::run(&mut ss, &private.graph, &hash, &mut srng)
        );
        let c = c.unwrap();
        (c.outputs, c.stats, s.unwrap())
    })
}

/// Per layer, (offline, online) traffic of the scripts' framed messages.
fn framed_prediction(g: &Graph) -> Vec<(Traffic, Traffic)> {
    let mut sent = Sent::start();
    let mut frames = |step, phase| {
        let m: Vec<_> = script(g, step, phase, &mut sent).into_iter().filter(|m| m.wire == Wire::Frame).collect();
        Traffic::of(&m)
    };
    lower(g).unwrap().iter().map(|step| (frames(step, Phase::Offline), frames(step, Phase::Online))).collect()
}

pub(super) fn check_traffic(name: &str, g: &Graph, stats: &[&Stats]) {
    let want = framed_prediction(g);
    for s in stats {
        assert_eq!(s.layers.len(), want.len(), "{name}");
        for (m, (off, on)) in s.layers.iter().zip(&want) {
            let got = (m.offline.bytes_client_to_server, m.offline.bytes_server_to_client, m.offline.rounds);
            let offline = (off.bytes_client_to_server, off.bytes_server_to_client, off.rounds);
            assert_eq!(got, offline, "{name}: layer {} ({}) offline (c→s, s→c, rounds)", m.name, m.protocol);
            let got = (m.online.bytes_client_to_server, m.online.bytes_server_to_client, m.online.rounds);
            let online = (on.bytes_client_to_server, on.bytes_server_to_client, on.rounds);
            assert_eq!(got, online, "{name}: layer {} ({}) online (c→s, s→c, rounds)", m.name, m.protocol);
        }
    }
}

fn top1(t: &Tensor) -> usize {
    t.data.iter().enumerate().fold(0, |best, (i, &v)| if v > t.data[best] { i } else { best })
}

/// Runs the model, its non-linear layers in garbled circuits, and checks it; returns the
/// protocols its plan used.
fn check(name: &str, activation: Activation) -> Vec<String> {
    check_with(name, Options { activation, nonlinear: NonlinearChoice::Gc, ..Options::default() })
}

/// [`check`] under `opts`.
fn check_with(name: &str, opts: Options) -> Vec<String> {
    let activation = opts.activation;
    let (g, x) = compiled_with(name, opts);
    let (out, cstats, sstats) = in_memory(&g, &x);
    let sim = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    let exact = !g.live_nodes().any(|(_, n)| {
        matches!(n.op, Op::Truncate { mode: TruncMode::Local | TruncMode::Stochastic, .. } | Op::StochasticRelu { .. })
    });
    if exact {
        assert_eq!(out, sim, "{name} {activation:?}: in memory differs from the simulator");
    } else {
        let bound = veil_passes::error_bound::error_bounds(&g, g.input_bound.unwrap_or(1.0) as f64);
        let b = 2.0 * bound[g.outputs[0].index()];
        for (i, (r, s)) in out[0].data.iter().zip(&sim[0].data).enumerate() {
            assert!(((r - s) as f64).abs() <= b, "{name} {activation:?} output {i}: in memory {r}, simulator {s}");
        }
        assert_eq!(top1(&out[0]), top1(&sim[0]), "{name} {activation:?}: top-1 differs from the simulator");
    }
    check_traffic(name, &g, &[&cstats, &sstats]);
    cstats.layers.iter().map(|l| l.protocol.clone()).collect()
}

#[test]
fn bundled_plans_run_in_memory_exactly_as_scripted() {
    let relu = check("digits_relu", Activation::Relu);
    let circa = check("digits_relu", Activation::Circa);
    let poly = check("digits_poly", Activation::Poly);
    // Stochastic truncations in the ReLUs' and MaxPools' circuits, narrowed too.
    let sr = Options { nonlinear: NonlinearChoice::Gc, stochastic_truncation: true, ..Options::default() };
    let (g, _) = compiled_with("digits_relu", sr.clone());
    let n = g.live_nodes().filter(|(_, n)| matches!(n.op, Op::Truncate { mode: TruncMode::Stochastic, .. })).count();
    assert!(n >= 3 && !g.narrow_bits.is_empty(), "{n} stochastic truncations, narrowed {:?}", g.narrow_bits);
    check_with("digits_relu", sr);
    // Each plan exercises the protocol it is here for.
    let has = |ps: &[String], p: &str| ps.iter().any(|q| q.contains(p));
    assert!(has(&relu, "GC") && has(&circa, "Circa") && has(&poly, "Beaver"), "{relu:?} {circa:?} {poly:?}");
}

/// Garbled ReLUs and MaxPools that read their operand in fewer bits than the ring
/// (`Graph::narrow_bits`): the compiler narrows the digits plan's three ReLUs and two MaxPools to
/// what their operands need (each party sends the low bits of its shares), and narrowed far
/// below that, so the operands wrap, the two parties still compute what the simulator computes,
/// bit for bit, with every layer's bytes as scripted, the circuits masking their outputs in only
/// the bits the next layers read.
#[test]
fn narrowed_relu_circuits_run_in_memory_exactly_as_the_simulator_narrows() {
    let (mut g, x) = compiled("digits_relu", Activation::Relu);
    let ell = g.ring_bits.unwrap();
    let layers: Vec<_> =
        g.live_nodes().filter(|(_, n)| matches!(n.op, Op::Relu | Op::MaxPool { .. })).map(|(id, _)| id).collect();
    assert_eq!(layers.len(), 5);
    let listed: Vec<_> = g.narrow_bits.iter().map(|b| b.0).collect();
    assert_eq!(listed, layers, "the compiler narrows every ReLU and MaxPool: {:?} (ℓ = {ell})", g.narrow_bits);
    let before = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    // Three bits above each fused shift: the operands' magnitudes wrap.
    g.narrow_bits = layers.iter().map(|&id| (id, veil_ir::schedule::fused(&g, g.nodes[id].inputs[0]).1 + 3)).collect();
    veil_ir::verify(&g).unwrap();
    // A plan may not narrow what is no garbled ReLU or MaxPool, to the whole ring, or twice.
    for bad in [vec![(g.body[0], 10)], vec![(layers[0], ell)], vec![(layers[0], 10), (layers[0], 12)]] {
        let mut h = g.clone();
        h.narrow_bits = bad.clone();
        assert!(veil_ir::verify(&h).is_err(), "{bad:?}");
    }
    let want = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    assert_ne!(want, before, "the narrowing changes the simulated output");
    // Each circuit masks its output in the bits its readers read (`schedule::output_bits`):
    // the next layers' narrowed reads, through the linear layers between; the last ReLU's
    // readers (the classifier head, revealed) need all ℓ.
    let outs: Vec<usize> =
        lower(&g).unwrap().iter().flat_map(|s| s.gc_batches(&g)).map(|b| b.circuit.outputs.len()).collect();
    assert!(outs.iter().filter(|&&o| o < ell as usize).count() >= 3, "{outs:?} of ℓ = {ell}");
    let (out, cstats, sstats) = in_memory(&g, &x);
    assert_eq!(out, want, "in memory differs from the simulator's narrowing");
    check_traffic("digits_relu narrowed", &g, &[&cstats, &sstats]);
}

/// ReLUs over OT read their operand narrowed too (`schedule::relu_ot_width`): the comparison
/// takes the shares' low `w` bits, and the products the bits the output's readers read (with the
/// MaxPools garbled and narrowed, 10 of ℓ). The digits plan over OT keeps the compiler's widths for its
/// ReLUs with a fused truncation (and moves fewer bytes than reading all ℓ bits); narrowed to
/// three bits above each shift, so the operands wrap, the two parties still compute what the
/// simulator computes, bit for bit, with every layer's bytes as scripted. A plan narrowing a
/// ReLU over OT to two bits above its shift, or one without a fused truncation, is refused.
#[test]
fn narrowed_relus_over_ot_run_in_memory_exactly_as_the_simulator_narrows() {
    let (mut g, x) = compiled_with("digits_relu", Options { nonlinear: NonlinearChoice::Ot, ..Options::default() });
    let ell = g.ring_bits.unwrap();
    let shift = |g: &Graph, id| veil_ir::schedule::fused(g, g.nodes[id].inputs[0]).1;
    let relus: Vec<_> = g
        .live_nodes()
        .filter(|&(id, n)| matches!(n.op, Op::Relu) && g.over_ot.contains(&id) && shift(&g, id) > 0)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(relus.len(), 3, "the digits plan's three ReLUs run over OT with fused truncations");
    let listed: Vec<_> = g.narrow_bits.iter().map(|b| b.0).collect();
    assert_eq!(listed, relus, "the compiler narrows the ReLUs over OT: {:?} (ℓ = {ell})", g.narrow_bits);
    let bytes = |g: &Graph| {
        let mut sent = Sent::start();
        let steps = lower(g).unwrap();
        let phases = [Phase::Offline, Phase::Online];
        steps.iter().flat_map(|st| phases.map(|p| script(g, st, p, &mut sent))).flatten().map(|m| m.bytes).sum::<u64>()
    };
    let mut whole = g.clone();
    whole.narrow_bits.clear();
    assert!(bytes(&g) < bytes(&whole), "narrowed comparisons move fewer bytes: {} vs {}", bytes(&g), bytes(&whole));
    let before = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    g.narrow_bits = relus.iter().map(|&id| (id, shift(&g, id) + 3)).collect();
    veil_ir::verify(&g).unwrap();
    for bad in [vec![(relus[0], shift(&g, relus[0]) + 2)], vec![(relus[1], ell)]] {
        let mut h = g.clone();
        h.narrow_bits = bad.clone();
        assert!(veil_ir::verify(&h).is_err(), "{bad:?}");
    }
    // The MaxPools garbled instead, reading 10 bits (the narrowed ReLUs' outputs fit): the
    // ReLUs before them then move products of only those 10 bits (`schedule::relu_ot_out`).
    let pools: Vec<_> = g.live_nodes().filter(|(_, n)| matches!(n.op, Op::MaxPool { .. })).map(|(id, _)| id).collect();
    assert_eq!(pools.len(), 2);
    g.over_ot.retain(|n| !pools.contains(n));
    g.narrow_bits.extend(pools.iter().map(|&p| (p, 10)));
    veil_ir::verify(&g).unwrap();
    let outs: Vec<u8> = lower(&g)
        .unwrap()
        .iter()
        .filter_map(|s| match s.kind {
            veil_ir::schedule::Kind::ReluOt { out, .. } => Some(out),
            _ => None,
        })
        .collect();
    assert_eq!(outs, vec![10, 10, ell], "the last ReLU feeds the classifier head, revealed");
    let want = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    assert_ne!(want, before, "the narrowing changes the simulated output");
    let (out, cstats, sstats) = in_memory(&g, &x);
    assert_eq!(out, want, "in memory differs from the simulator's narrowing");
    check_traffic("digits_relu over OT narrowed", &g, &[&cstats, &sstats]);
}

/// An HE layer whose output every reader reads narrowed computes modulo `2^k` for the bits `k`
/// they read (`schedule::demand`; `Graph::narrow_bits` entries on dense and convolution layers).
/// The digits plan with its garbled reads narrowed to three bits above each shift and every HE
/// layer at exactly the bits its output's readers need (other BFV parameters: one
/// response prime instead of two) gives the simulator's output bit for bit, with every layer's
/// bytes as scripted; one bit less than a layer's demand is refused.
#[test]
fn he_layers_in_their_demanded_rings_run_in_memory_exactly_as_the_simulator() {
    use veil_ir::schedule::{Kind, LinearOffline, demand::demanded_bits};
    let (mut g, x) = compiled("digits_relu", Activation::Relu);
    let ell = g.ring_bits.unwrap();
    let reads: Vec<_> =
        g.live_nodes().filter(|(_, n)| matches!(n.op, Op::Relu | Op::MaxPool { .. })).map(|(id, _)| id).collect();
    g.narrow_bits = reads.iter().map(|&id| (id, veil_ir::schedule::fused(&g, g.nodes[id].inputs[0]).1 + 3)).collect();
    let before = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    let demand = demanded_bits(&g);
    let he: Vec<_> = lower(&g)
        .unwrap()
        .into_iter()
        .filter(|s| matches!(s.kind, Kind::Linear { offline: LinearOffline::He }))
        .map(|s| (s.node, demand[g.nodes[s.node].output.index()]))
        .filter(|&(_, k)| k < ell)
        .collect();
    assert!(he.len() >= 2 && he.iter().all(|&(_, k)| k >= 3), "{he:?} (ℓ = {ell})");
    let full: Vec<_> = he.iter().map(|&(n, _)| veil_ir::he_pack::Layer::of(&g, &g.nodes[n]).unwrap().params).collect();
    g.narrow_bits.extend(he.iter().copied());
    veil_ir::verify(&g).unwrap();
    for (i, &(n, k)) in he.iter().enumerate() {
        let p = veil_ir::he_pack::Layer::of(&g, &g.nodes[n]).unwrap().params;
        assert_eq!(p.ring_bits, k);
        assert!(p.response_primes < full[i].response_primes, "{p:?} against {:?}", full[i]);
        let mut h = g.clone();
        h.narrow_bits.iter_mut().filter(|e| e.0 == n).for_each(|e| e.1 = k - 1);
        assert!(veil_ir::verify(&h).is_err(), "a plaintext width below the readers' {k} bits");
    }
    let want = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    assert_eq!(want, before, "an HE layer's ring is not the simulator's business");
    let (out, cstats, sstats) = in_memory(&g, &x);
    assert_eq!(out, want, "in memory differs from the simulator");
    check_traffic("digits_relu, HE in narrower rings", &g, &[&cstats, &sstats]);
}

/// `--stochastic-truncation` between the two parties: the truncation fused into a garbled ReLU
/// rounds each element down or up and nothing else, up at the rate of its fraction (each party
/// shifts its own share and the circuit adds the two in the narrower width), every layer's bytes
/// are as scripted, and the ReLU layer sends exactly `F` fewer 16-byte server labels per element
/// online than the exact truncation's. The exact plan gives the floor itself.
#[test]
fn stochastic_truncation_rounds_each_element_up_at_its_fraction_between_the_parties() {
    use veil_ir::{Domain, TensorType};
    const F: u8 = 8;
    let n = 768usize;
    let mut g = Graph::new("sr");
    let x = g.add_input("x", TensorType::f32(vec![1, n]));
    // x_q · (2^F + 1) / 2^F = x_q + x_q / 2^F: element i's fraction is (x_q mod 2^F) / 2^F.
    let c = g.add_const("c", vec![1], Domain::Public, vec![1.0 + 1.0 / 256.0]);
    // The server's (zero) shift makes the product shared.
    let z = g.add_const("z", vec![1], Domain::Server, vec![0.0]);
    let h = g.add_node("scale", "h", Op::Affine { scale: Some(c), shift: Some(z) }, &[x]).unwrap();
    let r = g.add_node("relu", "r", Op::Relu, &[h]).unwrap();
    let y = g.add_node("reveal", "y", Op::Reveal, &[r]).unwrap();
    g.outputs.push(y);
    let xq: Vec<i64> = (0..n as i64).map(|i| i - 256).collect();
    let xs = Tensor::new(vec![1, n], xq.iter().map(|&q| q as f32 / 256.0).collect()).unwrap();
    let compile = |stochastic_truncation| {
        let opts = Options {
            frac_bits: F,
            input_bound: 2.0,
            nonlinear: NonlinearChoice::Gc,
            stochastic_truncation,
            ..Options::default()
        };
        veil_compiler::compile(g.clone(), &opts.into()).unwrap().graph
    };
    let (exact, sr) = (compile(false), compile(true));
    let stochastic = |g: &Graph| {
        g.live_nodes().filter(|(_, n)| matches!(n.op, Op::Truncate { bits: F, mode: TruncMode::Stochastic })).count()
    };
    assert_eq!((stochastic(&exact), stochastic(&sr)), (0, 1), "{}", veil_ir::print::to_text(&sr));
    let ints = |t: &Tensor| -> Vec<i64> { t.data.iter().map(|&v| (f64::from(v) * 256.0).round() as i64).collect() };
    let floor: Vec<i64> = xq.iter().map(|&q| ((q * 257) >> F).max(0)).collect();
    let (out, ecs, ess) = in_memory(&exact, &xs);
    assert_eq!(ints(&out[0]), floor, "the exact truncation is the floor");
    check_traffic("exact", &exact, &[&ecs, &ess]);

    let (out, cs, ss) = in_memory(&sr, &xs);
    check_traffic("stochastic", &sr, &[&cs, &ss]);
    let got = ints(&out[0]);
    let (mut ups, mut mean, mut var) = (0usize, 0f64, 0f64);
    for (i, &q) in xq.iter().enumerate() {
        let t = (q * 257) >> F;
        if t < 0 {
            assert_eq!(got[i], 0, "x_q = {q}: a negative value rounds to at most 0, and the ReLU clears it");
            continue;
        }
        assert!(got[i] == t || got[i] == t + 1, "x_q = {q}: {} is neither ⌊{t}⌋ nor one more", got[i]);
        let frac = (q * 257).rem_euclid(1 << F) as f64 / 256.0;
        if frac == 0.0 {
            assert_eq!(got[i], t, "x_q = {q}: no fraction, nothing to round up");
        }
        ups += usize::from(got[i] == t + 1);
        (mean, var) = (mean + frac, var + frac * (1.0 - frac));
    }
    // 512 Bernoulli trials: the count of round-ups within six standard deviations of its mean.
    assert!((ups as f64 - mean).abs() <= 6.0 * var.sqrt(), "{ups} round-ups, expected {mean:.1} ± {:.1}", var.sqrt());
    let relu_online = |s: &Stats| s.layers.iter().find(|l| l.protocol == "GC").unwrap().online.bytes_server_to_client;
    assert_eq!(relu_online(&ecs) - relu_online(&cs), (n * usize::from(F) * 16) as u64, "F labels fewer per element");
}

/// QuantizeLinear's rounding with a zero point between the two parties: ONNX rounds `x/s` to
/// even and then adds `z`, so for an odd `z` a tie goes to the odd neighbour of `x/s + z`. The
/// circuit takes each element's `z mod 2` as a server input bit. Checked on ties of both signs,
/// an odd and an even zero point per channel: the definition exactly, the simulator bit for
/// bit, every layer's bytes as scripted, and one 16-byte label more per element online than a
/// rounding without a zero point, which gets the odd channel's ties wrong.
#[test]
fn a_zero_point_breaks_ties_as_onnx_between_the_parties() {
    use veil_ir::{Domain, RoundMode, TensorType};
    let (c, n) = (2usize, 24usize);
    let zs = [3.0f32, 4.0];
    let graph = |with_zero: bool| {
        let mut g = Graph::new("ties");
        let x = g.add_input("x", TensorType::f32(vec![1, c, n]));
        let inv = g.add_const("inv_scale", vec![1], Domain::Public, vec![2.0]);
        let z = g.add_const("zero_point", vec![c, 1], Domain::Server, zs.to_vec());
        let h = g.add_node("scaled", "h", Op::Affine { scale: Some(inv), shift: Some(z) }, &[x]).unwrap();
        let op = Op::Round {
            mode: RoundMode::HalfEven,
            min: Some(0.0),
            max: Some(255.0),
            zero_point: with_zero.then_some(z),
            grid: None,
        };
        let q = g.add_node("round", "q", op, &[h]).unwrap();
        let y = g.add_node("reveal", "y", Op::Reveal, &[q]).unwrap();
        g.outputs.push(y);
        let opts =
            Options { input_bound: 4.0, exact_truncation: true, nonlinear: NonlinearChoice::Gc, ..Options::default() };
        veil_compiler::compile(g, &opts.into()).unwrap().graph
    };
    // x/s = 2x runs over −6 … 5.5 in halves: every other one a tie.
    let xs: Vec<f32> = (0..c * n).map(|i| ((i % n) as f32 - 12.0) / 4.0).collect();
    let x = Tensor::new(vec![1, c, n], xs.clone()).unwrap();
    let want: Vec<f32> =
        xs.iter().enumerate().map(|(i, v)| ((2.0 * v).round_ties_even() + zs[i / n]).clamp(0.0, 255.0)).collect();
    let (g, plain) = (graph(true), graph(false));
    let (out, cs, ss) = in_memory(&g, &x);
    assert_eq!(out[0].data, want, "ONNX's QuantizeLinear");
    assert_eq!(out, veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs, "the simulator");
    check_traffic("zero point", &g, &[&cs, &ss]);
    // Without it, `round(x/s + z)`: the odd channel's ties the clamp does not hide go one step
    // the other way.
    let (other, pcs, _) = in_memory(&plain, &x);
    let after: Vec<f32> =
        xs.iter().enumerate().map(|(i, v)| (2.0 * v + zs[i / n]).round_ties_even().clamp(0.0, 255.0)).collect();
    assert_eq!(other[0].data, after);
    let wrong: Vec<usize> = (0..c * n).filter(|&i| after[i] != want[i]).collect();
    assert!(wrong.len() >= 8 && wrong.iter().all(|&i| i < n), "{wrong:?}");
    let gc_online = |s: &Stats| s.layers.iter().find(|l| l.protocol == "GC").unwrap().online.bytes_server_to_client;
    assert_eq!(gc_online(&cs) - gc_online(&pcs), (c * n * 16) as u64, "one server label more per element");
}

/// [`stochastic_truncation_rounds_each_element_up_at_its_fraction_between_the_parties`] for a
/// MaxPool: the circuit takes the maximum of the shifted shares' sums, so each window's output is
/// its largest floor or one more, as the simulator's stochastic truncation then max gives.
#[test]
fn a_maxpool_after_a_stochastic_truncation_is_its_largest_floor_or_one_more() {
    use veil_ir::{Domain, TensorType, Window2d};
    const F: u8 = 8;
    let mut g = Graph::new("sr_max");
    let x = g.add_input("x", TensorType::f32(vec![1, 1, 16, 16]));
    let c = g.add_const("c", vec![1], Domain::Public, vec![1.0 + 1.0 / 256.0]);
    let z = g.add_const("z", vec![1], Domain::Server, vec![0.0]);
    let h = g.add_node("scale", "h", Op::Affine { scale: Some(c), shift: Some(z) }, &[x]).unwrap();
    let window = Window2d { kernel: [2, 2], strides: [2, 2], pads: [0; 4], dilations: [1, 1] };
    let m = g.add_node("pool", "m", Op::MaxPool { window }, &[h]).unwrap();
    let y = g.add_node("reveal", "y", Op::Reveal, &[m]).unwrap();
    g.outputs.push(y);
    let xq: Vec<i64> = (0..256).map(|i: i64| (i * 37) % 512 - 200).collect();
    let xs = Tensor::new(vec![1, 1, 16, 16], xq.iter().map(|&q| q as f32 / 256.0).collect()).unwrap();
    let opts = Options {
        frac_bits: F,
        input_bound: 2.0,
        nonlinear: NonlinearChoice::Gc,
        stochastic_truncation: true,
        ..Options::default()
    };
    let g = veil_compiler::compile(g, &opts.into()).unwrap().graph;
    let n = g.live_nodes().filter(|(_, n)| matches!(n.op, Op::Truncate { mode: TruncMode::Stochastic, .. })).count();
    assert_eq!(n, 1, "{}", veil_ir::print::to_text(&g));
    let (out, cs, ss) = in_memory(&g, &xs);
    check_traffic("stochastic max", &g, &[&cs, &ss]);
    for (k, &v) in out[0].data.iter().enumerate() {
        let (r, c) = (k / 8 * 2, k % 8 * 2);
        let m =
            [(0, 0), (0, 1), (1, 0), (1, 1)].iter().map(|(a, b)| (xq[(r + a) * 16 + c + b] * 257) >> F).max().unwrap();
        let got = (f64::from(v) * 256.0).round() as i64;
        assert!(got == m || got == m + 1, "window {k}: {got} is neither its largest floor {m} nor one more");
    }
}

/// A garbled Clip and LeakyReLU narrowed like a ReLU (`clip_trunc_mask_narrow`: the clamp
/// compared in the narrow width, sign-extended before the mask; `leaky_relu_trunc_mask_narrow`:
/// the product with the slope no wider than it can get): the activations model's Hardtanh and
/// LeakyReLU read their operands in fewer bits than the ring, and the two parties compute what
/// the simulator computes, bit for bit, with every layer's bytes as scripted.
#[test]
fn a_narrowed_clip_and_leaky_relu_run_in_memory_exactly_as_the_simulator_narrows() {
    let (g, _) = compiled("activations", Activation::Relu);
    for is in [|op: &Op| matches!(op, Op::Clip { .. }), |op: &Op| matches!(op, Op::LeakyRelu { .. })] {
        let narrowed: Vec<_> = g.narrow_bits.iter().filter(|(n, _)| is(&g.nodes[*n].op)).collect();
        assert!(!narrowed.is_empty(), "{:?} (ℓ = {:?})", g.narrow_bits, g.ring_bits);
    }
    check("activations", Activation::Relu);
}

/// The digits plan garbled with three halves (`--garbling three-halves`), exact ReLU and Circa:
/// as the simulator computes, every layer's bytes as scripted, and the garbled layers' offline
/// bytes below the half-gates plan's (the scheme reached the wire).
#[test]
fn three_halves_plans_run_in_memory_exactly_as_scripted() {
    for activation in [Activation::Relu, Activation::Circa] {
        let opts = Options {
            activation,
            garbling: GarblingChoice::ThreeHalves,
            nonlinear: NonlinearChoice::Gc,
            ..Options::default()
        };
        let protocols = check_with("digits_relu", opts.clone());
        let (three, _) = compiled_with("digits_relu", opts);
        let (half, _) = compiled("digits_relu", activation);
        assert_eq!(three.garbling, veil_ir::Garbling::ThreeHalves);
        let offline = |g: &Graph| -> u64 {
            let mut sent = Sent::start();
            lower(g)
                .unwrap()
                .iter()
                .map(|s| Traffic::of_step(g, s, Phase::Offline, &mut sent).bytes_server_to_client)
                .sum()
        };
        assert!(offline(&three) < offline(&half), "{activation:?}: {protocols:?}");
    }
}

/// The digits plan with every ReLU and every MaxPool (2×2, of a ReLU's output) over OT
/// (`--nonlinear ot`, all truncations exact so the output is deterministic): bit-exact with the
/// simulator, every layer's framed bytes and rounds as scripted, and no ReLU or MaxPool left to
/// a garbled circuit; the MaxPools compare fewer bits than ℓ (`schedule::maxpool_ot_width`).
#[test]
fn relus_and_maxpools_over_ot_run_in_memory_exactly_as_scripted() {
    let opts = Options { exact_truncation: true, nonlinear: NonlinearChoice::Ot, ..Options::default() };
    let protocols = check_with("digits_relu", opts.clone());
    let (g, _) = compiled_with("digits_relu", opts);
    let count = |f: fn(&Op) -> bool| g.live_nodes().filter(|(_, n)| f(&n.op)).count();
    let (relus, pools) = (count(|op| matches!(op, Op::Relu)), count(|op| matches!(op, Op::MaxPool { .. })));
    let by = |p: &str| protocols.iter().filter(|q| q.as_str() == p).count();
    let (relus_ot, pools_ot) = (by("OT (millionaire)"), by("OT (max tree)"));
    assert!(relus > 0 && relus_ot == relus, "{relus} ReLUs, {relus_ot} over OT: {protocols:?}");
    assert!(pools > 0 && pools_ot == pools, "{pools} MaxPools, {pools_ot} over OT: {protocols:?}");
    // Their comparisons read only the bits their narrowed ReLUs' outputs can hold.
    let ell = g.ring_bits.unwrap();
    for s in lower(&g).unwrap() {
        if let veil_ir::schedule::Kind::MaxPoolOt { width, .. } = s.kind {
            assert!(width < ell, "a MaxPool over OT compares {width} of ℓ = {ell} bits");
        }
    }
}

/// The MobileNet-style block (ReLU6 and the clamps of HardSwish and the squeeze-excite gate,
/// each a Clip to `[0, hi]` after an exact truncation) with `--nonlinear ot`: every Clip runs as
/// two ReLUs over OT, bit-exact with the simulator, every layer's bytes and rounds as scripted.
#[test]
fn clips_over_ot_run_in_memory_exactly_as_scripted() {
    let opts = Options { exact_truncation: true, nonlinear: NonlinearChoice::Ot, ..Options::default() };
    let protocols = check_with("mobile_block", opts.clone());
    let (g, _) = compiled_with("mobile_block", opts);
    let clips = g.live_nodes().filter(|(_, n)| matches!(n.op, Op::Clip { .. })).count();
    let clips_ot = protocols.iter().filter(|p| p.as_str() == "OT (clip)").count();
    assert!(clips > 0 && clips_ot == clips, "{clips} Clips, {clips_ot} over OT: {protocols:?}");
}

/// The MobileNet-style block with `--exact-truncation --nonlinear ot`: the truncations that fuse
/// into no reader (after the squeeze-excite product and HardSwish's, before the residual add)
/// run as truncations over OT, none garbled, bit-exact with the simulator, every layer's framed
/// bytes and rounds as scripted.
#[test]
fn truncations_over_ot_run_in_memory_exactly_as_scripted() {
    let opts = Options { exact_truncation: true, nonlinear: NonlinearChoice::Ot, ..Options::default() };
    let protocols = check_with("mobile_block", opts.clone());
    let (g, _) = compiled_with("mobile_block", opts);
    let standalone = g
        .live_nodes()
        .filter(|(_, n)| {
            matches!(n.op, Op::Truncate { mode: TruncMode::Exact, .. })
                && !veil_ir::schedule::fuses_into_reader(&g, n.output)
        })
        .count();
    let by = |p: &str| protocols.iter().filter(|q| q.as_str() == p).count();
    assert!(standalone > 0 && by("OT (truncation)") == standalone, "{standalone} truncations: {protocols:?}");
    assert_eq!(by("GC"), 0, "nothing garbled: {protocols:?}");
}

/// The activations MLP (a LeakyReLU with slope 0.1, a Clip to [−1, 1]) with
/// `--exact-truncation --nonlinear ot`: the LeakyReLU runs over OT (two truncations and a
/// select) and so does the Clip (its lower bound −1 proven not to wrap by the compiler's range
/// analysis), bit-exact with the simulator, every layer's framed bytes and rounds as scripted.
#[test]
fn leaky_relus_and_hardtanh_over_ot_run_in_memory_exactly_as_scripted() {
    let opts = Options { exact_truncation: true, nonlinear: NonlinearChoice::Ot, ..Options::default() };
    let protocols = check_with("activations", opts.clone());
    let (g, _) = compiled_with("activations", opts);
    let count = |f: fn(&Op) -> bool| g.live_nodes().filter(|(_, n)| f(&n.op)).count();
    let leaky = count(|op| matches!(op, Op::LeakyRelu { .. }));
    let clips = count(|op| matches!(op, Op::Clip { min: Some(m), .. } if *m < 0.0));
    let by = |p: &str| protocols.iter().filter(|q| q.as_str() == p).count();
    assert!(leaky > 0 && by("OT (leaky ReLU)") == leaky, "{leaky} LeakyReLUs: {protocols:?}");
    assert!(clips > 0 && by("OT (clip)") == clips, "{clips} Clips with a negative lower bound: {protocols:?}");
    assert_eq!(by("GC"), 0, "nothing garbled: {protocols:?}");
}

/// The digits plan with Circa's stochastic ReLUs over OT (`--activation circa --nonlinear ot`):
/// every Circa layer runs over OT, none garbled; the output stays within twice the error bound of
/// the simulator's with the same top-1 (the sign test errs on share-dependent values, as the
/// garbled Circa does), and every layer's framed bytes and rounds are as scripted.
#[test]
fn circa_over_ot_runs_in_memory_exactly_as_scripted() {
    let opts = Options { activation: Activation::Circa, nonlinear: NonlinearChoice::Ot, ..Options::default() };
    let protocols = check_with("digits_relu", opts.clone());
    let (g, _) = compiled_with("digits_relu", opts);
    let circas = g.live_nodes().filter(|(_, n)| matches!(n.op, Op::StochasticRelu { .. })).count();
    let by = |p: &str| protocols.iter().filter(|q| q.as_str() == p).count();
    assert!(circas > 0 && by("OT (Circa)") == circas && by("GC+OT (Circa)") == 0, "{circas} Circa: {protocols:?}");
}

/// A trailing Sigmoid (a binary classifier's last op) runs on the client after the reveal: the
/// digits plan with a Sigmoid appended to its output gives the simulator's probabilities, bit
/// for bit, and the same traffic as without it.
#[test]
fn a_trailing_sigmoid_runs_on_the_client() {
    let (mut g, x) = compiled("digits_relu", Activation::Relu);
    let logits = g.outputs[0];
    let p = g.add_node("sigmoid", "probabilities", Op::Sigmoid, &[logits]).unwrap();
    g.outputs[0] = p;
    veil_ir::verify(&g).unwrap();
    let (out, cstats, sstats) = in_memory(&g, &x);
    let sim = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    assert_eq!(out, sim, "in memory differs from the simulator");
    assert!(out[0].data.iter().all(|&v| v > 0.0 && v < 1.0), "{:?}", out[0].data);
    // The logits before the sigmoid are the revealed values: the probabilities are their sigmoid.
    let (without, _) = compiled("digits_relu", Activation::Relu);
    let logits = veil_ir::eval::run_fixed(&without, std::slice::from_ref(&x), 0).unwrap().outputs;
    for (p, l) in out[0].data.iter().zip(&logits[0].data) {
        assert!((p - 1.0 / (1.0 + (-l).exp())).abs() < 1e-6, "{p} vs sigmoid({l})");
    }
    check_traffic("digits_relu + sigmoid", &g, &[&cstats, &sstats]);
}
