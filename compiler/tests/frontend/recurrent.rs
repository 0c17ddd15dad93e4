//! RNN, GRU (both `linear_before_reset`) and LSTM, unrolled over the sequence: against ONNX's
//! equations computed here directly (every direction, both layouts, a batch of two, biases),
//! torch's exports against onnxruntime, fixed point within the derived bound, and the
//! refusals.

use super::int_inputs::string_attr;
use super::ops::{assert_close, fixed_point_within_bound};
use super::*;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// One direction of `op` over `xs` (`[T][B][I]`), ONNX's equations with zero initial state:
/// the hidden states in time order, and the cell states. `p`: an LSTM's peepholes (`P_i`,
/// `P_o`, `P_f`), or empty.
#[allow(clippy::type_complexity)]
fn reference(
    (op, lbr, reverse): (&str, bool, bool),
    xs: &[Vec<Vec<f32>>],
    (w, r, b, p): (&[f32], &[f32], &[f32], &[f32]),
    hs: usize,
) -> (Vec<Vec<Vec<f32>>>, Vec<Vec<Vec<f32>>>) {
    let (t, batch, isz) = (xs.len(), xs[0].len(), xs[0][0].len());
    let g = w.len() / (hs * isz);
    let dot = |m: &[f32], row: usize, v: &[f32]| (0..v.len()).map(|k| m[row * v.len() + k] * v[k]).sum::<f32>();
    let mut h = vec![vec![0f32; hs]; batch];
    let mut c = vec![vec![0f32; hs]; batch];
    let (mut hout, mut cout) = (vec![vec![]; t], vec![vec![]; t]);
    for step in 0..t {
        let time = if reverse { t - 1 - step } else { step };
        for bi in 0..batch {
            let x = &xs[time][bi];
            // Gate k, unit j: x·W + Wb and (optionally r-scaled) H·R + Rb.
            let xw = |k: usize, j: usize| dot(w, k * hs + j, x) + b[k * hs + j];
            let hr = |k: usize, j: usize, hv: &[f32]| dot(r, k * hs + j, hv) + b[g * hs + k * hs + j];
            let prev = h[bi].clone();
            let mut next = vec![0f32; hs];
            match op {
                "RNN" => (0..hs).for_each(|j| next[j] = (xw(0, j) + hr(0, j, &prev)).tanh()),
                "GRU" => {
                    let z: Vec<f32> = (0..hs).map(|j| sigmoid(xw(0, j) + hr(0, j, &prev))).collect();
                    let rg: Vec<f32> = (0..hs).map(|j| sigmoid(xw(1, j) + hr(1, j, &prev))).collect();
                    let rh: Vec<f32> = (0..hs).map(|j| rg[j] * prev[j]).collect();
                    for j in 0..hs {
                        let cand =
                            if lbr { xw(2, j) + rg[j] * hr(2, j, &prev) } else { xw(2, j) + hr(2, j, &rh) }.tanh();
                        next[j] = (1.0 - z[j]) * cand + z[j] * prev[j];
                    }
                }
                _ => {
                    for j in 0..hs {
                        let gate = |k: usize| xw(k, j) + hr(k, j, &prev);
                        let peep = |k: usize, cv: f32| if p.is_empty() { 0.0 } else { p[k * hs + j] * cv };
                        let cp = c[bi][j];
                        let (i, f, cc) =
                            (sigmoid(gate(0) + peep(0, cp)), sigmoid(gate(2) + peep(2, cp)), gate(3).tanh());
                        c[bi][j] = f * cp + i * cc;
                        let o = sigmoid(gate(1) + peep(1, c[bi][j]));
                        next[j] = o * c[bi][j].tanh();
                    }
                }
            }
            h[bi] = next;
        }
        hout[time] = h.clone();
        cout[time] = c.clone();
    }
    (hout, cout)
}

