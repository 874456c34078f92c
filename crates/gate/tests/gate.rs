//! Rides on the real Beijing network through the real protocol, with the fares of the fares
//! issue, and every refusal leaving the card untouched.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use onecard_card::Family;
use onecard_crypto::Algorithm;
use onecard_gate::{Decision, Refusal};
use onecard_journal::{Journal, Kind};
use onecard_proto::files::{JourneyStatus, MetroRecord};
use onecard_proto::{Fen, InProcess};
use onecard_sam::{Hsm, PurchaseTac};

#[test]
fn entry_at_xizhimen_exit_at_guomao_costs_four_yuan() {
    let (mut g_in, _dir_in) = gate("西直门");
    let (mut g_out, _dir_out) = gate("国贸");
    let mut link = InProcess(card(5000));
    let e = g_in.tap(&mut link, at(8, 0)).unwrap();
    assert_eq!(e.decision, Decision::Entry, "{e:?}");
    assert_eq!((e.fare_fen, e.balance_after_fen), (0, Some(5000)));
    let x = g_out.tap(&mut link, at(8, 30)).unwrap();
    assert_eq!(x.decision, Decision::Exit, "{x:?}");
    assert_eq!(
        (x.fare_fen, x.balance_before_fen, x.balance_after_fen),
        (400, Some(5000), Some(4600))
    );
    assert_eq!(x.fare.as_ref().unwrap().distance_m / 100, 119);
    let card = &link.0;
    assert_eq!(card.state().balance, 4600);
    let m = MetroRecord::parse(&card.state().process[0]).unwrap();
    assert_eq!(m.status, JourneyStatus::Exited);
    assert_eq!(
        (m.monthly.year_month, m.monthly.spent, m.monthly.rides),
        (202611, Fen::new(400), 1)
    );
    // The journals: each gate wrote pending then completed; the completed records verify.
    let hsm = Hsm::new(keys());
    // Read back through the gates that own them (a journal has one owner at a time).
    for g in [&mut g_in, &mut g_out] {
        let recs: Vec<_> = g
            .journal_mut()
            .unacked(100)
            .unwrap()
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        assert_eq!(
            recs.iter().map(|r| r.kind).collect::<Vec<_>>(),
            vec![Kind::Pending, Kind::Completed]
        );
        let c = &recs[1];
        assert!(c.mac2_verified);
        assert_eq!(c.resolves.as_deref(), Some(recs[0].record_id.as_str()));
        let t = PurchaseTac {
            card: onecard_sam::CardRef {
                issuer: c.issuer,
                card_factor: c.serial[2..].try_into().unwrap(),
            },
            algorithm: c.algorithm.id(),
            key_version: c.key_version,
            amount: c.amount,
            tx_type: c.tx_type,
            terminal: c.terminal,
            terminal_serial: c.terminal_serial,
            when: onecard_proto::DateTime {
                date: c.date,
                time: c.time,
            },
            tac: c.tac.unwrap(),
        };
        assert!(hsm.verify_purchase_tac(&t).unwrap());
    }
}

#[test]
fn pingguoyuan_to_sihuidong_is_six_yuan_and_monthly_ladder_applies() {
    let (mut g_in, _d1) = gate("苹果园");
    let (mut g_out, _d2) = gate("四惠东");
    let mut link = InProcess(card(90_000));
    let mut paid = Vec::new();
    // 20 round trips of 6 yuan: the ladder's 100-yuan step is crossed on the way.
    for day in 0..20 {
        let base = at(8, 0) + day * 86_400 - 20 * 86_400;
        assert_eq!(g_in.tap(&mut link, base).unwrap().decision, Decision::Entry);
        let x = g_out.tap(&mut link, base + 3600).unwrap();
        assert_eq!(x.decision, Decision::Exit, "{x:?}");
        paid.push(x.fare_fen);
    }
    assert_eq!(paid[0], 600);
    assert_eq!(paid[16], 600);
    assert_eq!(paid[17], 480);
    // The rate is chosen from what was paid before the trip: 16 × 6 = 96 yuan → full price for
    // the 17th, 102 yuan → 20% off from the 18th.
    let spent_before = |i: usize| paid[..i].iter().sum::<u64>();
    for (i, &f) in paid.iter().enumerate() {
        let expect = if spent_before(i) >= 10_000 { 480 } else { 600 };
        assert_eq!(f, expect, "trip {i} after {} fen", spent_before(i));
    }
}

