//! Two-party execution in one process (client and server as tasks over real QUIC on loopback):
//! the runtime computes exactly what `veilc simulate` computes for plans whose activations are exact
//! circuits (ReLU, MaxPool, Clip, LeakyReLU; also two torchvision models of `models/zoo/` with
//! exact truncations and Beaver products), and stays
//! within the sound error bound of the float model for polynomial plans (whose local
//! truncations depend on the shares, as the simulator's do on its simulated masks).

mod common;

use common::two_party;
use veil_compiler::{CompileOptions, compile};
use veil_passes::{Options, Pass};
use veil_runtime::exec::Stats;
use veil_tests::{compile_bundled, root};

fn compiled(name: &str) -> (veil_ir::Graph, veil_ir::Tensor) {
    compiled_with(name, Options::default())
}

fn compiled_with(name: &str, opts: Options) -> (veil_ir::Graph, veil_ir::Tensor) {
    let x = veil_ir::npy::read_npy(&root().join("models/inputs").join(format!("{name}.npy"))).unwrap();
    let bound = x.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    (compile_bundled(name, Options { input_bound: bound, ..opts }).unwrap().graph, x)
}

/// The compiler's cost model predicts every layer's bytes each way (both phases) and online
/// rounds exactly.
fn check_predictions(name: &str, g: &veil_ir::Graph, measured: &Stats) {
    let predicted = veil_passes::cost::plan_cost(g).unwrap();
    assert_eq!(predicted.layers.len(), measured.layers.len(), "{name}");
    for (p, m) in predicted.layers.iter().zip(&measured.layers) {
        let got = (m.online.bytes_client_to_server, m.online.bytes_server_to_client, m.online.rounds);
        let want = (p.online.bytes_client_to_server, p.online.bytes_server_to_client, p.online.rounds);
        assert_eq!(got, want, "{name}: layer {} ({}) online (c→s, s→c, rounds)", m.name, m.protocol);
        let got = (m.offline.bytes_client_to_server, m.offline.bytes_server_to_client);
        let want = (p.offline.bytes_client_to_server, p.offline.bytes_server_to_client);
        assert_eq!(got, want, "{name}: layer {} ({}) offline (c→s, s→c)", m.name, m.protocol);
    }
}

fn has_local_truncation(g: &veil_ir::Graph) -> bool {
    g.live_nodes().any(|(_, n)| matches!(n.op, veil_ir::Op::Truncate { mode: veil_ir::TruncMode::Local, .. }))
}

#[test]
fn exact_relu_plans_equal_the_simulator_bit_for_bit() {
    for name in ["digits_relu", "mlp", "lenet", "resnet_small", "activations", "legacy_opset9", "torch_flatten"] {
        let (g, x) = compiled(name);
        assert!(!has_local_truncation(&g), "{name}: every truncation is fused into a circuit");
        let want = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
        let (got, cs, ss) = two_party(&g, &x);
        assert_eq!(got, want, "{name}: two-party output differs from the simulator");
        // Both parties report the same bytes per layer (each direction from its sender).
        for (a, b) in cs.layers.iter().zip(&ss.layers) {
            for (p, q) in [(a.offline, b.offline), (a.online, b.online)] {
                assert_eq!(
                    (p.bytes_client_to_server, p.bytes_server_to_client),
                    (q.bytes_client_to_server, q.bytes_server_to_client),
                    "{name}: {}",
                    a.name
                );
            }
        }
        assert!(cs.online.bytes_server_to_client > 0 && cs.offline.bytes_client_to_server > 0);
        check_predictions(name, &g, &cs);
    }
}

