//! The text-IR parser against the printer: for every bundled model after every pass,
//! `parse(to_text(g))` prints back to the same text and equals `g` on everything the text
//! shows (the weights come from the side input); mutated texts give errors, never panics.

use veil_compiler::{CompileOptions, compile};
use veil_ir::print::{ParseError, parse, parse_with_weights, to_text, to_text_with_values};
use veil_ir::{Def, Graph};
use veil_passes::{Options, Pass, Stage};
use veil_tests::{bundled_models, root};

/// What the text shows of `g`: everything but dead nodes and values and node numbering (a node
/// is named by its body position).
fn live_view(g: &Graph) -> String {
    let pos = |n: veil_ir::NodeId| g.body.iter().position(|&b| b == n);
    let mut s = format!("{:?} {:?} {:?}\n", g.name, g.ring_bits, g.input_bound);
    for (c, k) in g.consts.iter() {
        s += &format!("@{} {k:?}\n", c.index());
    }
    for &v in &g.inputs {
        s += &format!("input {v:?} {:?}\n", g.values[v]);
    }
    for (i, (id, n)) in g.live_nodes().enumerate() {
        let out = &g.values[n.output];
        assert_eq!(out.def, Def::Node(id));
        s += &format!(
            "{i}: {:?} {:?} {:?} -> {:?} {:?} {} {:?}\n",
            n.name, n.op, n.inputs, n.output, out.name, out.ty, out.domain
        );
    }
    let mut ot: Vec<_> = g.over_ot.iter().map(|&n| pos(n)).collect();
    ot.sort();
    s += &format!("outputs {:?} ot {ot:?}\n", g.outputs);
    s
}

fn check(name: &str, stage: Stage, g: &Graph) {
    let text = to_text(g);
    let h = parse_with_weights(&text, &g.consts).unwrap_or_else(|e| panic!("{name}@{stage}: {e}\n{text}"));
    assert_eq!(to_text(&h), text, "{name}@{stage}");
    assert_eq!(live_view(&h), live_view(g), "{name}@{stage}");
    // With the values inline (the file tests' form) the constants come back whole.
    let whole = parse(&to_text_with_values(g)).unwrap_or_else(|e| panic!("{name}@{stage}: {e}"));
    assert_eq!(live_view(&whole), live_view(g), "{name}@{stage}");
    // Without the weights a float graph parses too (the constants have no values, like a plan
    // without its weights file); a quantized one lacks its constants' scales.
    match parse(&text) {
        Ok(bare) => {
            assert!(g.ring_bits.is_none(), "{name}@{stage}");
            assert!(bare.consts.iter().all(|(_, c)| c.data.is_empty() && c.qdata.is_empty()));
        }
        Err(e) => assert!(g.ring_bits.is_some() && e.to_string().contains("not quantized"), "{name}@{stage}: {e}"),
    }
}

