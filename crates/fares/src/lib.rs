//! Networks and fares for onecard.
//!
//! A gate decides the fare offline at tap-out, and the rider, the operator and the clearing
//! house must all get the same answer. So:
//!
//! * each city's rules are data ([`rules::CityRules`], a versioned TOML file, see
//!   `crates/fares/FORMAT.md`), never code;
//! * the network ([`network::Network`]) is turned once into all-pairs tables (distance,
//!   next hop, standard fare), so a quote ([`City::quote`]) is a few lookups and integer
//!   arithmetic on [`onecard_proto::Fen`];
//! * the card's state is small plain types ([`RiderMonth`], [`TransferState`]) a gate can
//!   store in its metro record;
//! * any other network comes in as GTFS ([`gtfs`]), whose fare tables win over formulas.

pub mod builtin;
pub mod city;
pub mod error;
pub mod gtfs;
pub mod network;
pub mod rules;
pub mod time;

pub use city::{
    BusTrip, Category, City, Item, MetroTrip, PenaltyKind, Quote, RiderMonth, Tap, TransferState,
};
pub use error::{FareError, Result};
pub use network::{AreaId, LineId, Network, StationId};
pub use rules::{CityRules, Mode};