/// Plans with local truncations (after a polynomial, before an average pool, after Circa's
/// stochastic ReLU, whose sign faults also depend on the shares): within the sound error bound
/// of the float model, and the simulator's top-1.
#[test]
fn plans_with_local_truncations_stay_within_the_error_bound() {
    let circa = Options { activation: veil_passes::Activation::Circa, ..Options::default() };
    for (name, opts) in [("digits_poly", Options::default()), ("cifar_cnn", Options::default()), ("digits_relu", circa)]
    {
        let (g, x) = compiled_with(name, opts);
        assert!(has_local_truncation(&g), "{name}");
        let (got, cs, _) = two_party(&g, &x);
        check_predictions(name, &g, &cs);
        let until = Some(Pass::SubstituteActivations.into());
        let opts = CompileOptions { until, verify: false, ..CompileOptions::default() };
        let float = compile(&root().join("models").join(format!("{name}.onnx")), &opts).unwrap().graph;
        let reference = veil_ir::eval::run_float(&float, std::slice::from_ref(&x)).unwrap();
        let bound = x.data.iter().fold(0f32, |m, v| m.max(v.abs()));
        let b = veil_passes::error_bound::error_bounds(&g, bound as f64)[g.outputs[0].index()];
        for (i, (r, f)) in got[0].data.iter().zip(&reference[0].data).enumerate() {
            assert!(((r - f) as f64).abs() <= b, "{name} logit {i}: two-party {r}, float {f}, bound {b}");
        }
        let sim = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
        let top = |t: &veil_ir::Tensor| t.data.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert_eq!(top(&got[0]), top(&sim[0]), "{name}: top-1 differs from the simulator");
    }
}

/// Dense layers whose offline correlation comes from OT (Gilboa) instead of HE compute the same
/// result bit for bit, and the cost model predicts their bytes exactly; the hidden layers'
/// correlations run in the ring their outputs' readers need.
#[test]
fn ot_dense_correlations_equal_the_simulator_bit_for_bit() {
    let ot = Options { linear_offline: veil_passes::LinearChoice::Ot, ..Options::default() };
    for name in ["mlp", "digits_relu"] {
        let (g, x) = compiled_with(name, ot.clone());
        assert!(!g.over_ot.is_empty(), "{name}: every dense layer runs by OT");
        // The hidden layers' correlations in the bits their ReLUs read (`dense_ot_bits`).
        let ell = g.ring_bits.unwrap();
        assert!(g.over_ot.iter().any(|&n| veil_ir::schedule::dense_ot_bits(&g, n) < ell), "{name}");
        let want = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
        let (got, cs, _) = two_party(&g, &x);
        assert_eq!(got, want, "{name}: two-party output differs from the simulator");
        assert!(cs.layers.iter().any(|l| l.protocol == "OT (Gilboa)"), "{name}");
        check_predictions(name, &g, &cs);
    }
}

/// A server that encoded its HE layers' weights once (`veil server --he-cache`) runs sessions
/// with them, all or the ones that fit a smaller budget beside ones encoded in the session: the
/// same output bit for bit, the same bytes as predicted, and two sessions share the encoding.
#[test]
fn weights_encoded_once_per_server_equal_the_simulator_bit_for_bit() {
    use veil_runtime::proto::he_weights::EncodedWeights;
    let (g, x) = compiled("resnet_small");
    let want = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    let steps = veil_ir::schedule::lower(&g).unwrap();
    let (all, cov) = EncodedWeights::encode(&g, &steps, u64::MAX).unwrap();
    assert!(cov.all_layers >= 3 && cov.layers == cov.all_layers && cov.bytes == cov.all_bytes, "{cov:?}");
    for session in 0..2 {
        let (got, cs, _) = common::two_party_encoded(&g, &x, &all);
        assert_eq!(got, want, "session {session} with every layer encoded once");
        check_predictions("resnet_small", &g, &cs);
    }
    let (part, cov) = EncodedWeights::encode(&g, &steps, cov.all_bytes / 2).unwrap();
    assert!(cov.layers > 0 && cov.layers < cov.all_layers && cov.bytes <= cov.all_bytes / 2, "{cov:?}");
    let (got, cs, _) = common::two_party_encoded(&g, &x, &part);
    assert_eq!(got, want, "some layers encoded once, the others in the session");
    check_predictions("resnet_small", &g, &cs);
}

