//! The upsampling and rearranging ops of segmentation, super-resolution and detection models:
//! ConvTranspose, Resize and Upsample, DepthToSpace and SpaceToDepth, Tile, Expand, PRelu, Abs
//! and Mean, on a U-Net-shaped model against onnxruntime (`models/decoder/`), opset 9 and 10's
//! roundings against onnxruntime's outputs, and the refusals. (ONNX's own node tests of each op
//! are in the conformance suite, `tests/conformance/`.)

use super::int_inputs::string_attr;
use super::ops::{assert_close, fixed_point_within_bound};
use super::*;

/// The decoder's float interpreter gives onnxruntime's output for the committed input, the
/// ConvTranspose is a `conv2d` reading a static `select` (no other protocol), the nearest
/// Resize and the PixelShuffle move data only, and fixed point stays within the derived bound.
#[test]
fn a_unet_shaped_decoder_gives_onnxruntimes_output() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/decoder");
    let bytes = std::fs::read(dir.join("model.onnx")).unwrap();
    let x = veil_ir::npy::read_npy(&dir.join("input.npy")).unwrap();
    let want = veil_ir::npy::read_npy(&dir.join("ort.npy")).unwrap();
    let mut g = import(&bytes).unwrap();
    g.remove_dead();
    let count = |f: fn(&Op) -> bool| g.live_nodes().filter(|(_, n)| f(&n.op)).count();
    // enc1, enc2, the transposed one, dec1, dec2 and mix.
    assert_eq!(count(|o| matches!(o, Op::Conv2d { .. })), 6);
    let up = g.live_nodes().find(|(_, n)| n.name == "up" && matches!(n.op, Op::Conv2d { .. })).expect("up").1;
    assert!(g.producer(up.inputs[0]).is_some_and(|p| matches!(p.op, Op::Select { .. })), "padded by a select");
    // The nearest Resize moves data only: one select for both axes.
    let nearest: Vec<_> = g.live_nodes().filter(|(_, n)| n.name == "nearest").map(|(_, n)| n.op.mnemonic()).collect();
    assert_eq!(nearest, ["select"]);
    // PRelu's, Abs's and the encoder's ReLU; no other non-linearity.
    assert_eq!(count(|o| matches!(o, Op::Relu)), 3);
    assert_eq!(count(|o| matches!(o, Op::MaxPool { .. })), 1);
    let moves_or_adds = |o: &Op| {
        matches!(
            o,
            Op::Conv2d { .. }
                | Op::Relu
                | Op::MaxPool { .. }
                | Op::Select { .. }
                | Op::Pad { .. }
                | Op::Concat { .. }
                | Op::Affine { .. }
                | Op::Add
                | Op::Sub
                | Op::Reveal
        )
    };
    let others: Vec<_> = g.live_nodes().filter(|(_, n)| !moves_or_adds(&n.op)).map(|(_, n)| n.op.mnemonic()).collect();
    assert!(others.is_empty(), "{others:?}");
    let got = run_float(&g, std::slice::from_ref(&x)).unwrap().remove(0);
    assert_close(&got, &want.shape, &want.data, "decoder against onnxruntime");
    fixed_point_within_bound(&g, &[x]);
}

/// A `[1, 1, 1, 7]` input `1..=7` resized along the last axis by `scale`.
fn resize_model(opset: i64, op: &str, scale: f32, mode: &str) -> Vec<u8> {
    let mut n = node(op, "resize", &["s", "scales"], &["y"]);
    n.attribute = vec![string_attr("mode", mode)];
    let nodes = vec![node("Mul", "share", &["x", "ones"], &["s"]), n];
    let inits = vec![ones("ones", 7), tensor("scales", &[4], vec![1.0, 1.0, 1.0, scale])];
    model(opset, vec![info("x", &[Some(1), Some(1), Some(1), Some(7)])], nodes, inits, "y")
}

