//! The IR's builder, verifier, domain rules, printers and float semantics on small graphs.

use veil_ir::{Def, Domain, ElemType, Graph, Op, Tensor, TensorType, Window2d, eval::run_float, print, verify};

/// x:[1,4] → dense(3) → relu → reveal.
fn small() -> Graph {
    let mut g = Graph::new("small");
    let x = g.add_input("x", TensorType::f32(vec![1, 4]));
    let w = g.add_const("w", vec![3, 4], Domain::Server, (0..12).map(|i| i as f32 - 5.0).collect());
    let b = g.add_const("b", vec![3], Domain::Server, vec![0.5, -1.0, 2.0]);
    let h = g.add_node("fc", "h", Op::Dense { weight: w, bias: Some(b) }, &[x]).unwrap();
    let r = g.add_node("act", "r", Op::Relu, &[h]).unwrap();
    let y = g.add_node("reveal", "y", Op::Reveal, &[r]).unwrap();
    g.outputs.push(y);
    g
}

#[test]
fn a_built_graph_verifies_and_runs_as_the_formula_says() {
    let g = small();
    verify(&g).unwrap();
    let x = Tensor::new(vec![1, 4], vec![1.0, 2.0, -1.0, 0.5]).unwrap();
    let y = run_float(&g, std::slice::from_ref(&x)).unwrap();
    let w: Vec<f32> = (0..12).map(|i| i as f32 - 5.0).collect();
    let b = [0.5, -1.0, 2.0];
    let want: Vec<f32> =
        (0..3).map(|n| ((0..4).map(|k| x.data[k] * w[n * 4 + k]).sum::<f32>() + b[n]).max(0.0)).collect();
    assert_eq!(y[0].data, want);
}

#[test]
fn domains_follow_the_operands_until_a_reveal() {
    let g = small();
    let dom = |name: &str| g.values.iter().find(|(_, v)| v.name == name).unwrap().1.domain;
    assert_eq!(dom("x"), Domain::Client);
    assert_eq!(dom("h"), Domain::Shared, "client input × server weight is shared");
    assert_eq!(dom("r"), Domain::Shared);
    assert_eq!(dom("y"), Domain::Client);
    use Domain::*;
    assert_eq!(Public.join(Server), Server);
    assert_eq!(Client.join(Public), Client);
    assert_eq!(Client.join(Client), Client);
    assert_eq!(Client.join(Server), Shared);
    assert_eq!(Shared.join(Client), Shared);
}

#[test]
fn the_builder_refuses_ill_typed_and_misplaced_nodes() {
    let mut g = small();
    let x = g.inputs[0];
    let err = g.add_node("bad", "z", Op::Add, &[x]).unwrap_err();
    assert!(err.reason.contains("takes 2 operand(s), got 1"), "{err}");
    let h = g.values.iter().find(|(_, v)| v.name == "h").unwrap().0;
    let err = g.add_node("sm", "s", Op::Softmax { axis: 1, coerce_2d: false }, &[h]).unwrap_err();
    assert!(err.reason.contains("runs on the client"), "{err}");
    let err = g.add_node("rs", "s", Op::Reshape { shape: vec![5] }, &[x]).unwrap_err();
    assert!(err.reason.contains("cannot reshape [1, 4] (4 elements) to [5]"), "{err}");
}

#[test]
fn the_verifier_reports_every_violation_at_once() {
    let mut g = small();
    // 1. use before definition: move "act" before "fc".
    g.body.swap(0, 1);
    // 2. a wrong output type on "reveal".
    let y = g.outputs[0];
    g.values[y].ty = TensorType::f32(vec![1, 7]);
    // 3. a graph output that was never revealed.
    let h = g.values.iter().find(|(_, v)| v.name == "h").unwrap().0;
    g.outputs.push(h);
    // 4. a duplicate value name.
    g.values[h].name = "x".into();
    // 5. a constant whose data does not fit its shape.
    let c = g.consts.iter().next().unwrap().0;
    g.consts[c].data.pop();
    let errs = verify(&g).unwrap_err().violations;
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    let has = |s: &str| text.iter().any(|t| t.contains(s));
    assert!(has("operand %1 is not defined before use"), "{text:#?}");
    assert!(has("output type is f32[1,7], the op gives f32[1,3]"), "{text:#?}");
    assert!(has("domain is shared, expected client (missing reveal?)"), "{text:#?}");
    assert!(has("name \"x\" is also used by %0"), "{text:#?}");
    assert!(has("11 values for shape [3, 4]"), "{text:#?}");
    assert_eq!(errs.len(), 6, "{text:#?}"); // the short constant also breaks node "fc"'s typing
}