/// ReLUs and MaxPools over OT (`--nonlinear ot`) on QUIC with the real silent OT compute the
/// same result bit for bit, and the cost model predicts every layer's bytes exactly, the silent
/// OT's stream bytes included.
#[test]
fn relus_over_ot_equal_the_simulator_bit_for_bit() {
    let ot = Options { nonlinear: veil_passes::NonlinearChoice::Ot, ..Options::default() };
    let (g, x) = compiled_with("digits_relu", ot);
    let want = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    let (got, cs, _) = two_party(&g, &x);
    assert_eq!(got, want, "two-party output differs from the simulator");
    for p in ["OT (millionaire)", "OT (max tree)"] {
        assert!(cs.layers.iter().any(|l| l.protocol == p), "no {p}: {:?}", cs.layers);
    }
    check_predictions("digits_relu", &g, &cs);
}

/// A Clip to `[0, 6]` (ReLU6, opset 9's attributes) over OT on QUIC with the real silent OT:
/// two ReLUs over OT in turn, the same result bit for bit, every layer's bytes as predicted.
#[test]
fn relu6_over_ot_equals_the_simulator_bit_for_bit() {
    let ot = Options { nonlinear: veil_passes::NonlinearChoice::Ot, exact_truncation: true, ..Options::default() };
    let (g, x) = compiled_with("legacy_opset9", ot);
    let want = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    let (got, cs, _) = two_party(&g, &x);
    assert_eq!(got, want, "two-party output differs from the simulator");
    assert!(cs.layers.iter().any(|l| l.protocol == "OT (clip)"), "no Clip over OT: {:?}", cs.layers);
    check_predictions("legacy_opset9", &g, &cs);
}

/// The activations model over OT with every truncation exact (`--nonlinear ot
/// --exact-truncation`) on QUIC with the real silent OT: its LeakyReLU (two truncations over OT
/// and a select) and its Hardtanh (a Clip with `lo ≠ 0`, proven not to wrap) run over OT, the
/// same result bit for bit, every layer's bytes as predicted.
#[test]
fn leaky_relu_and_hardtanh_over_ot_equal_the_simulator_bit_for_bit() {
    let ot = Options { nonlinear: veil_passes::NonlinearChoice::Ot, exact_truncation: true, ..Options::default() };
    let (g, x) = compiled_with("activations", ot);
    let want = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    let (got, cs, _) = two_party(&g, &x);
    assert_eq!(got, want, "two-party output differs from the simulator");
    for p in ["OT (leaky ReLU)", "OT (clip)"] {
        assert!(cs.layers.iter().any(|l| l.protocol == p), "no {p}: {:?}", cs.layers);
    }
    check_predictions("activations", &g, &cs);
}

/// Circa's stochastic ReLUs over OT (`--activation circa --nonlinear ot`) on QUIC with the real
/// silent OT: every layer's bytes as the cost model predicts (the silent OT's stream bytes
/// included), and the output within the sound error bound of the float model with the
/// simulator's top-1 (the sign test errs on share-dependent values, as the garbled Circa does).
#[test]
fn circa_over_ot_stays_within_the_error_bound_as_predicted() {
    let opts = Options {
        activation: veil_passes::Activation::Circa,
        nonlinear: veil_passes::NonlinearChoice::Ot,
        ..Options::default()
    };
    let (g, x) = compiled_with("digits_relu", opts);
    let (got, cs, _) = two_party(&g, &x);
    assert!(cs.layers.iter().any(|l| l.protocol == "OT (Circa)"), "{:?}", cs.layers);
    assert!(!cs.layers.iter().any(|l| l.protocol == "GC+OT (Circa)"), "{:?}", cs.layers);
    check_predictions("digits_relu", &g, &cs);
    let until = Some(Pass::SubstituteActivations.into());
    let copts = CompileOptions { until, verify: false, ..CompileOptions::default() };
    let float = compile(&root().join("models").join("digits_relu.onnx"), &copts).unwrap().graph;
    let reference = veil_ir::eval::run_float(&float, std::slice::from_ref(&x)).unwrap();
    let bound = x.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    let b = veil_passes::error_bound::error_bounds(&g, bound as f64)[g.outputs[0].index()];
    for (i, (r, f)) in got[0].data.iter().zip(&reference[0].data).enumerate() {
        assert!(((r - f) as f64).abs() <= b, "logit {i}: two-party {r}, float {f}, bound {b}");
    }
    let sim = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    let top = |t: &veil_ir::Tensor| t.data.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
    assert_eq!(top(&got[0]), top(&sim[0]), "top-1 differs from the simulator");
}

