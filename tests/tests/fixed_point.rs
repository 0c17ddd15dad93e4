//! The fixed-point compilation and simulator: every bundled model stays within the derived error
//! bound of its float reference, and the trained digits models keep their accuracy.

// Reports measured errors against their bounds, and accuracies, on stderr (shown with --nocapture).
#![allow(clippy::print_stderr)]

use veil_compiler::{CompileOptions, Compiled, compile};
use veil_ir::{Tensor, npy::NpzArray};
use veil_passes::{Activation, Options, error_bound::error_bounds};
use veil_tests::{bundled_models, compile_bundled, root};

fn max_abs(t: &Tensor) -> f64 {
    t.data.iter().fold(0f64, |m, &x| m.max((x as f64).abs()))
}

#[test]
fn every_bundled_model_simulates_within_its_error_bound() {
    for name in bundled_models() {
        let x = veil_ir::npy::read_npy(&root().join("models/inputs").join(format!("{name}.npy"))).unwrap();
        let bound = max_abs(&x);
        let opts = Options { input_bound: bound as f32, ..Options::default() };
        let Compiled { float, graph: g, .. } = compile_bundled(&name, opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        let reference = veil_ir::eval::run_float(&float, std::slice::from_ref(&x)).unwrap();
        let run = veil_ir::eval::run_fixed(&g, &[x], 1).unwrap();
        assert_eq!(run.truncation_wraps, 0, "{name}");
        let e = error_bounds(&g, bound);
        for ((out, r), &v) in run.outputs.iter().zip(&reference).zip(&g.outputs) {
            // The float reference rounds too (f32 storage): allow 2^-20 of its magnitude.
            let tol = e[v.index()] + max_abs(r) * 2f64.powi(-20);
            let err = out.data.iter().zip(&r.data).map(|(a, b)| (*a as f64 - *b as f64).abs()).fold(0.0, f64::max);
            eprintln!("{name}: |fixed − float| = {err:.2e}, derived bound {tol:.2e}");
            assert!(err <= tol, "{name}: error {err:e} exceeds the derived bound {tol:e}");
        }
    }
}

fn digits() -> (Vec<Tensor>, Vec<i64>) {
    let path = root().join("models/digits_test.npz");
    let NpzArray::Float(x) = veil_ir::npy::read_npz(&path, "x").unwrap() else { panic!("x holds floats") };
    let NpzArray::Int { data: y, .. } = veil_ir::npy::read_npz(&path, "y").unwrap() else { panic!("y holds labels") };
    (veil_passes::range::samples(&x, &[1, 1, 8, 8]).unwrap(), y)
}

fn accuracy(model: &str, opts: &Options) -> veil_compiler::EvalReport {
    let opts = CompileOptions { passes: opts.clone(), encode: false, ..CompileOptions::default() };
    let Compiled { float, graph: g, .. } = compile(&root().join("models").join(model), &opts).unwrap();
    let (xs, ys) = digits();
    veil_compiler::evaluate(&float, &g, &xs, Some(&ys), 0).unwrap()
}

/// The acceptance table: fixed point within 0.5 points of float with exact ReLU and for
/// the x²+x model, within 1 point with Circa at the default drop bits.
#[test]
fn trained_digits_models_keep_their_accuracy() {
    let relu = accuracy("digits_relu.onnx", &Options::default());
    let circa = accuracy("digits_relu.onnx", &Options { activation: Activation::Circa, ..Options::default() });
    let poly = accuracy("digits_poly.onnx", &Options::default());
    for (what, r, points) in [("relu", &relu, 0.5), ("circa", &circa, 1.0), ("x²+x", &poly, 0.5)] {
        let (f, a) = (r.float_accuracy.unwrap(), r.accuracy.unwrap());
        eprintln!(
            "{what}: float {:.1}%, fixed {:.1}%, agreement {:.1}%",
            100.0 * f,
            100.0 * a,
            100.0 * r.top1_agreement
        );
        assert_eq!(r.samples, 500);
        assert!(f - a <= points / 100.0 + 1e-12, "{what}: fixed {a} vs float {f}");
        assert_eq!(r.truncation_wraps, 0, "{what}");
    }
    assert!(circa.circa_fault_rate > 0.0, "Circa's sign test must be simulated, not exact");
    assert_eq!(relu.circa_fault_rate, 0.0);
}