/// Upsample (opset 9) and opset 10's Resize have no coordinate or rounding attributes:
/// onnxruntime (1.32) uses asymmetric coordinates and rounds nearest down when enlarging, up
/// when shrinking. The expected values are onnxruntime's outputs for these models.
#[test]
fn upsample_and_opset_10_resize_round_as_onnxruntime_does() {
    let x = Tensor::new(vec![1, 1, 1, 7], (1..=7).map(|v| v as f32).collect()).unwrap();
    let third = |v: f32| v / 3.0;
    let cases: [(i64, &str, f32, &str, Vec<f32>); 5] = [
        (10, "Resize", 0.6, "nearest", vec![1.0, 3.0, 5.0, 6.0]),
        (10, "Resize", 1.5, "nearest", vec![1.0, 1.0, 2.0, 3.0, 3.0, 4.0, 5.0, 5.0, 6.0, 7.0]),
        (9, "Upsample", 1.5, "nearest", vec![1.0, 1.0, 2.0, 3.0, 3.0, 4.0, 5.0, 5.0, 6.0, 7.0]),
        (10, "Resize", 0.6, "linear", vec![1.0, third(8.0), third(13.0), 6.0]),
        (9, "Upsample", 1.5, "linear", (0..10).map(|k| third(3.0 + 2.0 * k as f32).min(7.0)).collect()),
    ];
    for (opset, op, scale, mode, want) in cases {
        let g = import(&resize_model(opset, op, scale, mode)).unwrap();
        let got = run_float(&g, std::slice::from_ref(&x)).unwrap().remove(0);
        let what = format!("{op} (opset {opset}) {mode} ×{scale}");
        assert_close(&got, &[1, 1, 1, want.len()], &want, &what);
        fixed_point_within_bound(&g, std::slice::from_ref(&x));
    }
}

