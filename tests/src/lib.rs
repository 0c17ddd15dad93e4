//! Shared helpers for the end-to-end tests (the tests live in `tests/tests/`).

use std::path::{Path, PathBuf};

use tract_onnx::prelude::*;
use veil_ir::Tensor;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The bundled models (stems of `models/*.onnx`), sorted.
pub fn bundled_models() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("models"))
        .expect("models/ exists")
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "onnx").then(|| p.file_stem().map(|s| s.to_string_lossy().into_owned()))?
        })
        .collect();
    v.sort();
    v
}

/// tract's float inference of the ONNX model at `path` on `inputs` (shapes given by the tensors).
pub fn tract_run(path: &Path, inputs: &[Tensor]) -> TractResult<Vec<Tensor>> {
    let mut model = tract_onnx::onnx().model_for_path(path)?;
    for (i, t) in inputs.iter().enumerate() {
        model = model.with_input_fact(i, f32::fact(&t.shape).into())?;
    }
    let plan = model.into_optimized()?.into_runnable()?;
    let ins: TVec<TValue> = inputs
        .iter()
        .map(|t| Ok(tract_onnx::prelude::Tensor::from_shape(&t.shape, &t.data)?.into()))
        .collect::<TractResult<_>>()?;
    plan.run(ins)?
        .iter()
        .map(|o| {
            let o = o.cast_to::<f32>()?;
            let v = o.to_plain_array_view::<f32>()?;
            Ok(Tensor { shape: v.shape().to_vec(), data: v.iter().copied().collect() })
        })
        .collect()
}

/// Largest `|a − b| / max(|b|, scale)` over the elements, where `scale` is the largest magnitude
/// in `b` times `floor` (so near-zero entries of a tensor are judged against its own scale).
pub fn max_rel_error(a: &Tensor, b: &Tensor, floor: f32) -> f32 {
    assert_eq!(a.shape, b.shape, "shapes differ");
    let scale = b.data.iter().fold(0f32, |m, x| m.max(x.abs())) * floor;
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs() / y.abs().max(scale).max(f32::MIN_POSITIVE))
        .fold(0f32, f32::max)
}

/// Bundled model `name` (`models/<name>.onnx`) through [`veil_compiler::compile`]: the whole
/// pipeline with `opts`, verified after every pass, the plan and weights encoded.
pub fn compile_bundled(
    name: &str,
    opts: veil_passes::Options,
) -> Result<veil_compiler::Compiled, veil_compiler::CompileError> {
    veil_compiler::compile(&root().join("models").join(format!("{name}.onnx")), &opts.into())
}
