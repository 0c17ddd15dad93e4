//! The accuracy/cost explorer's pieces: the Pareto front, the ReLU budget's choice, layer
//! importance measured by compiling and simulating, and the sweep's configurations.

use rand::{Rng, SeedableRng};
use veil_compiler::explore::{self, Dataset, LayerImportance, Point};
use veil_passes::{Activation, Options};

fn point(label: String, latency: f64, score: f64) -> Point {
    Point {
        label,
        relus: 0,
        exact_relus: 0,
        circa_relus: 0,
        poly_activations: 0,
        and_gates: 0,
        ring_bits: 0,
        offline_bytes: 0,
        online_bytes: 0,
        online_rounds: 0,
        predicted_offline_seconds: 0.0,
        predicted_online_seconds: latency,
        predicted_total_seconds: latency,
        score,
        top1_agreement: score,
        circa_fault_rate: 0.0,
        front: false,
    }
}

/// `a` dominates `b`: at least as fast and as accurate, strictly better in one.
fn dominates(a: &Point, b: &Point) -> bool {
    let (ta, tb) = (a.predicted_online_seconds, b.predicted_online_seconds);
    ta <= tb && a.score >= b.score && (ta < tb || a.score > b.score)
}

#[test]
fn the_front_holds_exactly_the_undominated_points() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for trial in 0..200 {
        let n = rng.random_range(1..30);
        // Coarse values so ties in either coordinate happen often.
        let mut pts: Vec<Point> = (0..n)
            .map(|i| point(format!("{i}"), rng.random_range(1..8) as f64 * 0.01, rng.random_range(0..6) as f64 / 5.0))
            .collect();
        explore::mark_front(&mut pts, |p| p.predicted_online_seconds);
        assert!(pts.iter().any(|p| p.front), "trial {trial}: a non-empty set has a front");
        for p in &pts {
            let dominated = pts.iter().any(|q| dominates(q, p));
            assert_eq!(p.front, !dominated, "trial {trial}: point {}", p.label);
            if !p.front {
                assert!(
                    pts.iter().any(|q| q.front && dominates(q, p)),
                    "trial {trial}: a front point dominates {}",
                    p.label
                );
            }
        }
    }
}

fn layer(name: &str, relus: usize, drop: f64) -> LayerImportance {
    LayerImportance { name: name.into(), relus, score_replaced: 1.0 - drop, drop }
}

#[test]
fn the_budget_keeps_the_most_important_layers_that_fit() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    for trial in 0..500 {
        let layers: Vec<LayerImportance> = (0..rng.random_range(1..8))
            .map(|i| layer(&format!("l{i}"), rng.random_range(1..1000), rng.random_range(-0.1..0.5)))
            .collect();
        let total: usize = layers.iter().map(|l| l.relus).sum();
        let budget = rng.random_range(0..total + 10);
        let kept = explore::choose(&layers, budget);
        let used: usize = layers.iter().filter(|l| kept.contains(&l.name)).map(|l| l.relus).sum();
        assert!(used <= budget, "trial {trial}: {used} > {budget}");
        // Greedy: nothing left out would still fit.
        for l in layers.iter().filter(|l| !kept.contains(&l.name)) {
            assert!(used + l.relus > budget, "trial {trial}: {} ({} ReLUs) fits in {budget} − {used}", l.name, l.relus);
        }
        // The most important layer is kept whenever it fits on its own.
        let top = layers.iter().max_by(|a, b| a.drop.total_cmp(&b.drop)).unwrap();
        if top.relus <= budget {
            assert!(kept.contains(&top.name), "trial {trial}: {} should be kept", top.name);
        }
        if budget >= total {
            assert_eq!(kept.len(), layers.len(), "trial {trial}: everything fits");
        }
    }
    assert!(explore::choose(&[layer("a", 5, 0.3)], 4).is_empty());
}

fn digits() -> (veil_ir::Graph, Dataset) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let float = veil_compiler::onnx::import_file(&dir.join("digits_relu.onnx"), &Default::default()).unwrap();
    let veil_ir::npy::NpzArray::Float(x) = veil_ir::npy::read_npz(&dir.join("digits_test.npz"), "x").unwrap() else {
        panic!("x holds floats")
    };
    let veil_ir::npy::NpzArray::Int { data: y, .. } =
        veil_ir::npy::read_npz(&dir.join("digits_test.npz"), "y").unwrap()
    else {
        panic!("y holds labels")
    };
    let shape = float.values[float.inputs[0]].ty.shape.clone();
    let mut xs = veil_passes::range::samples(&x, &shape).unwrap();
    xs.truncate(80);
    (float, Dataset { xs, labels: Some(y[..80].to_vec()) })
}

