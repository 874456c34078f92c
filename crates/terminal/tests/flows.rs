//! End-to-end flows: personalised virtual cards driven by the terminal code through the
//! in-process transport, for both families and both algorithms.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use onecard_card::{BlockState, Family, VolatileStore};
use onecard_crypto::Algorithm;
use onecard_proto::commands::CardCommand;
use onecard_proto::files::{
    sfi, tx_type, JourneyStatus, LogRecord, MetroRecord, StationCode, TripRecord,
};
use onecard_proto::{CardTransport, Fen, SmartCard, StatusWord};
use onecard_sam::CardRef;
use onecard_terminal::{CappRecord, CardSession, LoadOutcome, PurchaseOutcome, TerminalError};

const ALL: [(Family, Algorithm); 4] = [
    (Family::TUnion, Algorithm::Tdes),
    (Family::TUnion, Algorithm::Sm4),
    (Family::Mohurd, Algorithm::Tdes),
    (Family::Mohurd, Algorithm::Sm4),
];

fn entry_records(family: Family, when: onecard_proto::DateTime) -> Vec<CappRecord> {
    match family {
        Family::TUnion => {
            let mut m = MetroRecord::empty();
            m.status = JourneyStatus::Entered;
            m.entry_station = StationCode {
                line: 1,
                station: 7,
            };
            m.entry_time = Some(when);
            let trip = TripRecord {
                trip_type: 0x03,
                terminal: [0x30, 0, 0, 0, 1, 0x23, 0, 0],
                industry: 1,
                line: 1,
                station: 7,
                operator: 0,
                amount: Fen::ZERO,
                balance_after: Fen::yuan(50),
                when,
                acquirer_city: [0x10, 0x00],
                acquirer_institution: [0; 8],
            };
            vec![
                CappRecord {
                    p1: 0x01,
                    sfi: sfi::PROCESS,
                    image: m.to_bytes().to_vec(),
                },
                CappRecord {
                    p1: 0x00,
                    sfi: sfi::TRIPS,
                    image: trip.to_bytes().to_vec(),
                },
            ]
        }
        Family::Mohurd => {
            let mut image = vec![0x02, 46];
            image.extend_from_slice(&[0xAB; 46]);
            vec![CappRecord {
                p1: 0x02,
                sfi: sfi::MANAGEMENT_OR_COMPOUND,
                image,
            }]
        }
    }
}

#[test]
fn load_then_compound_purchases_every_family_and_algorithm() {
    for (family, alg) in ALL {
        let c = card(family, alg, |_, _| VolatileStore, 7);
        let mut s = CardSession::open(link(c)).unwrap();
        assert_eq!(s.family.name(), family.name());
        let hsm = hsm(alg);
        let LoadOutcome::Done(l) = s.load(&hsm, Fen::yuan(50), LOADER, at(7, 30)).unwrap() else {
            panic!()
        };
        assert!(l.tac_verified, "{family:?} {alg:?}");
        assert_eq!(
            (l.balance_before, l.balance_after, l.counter),
            (Fen::ZERO, Fen::yuan(50), 0)
        );
        let mut psam = psam(alg);
        // Entry: zero-amount compound purchase with records.
        let recs = entry_records(family, at(8, 0));
        let PurchaseOutcome::Done(e) = s
            .purchase(&mut psam, Fen::ZERO, at(8, 0), Some(&recs))
            .unwrap()
        else {
            panic!()
        };
        assert!(e.mac2_verified);
        assert_eq!((e.counter, e.tx_type), (0, tx_type::CAPP_PURCHASE));
        // Exit: 4 yuan.
        let PurchaseOutcome::Done(x) = s
            .purchase(&mut psam, Fen::yuan(4), at(8, 40), Some(&[]))
            .unwrap()
        else {
            panic!()
        };
        assert!(x.mac2_verified);
        assert_eq!(
            (x.counter, x.balance_before, x.balance_after),
            (1, Fen::yuan(50), Fen::yuan(46))
        );
        assert_eq!(s.balance().unwrap(), Fen::yuan(46));
        for r in [&e, &x] {
            let ok = hsm.verify_purchase_tac(&r.tac_check()).unwrap();
            assert!(ok, "purchase TAC {family:?} {alg:?}");
        }
        // A plain (non-compound) purchase too.
        let PurchaseOutcome::Done(p) = s
            .purchase(&mut psam, Fen::new(150), at(9, 0), None)
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(p.tx_type, tx_type::EP_PURCHASE);
        let log = s.read_log().unwrap();
        let kinds: Vec<(u16, u8, u64)> = log
            .iter()
            .map(|r: &LogRecord| (r.counter, r.tx_type, r.amount.get()))
            .collect();
        assert_eq!(
            kinds,
            vec![(3, 6, 150), (2, 9, 400), (1, 9, 0), (1, 2, 5000)]
        );
        let card = s.into_link().0;
        match family {
            Family::TUnion => {
                let m = MetroRecord::parse(&card.state().process[0]).unwrap();
                assert_eq!(m.status, JourneyStatus::Entered);
                assert_eq!(card.state().trips.len(), 1);
            }
            Family::Mohurd => assert_eq!(card.state().compound[1].payload, vec![0xAB; 46]),
        }
    }
}

