//! The wire vocabulary of onecard: everything card, terminal and host must agree on byte for
//! byte, with no I/O. See `ARCHITECTURE.md` for where this crate sits.

pub mod money;

pub use money::Fen;
