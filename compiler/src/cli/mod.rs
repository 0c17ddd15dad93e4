//! Argument parsing and the subcommands.

mod bench;
mod compile;
mod eval;
mod explore;
mod ir;
mod load;
mod procs;
mod run;
mod simulate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use veil_compiler::onnx::{ImportError, ImportOptions};

/// A failed command: what to print and the exit code.
pub struct CliError {
    pub code: u8,
    pub error: anyhow::Error,
}

impl CliError {
    /// The user's input was rejected (exit code 1).
    pub fn user(error: impl Into<anyhow::Error>) -> Self {
        Self { code: 1, error: error.into() }
    }

    /// An I/O or internal failure (exit code 2).
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self { code: 2, error: error.into() }
    }
}

impl From<ImportError> for CliError {
    fn from(e: ImportError) -> Self {
        let code = if e.is_user_error() { 1 } else { 2 };
        Self { code, error: e.into() }
    }
}

#[derive(Parser)]
#[command(name = "veilc", version, about = "Veil compiler: ONNX models to two-party secure-inference plans")]
#[command(
    long_about = "Veil compiler: reads ONNX models, lowers them to Veil's IR, and (with the passes) compiles them \
into two-party secure-inference plans.\n\nExit codes: 0 success, 1 a named file or input rejected (missing, unreadable, malformed), 2 an \
internal error or a failed write."
)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

/// Options every command that reads a model takes.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// The ONNX model.
    #[arg(value_name = "MODEL.onnx")]
    model: PathBuf,
    /// Size of a dynamic batch dimension.
    #[arg(long, default_value_t = 1, value_name = "N", help_heading = "Input")]
    batch: usize,
}

impl ModelArgs {
    fn import(&self) -> Result<veil_ir::Graph, CliError> {
        Ok(veil_compiler::onnx::import_file(&self.model, &ImportOptions { batch: self.batch })?)
    }

    /// Reads the model's input file `path`; a file of raw bytes (ml_dtypes' small integer and
    /// float types) is read as the type the model declares for its input.
    fn read_input(&self, path: &std::path::Path) -> Result<veil_ir::Tensor, CliError> {
        self.read_input_at(path, 0)
    }

    /// Graph input `i` from `path` (raw bytes decoded as the type the model declares).
    fn read_input_at(&self, path: &std::path::Path, i: usize) -> Result<veil_ir::Tensor, CliError> {
        let at = || format!("input {}", path.display());
        match veil_ir::npy::read_npy(path) {
            Err(veil_ir::npy::NpyError::DType { .. }) => {
                let raw = self.import()?.raw_input(i);
                anyhow::Context::with_context(veil_ir::npy::read_npy_as(path, raw), at).map_err(CliError::user)
            }
            other => anyhow::Context::with_context(other, at).map_err(CliError::user),
        }
    }

    /// The model's inputs, one file each in the graph's order: as many as it has.
    fn read_inputs(&self, paths: &[std::path::PathBuf]) -> Result<Vec<veil_ir::Tensor>, CliError> {
        let g = self.import()?;
        if paths.len() != g.inputs.len() {
            let names: Vec<&str> = g.inputs.iter().map(|&v| g.values[v].name.as_str()).collect();
            return Err(CliError::user(anyhow::anyhow!(
                "the model has {} input(s) ({}); give --input once for each, in that order ({} given)",
                names.len(),
                names.join(", "),
                paths.len()
            )));
        }
        paths.iter().enumerate().map(|(i, p)| self.read_input_at(p, i)).collect()
    }
}

impl From<veil_compiler::CompileError> for CliError {
    fn from(e: veil_compiler::CompileError) -> Self {
        let code = if e.is_user_error() { 1 } else { 2 };
        Self { code, error: e.into() }
    }
}

impl From<veil_passes::PassError> for CliError {
    fn from(e: veil_passes::PassError) -> Self {
        let code = if e.is_user_error() { 1 } else { 2 };
        Self { code, error: e.into() }
    }
}