#[test]
fn insufficient_balance_and_forged_mac_change_nothing() {
    let c = card(Family::TUnion, Algorithm::Tdes, |_, _| VolatileStore, 1);
    let mut s = CardSession::open(link(c)).unwrap();
    let mut psam = psam(Algorithm::Tdes);
    let err = s
        .purchase(&mut psam, Fen::new(1), at(8, 0), Some(&[]))
        .unwrap_err();
    assert!(matches!(err, TerminalError::InsufficientBalance));
    s.load(&hsm(Algorithm::Tdes), Fen::yuan(10), LOADER, at(8, 1))
        .unwrap();
    let before = s.link().0.state().clone();
    // Forged MAC1 on DEBIT.
    let init = onecard_proto::commands::InitData {
        key_index: 1,
        amount: Fen::yuan(5),
        terminal: GATE,
    };
    assert!(s
        .exchange(&CardCommand::InitCappPurchase(init))
        .unwrap()
        .sw
        .is_ok());
    let r = s
        .exchange(&CardCommand::Debit {
            terminal_serial: [0, 0, 0, 1],
            date: [0x20, 0x26, 0x11, 0x25],
            time: [8, 0, 0],
            mac1: [1, 2, 3, 4],
        })
        .unwrap();
    assert_eq!(r.sw, StatusWord::MacInvalid);
    // Forged MAC2 on CREDIT FOR LOAD.
    let init = onecard_proto::commands::InitData {
        key_index: 1,
        amount: Fen::yuan(5),
        terminal: LOADER,
    };
    assert!(s
        .exchange(&CardCommand::InitLoad(
            onecard_proto::commands::Purse::Ep,
            init
        ))
        .unwrap()
        .sw
        .is_ok());
    let r = s
        .exchange(&CardCommand::CreditLoad {
            date: [0x20, 0x26, 0x11, 0x25],
            time: [8, 0, 0],
            mac2: [9; 4],
        })
        .unwrap();
    assert_eq!(r.sw, StatusWord::MacInvalid);
    // DEBIT without INIT.
    let r = s
        .exchange(&CardCommand::Debit {
            terminal_serial: [0, 0, 0, 1],
            date: [0x20, 0x26, 0x11, 0x25],
            time: [8, 0, 0],
            mac1: [1, 2, 3, 4],
        })
        .unwrap();
    assert_eq!(r.sw, StatusWord::InvalidState);
    assert_eq!(&before, s.link().0.state());
}

