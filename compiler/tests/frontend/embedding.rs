//! Token ids from the client's input: a `Gather` of the server's table by them is the client's
//! one-hot rows times the table (a dense layer), and a padding mask computed from them (`Equal`,
//! `Where` of −∞) runs on the client's plaintext. Float against the lookup and the masked
//! Softmax computed directly and against onnxruntime on torch's and Hugging Face's models;
//! fixed point within the derived bound; the cases Veil cannot run refused by name.

use super::int_inputs::typed;
use super::ops::{assert_close, fixed_point_within_bound};
use super::*;

const V: usize = 5;

/// A table of `V` rows of `[3, 2]` (rank 3: the lookup reshapes its rows back).
fn table() -> Vec<f32> {
    (0..V * 6).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.25).collect()
}

fn gather_model(axis: i64, index_type: DataType) -> Vec<u8> {
    let mut g = node("Gather", "embed", &["table", "ids"], &["y"]);
    g.attribute.push(int_attr("axis", axis));
    model(21, vec![typed("ids", &[2, 3], index_type)], vec![g], vec![tensor("table", &[V, 3, 2], table())], "y")
}

#[test]
fn a_gather_of_the_servers_table_by_the_clients_ids_is_one_hot_rows_times_the_table() {
    let g = import(&gather_model(0, DataType::Int64)).unwrap();
    let text = veil_ir::print::to_text(&g);
    assert!(text.contains("one_hot %0 depth=5 : client"), "the client's own step: {text}");
    assert!(text.contains("= dense"), "{text}");
    // Negative ids count from the end, as ONNX's Gather.
    let ids = [0i64, 4, 2, -1, 3, -5];
    let x = Tensor::new(vec![2, 3], ids.iter().map(|&i| i as f32).collect()).unwrap();
    let t = table();
    let want: Vec<f32> = ids
        .iter()
        .flat_map(|&i| (0..6).map(move |k| (i.rem_euclid(V as i64) as usize, k)))
        .map(|(r, k)| t[r * 6 + k])
        .collect();
    assert_close(&run_float(&g, std::slice::from_ref(&x)).unwrap()[0], &[2, 3, 3, 2], &want, "lookup");
    fixed_point_within_bound(&g, &[x]);
}

#[test]
fn lookups_veil_cannot_run_privately_are_refused_by_name() {
    let err = problems(&gather_model(1, DataType::Int64));
    assert!(err.contains("along axis 0 (an embedding's rows), not axis 1"), "{err}");
    // Real-valued indices (a float input) are not token ids.
    let err = problems(&gather_model(0, DataType::Float));
    assert!(err.contains("must be integer-typed"), "{err}");
}

/// `ids` `[1, 4]`, `s = in · W` scores `[1, 4, 4]`; `Where(ids == 0, mask, 0)` `[1, 4]` added to
/// every row of scores (the padding positions hidden), Softmax, `· V`.
fn padding_model(mask: f32, compared: f32) -> Vec<u8> {
    let w: Vec<f32> = (0..16).map(|i| ((i * 5 % 9) as f32 - 4.0) * 0.3).collect();
    let v: Vec<f32> = (0..8).map(|i| (i as f32 - 3.5) * 0.5).collect();
    let mut cmp = tensor("zero", &[], vec![compared]);
    cmp.data_type = Some(DataType::Int64 as i32);
    cmp.int64_data = vec![compared as i64];
    cmp.float_data.clear();
    if compared.fract() != 0.0 {
        cmp = tensor("zero", &[], vec![compared]);
    }
    let mut sm = node("Softmax", "sm", &["xm"], &["s"]);
    sm.attribute.push(int_attr("axis", -1));
    model(
        21,
        vec![info("in", &[Some(1), Some(4), Some(4)]), typed("ids", &[1, 4], DataType::Int64)],
        vec![
            node("MatMul", "w", &["in", "w"], &["x"]),
            node("Equal", "pad", &["ids", "zero"], &["is_pad"]),
            node("Where", "fill", &["is_pad", "minf", "zeros"], &["m"]),
            node("Add", "mask", &["x", "m"], &["xm"]),
            sm,
            node("MatMul", "v", &["s", "v"], &["y"]),
        ],
        vec![
            tensor("w", &[4, 4], w),
            tensor("v", &[4, 2], v),
            cmp,
            scalar("minf", mask),
            tensor("zeros", &[1, 4], vec![0.0; 4]),
        ],
        "y",
    )
}