#[test]
fn the_verifier_checks_definitions_and_handles() {
    let mut g = small();
    let x = g.inputs[0];
    g.values[x].def = Def::Input(3);
    g.body.push(veil_ir::NodeId::from_index(99));
    let text = verify(&g).unwrap_err().to_string();
    assert!(text.contains("input 0: value %0 is defined as Input(3)"), "{text}");
    assert!(text.contains("body: node [99] does not exist"), "{text}");
}

/// No node computes on an empty tensor: lowering, the HE packing and the pooling kernels divide
/// by its dimensions (found by the `onnx_compile` fuzz target, through a Slice the importer
/// allowed, read by a dense layer and by a max pool). An empty graph output is fine, as ONNX
/// allows.
#[test]
fn the_verifier_refuses_computation_on_empty_tensors() {
    let mut g = Graph::new("empty");
    let x = g.add_input("x", TensorType::f32(vec![1, 4]));
    let s = g.add_node("slice", "s", Op::Select { shape: vec![1, 0], indices: vec![] }, &[x]).unwrap();
    let w = g.add_const("w", vec![3, 0], Domain::Server, vec![]);
    let h = g.add_node("fc", "h", Op::Dense { weight: w, bias: None }, &[s]).unwrap();
    let y = g.add_node("reveal", "y", Op::Reveal, &[h]).unwrap();
    g.outputs.push(y);
    let text = verify(&g).unwrap_err().to_string();
    assert!(text.contains("node \"fc\" (dense): operand %1 is empty (shape [1, 0])"), "{text}");
    g.body.retain(|&n| g.nodes[n].name == "slice");
    g.outputs = vec![s];
    verify(&g).unwrap();
}

#[test]
fn window_output_size_is_the_onnx_formula() {
    // floor((H + pads − dilation·(k − 1) − 1) / stride) + 1
    let w = Window2d { kernel: [3, 2], strides: [2, 1], pads: [1, 0, 1, 1], dilations: [2, 1] };
    assert_eq!(w.output_hw([7, 5]).unwrap(), [(7 + 2 - 4 - 1) / 2 + 1, (5 + 1 - 1 - 1) + 1]);
    let too_big = Window2d { kernel: [5, 5], strides: [1, 1], pads: [0; 4], dilations: [1, 1] };
    assert!(too_big.output_hw([4, 8]).unwrap_err().contains("does not fit"));
}

