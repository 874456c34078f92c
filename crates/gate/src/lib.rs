//! Gates and validators: offline tap-in and tap-out that never lose a yuan.
//!
//! - [`metro::Gate`]: a metro gate (entry, exit or both) or, with a [`BusRoute`], a bus
//!   validator (flat fare on boarding, or tap-on/tap-off by distance), priced offline by the
//!   fare engine, with blacklist, validity and block checks, B.5.2 tear recovery and a durable
//!   journal.
//! - [`pending`]: debits whose answer was lost, resolved at the next contact of the same card.
//! - [`record`]: journal records (the JSON clearing imports) from terminal receipts.
//! - [`sync`]: upload of the journal (pending debits carried first) and blacklist / fare-file
//!   downloads, off the tap path.

pub mod metro;
pub mod pending;
pub mod record;
pub mod setup;
pub mod sync;

pub use metro::{
    BusRoute, Decision, FareSummary, Gate, GateConfig, GateError, GateMode, Refusal, TapResult,
};
