//! The fuzz targets' checks (`fuzz/fuzz_targets/`) on every kept input: the regressions the
//! fuzzers found (`fuzz/regressions/<target>/`) and the seeds, so a fixed crash stays fixed
//! without nightly or libFuzzer. Each body mirrors its target.

use std::path::PathBuf;

use veil_tests::root;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = root().join("fuzz/regressions").join(target);
    let mut v: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    v.sort();
    v
}

fn seeds(dir: &str, ext: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn onnx_import_inputs() {
    let opts = veil_compiler::onnx::ImportOptions::default();
    for (p, data) in inputs("onnx_import").into_iter().chain(seeds("models/bad", "onnx")) {
        if let Ok(g) = veil_compiler::onnx::import_bytes(&data, "fuzz.onnx", "fuzz", &opts) {
            assert!(veil_ir::verify(&g).is_ok(), "{}", p.display());
        }
    }
}

#[test]
fn plan_decode_inputs() {
    for (_, data) in inputs("plan_decode") {
        let _ = veil_ir::plan::decode_plan(&data);
        if let Ok((plan, _)) = veil_ir::plan::decode_plan(&veil_ir::plan::frame_plan(&data)) {
            let _ = veil_ir::schedule::lower(&plan.graph);
            let _ = veil_passes::cost::plan_cost(&plan.graph);
        }
    }
}

#[test]
fn npy_decode_inputs() {
    for (p, data) in inputs("npy_decode").into_iter().chain(seeds("models/inputs", "npy")) {
        if let Ok(t) = veil_ir::npy::decode_npy(&data, "fuzz.npy") {
            assert_eq!(t.data.len(), t.shape.iter().product::<usize>(), "{}", p.display());
        }
    }
}

/// `onnx_compile` keeps the generated model (`VEIL_FUZZ_DUMP`), not its options: each kept
/// model, and each bundled one, is compiled under a spread of options, ring widths included.
#[test]
fn onnx_compile_inputs() {
    use veil_passes::{Activation, LinearChoice, Options};
    let variants = [
        Options::default(),
        Options { ring_bits: Some(16), ..Options::default() },
        Options { ring_bits: Some(24), frac_bits: 8, ..Options::default() },
        Options { activation: Activation::Circa, ..Options::default() },
        Options { activation: Activation::Poly, linear_offline: LinearChoice::Ot, ..Options::default() },
    ];
    let opts = veil_compiler::onnx::ImportOptions::default();
    for (p, data) in inputs("onnx_compile").into_iter().chain(seeds("models", "onnx")) {
        let Ok(float) = veil_compiler::onnx::import_bytes(&data, "fuzz.onnx", "fuzz", &opts) else { continue };
        for o in &variants {
            let files = match veil_compiler::compile(&float, &o.clone().into()) {
                Ok(c) => c.files.expect("the whole pipeline encodes"),
                Err(veil_compiler::CompileError::Pass(e)) if e.is_user_error() => continue,
                Err(e) => panic!("{}: {e}", p.display()),
            };
            let veil_compiler::PlanFiles { plan, weights, hash } = files;
            let (mut decoded, h2) = veil_ir::plan::decode_plan(&plan).unwrap();
            assert_eq!(hash, h2);
            veil_ir::plan::attach_weights(&mut decoded, &hash, &weights).unwrap();
            let lowered = veil_ir::schedule::lower(&decoded.graph);
            assert_eq!(lowered.is_ok(), veil_passes::cost::plan_cost(&decoded.graph).is_ok(), "{}", p.display());
            let x: Vec<veil_ir::Tensor> = float
                .inputs
                .iter()
                .map(|&v| {
                    let shape = float.values[v].ty.shape.clone();
                    let n = shape.iter().product::<usize>();
                    let data = (0..n).map(|i| ((i % 7) as f32 - 3.0) / 3.0 * o.input_bound.min(1.0)).collect();
                    veil_ir::Tensor::new(shape, data).unwrap()
                })
                .collect();
            veil_ir::eval::run_float(&float, &x).unwrap();
            veil_ir::eval::run_fixed(&decoded.graph, &x, 1).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
    }
}