/// Silent OT for the chosen-input batches (`--ot-extension silent`) on QUIC: the garbled
/// circuits' input labels (correlated) and the dense layers' Gilboa products (random) from
/// derandomised silent OTs give the same result bit for bit, and every layer's bytes are as the
/// cost model predicts, the silent OT's stream bytes and the derandomising frames included.
#[test]
fn silent_ot_extension_plans_equal_the_simulator_bit_for_bit() {
    let opts = Options {
        ot_extension: veil_passes::OtExtensionChoice::Silent,
        linear_offline: veil_passes::LinearChoice::Ot,
        ..Options::default()
    };
    let (g, x) = compiled_with("digits_relu", opts);
    assert_eq!(g.ot_extension, veil_ir::OtExtension::Silent);
    let want = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    let (got, cs, _) = two_party(&g, &x);
    assert_eq!(got, want, "two-party output differs from the simulator");
    for p in ["GC", "OT (Gilboa)"] {
        assert!(cs.layers.iter().any(|l| l.protocol == p), "no {p}: {:?}", cs.layers);
    }
    check_predictions("digits_relu", &g, &cs);
}

/// Three-halves garbling (`--garbling three-halves`) on QUIC with the real OT: the same result
/// bit for bit (a plan with a MaxPool, so both circuit shapes garble), and every layer's bytes
/// as the cost model predicts, the three-halves table frames included.
#[test]
fn three_halves_plans_equal_the_simulator_bit_for_bit() {
    let three = Options { garbling: veil_passes::GarblingChoice::ThreeHalves, ..Options::default() };
    let (g, x) = compiled_with("lenet", three);
    assert_eq!(g.garbling, veil_ir::Garbling::ThreeHalves);
    let want = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    let (got, cs, _) = two_party(&g, &x);
    assert_eq!(got, want, "two-party output differs from the simulator");
    assert!(cs.layers.iter().any(|l| l.protocol == "GC"), "{:?}", cs.layers);
    check_predictions("lenet", &g, &cs);
}

/// Movement after client-side post-processing (a softmax's probabilities reshaped, as
/// `Unsqueeze`/`Flatten` after `Softmax` export): the client and the simulator reshape the
/// floats. (The simulator returned an empty tensor and the client panicked; found by the
/// `onnx_compile` fuzz target.)
#[test]
fn a_reshape_after_softmax_runs_on_the_probabilities() {
    use veil_ir::{Domain, Graph, Op, Tensor, TensorType};
    let mut g = Graph::new("soft");
    let x = g.add_input("x", TensorType::f32(vec![1, 4]));
    let w = g.add_const("w", vec![3, 4], Domain::Server, (0..12).map(|i| (i as f32 - 5.5) / 4.0).collect());
    let h = g.add_node("fc", "h", Op::Dense { weight: w, bias: None }, &[x]).unwrap();
    let r = g.add_node("reveal", "r", Op::Reveal, &[h]).unwrap();
    let p = g.add_node("softmax", "p", Op::Softmax { axis: 1, coerce_2d: false }, &[r]).unwrap();
    let y = g.add_node("unsqueeze", "y", Op::Reshape { shape: vec![1, 1, 3] }, &[p]).unwrap();
    g.outputs.push(y);
    let x = Tensor::new(vec![1, 4], vec![0.5, -0.25, 1.0, 0.75]).unwrap();
    let float = veil_ir::eval::run_float(&g, std::slice::from_ref(&x)).unwrap();
    let g = compile(g, &CompileOptions::default()).unwrap().graph;
    let want = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    assert_eq!(want[0].shape, [1, 1, 3]);
    let err = veil_tests::max_rel_error(&want[0], &float[0], 1.0);
    assert!(err < 1e-2, "simulated {:?} against float {:?}", want[0].data, float[0].data);
    let (got, _, _) = two_party(&g, &x);
    assert_eq!(got, want, "two-party output differs from the simulator");
}