#[test]
fn a_padding_mask_from_the_clients_ids_hides_its_positions() {
    let x = Tensor::new(vec![1, 4, 4], (0..16).map(|i| ((i * 3 % 7) as f32 - 3.0) * 0.4).collect()).unwrap();
    let ids = Tensor::new(vec![1, 4], vec![7.0, 3.0, 0.0, 0.0]).unwrap();
    for mask in [f32::NEG_INFINITY, f32::MIN, -1e4] {
        let g = import(&padding_model(mask, 0.0)).unwrap();
        let text = veil_ir::print::to_text(&g);
        assert!(
            text.contains("one_hot") && text.contains(": client f32[1,4]"),
            "the comparison is the client's: {text}"
        );
        // The masked Softmax computed directly: positions 2 and 3 get weight 0.
        let w = (0..16).map(|i| ((i * 5 % 9) as f32 - 4.0) * 0.3).collect::<Vec<_>>();
        let v = (0..8).map(|i| (i as f32 - 3.5) * 0.5).collect::<Vec<_>>();
        let mut want = Vec::new();
        for r in 0..4 {
            let s: Vec<f64> =
                (0..4).map(|c| (0..4).map(|k| (x.data[r * 4 + k] * w[k * 4 + c]) as f64).sum::<f64>()).collect();
            let m = s[..2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = (0..4).map(|c| if c < 2 { (s[c] - m).exp() } else { 0.0 }).collect();
            let sum: f64 = e.iter().sum();
            want.extend((0..2).map(|o| (0..4).map(|c| e[c] / sum * v[c * 2 + o] as f64).sum::<f64>() as f32));
        }
        let inputs = [x.clone(), ids.clone()];
        assert_close(&run_float(&g, &inputs).unwrap()[0], &[1, 4, 2], &want, &format!("mask {mask}"));
        fixed_point_within_bound(&g, &inputs);
    }
    // A comparison with a fraction, or a Where choosing between computed values, is refused.
    let err = problems(&padding_model(f32::NEG_INFINITY, 0.5));
    assert!(err.contains("Equal"), "{err}");
    let mut b = ModelProto::decode(&padding_model(-1e4, 0.0)[..]).unwrap();
    let graph = b.graph.as_mut().unwrap();
    graph.node[2].input[2] = "x".into();
    let err = problems(&b.encode_to_vec());
    assert!(err.contains("two constant branches"), "{err}");
}

/// `models/attention/make_tokens.py`: nn.Embedding and a learned position embedding, a padding
/// mask `ids == 0` into nn.TransformerEncoderLayer, from both of torch's exporters: one lookup
/// and one client-side comparison each, onnxruntime's output in float.
#[test]
fn torchs_text_classifier_on_token_ids_gives_onnxruntimes_output() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/attention");
    let ids = veil_ir::npy::read_npy(&dir.join("torch_tokens_input.npy")).unwrap();
    for export in ["", "_dynamo"] {
        let g = veil_compiler::onnx::import_file(
            &dir.join(format!("torch_tokens{export}.onnx")),
            &ImportOptions::default(),
        )
        .unwrap_or_else(|e| panic!("torch_tokens{export}: {e}"));
        let hot: Vec<usize> = g
            .live_nodes()
            .filter_map(|(_, n)| match n.op {
                Op::OneHot { depth } => Some(depth),
                _ => None,
            })
            .collect();
        assert_eq!(hot, [50, 1], "torch_tokens{export}: the lookup and the comparison");
        let want = veil_ir::npy::read_npy(&dir.join(format!("torch_tokens{export}_ort.npy"))).unwrap();
        let got = run_float(&g, std::slice::from_ref(&ids)).unwrap().remove(0);
        assert_eq!(got.shape, want.shape);
        for (a, b) in got.data.iter().zip(&want.data) {
            assert!((a - b).abs() < 1e-5, "torch_tokens{export}: {a} vs onnxruntime {b}");
        }
    }
}

/// Hugging Face's BertForSequenceClassification (`models/attention/make_bert.py`: transformers'
/// own modelling code, one layer) on token ids, from both of torch's exporters: the word
/// embedding a lookup, the position and token-type embeddings constants, the dynamo export's
/// `Where(IsNaN(softmax), 0, softmax)` the Softmax; onnxruntime's output in float.
#[test]
fn hugging_faces_bert_on_token_ids_gives_onnxruntimes_output() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/attention");
    let ids = veil_ir::npy::read_npy(&dir.join("hf_bert_input.npy")).unwrap();
    for export in ["", "_dynamo"] {
        let g = veil_compiler::onnx::import_file(&dir.join(format!("hf_bert{export}.onnx")), &ImportOptions::default())
            .unwrap_or_else(|e| panic!("hf_bert{export}: {e}"));
        let count = |m: &str| g.live_nodes().filter(|(_, n)| n.op.mnemonic() == m).count();
        assert_eq!((count("one_hot"), count("exp2"), count("rsqrt")), (1, 1, 3), "hf_bert{export}");
        let want = veil_ir::npy::read_npy(&dir.join(format!("hf_bert{export}_ort.npy"))).unwrap();
        let got = run_float(&g, std::slice::from_ref(&ids)).unwrap().remove(0);
        assert_eq!(got.shape, want.shape);
        for (a, b) in got.data.iter().zip(&want.data) {
            assert!((a - b).abs() < 1e-5, "hf_bert{export}: {a} vs onnxruntime {b}");
        }
    }
}