#[test]
fn maximum_balance_is_refused_by_card_and_nothing_loads() {
    let c = card(Family::TUnion, Algorithm::Tdes, |_, _| VolatileStore, 2);
    let mut s = CardSession::open(link(c)).unwrap();
    let hsm = hsm(Algorithm::Tdes);
    s.load(&hsm, Fen::yuan(999), LOADER, at(8, 0)).unwrap();
    let err = s.load(&hsm, Fen::new(101), LOADER, at(8, 1)).unwrap_err();
    assert!(matches!(
        err,
        TerminalError::Card {
            sw: StatusWord::ConditionsNotSatisfied,
            ..
        }
    ));
    assert_eq!(s.balance().unwrap(), Fen::yuan(999));
    s.load(&hsm, Fen::new(100), LOADER, at(8, 2)).unwrap();
    assert_eq!(s.balance().unwrap(), Fen::yuan(1000));
}

#[test]
fn application_block_with_issuer_mac_and_unblock() {
    let alg = Algorithm::Tdes;
    let c = card(Family::TUnion, alg, |_, _| VolatileStore, 3);
    let mut s = CardSession::open(link(c)).unwrap();
    let hsm = hsm(alg);
    let card: CardRef = s.card_ref();
    let admin = |s: &mut CardSession<_>, header: [u8; 5]| {
        let ch = s.exchange(&CardCommand::GetChallenge(4)).unwrap().data;
        hsm.admin_mac(card, alg, ch.try_into().unwrap(), &header)
            .unwrap()
    };
    // A forged MAC is refused.
    s.exchange(&CardCommand::GetChallenge(4)).unwrap();
    assert_eq!(
        s.exchange(&CardCommand::AppBlock {
            permanent: false,
            mac: [0; 4]
        })
        .unwrap()
        .sw,
        StatusWord::SmMacWrong
    );
    let mac = admin(&mut s, [0x84, 0x1E, 0x00, 0x00, 0x04]);
    assert!(s
        .exchange(&CardCommand::AppBlock {
            permanent: false,
            mac
        })
        .unwrap()
        .sw
        .is_ok());
    assert_eq!(s.link().0.state().block, BlockState::Blocked);
    // SELECT now answers FCI + 6A81 and the terminal refuses the card.
    let raw = s
        .link()
        .transmit(
            &CardCommand::SelectByName(&onecard_proto::commands::T_UNION_AID)
                .to_command()
                .to_bytes(),
        )
        .unwrap();
    assert_eq!(&raw[raw.len() - 2..], &[0x6A, 0x81]);
    assert!(raw.len() > 2);
    let mut l = s.into_link();
    assert!(matches!(
        CardSession::open(&mut l),
        Err(TerminalError::Blocked)
    ));
    // Unblock needs the ADF selected; the FCI came back with 6A81, which still selects it.
    let t = &mut l;
    t.transmit(
        &CardCommand::SelectByName(&onecard_proto::commands::T_UNION_AID)
            .to_command()
            .to_bytes(),
    )
    .unwrap();
    let ch = t.exchange(&CardCommand::GetChallenge(4)).unwrap().data;
    let mac = hsm
        .admin_mac(
            card,
            alg,
            ch.try_into().unwrap(),
            &[0x84, 0x18, 0x00, 0x00, 0x04],
        )
        .unwrap();
    assert!(t
        .exchange(&CardCommand::AppUnblock(mac))
        .unwrap()
        .sw
        .is_ok());
    assert!(CardSession::open(&mut l).is_ok());
}

