//! `veilc simulate`: plaintext execution of a model on an input, in fixed point exactly as the
//! two parties compute it (the default), or with the float reference (`--float`).

use std::path::PathBuf;

use anyhow::anyhow;
use veil_ir::{ElemType, Graph, Tensor};

use super::{CliError, CompileArgs, ModelArgs, emit};

#[derive(clap::Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    compile: CompileArgs,
    /// The input tensor (.npy, float32 or float64, C or Fortran order); for a model with several
    /// inputs, once per input in the model's order.
    #[arg(long, value_name = "x.npy", help_heading = "Input", required = true)]
    input: Vec<PathBuf>,
    /// Run the float reference interpreter (before quantisation) instead.
    #[arg(long)]
    float: bool,
    /// Seed of the simulated share masks (Circa faults, local truncation).
    #[arg(long, default_value_t = 0, help_heading = "Input")]
    seed: u64,
    /// Write the (first) output to this .npy file.
    #[arg(long, value_name = "y.npy", help_heading = "Output")]
    output: Option<PathBuf>,
    /// Print the result as JSON on stdout instead of the text (`mode`, `outputs`: name,
    /// shape, values, top-1 of each output).
    #[arg(long, help_heading = "Output")]
    json: bool,
    /// Run inputs beyond the bound the model was compiled for (warns: values may overflow).
    #[arg(long, help_heading = "Input")]
    allow_out_of_range: bool,
    /// With a .plan: its weights file (default: the .weights beside it).
    #[arg(long, value_name = "FILE", help_heading = "Input")]
    weights: Option<PathBuf>,
}

/// Loads a compiled plan and its weights: the graph the runtime will execute.
fn load_plan(plan: &std::path::Path, weights: &std::path::Path) -> Result<Graph, CliError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p)
            .map_err(|e| CliError::user(anyhow::Error::new(e).context(format!("cannot read {}", p.display()))))
    };
    let ctx = |p: &std::path::Path| {
        let p = p.display().to_string();
        move |e: veil_ir::plan::PlanError| CliError::user(anyhow::Error::new(e).context(format!("cannot load {p}")))
    };
    let (mut decoded, hash) = veil_ir::plan::decode_plan(&read(plan)?).map_err(ctx(plan))?;
    veil_ir::plan::attach_weights(&mut decoded, &hash, &read(weights)?).map_err(ctx(weights))?;
    Ok(decoded.graph)
}

/// `x` in `shape`, accepting a file that only lacks a leading batch dimension of 1.
fn fit_input(x: Tensor, shape: &[usize], name: &str) -> Result<Tensor, CliError> {
    if x.shape == shape || (shape.first() == Some(&1) && x.shape == shape[1..]) {
        return Ok(Tensor { shape: shape.to_vec(), data: x.data });
    }
    let hint = veil_ir::eval::batch_hint(shape, &x.shape);
    Err(CliError::user(anyhow!("input {name:?} must have shape {shape:?}, the file holds {:?}{hint}", x.shape)))
}

/// The inputs of `g` (`what`: "model" or "plan"), one file each in its order.
fn read_inputs(paths: &[PathBuf], g: &Graph, what: &str) -> Result<Vec<Tensor>, CliError> {
    if paths.len() != g.inputs.len() {
        let names: Vec<&str> = g.inputs.iter().map(|&v| g.values[v].name.as_str()).collect();
        return Err(CliError::user(anyhow!(
            "the {what} has {} input(s) ({}); give --input once for each, in that order ({} given)",
            names.len(),
            names.join(", "),
            paths.len()
        )));
    }
    let read = |(i, (p, &v)): (usize, (&PathBuf, &veil_ir::ValueId))| {
        let x = veil_ir::npy::read_npy_as(p, g.raw_input(i)).map_err(CliError::user)?;
        fit_input(x, &g.values[v].ty.shape, &g.values[v].name)
    };
    paths.iter().zip(&g.inputs).enumerate().map(read).collect()
}

fn top(t: &Tensor) -> Option<(usize, f32)> {
    let rows = t.shape.iter().rev().skip(1).product::<usize>();
    (rows == 1 && t.data.len() > 1).then(|| {
        t.data.iter().copied().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, v)| if v > b.1 { (i, v) } else { b })
    })
}

fn max_abs_diff(a: &[Tensor], b: &[Tensor]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.data.iter().zip(&y.data).map(|(p, q)| (*p as f64 - *q as f64).abs()))
        .fold(0.0, f64::max)
}

