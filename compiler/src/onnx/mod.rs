//! The ONNX front end: decodes a model and lowers it to a verified float [`veil_ir::Graph`].
//!
//! Supported: default-domain operator sets 9 to 28 (the newest `onnx` 1.23 defines; what changed
//! in each operator version and how Veil handles it is in `docs/decisions.md`, "Front end").
//! Weights may be stored in external files beside the model ([`external`]). Every node that
//! cannot be lowered is reported in one [`ImportError::Nodes`], with its name, op type and domain.

mod attrs;
mod consts;
mod error;
mod external;
mod forms;
mod import;
mod ints;
mod ops;
pub mod proto;

use std::path::Path;

use prost::Message;

pub use error::{ImportError, NodeError};

/// Oldest and newest default-domain operator set Veil reads.
pub const OPSETS: std::ops::RangeInclusive<i64> = 9..=28;

/// Front-end options.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Size given to a dynamic batch dimension (dimension 0 of an input).
    pub batch: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self { batch: 1 }
    }
}

/// Reads and imports the model at `path`; external data is read from files in `path`'s folder.
pub fn import_file(path: &Path, opts: &ImportOptions) -> Result<veil_ir::Graph, ImportError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ImportError::Io { path: p.clone(), source })?;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    import_bytes_in(&bytes, &p, &stem, Some(dir), opts)
}

/// Imports a model from its bytes; `path` names it in errors, `name` becomes the graph's name.
/// A model whose weights are stored in external files is refused (see [`import_bytes_in`]).
pub fn import_bytes(bytes: &[u8], path: &str, name: &str, opts: &ImportOptions) -> Result<veil_ir::Graph, ImportError> {
    import_bytes_in(bytes, path, name, None, opts)
}

/// [`import_bytes`] for a model that lives in the folder `dir`, where its external data files
/// are (`None`: refuse external data).
pub fn import_bytes_in(
    bytes: &[u8],
    path: &str,
    name: &str,
    dir: Option<&Path>,
    opts: &ImportOptions,
) -> Result<veil_ir::Graph, ImportError> {
    let model_err = |reason: String| ImportError::Model { path: path.to_string(), reason };
    if bytes.is_empty() {
        return Err(ImportError::Empty { path: path.to_string() });
    }
    let mut model = proto::ModelProto::decode(bytes)
        .map_err(|e| ImportError::Decode { path: path.to_string(), reason: e.to_string() })?;
    let ir_version = model.ir_version();
    let Some(graph) = model.graph.as_mut().filter(|_| ir_version > 0) else {
        return Err(ImportError::Decode {
            path: path.to_string(),
            reason: "no ir_version or graph (an empty, truncated or non-ONNX protobuf)".into(),
        });
    };
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain().is_empty() || o.domain() == "ai.onnx")
        .map(|o| o.version())
        .ok_or_else(|| model_err("the model imports no default-domain (ai.onnx) operator set".into()))?;
    if !OPSETS.contains(&opset) {
        return Err(model_err(format!(
            "operator set {opset} is not supported (Veil reads opsets {} to {}); convert the model with onnx.version_converter",
            OPSETS.start(),
            OPSETS.end()
        )));
    }
    if opts.batch == 0 {
        return Err(model_err("batch size must be at least 1".into()));
    }
    let unreadable = external::resolve(graph, dir);
    if !unreadable.is_empty() {
        let errors = unreadable
            .into_iter()
            .map(|reason| NodeError { node: String::new(), op_type: String::new(), domain: String::new(), reason })
            .collect();
        return Err(ImportError::Nodes { path: path.to_string(), errors });
    }
    forms::fuse(graph, opset);
    let gname = if name.is_empty() { graph.name().to_string() } else { name.to_string() };
    let mut imp = import::Importer::new(&gname);
    imp.run(graph, opts, opset).map_err(|errors| ImportError::Nodes { path: path.to_string(), errors })?;
    veil_ir::verify(&imp.g).map_err(|source| ImportError::Internal { path: path.to_string(), source })?;
    Ok(imp.g)
}