/// How activations are computed (the compilation options every command shares).
#[derive(clap::Args)]
pub struct CompileArgs {
    /// ReLU policy: exact GC ReLU, Circa stochastic ReLU, or a polynomial.
    #[arg(long, default_value = "relu", value_name = "relu|circa|poly", help_heading = "Compilation")]
    activation: veil_passes::Activation,
    /// Per-layer policy by ONNX node name (repeatable).
    #[arg(long = "layer", value_name = "NAME=relu|circa|poly", value_parser = parse_layer, help_heading = "Compilation")]
    layers: Vec<(String, veil_passes::Activation)>,
    /// Coefficients a,b,c of the replacement polynomial a·x² + b·x + c.
    #[arg(long, default_value = "1,1,0", value_name = "a,b,c", value_parser = parse_poly, help_heading = "Compilation")]
    poly: [f32; 3],
    /// Circa: low bits dropped before the sign test (default: chosen per layer).
    #[arg(long, value_name = "K", help_heading = "Compilation")]
    drop_bits: Option<u8>,
    /// Circa without --drop-bits: each layer drops s − E bits of its scale-s operand, so its
    /// sign test errs only on values below 2^−E.
    #[arg(long, default_value_t = veil_passes::quantize::CIRCA_ERROR_BITS, value_name = "E", help_heading = "Compilation")]
    circa_error_bits: u8,
    /// Keep at most N ReLU activations: measure each ReLU layer's importance on the --calibrate
    /// data (the accuracy lost when that layer alone is replaced), keep the most important
    /// layers within N as --activation, replace the rest with the polynomial.
    #[arg(long, value_name = "N", help_heading = "Compilation")]
    relu_budget: Option<usize>,
    /// Circa: which way the sign test errs.
    #[arg(long, default_value = "pos-zero", value_name = "pos-zero|neg-pass", value_parser = parse_variant, help_heading = "Compilation")]
    circa_variant: veil_ir::CircaVariant,
    /// Circa: fault budget per sign test for share wrap-around (beyond the near-zero faults of
    /// --circa-error-bits), as 1e-6 or 2^-20; each layer's sign test runs in the narrowest ring
    /// meeting it, given the value's bound from range analysis (docs/decisions.md).
    #[arg(long, default_value = "2^-20", value_name = "P", value_parser = veil_passes::parse_fault_rate, help_heading = "Compilation")]
    circa_fault_rate: f64,
    /// Make every truncation exact, in a garbled circuit: no local share truncation, whose ±1
    /// error depends on the secret value and reaches the output (a small leak, see
    /// docs/threat-model.md); refuses Circa for the same reason. Costs about 2ℓ AND gates per
    /// element of each truncation that cannot fuse into a ReLU or MaxPool.
    #[arg(long, help_heading = "Compilation")]
    exact_truncation: bool,
    /// Round the truncation fused into each garbled ReLU and MaxPool stochastically: each party
    /// shifts its own share, so the circuit reads F fewer bits of each (F fewer AND gates and
    /// online labels per element); ⌊x/2^F⌋ or one more, unbiased, like a local truncation but
    /// without its wrap (docs/decisions.md). Off: exact, as --exact-truncation keeps it.
    #[arg(long, help_heading = "Compilation", conflicts_with = "exact_truncation")]
    stochastic_truncation: bool,
    /// Keep truncations that fuse into no circuit local (each party shifts its own share) even
    /// where exact ones are predicted faster. Without it, a plan with local truncations is
    /// compiled both ways and the one the cost model predicts faster on --network is kept
    /// (exact ones drop the ring's 40 bits of headroom; the report says which and why).
    #[arg(long, help_heading = "Compilation", conflicts_with_all = ["exact_truncation", "stochastic_truncation"])]
    local_truncation: bool,
    /// Fixed point, with --calibrate: bits of margin above the calibrated ranges (after their ×2
    /// headroom) in the ring, the narrowed garbled reads and Circa's test rings. Each bit fewer
    /// saves 16 B of online labels per garbled ReLU; data beyond the margin wraps (a wrong
    /// result), which `veilc eval` and `veilc simulate` count as narrow overflows.
    #[arg(long, default_value_t = veil_passes::quantize::CALIBRATED_MARGIN_BITS, value_name = "M", help_heading = "Fixed point")]
    range_margin_bits: u8,
    /// Fixed point: fractional bits the weights of dense and convolution layers get beyond
    /// their layer's F (0 to 8). By default the precision search tries 0 and 2 and keeps the
    /// narrower ring; with --frac-bits, 0.
    #[arg(long, value_name = "B", value_parser = clap::value_parser!(u8).range(0..=8), help_heading = "Fixed point")]
    weight_extra_bits: Option<u8>,
    /// Fixed point: fractional bits of activations and weights; disables the automatic choice
    /// of --max-error.
    #[arg(long, value_name = "F", help_heading = "Fixed point", conflicts_with = "max_error")]
    frac_bits: Option<u8>,
    /// Fixed point, with --frac-bits: node NAME's own fractional bits (its weights and the scale
    /// it lowers its operands to), repeatable. The automatic choice sets these itself where a
    /// lower F narrows the ring.
    #[arg(long = "layer-frac-bits", value_name = "NAME=F", value_parser = parse_layer_frac, requires = "frac_bits", help_heading = "Fixed point")]
    layer_frac_bits: Vec<(String, u8)>,
    /// Fixed point: without --frac-bits, choose the smallest F whose simulated output error is
    /// at most E: max |fixed − float| over the samples (the first 32 --calibrate inputs, else 8 random
    /// inputs within --input-bound), divided by the range (max − min) of the float output
    /// over them. A fraction (0.01) or a percentage (1%); default 1%.
    #[arg(long, value_name = "E", value_parser = parse_fraction, help_heading = "Fixed point")]
    max_error: Option<f64>,
    /// Fixed point: ring width ℓ (default: from range analysis, at most 61).
    #[arg(long, value_name = "L", help_heading = "Fixed point")]
    ring_bits: Option<u8>,
    /// Fixed point: calibrate value ranges on the inputs in this .npz (array --calibrate-key).
    #[arg(long, value_name = "data.npz", help_heading = "Fixed point")]
    calibrate: Option<PathBuf>,
    /// Fixed point: the array of --calibrate holding the inputs.
    #[arg(long, default_value = "x", value_name = "KEY", help_heading = "Fixed point")]
    calibrate_key: String,
    /// Fixed point: without --calibrate, the bound assumed on |input| (default 1; `veilc run` and
    /// `simulate`: the given input's largest magnitude, at least 1).
    #[arg(long, value_name = "B", help_heading = "Fixed point")]
    input_bound: Option<f32>,
    #[command(flatten)]
    net: NetworkArgs,
    /// What protocol assignment minimises: predicted online latency, or offline + online.
    #[arg(long, default_value = "online", value_name = "online|total", help_heading = "Cost model")]
    objective: veil_passes::Objective,
    /// Dense layers' offline correlation: chosen by the cost model, or always HE / OT.
    #[arg(long, default_value = "auto", value_name = "auto|he|ot", help_heading = "Cost model")]
    linear_offline: veil_passes::LinearChoice,
    /// Exact ReLUs (with a fused truncation), Clips to [0, hi] (ReLU6), LeakyReLUs, MaxPools of
    /// ReLU outputs, Circa's sign tests and unfused exact truncations (--exact-truncation):
    /// garbled circuits, the OT comparison protocol, or chosen per layer by the cost model.
    #[arg(long, default_value = "auto", value_name = "gc|ot|auto", help_heading = "Cost model")]
    nonlinear: veil_passes::NonlinearChoice,
    /// Garbled circuits' scheme: half-gates (two ciphertexts per AND), three halves (23 % fewer
    /// table bytes, slower to garble and evaluate), or the cost model's choice for --network.
    #[arg(
        long,
        default_value = "half-gates",
        value_name = "half-gates|three-halves|auto",
        help_heading = "Cost model"
    )]
    garbling: veil_passes::GarblingChoice,
    /// The OT extension of the chosen-input OT batches (garbled circuits' input labels, dense
    /// layers' Gilboa products, Circa's and the products' correlations): iknp (16–32 bytes per
    /// OT, fast), silent (a bit per OT and a few hundred KB per batch, slower to compute), or
    /// the cost model's choice for --network.
    #[arg(long, default_value = "iknp", value_name = "iknp|silent|auto", help_heading = "Cost model")]
    ot_extension: veil_passes::OtExtensionChoice,
}

