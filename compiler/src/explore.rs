//! The accuracy/cost trade-off of a model's activations: layer-wise ReLU importance, the ReLU
//! budget (`veilc compile --relu-budget`), and the sweep of activation policies behind `veilc
//! explore`.
//!
//! Every configuration is compiled by the real pipeline; its costs are the cost model's (exact
//! bytes and rounds, predicted seconds under a network profile) and its accuracy is the
//! fixed-point simulator's on a data set: what the two parties would compute, Circa's faults
//! included (drawn from simulated shares).

use std::collections::BTreeMap;

use serde::Serialize;
use veil_ir::{CircaVariant, Graph, Op, Tensor};
use veil_passes::{Activation, Options, PassError};

/// A data set: inputs, and class labels when it has them.
pub struct Dataset {
    /// The inputs, each shaped like the model's input.
    pub xs: Vec<Tensor>,
    /// One class label per input, when the data set has them.
    pub labels: Option<Vec<i64>>,
}

/// Why a configuration could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    /// The configuration does not compile.
    #[error(transparent)]
    Pass(#[from] PassError),
    /// The simulator refused a sample (wrong shape, out of range, ...).
    #[error("simulating the compiled model: {0}")]
    Eval(#[from] veil_ir::eval::EvalError),
    /// The plan compiles but the two-party runtime cannot run it, so it has no costs.
    #[error("the runtime cannot run this plan: {0}")]
    Unsupported(String),
    /// Options that contradict each other (`--relu-budget` with `--layer` or `--activation poly`).
    #[error("{0}")]
    Input(String),
}

impl ExploreError {
    /// The model, data or options were rejected (as opposed to an internal failure).
    pub fn is_user_error(&self) -> bool {
        match self {
            ExploreError::Pass(e) => e.is_user_error(),
            _ => true,
        }
    }
}

/// The ReLU nodes of an imported (float) graph, in execution order: ONNX node name and number
/// of activations.
pub fn relu_layers(g: &Graph) -> Vec<(String, usize)> {
    g.body
        .iter()
        .map(|&n| &g.nodes[n])
        .filter(|n| matches!(n.op, Op::Relu))
        .map(|n| (n.name.clone(), g.values[n.output].ty.len()))
        .collect()
}

/// Compiles `float` with `opts` through the whole pipeline.
pub fn compile(float: &Graph, opts: &Options) -> Result<Graph, PassError> {
    let mut g = float.clone();
    veil_passes::run_pipeline(&mut g, opts, None, true)?;
    Ok(g)
}

/// The score a configuration is judged by: accuracy when the data has labels, otherwise the
/// fraction of samples whose top-1 class equals the float model's.
pub fn score(r: &crate::EvalReport) -> f64 {
    r.accuracy.unwrap_or(r.top1_agreement)
}

/// Compiles and simulates one configuration over `data` (sample `i` uses seed `seed + i`).
pub fn measure(
    float: &Graph,
    opts: &Options,
    data: &Dataset,
    seed: u64,
) -> Result<(Graph, crate::EvalReport), ExploreError> {
    let g = compile(float, opts)?;
    let r = crate::evaluate(float, &g, &data.xs, data.labels.as_deref(), seed)?;
    Ok((g, r))
}

/// How much one ReLU layer matters: the score with only that layer replaced by the polynomial.
#[derive(Clone, Debug, Serialize)]
pub struct LayerImportance {
    /// ONNX name of the ReLU node.
    pub name: String,
    /// Activations (elements) of the layer.
    pub relus: usize,
    /// Score of the model with this layer's ReLUs replaced (every other layer as `base`).
    pub score_replaced: f64,
    /// Score lost by the replacement (baseline − replaced); larger is more important.
    pub drop: f64,
}

/// Layer-wise ReLU importance on `data`: the baseline score of `base` and, per ReLU layer, the
/// score with that layer alone replaced by the polynomial. A layer whose replacement does not
/// compile (a value would overflow the ring) gets score 0: it cannot be replaced.
pub fn importance(
    float: &Graph,
    base: &Options,
    data: &Dataset,
    seed: u64,
) -> Result<(f64, Vec<LayerImportance>), ExploreError> {
    let (_, r) = measure(float, base, data, seed)?;
    let baseline = score(&r);
    let mut out = Vec::new();
    for (name, relus) in relu_layers(float) {
        let mut opts = base.clone();
        opts.layer_activation.insert(name.clone(), Activation::Poly);
        let replaced = match measure(float, &opts, data, seed) {
            Ok((_, r)) => score(&r),
            Err(ExploreError::Pass(e)) if e.is_user_error() => 0.0,
            Err(e) => return Err(e),
        };
        out.push(LayerImportance { name, relus, score_replaced: replaced, drop: baseline - replaced });
    }
    Ok((baseline, out))
}

/// Layers most important first: largest drop; ties: fewer ReLUs, then name.
pub fn by_importance(importance: &[LayerImportance]) -> Vec<&LayerImportance> {
    let mut order: Vec<&LayerImportance> = importance.iter().collect();
    order.sort_by(|a, b| b.drop.total_cmp(&a.drop).then(a.relus.cmp(&b.relus)).then(a.name.cmp(&b.name)));
    order
}

/// The layers kept within `budget` ReLUs: most important first (largest drop; ties: fewer
/// ReLUs, then name), each kept if it still fits. The rest are replaced.
pub fn choose(importance: &[LayerImportance], budget: usize) -> Vec<String> {
    let mut used = 0usize;
    let mut kept = Vec::new();
    for l in by_importance(importance) {
        if used + l.relus <= budget {
            used += l.relus;
            kept.push(l.name.clone());
        }
    }
    kept
}

/// What `--relu-budget` decided.
#[derive(Clone, Debug, Serialize)]
pub struct BudgetChoice {
    /// The budget asked for, in ReLU activations.
    pub budget: usize,
    /// Score of the model without a budget (every ReLU as the base policy).
    pub baseline_score: f64,
    /// Every ReLU layer's importance, in execution order.
    pub importance: Vec<LayerImportance>,
    /// Layers kept as ReLU (exact or Circa, per the base policy), in execution order.
    pub kept: Vec<String>,
    /// Layers replaced by the polynomial, in execution order.
    pub replaced: Vec<String>,
    /// ReLU activations of the kept layers; at most `budget`.
    pub kept_relus: usize,
    /// Score of the chosen configuration on the calibration data (the simulator's).
    pub predicted_score: f64,
    /// Whether the scores are accuracies (labelled data) or top-1 agreement with the float model.
    pub labelled: bool,
}

/// Applies a ReLU budget to `base`: measures importance on `data`, keeps the most important
/// layers within `budget` ReLUs and replaces the others with the polynomial. Returns the options
/// to compile with and the report.
pub fn apply_budget(
    float: &Graph,
    base: &Options,
    budget: usize,
    data: &Dataset,
    seed: u64,
) -> Result<(Options, BudgetChoice), ExploreError> {
    if !base.layer_activation.is_empty() {
        return Err(ExploreError::Input(
            "--relu-budget chooses every layer's policy; it cannot be combined with --layer".into(),
        ));
    }
    if base.activation == Activation::Poly {
        return Err(ExploreError::Input(
            "--relu-budget keeps layers as --activation relu or circa; --activation poly leaves nothing to keep".into(),
        ));
    }
    let (baseline, imp) = importance(float, base, data, seed)?;
    let kept = choose(&imp, budget);
    let mut opts = base.clone();
    let (mut kept_order, mut replaced) = (Vec::new(), Vec::new());
    for l in &imp {
        if kept.contains(&l.name) {
            kept_order.push(l.name.clone());
        } else {
            opts.layer_activation.insert(l.name.clone(), Activation::Poly);
            replaced.push(l.name.clone());
        }
    }
    let (_, r) = measure(float, &opts, data, seed)?;
    let kept_relus = imp.iter().filter(|l| kept.contains(&l.name)).map(|l| l.relus).sum();
    let choice = BudgetChoice {
        budget,
        baseline_score: baseline,
        importance: imp,
        kept: kept_order,
        replaced,
        kept_relus,
        predicted_score: score(&r),
        labelled: data.labels.is_some(),
    };
    Ok((opts, choice))
}

impl std::fmt::Display for BudgetChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.labelled { "accuracy" } else { "top-1 agreement with the float model" };
        writeln!(f, "ReLU budget {}: layer importance ({what} lost when the layer alone is replaced):", self.budget)?;
        for l in &self.importance {
            let mark = if self.kept.contains(&l.name) { "kept" } else { "poly" };
            writeln!(
                f,
                "  {:<32} {:>8} ReLUs  replaced {:>7.2}%  drop {:>+7.2}%  {mark}",
                l.name,
                l.relus,
                100.0 * l.score_replaced,
                100.0 * l.drop
            )?;
        }
        writeln!(
            f,
            "kept {} ReLUs in {} layer(s); predicted {what} {:.2}% (all ReLUs: {:.2}%)",
            self.kept_relus,
            self.kept.len(),
            100.0 * self.predicted_score,
            100.0 * self.baseline_score
        )
    }
}

