//! insta snapshots of each bundled model's IR after every pass (`veilc ir --after <pass>`).
//! A change to lowering shows in review as a diff of `models/snapshots/`.

use veil_compiler::onnx::{ImportOptions, import_file};
use veil_tests::{bundled_models, root};

#[test]
fn ir_after_import() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("models/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for name in bundled_models() {
            let g =
                import_file(&root().join("models").join(format!("{name}.onnx")), &ImportOptions::default()).unwrap();
            insta::assert_snapshot!(format!("{name}@import"), veil_ir::print::to_text(&g));
        }
    });
}
