//! Rounding and linear quantization: Round, Floor, Ceil and a Cast to an integer type against
//! their definitions (ties, negative values), QuantizeLinear and DequantizeLinear against
//! onnxruntime on a model its quantizer wrote (`models/qdq_cnn/`), and the refusals.

use super::ops::{assert_close, fixed_point_within_bound};
use super::*;

/// Ties both ways, negative values and integers, shared with the server by a product with ones.
fn rounding_input() -> Tensor {
    Tensor::new(vec![1, 8], vec![-2.5, -1.5, -0.75, -0.25, 0.5, 1.5, 2.0, 3.25]).unwrap()
}

fn rounding_model(op: &str, to: Option<DataType>) -> Vec<u8> {
    let mut nodes = vec![node("Mul", "share", &["x", "ones"], &["s"])];
    match to {
        None => nodes.push(node(op, "r", &["s"], &["y"])),
        Some(t) => {
            let mut c = node("Cast", "to_int", &["s"], &["i"]);
            c.attribute = vec![int_attr("to", t as i64)];
            let mut back = node("Cast", "to_float", &["i"], &["y"]);
            back.attribute = vec![int_attr("to", DataType::Float as i64)];
            nodes.extend([c, back]);
        }
    }
    model(21, vec![info("x", &[Some(1), Some(8)])], nodes, vec![ones("ones", 8)], "y")
}

/// Each rounding gives what its definition gives on every value (ties to even for Round,
/// toward zero for a Cast to an integer type, as C and numpy truncate), as one `round` node,
/// and fixed point keeps it within the derived bound.
#[test]
fn rounding_ops_and_integer_casts_round_as_onnx_defines() {
    let x = rounding_input();
    type Case = (&'static str, Option<DataType>, fn(f32) -> f32, &'static str);
    let cases: [Case; 5] = [
        ("Round", None, f32::round_ties_even, "half_even"),
        ("Floor", None, f32::floor, "floor"),
        ("Ceil", None, f32::ceil, "ceil"),
        ("Cast", Some(DataType::Int32), f32::trunc, "toward_zero"),
        ("Cast", Some(DataType::Int8), f32::trunc, "toward_zero"),
    ];
    for (op, to, f, mode) in cases {
        let g = import(&rounding_model(op, to)).unwrap();
        let text = veil_ir::print::to_text(&g);
        assert_eq!(text.matches(" = round ").count(), 1, "{op}: {text}");
        assert!(text.contains(&format!(" mode={mode} ")), "{op}: {text}");
        let want: Vec<f32> = x.data.iter().map(|&v| f(v)).collect();
        assert_close(&run_float(&g, std::slice::from_ref(&x)).unwrap()[0], &[1, 8], &want, op);
        fixed_point_within_bound(&g, std::slice::from_ref(&x));
    }
    // Fixed point is exact here: every input and its rounding are on the grid.
    let g = import(&rounding_model("Round", None)).unwrap();
    let opts = veil_passes::Options { input_bound: 4.0, ..Default::default() };
    let f = veil_compiler::compile(&g, &opts.into()).unwrap().graph;
    let got = veil_ir::eval::run_fixed(&f, std::slice::from_ref(&x), 0).unwrap().outputs.remove(0);
    assert_eq!(got.data, vec![-2.0, -2.0, -1.0, -0.0, 0.0, 2.0, 2.0, 3.0]);
}