/// One configuration of the sweep.
#[derive(Clone, Debug)]
pub struct Config {
    /// Short name in tables and plots (`relu`, `circa e=8 pos-zero`, `poly Relu_1`, ...).
    pub label: String,
    /// Policy of every ReLU not in `layers`.
    pub activation: Activation,
    /// Per-layer overrides, by ONNX node name.
    pub layers: BTreeMap<String, Activation>,
    /// Circa's error bits ([`Options::circa_error_bits`]).
    pub circa_error_bits: u8,
    /// Which way Circa's sign tests may err.
    pub variant: CircaVariant,
}

impl Config {
    /// `base` with this configuration's activation choices.
    pub fn options(&self, base: &Options) -> Options {
        let mut o = base.clone();
        o.activation = self.activation;
        o.layer_activation = self.layers.clone();
        o.drop_bits = None;
        o.circa_error_bits = self.circa_error_bits;
        o.circa_variant = self.variant;
        o
    }
}

/// The configurations `veilc explore` sweeps for a model with ReLU layers `layers` (ordered
/// most important first): exact ReLU; Circa with each of `error_bits` in both variants;
/// polynomials in chosen layers: every subset of layers for up to `max_subset_layers` layers,
/// otherwise the budgets keeping the k most important layers; and the same budgets with the kept
/// layers as Circa at the default error bits.
pub fn configs(by_importance: &[String], error_bits: &[u8], max_subset_layers: usize) -> Vec<Config> {
    let cfg = |label: String, activation, layers, e, variant| Config {
        label,
        activation,
        layers,
        circa_error_bits: e,
        variant,
    };
    let default_e = veil_passes::quantize::CIRCA_ERROR_BITS;
    let mut out = vec![cfg("relu".into(), Activation::Relu, BTreeMap::new(), default_e, CircaVariant::PosZero)];
    for &e in error_bits {
        for (v, vname) in [(CircaVariant::PosZero, "pos-zero"), (CircaVariant::NegPass, "neg-pass")] {
            out.push(cfg(format!("circa e={e} {vname}"), Activation::Circa, BTreeMap::new(), e, v));
        }
    }
    let n = by_importance.len();
    // Sets of layers kept as ReLU (the rest polynomial), never the full set (that is "relu").
    let kept_sets: Vec<Vec<&String>> = if n <= max_subset_layers {
        (0..(1usize << n) - 1)
            .map(|mask| by_importance.iter().enumerate().filter(|(i, _)| mask >> i & 1 == 1).map(|(_, l)| l).collect())
            .collect()
    } else {
        (0..n).map(|k| by_importance[..k].iter().collect()).collect()
    };
    let short = |l: &str| l.trim_start_matches('/').to_string();
    for kept in &kept_sets {
        let poly: BTreeMap<String, Activation> =
            by_importance.iter().filter(|l| !kept.contains(l)).map(|l| (l.clone(), Activation::Poly)).collect();
        let poly_names: Vec<String> = by_importance.iter().filter(|l| !kept.contains(l)).map(|l| short(l)).collect();
        let label = if kept.is_empty() { "poly".to_string() } else { format!("poly {}", poly_names.join("+")) };
        out.push(cfg(label.clone(), Activation::Relu, poly.clone(), default_e, CircaVariant::PosZero));
        if !kept.is_empty() {
            out.push(cfg(format!("{label}, circa rest"), Activation::Circa, poly, default_e, CircaVariant::PosZero));
        }
    }
    out
}