/// The network profile the cost model plans for and predicts under.
#[derive(clap::Args)]
pub struct NetworkArgs {
    /// Network profile the protocols are chosen for and the times predicted under: lan
    /// (1 Gbit/s, 0.2 ms RTT) or wan (100 Mbit/s, 40 ms RTT).
    #[arg(long, default_value = "lan", value_parser = ["lan", "wan"], help_heading = "Cost model")]
    network: String,
    /// Override the profile's bandwidth (Mbit/s).
    #[arg(long, value_name = "MBIT_S", help_heading = "Cost model")]
    bandwidth: Option<f64>,
    /// Override the profile's round-trip time (ms).
    #[arg(long, value_name = "MS", help_heading = "Cost model")]
    rtt: Option<f64>,
}

impl NetworkArgs {
    /// The profile with the `--bandwidth`/`--rtt` overrides (checked).
    fn network(&self) -> Result<veil_passes::cost::Network, CliError> {
        use veil_passes::cost::Network;
        let mut n = if self.network == "wan" { Network::WAN } else { Network::LAN };
        if let Some(b) = self.bandwidth {
            if !(b.is_finite() && b > 0.0) {
                return Err(CliError::user(anyhow::anyhow!("--bandwidth must be a positive number of Mbit/s")));
            }
            n.bandwidth_mbit_s = b;
        }
        if let Some(r) = self.rtt {
            if !(r.is_finite() && r >= 0.0) {
                return Err(CliError::user(anyhow::anyhow!("--rtt must be a non-negative number of ms")));
            }
            n.rtt_ms = r;
        }
        Ok(n)
    }
}