#[test]
fn insufficient_balance_is_refused_and_nothing_is_debited() {
    let (mut g_in, _d1) = gate("西直门");
    let (mut g_out, _dir_out) = gate("国贸");
    let mut link = InProcess(card(350));
    assert_eq!(
        g_in.tap(&mut link, at(8, 0)).unwrap().decision,
        Decision::Entry
    );
    let before = link.0.state().clone();
    let x = g_out.tap(&mut link, at(8, 30)).unwrap();
    assert_eq!(x.decision, Decision::Refused);
    assert_eq!(
        x.refusal,
        Some(Refusal::InsufficientBalance {
            needed_fen: 400,
            balance_fen: 350
        })
    );
    assert_eq!(&before, link.0.state());
    assert!(g_out.journal_mut().unacked(10).unwrap().is_empty());
    // Entry needs the minimum fare.
    let (mut g, _d) = gate("国贸");
    let mut poor = InProcess(card(200));
    let r = g.tap(&mut poor, at(9, 0)).unwrap();
    assert_eq!(
        r.refusal,
        Some(Refusal::InsufficientBalance {
            needed_fen: 300,
            balance_fen: 200
        })
    );
}

#[test]
fn penalties_same_station_overstay_and_missing_exit() {
    let (mut g, _d) = gate("西直门");
    // Same station after the free period.
    let mut link = InProcess(card(5000));
    g.tap(&mut link, at(8, 0)).unwrap();
    let x = g.tap(&mut link, at(8, 40)).unwrap();
    assert_eq!(x.decision, Decision::Exit);
    assert!(
        x.record
            .as_ref()
            .unwrap()
            .journey
            .as_ref()
            .unwrap()
            .penalties
            .iter()
            .any(|p| p.kind == onecard_journal::PenaltyKind::SameStation),
        "{x:?}"
    );
    // Overstay: more than four hours in the paid area costs extra.
    let (mut g2, _d2) = gate("国贸");
    let mut link = InProcess(card(5000));
    g.tap(&mut link, at(8, 0)).unwrap();
    let x = g2.tap(&mut link, at(13, 0)).unwrap();
    assert_eq!(x.decision, Decision::Exit);
    assert!(x.fare_fen > 400, "overstay adds to 4 yuan: {x:?}");
    // Missing exit: an entry, then the next day an entry gate: yesterday's exit is charged.
    let dir = temp_dir();
    let mut entry_only = gate_in(
        onecard_gate::GateConfig {
            mode: onecard_gate::GateMode::Entry,
            ..beijing("国贸")
        },
        &dir,
        2,
    );
    let mut link = InProcess(card(5000));
    g.tap(&mut link, at(8, 0)).unwrap();
    let e = entry_only.tap(&mut link, at(8, 0) + 86_400).unwrap();
    assert_eq!(e.decision, Decision::Entry, "{e:?}");
    assert!(e.fare_fen > 0, "missing exit charged: {e:?}");
    let pen = &e
        .record
        .as_ref()
        .unwrap()
        .journey
        .as_ref()
        .unwrap()
        .penalties;
    assert_eq!(pen[0].kind, onecard_journal::PenaltyKind::MissingExit);
    assert_eq!(link.0.state().balance as u64, 5000 - e.fare_fen);
}

#[test]
fn mohurd_and_sm4_cards_and_cards_from_other_cities_ride() {
    for (family, alg) in [
        (Family::Mohurd, Algorithm::Tdes),
        (Family::TUnion, Algorithm::Sm4),
        (Family::Mohurd, Algorithm::Sm4),
    ] {
        let (mut g_in, _d1) = gate("西直门");
        let (mut g_out, _d2) = gate("国贸");
        let mut link = InProcess(sim_card(family, alg, 5000));
        assert_eq!(
            g_in.tap(&mut link, at(8, 0)).unwrap().decision,
            Decision::Entry
        );
        let x = g_out.tap(&mut link, at(8, 30)).unwrap();
        assert_eq!(
            (x.decision, x.fare_fen),
            (Decision::Exit, 400),
            "{family:?} {alg:?}: {x:?}"
        );
    }
}

#[test]
fn expired_and_blocked_cards_are_refused() {
    let (mut g, _d) = gate("西直门");
    let mut link = InProcess(card(5000));
    let r = g.tap(&mut link, at(8, 0) + 10 * 366 * 86_400).unwrap();
    assert_eq!(r.refusal, Some(Refusal::Expired));
    let r = g.tap(&mut link, at(8, 0) - 3 * 366 * 86_400).unwrap();
    assert_eq!(r.refusal, Some(Refusal::NotYetValid));
}

