//! Bus validators: flat fare on boarding, tap-on/tap-off distance fares, missing tap-off, and
//! the bus-to-metro transfer discount window.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use onecard_card::Family;
use onecard_crypto::Algorithm;
use onecard_fares::builtin;
use onecard_gate::setup::{bus_config, terminal_number};
use onecard_gate::{BusRoute, Decision, Gate, GateConfig};
use onecard_journal::{Journal, PenaltyKind};
use onecard_proto::files::{BusRecord, JourneyStatus};
use onecard_proto::InProcess;
use onecard_sam::{MemorySerials, Psam};
use std::sync::Arc;

fn validator(cfg: GateConfig) -> TestGate {
    let psam = Psam::new(
        terminal_number(cfg.city_code, 300, 9),
        keys(),
        MemorySerials(1),
    );
    Gate::new(cfg, psam, Journal::open(temp_dir()).unwrap(), None).unwrap()
}

fn route(stops_m: Vec<u32>) -> BusRoute {
    BusRoute {
        name: None,
        line: 300,
        stops_m,
        stop: 0,
    }
}

#[test]
fn flat_fare_on_boarding() {
    let jilin = Arc::new(builtin::city("jilin").unwrap());
    let mut v = validator(bus_config("jilin", jilin, route(vec![])));
    let mut link = InProcess(card(1000));
    let r = v.tap(&mut link, at(7, 0)).unwrap();
    assert_eq!(r.decision, Decision::Entry, "{r:?}");
    // Jilin: 1 yuan flat, 90% with the card.
    assert_eq!((r.fare_fen, r.balance_after_fen), (90, Some(910)));
    assert_eq!(
        r.record
            .as_ref()
            .unwrap()
            .journey
            .as_ref()
            .unwrap()
            .direction,
        onecard_journal::Direction::Bus
    );
}

#[test]
fn tap_on_tap_off_by_distance_and_missing_tap_off() {
    let beijing = Arc::new(builtin::city("beijing").unwrap());
    let stops = vec![0, 3000, 8000, 14_000, 21_000];
    let mut v = validator(bus_config("beijing", beijing.clone(), route(stops.clone())));
    let mut link = InProcess(card(1000));
    let on = v.tap(&mut link, at(7, 0)).unwrap();
    assert_eq!((on.decision, on.fare_fen), (Decision::Entry, 0), "{on:?}");
    let held = BusRecord::parse(&link.0.state().process[1]).unwrap();
    assert_eq!(held.status, JourneyStatus::Entered);
    v.set_stop(3);
    let off = v.tap(&mut link, at(7, 40)).unwrap();
    // 14 km: 2 yuan to 10 km + 1 yuan per further 5 km, half price with the card.
    assert_eq!(
        (off.decision, off.fare_fen),
        (Decision::Entry, 150),
        "{off:?}"
    );
    let done = BusRecord::parse(&link.0.state().process[1]).unwrap();
    assert_eq!(
        (done.status, done.distance_hm, done.amount.get()),
        (JourneyStatus::Exited, 140, 150)
    );
    // Missing tap-off: board, then board again hours later: the held fare is charged.
    v.set_stop(0);
    v.tap(&mut link, at(9, 0)).unwrap();
    let again = v.tap(&mut link, at(18, 0)).unwrap();
    assert!(again.fare_fen > 0, "{again:?}");
    let pen = &again
        .record
        .as_ref()
        .unwrap()
        .journey
        .as_ref()
        .unwrap()
        .penalties;
    assert_eq!(pen[0].kind, PenaltyKind::MissingExit);
    for family in [Family::Mohurd, Family::TUnion] {
        let mut v = validator(bus_config("beijing", beijing.clone(), route(stops.clone())));
        let mut link = InProcess(sim_card(family, Algorithm::Tdes, 1000));
        v.tap(&mut link, at(7, 0)).unwrap();
        v.set_stop(4);
        let off = v.tap(&mut link, at(7, 50)).unwrap();
        // 21 km: 2 + 1 + 1 + 1 (per started 5 km beyond 10) = 5 yuan, card half: 2.50.
        assert_eq!(off.fare_fen, 250, "{family:?}: {off:?}");
    }
}

#[test]
fn bus_to_metro_transfer_discount_inside_the_window_only() {
    // Beijing's network with a Shanghai-style bus-to-metro discount, as a city file would add it.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/cities/beijing.toml")).unwrap()
        + "\n[[transfer_discount]]\nfrom_mode = \"bus\"\nto_mode = \"metro\"\nwindow_min = 120\noff_fen = 100\n";
    let city = Arc::new(builtin::city_from_toml(&text).unwrap());
    let metro = |station: &str| {
        let id = city.station_by_name(station).unwrap();
        let st = &city.network().unwrap().stations[usize::from(id)];
        GateConfig {
            city_id: "beijing".into(),
            city: city.clone(),
            city_code: [0x10, 0x00],
            station: id,
            station_name: st.name.clone(),
            line: st.lines[0],
            mode: onecard_gate::GateMode::Auto,
            bus: None,
        }
    };
    let mut v = validator(bus_config("beijing", city.clone(), route(vec![0, 5000])));
    let dir_in = temp_dir();
    let dir_out = temp_dir();
    let mut g_in = gate_in(metro("西直门"), &dir_in, 1);
    let mut g_out = gate_in(metro("国贸"), &dir_out, 2);
    let ride = |link: &mut InProcess<_>,
                v: &mut TestGate,
                g_in: &mut TestGate,
                g_out: &mut TestGate,
                t: i64,
                gap_min: i64| {
        v.set_stop(0);
        v.tap(&mut *link, t).unwrap();
        v.set_stop(1);
        v.tap(&mut *link, t + 600).unwrap();
        g_in.tap(&mut *link, t + 600 + gap_min * 60).unwrap();
        g_out
            .tap(&mut *link, t + 600 + gap_min * 60 + 1800)
            .unwrap()
            .fare_fen
    };
    let mut link = InProcess(card(5000));
    // Bus exit at t+10 min, metro exit 30 min after entering: inside 120 min.
    assert_eq!(
        ride(&mut link, &mut v, &mut g_in, &mut g_out, at(7, 0), 5),
        300
    );
    // The same ride with a long gap: full 4 yuan.
    assert_eq!(
        ride(&mut link, &mut v, &mut g_in, &mut g_out, at(12, 0), 150),
        400
    );
}
