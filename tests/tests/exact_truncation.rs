//! `--exact-truncation` (issue 14): a local share truncation is off by one with a probability
//! that depends on the secret value (its low bits), and the revealed output carries that
//! error, so two servers whose models have the same fixed-point output can be told apart by a
//! client from one query. With the option every truncation runs exactly in a garbled circuit,
//! Circa is refused, and the output is the simulator's, bit for bit, whatever the masks.

mod common;

use common::two_party;
use veil_compiler::{CompileOptions, compile};
use veil_ir::ring::Ring;
use veil_ir::schedule::{Kind, lower};
use veil_ir::{Domain, Graph, Op, Tensor, TensorType, TruncMode};
use veil_passes::Options;
use veil_tests::{bundled_models, compile_bundled, root};

/// The default options with the non-linear layers in garbled circuits (`--nonlinear gc`; over OT
/// the truncations are tested by the runtime's `trunc_ot` tests and the memory tests).
fn gc() -> Options {
    Options { nonlinear: veil_passes::NonlinearChoice::Gc, ..Options::default() }
}

/// [`gc`] with `--exact-truncation`.
fn exact() -> Options {
    Options { exact_truncation: true, ..gc() }
}

fn compile_model(name: &str, opts: &Options) -> (Graph, Tensor) {
    let x = veil_ir::npy::read_npy(&root().join("models/inputs").join(format!("{name}.npy"))).unwrap();
    let bound = x.data.iter().fold(1f32, |m, v| m.max(v.abs()));
    let g = compile_bundled(name, Options { input_bound: bound, ..opts.clone() })
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .graph;
    (g, x)
}

/// The nodes on some path to an output.
fn reaching_outputs(g: &Graph) -> Vec<bool> {
    let mut on = vec![false; g.nodes.len()];
    let mut todo: Vec<veil_ir::ValueId> = g.outputs.clone();
    while let Some(v) = todo.pop() {
        if let veil_ir::Def::Node(n) = g.values[v].def
            && !on[n.index()]
        {
            on[n.index()] = true;
            todo.extend(g.nodes[n].inputs.iter().copied());
        }
    }
    on
}

/// Steps of the lowered plan that make the output depend on how values were split into shares:
/// a local truncation or a Circa sign test, on a path to an output.
fn share_dependent_steps(g: &Graph) -> Vec<String> {
    let on = reaching_outputs(g);
    lower(g)
        .unwrap()
        .iter()
        .filter(|s| on[s.node.index()])
        .filter(|s| match s.kind {
            Kind::Circa { .. } | Kind::CircaOt { .. } => true,
            Kind::Local => matches!(g.nodes[s.node].op, Op::Truncate { mode: TruncMode::Local, .. }),
            _ => false,
        })
        .map(|s| format!("{} ({})", g.nodes[s.node].name, s.protocol()))
        .collect()
}

#[test]
fn with_exact_truncation_no_output_depends_on_the_shares() {
    let mut had_local = Vec::new();
    for name in bundled_models() {
        let (plain, x) = compile_model(&name, &gc());
        if !share_dependent_steps(&plain).is_empty() {
            had_local.push(name.clone());
        }
        let (g, _) = compile_model(&name, &exact());
        assert_eq!(share_dependent_steps(&g), Vec::<String>::new(), "{name}");
        if !had_local.contains(&name) {
            let text = veil_ir::print::to_text;
            assert_eq!(text(&g), text(&plain), "{name}: a plan without local truncation changed");
        }
        // Deterministic: two different simulated sharings give the same output, bit for bit.
        let a = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 1).unwrap();
        let b = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 2).unwrap();
        assert_eq!(a.outputs, b.outputs, "{name}");
    }
    // The check has something to find: these models truncate locally by default.
    for name in ["digits_poly", "cifar_cnn"] {
        assert!(had_local.iter().any(|m| m == name), "{name} no longer truncates locally by default: {had_local:?}");
    }
}

#[test]
fn exact_truncation_refuses_circa_and_names_the_layer() {
    let opts = Options { activation: veil_passes::Activation::Circa, ..exact() };
    let e = compile_bundled("digits_relu", opts).unwrap_err();
    assert!(e.is_user_error(), "{e}");
    let text = e.to_string();
    assert!(text.contains("--exact-truncation") && text.contains("node \""), "{text}");
}

/// A model with exactly one truncation, between two dense layers: `x → W1·x + b1 → (truncate)
/// → W2·t + b2 → reveal`, all weights positive so a carry always shows in the output.
fn two_dense() -> (Graph, Tensor) {
    let mut g = Graph::new("two_dense");
    let x = g.add_input("x", TensorType::f32(vec![1, 4]));
    let w1 = g.add_const("w1", vec![4, 4], Domain::Server, (0..16).map(|i| 0.05 + i as f32 / 40.0).collect());
    let b1 = g.add_const("b1", vec![4], Domain::Server, vec![0.1, -0.2, 0.3, 0.05]);
    let w2 = g.add_const("w2", vec![2, 4], Domain::Server, vec![0.5, 0.25, 0.75, 1.0, 1.0, 0.5, 0.25, 0.125]);
    let b2 = g.add_const("b2", vec![2], Domain::Server, vec![0.0, 0.5]);
    let h = g.add_node("fc1", "h", Op::Dense { weight: w1, bias: Some(b1) }, &[x]).unwrap();
    let y = g.add_node("fc2", "y", Op::Dense { weight: w2, bias: Some(b2) }, &[h]).unwrap();
    let out = g.add_node("reveal", "out", Op::Reveal, &[y]).unwrap();
    g.outputs.push(out);
    (g, Tensor::new(vec![1, 4], vec![0.5, -0.25, 0.75, 0.125]).unwrap())
}