#[test]
fn blacklisted_card_is_refused_and_blocked_on_the_card() {
    use onecard_blacklist::{Blacklist, Entry, List};
    use onecard_gate::setup::terminal_number;
    let cfg = beijing("西直门");
    let listed =
        List::from_entries(7, [Entry::new(onecard_sim::sample::SAMPLE_ISSUER, SERIAL)]).unwrap();
    let psam = onecard_sam::Psam::new(
        terminal_number(cfg.city_code, cfg.station, 1),
        keys(),
        onecard_sam::MemorySerials(1),
    );
    let mut g = onecard_gate::Gate::new(
        cfg,
        psam,
        Journal::open(temp_dir()).unwrap(),
        Some(std::sync::Arc::new(Blacklist::new(listed))),
    )
    .unwrap();
    let mut link = InProcess(card(5000));
    let r = g.tap(&mut link, at(8, 0)).unwrap();
    assert_eq!(r.refusal, Some(Refusal::Blacklisted));
    assert_eq!(
        link.0.state().block,
        onecard_card::BlockState::Blocked,
        "APPLICATION BLOCK with the issuer's MAC"
    );
    assert_eq!(link.0.state().balance, 5000);
    // Any gate now sees a blocked card, blacklist or not.
    let (mut other, _d) = gate("国贸");
    assert_eq!(
        other.tap(&mut link, at(8, 5)).unwrap().refusal,
        Some(Refusal::Blocked)
    );
    // A card that is not listed rides.
    let mut fine = InProcess(card_with(
        Family::TUnion,
        Algorithm::Tdes,
        [0x03, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x01],
        5000,
        |_, _| onecard_card::VolatileStore,
    ));
    assert_eq!(
        g.tap(&mut fine, at(8, 0)).unwrap().decision,
        Decision::Entry
    );
}

#[test]
fn a_card_issued_in_another_city_rides_at_this_citys_fares() {
    // A Shanghai-issued T-Union card, keys from its own issuer.
    let mut link = InProcess(issued(
        SHANGHAI,
        [0x03, 0x10, 0, 0, 0, 0, 0, 0, 0x77, 0x77],
        onecard_proto::files::rider::ADULT,
        2000,
        |_| {},
    ));
    let (mut g_in, _a) = gate("苹果园");
    let (mut g_out, _b) = gate("四惠东");
    assert_eq!(
        g_in.tap(&mut link, at(8, 0)).unwrap().decision,
        Decision::Entry
    );
    let x = g_out.tap(&mut link, at(9, 0)).unwrap();
    assert_eq!((x.decision, x.fare_fen), (Decision::Exit, 600), "{x:?}");
    assert_eq!(x.record.unwrap().issuer, SHANGHAI);
}

#[test]
fn a_card_from_elsewhere_without_interoperation_is_refused() {
    for (issuer, expect_ok) in [
        (SHANGHAI, false),
        (onecard_sim::sample::SAMPLE_ISSUER, true),
    ] {
        // A local-only card: interoperation flag 0000.
        let c = issued(
            issuer,
            [0x03, 0x10, 0, 0, 0, 0, 0, 0, 0x66, 0x66],
            onecard_proto::files::rider::ADULT,
            5000,
            |st| st.management[8..10].copy_from_slice(&[0, 0]),
        );
        let mut link = InProcess(c);
        let (mut g, _d) = gate("西直门");
        let r = g.tap(&mut link, at(8, 0)).unwrap();
        if expect_ok {
            assert_eq!(
                r.decision,
                Decision::Entry,
                "a local card rides at home: {r:?}"
            );
        } else {
            assert_eq!(r.refusal, Some(Refusal::NotInteroperable));
            assert_eq!(link.0.state().offline_counter, 0);
        }
    }
}

#[test]
fn an_exit_gate_charges_a_missing_entry() {
    let dir = temp_dir();
    let cfg = onecard_gate::GateConfig {
        mode: onecard_gate::GateMode::Exit,
        ..beijing("国贸")
    };
    let expected = cfg
        .city
        .charge(
            cfg.city.rules.metro.as_ref().unwrap().missing_entry,
            Some(cfg.station),
            0,
        )
        .unwrap();
    let mut exit_only = gate_in(cfg, &dir, 3);
    let mut link = InProcess(card(5000));
    let x = exit_only.tap(&mut link, at(9, 0)).unwrap();
    assert_eq!(
        (x.decision, x.fare_fen),
        (Decision::Exit, expected.get()),
        "{x:?}"
    );
    assert!(expected.get() > 0);
    let pen = &x
        .record
        .as_ref()
        .unwrap()
        .journey
        .as_ref()
        .unwrap()
        .penalties;
    assert_eq!(pen[0].kind, onecard_journal::PenaltyKind::MissingEntry);
}

#[test]
fn student_and_senior_cards_pay_their_rates() {
    use onecard_proto::files::rider;
    for (code, expect) in [
        (rider::STUDENT, 200u64),
        (rider::SENIOR, 0),
        (rider::ADULT, 400),
    ] {
        let serial = [0x03, 0x10, 0, 0, 0, 0, 0, 0, 0x55, code];
        let mut link = InProcess(issued(
            onecard_sim::sample::SAMPLE_ISSUER,
            serial,
            code,
            5000,
            |_| {},
        ));
        let (mut g_in, _a) = gate("西直门");
        let (mut g_out, _b) = gate("国贸");
        assert_eq!(
            g_in.tap(&mut link, at(8, 0)).unwrap().decision,
            Decision::Entry
        );
        let x = g_out.tap(&mut link, at(8, 30)).unwrap();
        assert_eq!(
            (x.decision, x.fare_fen),
            (Decision::Exit, expect),
            "category {code}: {x:?}"
        );
    }
}
