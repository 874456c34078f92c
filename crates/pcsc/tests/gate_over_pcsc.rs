//! A metro gate driving a card through pcscd and vpcd: the same gate code as in-process, over
//! a real PC/SC stack. Entry at 西直门, exit at 国贸, 4 yuan, journal records with TACs.
#![allow(clippy::unwrap_used)]

mod common;

use common::{connect, pcsc_or_skip, wait_until_removed, Served};
use onecard_card::{Family, SeededRandom, VirtualCard, VolatileStore};
use onecard_crypto::Algorithm;
use onecard_gate::setup::{gate_config, terminal_number};
use onecard_gate::{Decision, Gate, GateConfig, GateMode};
use onecard_journal::Journal;
use onecard_proto::{Fen, InProcess};
use onecard_sam::{Hsm, MemorySerials, Psam, SoftwareKeyStore};
use onecard_sim::sample::{sample_card, sample_master_keys};
use onecard_terminal::CardSession;
use std::sync::Arc;

fn gate_at(
    station: &str,
    n: u8,
    keys: &Arc<SoftwareKeyStore>,
) -> Gate<Arc<SoftwareKeyStore>, MemorySerials> {
    let base = gate_config("beijing", station, GateMode::Auto).unwrap();
    let cfg = GateConfig { ..base };
    let dir = std::env::temp_dir().join(format!(
        "onecard-pcsc-gate-{}-{station}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let psam = Psam::new(
        terminal_number(cfg.city_code, cfg.station, n),
        keys.clone(),
        MemorySerials(1),
    );
    Gate::new(cfg, psam, Journal::open(&dir).unwrap(), None).unwrap()
}

#[test]
fn gate_taps_over_pcsc() {
    let Some(_slot) = pcsc_or_skip("gate_taps_over_pcsc") else {
        return;
    };
    let keys =
        Arc::new(SoftwareKeyStore::new().with_any_issuer(sample_master_keys(Algorithm::Tdes)));
    let serial = [0x03, 0x10, 0, 0, 0, 0, 0, 0, 0x42, 0x42];
    let (k, st) = sample_card(Family::TUnion, Algorithm::Tdes, serial, Fen::yuan(1000)).unwrap();
    let card = VirtualCard::new(k, st, VolatileStore, Box::new(SeededRandom::new(9)));
    let mut s = CardSession::open(InProcess(card)).unwrap();
    let when = onecard_proto::DateTime::from_unix(1_795_560_000, 28_800).unwrap();
    s.load(
        &Hsm::new(keys.clone()),
        Fen::yuan(50),
        [0, 0, 1, 0, 0, 0x50],
        when,
    )
    .unwrap();
    let card = s.into_link().0;

    let served = Served::start(card);
    let mut g_in = gate_at("西直门", 1, &keys);
    let mut g_out = gate_at("国贸", 2, &keys);
    let t = 1_795_564_800; // 2026-11-25T08:00+08:00
    let e = g_in.tap(connect(), t).unwrap();
    assert_eq!(e.decision, Decision::Entry, "{e:?}");
    let x = g_out.tap(connect(), t + 1800).unwrap();
    assert_eq!(
        (x.decision, x.fare_fen, x.balance_after_fen),
        (Decision::Exit, 400, Some(4600)),
        "{x:?}"
    );
    assert!(x.record.as_ref().unwrap().mac2_verified);
    let (card, _) = served.stop();
    wait_until_removed();
    assert_eq!(card.state().balance, 4600);
    assert_eq!(card.state().offline_counter, 2);
}