/// A model that normalises its input per channel, `(x − mean) / std`, before a padded
/// convolution (as exporters write it when the preprocessing is part of the model): the
/// normalisation moves into the layer, the plan runs, and the two parties compute exactly what
/// the simulator computes. (The secret scale on the client's input had no protocol, found by
/// the `onnx_compile` fuzz target.)
#[test]
fn an_input_normalisation_runs_and_equals_the_simulator_bit_for_bit() {
    use veil_ir::{Domain, Graph, Op, Tensor, TensorType, Window2d};
    let mut g = Graph::new("norm");
    let x = g.add_input("x", TensorType::f32(vec![1, 2, 6, 6]));
    let shift = g.add_const("shift", vec![1, 2, 1, 1], Domain::Server, vec![-0.485 / 0.229, -0.456 / 0.224]);
    let scale = g.add_const("scale", vec![1, 2, 1, 1], Domain::Server, vec![1.0 / 0.229, 1.0 / 0.224]);
    let h = g.add_node("norm", "h", Op::Affine { scale: Some(scale), shift: Some(shift) }, &[x]).unwrap();
    let w = g.add_const(
        "w",
        vec![3, 2, 3, 3],
        Domain::Server,
        (0..54).map(|i| ((i * 7) % 11) as f32 / 20.0 - 0.25).collect(),
    );
    let window = Window2d { kernel: [3, 3], strides: [1, 1], pads: [1; 4], dilations: [1, 1] };
    let c = g.add_node("conv", "c", Op::Conv2d { weight: w, bias: None, window, groups: 1 }, &[h]).unwrap();
    let r = g.add_node("relu", "r", Op::Relu, &[c]).unwrap();
    let y = g.add_node("reveal", "y", Op::Reveal, &[r]).unwrap();
    g.outputs.push(y);
    let x = Tensor::new(vec![1, 2, 6, 6], (0..72).map(|i| ((i * 13) % 17) as f32 / 17.0).collect()).unwrap();
    let float = veil_ir::eval::run_float(&g, std::slice::from_ref(&x)).unwrap();
    let g = compile(g, &CompileOptions::default()).unwrap().graph;
    let want = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    let err = veil_tests::max_rel_error(&want[0], &float[0], 1.0);
    assert!(err < 1e-2, "simulator against float: {err}");
    let (got, cs, _) = two_party(&g, &x);
    assert_eq!(got, want, "two-party output differs from the simulator");
    check_predictions("norm", &g, &cs);
}

/// A zoo model (`models/zoo/<name>/`, made by `models/zoo/make_zoo.py`) compiled as a user
/// would with the calibrated automatic precision (`--max-error` 1 %, the committed calibration
/// inputs), and its checked input.
fn zoo(name: &str, exporter: &str) -> (veil_ir::Graph, veil_ir::Tensor, veil_passes::precision::Choice) {
    use veil_ir::npy::{NpzArray, read_npy, read_npz};
    let dir = root().join("models/zoo").join(name);
    let x = read_npy(&dir.join("input.npy")).unwrap();
    let NpzArray::Float(calib) = read_npz(&dir.join("calib.npz"), "x").unwrap() else { panic!("float inputs") };
    let per = calib.data.len() / calib.shape[0];
    let mut calibration: Vec<veil_ir::Tensor> =
        calib.data.chunks(per).map(|c| veil_ir::Tensor::new(x.shape.clone(), c.to_vec()).unwrap()).collect();
    calibration.push(x.clone());
    // Exact truncations: the squeeze-excite products' truncations cannot fuse into a circuit,
    // and local ones would make the output depend on the shares (and widen the ring for their
    // wrap margin).
    let passes = Options { calibration, exact_truncation: true, ..Options::default() };
    let opts = CompileOptions { passes, max_error: Some(0.01), ..CompileOptions::default() };
    let c = compile(&dir.join(format!("{exporter}.onnx")), &opts).unwrap();
    (c.graph, x, c.precision.expect("searched"))
}

