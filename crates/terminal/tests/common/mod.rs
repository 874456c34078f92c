//! Shared fixtures: issuer master keys, personalised cards, PSAMs and HSMs.
#![allow(dead_code, clippy::unwrap_used)]

use onecard_card::{
    personalize, CardKeys, CardState, CardStore, Family, Personalization, SeededRandom, VirtualCard,
};
use onecard_crypto::{Algorithm, Key16, KeySet};
use onecard_proto::{Date, DateTime, Fen, InProcess, Time};
use onecard_sam::{Hsm, MemorySerials, Psam, SoftwareKeyStore};
use std::sync::Arc;

pub const ISSUER: [u8; 8] = [0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF];
pub const SERIAL: [u8; 10] = [0x03, 0x10, 0x51, 0x70, 0x07, 0x01, 0x04, 0x79, 0x13, 0x81];
pub const GATE: [u8; 6] = [0x30, 0x00, 0x00, 0x00, 0x01, 0x23];
pub const LOADER: [u8; 6] = [0x00, 0x00, 0x01, 0x00, 0x00, 0x50];

pub fn master(alg: Algorithm) -> KeySet {
    let k = |b: u8| {
        Key16::from_bytes(
            [b; 16]
                .map(|x| x ^ 0x5A)
                .iter()
                .enumerate()
                .map(|(i, v)| v ^ i as u8)
                .collect::<Vec<_>>()
                .try_into()
                .unwrap(),
        )
    };
    KeySet {
        algorithm: alg,
        load: k(1),
        purchase: k(2),
        tac: k(3),
        maintenance: Some(k(4)),
    }
}

pub fn keystore(alg: Algorithm) -> Arc<SoftwareKeyStore> {
    Arc::new(SoftwareKeyStore::new().with_issuer(ISSUER, master(alg)))
}

pub fn card_state(family: Family, serial: [u8; 10]) -> CardState {
    personalize(&Personalization {
        family,
        issuer: ISSUER,
        serial,
        start: Date::new(2025, 1, 1).unwrap(),
        expiry: Date::new(2035, 12, 31).unwrap(),
        max_balance: Fen::yuan(1000),
        rider_category: onecard_proto::files::rider::ADULT,
    })
    .unwrap()
}

pub fn card_keys(alg: Algorithm, serial: [u8; 10]) -> CardKeys {
    let factor: [u8; 8] = serial[2..].try_into().unwrap();
    CardKeys::from_set(master(alg).derive(ISSUER, factor), 1)
}

pub fn card<S: CardStore>(
    family: Family,
    alg: Algorithm,
    store: impl FnOnce(&CardKeys, &CardState) -> S,
    seed: u64,
) -> VirtualCard<S> {
    let state = card_state(family, SERIAL);
    let keys = card_keys(alg, SERIAL);
    let s = store(&keys, &state);
    VirtualCard::new(keys, state, s, Box::new(SeededRandom::new(seed)))
}

pub fn psam(alg: Algorithm) -> Psam<Arc<SoftwareKeyStore>, MemorySerials> {
    Psam::new(GATE, keystore(alg), MemorySerials(1))
}

pub fn hsm(alg: Algorithm) -> Hsm<Arc<SoftwareKeyStore>> {
    Hsm::new(keystore(alg))
}

pub fn at(h: u8, m: u8) -> DateTime {
    DateTime {
        date: Date::new(2026, 11, 25).unwrap(),
        time: Time::new(h, m, 0).unwrap(),
    }
}

pub fn link<C: onecard_proto::SmartCard>(c: C) -> InProcess<C> {
    InProcess(c)
}
