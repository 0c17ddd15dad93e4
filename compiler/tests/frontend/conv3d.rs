//! 3-D convolutions (`Conv` and `ConvTranspose` over `[N, C, D, H, W]`, video and volumetric
//! models) against their definitions computed here directly, over strides, pads, dilations,
//! output padding, groups and a batch of two, in float and in fixed point within the derived
//! bound; each is one `conv2d` (so one HE layer) reading a static `select`.

use super::ops::{assert_close, fixed_point_within_bound};
use super::*;

/// One 3-D case: channels in and out, groups, input size, kernel, strides, pads (begin then
/// end, per axis), dilations, and (transposed) output padding.
struct Case {
    c: usize,
    m: usize,
    group: usize,
    size: [usize; 3],
    k: [usize; 3],
    stride: [usize; 3],
    pads: [usize; 6],
    dilation: [usize; 3],
    output_padding: [usize; 3],
}

type Row = (usize, usize, usize, [usize; 3], [usize; 3], [usize; 3], [usize; 6], [usize; 3], [usize; 3]);

fn cases(rows: &[Row]) -> Vec<Case> {
    rows.iter()
        .map(|&(c, m, group, size, k, stride, pads, dilation, output_padding)| Case {
            c,
            m,
            group,
            size,
            k,
            stride,
            pads,
            dilation,
            output_padding,
        })
        .collect()
}

const N: usize = 2;

/// A model of one `op` node on a shared `[2, C, D, H, W]` input, its weight `[a, b, kd, kh, kw]`.
fn model3d(op: &str, cs: &Case, wshape: [usize; 2], w: &[f32], bias: &[f32]) -> veil_ir::Graph {
    let mut n = node(op, "conv3d", &["s", "w", "b"], &["y"]);
    n.attribute = vec![
        int_attr("group", cs.group as i64),
        ints_attr("strides", &cs.stride.map(|v| v as i64)),
        ints_attr("pads", &cs.pads.map(|v| v as i64)),
        ints_attr("dilations", &cs.dilation.map(|v| v as i64)),
    ];
    if op == "ConvTranspose" {
        n.attribute.push(ints_attr("output_padding", &cs.output_padding.map(|v| v as i64)));
    }
    let nodes = vec![node("Mul", "share", &["x", "ones"], &["s"]), n];
    let wdims = [wshape[0], wshape[1], cs.k[0], cs.k[1], cs.k[2]];
    let inits = vec![
        tensor("ones", &[cs.size[2]], vec![1.0; cs.size[2]]),
        tensor("w", &wdims, w.to_vec()),
        tensor("b", &[cs.m], bias.to_vec()),
    ];
    let dims = [N, cs.c, cs.size[0], cs.size[1], cs.size[2]].map(|d| Some(d as i64));
    import(&model(17, vec![info("x", &dims)], nodes, inits, "y")).unwrap()
}

fn data(len: usize, a: usize, b: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * a % b) as f32 - (b / 2) as f32) / 8.0).collect()
}

/// Checks `g` on a generated input against `reference(x)` of shape `[N, M, out]`: close in
/// float, one `conv2d` and no other linear layer, fixed point within the bound.
fn check(g: &veil_ir::Graph, cs: &Case, out: [usize; 3], want: &[f32], xs: Vec<f32>, what: &str) {
    let convs = g.live_nodes().filter(|(_, n)| matches!(n.op, Op::Conv2d { .. })).count();
    assert_eq!(convs, 1, "{what}: {}", veil_ir::print::to_text(g));
    let x = Tensor::new(vec![N, cs.c, cs.size[0], cs.size[1], cs.size[2]], xs).unwrap();
    let got = run_float(g, std::slice::from_ref(&x)).unwrap().remove(0);
    assert_close(&got, &[N, cs.m, out[0], out[1], out[2]], want, what);
    fixed_point_within_bound(g, &[x]);
}

