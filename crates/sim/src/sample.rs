//! The sample issuer: published, obviously-not-secret master keys for demos, tests and
//! benchmarks. Real deployments load their keys into a key store; these never belong on a
//! real card.

use onecard_card::{personalize, CardKeys, CardState, Family, Personalization, PersonalizeError};
use onecard_crypto::{Algorithm, Key16, KeySet};
use onecard_proto::{Date, Fen};

/// Sample issuer id (Beijing-like: issuer 0101, city 1000).
pub const SAMPLE_ISSUER: [u8; 8] = [0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF];

/// Sample master keys: each key is 16 copies of a byte that names its usage, so nobody can
/// mistake them for secrets.
pub fn sample_master_keys(algorithm: Algorithm) -> KeySet {
    let k = |b: u8| Key16::from_bytes([b; 16]);
    KeySet {
        algorithm,
        load: k(0x11),
        purchase: k(0x22),
        tac: k(0x33),
        maintenance: Some(k(0x44)),
    }
}

/// A card personalised from the sample issuer: its keys and its fresh state.
pub fn sample_card(
    family: Family,
    algorithm: Algorithm,
    serial: [u8; 10],
    max_balance: Fen,
) -> Result<(CardKeys, CardState), PersonalizeError> {
    let state = personalize(&Personalization {
        family,
        issuer: SAMPLE_ISSUER,
        serial,
        start: Date {
            year: 2025,
            month: 1,
            day: 1,
        },
        expiry: Date {
            year: 2035,
            month: 12,
            day: 31,
        },
        max_balance,
        rider_category: onecard_proto::files::rider::ADULT,
    })?;
    let mut factor = [0u8; 8];
    factor.copy_from_slice(&serial[2..]);
    let keys = CardKeys::from_set(
        sample_master_keys(algorithm).derive(SAMPLE_ISSUER, factor),
        1,
    );
    Ok((keys, state))
}
