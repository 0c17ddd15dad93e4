//! `--stochastic-truncation`: the truncation fused into each garbled ReLU and MaxPool rounds
//! stochastically, each party shifting its own share (`TruncMode::Stochastic`). Checked here:
//! the plan says so in the text IR and reads back, the simulator's rounding varies with its
//! masks and stays within the error bound, the cost model counts fewer AND gates and online
//! bytes, and the verifier and compiler refuse what the runtime could not run. The two parties'
//! rounding rates are the runtime's memory tests'.

use veil_ir::{Graph, Op, Tensor, TruncMode};
use veil_passes::{NonlinearChoice, Options};
use veil_tests::{compile_bundled, root};

fn options(stochastic_truncation: bool) -> Options {
    Options { nonlinear: NonlinearChoice::Gc, stochastic_truncation, ..Options::default() }
}

fn digits(opts: Options) -> (Graph, Tensor) {
    let x = veil_ir::npy::read_npy(&root().join("models/inputs/digits_relu.npy")).unwrap();
    let bound = x.data.iter().fold(1f32, |m, v| m.max(v.abs()));
    (compile_bundled("digits_relu", Options { input_bound: bound, ..opts }).unwrap().graph, x)
}

fn stochastic(g: &Graph) -> Vec<veil_ir::NodeId> {
    g.live_nodes()
        .filter(|(_, n)| matches!(n.op, Op::Truncate { mode: TruncMode::Stochastic, .. }))
        .map(|(id, _)| id)
        .collect()
}

#[test]
fn the_plan_reads_back_and_the_simulator_rounds_by_its_masks_within_the_bound() {
    let (exact, x) = digits(options(false));
    let (g, _) = digits(options(true));
    assert!(stochastic(&exact).is_empty());
    // Every truncation before a garbled ReLU or MaxPool: the digits plan's three ReLUs.
    let fused: Vec<_> = exact
        .live_nodes()
        .filter(|(_, n)| matches!(n.op, Op::Truncate { mode: TruncMode::Exact, .. }))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(stochastic(&g), fused, "each fused exact truncation becomes stochastic");
    assert!(fused.len() >= 3);

    let text = veil_ir::print::to_text(&g);
    assert!(text.contains("mode=stochastic"), "{text}");
    let back = veil_ir::print::parse_with_weights(&text, &g.consts).unwrap();
    assert_eq!(veil_ir::print::to_text(&back), text, "the text IR reads back");

    let want = veil_ir::eval::run_fixed(&exact, std::slice::from_ref(&x), 0).unwrap().outputs;
    let runs: Vec<_> =
        (0..8).map(|seed| veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), seed).unwrap().outputs).collect();
    assert!(runs.iter().any(|r| r != &runs[0]), "the rounding depends on the simulated masks");
    let bound = veil_passes::error_bound::error_bounds(&g, g.input_bound.unwrap() as f64)[g.outputs[0].index()];
    for r in &runs {
        for (a, b) in r[0].data.iter().zip(&want[0].data) {
            assert!(((a - b) as f64).abs() <= 2.0 * bound, "{a} against the exact plan's {b}, bound {bound:e}");
        }
    }
}

#[test]
fn the_cost_model_counts_the_shifted_bits_out_of_the_circuits() {
    let (exact, _) = digits(options(false));
    let (g, _) = digits(options(true));
    let (a, b) = (veil_passes::cost::plan_cost(&exact).unwrap(), veil_passes::cost::plan_cost(&g).unwrap());
    // Per element of each ReLU, the circuit reads `bits` fewer bits of each share: that many
    // fewer server labels online and at least that many fewer AND gates.
    let mut labels = 0u64;
    for id in stochastic(&g) {
        let Op::Truncate { bits, .. } = g.nodes[id].op else { unreachable!() };
        labels += u64::from(bits) * g.values[g.nodes[id].output].ty.len() as u64;
    }
    assert_eq!(a.online.bytes_server_to_client - b.online.bytes_server_to_client, 16 * labels);
    let ands = |g: &Graph| veil_ir::schedule::lower(g).unwrap().iter().map(|s| s.and_gates(g)).sum::<u64>();
    let (x, y) = (ands(&exact), ands(&g));
    assert!(x >= y + labels, "{x} against {y} AND gates");
}

#[test]
fn plans_the_runtime_could_not_run_are_refused() {
    let (g, _) = digits(options(true));
    let t = stochastic(&g)[0];
    let relu = g.users(g.nodes[t].output)[0];
    // Its ReLU moved over OT, which reads no shifted shares.
    let mut h = g.clone();
    h.narrow_bits.retain(|&(n, _)| n != relu);
    h.over_ot.push(relu);
    assert!(veil_ir::verify(&h).is_err());
    // A width that leaves fewer than three bits after the shift.
    let Op::Truncate { bits, .. } = g.nodes[t].op else { unreachable!() };
    let mut h = g.clone();
    h.narrow_bits.retain(|&(n, _)| n != relu);
    h.narrow_bits.push((relu, bits + 2));
    let err = veil_ir::verify(&h).unwrap_err().to_string();
    assert!(err.contains("stochastic truncation"), "{err}");

    let both = Options { exact_truncation: true, ..options(true) };
    let err = compile_bundled("digits_relu", both).unwrap_err().to_string();
    assert!(err.contains("--exact-truncation and --stochastic-truncation"), "{err}");
}