/// Row-major offset of `i` in `shape`.
fn at(i: &[usize], shape: &[usize]) -> usize {
    i.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// A Conv's output equals the definition: each output element sums its group's input
/// channels over the kernel's taps at `o·s + t·d − pad_begin` (zero outside), plus the bias.
#[test]
fn conv3d_sums_the_window_as_defined() {
    let rows: [Row; 5] = [
        (2, 3, 1, [4, 5, 5], [3, 3, 3], [1, 1, 1], [1, 1, 1, 1, 1, 1], [1, 1, 1], [0; 3]),
        (4, 4, 2, [5, 4, 6], [2, 3, 2], [2, 1, 2], [0, 1, 1, 1, 0, 0], [1, 1, 2], [0; 3]),
        // Depthwise, a depth stride past the kernel, dilated depth taps.
        (3, 3, 3, [7, 3, 4], [2, 2, 1], [3, 1, 1], [2, 0, 0, 1, 1, 0], [2, 1, 1], [0; 3]),
        // A depth kernel of one (a per-frame 2-D convolution) and a pointwise one.
        (2, 2, 1, [3, 4, 4], [1, 3, 3], [1, 2, 2], [0, 1, 1, 0, 1, 1], [1, 1, 1], [0; 3]),
        (3, 2, 1, [2, 2, 3], [1, 1, 1], [1, 1, 1], [0; 6], [1, 1, 1], [0; 3]),
    ];
    for (t, cs) in cases(&rows).iter().enumerate() {
        let cg = cs.c / cs.group;
        let mg = cs.m / cs.group;
        let w = data(cs.m * cg * cs.k.iter().product::<usize>(), 37, 11);
        let bias: Vec<f32> = (0..cs.m).map(|i| i as f32 * 0.25 - 0.1).collect();
        let g = model3d("Conv", cs, [cs.m, cg], &w, &bias);
        let out: [usize; 3] = std::array::from_fn(|a| {
            (cs.size[a] + cs.pads[a] + cs.pads[a + 3] - cs.dilation[a] * (cs.k[a] - 1) - 1) / cs.stride[a] + 1
        });
        let xshape = [N, cs.c, cs.size[0], cs.size[1], cs.size[2]];
        let xs = data(xshape.iter().product(), 13, 7);
        let oshape = [N, cs.m, out[0], out[1], out[2]];
        let mut want = vec![0f32; oshape.iter().product()];
        for b in 0..N {
            for m in 0..cs.m {
                let grp = m / mg;
                for o0 in 0..out[0] {
                    for o1 in 0..out[1] {
                        for o2 in 0..out[2] {
                            let mut acc = bias[m];
                            for cl in 0..cg {
                                for t0 in 0..cs.k[0] {
                                    for t1 in 0..cs.k[1] {
                                        for t2 in 0..cs.k[2] {
                                            let (o, tap) = ([o0, o1, o2], [t0, t1, t2]);
                                            let p: [i64; 3] = std::array::from_fn(|a| {
                                                (o[a] * cs.stride[a] + tap[a] * cs.dilation[a]) as i64
                                                    - cs.pads[a] as i64
                                            });
                                            if (0..3).any(|a| p[a] < 0 || p[a] >= cs.size[a] as i64) {
                                                continue;
                                            }
                                            let ci = grp * cg + cl;
                                            let xi = at(&[b, ci, p[0] as usize, p[1] as usize, p[2] as usize], &xshape);
                                            let wi = at(&[m, cl, t0, t1, t2], &[cs.m, cg, cs.k[0], cs.k[1], cs.k[2]]);
                                            acc += xs[xi] * w[wi];
                                        }
                                    }
                                }
                            }
                            want[at(&[b, m, o0, o1, o2], &oshape)] = acc;
                        }
                    }
                }
            }
        }
        check(&g, cs, out, &want, xs, &format!("conv case {t}"));
    }
}

/// A ConvTranspose's output equals the definition: each input element scatters the kernel,
/// scaled, at `i·s + t·d − pad_begin` into its group's output channels, plus the bias.
#[test]
fn conv_transpose3d_scatters_the_kernel_as_defined() {
    let rows: [Row; 4] = [
        (2, 3, 1, [2, 3, 3], [3, 3, 3], [2, 2, 2], [1, 1, 1, 1, 1, 1], [1, 1, 1], [1, 1, 1]),
        (4, 2, 2, [3, 2, 2], [2, 2, 3], [1, 2, 1], [0, 1, 0, 1, 0, 2], [2, 1, 1], [0, 1, 0]),
        // Depthwise with the depth stride past the kernel's reach.
        (3, 3, 3, [3, 2, 3], [2, 2, 2], [3, 1, 2], [0, 0, 1, 2, 1, 0], [1, 1, 1], [2, 0, 1]),
        (2, 2, 1, [2, 3, 2], [1, 3, 2], [2, 1, 1], [0; 6], [1, 2, 1], [1, 0, 0]),
    ];
    for (t, cs) in cases(&rows).iter().enumerate() {
        let (cg, mg) = (cs.c / cs.group, cs.m / cs.group);
        let w = data(cs.c * mg * cs.k.iter().product::<usize>(), 37, 11);
        let bias: Vec<f32> = (0..cs.m).map(|i| i as f32 * 0.25 - 0.1).collect();
        let g = model3d("ConvTranspose", cs, [cs.c, mg], &w, &bias);
        let out: [usize; 3] = std::array::from_fn(|a| {
            cs.stride[a] * (cs.size[a] - 1) + cs.output_padding[a] + cs.dilation[a] * (cs.k[a] - 1) + 1
                - cs.pads[a]
                - cs.pads[a + 3]
        });
        let xshape = [N, cs.c, cs.size[0], cs.size[1], cs.size[2]];
        let xs = data(xshape.iter().product(), 13, 7);
        let oshape = [N, cs.m, out[0], out[1], out[2]];
        let plane: usize = out.iter().product();
        let mut want: Vec<f32> = (0..oshape.iter().product()).map(|o| bias[(o / plane) % cs.m]).collect();
        for b in 0..N {
            for ci in 0..cs.c {
                for i0 in 0..cs.size[0] {
                    for i1 in 0..cs.size[1] {
                        for i2 in 0..cs.size[2] {
                            let xv = xs[at(&[b, ci, i0, i1, i2], &xshape)];
                            for j in 0..mg {
                                for t0 in 0..cs.k[0] {
                                    for t1 in 0..cs.k[1] {
                                        for t2 in 0..cs.k[2] {
                                            let (i, tap) = ([i0, i1, i2], [t0, t1, t2]);
                                            let p: [i64; 3] = std::array::from_fn(|a| {
                                                (i[a] * cs.stride[a] + tap[a] * cs.dilation[a]) as i64
                                                    - cs.pads[a] as i64
                                            });
                                            if (0..3).any(|a| p[a] < 0 || p[a] >= out[a] as i64) {
                                                continue;
                                            }
                                            let m = (ci / cg) * mg + j;
                                            let wi = at(&[ci, j, t0, t1, t2], &[cs.c, mg, cs.k[0], cs.k[1], cs.k[2]]);
                                            let oi = at(&[b, m, p[0] as usize, p[1] as usize, p[2] as usize], &oshape);
                                            want[oi] += xv * w[wi];
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        check(&g, cs, out, &want, xs, &format!("transposed case {t}"));
    }
}

/// Malformed 3-D convolutions are refused by name: a kernel of the wrong rank, a depth kernel
/// longer than the padded depth, and hostile sizes before anything is allocated.
#[test]
fn malformed_3d_convolutions_are_refused_by_name() {
    let x5 = || vec![info("x", &[Some(1), Some(1), Some(2), Some(2), Some(2)])];
    let try_conv = |op: &str, wshape: &[usize], attrs: Vec<AttributeProto>| {
        let mut n = node(op, "c3", &["x", "w"], &["y"]);
        n.attribute = attrs;
        let len = wshape.iter().product();
        problems(&model(17, x5(), vec![n], vec![tensor("w", wshape, vec![0.5; len])], "y"))
    };
    let e = try_conv("Conv", &[1, 1, 2, 2], vec![]);
    assert!(e.contains(r#"node "c3" (Conv)"#) && e.contains("does not fit a 3-D convolution"), "{e}");
    let e = try_conv("Conv", &[1, 1, 3, 1, 1], vec![]);
    assert!(e.contains(r#"node "c3" (Conv)"#) && e.contains("depth"), "{e}");
    let e = try_conv("Conv", &[1, 1, 1, 1, 1], vec![ints_attr("pads", &[1 << 30, 0, 0, 1 << 30, 0, 0])]);
    assert!(e.contains(r#"node "c3" (Conv)"#) && e.contains("too large"), "{e}");
    let e = try_conv("ConvTranspose", &[1, 1, 2, 2, 2], vec![ints_attr("strides", &[1 << 30, 1, 1])]);
    assert!(e.contains(r#"node "c3" (ConvTranspose)"#) && e.contains("too large"), "{e}");
}

/// A video network as torch writes it (`models/video/make_torch.py`): Conv3d (padded, strided
/// in space, and a grouped temporal convolution), BatchNorm3d, MaxPool3d, ConvTranspose3d and
/// adaptive average pooling, from both exporters (the dynamo one with external weights):
/// onnxruntime's output in float, each convolution one `conv2d`, and fixed point within the
/// derived bound.
#[test]
fn torchs_video_network_from_both_exporters_gives_onnxruntimes_output() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/video");
    let x = veil_ir::npy::read_npy(&dir.join("torch_input.npy")).unwrap();
    for name in ["dynamo", "torchscript"] {
        let path = dir.join(format!("torch_{name}.onnx"));
        let g = veil_compiler::onnx::import_file(&path, &ImportOptions::default()).unwrap();
        let convs = g.live_nodes().filter(|(_, n)| matches!(n.op, Op::Conv2d { .. })).count();
        assert_eq!(convs, 4, "{name}: {}", veil_ir::print::to_text(&g));
        let want = veil_ir::npy::read_npy(&dir.join(format!("torch_{name}_ort.npy"))).unwrap();
        let got = run_float(&g, std::slice::from_ref(&x)).unwrap().remove(0);
        assert_close(&got, &want.shape, &want.data, name);
        fixed_point_within_bound(&g, std::slice::from_ref(&x));
    }
}
