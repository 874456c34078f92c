//! Puts any [`SmartCard`](onecard_proto::SmartCard) into a PC/SC reader through
//! vsmartcard's `vpcd` driver, so unmodified PC/SC software (pcsc_scan, pyscard, opensc-tool,
//! onecard's own `PcscTransport`) can talk to a virtual card.
//!
//! vpcd is a pcscd reader driver (Debian package `vsmartcard-vpcd`). It listens on
//! `127.0.0.1:35963` for slot 0 (35964 for slot 1); the virtual card is its TCP client. A
//! connected client is a card in the reader, a closed connection is a removed card.
//!
//! The protocol, as implemented by vpcd (`vpcd.c`, `ifd-vpcd.c`) and its reference card
//! `vpicc` — see [`frame`] for the table:
//! - every message both ways is a 2-byte big-endian length and a payload;
//! - a 1-byte payload from vpcd is a control code: power off / on / reset get no answer,
//!   "get ATR" is answered with the ATR (vpcd polls it to detect presence, and asks for it
//!   after every power-on or reset);
//! - a longer payload is a command APDU, always answered with exactly one response frame
//!   (vpcd blocks until it arrives and drops the card on an empty one).
//!
//! ```no_run
//! use onecard_vpcd::{serve, ServeConfig};
//! use std::sync::atomic::AtomicBool;
//! # struct Card;
//! # impl onecard_proto::SmartCard for Card {
//! #     fn power_on(&mut self) -> Vec<u8> { vec![0x3B, 0x00] }
//! #     fn power_off(&mut self) {}
//! #     fn process_apdu(&mut self, _: &[u8]) -> Vec<u8> { vec![0x90, 0x00] }
//! # }
//! let mut card = Card;
//! let stop = AtomicBool::new(false);
//! let stats = serve(&mut card, &ServeConfig::default(), &mut (), &stop)?;
//! println!("{} APDUs served", stats.apdus);
//! # Ok::<(), onecard_vpcd::VpcdError>(())
//! ```

pub mod error;
pub mod frame;
mod serve;

pub use error::{HookError, VpcdError};
pub use frame::{DEFAULT_PORT, MAX_APDU_LEN, MAX_ATR_LEN, MAX_RESPONSE_LEN};
pub use serve::{serve, Backoff, Disconnect, Event, Hooks, ServeConfig, ServeStats};