/// A compiled model.
struct Compiled {
    /// The imported (float) graph.
    float: veil_ir::Graph,
    /// The compiled (fixed-point) graph.
    fixed: veil_ir::Graph,
    runs: Vec<veil_passes::PassRun>,
    /// The plan and weights (after the whole pipeline), or the step the runtime cannot run.
    files: Result<Option<veil_compiler::PlanFiles>, veil_ir::schedule::Unsupported>,
    /// What `--relu-budget` chose, if given.
    budget: Option<veil_compiler::explore::BudgetChoice>,
    /// What the precision search chose (without `--frac-bits`).
    precision: Option<veil_passes::precision::Choice>,
}

/// The plan and weights to write or run: a plan the runtime cannot run is the model's refusal.
fn runnable(
    files: Result<Option<veil_compiler::PlanFiles>, veil_ir::schedule::Unsupported>,
) -> Result<veil_compiler::PlanFiles, CliError> {
    match files {
        Ok(Some(f)) => Ok(f),
        Ok(None) => Err(CliError::internal(anyhow::anyhow!("the whole pipeline ran but no plan was encoded"))),
        Err(u) => Err(CliError::user(anyhow::anyhow!(
            "the compiled plan cannot run between two parties: {u} (`veilc simulate` still computes it)"
        ))),
    }
}

/// Model inputs for graph `g` from the `.npz` at `path`: array `key` for a one-input model, else
/// one array per input named as the input, the same number of samples each; one tensor per
/// input per sample, as [`veil_passes::Options::calibration`] takes them.
fn npz_inputs(path: &std::path::Path, key: &str, g: &veil_ir::Graph) -> Result<Vec<veil_ir::Tensor>, CliError> {
    let per_input = g
        .inputs
        .iter()
        .map(|&v| {
            let key = if g.inputs.len() == 1 { key } else { g.values[v].name.as_str() };
            let at = |e: String| CliError::user(anyhow::anyhow!("{}: array {key:?}: {e}", path.display()));
            // Integers (token ids, uint8 images) are reals like any input's.
            let x = veil_ir::npy::read_npz(path, key).map_err(CliError::user)?.into_reals().map_err(at)?;
            veil_passes::range::samples(&x, &g.values[v].ty.shape).map_err(at)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let n = per_input.first().map_or(0, Vec::len);
    if per_input.iter().any(|s| s.len() != n) {
        let counts: Vec<usize> = per_input.iter().map(Vec::len).collect();
        return Err(CliError::user(anyhow::anyhow!(
            "{}: the inputs' arrays hold different numbers of samples ({counts:?})",
            path.display()
        )));
    }
    Ok((0..n).flat_map(|i| per_input.iter().map(move |s| s[i].clone())).collect())
}

/// The integer class labels in array `key` of the `.npz` at `path`, if it has that array; `n`
/// samples need at least `n` labels.
fn npz_labels(path: &std::path::Path, key: &str, n: usize) -> Result<Option<Vec<i64>>, CliError> {
    match veil_ir::npy::read_npz(path, key) {
        Ok(veil_ir::npy::NpzArray::Int { data, .. }) if data.len() >= n => Ok(Some(data)),
        Ok(veil_ir::npy::NpzArray::Int { data, .. }) => {
            Err(CliError::user(anyhow::anyhow!("{} has {} labels for {n} samples", path.display(), data.len())))
        }
        Ok(veil_ir::npy::NpzArray::Float(_)) => {
            Err(CliError::user(anyhow::anyhow!("{}: array {key:?} must hold integer labels", path.display())))
        }
        Err(veil_ir::npy::NpyError::Format { .. }) if key == "y" => Ok(None),
        Err(e) => Err(CliError::user(e)),
    }
}

fn explore_error(e: veil_compiler::explore::ExploreError) -> CliError {
    if e.is_user_error() { CliError::user(e) } else { CliError::internal(e) }
}

fn parse_layer(s: &str) -> Result<(String, veil_passes::Activation), String> {
    let (name, policy) = s.rsplit_once('=').ok_or_else(|| format!("expected NAME=relu|circa|poly, got {s:?}"))?;
    Ok((name.to_string(), policy.parse()?))
}

fn parse_layer_frac(s: &str) -> Result<(String, u8), String> {
    let (name, f) = s.rsplit_once('=').ok_or_else(|| format!("expected NAME=F, got {s:?}"))?;
    Ok((name.to_string(), f.trim().parse().map_err(|_| format!("{f:?} is not a number of fractional bits"))?))
}

fn parse_poly(s: &str) -> Result<[f32; 3], String> {
    let v: Vec<f32> =
        s.split(',').map(|x| x.trim().parse::<f32>().map_err(|e| format!("{x:?}: {e}"))).collect::<Result<_, _>>()?;
    <[f32; 3]>::try_from(v.as_slice()).map_err(|_| format!("expected three coefficients a,b,c, got {s:?}"))
}

/// A positive fraction: `0.01` or `1%`.
fn parse_fraction(s: &str) -> Result<f64, String> {
    let (num, scale) = match s.trim().strip_suffix('%') {
        Some(p) => (p.trim(), 0.01),
        None => (s.trim(), 1.0),
    };
    let v = num.parse::<f64>().map_err(|e| format!("{s:?}: {e}"))? * scale;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("expected a positive fraction (0.01) or percentage (1%), got {s:?}"))
    }
}

