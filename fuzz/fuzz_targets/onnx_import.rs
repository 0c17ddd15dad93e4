//! ONNX import of arbitrary bytes: an error or a verified graph, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = veil_compiler::onnx::ImportOptions::default();
    if let Ok(g) = veil_compiler::onnx::import_bytes(data, "fuzz.onnx", "fuzz", &opts) {
        assert!(veil_ir::verify(&g).is_ok(), "the importer returned an unverified graph");
    }
});