fn accuracy(float: &veil_ir::Graph, opts: &Options, data: &Dataset) -> f64 {
    let opts = veil_compiler::CompileOptions { passes: opts.clone(), encode: false, ..Default::default() };
    let g = veil_compiler::compile(float, &opts).unwrap().graph;
    veil_compiler::evaluate(float, &g, &data.xs, data.labels.as_deref(), 0).unwrap().accuracy.unwrap()
}

#[test]
fn importance_and_the_budget_on_the_trained_digits_model() {
    let (float, data) = digits();
    let base = Options { calibration: data.xs.clone(), ..Options::default() };
    let (baseline, imp) = explore::importance(&float, &base, &data, 0).unwrap();
    assert_eq!(baseline, accuracy(&float, &base, &data));
    let names: Vec<&str> = imp.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["/Relu", "/Relu_1", "/Relu_2"]);
    assert_eq!(imp.iter().map(|l| l.relus).collect::<Vec<_>>(), [512, 256, 32]);
    for l in &imp {
        // The same replacement compiled on its own (through the pipeline's --layer option).
        let mut opts = base.clone();
        opts.layer_activation.insert(l.name.clone(), Activation::Poly);
        let replaced = accuracy(&float, &opts, &data);
        assert_eq!(l.score_replaced, replaced, "{}", l.name);
        assert!((l.drop - (baseline - replaced)).abs() < 1e-12, "{}", l.name);
    }

    // Everything fits: nothing is replaced and the prediction is the baseline.
    let (opts, all) = explore::apply_budget(&float, &base, 800, &data, 0).unwrap();
    assert!(all.replaced.is_empty() && opts.layer_activation.is_empty());
    assert_eq!(all.predicted_score, baseline);
    // Nothing fits: every layer becomes the polynomial.
    let (opts, none) = explore::apply_budget(&float, &base, 0, &data, 0).unwrap();
    assert_eq!(none.kept_relus, 0);
    assert_eq!(opts.layer_activation.len(), 3);
    assert!(opts.layer_activation.values().all(|a| *a == Activation::Poly));
    // In between: within budget, and the prediction is that configuration's simulated accuracy.
    let (opts, mid) = explore::apply_budget(&float, &base, 300, &data, 0).unwrap();
    assert!(mid.kept_relus <= 300 && !mid.kept.is_empty(), "{mid}");
    assert_eq!(mid.kept.len() + mid.replaced.len(), 3);
    assert_eq!(mid.predicted_score, accuracy(&float, &opts, &data));

    // A budget cannot be combined with per-layer choices.
    let mut with_layer = base.clone();
    with_layer.layer_activation.insert("/Relu".into(), Activation::Circa);
    assert!(explore::apply_budget(&float, &with_layer, 300, &data, 0).is_err());
}

#[test]
fn the_sweep_covers_relu_circa_and_every_polynomial_subset() {
    let layers: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let configs = explore::configs(&layers, &[8, 5], 4);
    // relu; circa × 2 error bits × 2 variants; 7 proper subsets kept as ReLU; 6 of them
    // non-empty with Circa for the kept layers.
    assert_eq!(configs.len(), 1 + 4 + 7 + 6);
    let mut labels: Vec<&str> = configs.iter().map(|c| c.label.as_str()).collect();
    labels.sort();
    labels.dedup();
    assert_eq!(labels.len(), configs.len(), "labels are unique");
    let all_poly = configs.iter().find(|c| c.label == "poly").unwrap();
    assert_eq!(all_poly.layers.len(), 3);
    // Beyond the subset limit, prefixes of the importance order.
    let many: Vec<String> = (0..6).map(|i| format!("l{i}")).collect();
    let prefix = explore::configs(&many, &[5], 4);
    let polys: Vec<_> = prefix.iter().filter(|c| c.activation == Activation::Relu && !c.layers.is_empty()).collect();
    assert_eq!(polys.len(), 6);
    for c in polys {
        let replaced: Vec<&String> = c.layers.keys().collect();
        let k = 6 - replaced.len();
        assert!(many[k..].iter().all(|l| c.layers.contains_key(l)), "{}: keeps the {k} most important", c.label);
    }
}