#[test]
fn every_bundled_model_after_every_pass_round_trips() {
    for name in bundled_models() {
        let x = veil_ir::npy::read_npy(&root().join("models/inputs").join(format!("{name}.npy"))).unwrap();
        let bound = x.data.iter().fold(1f32, |m, v| m.max(v.abs()));
        let opts = Options { input_bound: bound, ..Options::default() };
        let path = root().join("models").join(format!("{name}.onnx"));
        let until = Some(Stage::Import);
        let mut g = compile(&path, &CompileOptions { until, ..CompileOptions::default() }).unwrap().graph;
        check(&name, Stage::Import, &g);
        for pass in Pass::ALL {
            pass.run(&mut g, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
            check(&name, pass.into(), &g);
        }
    }
}

/// A tiny deterministic generator (no seeding crate needed for a test this small).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

#[test]
fn mutated_texts_give_positioned_errors_never_panics() {
    let g = compile(&root().join("models/digits_relu.onnx"), &CompileOptions::default()).unwrap().graph;
    let text = to_text(&g);
    let lines = text.lines().count();
    let alphabet: Vec<char> = "%@\"=:,[]#\\ 0123456789abcxyz-.…\n".chars().collect();
    let mut rng = Lcg(15);
    let (mut refused, mut cases) = (0, 0);
    for _ in 0..3000 {
        let mut t: Vec<char> = text.chars().collect();
        for _ in 0..1 + rng.next(3) {
            // An earlier mutation may have truncated it all.
            if t.is_empty() {
                break;
            }
            let i = rng.next(t.len());
            match rng.next(4) {
                0 => {
                    t.remove(i);
                }
                1 => t.insert(i, alphabet[rng.next(alphabet.len())]),
                2 => t[i] = alphabet[rng.next(alphabet.len())],
                _ => t.truncate(i),
            }
        }
        let t: String = t.into_iter().collect();
        cases += 1;
        match parse(&t) {
            Ok(_) => {}
            Err(ParseError::Syntax { line, column, message }) => {
                refused += 1;
                assert!(!message.is_empty());
                assert!(line <= lines + 2 && column >= 1, "{line}:{column} for a {lines}-line text: {message}");
            }
            Err(ParseError::Invalid(_)) => refused += 1,
        }
    }
    // Most mutations break something; a test that never sees an error checks nothing.
    assert!(refused > cases / 2, "{refused} of {cases} mutated texts refused");
}

/// ReLUs and MaxPools over OT (`--nonlinear ot`) print `nonlinear=ot` and parse back into
/// `over_ot`; a MaxPool listed on an operand that may be negative (a difference could wrap) is
/// refused by the schedule, naming it, and any other `nonlinear=` value by the parser.
#[test]
fn relus_and_maxpools_over_ot_round_trip_and_bad_ones_are_refused() {
    let opts = Options { nonlinear: veil_passes::NonlinearChoice::Ot, ..Options::default() };
    let g = veil_tests::compile_bundled("digits_relu", opts).unwrap().graph;
    let of = |f: fn(&veil_ir::Op) -> bool| -> Vec<_> {
        g.live_nodes().filter(|(_, n)| f(&n.op)).map(|(id, _)| id).collect()
    };
    let relus = of(|op| matches!(op, veil_ir::Op::Relu));
    let pools = of(|op| matches!(op, veil_ir::Op::MaxPool { .. }));
    let all: Vec<_> = relus.iter().chain(&pools).collect();
    assert!(!relus.is_empty() && !pools.is_empty() && all.iter().all(|r| g.over_ot.contains(r)), "{:?}", g.over_ot);
    let text = to_text(&g);
    assert_eq!(text.matches("nonlinear=ot").count(), all.len(), "{text}");
    let h = parse_with_weights(&text, &g.consts).unwrap();
    assert_eq!(live_view(&h), live_view(&g));
    let err = parse_with_weights(&text.replacen("nonlinear=ot", "nonlinear=gc", 1), &g.consts).unwrap_err();
    assert!(err.to_string().contains("`nonlinear` can only be `ot`"), "{err}");
    // The first MaxPool reads its ReLU's operand (a linear layer's, of either sign) directly.
    let mut bad = g.clone();
    let pool = pools[0];
    let relu = g.producer(g.nodes[pool].inputs[0]).unwrap();
    assert!(matches!(relu.op, veil_ir::Op::Relu));
    bad.nodes[pool].inputs[0] = relu.inputs[0];
    // The bypassed ReLU's truncation no longer fuses (two readers): its narrowed read goes too.
    let veil_ir::Def::Node(relu_id) = g.values[g.nodes[pool].inputs[0]].def else { unreachable!("a node's output") };
    bad.narrow_bits.retain(|&(n, _)| n != relu_id);
    let err = veil_ir::schedule::lower(&bad).unwrap_err().to_string();
    assert!(err.contains(&g.nodes[pool].name) && err.contains("needs a ReLU's output"), "{err}");
}

/// Circa's stochastic ReLUs over OT (`--activation circa --nonlinear ot`) print
/// `nonlinear=ot`, parse back into `over_ot` and lower to `Kind::CircaOt` (their MaxPools, of a
/// value of either sign, stay garbled and unlisted).
#[test]
fn circa_over_ot_round_trips_and_lowers_to_circa_ot() {
    let opts = Options {
        activation: veil_passes::Activation::Circa,
        nonlinear: veil_passes::NonlinearChoice::Ot,
        ..Options::default()
    };
    let g = veil_tests::compile_bundled("digits_relu", opts).unwrap().graph;
    let circas: Vec<_> =
        g.live_nodes().filter(|(_, n)| matches!(n.op, veil_ir::Op::StochasticRelu { .. })).map(|(id, _)| id).collect();
    assert!(!circas.is_empty() && circas.iter().all(|c| g.over_ot.contains(c)), "{:?}", g.over_ot);
    let text = to_text(&g);
    assert_eq!(text.matches("nonlinear=ot").count(), circas.len(), "{text}");
    let h = parse_with_weights(&text, &g.consts).unwrap();
    assert_eq!(live_view(&h), live_view(&g));
    let steps = veil_ir::schedule::lower(&h).unwrap();
    let over_ot = steps.iter().filter(|s| matches!(s.kind, veil_ir::schedule::Kind::CircaOt { .. })).count();
    let garbled = steps.iter().filter(|s| matches!(s.kind, veil_ir::schedule::Kind::Circa { .. })).count();
    assert_eq!((over_ot, garbled), (circas.len(), 0));
}

/// The activations MLP with `--exact-truncation --nonlinear ot`: its LeakyReLU and its Clip to
/// [−1, 1] (proven not to wrap) print `nonlinear=ot`, parse back into `over_ot` and lower to
/// `Kind::LeakyReluOt` and `Kind::ClipOt` with the lower bound; mobile_block's unfused exact
/// truncations likewise to `Kind::TruncOt`.
#[test]
fn truncations_leaky_relus_and_clips_over_ot_round_trip() {
    use veil_ir::schedule::Kind;
    let opts = Options { exact_truncation: true, nonlinear: veil_passes::NonlinearChoice::Ot, ..Options::default() };
    for (name, want) in [("activations", [0, 1, 1, 0]), ("mobile_block", [5, 0, 0, 2])] {
        let g = veil_tests::compile_bundled(name, opts.clone()).unwrap().graph;
        let text = to_text(&g);
        let nonlinear = g.over_ot.iter().filter(|&&id| !matches!(g.nodes[id].op, veil_ir::Op::Dense { .. })).count();
        assert_eq!(text.matches("nonlinear=ot").count(), nonlinear, "{name}: {text}");
        let h = parse_with_weights(&text, &g.consts).unwrap();
        assert_eq!(live_view(&h), live_view(&g), "{name}");
        let steps = veil_ir::schedule::lower(&h).unwrap();
        let count = |f: fn(&Kind) -> bool| steps.iter().filter(|s| f(&s.kind)).count();
        let got = [
            count(|k| matches!(k, Kind::TruncOt { .. })),
            count(|k| matches!(k, Kind::LeakyReluOt { .. })),
            count(|k| matches!(k, Kind::ClipOt { lo, .. } if *lo != 0)),
            count(|k| matches!(k, Kind::ClipOt { lo: 0, .. })),
        ];
        assert_eq!(got, want, "{name}: truncations, LeakyReLUs, Clips with lo ≠ 0 and lo = 0 over OT");
    }
}