pub fn run(mut a: SimulateArgs) -> Result<(), CliError> {
    if a.model.model.extension().is_some_and(|e| e == "plan") {
        if a.float {
            return Err(CliError::user(anyhow!(
                "--float needs the ONNX model; a plan holds only the fixed-point program"
            )));
        }
        let weights = a.weights.clone().unwrap_or_else(|| a.model.model.with_extension("weights"));
        let mut g = load_plan(&a.model.model, &weights)?;
        allow(&a, &mut g);
        let xs = read_inputs(&a.input, &g, "plan")?;
        let run = veil_ir::eval::run_fixed(&g, &xs, a.seed).map_err(CliError::user)?;
        return finish(&a, &g, &run.outputs, None, Some(&run));
    }
    let float = a.model.import()?;
    let xs = read_inputs(&a.input, &float, "model")?;
    let reference = veil_ir::eval::run_float(&float, &xs).map_err(CliError::user)?;
    let (g, outs, fixed): (Graph, Vec<Tensor>, Option<veil_ir::eval::FixedRun>) = if a.float {
        (float, reference.clone(), None)
    } else {
        a.compile.bound_from_input(&xs);
        let super::Compiled { fixed: mut g, budget, .. } = a.compile.compile(&a.model)?;
        if let Some(b) = &budget {
            eprint!("{b}");
        }
        allow(&a, &mut g);
        let run = veil_ir::eval::run_fixed(&g, &xs, a.seed).map_err(CliError::user)?;
        (g, run.outputs.clone(), Some(run))
    };
    finish(&a, &g, &outs, Some(&reference), fixed.as_ref())
}

/// With `--allow-out-of-range`, lifts the input bound (and says so on stderr).
fn allow(a: &SimulateArgs, g: &mut Graph) {
    if a.allow_out_of_range
        && let Some(b) = g.input_bound.take()
    {
        eprintln!("warning: inputs beyond |x| ≤ {b} are not refused; values may overflow the ring");
    }
}

/// Writes `--output` and prints the outputs (and, with a reference, the error against it).
fn finish(
    a: &SimulateArgs,
    g: &Graph,
    outs: &[Tensor],
    reference: Option<&[Tensor]>,
    fixed: Option<&veil_ir::eval::FixedRun>,
) -> Result<(), CliError> {
    if let Some(path) = &a.output {
        let elem = g.values[g.outputs[0]].ty.elem;
        emit(Some(path), &veil_ir::npy::encode_npy(&outs[0], elem))?;
    }
    let mode = if a.float { "float" } else { "fixed" };
    let err = reference.map(|r| max_abs_diff(outs, r));
    let text = if a.json {
        let items: Vec<serde_json::Value> = g
            .outputs
            .iter()
            .zip(outs)
            .map(|(&v, t)| {
                let mut o = serde_json::json!({"name": g.values[v].name, "shape": t.shape, "values": t.data});
                if let Some((i, s)) = top(t) {
                    o["top1"] = serde_json::json!({"class": i, "score": s});
                }
                o
            })
            .collect();
        let mut j = serde_json::json!({"mode": mode, "outputs": items});
        if let Some(r) = fixed {
            j["max_abs_error"] = err.into();
            j["ring_bits"] = g.ring_bits.into();
            j["circa_faults"] = r.circa_faults.into();
            j["circa_wrap_faults"] = r.circa_wrap_faults.into();
            j["circa_tests"] = r.circa_tests.into();
            j["narrow_overflows"] = r.narrow_overflows.into();
        }
        j.to_string() + "\n"
    } else {
        let mut text = String::new();
        for (&v, t) in g.outputs.iter().zip(outs) {
            let value = &g.values[v];
            let shown: Vec<String> = t
                .data
                .iter()
                .take(32)
                .map(|x| if value.ty.elem == ElemType::I64 { format!("{}", *x as i64) } else { format!("{x:.6}") })
                .collect();
            let more = if t.data.len() > 32 { format!(", ... ({} values)", t.data.len()) } else { String::new() };
            text += &format!("{} {:?}: [{}{}]\n", value.name, t.shape, shown.join(", "), more);
            if let Some((i, s)) = top(t).filter(|_| value.ty.elem != ElemType::I64) {
                text += &format!("top-1: class {i} (score {s:.6})\n");
            }
        }
        if let Some(r) = fixed {
            match err {
                Some(err) => {
                    text += &format!("max |fixed − float| = {err:.6} (ring {} bits)", g.ring_bits.unwrap_or(0))
                }
                None => text += &format!("fixed point, ring {} bits", g.ring_bits.unwrap_or(0)),
            }
            if r.circa_tests > 0 {
                text += &format!(
                    ", Circa sign faults {} of {} ({} from wrap-around)",
                    r.circa_faults, r.circa_tests, r.circa_wrap_faults
                );
            }
            text += "\n";
            if r.narrow_overflows > 0 {
                text += &format!(
                    "warning: {} element(s) read narrowed exceeded their width (the result is wrong): the input \
goes beyond the calibration data's ranges by more than the margin; recalibrate or raise --range-margin-bits\n",
                    r.narrow_overflows
                );
            }
        }
        text
    };
    emit(None, text.as_bytes())
}
