//! torchvision's CNN families, width/depth-reduced, each exported by both of torch's exporters
//! (`dynamo=True` with external weights, and the TorchScript one), made by
//! `models/zoo/make_zoo.py` with onnxruntime's outputs as references. For every model and
//! exporter: the import runs in float as onnxruntime does, and the plan compiled with the
//! calibrated automatic precision (`max_error` 1 %) keeps the top-1 class and the error it
//! promises.

use std::path::{Path, PathBuf};

use veil_compiler::onnx::{ImportOptions, import_file};
use veil_compiler::{CompileOptions, compile};
use veil_ir::Tensor;
use veil_ir::eval::{run_fixed, run_float, run_float_approximated};
use veil_ir::npy::{NpzArray, read_npy, read_npz};
use veil_passes::Pass;

const EXPORTERS: [&str; 2] = ["dynamo", "torchscript"];

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/zoo").join(name)
}

fn top(v: &[f32]) -> usize {
    (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap()
}

/// The committed calibration inputs, then the checked input.
fn samples(dir: &Path, x: &Tensor) -> Vec<Tensor> {
    let NpzArray::Float(calib) = read_npz(&dir.join("calib.npz"), "x").unwrap() else { panic!("float inputs") };
    let per = calib.data.len() / calib.shape[0];
    let mut v: Vec<Tensor> =
        calib.data.chunks(per).map(|c| Tensor::new(x.shape.clone(), c.to_vec()).unwrap()).collect();
    v.push(x.clone());
    v
}

/// Checks one zoo model from both exporters; see the module doc.
///
/// Float: every logit within `1e-4 · max(1, range)` of onnxruntime's, `range` being the spread
/// (max − min) of onnxruntime's logits (an absolute 1e-4 for the small-logit models, relative
/// to the range for larger ones; float32 summation orders differ between the two).
///
/// Fixed point: the compiler promises that the simulated outputs on the calibration samples
/// stay within 1 % of the output range (over those samples) of the float model with its
/// activations as compiled (Sigmoid on shares is a piecewise-linear approximation within 0.00076;
/// the target measures rounding, not that). Checked on the committed input, against that
/// reference, plus that onnxruntime's top-1 class is kept. The worst error against onnxruntime
/// is reported on stderr (`--nocapture`).
fn check(name: &str) {
    let dir = dir(name);
    let x = read_npy(&dir.join("input.npy")).unwrap();
    for exporter in EXPORTERS {
        let g = import_file(&dir.join(format!("{exporter}.onnx")), &ImportOptions::default())
            .unwrap_or_else(|e| panic!("{name} ({exporter}): {e}"));
        let want = read_npy(&dir.join(format!("{exporter}_ort.npy"))).unwrap();
        let float = run_float(&g, std::slice::from_ref(&x)).unwrap().remove(0);
        assert_eq!(float.shape, want.shape, "{name} ({exporter})");
        let (lo, hi) = want.data.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let tol = 1e-4 * (hi - lo).max(1.0);
        let float_err = float.data.iter().zip(&want.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(float_err <= tol, "{name} ({exporter}): float off onnxruntime by {float_err:e} > {tol:e}");

        let calibration = samples(&dir, &x);
        let until = Some(Pass::SubstituteActivations.into());
        let approx =
            compile(&g, &CompileOptions { until, verify: false, encode: false, ..Default::default() }).unwrap().graph;
        let reference: Vec<Tensor> = calibration
            .iter()
            .map(|c| run_float_approximated(&approx, std::slice::from_ref(c)).unwrap().remove(0))
            .collect();
        let (lo, hi) =
            reference.iter().flat_map(|t| &t.data).fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        let passes = veil_passes::Options { calibration, ..Default::default() };
        let opts = CompileOptions { passes, max_error: Some(0.01), encode: false, ..Default::default() };
        let compiled = compile(&g, &opts).unwrap_or_else(|e| panic!("{name} ({exporter}): {e}"));
        let choice = compiled.precision.expect("searched");
        assert!(choice.error <= 0.01, "{name} ({exporter}): {choice:?}");
        let run = run_fixed(&compiled.graph, std::slice::from_ref(&x), 0).unwrap();
        assert_eq!(run.truncation_wraps, 0, "{name} ({exporter})");
        let fixed = &run.outputs[0];
        let mine = reference.last().unwrap();
        let err = fixed.data.iter().zip(&mine.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(err <= 0.01 * (hi - lo), "{name} ({exporter}): fixed point off by {err}, over 1% of {}", hi - lo);
        let agreement = if want.shape.len() == 4 {
            // Per-pixel scores [1, C, H, W]: every pixel whose top class leads the runner-up by
            // more than twice the promised error in the float reference keeps it (the error
            // cannot flip it); the agreement with onnxruntime over all pixels is reported.
            let (c, hw) = (want.shape[1], want.shape[2] * want.shape[3]);
            let pixel = |t: &[f32], p: usize| -> Vec<f32> { (0..c).map(|k| t[k * hw + p]).collect() };
            let mut same = 0;
            for p in 0..hw {
                let (f, r, o) = (pixel(&fixed.data, p), pixel(&mine.data, p), pixel(&want.data, p));
                let mut sorted = r.clone();
                sorted.sort_by(|a, b| b.total_cmp(a));
                if sorted[0] - sorted[1] > 2.0 * 0.01 * (hi - lo) {
                    assert_eq!(top(&f), top(&r), "{name} ({exporter}): pixel {p} with a clear class");
                }
                same += usize::from(top(&f) == top(&o));
            }
            same as f64 / hw as f64
        } else {
            assert_eq!(top(&fixed.data), top(&want.data), "{name} ({exporter}): top-1 class");
            1.0
        };
        let ort_err = fixed.data.iter().zip(&want.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        eprintln!(
            "zoo {name:18} {exporter:11} float {float_err:.1e}  F={} ring {}: fixed {:.2}% of range {:.3} ({:.2}% vs onnxruntime, classes {:.1}% as onnxruntime's)",
            choice.frac_bits,
            choice.ring_bits,
            100.0 * err / (hi - lo),
            hi - lo,
            100.0 * ort_err / (hi - lo),
            100.0 * agreement,
        );
    }
}

/// torchvision's LRASPP segmentation head on a dilated MobileNetV3-large: per-pixel scores.
#[test]
fn zoo_lraspp_mobilenet_v3() {
    check("lraspp_mobilenet_v3");
}

/// torchvision's DeepLabV3 (ASPP with atrous rates 12/24/36 and an upsampled pooling branch).
#[test]
fn zoo_deeplabv3_mobilenet_v3() {
    check("deeplabv3_mobilenet_v3");
}

#[test]
fn zoo_resnet18() {
    check("resnet18");
}

#[test]
fn zoo_mobilenet_v2() {
    check("mobilenet_v2");
}

#[test]
fn zoo_mobilenet_v3_small() {
    check("mobilenet_v3_small");
}

#[test]
fn zoo_efficientnet_b0() {
    check("efficientnet_b0");
}

#[test]
fn zoo_shufflenet_v2() {
    check("shufflenet_v2");
}

#[test]
fn zoo_squeezenet1_1() {
    check("squeezenet1_1");
}

#[test]
fn zoo_densenet121() {
    check("densenet121");
}

#[test]
fn zoo_regnet_x_400mf() {
    check("regnet_x_400mf");
}

/// ConvNeXt: its 9 LayerNormalizations (over channels) run on shares with the secret inverse
/// square root, one garbled circuit per normalised row; its Gelu (4, one per block: both
/// exporters write the opset-20 `Gelu` op) as `pl_gelu`. The plan lowers to two-party steps.
#[test]
fn zoo_convnext_tiny() {
    check("convnext_tiny");
    for exporter in EXPORTERS {
        let g = import_file(&dir("convnext_tiny").join(format!("{exporter}.onnx")), &ImportOptions::default()).unwrap();
        let norms = g.live_nodes().filter(|(_, n)| matches!(n.op, veil_ir::Op::Rsqrt { .. })).count();
        assert_eq!(norms, 9, "{exporter}");
        let x = read_npy(&dir("convnext_tiny").join("input.npy")).unwrap();
        let passes = veil_passes::Options { calibration: samples(&dir("convnext_tiny"), &x), ..Default::default() };
        let compiled = compile(&g, &CompileOptions { passes, encode: false, ..Default::default() }).unwrap();
        let steps = veil_ir::schedule::lower(&compiled.graph).unwrap_or_else(|e| panic!("{exporter}: {e}"));
        let f = &compiled.graph;
        let rows: usize = f
            .live_nodes()
            .filter(|(_, n)| matches!(n.op, veil_ir::Op::Rsqrt { .. }))
            .map(|(_, n)| f.values[n.output].ty.shape.iter().product::<usize>())
            .sum();
        let circuit_ands: usize = steps
            .iter()
            .filter(|s| matches!(f.nodes[s.node].op, veil_ir::Op::Rsqrt { .. }))
            .map(|s| match &s.kind {
                veil_ir::schedule::Kind::Activation { circuit, .. } => circuit.and_count(),
                other => panic!("{exporter}: rsqrt as {other:?}"),
            })
            .sum();
        eprintln!(
            "zoo convnext_tiny      {exporter:11} ring {}: {rows} normalised rows, {circuit_ands} ANDs per row over the 9 circuits",
            f.ring_bits.unwrap()
        );
        // The calibrated error bound holds for the checked input (one of the samples); through
        // nine normalisations it compounds far above the measured error (docs/decisions.md).
        let want = read_npy(&dir("convnext_tiny").join(format!("{exporter}_ort.npy"))).unwrap();
        let e = veil_passes::error_bound::calibrated_error_bounds(f, &samples(&dir("convnext_tiny"), &x)).unwrap();
        let stated = f.outputs.iter().map(|v| e[v.index()]).fold(0f64, f64::max);
        let fixed = run_fixed(f, std::slice::from_ref(&x), 0).unwrap().outputs.remove(0);
        let measured = fixed.data.iter().zip(&want.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) as f64;
        eprintln!(
            "zoo convnext_tiny      {exporter:11} F=12: measured error {measured:.2e}, calibrated bound {stated:.2e}"
        );
        assert!(measured <= stated, "{exporter}: {measured} beyond the calibrated bound {stated}");
    }
}