/// Every cell, direction and layout against the reference: `Y`, `Y_h` and (LSTM) `Y_c`; an
/// LSTM with peepholes too.
#[test]
fn recurrent_cells_follow_onnxs_equations() {
    let (t, batch, isz, hs) = (4usize, 2usize, 3usize, 5usize);
    let cases = [
        ("RNN", false, "forward", 0),
        ("RNN", false, "bidirectional", 1),
        ("GRU", false, "forward", 0),
        ("GRU", true, "reverse", 0),
        ("GRU", true, "bidirectional", 1),
        ("LSTM", false, "forward", 1),
        ("LSTM", false, "bidirectional", 0),
        // With peepholes (the flag, for an LSTM).
        ("LSTM", true, "bidirectional", 1),
    ];
    for (op, lbr, direction, layout) in cases {
        let g = match op {
            "RNN" => 1,
            "GRU" => 3,
            _ => 4,
        };
        let nd = if direction == "bidirectional" { 2 } else { 1 };
        let w = values_in(nd * g * hs * isz, 7, 0.6);
        let r = values_in(nd * g * hs * hs, 11, 0.5);
        let b = values_in(nd * 2 * g * hs, 5, 0.3);
        let peepholes = op == "LSTM" && lbr;
        let pw = if peepholes { values_in(nd * 3 * hs, 4, 0.8) } else { vec![] };
        let xt: Vec<Vec<Vec<f32>>> = (0..t)
            .map(|ti| {
                (0..batch)
                    .map(|bi| (0..isz).map(|k| (((ti * 7 + bi * 3 + k * 5) % 9) as f32 - 4.0) / 3.0).collect())
                    .collect()
            })
            .collect();
        let xshape = if layout == 0 { [t, batch, isz] } else { [batch, t, isz] };
        let xdata: Vec<f32> = (0..t * batch * isz)
            .map(|i| {
                let (a, bb, k) = (i / (xshape[1] * isz), (i / isz) % xshape[1], i % isz);
                let (ti, bi) = if layout == 0 { (a, bb) } else { (bb, a) };
                xt[ti][bi][k]
            })
            .collect();
        let outs: &[&str] = if op == "LSTM" { &["y", "y_h", "y_c"] } else { &["y", "y_h"] };
        let ins: &[&str] = if peepholes { &["s", "w", "r", "b", "", "", "", "p"] } else { &["s", "w", "r", "b"] };
        let mut n = node(op, "cell", ins, outs);
        n.attribute =
            vec![int_attr("hidden_size", hs as i64), string_attr("direction", direction), int_attr("layout", layout)];
        if op == "GRU" {
            n.attribute.push(int_attr("linear_before_reset", lbr as i64));
        }
        let mut inits = vec![
            tensor("ones", &[isz], vec![1.0; isz]),
            tensor("w", &[nd, g * hs, isz], w.clone()),
            tensor("r", &[nd, g * hs, hs], r.clone()),
            tensor("b", &[nd, 2 * g * hs], b.clone()),
        ];
        if peepholes {
            inits.push(tensor("p", &[nd, 3 * hs], pw.clone()));
        }
        let mut m = model(
            22,
            vec![info("x", &xshape.map(|d| Some(d as i64)))],
            vec![node("Mul", "share", &["x", "ones"], &["s"]), n],
            inits,
            "y",
        );
        let mut decoded = ModelProto::decode(&m[..]).unwrap();
        let graph = decoded.graph.as_mut().unwrap();
        for extra in &outs[1..] {
            let mut o = graph.output[0].clone();
            o.name = Some(extra.to_string());
            graph.output.push(o);
        }
        m = decoded.encode_to_vec();
        let gr = import(&m).unwrap_or_else(|e| panic!("{op} {direction}: {e}"));
        let x = Tensor::new(xshape.to_vec(), xdata).unwrap();
        let got = run_float(&gr, std::slice::from_ref(&x)).unwrap();
        let per = |d: usize, v: &[f32], len: usize| v[d * len..(d + 1) * len].to_vec();
        let dirs: Vec<_> = (0..nd)
            .map(|d| {
                let reverse = direction == "reverse" || d == 1;
                let (wd, rd, bd) = (per(d, &w, g * hs * isz), per(d, &r, g * hs * hs), per(d, &b, 2 * g * hs));
                let pd = if peepholes { per(d, &pw, 3 * hs) } else { vec![] };
                reference((op, lbr, reverse), &xt, (&wd, &rd, &bd, &pd), hs)
            })
            .collect();
        // Y: [T, D, B, Hs] (layout 1: [B, T, D, Hs]); Y_h, Y_c: [D, B, Hs] (layout 1: [B, D, Hs]).
        let (mut y, mut yh, mut yc) = (vec![], vec![], vec![]);
        let last = |d: usize| if direction == "reverse" || d == 1 { 0 } else { t - 1 };
        if layout == 0 {
            for ti in 0..t {
                for (h, _) in &dirs {
                    y.extend(h[ti].iter().flatten());
                }
            }
            for (d, (h, c)) in dirs.iter().enumerate() {
                yh.extend(h[last(d)].iter().flatten());
                yc.extend(c[last(d)].iter().flatten());
            }
        } else {
            for bi in 0..batch {
                for ti in 0..t {
                    for (h, _) in &dirs {
                        y.extend(&h[ti][bi]);
                    }
                }
                for (d, (h, c)) in dirs.iter().enumerate() {
                    yh.extend(&h[last(d)][bi]);
                    yc.extend(&c[last(d)][bi]);
                }
            }
        }
        let what = format!("{op} lbr {lbr} {direction} layout {layout}");
        let (ys, hshape) = if layout == 0 {
            (vec![t, nd, batch, hs], vec![nd, batch, hs])
        } else {
            (vec![batch, t, nd, hs], vec![batch, nd, hs])
        };
        assert_close(&got[0], &ys, &y, &format!("{what}: Y"));
        assert_close(&got[1], &hshape, &yh, &format!("{what}: Y_h"));
        if op == "LSTM" {
            assert_close(&got[2], &hshape, &yc, &format!("{what}: Y_c"));
        }
        fixed_point_within_bound(&gr, &[x]);
    }
}

