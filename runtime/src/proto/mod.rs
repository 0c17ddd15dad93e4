//! Two-party protocols over the transport: the message flows of docs/protocols.md, one file each.

pub mod circa;
pub mod gc;
pub mod matmul;
pub mod mul;
pub mod poly;
