//! The virtual e-purse card: what runs on the phone's secure element (an embedded SE or an
//! NFC-SIM), byte for byte like the PBOC e-purse application of a real T-Union or MoHURD card.
//!
//! - [`VirtualCard`] is the applet: it implements [`onecard_proto::SmartCard`], so it can sit
//!   behind any link (in-process, vpcd, a test harness that tears the field).
//! - [`CardState`] is what survives power loss; [`state::encode`] / [`state::decode`] are its
//!   versioned, checksummed file format.
//! - [`CardStore`] makes a commit durable atomically: [`FileStore`] (write-and-rename with
//!   fsync), [`SimStore`] (seeded tear simulations), [`VolatileStore`] (benchmarks).
//!
//! Invariants: balance ≤ maximum balance; counters only grow; balance, counter, log record and
//! cached 80DC records change together in one commit or not at all.

mod applet;
pub mod fault;
pub mod keys;
pub mod personalize;
pub mod random;
pub mod state;
pub mod store;

pub use applet::VirtualCard;
pub use fault::{Fault, FaultPlan, TearingLink};
pub use keys::CardKeys;
pub use personalize::{personalize, Personalization, PersonalizeError, DEFAULT_MAX_BALANCE};
pub use random::{OsRandom, RandomSource, SeededRandom};
pub use state::{BlockState, CardState, Family, StateError};
pub use store::{CardStore, CommitStep, FileStore, SimStore, StoreError, VolatileStore};
