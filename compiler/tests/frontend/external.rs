//! External data (`model.onnx` + `model.onnx.data`): read from the model's folder, and every
//! way out of that folder or past the end of a file refused with a readable error.

use std::path::{Path, PathBuf};

use veil_compiler::onnx::import_file;
use veil_compiler::onnx::proto::StringStringEntryProto;

use super::*;

/// A fresh, empty folder for one test.
fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("veil-frontend-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A FLOAT tensor of shape `dims` whose data is external, with the given entries.
fn external(name: &str, dims: &[i64], entries: &[(&str, &str)]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        data_location: Some(1), // EXTERNAL
        external_data: entries
            .iter()
            .map(|(k, v)| StringStringEntryProto { key: Some(k.to_string()), value: Some(v.to_string()) })
            .collect(),
        ..Default::default()
    }
}

/// `y = x · w + b` over `[1, 3]`, with the given initializers, written to `dir/model.onnx`.
fn write_model(dir: &Path, w: TensorProto, b: TensorProto) -> PathBuf {
    let m = model(
        20,
        vec![info("x", &[Some(1), Some(3)])],
        vec![node("Mul", "mul", &["x", "w"], &["t"]), node("Add", "add", &["t", "b"], &["y"])],
        vec![w, b],
        "y",
    );
    let path = dir.join("model.onnx");
    std::fs::write(&path, m).unwrap();
    path
}

fn run(path: &Path) -> Vec<f32> {
    let g = import_file(path, &ImportOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    run_float(&g, &[Tensor::new(vec![1, 3], vec![1.0, 2.0, 3.0]).unwrap()]).unwrap()[0].data.clone()
}

fn refusal(path: &Path) -> String {
    match import_file(path, &ImportOptions::default()) {
        Err(e @ ImportError::Nodes { .. }) => e.to_string(),
        Err(e) => panic!("expected a refusal of the external data, got {e}"),
        Ok(_) => panic!("the model imported: its external data was read"),
    }
}

#[test]
fn weights_beside_the_model_are_read_at_their_offsets() {
    let dir = scratch("read");
    // 8 bytes of something else, then w, then b: as torch's exporter packs one file.
    let data = [vec![0xAB; 8], le_bytes(&[2.0, -1.0, 0.5]), le_bytes(&[10.0, 20.0, 30.0])].concat();
    std::fs::write(dir.join("model.onnx.data"), &data).unwrap();
    let w = external("w", &[3], &[("location", "model.onnx.data"), ("offset", "8"), ("length", "12")]);
    let b = external("b", &[3], &[("location", "./model.onnx.data"), ("offset", "20")]);
    assert_eq!(run(&write_model(&dir, w, b)), vec![12.0, 18.0, 31.5]);

    // A subfolder, and a symbolic link that stays inside the folder, are fine.
    std::fs::create_dir(dir.join("weights")).unwrap();
    std::fs::write(dir.join("weights/b.bin"), le_bytes(&[1.0, 1.0, 1.0])).unwrap();
    std::os::unix::fs::symlink(dir.join("weights/b.bin"), dir.join("alias.bin")).unwrap();
    let w = external("w", &[3], &[("location", "weights/b.bin")]);
    let b = external("b", &[3], &[("location", "alias.bin")]);
    assert_eq!(run(&write_model(&dir, w, b)), vec![2.0, 3.0, 4.0]);

    // A Constant node's value may be external too.
    let mut k = node("Constant", "k", &[], &["w"]);
    k.attribute.push(AttributeProto {
        name: Some("value".into()),
        r#type: Some(AttributeType::Tensor as i32),
        t: Some(external("kv", &[3], &[("location", "model.onnx.data"), ("offset", "8"), ("length", "12")])),
        ..Default::default()
    });
    let m =
        model(20, vec![info("x", &[Some(1), Some(3)])], vec![k, node("Mul", "mul", &["x", "w"], &["y"])], vec![], "y");
    std::fs::write(dir.join("constant.onnx"), m).unwrap();
    assert_eq!(run(&dir.join("constant.onnx")), vec![2.0, -2.0, 1.5]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn locations_that_leave_the_models_folder_are_refused() {
    // A file the model must not reach: outside its folder, valid as weights.
    let root = scratch("escape");
    let secret = root.join("secret.bin");
    std::fs::write(&secret, le_bytes(&[7.0, 7.0, 7.0])).unwrap();
    let dir = root.join("model");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("ok.bin"), le_bytes(&[0.0, 0.0, 0.0])).unwrap();
    std::os::unix::fs::symlink(&secret, dir.join("link.bin")).unwrap();
    std::os::unix::fs::symlink(&root, dir.join("sub/up")).unwrap();
    let absolute = secret.display().to_string();
    let cases = [
        (absolute.as_str(), "is absolute; external data must be a relative path inside the model's folder"),
        ("../secret.bin", "contains `..`"),
        ("sub/../../secret.bin", "contains `..`"),
        ("link.bin", "leads out of the model's folder (through a symbolic link)"),
        ("sub/up/secret.bin", "leads out of the model's folder (through a symbolic link)"),
        ("/dev/zero", "is absolute"),
    ];
    for (location, why) in cases {
        let w = external("w", &[3], &[("location", location)]);
        let b = external("b", &[3], &[("location", "ok.bin")]);
        let e = refusal(&write_model(&dir, w, b));
        assert!(e.contains(&format!(r#"tensor "w": location {location:?} {why}"#)), "{location}: {e}");
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn offsets_and_lengths_are_checked_before_anything_is_allocated() {
    let dir = scratch("sizes");
    std::fs::write(dir.join("w.bin"), le_bytes(&[1.0, 2.0, 3.0])).unwrap();
    std::fs::create_dir(dir.join("folder")).unwrap();
    let huge = (1u64 << 40).to_string();
    // (dims, external data entries, the refusal)
    type Case<'a> = (&'a [i64], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 8] = [
        // A terabyte claimed for a matching shape: refused by the file's size, not by an
        // allocation failure.
        (
            &[1 << 38],
            &[("location", "w.bin"), ("length", &huge)],
            r#"offset 0 + length 1099511627776 runs past the end"#,
        ),
        (
            &[3],
            &[("location", "w.bin"), ("offset", "8")],
            r#"4 bytes in "w.bin" for shape [3] of FLOAT (12 bytes expected)"#,
        ),
        (
            &[3],
            &[("location", "w.bin"), ("offset", "4"), ("length", "12")],
            r#"offset 4 + length 12 runs past the end of "w.bin" (12 bytes)"#,
        ),
        (
            &[3],
            &[("location", "w.bin"), ("offset", "18446744073709551615"), ("length", "2")],
            "offset 18446744073709551615 + length 2 runs past the end",
        ),
        (&[3], &[("location", "w.bin"), ("offset", "-1")], r#"offset "-1" is not a number"#),
        (&[3], &[("offset", "0")], "external data without a location"),
        (&[3], &[("location", "folder")], r#"location "folder" is not a regular file"#),
        (&[3], &[("location", "missing.bin")], r#"cannot open "missing.bin" next to the model"#),
    ];
    for (dims, entries, why) in cases {
        let w = external("w", dims, entries);
        let b = external("b", &[3], &[("location", "w.bin")]);
        let e = refusal(&write_model(&dir, w, b));
        assert!(e.contains(&format!(r#"tensor "w": {why}"#)), "{entries:?}: {e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