/// One measured configuration.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    /// The configuration's [`Config::label`].
    pub label: String,
    /// Comparisons in garbled circuits: exact ReLU and Circa sign tests (activations).
    pub relus: usize,
    /// Exact ReLU activations (garbled comparisons).
    pub exact_relus: usize,
    /// Circa stochastic ReLU activations.
    pub circa_relus: usize,
    /// Activations replaced by the polynomial.
    pub poly_activations: usize,
    /// AND gates of all garbled circuits, all instances.
    pub and_gates: usize,
    /// Ring width ℓ `quantize` chose.
    pub ring_bits: u8,
    /// Predicted offline bytes, both directions (exact).
    pub offline_bytes: u64,
    /// Predicted online bytes, both directions (exact).
    pub online_bytes: u64,
    /// Predicted online flights.
    pub online_rounds: u64,
    /// Predicted offline seconds: network plus CPU under the sweep's network profile.
    pub predicted_offline_seconds: f64,
    /// Predicted online seconds: network plus CPU under the sweep's network profile.
    pub predicted_online_seconds: f64,
    /// Predicted offline plus online seconds.
    pub predicted_total_seconds: f64,
    /// Accuracy (labelled data) or top-1 agreement with the float model.
    pub score: f64,
    /// Fraction of samples whose top-1 class equals the float model's.
    pub top1_agreement: f64,
    /// Fraction of Circa sign tests the simulation got wrong (0 without Circa).
    pub circa_fault_rate: f64,
    /// On the Pareto front of score against the chosen latency.
    pub front: bool,
}

