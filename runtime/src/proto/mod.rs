//! Two-party protocols over the transport: the message flows of PROTOCOLS.md, one file each.

pub mod circa;
pub mod gc;
pub mod matmul;
pub mod mul;
