//! ReduceMax and ReduceMin (lowered onto MaxPool), 3-D pools (two 2-D pools) and casts of
//! computed values between float types, each against a direct computation in float and through
//! the whole pipeline in fixed point within the derived error bound.

use super::ops::{assert_close, coords, each_reduce_case, fixed_point_within_bound, strides, values};
use super::*;

/// numpy's max (or min) over `axes`.
fn extreme_ref(x: &[f32], shape: &[usize], axes: &[usize], keepdims: bool, max: bool) -> (Vec<usize>, Vec<f32>) {
    let kept: Vec<usize> = (0..shape.len()).map(|i| if axes.contains(&i) { 1 } else { shape[i] }).collect();
    let start = if max { f32::NEG_INFINITY } else { f32::INFINITY };
    let mut out = vec![start; kept.iter().product()];
    for (i, &v) in x.iter().enumerate() {
        let c = coords(i, shape);
        let d: usize = (0..shape.len()).map(|a| if axes.contains(&a) { 0 } else { c[a] * strides(&kept)[a] }).sum();
        out[d] = if max { out[d].max(v) } else { out[d].min(v) };
    }
    let out_shape = (0..shape.len()).filter(|i| keepdims || !axes.contains(i)).map(|i| kept[i]).collect();
    (out_shape, out)
}

#[test]
fn reduce_max_and_min_over_any_axes_match_a_direct_computation() {
    let shape = [2, 3, 4, 5];
    let x = Tensor::new(shape.to_vec(), values(120, 11)).unwrap();
    let axes_sets: [&[i64]; 8] = [&[0], &[1], &[3], &[0, 2], &[1, 3], &[2, 3], &[0, 1, 2, 3], &[-1, 0]];
    // (op, opset, axes as an input): the axes moved to an input in opset 18.
    let forms = [("ReduceMax", 18, true), ("ReduceMax", 13, false), ("ReduceMin", 18, true), ("ReduceMin", 11, false)];
    each_reduce_case(&axes_sets, &forms, |op, norm, keepdims, g, what| {
        let text = veil_ir::print::to_text(g);
        assert!(text.contains("maxpool"), "{what}: the max is a maxpool:\n{text}");
        let y = run_float(g, std::slice::from_ref(&x)).unwrap();
        let (s, want) = extreme_ref(&x.data, &shape, norm, keepdims, op == "ReduceMax");
        assert_close(&y[0], &s, &want, what);
    });
}

#[test]
fn reduce_max_and_min_compile_to_fixed_point_and_read_noop_with_empty_axes() {
    // After a weight, so the max runs on shares; ReduceMin over a non-contiguous pair of axes.
    let shape_info = [Some(2), Some(3), Some(4)];
    let mut max = node("ReduceMax", "max", &["a", "ax1"], &["m"]);
    max.attribute.push(int_attr("keepdims", 0));
    let min = node("ReduceMin", "min", &["a", "ax02"], &["n"]);
    let b = model_proto(
        18,
        vec![info("x", &shape_info)],
        vec![node("Mul", "w", &["x", "k"], &["a"]), max, min],
        vec![tensor("k", &[4], vec![0.5, -1.0, 2.0, 1.5]), int64s("ax1", &[1]), int64s("ax02", &[0, 2])],
        &["m", "n"],
    );
    let g = import(&b.encode_to_vec()).unwrap();
    let x = Tensor::new(vec![2, 3, 4], values(24, 12)).unwrap();
    let y = run_float(&g, std::slice::from_ref(&x)).unwrap();
    let a: Vec<f32> = x.data.iter().enumerate().map(|(i, v)| v * [0.5, -1.0, 2.0, 1.5][i % 4]).collect();
    let (s, want) = extreme_ref(&a, &[2, 3, 4], &[1], false, true);
    assert_close(&y[0], &s, &want, "ReduceMax after a weight");
    let (s, want) = extreme_ref(&a, &[2, 3, 4], &[0, 2], true, false);
    assert_close(&y[1], &s, &want, "ReduceMin over axes 0 and 2");
    fixed_point_within_bound(&g, std::slice::from_ref(&x));

    let mut noop = node("ReduceMax", "r", &["x", "none"], &["y"]);
    noop.attribute.push(int_attr("noop_with_empty_axes", 1));
    let b = model(18, vec![info("x", &[Some(2), Some(3)])], vec![noop], vec![int64s("none", &[])], "y");
    let x = Tensor::new(vec![2, 3], values(6, 13)).unwrap();
    let y = run_float(&import(&b).unwrap(), std::slice::from_ref(&x)).unwrap();
    assert_eq!(y[0], x, "an empty axes list with noop_with_empty_axes is the identity");
}