fn values_in(n: usize, step: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|i| (((i * step) % 13) as f32 - 6.0) / 6.0 * scale).collect()
}

/// torch's nn.GRU (2 layers, linear_before_reset = 1), bidirectional nn.LSTM and nn.RNN
/// (`models/sequence/make_torch.py`, both exporters): onnxruntime's output in float and fixed
/// point within the derived bound.
#[test]
fn torchs_recurrent_layers_give_onnxruntimes_output() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/sequence");
    for name in ["gru", "lstm", "rnn"] {
        let x = veil_ir::npy::read_npy(&dir.join(format!("torch_{name}_input.npy"))).unwrap();
        for export in ["", "_dynamo"] {
            let path = dir.join(format!("torch_{name}{export}.onnx"));
            let g = veil_compiler::onnx::import_file(&path, &ImportOptions::default()).unwrap();
            let want = veil_ir::npy::read_npy(&dir.join(format!("torch_{name}{export}_ort.npy"))).unwrap();
            let got = run_float(&g, std::slice::from_ref(&x)).unwrap().remove(0);
            assert_close(&got, &want.shape, &want.data, &format!("{name}{export}"));
            fixed_point_within_bound(&g, std::slice::from_ref(&x));
        }
    }
}

/// What the unrolling does not cover is refused by name.
#[test]
fn unsupported_recurrent_forms_are_refused_by_name() {
    let (isz, hs) = (2usize, 2usize);
    let try_lstm = |attrs: Vec<AttributeProto>, extra: Vec<(&str, Vec<usize>, Vec<f32>)>| {
        let mut names = vec!["s", "w", "r", "b", "", "", "", ""];
        let mut inits = vec![
            tensor("ones", &[isz], vec![1.0; isz]),
            tensor("w", &[1, 4 * hs, isz], vec![0.1; 4 * hs * isz]),
            tensor("r", &[1, 4 * hs, hs], vec![0.1; 4 * hs * hs]),
            tensor("b", &[1, 8 * hs], vec![0.0; 8 * hs]),
        ];
        for (nm, shape, data) in extra {
            let slot = match nm {
                "seq" => 4,
                "h0" => 5,
                _ => 7,
            };
            names[slot] = nm;
            inits.push(tensor(nm, &shape, data));
        }
        let mut n = node("LSTM", "lstm", &names, &["y"]);
        n.attribute = attrs;
        n.attribute.push(int_attr("hidden_size", hs as i64));
        let nodes = vec![node("Mul", "share", &["x", "ones"], &["s"]), n];
        problems(&model(22, vec![info("x", &[Some(3), Some(1), Some(isz as i64)])], nodes, inits, "y"))
    };
    let e = try_lstm(vec![AttributeProto { name: Some("clip".into()), f: Some(1.0), ..Default::default() }], vec![]);
    assert!(e.contains(r#"node "lstm" (LSTM)"#) && e.contains("clip"), "{e}");
    let mut acts = AttributeProto { name: Some("activations".into()), ..Default::default() };
    acts.r#type = Some(veil_compiler::onnx::proto::attribute_proto::AttributeType::Strings as i32);
    acts.strings = ["Sigmoid", "Relu", "Tanh"].iter().map(|s| s.as_bytes().to_vec()).collect();
    let e = try_lstm(vec![acts], vec![]);
    assert!(e.contains("activations") && e.contains("Relu"), "{e}");
    let e = try_lstm(vec![], vec![("p", vec![1, 2 * hs], vec![0.5; 2 * hs])]);
    assert!(e.contains("P has shape [1, 4], expected [1, 6]"), "{e}");
    let e = try_lstm(vec![], vec![("h0", vec![1, 1, hs], vec![0.5; hs])]);
    assert!(e.contains("initial_h"), "{e}");
    let e = try_lstm(vec![], vec![("seq", vec![1], vec![2.0])]);
    assert!(e.contains("sequence_lens"), "{e}");
    // A sequence too long to unroll, refused before anything is built.
    let mut n = node("RNN", "rnn", &["x", "w", "r"], &["y"]);
    n.attribute = vec![int_attr("hidden_size", 1)];
    let inits = vec![tensor("w", &[1, 1, 1], vec![0.5]), tensor("r", &[1, 1, 1], vec![0.5])];
    let e = problems(&model(22, vec![info("x", &[Some(1 << 20), Some(1), Some(1)])], vec![n], inits, "y"));
    assert!(e.contains(r#"node "rnn" (RNN)"#) && e.contains("longer than"), "{e}");
}
