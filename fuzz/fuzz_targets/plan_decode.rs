//! Plan decoding: arbitrary bytes as a file, and arbitrary bytes as a plan body inside a valid
//! frame (past the hash check). A decoded plan must lower and cost without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = veil_ir::plan::decode_plan(data);
    if let Ok((plan, _)) = veil_ir::plan::decode_plan(&veil_ir::plan::frame_plan(data)) {
        let _ = veil_ir::schedule::lower(&plan.graph);
        let _ = veil_passes::cost::plan_cost(&plan.graph);
    }
});