/// QuantizeLinear rounds `x / s` to even and then adds the zero point: for an odd zero point a
/// tie goes to the odd neighbour of `x / s + z`. Per channel, odd and even zero points, on
/// ties of both signs: the float interpreter and fixed point give the definition exactly, and
/// the rounding reads the zero point (a server weight, not in the plan).
#[test]
fn quantize_linear_rounds_ties_before_adding_an_odd_zero_point() {
    let n = 24usize;
    let mut q = node("QuantizeLinear", "q", &["s", "sc", "zp"], &["q"]);
    q.attribute = vec![int_attr("axis", 1)];
    let mut back = node("Cast", "to_float", &["q"], &["y"]);
    back.attribute = vec![int_attr("to", DataType::Float as i64)];
    let nodes = vec![node("Mul", "share", &["x", "ones"], &["s"]), q, back];
    let zp = TensorProto {
        name: Some("zp".into()),
        dims: vec![2],
        data_type: Some(DataType::Uint8 as i32),
        raw_data: Some(vec![3, 4]),
        ..Default::default()
    };
    let mut ones = ones("ones", 2 * n);
    ones.dims = vec![1, 2, n as i64];
    let inits = vec![ones, scalar("sc", 0.5), zp];
    let g = import(&model(21, vec![info("x", &[Some(1), Some(2), Some(n as i64)])], nodes, inits, "y")).unwrap();
    let text = veil_ir::print::to_text(&g);
    assert!(text.contains(" zero_point=@"), "{text}");
    // x / s runs over −6 … 5.5 in halves: every other one a tie.
    let xs: Vec<f32> = (0..2 * n).map(|i| ((i % n) as f32 - 12.0) / 4.0).collect();
    let x = Tensor::new(vec![1, 2, n], xs.clone()).unwrap();
    let zs = [3.0f32, 4.0];
    let want: Vec<f32> =
        xs.iter().enumerate().map(|(i, v)| ((v / 0.5).round_ties_even() + zs[i / n]).clamp(0.0, 255.0)).collect();
    assert_eq!(run_float(&g, std::slice::from_ref(&x)).unwrap()[0].data, want, "float");
    let opts = veil_passes::Options { input_bound: 4.0, ..Default::default() };
    let c = veil_compiler::compile(&g, &opts.into()).unwrap();
    let got = veil_ir::eval::run_fixed(&c.graph, std::slice::from_ref(&x), 0).unwrap().outputs.remove(0);
    assert_eq!(got.data, want, "fixed point");
    let (plan, _, _) = veil_ir::plan::encode(&c.graph).unwrap();
    let (public, _) = veil_ir::plan::decode_plan(&plan).unwrap();
    let z = public.graph.live_nodes().find_map(|(_, n)| match n.op {
        Op::Round { zero_point, .. } => zero_point,
        _ => None,
    });
    let z = &public.graph.consts[z.expect("the rounding reads the zero point")];
    assert!(z.domain == veil_ir::Domain::Server && z.qdata.is_empty(), "{z:?}");
}

/// onnxruntime's static quantizer (QDQ format: uint8 activations, per-channel int8 weights):
/// the float interpreter gives onnxruntime's output for the committed input, with one rounding
/// clamped to the uint8 range per QuantizeLinear of a computed value (and no other clamp) except
/// the one that requantizes a MaxPool, the weights' DequantizeLinear folded at compile time, and
/// fixed point within the derived bound.
#[test]
fn the_onnxruntime_quantizers_qdq_model_gives_onnxruntimes_output() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/qdq_cnn");
    let bytes = std::fs::read(dir.join("model.onnx")).unwrap();
    let x = veil_ir::npy::read_npy(&dir.join("input.npy")).unwrap();
    let want = veil_ir::npy::read_npy(&dir.join("ort.npy")).unwrap();
    let proto = ModelProto::decode(bytes.as_slice()).unwrap();
    let quantize = proto.graph.as_ref().unwrap().node.iter().filter(|n| n.op_type() == "QuantizeLinear").count();
    let mut g = import(&bytes).unwrap();
    g.remove_dead();
    let count = |f: fn(&Op) -> bool| g.live_nodes().filter(|(_, n)| f(&n.op)).count();
    let uint8 =
        |o: &Op| matches!(o, Op::Round { mode: veil_ir::RoundMode::HalfEven, min: Some(0.0), max: Some(255.0), .. });
    // The QuantizeLinear after `DequantizeLinear → MaxPool` with the same parameters is a
    // MaxPool of the integers.
    assert_eq!(count(uint8), quantize - 1, "one clamped rounding per QuantizeLinear but the pool's");
    assert_eq!(count(|o| matches!(o, Op::Round { .. } | Op::Clip { .. })), quantize - 1);
    let pools: Vec<_> = g.live_nodes().filter(|(_, n)| matches!(n.op, Op::MaxPool { .. })).collect();
    assert_eq!(pools.len(), 1);
    assert!(g.producer(pools[0].1.inputs[0]).is_some_and(|p| uint8(&p.op)), "the pool reads the integers");
    assert_eq!(count(|o| matches!(o, Op::Conv2d { .. })), 2, "the int8 weights fold into the convolutions");
    let got = run_float(&g, std::slice::from_ref(&x)).unwrap().remove(0);
    assert_close(&got, &want.shape, &want.data, "qdq_cnn against onnxruntime");
    fixed_point_within_bound(&g, &[x]);
}

