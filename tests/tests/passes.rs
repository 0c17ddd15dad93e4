//! The float-level passes (up to `substitute_activations`) preserve every bundled model's float
//! semantics, and the IR verifies after each pass.

// Reports node counts before and after the passes on stderr (shown with --nocapture).
#![allow(clippy::print_stderr)]

use veil_compiler::{CompileOptions, compile};
use veil_passes::{Options, Pass};
use veil_tests::{bundled_models, compile_bundled, max_rel_error, root};

#[test]
fn passes_preserve_float_semantics_on_every_bundled_model() {
    for name in bundled_models() {
        let x = veil_ir::npy::read_npy(&root().join("models/inputs").join(format!("{name}.npy"))).unwrap();
        let until = Some(Pass::SubstituteActivations.into());
        let c = compile(
            &root().join("models").join(format!("{name}.onnx")),
            &CompileOptions { until, ..Default::default() },
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (g, runs) = (c.graph, c.runs);
        let before = veil_ir::eval::run_float(&c.float, std::slice::from_ref(&x)).unwrap();
        let nodes_before = c.float.body.len();
        assert_eq!(runs.last().map(|r| r.pass), Some(Pass::SubstituteActivations));
        let after = veil_ir::eval::run_float(&g, &[x]).unwrap();
        for (a, b) in after.iter().zip(&before) {
            let err = max_rel_error(a, b, 1e-2);
            assert!(err <= 1e-5, "{name}: passes changed the result by {err:e}");
        }
        assert!(
            g.live_nodes().all(|(_, n)| !matches!(n.op, veil_ir::Op::BatchNorm { .. } | veil_ir::Op::AvgPool { .. }))
        );
        eprintln!("{name}: {nodes_before} nodes after import, {} after the passes", g.body.len());
    }
}

#[test]
fn bundled_cnn_batchnorms_fold_into_convolutions() {
    let opts = CompileOptions { until: Some(Pass::FoldBatchnorm.into()), ..Default::default() };
    let c = compile(&root().join("models/resnet_small.onnx"), &opts).unwrap();
    let count = |g: &veil_ir::Graph, m: &str| g.live_nodes().filter(|(_, n)| n.op.mnemonic() == m).count();
    assert_eq!(count(&c.float, "batchnorm"), 5);
    let g = c.graph;
    assert_eq!(count(&g, "batchnorm"), 0);
    assert_eq!(count(&g, "affine"), 0, "every batchnorm follows a conv");
}

#[test]
fn unknown_layer_override_names_the_relu_nodes() {
    let mut opts = Options::default();
    opts.layer_activation.insert("/nope".into(), veil_passes::Activation::Poly);
    let e = compile_bundled("digits_relu", opts).unwrap_err();
    assert!(e.is_user_error());
    assert!(
        e.to_string().contains(r#"--layer names "/nope" but the model has no ReLU node by that name; its ReLU nodes are: /Relu, /Relu_1, /Relu_2"#),
        "{e}"
    );
}

/// The automatic ring: exactly the widest value's bits when every truncation runs in a garbled
/// circuit (worst-case ranges are sound), 8 more over calibrated ranges (`--range-margin-bits`),
/// 16 more for LeakyReLU's product, and 40 bits of headroom (at most 61) when a local truncation
/// remains (Circa needs none of its own, but every Circa layer here is followed by one).
#[test]
fn the_ring_has_headroom_only_where_local_truncations_need_it() {
    let circa = Options { activation: veil_passes::Activation::Circa, ..Options::default() };
    let x = veil_ir::npy::read_npy(&root().join("models/inputs/mlp.npy")).unwrap();
    let calibrated = Options { calibration: vec![x], ..Options::default() };
    let margin3 = Options { range_margin_bits: 3, ..calibrated.clone() };
    let cases: [(&str, Options, u32); 6] = [
        ("mlp", Options::default(), 0),
        ("mlp", calibrated, 8),
        ("mlp", margin3, 3),
        ("activations", Options::default(), 16),
        ("mlp", circa, 40),
        ("digits_poly", Options::default(), 40),
    ];
    for (name, opts, headroom) in cases {
        let activation = opts.activation;
        let veil_compiler::Compiled { graph: g, runs, .. } = compile_bundled(name, opts).unwrap();
        let note = runs.iter().flat_map(|r| &r.report.notes).find(|n| n.contains("widest value needs")).unwrap();
        let need: u32 = note.split("widest value needs ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        let ring = g.ring_bits.unwrap() as u32;
        assert_eq!(ring, (need + headroom).min(61), "{name} ({activation:?}): {note}");
    }
}

/// A ring given with `--ring-bits` must hold LeakyReLU's product with its 16-bit slope, as the
/// automatic ring does: every ring the compiler accepts computes `leaky_relu(x)` (slope 1.5) to
/// within rounding, and every narrower one is refused naming the node. (Narrower rings used to
/// compile and wrap the product; with the slope itself beyond the ring the simulator panicked.)
#[test]
fn every_ring_the_compiler_accepts_holds_leaky_relu_products() {
    use veil_ir::{Graph, Op, Tensor, TensorType};
    let graph = || {
        let mut g = Graph::new("leaky");
        let x = g.add_input("x", TensorType::f32(vec![1, 4]));
        let y = g.add_node("leaky", "y", Op::LeakyRelu { alpha: 1.5 }, &[x]).unwrap();
        let out = g.add_node("reveal", "out", Op::Reveal, &[y]).unwrap();
        g.outputs.push(out);
        g
    };
    let x = Tensor::new(vec![1, 4], vec![-1.0, -0.5, 0.25, 1.0]).unwrap();
    let want = veil_ir::eval::run_float(&graph(), std::slice::from_ref(&x)).unwrap();
    let auto = compile(graph(), &CompileOptions::default()).unwrap().graph.ring_bits.unwrap();
    let mut narrowest = None;
    for bits in (8..=auto + 2).rev() {
        match compile(graph(), &Options { ring_bits: Some(bits), ..Options::default() }.into()) {
            Ok(veil_compiler::Compiled { graph: g, .. }) => {
                assert!(narrowest.is_none(), "--ring-bits {bits} compiled below a refused ring");
                let got = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap();
                let err = max_rel_error(&got.outputs[0], &want[0], 1.0);
                assert!(err < 1e-3, "--ring-bits {bits}: {:?} against {:?}", got.outputs[0].data, want[0].data);
            }
            Err(e) => {
                narrowest.get_or_insert(bits + 1);
                assert!(e.is_user_error(), "--ring-bits {bits}: {e}");
                let msg = e.to_string();
                // The values themselves need 14 bits (|x| ≤ 1 at 12 fractional bits, |y| ≤ 1.5).
                if bits >= 14 {
                    assert!(msg.contains("node \"leaky\" (LeakyRelu, slope 1.5) needs 30 bits"), "{msg}");
                }
            }
        }
    }
    assert_eq!(narrowest, Some(auto), "the automatic ring is the narrowest that holds the product");
}

/// `assign_protocols` runs a classifier head's offline correlation by OT (a few small messages
/// against whole ciphertexts) and a large first layer by HE, and moves a mid-sized layer to HE
/// when bandwidth gets scarce.
#[test]
fn assign_protocols_picks_ot_for_small_dense_layers_and_he_for_large_ones() {
    let ot_layers = |network| {
        let g = compile_bundled("mlp", Options { input_bound: 4.0, network, ..Options::default() }).unwrap().graph;
        g.over_ot.iter().map(|&n| g.nodes[n].name.clone()).collect::<Vec<_>>()
    };
    let lan = ot_layers(veil_passes::cost::Network::LAN);
    assert!(lan.contains(&"/fc3/Gemm".to_string()) && !lan.contains(&"/fc1/Gemm".to_string()), "{lan:?}");
    let wan = ot_layers(veil_passes::cost::Network::WAN);
    assert!(
        lan.contains(&"/fc2/Gemm".to_string()) && !wan.contains(&"/fc2/Gemm".to_string()),
        "lan {lan:?}, wan {wan:?}"
    );
}

/// `--ot-extension auto` prices the plan under both extensions: silent OT where the link is
/// slow (its bytes per OT are a bit against IKNP's 16–32), IKNP where it is fast (silent OT's
/// CPU dominates), and the choice is the cheaper prediction in each case.
#[test]
fn auto_ot_extension_picks_silent_ot_on_slow_links_and_iknp_on_fast_ones() {
    use veil_passes::cost::Network;
    let pick = |bandwidth_mbit_s: f64| {
        let network = Network { bandwidth_mbit_s, rtt_ms: 1.0 };
        // Garbled ReLUs: their input labels are the chosen-input batches priced here.
        let opts = Options {
            ot_extension: veil_passes::OtExtensionChoice::Auto,
            nonlinear: veil_passes::NonlinearChoice::Gc,
            network,
            ..Options::default()
        };
        let g = compile_bundled("lenet", opts).unwrap().graph;
        let (_, seconds) = veil_passes::ot_extension::choose(&g, &network);
        let [iknp, silent] = seconds.expect("lenet can be priced");
        (g.ot_extension, iknp.0 + iknp.1, silent.0 + silent.1)
    };
    let (slow, i, s) = pick(10.0);
    assert_eq!(slow, veil_ir::OtExtension::Silent, "10 Mbit/s: iknp {i} s, silent {s} s");
    assert!(s < i);
    let (fast, i, s) = pick(100_000.0);
    assert_eq!(fast, veil_ir::OtExtension::Iknp, "100 Gbit/s: iknp {i} s, silent {s} s");
    assert!(i <= s);
}
