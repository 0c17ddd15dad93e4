//! `--range-margin-bits`: the margin above calibrated ranges sets the ring and every narrowed
//! read's width, and the simulator counts the elements a narrowed read cannot hold
//! (`FixedRun::narrow_overflows`, what `veilc eval` reports), which the margin is there to avoid.

use veil_ir::{Graph, Tensor};
use veil_passes::{NonlinearChoice, Options};
use veil_tests::{compile_bundled, root};

/// The digits CNN calibrated on one input, every ReLU and MaxPool garbled, every truncation
/// exact (no local truncation's 40 bits of headroom), with margin `m`.
fn digits(x: &Tensor, m: u8) -> Graph {
    let opts = Options {
        calibration: vec![x.clone()],
        nonlinear: NonlinearChoice::Gc,
        exact_truncation: true,
        range_margin_bits: m,
        ..Options::default()
    };
    compile_bundled("digits_relu", opts).unwrap().graph
}

#[test]
fn the_margin_sets_the_ring_and_every_narrowed_width() {
    let x = veil_ir::npy::read_npy(&root().join("models/inputs/digits_relu.npy")).unwrap();
    let (wide, narrow) = (digits(&x, 8), digits(&x, 5));
    assert_eq!(wide.ring_bits.unwrap() - narrow.ring_bits.unwrap(), 3);
    assert!(!wide.narrow_bits.is_empty());
    assert_eq!(
        wide.narrow_bits.iter().map(|&(n, w)| (n, w - 3)).collect::<Vec<_>>(),
        narrow.narrow_bits,
        "each narrowed read is 3 bits narrower"
    );
    let err =
        compile_bundled("digits_relu", Options { calibration: vec![x], range_margin_bits: 31, ..Options::default() })
            .unwrap_err()
            .to_string();
    assert!(err.contains("--range-margin-bits 31 is outside 0..=30"), "{err}");
}

#[test]
fn values_beyond_the_margin_are_counted_as_narrow_overflows() {
    let x = veil_ir::npy::read_npy(&root().join("models/inputs/digits_relu.npy")).unwrap();
    // The calibration input itself never overflows, whatever the margin: its values are within
    // the calibrated ranges (×2).
    for m in [0, 8] {
        assert_eq!(veil_ir::eval::run_fixed(&digits(&x, m), std::slice::from_ref(&x), 0).unwrap().narrow_overflows, 0);
    }
    // Each narrowed read `k` bits narrower than the margin made it: the values that no longer
    // fit are counted, more for each bit taken, and once any are, the output is wrong.
    let g = digits(&x, 0);
    let exact = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap();
    let mut counts = Vec::new();
    for k in 0..=12u8 {
        let mut h = g.clone();
        for (_, w) in &mut h.narrow_bits {
            *w = w.saturating_sub(k).max(3);
        }
        let r = veil_ir::eval::run_fixed(&h, std::slice::from_ref(&x), 0).unwrap();
        if r.outputs != exact.outputs {
            assert!(r.narrow_overflows > 0, "k = {k}: the output changed with no overflow counted");
        }
        counts.push(r.narrow_overflows);
    }
    assert_eq!(counts[0], 0);
    assert!(*counts.last().unwrap() > 0, "{counts:?}");
    assert!(counts.windows(2).all(|p| p[0] <= p[1]), "narrower, more overflows: {counts:?}");
}