/// Two servers' first-layer biases, `(b0, b1)`: for this input the first layer's values
/// `y = W1·x + b` have the same `⌊y / 2^k⌋` under both (so the exact output is the same) but
/// low bits 0 under `b0` and 2^k − 1 under `b1` (so a local truncation never carries under
/// `b0` and almost always does under `b1`).
fn same_output_biases(g: &Graph, x: &Tensor) -> (Vec<i64>, Vec<i64>) {
    let ring = Ring::new(g.ring_bits.unwrap());
    let xq: Vec<i64> = veil_ir::eval::encode_inputs(g, std::slice::from_ref(x)).unwrap()[0]
        .1
        .iter()
        .map(|&v| ring.to_signed(v))
        .collect();
    let (_, fc1) = g.live_nodes().find(|(_, n)| n.name == "fc1").unwrap();
    let Op::Dense { weight, bias: Some(bias) } = fc1.op else { panic!("fc1 is a dense layer with a bias") };
    let (_, t) = g.live_nodes().find(|(_, n)| matches!(n.op, Op::Truncate { .. })).expect("one truncation");
    let Op::Truncate { bits, .. } = t.op else { unreachable!() };
    let (w, b) = (&g.consts[weight].qdata, &g.consts[bias].qdata);
    let unit = 1i64 << bits;
    let mut low = Vec::new();
    let mut high = Vec::new();
    for (j, &bj) in b.iter().enumerate() {
        let y: i64 = (0..xq.len()).map(|i| w[j * xq.len() + i] * xq[i]).sum::<i64>() + bj;
        let rho = y.rem_euclid(unit);
        low.push(bj - rho);
        high.push(bj - rho + unit - 1);
    }
    (low, high)
}

fn with_bias(g: &Graph, b: &[i64]) -> Graph {
    let mut g = g.clone();
    let (_, fc1) = g.live_nodes().find(|(_, n)| n.name == "fc1").unwrap();
    let Op::Dense { bias: Some(bias), .. } = fc1.op else { unreachable!() };
    g.consts[bias].qdata = b.to_vec();
    g
}

/// The distinguishing attack: one query to each of two servers whose models give the same
/// exact output. With local truncation (the default) the outputs differ, so the client learns
/// which server it talks to (here: the low bits of the secret first-layer values); with
/// `--exact-truncation` they are identical and equal to the simulator's.
#[test]
fn one_query_tells_apart_two_models_with_the_same_output_unless_truncation_is_exact() {
    for exact_truncation in [false, true] {
        let (g, x) = two_dense();
        let opts = Options { exact_truncation, nonlinear: veil_passes::NonlinearChoice::Gc, ..Options::default() };
        let g = compile(g, &CompileOptions::from(opts)).unwrap().graph;
        let local = share_dependent_steps(&g);
        assert_eq!(local.is_empty(), exact_truncation, "{local:?}");
        let (b0, b1) = same_output_biases(&g, &x);
        let (g0, g1) = (with_bias(&g, &b0), with_bias(&g, &b1));
        let want = veil_ir::eval::run_fixed(&g0, std::slice::from_ref(&x), 0).unwrap().outputs;
        if exact_truncation {
            assert_eq!(veil_ir::eval::run_fixed(&g1, std::slice::from_ref(&x), 0).unwrap().outputs, want);
        }
        let (out0, _, _) = two_party(&g0, &x);
        let (out1, stats, _) = two_party(&g1, &x);
        if exact_truncation {
            assert_eq!(out0, want, "exact truncation: the simulator's output");
            assert_eq!(out1, want, "exact truncation: the same output for both models");
            let names: Vec<_> = stats.layers.iter().map(|l| format!("{} ({})", l.name, l.protocol)).collect();
            assert!(names.iter().any(|l| l.ends_with("/truncate (GC)")), "the truncation runs in a circuit: {names:?}");
        } else {
            assert_ne!(out0, out1, "local truncation: the two models are told apart from one output each");
        }
    }
}

/// A bundled model that truncates locally by default, compiled with `--exact-truncation`:
/// the two-party output equals `veilc simulate`'s bit for bit, and the cost model predicts
/// every layer's bytes exactly (the standalone truncation circuits included).
#[test]
fn exact_truncation_plans_equal_the_simulator_bit_for_bit() {
    let (g, x) = compile_model("digits_poly", &exact());
    let standalone = g
        .live_nodes()
        .filter(|(_, n)| {
            matches!(n.op, Op::Truncate { mode: TruncMode::Exact, .. })
                && !veil_ir::schedule::fuses_into_reader(&g, n.output)
        })
        .count();
    assert!(standalone > 0, "{}", veil_ir::print::to_text(&g));
    let want = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
    let (got, stats, _) = two_party(&g, &x);
    assert_eq!(got, want);
    let predicted = veil_passes::cost::plan_cost(&g).unwrap();
    assert_eq!(predicted.layers.len(), stats.layers.len());
    for (p, m) in predicted.layers.iter().zip(&stats.layers) {
        for (phase, pt, mt) in [("offline", &p.offline, &m.offline), ("online", &p.online, &m.online)] {
            assert_eq!(
                (pt.bytes_client_to_server, pt.bytes_server_to_client),
                (mt.bytes_client_to_server, mt.bytes_server_to_client),
                "layer {} ({}) {phase}",
                m.name,
                m.protocol
            );
        }
        assert_eq!(p.online.rounds, m.online.rounds, "layer {} online rounds", m.name);
    }
    // The summary counts the standalone circuits' gates.
    let summary = veil_compiler::summarize(&g);
    let rows: Vec<_> = summary.layers.iter().filter(|l| l.op == "truncate" && l.protocol == "GC").collect();
    assert_eq!(rows.len(), standalone);
    assert!(rows.iter().all(|r| r.and_gates > 0));
}
