//! Fixtures: sample cards, gates at Beijing stations, temporary journals.
#![allow(dead_code, clippy::unwrap_used)]

use onecard_card::{CardStore, Family, SeededRandom, SimStore, VirtualCard, VolatileStore};
use onecard_crypto::Algorithm;
use onecard_gate::setup::{gate_config, terminal_number};
use onecard_gate::{Gate, GateConfig, GateMode};
use onecard_journal::Journal;
use onecard_proto::{Fen, InProcess};
use onecard_sam::{Hsm, MemorySerials, Psam, SoftwareKeyStore};
use onecard_sim::sample::{sample_card, sample_master_keys};
use onecard_terminal::{CardSession, LoadOutcome};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

pub type TestGate = Gate<Arc<SoftwareKeyStore>, MemorySerials>;

pub fn keys() -> Arc<SoftwareKeyStore> {
    Arc::new(
        SoftwareKeyStore::new()
            .with_any_issuer(sample_master_keys(Algorithm::Tdes))
            .with_any_issuer(sample_master_keys(Algorithm::Sm4)),
    )
}

pub fn temp_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "onecard-gate-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Beijing's fare tables are built once per test binary.
pub fn beijing(station: &str) -> GateConfig {
    static BASE: OnceLock<GateConfig> = OnceLock::new();
    let base = BASE.get_or_init(|| gate_config("beijing", "西直门", GateMode::Auto).unwrap());
    let id = base.city.station_by_name(station).unwrap();
    let net = base.city.network().unwrap();
    let st = &net.stations[usize::from(id)];
    GateConfig {
        station: id,
        station_name: st.name.clone(),
        line: st.lines[0],
        ..base.clone()
    }
}

pub fn gate_in(cfg: GateConfig, dir: &std::path::Path, gate_no: u8) -> TestGate {
    let psam = Psam::new(
        terminal_number(cfg.city_code, cfg.station, gate_no),
        keys(),
        MemorySerials(1),
    );
    Gate::new(cfg, psam, Journal::open(dir).unwrap(), None).unwrap()
}

pub fn gate(station: &str) -> (TestGate, PathBuf) {
    let dir = temp_dir();
    (gate_in(beijing(station), &dir, 1), dir)
}

pub const SERIAL: [u8; 10] = [0x03, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x34];

/// A card from the sample issuer with `yuan` loaded through the host.
pub fn card_with<S: CardStore>(
    family: Family,
    alg: Algorithm,
    serial: [u8; 10],
    fen: u64,
    store: impl FnOnce(&onecard_card::CardKeys, &onecard_card::CardState) -> S,
) -> VirtualCard<S> {
    let (k, st) = sample_card(family, alg, serial, Fen::yuan(1000)).unwrap();
    let s = store(&k, &st);
    let c = VirtualCard::new(k, st, s, Box::new(SeededRandom::new(u64::from(serial[9]))));
    if fen == 0 {
        return c;
    }
    let mut sess = CardSession::open(InProcess(c)).unwrap();
    let hsm = Hsm::new(keys());
    let when = onecard_proto::DateTime {
        date: onecard_proto::Date::new(2026, 11, 1).unwrap(),
        time: onecard_proto::Time::new(7, 0, 0).unwrap(),
    };
    let LoadOutcome::Done(_) = sess
        .load(&hsm, Fen::new(fen), [0, 0, 1, 0, 0, 0x50], when)
        .unwrap()
    else {
        panic!()
    };
    sess.into_link().0
}

pub fn card(fen: u64) -> VirtualCard<VolatileStore> {
    card_with(Family::TUnion, Algorithm::Tdes, SERIAL, fen, |_, _| {
        VolatileStore
    })
}

pub fn sim_card(family: Family, alg: Algorithm, fen: u64) -> VirtualCard<SimStore> {
    card_with(family, alg, SERIAL, fen, SimStore::new)
}

/// 2026-11-25 at hh:mm Beijing time, as Unix seconds.
pub fn at(h: i64, m: i64) -> i64 {
    1_795_564_800 - 8 * 3600 + h * 3600 + m * 60
}

/// A T-Union card of any issuer (keys diversified from the sample master keys), with its rider
/// category, `fen` on it, and `edit` applied to its fresh state.
pub fn issued(
    issuer: [u8; 8],
    serial: [u8; 10],
    category: u8,
    fen: u32,
    edit: impl FnOnce(&mut onecard_card::CardState),
) -> VirtualCard<VolatileStore> {
    let mut state = onecard_card::personalize(&onecard_card::Personalization {
        family: Family::TUnion,
        issuer,
        serial,
        start: onecard_proto::Date::new(2025, 1, 1).unwrap(),
        expiry: onecard_proto::Date::new(2030, 1, 1).unwrap(),
        max_balance: Fen::yuan(1000),
        rider_category: category,
    })
    .unwrap();
    state.balance = fen;
    edit(&mut state);
    let factor: [u8; 8] = serial[2..].try_into().unwrap();
    let k = onecard_card::CardKeys::from_set(
        sample_master_keys(Algorithm::Tdes).derive(issuer, factor),
        1,
    );
    VirtualCard::new(
        k,
        state,
        VolatileStore,
        Box::new(SeededRandom::new(u64::from(serial[9]))),
    )
}

/// Shanghai's issuer identifier (`shared/spec/epurse.md`).
pub const SHANGHAI: [u8; 8] = [0x02, 0x00, 0x29, 0x00, 0xFF, 0xFF, 0xFF, 0xFF];
