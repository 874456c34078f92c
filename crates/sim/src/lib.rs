//! Whole-system fixtures and simulations: the sample issuer whose keys demos and tests use,
//! cards personalised from it, and the tap benchmark shared by `onecard bench tap` and the
//! criterion bench. The city simulation grows here.

pub mod bench;
pub mod gatebench;
pub mod sample;