/// What the ops cannot do is refused by name: antialiased
/// nearest resizing, scales computed from the input, and empty results.
#[test]
fn upsampling_refusals_name_the_node_and_the_reason() {
    let e = problems(&resize_model(10, "Resize", 0.1, "nearest"));
    assert!(e.contains(r#"node "resize" (Resize)"#) && e.contains("empties axis 3"), "{e}");
    let e = problems(&resize_model(10, "Resize", 2.0, "cubical"));
    assert!(e.contains(r#"mode = "cubical""#), "{e}");
    let mut n = node("Resize", "aa", &["s", "", "scales"], &["y"]);
    n.attribute = vec![string_attr("mode", "nearest"), int_attr("antialias", 1)];
    let nodes = vec![node("Mul", "share", &["x", "ones"], &["s"]), n];
    let inits = vec![ones("ones", 7), tensor("scales", &[4], vec![1.0, 1.0, 1.0, 0.5])];
    let e = problems(&model(19, vec![info("x", &[Some(1), Some(1), Some(1), Some(7)])], nodes, inits, "y"));
    assert!(e.contains("antialias = 1 is defined for the linear and cubic modes only"), "{e}");
    // Scales computed from the input.
    let nodes = vec![node("Mul", "share", &["x", "ones"], &["s"]), node("Resize", "computed", &["s", "", "s"], &["y"])];
    let e = problems(&model(19, vec![info("x", &[Some(4)])], nodes, vec![ones("ones", 4)], "y"));
    assert!(e.contains(r#"node "computed" (Resize)"#) && e.contains("must be a constant"), "{e}");
    // Tile by zero.
    let nodes = vec![node("Mul", "share", &["x", "ones"], &["s"]), node("Tile", "tile", &["s", "reps"], &["y"])];
    let inits = vec![ones("ones", 4), int64s("reps", &[0])];
    let e = problems(&model(17, vec![info("x", &[Some(4)])], nodes, inits, "y"));
    assert!(e.contains(r#"node "tile" (Tile)"#) && e.contains("repeats holds 0"), "{e}");
}

/// Hostile sizes (a corrupt or crafted model asking for terabytes) are refused by name before
/// anything is allocated: Resize to 10^6 × 10^6, Tile and Expand past the limit, a ConvTranspose
/// whose dilation or output_shape overflows.
#[test]
fn hostile_sizes_are_refused_before_allocating() {
    let x4 = || vec![info("x", &[Some(1), Some(1), Some(2), Some(2)])];
    let share = || node("Mul", "share", &["x", "ones"], &["s"]);
    let mut n = node("Resize", "huge", &["s", "", "", "sizes"], &["y"]);
    n.attribute = vec![string_attr("mode", "nearest")];
    let inits = vec![ones("ones", 2), int64s("sizes", &[1, 1, 1_000_000, 1_000_000])];
    let e = problems(&model(19, x4(), vec![share(), n], inits, "y"));
    assert!(e.contains(r#"node "huge" (Resize)"#) && e.contains("too large"), "{e}");
    let n = node("Tile", "tile", &["s", "reps"], &["y"]);
    let inits = vec![ones("ones", 2), int64s("reps", &[1, 1 << 20, 1 << 20, i64::MAX])];
    let e = problems(&model(17, x4(), vec![share(), n], inits, "y"));
    assert!(e.contains(r#"node "tile" (Tile)"#) && e.contains("too large"), "{e}");
    let n = node("Expand", "expand", &["s", "shape"], &["y"]);
    let inits = vec![ones("ones", 2), int64s("shape", &[1 << 30, 1, 2, 2])];
    let e = problems(&model(17, x4(), vec![share(), n], inits, "y"));
    assert!(e.contains(r#"node "expand" (Expand)"#) && e.contains("too large"), "{e}");
    for attr in [ints_attr("dilations", &[1 << 62, 1]), ints_attr("output_shape", &[1 << 50, 4])] {
        let mut n = node("ConvTranspose", "deconv", &["s", "w"], &["y"]);
        n.attribute = vec![attr];
        let inits = vec![ones("ones", 2), tensor("w", &[1, 1, 2, 2], vec![1.0; 4])];
        let e = problems(&model(17, x4(), vec![share(), n], inits, "y"));
        assert!(e.contains(r#"node "deconv" (ConvTranspose)"#) && e.contains("too large"), "{e}");
    }
}

/// A ConvTranspose's output equals its definition (each input element scatters the kernel,
/// scaled, at stride `s`), for strides, pads, output padding, dilation and groups, computed
/// here directly.
#[test]
fn conv_transpose_scatters_the_kernel_as_defined() {
    struct Case {
        c: usize,
        m: usize,
        group: usize,
        hw: [usize; 2],
        k: [usize; 2],
        stride: [usize; 2],
        pads: [usize; 4],
        output_padding: [usize; 2],
        dilation: [usize; 2],
    }
    // (c, m, group, hw, k, stride, pads, output_padding, dilation)
    type Row = (usize, usize, usize, [usize; 2], [usize; 2], [usize; 2], [usize; 4], [usize; 2], [usize; 2]);
    let rows: [Row; 6] = [
        (2, 3, 1, [3, 4], [3, 3], [2, 2], [1, 1, 1, 1], [1, 1], [1, 1]),
        (4, 2, 2, [2, 3], [2, 3], [3, 1], [0, 1, 2, 0], [0, 0], [1, 2]),
        (1, 1, 1, [4, 4], [1, 1], [1, 1], [0, 0, 0, 0], [0, 0], [1, 1]),
        // Depthwise, strides past the kernel's reach on one axis, dilation on the other.
        (3, 3, 3, [3, 2], [3, 2], [2, 3], [2, 0, 1, 1], [1, 2], [2, 1]),
        (2, 4, 2, [2, 2], [4, 4], [4, 2], [0, 3, 0, 1], [0, 1], [1, 3]),
        // Stride 1 with dilation (the flipped-kernel form).
        (2, 2, 1, [3, 3], [3, 3], [1, 1], [1, 0, 0, 2], [0, 0], [2, 2]),
    ];
    let cases = rows.map(|(c, m, group, hw, k, stride, pads, output_padding, dilation)| Case {
        c,
        m,
        group,
        hw,
        k,
        stride,
        pads,
        output_padding,
        dilation,
    });
    for (t, cs) in cases.iter().enumerate() {
        let mg = cs.m / cs.group;
        let wlen = cs.c * mg * cs.k[0] * cs.k[1];
        let w: Vec<f32> = (0..wlen).map(|i| ((i * 37 % 11) as f32 - 5.0) / 8.0).collect();
        let bias: Vec<f32> = (0..cs.m).map(|i| i as f32 * 0.25 - 0.1).collect();
        let xlen = cs.c * cs.hw[0] * cs.hw[1];
        let xs: Vec<f32> = (0..xlen).map(|i| ((i * 13 % 7) as f32 - 3.0) / 4.0).collect();
        let mut n = node("ConvTranspose", "deconv", &["s", "w", "b"], &["y"]);
        n.attribute = vec![
            int_attr("group", cs.group as i64),
            ints_attr("strides", &cs.stride.map(|v| v as i64)),
            ints_attr("pads", &cs.pads.map(|v| v as i64)),
            ints_attr("output_padding", &cs.output_padding.map(|v| v as i64)),
            ints_attr("dilations", &cs.dilation.map(|v| v as i64)),
        ];
        let nodes = vec![node("Mul", "share", &["x", "ones"], &["s"]), n];
        let inits = vec![
            tensor("ones", &[cs.hw[1]], vec![1.0; cs.hw[1]]),
            tensor("w", &[cs.c, mg, cs.k[0], cs.k[1]], w.clone()),
            tensor("b", &[cs.m], bias.clone()),
        ];
        let dims = [Some(1), Some(cs.c as i64), Some(cs.hw[0] as i64), Some(cs.hw[1] as i64)];
        let g = import(&model(17, vec![info("x", &dims)], nodes, inits, "y")).unwrap();
        // The definition: full output, then the pads cropped.
        let full: Vec<usize> = (0..2)
            .map(|a| cs.stride[a] * (cs.hw[a] - 1) + cs.output_padding[a] + cs.dilation[a] * (cs.k[a] - 1) + 1)
            .collect();
        let out = [full[0] - cs.pads[0] - cs.pads[2], full[1] - cs.pads[1] - cs.pads[3]];
        let mut want = vec![0f32; cs.m * out[0] * out[1]];
        for (o, v) in want.iter_mut().enumerate() {
            *v = bias[o / (out[0] * out[1])];
        }
        let cg = cs.c / cs.group;
        for ci in 0..cs.c {
            let g_ = ci / cg;
            for i in 0..cs.hw[0] {
                for j in 0..cs.hw[1] {
                    let xv = xs[(ci * cs.hw[0] + i) * cs.hw[1] + j];
                    for jm in 0..mg {
                        for a in 0..cs.k[0] {
                            for b in 0..cs.k[1] {
                                let p = (i * cs.stride[0] + a * cs.dilation[0]) as i64 - cs.pads[0] as i64;
                                let q = (j * cs.stride[1] + b * cs.dilation[1]) as i64 - cs.pads[1] as i64;
                                if p < 0 || q < 0 || p >= out[0] as i64 || q >= out[1] as i64 {
                                    continue;
                                }
                                let wv = w[((ci * mg + jm) * cs.k[0] + a) * cs.k[1] + b];
                                let m = g_ * mg + jm;
                                want[(m * out[0] + p as usize) * out[1] + q as usize] += xv * wv;
                            }
                        }
                    }
                }
            }
        }
        let x = Tensor::new(vec![1, cs.c, cs.hw[0], cs.hw[1]], xs).unwrap();
        let got = run_float(&g, std::slice::from_ref(&x)).unwrap().remove(0);
        assert_close(&got, &[1, cs.m, out[0], out[1]], &want, &format!("case {t}"));
        fixed_point_within_bound(&g, &[x]);
    }
}

/// The same ops as torch writes them (`models/decoder/make_torch.py`): ConvTranspose2d,
/// PixelShuffle, PReLU, abs and F.interpolate / nn.Upsample in nearest, bilinear (with and
/// without align_corners) and bicubic, and a 1-D decoder (ConvTranspose1d, GroupNorm, linear
/// Upsample, which the dynamo exporter writes as GatherND, and flip), from both exporters (the
/// dynamo one with external weights): onnxruntime's output in float, and fixed point within the
/// derived bound.
#[test]
fn torchs_decoder_modules_from_both_exporters_give_onnxruntimes_output() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/decoder");
    for prefix in ["torch", "torch_audio"] {
        let x = veil_ir::npy::read_npy(&dir.join(format!("{prefix}_input.npy"))).unwrap();
        for name in ["dynamo", "torchscript"] {
            let path = dir.join(format!("{prefix}_{name}.onnx"));
            let g = veil_compiler::onnx::import_file(&path, &ImportOptions::default()).unwrap();
            let want = veil_ir::npy::read_npy(&dir.join(format!("{prefix}_{name}_ort.npy"))).unwrap();
            let got = run_float(&g, std::slice::from_ref(&x)).unwrap().remove(0);
            assert_close(&got, &want.shape, &want.data, &format!("{prefix} {name}"));
            fixed_point_within_bound(&g, std::slice::from_ref(&x));
        }
    }
}