#[test]
fn readers_see_ppse_fci_and_records() {
    let mut c = card(Family::TUnion, Algorithm::Tdes, |_, _| VolatileStore, 4);
    let atr = c.power_on();
    assert_eq!(atr[0], 0x3B);
    assert_eq!(atr[1..].iter().fold(0, |a, b| a ^ b), 0, "TCK");
    let mut l = link(c);
    let r = l
        .exchange(&CardCommand::SelectByName(onecard_proto::commands::PPSE))
        .unwrap();
    assert!(r.sw.is_ok());
    let aid = onecard_proto::tlv::Tlv::find(&r.data, 0x4F)
        .unwrap()
        .unwrap();
    assert_eq!(aid, &onecard_proto::commands::T_UNION_AID[..]);
    let mut s = CardSession::open(l).unwrap();
    assert_eq!(s.read_binary(sfi::APP_INFO).unwrap().len(), 30);
    assert_eq!(
        s.read_binary(sfi::MANAGEMENT_OR_COMPOUND).unwrap()[0..4],
        [0, 0, 1, 0x56]
    );
    let r = s
        .exchange(&CardCommand::ReadBinary {
            sfi: 0x15,
            offset: 10,
            len: 10,
        })
        .unwrap();
    assert_eq!(r.data, s.info.serial);
    assert_eq!(
        s.exchange(&CardCommand::ReadBinary {
            sfi: 0x15,
            offset: 31,
            len: 1
        })
        .unwrap()
        .sw
        .to_u16(),
        0x6B00
    );
    assert_eq!(
        s.exchange(&CardCommand::ReadRecord {
            sfi: 0x18,
            selector: onecard_proto::commands::RecordSelector::One(1),
            len: 256
        })
        .unwrap()
        .sw,
        StatusWord::RecordNotFound
    );
    s.load(&hsm(Algorithm::Tdes), Fen::yuan(1), LOADER, at(8, 0))
        .unwrap();
    s.load(&hsm(Algorithm::Tdes), Fen::yuan(2), LOADER, at(8, 1))
        .unwrap();
    let all = s
        .exchange(&CardCommand::ReadRecord {
            sfi: 0x18,
            selector: onecard_proto::commands::RecordSelector::AllFrom(1),
            len: 256,
        })
        .unwrap();
    assert_eq!(all.data.len(), 46);
    assert_eq!(
        LogRecord::parse(&all.data[..23]).unwrap().amount,
        Fen::yuan(2)
    );
    // The balance variants readers such as nfcard and Metrodroid send (B.1.6).
    for (p1, expect) in [(1u8, 0u32), (2, 0), (3, 300)] {
        let r = s
            .exchange(&CardCommand::GetBalanceVariant {
                p1,
                purse: onecard_proto::commands::Purse::Ep,
            })
            .unwrap();
        assert_eq!(r.data, expect.to_be_bytes(), "P1 {p1}");
    }
    let metro = s.read_record(sfi::PROCESS, 1).unwrap().unwrap();
    assert!(MetroRecord::parse(&metro).is_ok());
}

