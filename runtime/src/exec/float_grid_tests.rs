//! Rounding onto a small float type's grid (a `Cast` to FLOAT8E4M3FN and its kin, FP8
//! `QuantizeLinear`) between the two parties: the garbled circuit against the definition, the
//! simulator and the scripted traffic.

use veil_ir::{Domain, FloatGrid, Graph, Op, Overflow, RoundMode, Tensor, TensorType};
use veil_passes::{NonlinearChoice, Options};

use super::memory_tests::{check_traffic, in_memory};

/// A value `x · w` computed on shares (the server's weight `w`), rounded onto `grid` by `mode`
/// and clamped to `±max`, revealed.
fn plan(grid: FloatGrid, mode: RoundMode, max: f32, n: usize) -> Graph {
    let mut g = Graph::new("float_grid");
    let x = g.add_input("x", TensorType::f32(vec![1, n]));
    let w = g.add_const("w", vec![1], Domain::Server, vec![1.5]);
    let h = g.add_node("scaled", "h", Op::Affine { scale: Some(w), shift: None }, &[x]).unwrap();
    let op = Op::Round { mode, min: Some(-max), max: Some(max), zero_point: None, grid: Some(grid) };
    let q = g.add_node("cast", "q", op, &[h]).unwrap();
    let y = g.add_node("reveal", "y", Op::Reveal, &[q]).unwrap();
    g.outputs.push(y);
    let opts = Options { input_bound: 400.0, frac_bits: 12, nonlinear: NonlinearChoice::Gc, ..Options::default() };
    veil_compiler::compile(g, &opts.into()).unwrap().graph
}

/// FLOAT8E4M3FN (ties to even, saturating at 448), FLOAT4E2M1 (0, 0.5, 1, 1.5, 2, 3, 4, 6) and
/// FLOAT8E8M0 rounding up (powers of two), on values of both signs across many binades, ties,
/// subnormals and values beyond the largest: the two parties give the grid's rounding of the
/// fixed-point product (the definition, [`FloatGrid::round`] then the clamp), equal the simulator
/// bit for bit, and exchange exactly the scripted bytes.
#[test]
fn a_cast_to_an_eight_bit_float_rounds_onto_its_grid_between_the_parties() {
    let xs: Vec<f32> = [
        0.0,
        1.0,
        -1.0,
        0.7,
        0.71,
        1.0625 / 1.5,
        1.1875 / 1.5,
        3.1,
        -3.1,
        66.7,
        -66.7,
        200.0,
        -350.0,
        0.004,
        -0.0031,
        0.25 / 1.5,
        0.75 / 1.5,
        5.0 / 1.5,
        2.5 / 1.5,
        1.75 / 1.5,
        17.0,
        33.3,
        0.13,
        -0.9,
        7.9,
        299.0,
    ]
    .to_vec();
    let n = xs.len();
    let x = Tensor::new(vec![1, n], xs.clone()).unwrap();
    let cases = [
        (FloatGrid { mantissa: 3, min_exp: -6, overflow: Overflow::Saturate }, RoundMode::HalfEven, 448.0),
        (FloatGrid { mantissa: 1, min_exp: 0, overflow: Overflow::SaturateNoNan }, RoundMode::HalfEven, 6.0),
        (FloatGrid { mantissa: 0, min_exp: -127, overflow: Overflow::Saturate }, RoundMode::Ceil, 1e30),
    ];
    for (grid, mode, max) in cases {
        let g = plan(grid, mode, max, n);
        let (out, cs, ss) = in_memory(&g, &x);
        // The definition, on the product as fixed point holds it (x and 1.5 are exact at 12 bits
        // except where x has more, and the product's truncation is exact: compare to the value
        // the simulator's operand holds, i.e. the grid rounding of ⌊x·1.5·2^12⌋/2^12).
        let want: Vec<f32> = xs
            .iter()
            .map(|&v| {
                let q = ((v as f64 * 4096.0).round() * 1.5).floor() / 4096.0;
                grid.round(q, mode).clamp(-(max as f64), max as f64) as f32
            })
            .collect();
        assert_eq!(out[0].data, want, "{grid:?} {mode:?}: the grid's rounding");
        let sim = veil_ir::eval::run_fixed(&g, std::slice::from_ref(&x), 0).unwrap().outputs;
        assert_eq!(out, sim, "{grid:?}: the simulator");
        check_traffic("float grid", &g, &[&cs, &ss]);
        // Not the identity: most values move.
        let moved = xs.iter().zip(&want).filter(|(a, b)| (**a * 1.5 - **b).abs() > 1e-3).count();
        assert!(moved > n / 2, "{grid:?}: only {moved} of {n} values moved");
    }
}