#[test]
fn average_pool_divisor_with_and_without_padding() {
    let mut g = Graph::new("pool");
    let x = g.add_input("x", TensorType::f32(vec![1, 1, 2, 2]));
    let window = Window2d { kernel: [2, 2], strides: [1, 1], pads: [1, 1, 0, 0], dilations: [1, 1] };
    let a = g.add_node("a", "a", Op::AvgPool { window, count_include_pad: true }, &[x]).unwrap();
    let b = g.add_node("b", "b", Op::AvgPool { window, count_include_pad: false }, &[x]).unwrap();
    for v in [a, b] {
        let r = g.add_node(format!("r{}", v.index()), format!("r{}", v.index()), Op::Reveal, &[v]).unwrap();
        g.outputs.push(r);
    }
    verify(&g).unwrap();
    let out = run_float(&g, &[Tensor::new(vec![1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap()]).unwrap();
    // Top-left window covers only x[0,0] = 1 plus three pads.
    assert_eq!(out[0].data, vec![0.25, 0.75, 1.0, 2.5]);
    assert_eq!(out[1].data, vec![1.0, 1.5, 2.0, 2.5]);
}

#[test]
fn text_form_is_stable_and_names_everything() {
    let text = print::to_text(&small());
    let expected = "\
graph \"small\"
const @0 \"w\" server [3,4]
const @1 \"b\" server [3]
input %0 \"x\" client f32[1,4]
%1 \"h\" = dense %0 weight=@0 bias=@1 : shared f32[1,3]    # node \"fc\"
%2 \"r\" = relu %1 : shared f32[1,3]    # node \"act\"
%3 \"y\" = reveal %2 : client f32[1,3]    # node \"reveal\"
output %3
";
    assert_eq!(text, expected);
}

/// A graph input declared INT4 in the model: the text form says how its file is stored, parses
/// back to the same graph, and the verifier refuses a declaration of an input that is not there.
#[test]
fn a_raw_input_type_round_trips_through_the_text_form() {
    let mut g = small();
    g.raw_inputs.push((0, veil_ir::RawDtype::Int4));
    let text = print::to_text(&g);
    assert!(text.contains("input %0 \"x\" client f32[1,4] stored=INT4\n"), "{text}");
    let back = print::parse(&text).unwrap();
    assert_eq!(back.raw_inputs, g.raw_inputs);
    assert_eq!(print::to_text(&back), text);
    let bad = print::parse(&text.replace("stored=INT4", "stored=INT5")).unwrap_err().to_string();
    assert!(bad.contains("INT5") && bad.contains("stored element type"), "{bad}");
    assert!(verify(&g).is_ok());
    g.raw_inputs.push((1, veil_ir::RawDtype::Bfloat16));
    let err = verify(&g).unwrap_err().to_string();
    assert!(err.contains("raw_inputs names input 1 (BFLOAT16)"), "{err}");
}

#[test]
fn json_and_debug_never_contain_weight_values() {
    let g = small();
    let json = print::to_json(&g);
    let debug = format!("{:?}", g.consts);
    for secret in ["-5.0", "0.5", "-1.0", "2.0"] {
        assert!(!json.contains(secret), "JSON leaks {secret}");
        assert!(!debug.contains(secret), "Debug leaks {secret}: {debug}");
    }
    let back: Graph = serde_json::from_str(&json).unwrap();
    assert_eq!(back.consts[veil_ir::Const::from_index(0)].data, Vec::<f32>::new());
    assert_eq!(print::to_text(&back), print::to_text(&g));
}

#[test]
fn argmax_is_typed_i64() {
    let mut g = Graph::new("am");
    let x = g.add_input("x", TensorType::f32(vec![2, 3]));
    let a = g.add_node("am", "a", Op::ArgMax { axis: 1, keepdims: false, select_last_index: false }, &[x]).unwrap();
    g.outputs.push(a);
    verify(&g).unwrap();
    assert_eq!(g.values[a].ty, TensorType { elem: ElemType::I64, shape: vec![2] });
    let out = run_float(&g, &[Tensor::new(vec![2, 3], vec![1.0, 5.0, 5.0, 9.0, 0.0, -1.0]).unwrap()]).unwrap();
    assert_eq!(out[0].data, vec![1.0, 0.0]);
}

/// The float convolution against the direct sum over in-image taps, for windows whose tap
/// columns or rows may lie entirely in the padding (asymmetric pads with dilation: the
/// vectorised kernel once computed a slice start below zero; found by `onnx_compile`).
#[test]
fn convolution_equals_the_direct_sum_for_every_small_window() {
    use veil_ir::eval::kernels::{conv2d, tap};
    let (c, m) = (2, 2);
    for (h, w) in [(3, 3), (4, 2), (1, 5)] {
        for k in 1..=3 {
            for d in 1..=2 {
                for s in 1..=2 {
                    for pads in [[0, 0, 0, 0], [2, 2, 0, 0], [0, 1, 2, 0], [1, 2, 1, 2]] {
                        let win = Window2d { kernel: [k, k], strides: [s, s], pads, dilations: [d, d] };
                        let Ok([oh, ow]) = win.output_hw([h, w]) else { continue };
                        let x =
                            Tensor::new(vec![1, c, h, w], (0..c * h * w).map(|i| ((i * 7) % 5) as f32 - 2.0).collect())
                                .unwrap();
                        let wt: Vec<f32> = (0..m * c * k * k).map(|i| ((i * 3) % 7) as f32 / 2.0 - 1.5).collect();
                        let got = conv2d(&x, &wt, m, None, &win, 1);
                        let mut want = Vec::new();
                        for oc in 0..m {
                            for oy in 0..oh {
                                for ox in 0..ow {
                                    let mut acc = 0f32;
                                    for ic in 0..c {
                                        for ky in 0..k {
                                            for kx in 0..k {
                                                if let (Some(iy), Some(ix)) =
                                                    (tap(&win, 0, oy, ky, h), tap(&win, 1, ox, kx, w))
                                                {
                                                    acc += x.data[(ic * h + iy) * w + ix]
                                                        * wt[((oc * c + ic) * k + ky) * k + kx];
                                                }
                                            }
                                        }
                                    }
                                    want.push(acc);
                                }
                            }
                        }
                        assert_eq!(got.data, want, "{h}x{w}, {win:?}");
                    }
                }
            }
        }
    }
}
