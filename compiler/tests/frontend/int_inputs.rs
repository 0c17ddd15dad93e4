//! Integer and boolean graph inputs, and Pad's copying modes, against direct computations.

use super::ops::{assert_close, coords, fixed_point_within_bound, strides, values};
use super::*;

/// A graph input of element type `t`.
pub(super) fn typed(name: &str, dims: &[i64], t: DataType) -> ValueInfoProto {
    let mut v = info(name, &dims.iter().map(|&d| Some(d)).collect::<Vec<_>>());
    if let Some(type_proto::Value::TensorType(tt)) = v.r#type.as_mut().and_then(|t| t.value.as_mut()) {
        tt.elem_type = Some(t as i32);
    }
    v
}

pub(super) fn string_attr(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(s.as_bytes().to_vec()),
        ..Default::default()
    }
}

/// What exporters write after a `uint8` image: Cast to FLOAT, then scale. Integer inputs read
/// as their values, and the ops that only move or compare them run before the cast.
#[test]
fn a_uint8_image_is_cast_scaled_and_pooled() {
    let mut cast = node("Cast", "to_float", &["m"], &["f"]);
    cast.attribute = vec![int_attr("to", DataType::Float as i64)];
    let mut pool = node("MaxPool", "pool", &["img"], &["m"]);
    pool.attribute = vec![ints_attr("kernel_shape", &[2, 2]), ints_attr("strides", &[2, 2])];
    let b = model(
        21,
        vec![typed("img", &[1, 1, 4, 4], DataType::Uint8)],
        vec![pool, cast, node("Mul", "scale", &["f", "inv"], &["y"])],
        vec![scalar("inv", 1.0 / 255.0)],
        "y",
    );
    let g = import(&b).unwrap();
    let px: Vec<f32> = (0..16).map(|i| ((i * 37 + 11) % 256) as f32).collect();
    let x = Tensor::new(vec![1, 1, 4, 4], px.clone()).unwrap();
    let want: Vec<f32> = (0..4)
        .map(|o| {
            let (r, c) = (2 * (o / 2), 2 * (o % 2));
            [px[r * 4 + c], px[r * 4 + c + 1], px[(r + 1) * 4 + c], px[(r + 1) * 4 + c + 1]]
                .into_iter()
                .fold(f32::MIN, f32::max)
                / 255.0
        })
        .collect();
    assert_close(&run_float(&g, std::slice::from_ref(&x)).unwrap()[0], &[1, 1, 2, 2], &want, "uint8 image");
    fixed_point_within_bound(&g, &[x]);
}

/// ONNX's integer arithmetic wraps and truncates (int8 `100 + 100` is `-56`); Veil's reals do
/// not, so arithmetic on an integer input is refused by name, and so is a narrowing cast.
#[test]
fn integer_arithmetic_and_narrowing_casts_are_refused_with_the_way_out() {
    let add = model(
        21,
        vec![typed("x", &[1, 4], DataType::Int8)],
        vec![node("Add", "sum", &["x", "x"], &["y"])],
        vec![],
        "y",
    );
    let e = problems(&add);
    assert!(
        e.contains(r#"node "sum" (Add): Add on a INT8 value"#) && e.contains("Cast the input to FLOAT first"),
        "{e}"
    );
    let cast = |to: DataType| {
        let mut c = node("Cast", "c", &["x"], &["y"]);
        c.attribute = vec![int_attr("to", to as i64)];
        model(21, vec![typed("x", &[1, 4], DataType::Int8)], vec![c], vec![], "y")
    };
    let e = problems(&cast(DataType::Uint8));
    assert!(e.contains("to UINT8, which does not hold all of its values"), "{e}");
    let g = import(&cast(DataType::Int16)).unwrap();
    let x = Tensor::new(vec![1, 4], vec![-128.0, -1.0, 0.0, 127.0]).unwrap();
    assert_eq!(run_float(&g, std::slice::from_ref(&x)).unwrap()[0], x);
    let e = problems(&model(
        21,
        vec![typed("x", &[1, 4], DataType::String)],
        vec![node("Identity", "i", &["x"], &["y"])],
        vec![],
        "y",
    ));
    assert!(e.contains("element type STRING; Veil takes float, integer and boolean inputs"), "{e}");
}

/// numpy's `np.pad` by definition: each output coordinate reads the operand at its offset,
/// folded back by the mode (or the constant where a constant-mode pad falls outside).
fn pad_ref(x: &[f32], shape: &[usize], before: &[i64], after: &[i64], mode: &str) -> (Vec<usize>, Vec<f32>) {
    let out: Vec<usize> = (0..shape.len()).map(|a| (shape[a] as i64 + before[a] + after[a]) as usize).collect();
    let st = strides(shape);
    let data = (0..out.iter().product::<usize>())
        .map(|k| {
            let mut flat = 0;
            for (a, &o) in coords(k, &out).iter().enumerate() {
                let (n, i) = (shape[a] as i64, o as i64 - before[a]);
                let j = match mode {
                    "edge" => i.clamp(0, n - 1),
                    "wrap" => i.rem_euclid(n),
                    "reflect" => {
                        // Reflect step by step, as numpy does for pads longer than the axis.
                        let mut j = i;
                        while j < 0 || j >= n {
                            j = if j < 0 { -j } else { 2 * (n - 1) - j };
                        }
                        j
                    }
                    _ if i < 0 || i >= n => return 7.5,
                    _ => i,
                };
                flat += j as usize * st[a];
            }
            x[flat]
        })
        .collect();
    (out, data)
}

#[test]
fn pad_in_every_mode_matches_numpy_and_constant_pads_may_crop() {
    let shape = [1, 2, 3, 4];
    let x = Tensor::new(shape.to_vec(), values(24, 5)).unwrap();
    let cases: &[(&str, [i64; 8])] = &[
        ("edge", [0, 0, 2, 1, 0, 1, 3, 5]),
        ("reflect", [0, 0, 2, 3, 0, 1, 4, 6]),
        ("wrap", [0, 1, 1, 5, 0, 0, 2, 1]),
        ("constant", [0, 0, -1, 2, 0, 1, 1, -3]),
    ];
    for &(mode, pads) in cases {
        let mut p = node("Pad", "p", &["x", "pads", "cv"], &["y"]);
        p.attribute = vec![string_attr("mode", mode)];
        let b = model(
            19,
            vec![info("x", &[Some(1), Some(2), Some(3), Some(4)])],
            vec![p],
            vec![int64s("pads", &pads), scalar("cv", 7.5)],
            "y",
        );
        let g = import(&b).unwrap_or_else(|e| panic!("{mode}: {e}"));
        let (out, want) = pad_ref(&x.data, &shape, &pads[..4], &pads[4..], mode);
        assert_close(&run_float(&g, std::slice::from_ref(&x)).unwrap()[0], &out, &want, mode);
        fixed_point_within_bound(&g, std::slice::from_ref(&x));
    }
    let mut p = node("Pad", "p", &["x", "pads"], &["y"]);
    p.attribute = vec![string_attr("mode", "edge")];
    let b = model(19, vec![info("x", &[Some(1), Some(4)])], vec![p], vec![int64s("pads", &[0, -1, 0, 2])], "y");
    let e = problems(&b);
    assert!(e.contains("supported in mode \"constant\" only"), "{e}");
}