/// One axis of a 3-D window: kernel, stride, dilation, begin and end pads.
#[derive(Clone, Copy)]
struct Ax {
    k: usize,
    s: usize,
    d: usize,
    pb: usize,
    pe: usize,
}

/// ONNX's pool over `[N, C, D, H, W]`, element by element over the whole 3-D window: the max
/// (padding never selected) or the mean (over the taps inside the explicitly padded input with
/// `include_pad`, else over the in-bounds ones). With `ceil`, the last window may overhang the
/// padded input unless it would start past the input and its begin padding.
fn pool3d_ref(
    x: &[f32],
    shape: [usize; 5],
    ax: [Ax; 3],
    max: bool,
    include_pad: bool,
    ceil: bool,
) -> (Vec<usize>, Vec<f32>) {
    let out_len = |a: usize| {
        let (n, Ax { k, s, d, pb, pe }) = (shape[2 + a], ax[a]);
        let room = n + pb + pe - (d * (k - 1) + 1);
        let o = if ceil { room.div_ceil(s) + 1 } else { room / s + 1 };
        if ceil && (o - 1) * s >= n + pb { o - 1 } else { o }
    };
    let o = [out_len(0), out_len(1), out_len(2)];
    let mut out = Vec::new();
    for nc in 0..shape[0] * shape[1] {
        for p in 0..o[0] * o[1] * o[2] {
            let pos = [p / (o[1] * o[2]), p / o[2] % o[1], p % o[2]];
            let (mut acc, mut inside, mut padded) = (if max { f32::NEG_INFINITY } else { 0.0 }, 0usize, 0usize);
            for t in 0..ax[0].k * ax[1].k * ax[2].k {
                let tap = [t / (ax[1].k * ax[2].k), t / ax[2].k % ax[1].k, t % ax[2].k];
                let at: Vec<isize> =
                    (0..3).map(|a| (pos[a] * ax[a].s + tap[a] * ax[a].d) as isize - ax[a].pb as isize).collect();
                if (0..3).all(|a| at[a] >= -(ax[a].pb as isize) && at[a] < (shape[2 + a] + ax[a].pe) as isize) {
                    padded += 1;
                }
                if (0..3).all(|a| at[a] >= 0 && (at[a] as usize) < shape[2 + a]) {
                    let [z, y, w] = [at[0] as usize, at[1] as usize, at[2] as usize];
                    let v = x[((nc * shape[2] + z) * shape[3] + y) * shape[4] + w];
                    acc = if max { acc.max(v) } else { acc + v };
                    inside += 1;
                }
            }
            out.push(if max { acc } else { acc / if include_pad { padded } else { inside } as f32 });
        }
    }
    (vec![shape[0], shape[1], o[0], o[1], o[2]], out)
}

