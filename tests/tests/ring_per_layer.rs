//! Ring widths per layer (issue 17): the bits of each value its readers need
//! (`schedule::demand`), HE layers computing modulo `2^k` where that is all their outputs' readers
//! read (`Graph::narrow_bits` entries on dense and convolution layers, `he_bits=K` in the text
//! form), and ReLUs over OT reading their operand narrowed. Checked here on the plans the
//! compiler makes: what the widths are, that the text IR and the plan files carry them, and that
//! the verifier refuses a width the readers' bits do not allow. The two parties' runs are the
//! runtime's memory tests'.

use veil_ir::schedule::demand::demanded_bits;
use veil_ir::schedule::{Kind, LinearOffline, lower, narrowed_reads};
use veil_ir::{Graph, NodeId, Op};
use veil_passes::{NonlinearChoice, Options};
use veil_tests::compile_bundled;

/// cifar_cnn with its local truncations (the library's default: ℓ = 61 for their headroom).
fn cifar_local() -> Graph {
    compile_bundled("cifar_cnn", Options { input_bound: 4.0, ..Options::default() }).unwrap().graph
}

fn he_layers(g: &Graph) -> Vec<NodeId> {
    lower(g)
        .unwrap()
        .into_iter()
        .filter(|s| matches!(s.kind, Kind::Linear { offline: LinearOffline::He }))
        .map(|s| s.node)
        .collect()
}

/// Each convolution of cifar_cnn feeds a ReLU over OT through its fused truncation, read in the
/// truncation's narrowed width: that width is all the convolution's output needs. The values a
/// local truncation or the reveal reads need every bit of ℓ.
#[test]
fn a_value_needs_the_bits_its_readers_read_through_linear_steps() {
    let g = cifar_local();
    let ell = g.ring_bits.unwrap();
    let demand = demanded_bits(&g);
    let reads: std::collections::HashMap<NodeId, u8> = narrowed_reads(&g).into_iter().collect();
    let convs: Vec<NodeId> =
        g.live_nodes().filter(|(_, n)| matches!(n.op, Op::Conv2d { .. })).map(|(id, _)| id).collect();
    assert_eq!(convs.len(), 4);
    for &c in &convs {
        let out = g.nodes[c].output;
        let readers: Vec<u8> = g.users(out).into_iter().map(|u| reads[&u]).collect();
        assert_eq!(readers.len(), 1, "one reader, the fused truncation");
        assert_eq!(demand[out.index()], readers[0], "{:?}", g.nodes[c].name);
        assert!(readers[0] < ell);
    }
    for (_, n) in g.live_nodes() {
        if matches!(n.op, Op::Truncate { mode: veil_ir::TruncMode::Local, .. } | Op::Reveal) {
            assert_eq!(demand[n.inputs[0].index()], ell, "{:?} reads all ℓ bits", n.name);
        }
    }
}