/// The same float CNN quantized by onnxruntime's static quantizer to FP8 (FLOAT8E4M3FN
/// activations and weights, `models/qdq_cnn/make_fp8.py`): every QuantizeLinear of a computed
/// value is one rounding onto the E4M3 grid saturating at 448, the FP8 weights fold into the
/// convolutions, the float interpreter gives onnxruntime's output, and fixed point stays within
/// the derived bound and keeps the top-1 class.
#[test]
fn the_onnxruntime_quantizers_fp8_model_gives_onnxruntimes_output() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/qdq_cnn");
    let bytes = std::fs::read(dir.join("model_fp8.onnx")).unwrap();
    let x = veil_ir::npy::read_npy(&dir.join("input.npy")).unwrap();
    let want = veil_ir::npy::read_npy(&dir.join("ort_fp8.npy")).unwrap();
    let proto = ModelProto::decode(bytes.as_slice()).unwrap();
    let quantize = proto.graph.as_ref().unwrap().node.iter().filter(|n| n.op_type() == "QuantizeLinear").count();
    let mut g = import(&bytes).unwrap();
    g.remove_dead();
    let count = |f: fn(&Op) -> bool| g.live_nodes().filter(|(_, n)| f(&n.op)).count();
    let e4m3 = |o: &Op| matches!(o, Op::Round { grid: Some(g), max: Some(m), .. } if g.mantissa == 3 && g.min_exp == -6 && *m == 448.0);
    assert_eq!(count(e4m3), quantize, "one E4M3 rounding per QuantizeLinear");
    assert_eq!(count(|o| matches!(o, Op::Conv2d { .. })), 2, "the FP8 weights fold into the convolutions");
    let got = run_float(&g, std::slice::from_ref(&x)).unwrap().remove(0);
    assert_close(&got, &want.shape, &want.data, "qdq_cnn FP8 against onnxruntime");
    fixed_point_within_bound(&g, std::slice::from_ref(&x));
    let opts = veil_passes::Options { input_bound: 2.0, ..Default::default() };
    let f = veil_compiler::compile(&g, &opts.into()).unwrap().graph;
    let fixed = veil_ir::eval::run_fixed(&f, &[x], 0).unwrap().outputs.remove(0);
    let top = |d: &[f32]| (0..d.len()).max_by(|&a, &b| d[a].total_cmp(&d[b])).unwrap();
    assert_eq!(top(&fixed.data), top(&want.data), "fixed point keeps onnxruntime's class");
}

