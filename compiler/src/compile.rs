//! [`compile`]: the library entry point. One call from an ONNX model (a file, its bytes, or an
//! already imported float graph) and [`CompileOptions`] to the lowered graph, the plan and
//! weights bytes, and what each pass did. `veilc`, the tests, the fuzz targets and the benches
//! all compile through it; only tests that need part of the pipeline on a hand-built graph call
//! [`veil_passes::run_pipeline`] themselves.

use std::path::{Path, PathBuf};

use veil_ir::Graph;
use veil_ir::plan::{Hash, PlanError};
use veil_passes::{Options, PassError, PassRun, Stage};

use crate::onnx::{ImportError, ImportOptions};

/// The model to compile.
#[derive(Clone, Debug)]
pub enum Model<'a> {
    /// An ONNX file (external data is read beside it).
    File(&'a Path),
    /// An ONNX model's bytes; `name` names it in errors and becomes the graph's name. External
    /// data is refused.
    Bytes {
        /// The serialized `ModelProto`.
        bytes: &'a [u8],
        /// Stands for the path in errors; becomes the graph's name.
        name: &'a str,
    },
    /// A float graph the front end (or a test) already built.
    Graph(Box<Graph>),
}

impl<'a> From<&'a Path> for Model<'a> {
    fn from(p: &'a Path) -> Self {
        Model::File(p)
    }
}

impl<'a> From<&'a PathBuf> for Model<'a> {
    fn from(p: &'a PathBuf) -> Self {
        Model::File(p)
    }
}

impl From<Graph> for Model<'_> {
    fn from(g: Graph) -> Self {
        Model::Graph(Box::new(g))
    }
}

impl From<&Graph> for Model<'_> {
    fn from(g: &Graph) -> Self {
        Model::Graph(Box::new(g.clone()))
    }
}

/// Everything [`compile`] can be asked.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// The front end's options (the dynamic batch size); unused for [`Model::Graph`].
    pub import: ImportOptions,
    /// The passes' options: activations, per-layer overrides, calibration inputs, fixed-point
    /// precision, the cost model's network and objective.
    pub passes: Options,
    /// Choose the fractional bits automatically ([`veil_passes::precision::choose`]) so the
    /// simulated output error is at most this fraction of the output range; `passes.frac_bits`
    /// is then ignored. `None` (the default): compile at `passes.frac_bits`. The search runs
    /// only when the pipeline reaches `quantize`.
    pub max_error: Option<f64>,
    /// Stop after this stage (`None`: the whole pipeline).
    pub until: Option<Stage>,
    /// Run the verifier after every pass (microseconds; an invalid graph is a compiler bug).
    pub verify: bool,
    /// Encode the plan and weights when the whole pipeline ran.
    pub encode: bool,
    /// When the plan keeps local truncations (each party shifts its share: free, but ±1 by the
    /// secret value's low bits, and 40 bits of ring headroom against their wrap), also compile
    /// with `exact_truncation` and keep that plan if the cost model predicts it faster on
    /// `passes.network` under `passes.objective` ([`choose_truncation`]). Off in the library by
    /// default, so a test's options say what it gets; `veilc` turns it on unless
    /// `--local-truncation`, `--exact-truncation` or `--stochastic-truncation` is given.
    pub choose_truncation: bool,
}

impl Default for CompileOptions {
    fn default() -> Self {
        Self {
            import: ImportOptions::default(),
            passes: Options::default(),
            max_error: None,
            until: None,
            verify: true,
            encode: true,
            choose_truncation: false,
        }
    }
}

impl From<Options> for CompileOptions {
    /// The whole pipeline with these pass options, verified and encoded.
    fn from(passes: Options) -> Self {
        Self { passes, ..Self::default() }
    }
}

/// The encoded plan (public, for both parties) and weights (the server's secret).
#[derive(Clone)]
pub struct PlanFiles {
    /// The plan file's bytes: public, for both parties; no weight values.
    pub plan: Vec<u8>,
    /// The weights file's bytes: the server's quantized constants, bound to the plan's hash; secret.
    pub weights: Vec<u8>,
    /// The plan's hash, which the weights name and the handshake compares.
    pub hash: Hash,
}