/// Runs zoo model `name` from `exporter` between the parties: exactly what the simulator
/// computes, every layer's bytes and rounds as the cost model predicts, and onnxruntime's top-1.
fn zoo_two_party(name: &str, exporter: &str) -> veil_passes::precision::Choice {
    let (g, x, precision) = zoo(name, exporter);
    assert!(!has_local_truncation(&g), "{name}");
    let want = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    let (got, cs, _) = two_party(&g, &x);
    assert_eq!(got, want, "{name} ({exporter}): two-party output differs from the simulator");
    check_predictions(name, &g, &cs);
    let ort =
        veil_ir::npy::read_npy(&root().join("models/zoo").join(name).join(format!("{exporter}_ort.npy"))).unwrap();
    let top = |v: &[f32]| (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap();
    assert_eq!(top(&got[0].data), top(&ort.data), "{name} ({exporter}): top-1 differs from onnxruntime's");
    precision
}

/// torchvision's MobileNetV3-small, width-reduced, from the dynamo exporter: HardSwish and
/// HardSigmoid circuits and the squeeze-excite products of two shared values (Beaver).
#[test]
fn zoo_mobilenet_v3_small_equals_the_simulator_bit_for_bit() {
    let c = zoo_two_party("mobilenet_v3_small", "dynamo");
    // The precision search gave the layers that set the ring their own, lower F: the bit-exact
    // run covers a plan with per-layer scales.
    assert!(!c.layer_frac_bits.is_empty() && c.ring_bits < c.global_ring_bits, "{c}");
}

/// torchvision's ResNet-18 layout, width-reduced, from the TorchScript exporter.
#[test]
fn zoo_resnet18_equals_the_simulator_bit_for_bit() {
    zoo_two_party("resnet18", "torchscript");
}

/// `F.relu(F.max_pool2d(conv(x)))` over OT: the compiler moves the ReLU before the pool (the
/// same values), so the ReLU takes the convolution's truncation and the pool runs as a max tree
/// over OT on non-negative values; on QUIC with the real silent OT the result equals the
/// simulator's bit for bit and every layer's bytes are as predicted.
#[test]
fn a_relu_after_a_maxpool_runs_over_ot_before_it_bit_for_bit() {
    use veil_ir::{Domain, Graph, Op, TensorType, Window2d};
    let mut g = Graph::new("pool_relu");
    let x = g.add_input("x", TensorType::f32(vec![1, 2, 6, 6]));
    let w = g.add_const("w", vec![3, 2, 3, 3], Domain::Server, (0..54).map(|i| (i as f32 - 27.0) / 30.0).collect());
    let window = Window2d { kernel: [3, 3], strides: [1, 1], pads: [1; 4], dilations: [1, 1] };
    let c = g.add_node("conv", "c", Op::Conv2d { weight: w, bias: None, window, groups: 1 }, &[x]).unwrap();
    let pool = Window2d { kernel: [3, 3], strides: [2, 2], pads: [1; 4], dilations: [1, 1] };
    let p = g.add_node("pool", "p", Op::MaxPool { window: pool }, &[c]).unwrap();
    let r = g.add_node("relu", "r", Op::Relu, &[p]).unwrap();
    let out = g.add_node("reveal", "out", Op::Reveal, &[r]).unwrap();
    g.outputs.push(out);
    let input =
        veil_ir::Tensor::new(vec![1, 2, 6, 6], (0..72).map(|i| ((i * 37) % 17) as f32 / 8.0 - 1.0).collect()).unwrap();
    let opts =
        Options { nonlinear: veil_passes::NonlinearChoice::Ot, calibration: vec![input.clone()], ..Options::default() };
    veil_passes::run_pipeline(&mut g, &opts, None, true).unwrap();
    let want = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&input), 0).unwrap().outputs;
    let (got, cs, _) = two_party(&g, &input);
    assert_eq!(got, want, "two-party output differs from the simulator");
    for p in ["OT (millionaire)", "OT (max tree)"] {
        assert!(cs.layers.iter().any(|l| l.protocol == p), "no {p}: {:?}", cs.layers);
    }
    check_predictions("pool_relu", &g, &cs);
}
