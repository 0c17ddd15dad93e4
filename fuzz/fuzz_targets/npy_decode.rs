//! `.npy` decoding of arbitrary bytes (client inputs, calibration data).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = veil_ir::npy::decode_npy(data, "fuzz.npy") {
        assert_eq!(t.data.len(), t.shape.iter().product::<usize>());
    }
});