/// The compiler gives cifar_cnn's HE layers the plaintext modulus `2^49` (50-bit primes and
/// N = 8192, instead of 62-bit primes at ℓ = 61) where the cost model predicts it faster; each
/// width covers its output's demand; the text IR prints `he_bits=49` and reads back the same
/// plan; the plan file round-trips; and the verifier refuses a width below the demand, at ℓ,
/// on the dense layer over OT, or on a layer listed twice.
#[test]
fn he_layers_compute_in_the_ring_their_outputs_need_and_the_plan_says_so() {
    let g = cifar_local();
    let ell = g.ring_bits.unwrap();
    assert_eq!(ell, 61);
    let demand = demanded_bits(&g);
    let he = he_layers(&g);
    let entries: Vec<(NodeId, u8)> = g.narrow_bits.iter().copied().filter(|(n, _)| he.contains(n)).collect();
    assert_eq!(entries.len(), he.len(), "every HE layer narrowed: {:?}", g.narrow_bits);
    for &(n, k) in &entries {
        let need = demand[g.nodes[n].output.index()];
        assert!(need <= k && k < ell, "{need} ≤ {k} < {ell}");
        let layer = veil_ir::he_pack::Layer::of(&g, &g.nodes[n]).unwrap();
        let full = veil_ir::he_pack::Layer::with_width(&g, &g.nodes[n], ell).unwrap();
        assert_eq!(layer.params.ring_bits, k);
        let bytes = |l: &veil_ir::he_pack::Layer| {
            l.tiling.input_cts() as u64 * l.params.request_ct_bytes()
                + l.tiling.output_cts() as u64 * l.params.response_ct_bytes()
        };
        assert!(layer.params.prime_bits < full.params.prime_bits, "{:?} against {:?}", layer.params, full.params);
        assert!(bytes(&layer) < bytes(&full), "{} against {} bytes", bytes(&layer), bytes(&full));
    }
    let text = veil_ir::print::to_text_with_values(&g);
    assert!(text.contains(" he_bits=49 "), "{text}");
    let sorted = |g: &Graph| {
        let mut v = g.narrow_bits.clone();
        v.sort();
        v
    };
    let back = veil_ir::print::parse(&text).unwrap();
    assert_eq!(sorted(&back), sorted(&g));
    let (plan, _, _) = veil_ir::plan::encode(&g).unwrap();
    let (decoded, _) = veil_ir::plan::decode_plan(&plan).unwrap();
    assert_eq!(decoded.graph.narrow_bits, g.narrow_bits);
    veil_ir::verify(&back).unwrap();
    let dense = g.live_nodes().find(|(_, n)| matches!(n.op, Op::Dense { .. })).map(|(id, _)| id).unwrap();
    assert!(g.over_ot.contains(&dense));
    let (n0, k0) = entries[0];
    let need = demand[g.nodes[n0].output.index()];
    for bad in [vec![(n0, need - 1)], vec![(n0, ell)], vec![(dense, 40)], vec![(n0, k0), (n0, k0)]] {
        let mut h = g.clone();
        h.narrow_bits.retain(|(n, _)| !he.contains(n));
        h.narrow_bits.extend(bad.iter().copied());
        let err = veil_ir::verify(&h).expect_err(&format!("{bad:?}")).to_string();
        assert!(err.contains("plaintext width"), "{err}");
    }
}

/// Forcing ReLUs over OT, cifar_cnn's comparisons read their narrowed widths (30 to 37 of the
/// 61 bits) and their products move the bits their outputs' readers read: fewer OTs and online
/// bytes than reading all ℓ bits, by the plan's own scripts.
#[test]
fn relus_over_ot_read_their_narrowed_widths() {
    let opts = Options { input_bound: 4.0, nonlinear: NonlinearChoice::Ot, ..Options::default() };
    let g = compile_bundled("cifar_cnn", opts).unwrap().graph;
    let ell = g.ring_bits.unwrap();
    let steps = lower(&g).unwrap();
    let widths: Vec<(u8, u8)> = steps
        .iter()
        .filter_map(|s| match s.kind {
            Kind::ReluOt { width, shift, out, .. } if shift > 0 => Some((width, out)),
            _ => None,
        })
        .collect();
    assert_eq!(widths.len(), 4);
    assert!(widths.iter().all(|&(w, _)| w < ell - 20), "{widths:?} of ℓ = {ell}");
    // The first three ReLUs feed convolutions whose outputs the next ReLU reads narrowed: their
    // products move only those bits. The last one feeds a pool and a local truncation (all ℓ).
    let demand = demanded_bits(&g);
    let outs: Vec<u8> = widths.iter().map(|w| w.1).collect();
    assert!(outs[..3].iter().all(|&o| o < ell - 20) && outs[3] == ell, "{outs:?} of ℓ = {ell}");
    for s in &steps {
        if let Kind::ReluOt { out, .. } = s.kind {
            assert_eq!(out, demand[g.nodes[s.node].output.index()].max(2), "the readers' bits");
        }
    }
    let total = |g: &Graph| {
        let c = veil_passes::cost::plan_cost(g).unwrap();
        c.online.bytes_client_to_server + c.online.bytes_server_to_client
    };
    // Reading all ℓ bits, the convolutions' outputs need all ℓ bits too: no HE layer narrows.
    let mut whole = g.clone();
    whole.narrow_bits.retain(|(n, _)| !matches!(g.nodes[*n].op, Op::Relu | Op::Conv2d { .. }));
    veil_ir::verify(&whole).unwrap();
    let mut bad = g.clone();
    bad.narrow_bits.retain(|(n, _)| !matches!(g.nodes[*n].op, Op::Relu));
    assert!(veil_ir::verify(&bad).is_err(), "HE layers narrower than their readers now read");
    let (narrow, full) = (total(&g), total(&whole));
    assert!(narrow * 10 < full * 9, "online bytes {narrow} against {full} reading all ℓ bits");
}
