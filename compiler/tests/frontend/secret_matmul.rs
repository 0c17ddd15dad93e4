//! MatMul (and Gemm) of two computed values: attention's `Q·Kᵀ` on computed `Q` and `K`
//! lowers to one `matmul` (a matrix Beaver triple); the float result
//! equals an independent f64 formula, and fixed point stays within the derived error bound.

use super::*;

/// Deterministic small weights in [−0.5, 0.5].
fn w(seed: usize, n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7 + seed * 5) % 11) as f32 / 10.0 - 0.5).collect()
}

fn input() -> Tensor {
    Tensor::new(vec![1, 3, 4], (0..12).map(|i| ((i * 5) % 13) as f32 / 6.0 - 1.0).collect()).unwrap()
}

/// `x · wq` and `x · wk` (`[1, 3, 4]`), then `S = Q · Kᵀ` (`[1, 3, 3]`).
fn attention_scores() -> Vec<u8> {
    model(
        13,
        vec![info("in", &[Some(1), Some(3), Some(4)])],
        vec![
            node("MatMul", "q", &["in", "wq"], &["q"]),
            node("MatMul", "k", &["in", "wk"], &["k"]),
            {
                let mut n = node("Transpose", "kt", &["k"], &["kt"]);
                n.attribute = vec![ints_attr("perm", &[0, 2, 1])];
                n
            },
            node("MatMul", "scores", &["q", "kt"], &["y"]),
        ],
        vec![tensor("wq", &[4, 4], w(1, 16)), tensor("wk", &[4, 4], w(2, 16))],
        "y",
    )
}

/// `S[i][j] = Σ_d Q[i][d]·K[j][d]` in f64, from the input and weights directly.
fn reference(x: &Tensor) -> Vec<f32> {
    let (wq, wk) = (w(1, 16), w(2, 16));
    let proj = |wt: &[f32]| -> Vec<f64> {
        (0..12).map(|i| (0..4).map(|c| x.data[(i / 4) * 4 + c] as f64 * wt[c * 4 + i % 4] as f64).sum()).collect()
    };
    let (q, k) = (proj(&wq), proj(&wk));
    (0..9).map(|o| (0..4).map(|d| q[(o / 3) * 4 + d] * k[(o % 3) * 4 + d]).sum::<f64>() as f32).collect()
}

#[test]
fn q_times_k_transposed_is_one_matrix_product() {
    let g = import(&attention_scores()).unwrap();
    let text = veil_ir::print::to_text(&g);
    assert!(text.contains("= matmul %") && !text.contains("= mul %"), "{text}");
    let got = run_float(&g, &[input()]).unwrap().remove(0);
    assert_eq!(got.shape, vec![1, 3, 3]);
    let want = reference(&input());
    assert!(want.iter().any(|v| v.abs() > 0.1), "{want:?}");
    for (g, w) in got.data.iter().zip(&want) {
        assert!((g - w).abs() < 1e-5, "{g} vs {w}");
    }
    let (f, _, tol) = super::activations::fixed_within_bound(&g, &input(), 1.0, &want);
    assert!(tol < 0.05, "bound {tol}");
    // One matrix Beaver step.
    let steps = veil_ir::schedule::lower(&f).unwrap();
    let matrix = steps.iter().filter(|s| matches!(s.kind, veil_ir::schedule::Kind::MatMul)).count();
    assert_eq!(matrix, 1, "{}", veil_ir::print::to_text(&f));
}

#[test]
fn numpy_rank_and_batch_rules_hold_for_two_computed_operands() {
    // [2, 1, 2, 3] · [2, 3, 2] → [2, 2, 2, 2]: batch dims [2, 1] and [2] broadcast to [2, 2].
    let b = model(
        13,
        vec![info("in", &[Some(2), Some(1), Some(2), Some(3)])],
        vec![
            node("Mul", "a", &["in", "two"], &["a"]),
            node("Reshape", "r", &["in", "shape"], &["b0"]),
            node("Mul", "b", &["b0", "half"], &["b"]),
            node("MatMul", "mm", &["a", "b"], &["y"]),
        ],
        vec![scalar("two", 2.0), scalar("half", 0.5), int64s("shape", &[2, 3, 2])],
        "y",
    );
    let x = Tensor::new(vec![2, 1, 2, 3], (0..12).map(|i| i as f32 / 4.0 - 1.0).collect()).unwrap();
    let g = import(&b).unwrap();
    let got = run_float(&g, std::slice::from_ref(&x)).unwrap().remove(0);
    assert_eq!(got.shape, vec![2, 2, 2, 2]);
    let a = |i: usize, r: usize, c: usize| 2.0 * x.data[i * 6 + r * 3 + c] as f64;
    let bb = |j: usize, r: usize, c: usize| 0.5 * x.data[j * 6 + r * 2 + c] as f64;
    for (o, g) in got.data.iter().enumerate() {
        let (i, j, r, c) = (o / 8, (o / 4) % 2, (o / 2) % 2, o % 2);
        let want: f64 = (0..3).map(|d| a(i, r, d) * bb(j, d, c)).sum();
        assert!((*g as f64 - want).abs() < 1e-5, "{o}: {g} vs {want}");
    }
}

#[test]
fn shapes_that_cannot_multiply_are_refused_with_both_shapes() {
    let b = model(
        13,
        vec![info("in", &[Some(2), Some(3)])],
        vec![node("Mul", "a", &["in", "two"], &["a"]), node("MatMul", "mm", &["a", "a"], &["y"])],
        vec![scalar("two", 2.0)],
        "y",
    );
    let e = problems(&b);
    assert!(e.contains("MatMul of shapes [2, 3] and [2, 3]: inner dimensions 3 and 2 differ"), "{e}");
}

#[test]
fn gemm_of_two_computed_values_adds_its_bias() {
    let b = model(
        13,
        vec![info("in", &[Some(2), Some(3)])],
        vec![{
            let mut n = node("Gemm", "g", &["in", "in", "c"], &["y"]);
            n.attribute = vec![int_attr("transB", 1)];
            n
        }],
        vec![tensor("c", &[2], vec![0.25, -0.5])],
        "y",
    );
    let x = Tensor::new(vec![2, 3], vec![1.0, -0.5, 0.25, 0.5, 2.0, -1.0]).unwrap();
    let g = import(&b).unwrap();
    let got = run_float(&g, std::slice::from_ref(&x)).unwrap().remove(0);
    let dot = |i: usize, j: usize| (0..3).map(|d| x.data[i * 3 + d] * x.data[j * 3 + d]).sum::<f32>();
    let want = [dot(0, 0) + 0.25, dot(0, 1) - 0.5, dot(1, 0) + 0.25, dot(1, 1) - 0.5];
    assert_eq!(got.shape, vec![2, 2]);
    for (g, w) in got.data.iter().zip(&want) {
        assert!((g - w).abs() < 1e-5, "{g} vs {w}");
    }
}
