//! Weights decoding against a real plan (the bundled digits model): arbitrary bytes as a file,
//! and as a weights body in a valid frame bound to the plan.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn plan() -> &'static (veil_ir::plan::Plan, veil_ir::plan::Hash) {
    static PLAN: OnceLock<(veil_ir::plan::Plan, veil_ir::plan::Hash)> = OnceLock::new();
    PLAN.get_or_init(|| {
        let model = include_bytes!("../../models/digits_relu.onnx");
        let model = veil_compiler::Model::Bytes { bytes: model, name: "digits_relu" };
        let opts = veil_compiler::CompileOptions { verify: false, ..Default::default() };
        let files = veil_compiler::compile(model, &opts).unwrap().files.unwrap();
        veil_ir::plan::decode_plan(&files.plan).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let (plan, hash) = plan();
    let _ = veil_ir::plan::attach_weights(&mut plan.clone(), hash, data);
    let _ = veil_ir::plan::attach_weights(&mut plan.clone(), hash, &veil_ir::plan::frame_weights(hash, data));
});