/// Roundings Veil has no circuit for, and integer arithmetic on quantized values (ONNX's
/// wraps), are refused by name.
#[test]
fn casts_and_quantizations_veil_cannot_round_are_refused_by_name() {
    let e = problems(&rounding_model("Cast", Some(DataType::Bool)));
    assert!(
        e.contains(r#"node "to_int" (Cast): cast of a computed value"#) && e.contains("to BOOL is not supported"),
        "{e}"
    );
    let e = problems(&small_float_quantize(DataType::Float8e4m3fn, Some(0x38), "Cast"));
    assert!(e.contains(r#"node "q" (QuantizeLinear): a non-zero zero point for an 8- or 4-bit float"#), "{e}");
    let e = problems(&small_float_quantize(DataType::Int8, None, "Add"));
    assert!(e.contains(r#"node "after" (Add): Add on a INT8 value"#), "{e}");
    // Max is exact on integers: the quantized value passes.
    let g = import(&small_float_quantize(DataType::Int8, None, "Max")).unwrap();
    let x = Tensor::new(vec![1, 8], vec![-20.0, -0.25, -0.06, 0.0, 0.04, 0.15, 1.26, 20.0]).unwrap();
    let want = [-128.0, -2.0, -1.0, 0.0, 0.0, 2.0, 13.0, 127.0];
    assert_close(&run_float(&g, std::slice::from_ref(&x)).unwrap()[0], &[1, 8], &want, "int8 quantization");
}

/// `QuantizeLinear(s·x, 0.1)` to `dtype` (with a zero point of that type holding the byte
/// `zero`, if any), then `then` of the result (`Cast` back to FLOAT, or an op of it with itself).
fn small_float_quantize(dtype: DataType, zero: Option<u8>, then: &str) -> Vec<u8> {
    let mut inputs = vec!["s", "scale"];
    let mut inits = vec![ones("ones", 8), scalar("scale", 0.1)];
    if let Some(z) = zero {
        inputs.push("zero");
        inits.push(TensorProto {
            name: Some("zero".into()),
            data_type: Some(dtype as i32),
            raw_data: Some(vec![z]),
            ..Default::default()
        });
    }
    let mut q = node("QuantizeLinear", "q", &inputs, &["q"]);
    q.attribute = vec![int_attr("output_dtype", dtype as i64)];
    let mut nodes = vec![node("Mul", "share", &["x", "ones"], &["s"]), q];
    let mut after = node(then, "after", if then == "Cast" { &["q"] } else { &["q", "q"] }, &["y"]);
    if then == "Cast" {
        after.attribute = vec![int_attr("to", DataType::Float as i64)];
    }
    nodes.push(after);
    model(23, vec![info("x", &[Some(1), Some(8)])], nodes, inits, "y")
}

/// Casts to 8- and 4-bit float types round onto the type's values (ONNX's tables: to nearest,
/// ties to even, saturating; FLOAT8E8M0 rounds up by default), FP8 `QuantizeLinear` rounds `x/s`
/// so, and casts to 2- and 4-bit integers saturate where ONNX leaves the result undefined (as
/// onnxruntime does): against values computed by hand from each type's definition, in float,
/// and in fixed point within the derived bound.
#[test]
fn casts_to_small_float_and_integer_types_round_onto_their_values() {
    let x = Tensor::new(vec![1, 8], vec![-500.0, -9.3, -1.0625, -0.3, 0.0, 1.1875, 5.3, 100.0]).unwrap();
    let cases: [(DataType, [f32; 8]); 6] = [
        // E4M3: spacing 1/8 in [1, 2), 1/2 in [4, 8), 8 in [64, 128); 448 at most.
        (DataType::Float8e4m3fn, [-448.0, -9.0, -1.0, -0.3125, 0.0, 1.25, 5.5, 96.0]),
        // E5M2: spacing 1/4 in [1, 2), 2 in [8, 16).
        (DataType::Float8e5m2, [-512.0, -10.0, -1.0, -0.3125, 0.0, 1.25, 5.0, 96.0]),
        // E2M1: 0, 0.5, 1, 1.5, 2, 3, 4, 6.
        (DataType::Float4e2m1, [-6.0, -6.0, -1.0, -0.5, 0.0, 1.0, 6.0, 6.0]),
        // E8M0 rounds up (toward +∞: negative values are unspecified) to powers of two.
        (DataType::Float8e8m0, [-256.0, -8.0, -1.0, -0.25, 0.0, 2.0, 8.0, 128.0]),
        (DataType::Int4, [-8.0, -8.0, -1.0, 0.0, 0.0, 1.0, 5.0, 7.0]),
        (DataType::Uint2, [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 3.0, 3.0]),
    ];
    for (t, want) in cases {
        let g = import(&rounding_model("Cast", Some(t))).unwrap();
        let text = veil_ir::print::to_text(&g);
        assert_eq!(text.matches(" = round ").count(), 1, "{t:?}: {text}");
        assert_close(&run_float(&g, std::slice::from_ref(&x)).unwrap()[0], &[1, 8], &want, t.as_str_name());
        let bounded = Tensor::new(vec![1, 8], x.data.iter().map(|v| v.clamp(-100.0, 100.0)).collect()).unwrap();
        fixed_point_within_bound(&g, std::slice::from_ref(&bounded));
    }
    // QuantizeLinear to FLOAT8E4M3FN: x / 0.1 onto the grid, saturating.
    let g = import(&small_float_quantize(DataType::Float8e4m3fn, None, "Cast")).unwrap();
    let q = Tensor::new(vec![1, 8], vec![-50.0, -0.93, -0.10625, 0.0, 0.01, 0.118, 5.3, 10.0]).unwrap();
    let want = [-448.0, -9.0, -1.0, 0.0, 0.1015625, 1.125, 52.0, 96.0];
    assert_close(&run_float(&g, std::slice::from_ref(&q)).unwrap()[0], &[1, 8], &want, "fp8 quantization");
    fixed_point_within_bound(&g, std::slice::from_ref(&q));
}

/// onnxruntime's other quantization formats are refused with the way out.
#[test]
fn qoperator_and_dynamic_quantization_are_refused_with_the_way_out() {
    for (op, says) in [("QLinearConv", "quantize in the QDQ format instead"), ("MatMulInteger", "dynamic quantization")]
    {
        let b = model(21, vec![info("x", &[Some(1), Some(8)])], vec![node(op, "q", &["x", "x"], &["y"])], vec![], "y");
        let e = problems(&b);
        assert!(e.contains(&format!(r#"node "q" ({op}): not supported: {op} is"#)) && e.contains(says), "{e}");
    }
}

/// `QuantizeLinear(MaxPool(DequantizeLinear(q)))` with the same scale, zero point and type is a
/// MaxPool of `q` (the window's maximum is the same integer); with any of them different it stays
/// a dequantization, a pool and a rounding. Both against the definition, on values with ties.
#[test]
fn a_requantized_max_pool_pools_the_integers_when_the_parameters_match() {
    // x → Q(0.1, 3) → DQ(0.1, 3) → MaxPool 2×2 → Q(s2, z2) → DQ(0.1, 3) → y.
    let qdq = |s2: f32, z2: u8| {
        let mut pool = node("MaxPool", "pool", &["d1"], &["m"]);
        pool.attribute = vec![ints_attr("kernel_shape", &[2, 2]), ints_attr("strides", &[2, 2])];
        let nodes = vec![
            node("Mul", "share", &["x", "ones"], &["s"]),
            node("QuantizeLinear", "q1", &["s", "sc", "zp"], &["q1"]),
            node("DequantizeLinear", "dq1", &["q1", "sc", "zp"], &["d1"]),
            pool,
            node("QuantizeLinear", "q2", &["m", "sc2", "zp2"], &["q2"]),
            node("DequantizeLinear", "dq2", &["q2", "sc", "zp"], &["y"]),
        ];
        let inits =
            vec![ones4("ones"), scalar("sc", 0.1), uint8_scalar("zp", 3), scalar("sc2", s2), uint8_scalar("zp2", z2)];
        model(21, vec![info("x", &[Some(1), Some(1), Some(4), Some(4)])], nodes, inits, "y")
    };
    let xs: Vec<f32> = (0..16).map(|i| (i as f32 - 6.0) * 0.137 + if i % 3 == 0 { 0.05 } else { 0.0 }).collect();
    let x = Tensor::new(vec![1, 1, 4, 4], xs.clone()).unwrap();
    // (Not a second scale of 0.2: `m / 0.2` and Veil's `m · (1/0.2)` put some `m` an ulp to either
    // side of a tie in float32. Ties with an odd zero point:
    // `quantize_linear_rounds_ties_before_adding_an_odd_zero_point`.)
    for (s2, z2, rewritten) in [(0.1f32, 3u8, true), (0.3, 3, false), (0.1, 4, false)] {
        let mut g = import(&qdq(s2, z2)).unwrap();
        g.remove_dead();
        let pool = g.live_nodes().find(|(_, n)| matches!(n.op, Op::MaxPool { .. })).unwrap().1;
        let reads_round = g.producer(pool.inputs[0]).is_some_and(|p| matches!(p.op, Op::Round { .. }));
        assert_eq!(reads_round, rewritten, "scale {s2}, zero point {z2}");
        let rounds = g.live_nodes().filter(|(_, n)| matches!(n.op, Op::Round { .. })).count();
        assert_eq!(rounds, if rewritten { 1 } else { 2 });
        // The definition: quantize, dequantize, pool, quantize with (s2, z2), dequantize.
        let q = |v: f32, s: f32, z: f32| ((v / s).round_ties_even() + z).clamp(0.0, 255.0);
        let want: Vec<f32> = (0..4)
            .map(|o| {
                let (r, c) = (2 * (o / 2), 2 * (o % 2));
                let m = [(0, 0), (0, 1), (1, 0), (1, 1)]
                    .iter()
                    .map(|(a, b)| (q(xs[(r + a) * 4 + c + b], 0.1, 3.0) - 3.0) * 0.1)
                    .fold(f32::MIN, f32::max);
                (q(m, s2, f32::from(z2)) - 3.0) * 0.1
            })
            .collect();
        assert_close(&run_float(&g, std::slice::from_ref(&x)).unwrap()[0], &[1, 1, 2, 2], &want, "requantized pool");
        fixed_point_within_bound(&g, std::slice::from_ref(&x));
    }
}

fn ones4(name: &str) -> TensorProto {
    let mut t = ones(name, 16);
    t.dims = vec![1, 1, 4, 4];
    t
}

fn uint8_scalar(name: &str, v: u8) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        data_type: Some(DataType::Uint8 as i32),
        raw_data: Some(vec![v]),
        ..Default::default()
    }
}