fn parse_variant(s: &str) -> Result<veil_ir::CircaVariant, String> {
    match s {
        "pos-zero" => Ok(veil_ir::CircaVariant::PosZero),
        "neg-pass" => Ok(veil_ir::CircaVariant::NegPass),
        _ => Err(format!("expected pos-zero or neg-pass, got {s:?}")),
    }
}

impl CompileArgs {
    /// `veilc run` and `simulate` on one input: without `--input-bound` or `--calibrate`, compile
    /// for that input's largest magnitude (at least 1), and say so on stderr. One rule for both
    /// commands; `compile` keeps the default bound of 1.
    pub fn bound_from_input(&mut self, xs: &[veil_ir::Tensor]) {
        if self.input_bound.is_none() && self.calibrate.is_none() {
            let b = xs.iter().flat_map(|x| &x.data).fold(1f32, |m, v| m.max(v.abs()));
            eprintln!(
                "compiling for |input| ≤ {b} (this input's largest magnitude; --input-bound or --calibrate for others)"
            );
            self.input_bound = Some(b);
        }
    }

    fn network(&self) -> Result<veil_passes::cost::Network, CliError> {
        self.net.network()
    }

    /// The pass options for model `g` (reads the calibration data, if any), with what
    /// `--relu-budget` chose.
    fn options(
        &self,
        g: &veil_ir::Graph,
    ) -> Result<(veil_passes::Options, Option<veil_compiler::explore::BudgetChoice>), CliError> {
        let calibration = match &self.calibrate {
            Some(p) => npz_inputs(p, &self.calibrate_key, g)?,
            None => Vec::new(),
        };
        let opts = veil_passes::Options {
            activation: self.activation,
            layer_activation: self.layers.iter().cloned().collect(),
            poly: self.poly,
            drop_bits: self.drop_bits,
            circa_error_bits: self.circa_error_bits,
            circa_variant: self.circa_variant,
            circa_fault_rate: self.circa_fault_rate,
            frac_bits: self.frac_bits.unwrap_or(veil_passes::Options::default().frac_bits),
            layer_frac_bits: self.layer_frac_bits.iter().cloned().collect(),
            ring_bits: self.ring_bits,
            range_margin_bits: self.range_margin_bits,
            weight_extra_bits: self.weight_extra_bits,
            calibration,
            input_bound: self.input_bound.unwrap_or(1.0),
            network: self.network()?,
            objective: self.objective,
            linear_offline: self.linear_offline,
            nonlinear: self.nonlinear,
            garbling: self.garbling,
            ot_extension: self.ot_extension,
            exact_truncation: self.exact_truncation,
            stochastic_truncation: self.stochastic_truncation,
        };
        let Some(budget) = self.relu_budget else { return Ok((opts, None)) };
        let Some(path) = &self.calibrate else {
            return Err(CliError::user(anyhow::anyhow!(
                "--relu-budget measures layer importance on data: give it with --calibrate data.npz"
            )));
        };
        let data = veil_compiler::explore::Dataset {
            xs: opts.calibration.clone(),
            labels: npz_labels(path, "y", opts.calibration.len())?,
        };
        let (opts, choice) = veil_compiler::explore::apply_budget(g, &opts, budget, &data, 0).map_err(explore_error)?;
        Ok((opts, Some(choice)))
    }