/// The weights are secret: Debug prints only sizes and the hash.
impl std::fmt::Debug for PlanFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanFiles")
            .field("plan_bytes", &self.plan.len())
            .field("weights_bytes", &self.weights.len())
            .field("hash", &veil_ir::plan::hex(&self.hash))
            .finish()
    }
}

/// A compiled model.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The imported float graph (the reference the compiled one approximates).
    pub float: Graph,
    /// The graph after the last stage run (the fixed-point plan after the whole pipeline).
    pub graph: Graph,
    /// What each pass did, in order.
    pub runs: Vec<PassRun>,
    /// The plan and weights, when the whole pipeline ran and [`CompileOptions::encode`] asked.
    pub files: Option<PlanFiles>,
    /// What the precision search chose, when [`CompileOptions::max_error`] asked for one.
    pub precision: Option<veil_passes::precision::Choice>,
    /// [`CompileOptions::choose_truncation`] kept the plan compiled with exact truncations.
    pub chose_exact_truncation: bool,
    /// After the whole pipeline: a step of the plan the runtime cannot run yet, if any (the
    /// simulator runs every plan; `veilc` refuses to write or run this one).
    pub unsupported: Option<veil_ir::schedule::Unsupported>,
}

/// Why [`compile`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The front end refused the model (or, for [`ImportError::Internal`], failed).
    #[error(transparent)]
    Import(#[from] ImportError),
    /// A pass refused the model or options (or left invalid IR: a compiler bug).
    #[error(transparent)]
    Pass(#[from] PassError),
    /// The compiled graph did not encode (a compiler bug).
    #[error("internal error: the compiled plan does not encode (please report this): {0}")]
    Encode(#[from] PlanError),
}

impl CompileError {
    /// The model or the options were refused (as opposed to an I/O failure or a compiler bug).
    pub fn is_user_error(&self) -> bool {
        match self {
            CompileError::Import(e) => e.is_user_error(),
            CompileError::Pass(e) => e.is_user_error(),
            CompileError::Encode(_) => false,
        }
    }
}

/// Imports `model` (unless it is a graph already), runs the pipeline up to `opts.until` and,
/// after the whole pipeline, encodes the plan and weights.
pub fn compile<'a>(model: impl Into<Model<'a>>, opts: &CompileOptions) -> Result<Compiled, CompileError> {
    let float = match model.into() {
        Model::File(p) => crate::onnx::import_file(p, &opts.import)?,
        Model::Bytes { bytes, name } => crate::onnx::import_bytes(bytes, name, name, &opts.import)?,
        Model::Graph(g) => *g,
    };
    if !opts.choose_truncation || opts.passes.exact_truncation || opts.passes.stochastic_truncation {
        return compile_float(float, opts);
    }
    let Some(until) = opts.until else {
        let first = compile_float(float, opts)?;
        return Ok(choose_truncation(first, opts));
    };
    // Up to a stage: the choice is the whole plan's, so from `quantize` on the stage shows the
    // graph the plan is compiled from (earlier stages do not depend on it; a model the whole
    // pipeline refuses is shown as far as asked).
    let before_quantize = match until {
        Stage::Import => true,
        Stage::After(p) => p < veil_passes::Pass::Quantize,
    };
    if before_quantize {
        return compile_float(float, opts);
    }
    let whole = match compile_float(float.clone(), &CompileOptions { until: None, ..opts.clone() }) {
        Ok(c) => choose_truncation(c, opts),
        Err(_) => return compile_float(float, opts),
    };
    let passes = Options { exact_truncation: whole.chose_exact_truncation, ..opts.passes.clone() };
    compile_float(whole.float, &CompileOptions { passes, until: Some(until), ..opts.clone() })
}

/// Whether `g` keeps a local truncation.
fn has_local_truncation(g: &Graph) -> bool {
    g.live_nodes().any(|(_, n)| matches!(n.op, veil_ir::Op::Truncate { mode: veil_ir::TruncMode::Local, .. }))
}

/// The predicted (offline, online) seconds of plan `g` on `opts.network`: exact bytes and rounds
/// at the profile's bandwidth and RTT plus the CPU estimate, as `veilc compile` prints them.
fn predicted_seconds(g: &Graph, opts: &Options) -> Option<(f64, f64)> {
    let c = veil_passes::cost::plan_cost(g).ok()?;
    Some((
        opts.network.seconds(&c.offline) + c.offline_cpu_seconds,
        opts.network.seconds(&c.online) + c.online_cpu_seconds,
    ))
}

/// [`CompileOptions::choose_truncation`]: `first`, compiled with local truncations, or the same
/// model compiled with `exact_truncation` if that is predicted faster (the objective's phase
/// first, the total breaking ties), with a note in the last pass's report saying which and why.
/// A model with no local truncation, with Circa (which exact truncation refuses), or whose exact
/// compilation fails, keeps `first`.
pub fn choose_truncation(first: Compiled, opts: &CompileOptions) -> Compiled {
    let circa = first.graph.live_nodes().any(|(_, n)| matches!(n.op, veil_ir::Op::StochasticRelu { .. }));
    if !has_local_truncation(&first.graph) || circa {
        return first;
    }
    let exact_opts = CompileOptions {
        passes: Options { exact_truncation: true, ..opts.passes.clone() },
        until: None,
        ..opts.clone()
    };
    let second = compile_float(first.float.clone(), &exact_opts);
    let (Some(a), Ok(Some(b))) = (
        predicted_seconds(&first.graph, &opts.passes),
        second.as_ref().map(|c| predicted_seconds(&c.graph, &opts.passes)),
    ) else {
        return first;
    };
    let key = |(off, on): (f64, f64)| match opts.passes.objective {
        veil_passes::Objective::Online => (on, off + on),
        veil_passes::Objective::Total => (off + on, on),
    };
    let exact = key(b).partial_cmp(&key(a)).is_some_and(|o| o.is_lt());
    let (ra, rb) = (first.graph.ring_bits.unwrap_or(0), second.as_ref().map_or(0, |c| c.graph.ring_bits.unwrap_or(0)));
    let note = format!(
        "truncations: {} (predicted offline + online: local, ring {ra} bits, {:.3} + {:.3} s; exact, ring {rb} bits, \
         {:.3} + {:.3} s); {}",
        if exact { "exact, in circuits or over OT" } else { "local where they do not fuse" },
        a.0,
        a.1,
        b.0,
        b.1,
        if exact { "--local-truncation keeps them local" } else { "--exact-truncation makes them exact" }
    );
    let mut chosen =
        if exact { Compiled { chose_exact_truncation: true, ..second.expect("predicted") } } else { first };
    if let Some(last) = chosen.runs.last_mut() {
        last.report.note(note);
    }
    chosen
}

/// [`compile`] from an imported float graph, with the options as they are.
fn compile_float(float: Graph, opts: &CompileOptions) -> Result<Compiled, CompileError> {
    let reaches_quantize = match opts.until {
        None => true,
        Some(Stage::Import) => false,
        Some(Stage::After(p)) => p >= veil_passes::Pass::Quantize,
    };
    let precision = match opts.max_error {
        Some(e) if reaches_quantize => Some(veil_passes::precision::choose(&float, &opts.passes, e)?),
        _ => None,
    };
    let passes = match &precision {
        Some(c) => {
            let (frac_bits, layer_frac_bits) = (c.frac_bits, c.layer_frac_bits.clone());
            Options { frac_bits, layer_frac_bits, weight_extra_bits: Some(c.weight_extra_bits), ..opts.passes.clone() }
        }
        None => opts.passes.clone(),
    };
    let mut graph = float.clone();
    let runs = veil_passes::run_pipeline(&mut graph, &passes, opts.until, opts.verify)?;
    let complete = matches!(opts.until, None | Some(Stage::After(veil_passes::Pass::Emit)));
    let files = if complete && opts.encode {
        let (plan, weights, hash) = veil_ir::plan::encode(&graph)?;
        Some(PlanFiles { plan, weights, hash })
    } else {
        None
    };
    // What `veil server` and `veil client` would refuse at startup (the simulator runs it).
    let unsupported = if complete { veil_ir::schedule::lower(&graph).err() } else { None };
    Ok(Compiled { float, graph, runs, files, precision, chose_exact_truncation: false, unsupported })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../models").join(name)
    }

    #[test]
    fn compiles_a_file_and_its_bytes_to_the_same_plan() {
        let path = model("mlp.onnx");
        let a = compile(&path, &CompileOptions::default()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let b = compile(Model::Bytes { bytes: &bytes, name: "mlp" }, &CompileOptions::default()).unwrap();
        let (fa, fb) = (a.files.unwrap(), b.files.unwrap());
        assert_eq!(fa.hash, fb.hash);
        assert_eq!(fa.weights, fb.weights);
        // Independently: the encoded bytes are those of `encode` on the graph.
        let (plan, _, hash) = veil_ir::plan::encode(&a.graph).unwrap();
        assert_eq!((plan, hash), (fa.plan, fa.hash));
        assert_eq!(a.runs.len(), veil_passes::Pass::ALL.len());
        assert!(a.float.ring_bits.is_none() && a.graph.ring_bits.is_some());
    }

    /// cifar_cnn and efficient_block keep local truncations (after average pools). Each choice
    /// is the faster of the two plans compiled directly, by the same prediction, with a note:
    /// efficient_block's exact plan (ring 28 bits instead of 61) on the LAN profile; cifar_cnn's
    /// local plan on both profiles, its HE layers and ReLUs over OT computing in their own
    /// narrower rings (since session 34), and minimising online time on the WAN profile, where
    /// exact truncation adds flights. Both choices occur.
    #[test]
    fn choose_truncation_keeps_the_plan_predicted_faster() {
        let mut choices = Vec::new();
        let mut exact_case = None;
        for (name, network, objective) in [
            ("efficient_block.onnx", veil_passes::cost::Network::LAN, veil_passes::Objective::Total),
            ("cifar_cnn.onnx", veil_passes::cost::Network::LAN, veil_passes::Objective::Total),
            ("cifar_cnn.onnx", veil_passes::cost::Network::WAN, veil_passes::Objective::Online),
        ] {
            let path = model(name);
            let passes = Options { input_bound: 4.0, network, objective, ..Options::default() };
            let direct = |exact_truncation| {
                let opts =
                    CompileOptions { passes: Options { exact_truncation, ..passes.clone() }, ..Default::default() };
                compile(&path, &opts).unwrap().graph
            };
            let (local, exact) = (direct(false), direct(true));
            assert!(has_local_truncation(&local) && !has_local_truncation(&exact));
            let (a, b) = (predicted_seconds(&local, &passes).unwrap(), predicted_seconds(&exact, &passes).unwrap());
            let opts = CompileOptions { passes: passes.clone(), choose_truncation: true, ..Default::default() };
            let c = compile(&path, &opts).unwrap();
            let faster_exact = match objective {
                veil_passes::Objective::Total => b.0 + b.1 < a.0 + a.1,
                veil_passes::Objective::Online => b.1 < a.1,
            };
            choices.push(faster_exact);
            if faster_exact {
                exact_case = Some((path.clone(), passes.clone()));
            }
            assert_eq!(
                c.graph,
                if faster_exact { exact } else { local },
                "{name} {network:?} {objective:?}: {a:?} {b:?}"
            );
            let note = c.runs.last().unwrap().report.notes.iter().find(|n| n.starts_with("truncations:")).unwrap();
            assert!(note.contains(if faster_exact { "exact" } else { "local where" }), "{note}");
            // The file bytes are the chosen plan's.
            assert_eq!(veil_ir::plan::encode(&c.graph).unwrap().2, c.files.unwrap().hash);
        }
        assert!(choices.contains(&true) && choices.contains(&false), "{choices:?}");
        // Up to a stage after `quantize`, the graph is the chosen plan's (the exact one, in the case
        // that chose it); before it, the choice does not apply.
        let (path, passes) = exact_case.expect("a case chose exact truncations");
        let upto = |stage: &str| {
            let opts = CompileOptions {
                passes: passes.clone(),
                choose_truncation: true,
                until: Some(stage.parse().unwrap()),
                ..Default::default()
            };
            compile(&path, &opts).unwrap().graph
        };
        let fused = upto("fuse_truncation");
        let whole =
            compile(&path, &CompileOptions { passes: passes.clone(), choose_truncation: true, ..Default::default() });
        let ring = whole.unwrap().graph.ring_bits;
        assert!(!has_local_truncation(&fused) && fused.ring_bits == ring, "{:?} against {ring:?}", fused.ring_bits);
        assert!(upto("normalize_linear").ring_bits.is_none());
        // Off (the library's default), the plan keeps its local truncations.
        let passes = Options { input_bound: 4.0, ..Options::default() };
        assert!(has_local_truncation(&compile(&path, &CompileOptions::from(passes)).unwrap().graph));
    }

    #[test]
    fn until_stops_early_and_skips_encoding() {
        let path = model("mlp.onnx");
        let opts = CompileOptions { until: Some("quantize".parse().unwrap()), ..CompileOptions::default() };
        let c = compile(&path, &opts).unwrap();
        assert!(c.files.is_none());
        assert_eq!(c.runs.last().map(|r| r.pass.name()), Some("quantize"));
        let imported =
            compile(&path, &CompileOptions { until: Some(Stage::Import), ..CompileOptions::default() }).unwrap();
        assert!(imported.runs.is_empty());
        assert_eq!(imported.graph, imported.float);
    }

    #[test]
    fn max_error_chooses_f_and_without_it_frac_bits_is_kept() {
        let path = model("mlp.onnx");
        let input_scale = |g: &Graph| g.values[g.inputs[0]].ty.elem;
        let plain = compile(&path, &CompileOptions::default()).unwrap();
        assert!(plain.precision.is_none());
        assert_eq!(input_scale(&plain.graph), veil_ir::ElemType::Fixed { frac_bits: 12 });
        let opts = CompileOptions { max_error: Some(0.01), ..CompileOptions::default() };
        let auto = compile(&path, &opts).unwrap();
        let c = auto.precision.expect("searched");
        assert_eq!(input_scale(&auto.graph), veil_ir::ElemType::Fixed { frac_bits: c.frac_bits });
        assert_eq!(auto.graph.ring_bits, Some(c.ring_bits));
        assert!(c.error <= 0.01, "{c}");
        // No search when the pipeline stops before quantize.
        let early = CompileOptions { until: Some("normalize_linear".parse().unwrap()), ..opts };
        assert!(compile(&path, &early).unwrap().precision.is_none());
    }

    #[test]
    fn errors_say_whose_fault() {
        let e = compile(Model::Bytes { bytes: b"", name: "empty" }, &CompileOptions::default()).unwrap_err();
        assert!(matches!(e, CompileError::Import(_)) && e.is_user_error(), "{e}");
        let mut passes = Options::default();
        passes.layer_activation.insert("/nope".into(), veil_passes::Activation::Poly);
        let e = compile(&model("digits_relu.onnx"), &passes.into()).unwrap_err();
        assert!(matches!(e, CompileError::Pass(_)) && e.is_user_error(), "{e}");
        assert!(e.to_string().contains("/nope"), "{e}");
    }

    /// A plan the runtime would refuse at startup (here a server-private scale per element, not
    /// per channel, on shares) is reported by the compiler, which still simulates it.
    #[test]
    fn a_plan_the_runtime_cannot_run_is_refused_when_compiled() {
        use veil_ir::{Domain, Graph, Op, TensorType};
        let mut g = Graph::new("elementwise");
        let x = g.add_input("x", TensorType::f32(vec![1, 2, 3]));
        let w = g.add_const("w", vec![3, 3], Domain::Server, vec![0.5, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.5]);
        let s = g.add_const("s", vec![1, 2, 3], Domain::Server, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let a = g.add_node("dense", "a", Op::Dense { weight: w, bias: None }, &[x]).unwrap();
        let b = g.add_node("scale", "b", Op::Affine { scale: Some(s), shift: None }, &[a]).unwrap();
        let y = g.add_node("reveal", "y", Op::Reveal, &[b]).unwrap();
        g.outputs.push(y);
        let opts =
            CompileOptions { passes: Options { input_bound: 4.0, ..Options::default() }, ..CompileOptions::default() };
        let c = compile(g, &opts).unwrap();
        let e = c.unsupported.expect("the runtime does not run it");
        assert!(e.to_string().contains("\"scale\""), "{e}");
        assert!(
            veil_ir::eval::run_fixed(&c.graph, &[veil_ir::Tensor::new(vec![1, 2, 3], vec![1.0; 6]).unwrap()], 0)
                .is_ok()
        );
    }
}
