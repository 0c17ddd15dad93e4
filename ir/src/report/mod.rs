//! What the CLIs (`veilc`, `veil`) print for people: tables that fit the terminal
//! ([`table`]) and numbers in human units ([`units`]). The machine-readable form of every report
//! is its JSON (`--json`), never a parse of these tables.

pub mod table;
pub mod units;

pub use table::{Align, Cell, Column, Fit, Table};