#[test]
fn three_dimensional_pools_match_a_direct_computation() {
    let shape = [1, 2, 5, 6, 7];
    let x = Tensor::new(shape.to_vec(), values(420, 14)).unwrap();
    let shape_info: Vec<Option<i64>> = shape.iter().map(|&d| Some(d as i64)).collect();
    // Without and with ceil_mode. With it, D and H overhang (5 + 1 − 3 = 3 and 6 + 2 − 5 = 3 are
    // odd, strides 2); W's would-be last window starts in the end padding and is dropped.
    let ax = [
        Ax { k: 3, s: 2, d: 1, pb: 1, pe: 0 },
        Ax { k: 3, s: 2, d: 2, pb: 0, pe: 2 },
        Ax { k: 2, s: 3, d: 1, pb: 1, pe: 1 },
    ];
    for ceil in [false, true] {
        for (op, include_pad) in [("MaxPool", false), ("AveragePool", false), ("AveragePool", true)] {
            let mut n = node(op, "pool", &["x"], &["y"]);
            n.attribute = vec![
                ints_attr("kernel_shape", &ax.map(|a| a.k as i64)),
                ints_attr("strides", &ax.map(|a| a.s as i64)),
                ints_attr("dilations", &ax.map(|a| a.d as i64)),
                ints_attr("pads", &[1, 0, 1, 0, 2, 1]),
                int_attr("count_include_pad", include_pad as i64),
                int_attr("ceil_mode", ceil as i64),
            ];
            let b = model(22, vec![info("x", &shape_info)], vec![n], vec![], "y");
            let what = format!("{op} count_include_pad {include_pad} ceil_mode {ceil}");
            let g = import(&b).unwrap_or_else(|e| panic!("{what}: {e}"));
            let y = run_float(&g, std::slice::from_ref(&x)).unwrap();
            let (s, want) = pool3d_ref(&x.data, shape, ax, op == "MaxPool", include_pad, ceil);
            assert_close(&y[0], &s, &want, &what);
            fixed_point_within_bound(&g, std::slice::from_ref(&x));
        }
    }
    // Global pools over [D, H, W].
    for op in ["GlobalMaxPool", "GlobalAveragePool"] {
        let b = model(22, vec![info("x", &shape_info)], vec![node(op, "g", &["x"], &["y"])], vec![], "y");
        let y = run_float(&import(&b).unwrap(), std::slice::from_ref(&x)).unwrap();
        let whole = [5, 6, 7].map(|k| Ax { k, s: 1, d: 1, pb: 0, pe: 0 });
        let (s, want) = pool3d_ref(&x.data, shape, whole, op == "GlobalMaxPool", false, false);
        assert_close(&y[0], &s, &want, op);
    }
}

/// A pool whose window is one element along some axes (video networks pool (1, 2, 2)) is one
/// 2-D pool, not two: the identity axes are left out, and the result is still the definition.
#[test]
fn a_3d_pool_with_a_one_element_axis_is_one_2d_pool() {
    let shape = [1, 2, 3, 4, 6];
    let x = Tensor::new(shape.to_vec(), values(144, 9)).unwrap();
    let shape_info: Vec<Option<i64>> = shape.iter().map(|&d| Some(d as i64)).collect();
    let one = Ax { k: 1, s: 1, d: 1, pb: 0, pe: 0 };
    let two = Ax { k: 2, s: 2, d: 1, pb: 0, pe: 0 };
    for ax in [[one, two, two], [two, one, one]] {
        for op in ["MaxPool", "AveragePool"] {
            let mut n = node(op, "pool", &["x"], &["y"]);
            n.attribute =
                vec![ints_attr("kernel_shape", &ax.map(|a| a.k as i64)), ints_attr("strides", &ax.map(|a| a.s as i64))];
            let g = import(&model(22, vec![info("x", &shape_info)], vec![n], vec![], "y")).unwrap();
            let pools = g.live_nodes().filter(|(_, n)| matches!(n.op, Op::MaxPool { .. } | Op::AvgPool { .. })).count();
            assert_eq!(pools, 1, "{op} {:?}: {}", ax.map(|a| a.k), veil_ir::print::to_text(&g));
            let y = run_float(&g, std::slice::from_ref(&x)).unwrap();
            let (s, want) = pool3d_ref(&x.data, shape, ax, op == "MaxPool", false, false);
            assert_close(&y[0], &s, &want, op);
            fixed_point_within_bound(&g, std::slice::from_ref(&x));
        }
    }
}