/// The same BERT on Hugging Face's two inputs, `input_ids` and `attention_mask` (three padding
/// positions): the mask becomes a boolean (`Cast`, then `And` with constant patterns and
/// `GatherND` in the dynamo export, `GreaterOrEqual` of constants, `Flatten`, `Gather` and
/// `Expand` in the TorchScript one), all on the client's plaintext, and the `Where` of −∞ or
/// float32's lowest; onnxruntime's output in float.
#[test]
fn hugging_faces_bert_with_an_attention_mask_gives_onnxruntimes_output() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/attention");
    let inputs =
        ["hf_bert_mask_ids.npy", "hf_bert_mask_mask.npy"].map(|f| veil_ir::npy::read_npy(&dir.join(f)).unwrap());
    for export in ["", "_dynamo"] {
        let g = veil_compiler::onnx::import_file(
            &dir.join(format!("hf_bert_mask{export}.onnx")),
            &ImportOptions::default(),
        )
        .unwrap_or_else(|e| panic!("hf_bert_mask{export}: {e}"));
        // The mask's every step before the Where is the client's.
        let masked = g.live_nodes().find(|(_, n)| n.inputs.contains(&g.inputs[1])).map(|(_, n)| n.output).unwrap();
        assert_eq!(g.values[masked].domain, veil_ir::Domain::Client, "hf_bert_mask{export}");
        let want = veil_ir::npy::read_npy(&dir.join(format!("hf_bert_mask{export}_ort.npy"))).unwrap();
        let got = run_float(&g, &inputs).unwrap().remove(0);
        assert_eq!(got.shape, want.shape);
        for (a, b) in got.data.iter().zip(&want.data) {
            assert!((a - b).abs() < 1e-5, "hf_bert_mask{export}: {a} vs onnxruntime {b}");
        }
    }
}

/// Boolean logic on the client's mask against the truth tables: `Cast` to BOOL, `Not`, and
/// `And`, `Or`, `Xor` with a constant pattern and with each other, every combination.
#[test]
fn boolean_logic_on_the_clients_mask_follows_the_truth_tables() {
    let mut cast = node("Cast", "to_bool", &["m"], &["b"]);
    cast.attribute.push(int_attr("to", DataType::Bool as i64));
    let mut cast2 = node("Cast", "to_bool2", &["n"], &["c"]);
    cast2.attribute.push(int_attr("to", DataType::Bool as i64));
    // ONNX stores booleans in int32_data.
    let mut k = int64s("k", &[]);
    (k.dims, k.data_type, k.int32_data) = (vec![6], Some(DataType::Bool as i32), vec![0, 1, 0, 1, 1, 0]);
    let ops = ["And", "Or", "Xor"];
    let mut nodes = vec![cast, cast2, node("Not", "not", &["b"], &["not"])];
    let mut outs = vec!["not".to_string()];
    for op in ops {
        nodes.push(node(op, &format!("{op}k"), &["b", "k"], &[&format!("{op}_k")]));
        nodes.push(node(op, &format!("{op}c"), &["b", "c"], &[&format!("{op}_c")]));
        outs.extend([format!("{op}_k"), format!("{op}_c")]);
    }
    // One float output: the concatenation of every result, cast to FLOAT.
    let mut cat = node("Concat", "all", &outs.iter().map(String::as_str).collect::<Vec<_>>(), &["cat"]);
    cat.attribute.push(int_attr("axis", 0));
    let mut to_float = node("Cast", "to_float", &["cat"], &["y"]);
    to_float.attribute.push(int_attr("to", DataType::Float as i64));
    nodes.extend([cat, to_float]);
    let b = model(21, vec![typed("m", &[6], DataType::Int64), typed("n", &[6], DataType::Int64)], nodes, vec![k], "y");
    let g = import(&b).unwrap();
    // Every pair of (m ≠ 0, n ≠ 0) and the pattern k, with values other than 0 and 1.
    let (m, n) = ([0.0, 0.0, 3.0, 1.0, -2.0, 0.0], [0.0, 5.0, 0.0, 1.0, 0.0, -1.0]);
    let kk = [false, true, false, true, true, false];
    let (bm, bn): (Vec<bool>, Vec<bool>) =
        (m.iter().map(|&v| v != 0.0).collect(), n.iter().map(|&v| v != 0.0).collect());
    let mut want: Vec<bool> = bm.iter().map(|b| !b).collect();
    for f in [|a: bool, b: bool| a && b, |a: bool, b: bool| a || b, |a: bool, b: bool| a != b] {
        want.extend((0..6).map(|i| f(bm[i], kk[i])));
        want.extend((0..6).map(|i| f(bm[i], bn[i])));
    }
    let want: Vec<f32> = want.iter().map(|&b| f32::from(u8::from(b))).collect();
    let inputs = [Tensor::new(vec![6], m.to_vec()).unwrap(), Tensor::new(vec![6], n.to_vec()).unwrap()];
    assert_close(&run_float(&g, &inputs).unwrap()[0], &[42], &want, "truth tables");
    fixed_point_within_bound(&g, &inputs);
    // All of it is the client's: nothing shared, nothing revealed.
    assert!(g.live_nodes().all(|(_, n)| g.values[n.output].domain == veil_ir::Domain::Client));
}
