//! insta snapshots of each bundled model's IR after every pass (`veilc ir --after <pass>`),
//! with the default options (the root models, `qdq_cnn/`, `decoder/` and `video/`). A change to lowering shows in review as a diff of
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
        let folders = [
            ("qdq_cnn", "qdq_cnn/model.onnx"),
            ("decoder", "decoder/model.onnx"),
            ("video", "video/torch_dynamo.onnx"),
        ];
        let models = bundled_models()
            .into_iter()
            .map(|name| (name.clone(), format!("{name}.onnx")))
            .chain(folders.iter().map(|&(n, p)| (n.to_string(), p.to_string())));
        for (name, path) in models {
            let model = root().join("models").join(path);
            for stage in Stage::all() {
                let opts = CompileOptions { until: Some(stage), encode: false, ..CompileOptions::default() };
                let g = compile(&model, &opts).unwrap().graph;
                insta::assert_snapshot!(format!("{name}@{stage}"), veil_ir::print::to_text(&g));
            }
        }
    });
}
