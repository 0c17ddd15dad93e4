//! # Veil IR
//!
//! The intermediate representation every part of Veil shares: the front end produces it, the
//! passes rewrite it, plans serialize it, and the interpreters here define what it means.
//!
//! - A [`Graph`] stores [`Value`]s, [`Node`]s and [`Constant`]s in [`Arena`]s addressed by
//!   small typed [`Handle`]s (`%k` for values, `@k` for constants), plus the graph inputs, the
//!   outputs and the `body`: the live nodes in execution order.
//! - Every value is SSA (one definition) and carries a static [`TensorType`] (element type and
//!   shape) and a [`Domain`] (public, client, server, or shared between the two).
//! - [`Op`] is the closed set of operations; each variant's doc states its semantics, typing
//!   rule and the protocols that can run it. [`Op::infer`] is the one place typing rules live.
//! - [`verify()`] checks every invariant and reports all violations at once.
//! - [`print`] renders the stable text form, JSON and Graphviz dot.
//! - [`eval`] holds the reference interpreters (today: float).
//! - [`stats`] is the schema of a two-party session's measured costs (`veil --stats`).

pub mod arena;
pub mod circuit;
mod edit;
pub mod eval;
pub mod files;
mod garbling;
mod graph;
pub mod he_pack;
pub mod npy;
mod op;
mod op_infer;
mod op_modes;
mod ot_extension;
pub mod plan;
pub mod print;
mod raw_dtype;
pub mod report;
pub mod ring;
pub mod schedule;
pub mod stats;
mod tensor;
mod types;
pub mod verify;

pub use arena::{Arena, Handle};
pub use garbling::Garbling;
pub use graph::{BuildError, Def, Graph, Node, NodeId, Value, ValueId};
pub use op::{
    Arity, CircaVariant, Const, Constant, FloatGrid, Op, Overflow, RoundMode, TruncMode, Window2d, check_broadcast,
    poly_scales,
};
pub use ot_extension::OtExtension;
pub use raw_dtype::RawDtype;
pub use tensor::{Tensor, strides};
pub use types::{Domain, ElemType, TensorType};
pub use verify::{VerifyError, Violation, verify};