#[test]
fn a_2d_average_counting_padding_leaves_out_a_ceil_mode_overhang() {
    // ONNX's rule (checked against onnx.reference): explicit pads count, the overhang does not.
    // Both axes overhang by one (6 + 1 − 2 = 5 and 7 − 2 = 5 are not multiples of 2 and 3).
    let x = Tensor::new(vec![1, 2, 6, 7], values(84, 15)).unwrap();
    let mut n = node("AveragePool", "pool", &["x"], &["y"]);
    n.attribute = vec![
        ints_attr("kernel_shape", &[2, 2]),
        ints_attr("strides", &[2, 3]),
        ints_attr("pads", &[1, 0, 0, 0]),
        int_attr("count_include_pad", 1),
        int_attr("ceil_mode", 1),
    ];
    let b = model(22, vec![info("x", &[Some(1), Some(2), Some(6), Some(7)])], vec![n], vec![], "y");
    let g = import(&b).unwrap();
    let y = run_float(&g, std::slice::from_ref(&x)).unwrap();
    let ax = [
        Ax { k: 1, s: 1, d: 1, pb: 0, pe: 0 },
        Ax { k: 2, s: 2, d: 1, pb: 1, pe: 0 },
        Ax { k: 2, s: 3, d: 1, pb: 0, pe: 0 },
    ];
    let (s, want) = pool3d_ref(&x.data, [1, 2, 1, 6, 7], ax, false, true, true);
    assert_close(&y[0], &[s[0], s[1], s[3], s[4]], &want, "2-D average, ceil_mode, count_include_pad");
    fixed_point_within_bound(&g, std::slice::from_ref(&x));
}

/// 3-D convolutions run (`conv3d`); a 4-D one is refused by name.
#[test]
fn a_four_dimensional_conv_is_refused_by_name() {
    let mut conv = node("Conv", "conv", &["x", "w"], &["y"]);
    conv.attribute.push(ints_attr("kernel_shape", &[1, 1, 1, 1]));
    let b = model(
        13,
        vec![info("x", &[Some(1), Some(1), Some(2), Some(2), Some(2), Some(2)])],
        vec![conv],
        vec![tensor("w", &[1, 1, 1, 1, 1, 1], vec![1.0])],
        "y",
    );
    let e = problems(&b);
    assert!(e.contains("only 1-D, 2-D and 3-D images") && e.contains("[1, 1, 2, 2, 2, 2]"), "{e}");
}

