//! The linear ops of today's exporters, checked against direct computations in float and, through
//! the whole pipeline, in fixed point within the derived error bound.

use super::*;

/// Deterministic test values in [−2, 2], multiples of 1/100.
pub(super) fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 33) % 401) as f32 / 100.0 - 2.0
        })
        .collect()
}

pub(super) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

pub(super) fn coords(flat: usize, shape: &[usize]) -> Vec<usize> {
    let st = strides(shape);
    (0..shape.len()).map(|i| flat / st[i] % shape[i]).collect()
}

pub(super) fn assert_close(got: &Tensor, shape: &[usize], want: &[f32], what: &str) {
    assert_eq!(got.shape, shape, "{what}: shape");
    for (k, (a, b)) in got.data.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= 1e-5 + 1e-5 * b.abs(), "{what}: element {k} is {a}, expected {b}");
    }
}

/// Compiles `g` to fixed point and checks the simulator against the float results within the
/// error bound derived from the scales.
pub(super) fn fixed_point_within_bound(g: &veil_ir::Graph, inputs: &[Tensor]) {
    let want = run_float(g, inputs).unwrap();
    let bound = inputs.iter().flat_map(|t| &t.data).fold(0f64, |m, &x| m.max(x.abs() as f64));
    let opts = veil_passes::Options { input_bound: bound as f32, ..Default::default() };
    let f = veil_compiler::compile(g, &opts.into()).unwrap().graph;
    let run = veil_ir::eval::run_fixed(&f, inputs, 0).unwrap();
    let e = veil_passes::error_bound::error_bounds(&f, bound);
    for ((got, want), &v) in run.outputs.iter().zip(&want).zip(&f.outputs) {
        let tol = e[v.index()] + 1e-6;
        for (k, (a, b)) in got.data.iter().zip(&want.data).enumerate() {
            assert!(((a - b).abs() as f64) <= tol, "fixed point: element {k} is {a}, float {b}, bound {tol:e}");
        }
    }
}

/// numpy's sum or mean over `axes`.
fn reduce_ref(x: &[f32], shape: &[usize], axes: &[usize], keepdims: bool, mean: bool) -> (Vec<usize>, Vec<f32>) {
    let kept: Vec<usize> = (0..shape.len()).map(|i| if axes.contains(&i) { 1 } else { shape[i] }).collect();
    let mut out = vec![0f64; kept.iter().product()];
    for (i, &v) in x.iter().enumerate() {
        let c = coords(i, shape);
        let d: usize = (0..shape.len()).map(|a| if axes.contains(&a) { 0 } else { c[a] * strides(&kept)[a] }).sum();
        out[d] += v as f64;
    }
    let k: usize = axes.iter().map(|&a| shape[a]).product();
    let out_shape = (0..shape.len()).filter(|i| keepdims || !axes.contains(i)).map(|i| kept[i]).collect();
    (out_shape, out.iter().map(|&s| (if mean { s / k as f64 } else { s }) as f32).collect())
}

/// Imports a one-node Reduce model over a `[2, 3, 4, 5]` input for every axis set, `keepdims`
/// either way and every `(op, opset, axes as an input)` form (the axes moved to an input in
/// opset 18 for most reductions, 13 for ReduceSum), and hands `check` the op, the normalised
/// axes, `keepdims`, the graph and a description of the case.
pub(super) fn each_reduce_case(
    axes_sets: &[&[i64]],
    forms: &[(&str, i64, bool)],
    mut check: impl FnMut(&str, &[usize], bool, &veil_ir::Graph, &str),
) {
    let shape_info = [Some(2), Some(3), Some(4), Some(5)];
    for &axes in axes_sets {
        let norm: Vec<usize> = axes.iter().map(|&a| if a < 0 { (a + 4) as usize } else { a as usize }).collect();
        for keepdims in [0, 1] {
            for &(op, opset, as_input) in forms {
                let mut n = node(op, "r", if as_input { &["x", "axes"] } else { &["x"] }, &["y"]);
                n.attribute.push(int_attr("keepdims", keepdims));
                if !as_input {
                    n.attribute.push(ints_attr("axes", axes));
                }
                let inits = if as_input { vec![int64s("axes", axes)] } else { vec![] };
                let b = model(opset, vec![info("x", &shape_info)], vec![n], inits, "y");
                let what = format!("{op}-{opset} axes {axes:?} keepdims {keepdims}");
                let g = import(&b).unwrap_or_else(|e| panic!("{what}: {e}"));
                check(op, &norm, keepdims != 0, &g, &what);
            }
        }
    }
}