#[test]
fn update_binary_and_record_with_the_issuers_mac() {
    let alg = Algorithm::Sm4;
    let c = card(Family::TUnion, alg, |_, _| VolatileStore, 5);
    let mut s = CardSession::open(link(c)).unwrap();
    let hsm = hsm(alg);
    let card: CardRef = s.card_ref();
    // UPDATE BINARY of the cardholder file (0x16), offset 2: a name.
    let name = b"ZHANG SAN";
    let mut header = vec![0x04, 0xD6, 0x80 | 0x16, 0x02, (name.len() + 4) as u8];
    header.extend_from_slice(name);
    let ch: [u8; 4] = s
        .exchange(&CardCommand::GetChallenge(4))
        .unwrap()
        .data
        .try_into()
        .unwrap();
    let mac = hsm.admin_mac(card, alg, ch, &header).unwrap();
    let cmd = CardCommand::UpdateBinary {
        sfi: 0x16,
        offset: 2,
        data: name,
        mac,
    };
    assert!(s.exchange(&cmd).unwrap().sw.is_ok());
    assert_eq!(&s.read_binary(0x16).unwrap()[2..11], name);
    // Replaying the same command: the challenge was used up, so it is refused.
    assert_eq!(
        s.exchange(&cmd).unwrap().sw,
        StatusWord::ReferencedDataInvalid
    );
    // A wrong MAC on a fresh challenge changes nothing.
    s.exchange(&CardCommand::GetChallenge(4)).unwrap();
    let bad = CardCommand::UpdateBinary {
        sfi: 0x16,
        offset: 2,
        data: b"LI SI",
        mac,
    };
    assert_eq!(s.exchange(&bad).unwrap().sw, StatusWord::SmMacWrong);
    assert_eq!(&s.read_binary(0x16).unwrap()[2..11], name);
    // UPDATE RECORD of the 0x1A metro record (record 1) with a MAC.
    let mut m = MetroRecord::empty();
    m.entry_station = StationCode {
        line: 9,
        station: 99,
    };
    let image = m.to_bytes();
    let mut header = vec![0x04, 0xDC, 0x01, (0x1A << 3) | 4, (image.len() + 4) as u8];
    header.extend_from_slice(&image);
    let ch: [u8; 4] = s
        .exchange(&CardCommand::GetChallenge(4))
        .unwrap()
        .data
        .try_into()
        .unwrap();
    let mac = hsm.admin_mac(card, alg, ch, &header).unwrap();
    let cmd = CardCommand::UpdateRecord {
        sfi: 0x1A,
        record: 1,
        data: &image,
        mac,
    };
    assert!(s.exchange(&cmd).unwrap().sw.is_ok());
    let back = MetroRecord::parse(&s.read_record(sfi::PROCESS, 1).unwrap().unwrap()).unwrap();
    assert_eq!(back.entry_station.station, 99);
    // The 0x18 log cannot be written this way.
    let ch: [u8; 4] = s
        .exchange(&CardCommand::GetChallenge(4))
        .unwrap()
        .data
        .try_into()
        .unwrap();
    let rec = [0u8; 23];
    let mut header = vec![0x04, 0xDC, 0x01, (0x18 << 3) | 4, 27];
    header.extend_from_slice(&rec);
    let mac = hsm.admin_mac(card, alg, ch, &header).unwrap();
    let cmd = CardCommand::UpdateRecord {
        sfi: 0x18,
        record: 1,
        data: &rec,
        mac,
    };
    assert_eq!(
        s.exchange(&cmd).unwrap().sw,
        StatusWord::SecurityNotSatisfied
    );
}

#[test]
fn mohurd_mac1_needs_the_security_code_for_compound_purchases() {
    use onecard_crypto::{purchase_session_input, CardKey};
    let alg = Algorithm::Tdes;
    let c = card(Family::Mohurd, alg, |_, _| VolatileStore, 8);
    let keys = card_keys(alg, SERIAL);
    let dpk = CardKey::new(alg, &keys.purchase);
    let mut s = CardSession::open(link(c)).unwrap();
    s.load(&hsm(alg), Fen::yuan(10), LOADER, at(7, 0)).unwrap();
    let (date, time) = ([0x20, 0x26, 0x11, 0x25], [0x08, 0x00, 0x00]);
    for (capp, expect) in [(true, StatusWord::MacInvalid), (false, StatusWord::Ok)] {
        let init = onecard_proto::commands::InitData {
            key_index: 1,
            amount: Fen::new(100),
            terminal: GATE,
        };
        let cmd = if capp {
            CardCommand::InitCappPurchase(init)
        } else {
            CardCommand::InitPurchase(onecard_proto::commands::Purse::Ep, init)
        };
        let r =
            onecard_proto::commands::InitPurchaseResponse::parse(&s.exchange(&cmd).unwrap().data)
                .unwrap();
        let serial = [0, 0, 0, 9];
        let sk = dpk.session_key(purchase_session_input(r.random, r.offline_counter, serial));
        let ty = if capp { 0x09 } else { 0x06 };
        // MAC1 without the security code.
        let mac1 = sk.mac_parts(&[&100u32.to_be_bytes(), &[ty], &GATE, &date, &time]);
        let rsp = s
            .exchange(&CardCommand::Debit {
                terminal_serial: serial,
                date,
                time,
                mac1,
            })
            .unwrap();
        assert_eq!(rsp.sw, expect, "capp {capp}");
    }
    assert_eq!(s.balance().unwrap(), Fen::new(900));
}