#[test]
fn a_cast_of_a_computed_value_passes_between_float_types_and_refuses_what_it_cannot_round_to() {
    let cast = |to: DataType| {
        let mut n = node("Cast", "cast", &["a"], &["y"]);
        n.attribute.push(int_attr("to", to as i64));
        model(
            13,
            vec![info("x", &[Some(1), Some(3)])],
            vec![node("Mul", "w", &["x", "k"], &["a"]), n],
            vec![tensor("k", &[3], vec![1.0, 2.0, 3.0])],
            "y",
        )
    };
    // 1.001·3 is not a FLOAT16 or BFLOAT16 number: Veil keeps its own precision, not theirs.
    let x = Tensor::new(vec![1, 3], vec![0.3, -1.25, 1.001]).unwrap();
    for to in [DataType::Float, DataType::Double, DataType::Float16, DataType::Bfloat16] {
        let y = run_float(&import(&cast(to)).unwrap(), std::slice::from_ref(&x)).unwrap();
        assert_eq!(y[0].data, vec![0.3, -2.5, 1.001 * 3.0], "{to:?}: the identity");
    }
    // Integer types are a rounding toward zero, 8- and 4-bit floats one onto their values
    // (`frontend/quant.rs`); a boolean is refused.
    let e = problems(&cast(DataType::Bool));
    assert!(
        e.contains(r#"node "cast" (Cast): cast of a computed value (a real number, FLOAT) to BOOL is not supported"#),
        "{e}"
    );
}

#[test]
fn reduce_max_and_min_of_a_constant_fold_at_compile_time() {
    // y = x · max(w, axis 0) + min(w, axis 0), w = [[1, −2, 3], [−4, 5, 0.5]].
    let reduce = |op: &str, out: &str| {
        let mut n = node(op, out, &["w", "axes"], &[out]);
        n.attribute.push(int_attr("keepdims", 0));
        n
    };
    let b = model(
        18,
        vec![info("x", &[Some(1), Some(3)])],
        vec![
            reduce("ReduceMax", "wmax"),
            reduce("ReduceMin", "wmin"),
            node("Mul", "m", &["x", "wmax"], &["a"]),
            node("Add", "s", &["a", "wmin"], &["y"]),
        ],
        vec![tensor("w", &[2, 3], vec![1.0, -2.0, 3.0, -4.0, 5.0, 0.5]), int64s("axes", &[0])],
        "y",
    );
    let g = import(&b).unwrap();
    assert!(!veil_ir::print::to_text(&g).contains("maxpool"), "folded, not computed");
    let y = run_float(&g, &[Tensor::new(vec![1, 3], vec![1.0, 2.0, -1.0]).unwrap()]).unwrap();
    assert_eq!(y[0].data, vec![1.0 - 4.0, 10.0 - 2.0, -3.0 + 0.5]);
}

#[test]
fn a_value_minus_its_max_broadcasts_the_max_back() {
    // The start of a numerically stable softmax: x − ReduceMax(x, axis 1, keepdims), after a
    // weight so both operands are shares; and ReduceMin(x) + x, broadcast the other way round.
    let max = node("ReduceMax", "max", &["a", "axes"], &["m"]);
    let min = node("ReduceMin", "min", &["a", "axes"], &["n"]);
    let b = model_proto(
        18,
        vec![info("x", &[Some(2), Some(3)])],
        vec![
            node("Mul", "w", &["x", "k"], &["a"]),
            max,
            min,
            node("Sub", "centre", &["a", "m"], &["y"]),
            node("Add", "shift", &["n", "a"], &["z"]),
        ],
        vec![tensor("k", &[3], vec![1.5, -1.0, 0.5]), int64s("axes", &[1])],
        &["y", "z"],
    );
    let g = import(&b.encode_to_vec()).unwrap();
    let x = Tensor::new(vec![2, 3], values(6, 16)).unwrap();
    let a: Vec<f32> = x.data.iter().enumerate().map(|(i, v)| v * [1.5, -1.0, 0.5][i % 3]).collect();
    let row = |r: usize| &a[3 * r..3 * r + 3];
    let (mut y_want, mut z_want) = (Vec::new(), Vec::new());
    for r in 0..2 {
        let (m, n) = (row(r).iter().fold(f32::MIN, |p, &v| p.max(v)), row(r).iter().fold(f32::MAX, |p, &v| p.min(v)));
        y_want.extend(row(r).iter().map(|v| v - m));
        z_want.extend(row(r).iter().map(|v| n + v));
    }
    let y = run_float(&g, std::slice::from_ref(&x)).unwrap();
    assert_close(&y[0], &[2, 3], &y_want, "x − max(x)");
    assert_close(&y[1], &[2, 3], &z_want, "min(x) + x");
    fixed_point_within_bound(&g, std::slice::from_ref(&x));

    let b = model(
        13,
        vec![info("x", &[Some(2), Some(3)]), info("u", &[Some(2), Some(2)])],
        vec![node("Add", "bad", &["x", "u"], &["y"])],
        vec![],
        "y",
    );
    let e = problems(&b);
    assert!(e.contains(r#"node "bad" (Add): operands f32[2,3] and f32[2,2] do not broadcast"#), "{e}");
}