/// Measures one compiled configuration: costs under `network` and the simulator's score.
pub fn point(
    label: &str,
    g: &Graph,
    report: &crate::EvalReport,
    network: veil_passes::cost::Network,
) -> Result<Point, ExploreError> {
    let mut s = crate::summarize(g);
    s.set_network(network);
    let (Some(off), Some(on), Some(t)) = (s.offline, s.online, s.predicted_seconds) else {
        return Err(ExploreError::Unsupported(s.unsupported.unwrap_or_default()));
    };
    let count = |pred: fn(&Op) -> bool| -> usize {
        g.live_nodes().filter(|(_, n)| pred(&n.op)).map(|(_, n)| g.values[n.output].ty.len()).sum()
    };
    let exact = count(|op| matches!(op, Op::Relu));
    let circa = count(|op| matches!(op, Op::StochasticRelu { .. }));
    let bytes = |t: veil_passes::cost::Traffic| t.bytes_client_to_server + t.bytes_server_to_client;
    Ok(Point {
        label: label.to_string(),
        relus: exact + circa,
        exact_relus: exact,
        circa_relus: circa,
        poly_activations: count(|op| matches!(op, Op::Poly { .. })),
        and_gates: s.and_gates,
        ring_bits: s.ring_bits,
        offline_bytes: bytes(off),
        online_bytes: bytes(on),
        online_rounds: on.rounds,
        predicted_offline_seconds: t.offline,
        predicted_online_seconds: t.online,
        predicted_total_seconds: t.offline + t.online,
        score: score(report),
        top1_agreement: report.top1_agreement,
        circa_fault_rate: report.circa_fault_rate,
        front: false,
    })
}

/// Marks the Pareto front: a point is on it when no other point has a score at least as high
/// and a latency (`latency(p)`) at least as low with one of the two strictly better. Exact ties
/// are all on the front.
pub fn mark_front(points: &mut [Point], latency: impl Fn(&Point) -> f64) {
    let keys: Vec<(f64, f64)> = points.iter().map(|p| (latency(p), p.score)).collect();
    for (i, p) in points.iter_mut().enumerate() {
        let (ti, si) = keys[i];
        p.front = !keys.iter().any(|&(t, s)| t <= ti && s >= si && (t < ti || s > si));
    }
}
