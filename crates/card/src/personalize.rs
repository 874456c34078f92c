//! Personalisation: the issuer's machine turning blank secure-element space into a card.

use crate::state::{BlockState, CardState, Family};
use onecard_proto::files::{
    AppInfo, CompoundRecord, Management, MetroRecord, BUS_RECORD_ID, PROCESS_RECORD_LEN,
};
use onecard_proto::{Date, Fen};

/// Default maximum balance: 1,000.00 yuan (Part A, decision 11).
pub const DEFAULT_MAX_BALANCE: Fen = Fen::yuan(1000);

/// What an issuer decides for one card.
pub struct Personalization {
    /// Family.
    pub family: Family,
    /// Issuer identifier (0x15 bytes 0..8).
    pub issuer: [u8; 8],
    /// Application serial, 20 BCD digits (0x15 bytes 10..20).
    pub serial: [u8; 10],
    /// First valid day.
    pub start: Date,
    /// Last valid day.
    pub expiry: Date,
    /// Maximum balance.
    pub max_balance: Fen,
    /// Rider category ([`onecard_proto::files::rider`]), written to 0x15 byte 28.
    pub rider_category: u8,
}

/// Why a card cannot be personalised as asked.
#[derive(Debug, thiserror::Error)]
pub enum PersonalizeError {
    /// The maximum balance does not fit a card field.
    #[error("maximum balance {0} fen does not fit the card's 31-bit balance")]
    MaxBalance(u64),
    /// Validity ends before it starts.
    #[error("expiry {expiry} is before start {start}")]
    Validity {
        /// Start.
        start: Date,
        /// Expiry.
        expiry: Date,
    },
    /// The serial is not 20 BCD digits.
    #[error("serial must be 20 decimal digits")]
    Serial,
}

/// A freshly issued card: empty purse, counters at zero, blank logs, files laid out for its family.
pub fn personalize(p: &Personalization) -> Result<CardState, PersonalizeError> {
    let max = u32::try_from(p.max_balance.get())
        .ok()
        .filter(|&m| u64::from(m) <= onecard_proto::money::MAX_CARD_FEN)
        .ok_or(PersonalizeError::MaxBalance(p.max_balance.get()))?;
    if p.expiry < p.start {
        return Err(PersonalizeError::Validity {
            start: p.start,
            expiry: p.expiry,
        });
    }
    if p.serial.iter().any(|b| b >> 4 > 9 || b & 15 > 9) {
        return Err(PersonalizeError::Serial);
    }
    let info = AppInfo {
        issuer: p.issuer,
        app_type: 0x02,
        app_version: 0x01,
        serial: p.serial,
        start: p.start,
        expiry: p.expiry,
        issuer_data: [p.rider_category, 0],
    };
    let management = Management {
        country: [0x00, 0x00, 0x01, 0x56],
        province: [0, 0],
        city: [p.issuer[2], p.issuer[3]],
        interop: [0x00, 0x01],
        card_kind: 0,
    };
    let mut bus = [0u8; PROCESS_RECORD_LEN];
    bus[0..2].copy_from_slice(&BUS_RECORD_ID);
    bus[2] = 0x7D;
    bus[3] = 0x01;
    bus[4] = 0x01;
    let compound = match p.family {
        Family::TUnion => Vec::new(),
        // Changsha layout: transit records 01–05 and 09 of 48 bytes, application control 0x11 of 24.
        Family::Mohurd => [1u8, 2, 3, 4, 5, 9]
            .iter()
            .map(|&id| CompoundRecord {
                id,
                payload: vec![0; 46],
            })
            .chain(std::iter::once(CompoundRecord {
                id: 0x11,
                payload: vec![0; 22],
            }))
            .collect(),
    };
    Ok(CardState {
        family: p.family,
        app_info: info.to_bytes(),
        cardholder: [0; 55],
        management: management.to_bytes(),
        compound,
        process: [MetroRecord::empty().to_bytes(), bus],
        trips: Default::default(),
        log: Default::default(),
        balance: 0,
        max_balance: max,
        online_counter: 0,
        offline_counter: 0,
        last_load: None,
        last_purchase: None,
        last_capp: None,
        block: BlockState::Active,
    })
}
