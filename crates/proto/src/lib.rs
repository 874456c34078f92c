//! The wire vocabulary of onecard: everything card, terminal and host must agree on byte for
//! byte, with no I/O. See `ARCHITECTURE.md` for where this crate sits.
//!
//! - [`apdu`]: ISO 7816-4 command and response APDUs (short, cases 1–4).
//! - [`sw`]: status words as a typed enum with the real-card meanings.
//! - [`tlv`]: BER-TLV for FCIs.
//! - [`commands`]: the e-purse command set as typed values, encoded and decoded in one place.
//! - [`files`]: card file layouts (0x15–0x1E, MoHURD compound records).
//! - [`money`], [`bcd`], [`hex`]: integer fen, BCD dates and times, hex text.
//! - [`transport`]: the trait every card link implements.

pub mod apdu;
pub mod bcd;
pub mod commands;
pub mod files;
pub mod hex;
pub mod money;
pub mod sw;
pub mod tlv;
pub mod transport;

pub use apdu::{Command, CommandRef, Response};
pub use bcd::{Date, DateTime, Time};
pub use commands::{CardCommand, Family};
pub use money::Fen;
pub use sw::StatusWord;
pub use transport::{CardTransport, InProcess, SmartCard, TransportError};
