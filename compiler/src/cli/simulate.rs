//! `veilc simulate`: plaintext execution of a model on one input.

use std::path::PathBuf;

use anyhow::anyhow;
use veil_ir::{ElemType, Tensor};

use super::{CliError, ModelArgs, emit};

#[derive(clap::Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The input tensor (.npy, float32 or float64, C or Fortran order).
    #[arg(long, value_name = "x.npy", help_heading = "Input")]
    input: PathBuf,
    /// Run the float reference interpreter (before quantisation).
    #[arg(long)]
    float: bool,
    /// Write the (first) output to this .npy file.
    #[arg(long, value_name = "y.npy", help_heading = "Output")]
    output: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long, help_heading = "Output")]
    json: bool,
}

/// `x` in `shape`, accepting a file that only lacks a leading batch dimension of 1.
fn fit_input(x: Tensor, shape: &[usize], name: &str) -> Result<Tensor, CliError> {
    if x.shape == shape || (shape.first() == Some(&1) && x.shape == shape[1..]) {
        return Ok(Tensor { shape: shape.to_vec(), data: x.data });
    }
    Err(CliError::user(anyhow!("input {name:?} must have shape {shape:?}, the file holds {:?}", x.shape)))
}

fn top(t: &Tensor) -> Option<(usize, f32)> {
    let rows = t.shape.iter().rev().skip(1).product::<usize>();
    (rows == 1 && t.data.len() > 1).then(|| {
        t.data.iter().copied().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, v)| if v > b.1 { (i, v) } else { b })
    })
}

pub fn run(a: SimulateArgs) -> Result<(), CliError> {
    if !a.float {
        return Err(CliError::user(anyhow!(
            "fixed-point simulation needs the compiler passes, which are not built yet; pass --float for the float reference"
        )));
    }
    let g = a.model.import()?;
    let [input] = g.inputs[..] else {
        return Err(CliError::user(anyhow!(
            "the model has {} inputs; `simulate` takes models with one input",
            g.inputs.len()
        )));
    };
    let value = &g.values[input];
    let x = veil_ir::npy::read_npy(&a.input).map_err(CliError::user)?;
    let x = fit_input(x, &value.ty.shape, &value.name)?;
    let outs = veil_ir::eval::run_float(&g, &[x]).map_err(CliError::user)?;
    if let Some(path) = &a.output {
        let elem = g.values[g.outputs[0]].ty.elem;
        emit(Some(path), &veil_ir::npy::encode_npy(&outs[0], elem))?;
    }
    let mut text = String::new();
    if a.json {
        let items: Vec<serde_json::Value> = g
            .outputs
            .iter()
            .zip(&outs)
            .map(|(&v, t)| {
                let mut o = serde_json::json!({"name": g.values[v].name, "shape": t.shape, "values": t.data});
                if let Some((i, s)) = top(t) {
                    o["top1"] = serde_json::json!({"class": i, "score": s});
                }
                o
            })
            .collect();
        text = serde_json::json!({"mode": "float", "outputs": items}).to_string() + "\n";
    } else {
        for (&v, t) in g.outputs.iter().zip(&outs) {
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
    }
    emit(None, text.as_bytes())
}