    /// Imports `model` and runs the whole pipeline, with the verifier after every pass (it costs
    /// microseconds; an invalid graph is a compiler bug to report, never a plan to run): the
    /// float graph, the compiled one, what each pass did, and the plan and weights.
    fn compile(&self, model: &ModelArgs) -> Result<Compiled, CliError> {
        self.compile_until(model, None)
    }

    /// [`CompileArgs::compile`] up to `until` (`None`: the whole pipeline).
    fn compile_until(&self, model: &ModelArgs, until: Option<veil_passes::Stage>) -> Result<Compiled, CliError> {
        let float = model.import()?;
        let (passes, budget) = self.options(&float)?;
        let opts = veil_compiler::CompileOptions {
            passes,
            max_error: self.max_error(),
            until,
            choose_truncation: !self.local_truncation,
            ..Default::default()
        };
        let c = veil_compiler::compile(float, &opts)?;
        let files = match c.unsupported {
            Some(u) => Err(u),
            None => Ok(c.files),
        };
        Ok(Compiled { float: c.float, fixed: c.graph, runs: c.runs, files, budget, precision: c.precision })
    }

    /// The precision target: none with `--frac-bits`, else `--max-error` or its default.
    fn max_error(&self) -> Option<f64> {
        match self.frac_bits {
            Some(_) => None,
            None => Some(self.max_error.unwrap_or(veil_passes::precision::DEFAULT_MAX_ERROR)),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Compile a model into a plan (public) and a weights file (server only).
    Compile(compile::CompileCmd),
    /// Print the lowered IR of a model.
    Ir(ir::IrArgs),
    /// Run a model in plaintext on one input: fixed point exactly as the two parties compute it
    /// (or the float reference with --float).
    Simulate(simulate::SimulateArgs),
    /// Accuracy of the compiled model against its float reference over a data set.
    Eval(eval::EvalArgs),
    /// Compile, then run the plan between a `veil server` and a `veil client` process on
    /// localhost: the prediction, the float model's beside it, and the costs.
    Run(run::RunArgs),
    /// Benchmark models under activation policies between two processes, on loopback and over
    /// an emulated WAN: seconds, bytes each way and rounds per phase, beside the predictions.
    Bench(bench::BenchArgs),
    /// The accuracy/cost trade-off of the activations: sweep exact ReLU, Circa and polynomial
    /// layers, predict each configuration's latency and bytes, simulate its accuracy, plot the
    /// Pareto front (pareto.csv, .svg, .png); --verify K runs K front points between two processes.
    Explore(explore::ExploreArgs),
    /// Load test: one `veil server` process and N concurrent client processes running the model
    /// again and again; checks every result, samples the server's memory and descriptors.
    Load(load::LoadArgs),
}

pub fn run(args: Args) -> Result<(), CliError> {
    match args.command {
        Command::Compile(a) => compile::run(a),
        Command::Ir(a) => ir::run(a),
        Command::Simulate(a) => simulate::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Run(a) => run::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Explore(a) => explore::run(a),
        Command::Load(a) => load::run(a),
    }
}

/// Writes `bytes` to `path` ([`veil_ir::files::write_output`]: atomically for a regular file,
/// through a link or special file), or to stdout when `path` is `None` or `-`.
fn emit(path: Option<&PathBuf>, bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    match path.filter(|p| !veil_ir::files::is_stdout(p)) {
        Some(p) => veil_ir::files::write_output(p, bytes)
            .map_err(|e| CliError::internal(anyhow::Error::new(e).context(format!("cannot write {}", p.display())))),
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(bytes).and_then(|_| out.flush()) {
                // A closed pipe (`veilc ir m.onnx | head`) is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                r => r.map_err(|e| CliError::internal(anyhow::Error::new(e).context("cannot write to stdout"))),
            }
        }
    }
}
