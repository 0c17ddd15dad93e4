//! insta snapshots of each bundled model's IR after every pass (`veilc ir --after <pass>`),
//! with the default options (the root models, `qdq_cnn/`, `decoder/`, `video/`, and `attention/`'s
//! two, calibrated on their `.npz`). A change to lowering shows in review as a diff of
//! `models/snapshots/`.

use veil_compiler::{CompileOptions, compile};
use veil_passes::Stage;
use veil_tests::{bundled_models, root};

#[test]
fn ir_after_every_pass() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("models/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        // The models in folders of their own that exercise a lowering no root model has:
        // onnxruntime's QDQ quantization, a decoder's upsampling (ConvTranspose, Resize,
        // DepthToSpace, PRelu, Abs, Tile, Mean), and torch's 3-D convolutions.
        // A transformer layer's attention (a Softmax on shares) needs calibrated ranges: its
        // LayerNorms' worst-case ones overflow the ring.
        let folders = [
            ("qdq_cnn", "qdq_cnn/model.onnx", None),
            ("decoder", "decoder/model.onnx", None),
            ("video", "video/torch_dynamo.onnx", None),
            ("attention", "attention/torch_dynamo.onnx", Some("attention/torch_calib.npz")),
            // Token ids: the client's one-hot lookup and padding mask.
            ("tokens", "attention/torch_tokens_dynamo.onnx", Some("attention/torch_tokens_calib.npz")),
        ];
        let models = bundled_models()
            .into_iter()
            .map(|name| (name.clone(), format!("{name}.onnx"), None))
            .chain(folders.iter().map(|&(n, p, c)| (n.to_string(), p.to_string(), c)));
        for (name, path, calib) in models {
            let model = root().join("models").join(path);
            let calibration = calib.map_or_else(Vec::new, calibration_inputs);
            for stage in Stage::all() {
                let mut opts = CompileOptions { until: Some(stage), encode: false, ..CompileOptions::default() };
                opts.passes.calibration = calibration.clone();
                let g = compile(&model, &opts).unwrap().graph;
                insta::assert_snapshot!(format!("{name}@{stage}"), veil_ir::print::to_text(&g));
            }
        }
    });
}

/// The inputs of array `x` of the `.npz` at `models/<path>`, one batch item each.
fn calibration_inputs(path: &str) -> Vec<veil_ir::Tensor> {
    let t = veil_ir::npy::read_npz(&root().join("models").join(path), "x").unwrap().into_reals().unwrap();
    let one: Vec<usize> = std::iter::once(1).chain(t.shape[1..].iter().copied()).collect();
    veil_passes::range::samples(&t, &one).unwrap()
}