#[test]
fn reduce_sum_and_mean_over_any_axes_match_a_direct_computation() {
    let shape = [2, 3, 4, 5];
    let x = Tensor::new(shape.to_vec(), values(120, 1)).unwrap();
    let axes_sets: [&[i64]; 9] = [&[0], &[1], &[3], &[0, 2], &[1, 3], &[2, 3], &[0, 1, 2, 3], &[1, 2], &[-1, 0]];
    let forms =
        [("ReduceSum", 13, true), ("ReduceSum", 11, false), ("ReduceMean", 18, true), ("ReduceMean", 13, false)];
    each_reduce_case(&axes_sets, &forms, |op, norm, keepdims, g, what| {
        let y = run_float(g, std::slice::from_ref(&x)).unwrap();
        let (s, want) = reduce_ref(&x.data, &shape, norm, keepdims, op == "ReduceMean");
        assert_close(&y[0], &s, &want, what);
    });
}

#[test]
fn reduce_reads_noop_with_empty_axes_and_refuses_a_repeated_axis() {
    let x = Tensor::new(vec![2, 3], values(6, 2)).unwrap();
    let mut noop = node("ReduceSum", "r", &["x", "none"], &["y"]);
    noop.attribute.push(int_attr("noop_with_empty_axes", 1));
    let b = model(13, vec![info("x", &[Some(2), Some(3)])], vec![noop], vec![int64s("none", &[])], "y");
    let y = run_float(&import(&b).unwrap(), std::slice::from_ref(&x)).unwrap();
    assert_eq!(y[0], x, "an empty axes list with noop_with_empty_axes is the identity");

    let all = node("ReduceMean", "r", &["x"], &["y"]);
    let b = model(18, vec![info("x", &[Some(2), Some(3)])], vec![all], vec![], "y");
    let y = run_float(&import(&b).unwrap(), std::slice::from_ref(&x)).unwrap();
    assert_close(&y[0], &[1, 1], &[x.data.iter().sum::<f32>() / 6.0], "no axes: every axis");

    let twice = node("ReduceSum", "r", &["x", "axes"], &["y"]);
    let b = model(13, vec![info("x", &[Some(2), Some(3)])], vec![twice], vec![int64s("axes", &[1, -1])], "y");
    let e = problems(&b);
    assert!(e.contains(r#"node "r" (ReduceSum): axes [1, -1] name an axis twice"#), "{e}");
}

#[test]
fn a_global_mean_over_the_spatial_axes_is_a_pool_that_folds_into_the_classifier() {
    // How torch's dynamo exporter writes a global average pool: ReduceMean(x, [2, 3]), then Gemm.
    let mut mean = node("ReduceMean", "gap", &["a", "axes"], &["p"]);
    mean.attribute.push(int_attr("keepdims", 0));
    let b = model(
        18,
        vec![info("x", &[Some(1), Some(2), Some(4), Some(4)])],
        vec![node("Relu", "r", &["x"], &["a"]), mean, node("Gemm", "fc", &["p", "w"], &["y"])],
        vec![int64s("axes", &[2, 3]), tensor("w", &[2, 3], values(6, 3))],
        "y",
    );
    let g = import(&b).unwrap();
    let text = veil_ir::print::to_text(&g);
    assert!(text.contains("= avgpool %1 kernel=[4,4]"), "a pool over the image as it stands:\n{text}");
    let f = veil_compiler::compile(&g, &veil_passes::Options { input_bound: 2.0, ..Default::default() }.into())
        .unwrap()
        .graph;
    let text = veil_ir::print::to_text(&f);
    assert!(text.contains("sumpool") && !text.contains("affine"), "the divisor folds into the dense:\n{text}");
    fixed_point_within_bound(&g, &[Tensor::new(vec![1, 2, 4, 4], values(32, 4)).unwrap()]);
}

#[test]
fn reductions_compile_to_fixed_point_within_the_error_bound() {
    let mut sum = node("ReduceSum", "s", &["x", "axes"], &["y"]);
    sum.attribute.push(int_attr("keepdims", 0));
    let b = model(13, vec![info("x", &[Some(2), Some(3), Some(4)])], vec![sum], vec![int64s("axes", &[0, 2])], "y");
    fixed_point_within_bound(&import(&b).unwrap(), &[Tensor::new(vec![2, 3, 4], values(24, 5)).unwrap()]);
}

#[test]
fn split_reads_the_attribute_the_input_and_num_outputs() {
    let x = Tensor::new(vec![2, 7], values(14, 6)).unwrap();
    let column_range = |r: std::ops::Range<usize>| -> Vec<f32> {
        (0..2).flat_map(|i| r.clone().map(move |j| (i, j))).map(|(i, j)| x.data[i * 7 + j]).collect()
    };
    // (opset, split attribute, split input, num_outputs, expected column ranges)
    type Case<'a> = (i64, Option<&'a [i64]>, Option<&'a [i64]>, Option<i64>, Vec<std::ops::Range<usize>>);
    let cases: [Case; 4] = [
        (11, Some(&[2, 5]), None, None, vec![0..2, 2..7]),
        (13, None, Some(&[3, 1, 3]), None, vec![0..3, 3..4, 4..7]),
        (18, None, None, Some(3), vec![0..3, 3..6, 6..7]),
        (13, None, None, None, vec![]),
    ];
    for (opset, attr, input, num, parts) in cases {
        let outs: Vec<String> = (0..parts.len().max(1)).map(|k| format!("y{k}")).collect();
        let outs: Vec<&str> = outs.iter().map(String::as_str).collect();
        let (axis, outs) = if parts.is_empty() { (0, vec!["y0", "y1"]) } else { (1, outs) };
        let mut n = node("Split", "s", if input.is_some() { &["x", "split"] } else { &["x"] }, &outs);
        n.attribute.push(int_attr("axis", axis));
        if let Some(a) = attr {
            n.attribute.push(ints_attr("split", a));
        }
        if let Some(k) = num {
            n.attribute.push(int_attr("num_outputs", k));
        }
        let inits = input.map(|s| vec![int64s("split", s)]).unwrap_or_default();
        let b = model_proto(opset, vec![info("x", &[Some(2), Some(7)])], vec![n], inits, &outs).encode_to_vec();
        let g = import(&b).unwrap_or_else(|e| panic!("opset {opset}: {e}"));
        let y = run_float(&g, std::slice::from_ref(&x)).unwrap();
        if parts.is_empty() {
            // No sizes: equal parts along axis 0.
            assert_eq!((y[0].data.as_slice(), y[1].data.as_slice()), (&x.data[..7], &x.data[7..]));
            continue;
        }
        for (k, r) in parts.iter().enumerate() {
            assert_close(&y[k], &[2, r.len()], &column_range(r.clone()), &format!("opset {opset} part {k}"));
        }
    }
    let mut bad = node("Split", "s", &["x", "split"], &["a", "b"]);
    bad.attribute.push(int_attr("axis", 1));
    let b =
        model_proto(13, vec![info("x", &[Some(2), Some(7)])], vec![bad], vec![int64s("split", &[2, 2])], &["a", "b"]);
    let e = problems(&b.encode_to_vec());
    assert!(e.contains(r#"node "s" (Split): split [2, 2] does not cut an axis of 7 into 2 output(s)"#), "{e}");
}

#[test]
fn split_of_a_constant_folds() {
    // y = x · w[0..2] + w[2..4]
    let b = model(
        13,
        vec![info("x", &[Some(1), Some(2)])],
        vec![
            node("Split", "s", &["w"], &["a", "c"]),
            node("Mul", "m", &["x", "a"], &["t"]),
            node("Add", "p", &["t", "c"], &["y"]),
        ],
        vec![tensor("w", &[4], vec![2.0, 3.0, 0.5, -1.0])],
        "y",
    );
    let g = import(&b).unwrap();
    let y = run_float(&g, &[Tensor::new(vec![1, 2], vec![1.0, 2.0]).unwrap()]).unwrap();
    assert_eq!(y[0].data, vec![2.5, 5.0]);
}

#[test]
fn a_constant_concatenated_to_a_computed_value_lands_in_place() {
    let x = Tensor::new(vec![1, 2, 3], values(6, 7)).unwrap();
    let (c1, c2) = (values(3, 8), values(6, 9));
    for axis in [1i64, -2] {
        let mut cat = node("Concat", "cat", &["c1", "x", "c2", "r"], &["y"]);
        cat.attribute.push(int_attr("axis", axis));
        let b = model(
            13,
            vec![info("x", &[Some(1), Some(2), Some(3)])],
            vec![node("Relu", "relu", &["x"], &["r"]), cat],
            vec![tensor("c1", &[1, 1, 3], c1.clone()), tensor("c2", &[1, 2, 3], c2.clone())],
            "y",
        );
        let g = import(&b).unwrap();
        let y = run_float(&g, std::slice::from_ref(&x)).unwrap();
        let relu: Vec<f32> = x.data.iter().map(|v| v.max(0.0)).collect();
        let want = [c1.as_slice(), &x.data, &c2, &relu].concat();
        assert_close(&y[0], &[1, 7, 3], &want, "concat on axis 1");
        fixed_point_within_bound(&g, std::slice::from_ref(&x));
    }
    // On the last axis, the constant interleaves with the computed rows.
    let mut cat = node("Concat", "cat", &["x", "c"], &["y"]);
    cat.attribute.push(int_attr("axis", 2));
    let b = model(
        13,
        vec![info("x", &[Some(1), Some(2), Some(3)])],
        vec![cat],
        vec![tensor("c", &[1, 2, 1], vec![10.0, 20.0])],
        "y",
    );
    let y = run_float(&import(&b).unwrap(), std::slice::from_ref(&x)).unwrap();
    let d = &x.data;
    assert_close(&y[0], &[1, 2, 4], &[d[0], d[1], d[2], 10.0, d[3], d[4], d[5], 20.0], "concat on axis 2");
}

/// numpy's `matmul` (1-D operands promoted and their axis removed afterwards).
fn matmul_ref(a: &[f32], ashape: &[usize], b: &[f32], bshape: &[usize]) -> (Vec<usize>, Vec<f32>) {
    let (a2, b2) = (ashape.len() == 1, bshape.len() == 1);
    let ash: Vec<usize> = if a2 { vec![1, ashape[0]] } else { ashape.to_vec() };
    let bsh: Vec<usize> = if b2 { vec![bshape[0], 1] } else { bshape.to_vec() };
    let (m, k, n) = (ash[ash.len() - 2], ash[ash.len() - 1], bsh[bsh.len() - 1]);
    let (ab, bb) = (&ash[..ash.len() - 2], &bsh[..bsh.len() - 2]);
    let r = ab.len().max(bb.len());
    let pad = |s: &[usize]| [vec![1; r - s.len()], s.to_vec()].concat();
    let (pa, pb) = (pad(ab), pad(bb));
    let batch: Vec<usize> = (0..r).map(|i| pa[i].max(pb[i])).collect();
    let nb: usize = batch.iter().product();
    let mut out = Vec::new();
    for f in 0..nb {
        let c = coords(f, &batch);
        let ia: usize = (0..r).map(|i| if pa[i] == 1 { 0 } else { c[i] * strides(&pa)[i] }).sum();
        let ib: usize = (0..r).map(|i| if pb[i] == 1 { 0 } else { c[i] * strides(&pb)[i] }).sum();
        for i in 0..m {
            for j in 0..n {
                out.push((0..k).map(|t| a[ia * m * k + i * k + t] * b[ib * k * n + t * n + j]).sum());
            }
        }
    }
    let mut shape = batch;
    if !a2 {
        shape.push(m);
    }
    if !b2 {
        shape.push(n);
    }
    (shape, out)
}

#[test]
fn matmul_with_a_batched_constant_broadcasts_like_numpy() {
    // (computed shape, constant shape, constant on the right, dense nodes expected)
    let cases: [(&[usize], &[usize], bool, usize); 9] = [
        (&[2, 1, 3, 4], &[3, 4, 5], true, 3),
        (&[3, 4], &[2, 4, 5], true, 2),
        (&[4], &[2, 4, 5], true, 2),
        (&[2, 3, 4], &[1, 4, 5], true, 1),
        (&[2, 2, 3, 4], &[2, 1, 4, 5], true, 2),
        (&[4, 5], &[2, 3, 4], false, 2),
        (&[2, 4, 5], &[2, 3, 4], false, 2),
        (&[4], &[3, 4], false, 1),
        (&[4], &[2, 3, 4], false, 2),
    ];
    for (i, (xs, ws, right, denses)) in cases.into_iter().enumerate() {
        let x = Tensor::new(xs.to_vec(), values(xs.iter().product(), 10 + i as u64)).unwrap();
        let w = values(ws.iter().product(), 20 + i as u64);
        let ins = if right { ["x", "w"] } else { ["w", "x"] };
        let dims: Vec<Option<i64>> = xs.iter().map(|&d| Some(d as i64)).collect();
        let b = model(
            13,
            vec![info("x", &dims)],
            vec![node("MatMul", "mm", &ins, &["y"])],
            vec![tensor("w", ws, w.clone())],
            "y",
        );
        let what = format!("{xs:?} · {ws:?} (constant on the {})", if right { "right" } else { "left" });
        let g = import(&b).unwrap_or_else(|e| panic!("{what}: {e}"));
        let y = run_float(&g, std::slice::from_ref(&x)).unwrap();
        let (shape, want) = if right { matmul_ref(&x.data, xs, &w, ws) } else { matmul_ref(&w, ws, &x.data, xs) };
        assert_close(&y[0], &shape, &want, &what);
        let n = g.live_nodes().filter(|(_, n)| matches!(n.op, Op::Dense { .. })).count();
        assert_eq!(n, denses, "{what}: one dense per distinct weight matrix");
        if i < 2 {
            fixed_point_within_bound(&g, std::slice::from_ref(&x));
        }
    }
}

#[test]
fn clip_with_min_above_max_outputs_max_everywhere() {
    let x = Tensor::new(vec![1, 4], vec![-3.0, 0.5, 1.5, 4.0]).unwrap();
    let new = model(
        13,
        vec![info("x", &[Some(1), Some(4)])],
        vec![node("Clip", "c", &["x", "lo", "hi"], &["y"])],
        vec![scalar("lo", 2.0), scalar("hi", 1.0)],
        "y",
    );
    let mut legacy = node("Clip", "c", &["x"], &["y"]);
    legacy.attribute = vec![
        AttributeProto {
            name: Some("min".into()),
            r#type: Some(AttributeType::Float as i32),
            f: Some(2.0),
            ..Default::default()
        },
        AttributeProto {
            name: Some("max".into()),
            r#type: Some(AttributeType::Float as i32),
            f: Some(1.0),
            ..Default::default()
        },
    ];
    let old = model(9, vec![info("x", &[Some(1), Some(4)])], vec![legacy], vec![], "y");
    for b in [new, old] {
        let g = import(&b).unwrap();
        assert_eq!(run_float(&g, std::slice::from_ref(&x)).unwrap()[0].data, vec![1.0; 4]);
        fixed_point_within_bound(&g, std::slice::from_ref(&x));
    }
    let nan = model(
        13,
        vec![info("x", &[Some(1), Some(4)])],
        vec![node("Clip", "c", &["x", "lo"], &["y"])],
        vec![scalar("lo", f32::NAN)],
        "y",
    );
    let e = problems(&nan);
    assert!(e.contains(r#"node "c" (Clip): min = NaN is not a usable bound"#), "{e}");
}

#[test]
fn a_constant_cast_rounds_to_half_or_bfloat16_and_refuses_the_types_it_cannot_represent() {
    let cast = |to: i32| {
        let mut n = node("Cast", "cast", &["w"], &["w2"]);
        n.attribute.push(int_attr("to", to as i64));
        model(
            13,
            vec![info("x", &[Some(1), Some(2)])],
            vec![n, node("Mul", "m", &["x", "w2"], &["y"])],
            vec![tensor("w", &[2], vec![1.0001, std::f32::consts::PI])],
            "y",
        )
    };
    let g = import(&cast(DataType::Float16 as i32)).unwrap();
    let y = run_float(&g, &[Tensor::new(vec![1, 2], vec![1.0, 1.0]).unwrap()]).unwrap();
    assert_eq!(y[0].data, vec![1.0, 3.140625], "FLOAT16 keeps 11 significant bits");
    // BFLOAT16 keeps 8: 1.0001 and π (0x40490FDB) round to 1 and 0x4049 = 3.140625.
    let g = import(&cast(DataType::Bfloat16 as i32)).unwrap();
    let y = run_float(&g, &[Tensor::new(vec![1, 2], vec![1.0, 1.0]).unwrap()]).unwrap();
    assert_eq!(y[0].data, vec![1.0, 3.140625], "BFLOAT16 keeps 8 significant bits");
    for (to, name) in [(DataType::Float8e4m3fn, "FLOAT8E4M3FN"), (DataType::Int4, "INT4")] {
        let e = problems(&cast(to as i32));
        assert!(e.contains(&format!(r#"node "cast" (Cast): cast to {name} is not supported"#)), "{e}");
    }
}

#[test]
fn range_refuses_a_narrower_stash_type() {
    let mut r = node("Range", "range", &["s", "l", "d"], &["r"]);
    r.attribute.push(int_attr("stash_type", DataType::Float16 as i64));
    let b = model(
        27,
        vec![info("x", &[Some(2)])],
        vec![r, node("Add", "a", &["x", "r"], &["y"])],
        vec![scalar("s", 0.0), scalar("l", 2.0), scalar("d", 1.0)],
        "y",
    );
    let e = problems(&b);
    assert!(e.contains(r#"node "range" (Range): stash_type 10 is not supported (only 1, FLOAT)"#), "{e}");
}

#[test]
fn one_dimensional_conv_and_pools_run_as_two_dimensional_ones() {
    // x [1, 2, 9]; Conv1d: 3 filters of width 3, stride 2, dilation 2, pads [1, 2]; then pools.
    let x = Tensor::new(vec![1, 2, 9], values(18, 30)).unwrap();
    let w = values(18, 31);
    let bias = [0.5, -0.25, 1.0];
    let mut conv = node("Conv", "conv", &["x", "w", "b"], &["c"]);
    conv.attribute = vec![ints_attr("strides", &[2]), ints_attr("dilations", &[2]), ints_attr("pads", &[1, 2])];
    let mut maxp = node("MaxPool", "max", &["c"], &["m"]);
    maxp.attribute = vec![ints_attr("kernel_shape", &[2]), int_attr("ceil_mode", 1), ints_attr("strides", &[2])];
    let b = model_proto(
        13,
        vec![info("x", &[Some(1), Some(2), Some(9)])],
        vec![conv, maxp, node("GlobalAveragePool", "gap", &["m"], &["g"])],
        vec![tensor("w", &[3, 2, 3], w.clone()), tensor("b", &[3], bias.to_vec())],
        &["c", "m", "g"],
    );
    let g = import(&b.encode_to_vec()).unwrap();
    let y = run_float(&g, std::slice::from_ref(&x)).unwrap();
    // Direct: out[m][o] = b[m] + Σ_c Σ_k w[m][c][k] · xpad[c][2·o + 2·k], xpad with 1 zero before
    // and 2 after (length 12), so 4 outputs.
    let xpad = |c: usize, i: usize| if (1..10).contains(&i) { x.data[c * 9 + i - 1] } else { 0.0 };
    let mut conv_want = Vec::new();
    for m in 0..3 {
        for o in 0..4 {
            let s: f32 = (0..2)
                .flat_map(|c| (0..3).map(move |k| (c, k)))
                .map(|(c, k)| w[m * 6 + c * 3 + k] * xpad(c, 2 * o + 2 * k))
                .sum();
            conv_want.push(bias[m] + s);
        }
    }
    assert_close(&y[0], &[1, 3, 4], &conv_want, "conv1d");
    let max_want: Vec<f32> = conv_want.chunks(2).map(|p| p[0].max(p[1])).collect();
    assert_close(&y[1], &[1, 3, 2], &max_want, "maxpool1d");
    let gap_want: Vec<f32> = max_want.chunks(2).map(|p| (p[0] + p[1]) / 2.0).collect();
    assert_close(&y[2], &[1, 3, 1], &gap_want, "global average pool 1-D");
    fixed_point_within_bound(&g, std::slice::from_ref(&x));
}
