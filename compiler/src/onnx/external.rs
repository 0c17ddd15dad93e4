//! External tensor data: weights kept beside the model (`model.onnx` + `model.onnx.data`, the
//! default of torch's dynamo exporter), read into the tensors before import.
//!
//! Contract: a location is a relative path inside the model's folder. Absolute paths, `..`
//! components and symbolic links that lead out of the folder are refused, and so is anything
//! that is not a regular file. `offset` and `length` are checked against the file's size and
//! `length` against the tensor's own size (element count × element width) before a byte is
//! allocated, so a corrupt entry cannot make the importer allocate more than the file holds.
//! Does not verify `checksum` entries (ONNX leaves them optional and unchecked), and does not
//! guard against the folder's contents changing while the model is read.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use super::proto::{GraphProto, TensorProto, tensor_proto::DataLocation, tensor_proto::DataType};

/// Bytes per element of the types Veil reads from external files.
fn element_width(dt: DataType) -> Option<u64> {
    Some(match dt {
        DataType::Float | DataType::Int32 | DataType::Uint32 => 4,
        DataType::Double | DataType::Int64 | DataType::Uint64 => 8,
        DataType::Float16 | DataType::Int16 | DataType::Uint16 => 2,
        DataType::Int8 | DataType::Uint8 | DataType::Bool => 1,
        _ => return None,
    })
}

/// Open data files, keyed by their canonical path.
struct Files {
    /// The model's folder, canonical (symbolic links resolved).
    dir: PathBuf,
    open: HashMap<PathBuf, (File, u64)>,
}

impl Files {
    /// The file `location` names, checked to stay inside the model's folder, with its size.
    fn open(&mut self, location: &str) -> Result<(&mut File, u64), String> {
        if location.is_empty() || location.contains('\0') {
            return Err(format!("location {location:?} is not a file name"));
        }
        let rel = Path::new(location);
        if let Some(c) = rel.components().find(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
            let what = match c {
                Component::ParentDir => "contains `..`",
                _ => "is absolute",
            };
            return Err(format!(
                "location {location:?} {what}; external data must be a relative path inside the model's folder"
            ));
        }
        let joined = self.dir.join(rel);
        let canonical =
            joined.canonicalize().map_err(|e| format!("cannot open {location:?} next to the model: {e}"))?;
        if !canonical.starts_with(&self.dir) {
            return Err(format!("location {location:?} leads out of the model's folder (through a symbolic link)"));
        }
        if !self.open.contains_key(&canonical) {
            let file = File::open(&canonical).map_err(|e| format!("cannot open {location:?}: {e}"))?;
            let meta = file.metadata().map_err(|e| format!("cannot read {location:?}: {e}"))?;
            if !meta.is_file() {
                return Err(format!("location {location:?} is not a regular file"));
            }
            self.open.insert(canonical.clone(), (file, meta.len()));
        }
        let (file, size) = self.open.get_mut(&canonical).expect("inserted above");
        Ok((file, *size))
    }

    /// Reads `t`'s external bytes into `raw_data` and marks it as stored inline.
    fn load(&mut self, t: &mut TensorProto) -> Result<(), String> {
        let name = t.name().to_string();
        let fail = |reason: String| format!("tensor {name:?}: {reason}");
        let mut location = None;
        let (mut offset, mut length) = (0u64, None);
        for kv in &t.external_data {
            let number = |v: &str| v.parse::<u64>().map_err(|_| fail(format!("{} {v:?} is not a number", kv.key())));
            match kv.key() {
                "location" => location = Some(kv.value().to_string()),
                "offset" => offset = number(kv.value())?,
                "length" => length = Some(number(kv.value())?),
                _ => {} // checksum, basepath: not needed to read the bytes
            }
        }
        let location = location.ok_or_else(|| fail("external data without a location".into()))?;
        let dt = DataType::try_from(t.data_type()).unwrap_or(DataType::Undefined);
        let width = element_width(dt)
            .ok_or_else(|| fail(format!("element type {} is not read from external files", dt.as_str_name())))?;
        let count = t.dims.iter().try_fold(1u64, |n, &d| u64::try_from(d).ok().and_then(|d| n.checked_mul(d)));
        let expected = count
            .and_then(|n| n.checked_mul(width))
            .ok_or_else(|| fail(format!("dimensions {:?} are negative or too large", t.dims)))?;
        let (file, size) = self.open(&location).map_err(fail)?;
        let length = length.unwrap_or(size.saturating_sub(offset));
        match offset.checked_add(length) {
            Some(end) if end <= size => {}
            _ => {
                return Err(fail(format!(
                    "offset {offset} + length {length} runs past the end of {location:?} ({size} bytes)"
                )));
            }
        }
        if length != expected {
            return Err(fail(format!(
                "{length} bytes in {location:?} for shape {:?} of {} ({expected} bytes expected)",
                t.dims,
                dt.as_str_name()
            )));
        }
        let len = usize::try_from(length).map_err(|_| fail(format!("{length} bytes do not fit in memory")))?;
        let mut buf = vec![0u8; len];
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(|e| fail(format!("cannot read {location:?}: {e}")))?;
        t.raw_data = Some(buf);
        t.external_data.clear();
        t.data_location = Some(DataLocation::Default as i32);
        Ok(())
    }
}

fn is_external(t: &TensorProto) -> bool {
    t.data_location() == DataLocation::External
}

/// Reads the external data of every initializer and `Constant` value in `graph` from files in
/// `dir` (the model's folder; `None` when the model came from memory, which refuses external
/// data). Returns one message per tensor that could not be read.
pub fn resolve(graph: &mut GraphProto, dir: Option<&Path>) -> Vec<String> {
    let mut tensors: Vec<&mut TensorProto> = graph.initializer.iter_mut().filter(|t| is_external(t)).collect();
    for node in &mut graph.node {
        for a in &mut node.attribute {
            tensors.extend(a.t.as_mut().filter(|t| is_external(t)));
        }
    }
    if tensors.is_empty() {
        return Vec::new();
    }
    let Some(dir) = dir else {
        return tensors
            .iter()
            .map(|t| {
                format!(
                    "tensor {:?} keeps its data in an external file; import the model from its file so the data can be found beside it",
                    t.name()
                )
            })
            .collect();
    };
    let dir = match dir.canonicalize() {
        Ok(d) => d,
        Err(e) => return vec![format!("cannot open the model's folder {}: {e}", dir.display())],
    };
    let mut files = Files { dir, open: HashMap::new() };
    tensors.into_iter().filter_map(|t| files.load(t).err()).collect()
}
