//! The whole stack over real PC/SC: a personalised `VirtualCard` served into pcscd's vpcd
//! reader by `onecard-vpcd`, driven by `onecard-terminal` through `PcscTransport`. Loads,
//! compound (CAPP) purchases, MACs and TACs are checked against the PSAM and the host
//! security module, and every receipt must equal the one the same flow produces in-process:
//! the PC/SC path adds nothing and loses nothing.
#![allow(clippy::unwrap_used)]

mod common;

use common::{connect, pcsc_or_skip, wait_until_removed, Served};
use onecard_card::{
    personalize, CardKeys, Family, Personalization, SeededRandom, VirtualCard, VolatileStore,
};
use onecard_crypto::{Algorithm, Key16, KeySet};
use onecard_proto::files::{sfi, tx_type, JourneyStatus, MetroRecord, StationCode, TripRecord};
use onecard_proto::{CardTransport, Date, DateTime, Fen, InProcess, Time};
use onecard_sam::{Hsm, MemorySerials, Psam, PurchaseTac, SoftwareKeyStore};
use onecard_terminal::{
    CappRecord, CardSession, LoadOutcome, LoadReceipt, PurchaseOutcome, PurchaseReceipt, Resolution,
};
use onecard_vpcd::{HookError, Hooks};
use std::sync::Arc;

const ISSUER: [u8; 8] = [0x02, 0x00, 0x29, 0x00, 0xFF, 0xFF, 0xFF, 0xFF];
const SERIAL: [u8; 10] = [0x03, 0x10, 0x29, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78];
const GATE: [u8; 6] = [0x30, 0x00, 0x00, 0x00, 0x02, 0x01];
const LOADER: [u8; 6] = [0x00, 0x00, 0x02, 0x00, 0x00, 0x07];
const CARD_SEED: u64 = 0x0E_C4_2D;

fn master(algorithm: Algorithm) -> KeySet {
    let key = |tag: u8| {
        let mut k = [0u8; 16];
        for (i, b) in k.iter_mut().enumerate() {
            *b = tag.wrapping_mul(0x3B) ^ (i as u8).wrapping_mul(0x11) ^ 0xA5;
        }
        Key16::from_bytes(k)
    };
    KeySet {
        algorithm,
        load: key(1),
        purchase: key(2),
        tac: key(3),
        maintenance: Some(key(4)),
    }
}

fn keystore(algorithm: Algorithm) -> Arc<SoftwareKeyStore> {
    Arc::new(SoftwareKeyStore::new().with_issuer(ISSUER, master(algorithm)))
}

/// A freshly issued card, keys diversified from the issuer masters (Part A, decision 3).
fn issue(family: Family, algorithm: Algorithm) -> VirtualCard<VolatileStore> {
    let state = personalize(&Personalization {
        family,
        issuer: ISSUER,
        serial: SERIAL,
        start: Date::new(2025, 1, 1).unwrap(),
        expiry: Date::new(2035, 12, 31).unwrap(),
        max_balance: Fen::yuan(1000),
        rider_category: onecard_proto::files::rider::ADULT,
    })
    .unwrap();
    let factor: [u8; 8] = SERIAL[2..].try_into().unwrap();
    let keys = CardKeys::from_set(master(algorithm).derive(ISSUER, factor), 1);
    VirtualCard::new(
        keys,
        state,
        VolatileStore,
        Box::new(SeededRandom::new(CARD_SEED)),
    )
}

fn at(h: u8, m: u8) -> DateTime {
    DateTime {
        date: Date::new(2026, 11, 25).unwrap(),
        time: Time::new(h, m, 0).unwrap(),
    }
}

/// The 80DC records an entry gate writes with its zero-amount compound purchase.
fn entry_records(family: Family, when: DateTime) -> Vec<CappRecord> {
    match family {
        Family::TUnion => {
            let mut metro = MetroRecord::empty();
            metro.status = JourneyStatus::Entered;
            metro.entry_station = StationCode {
                line: 2,
                station: 11,
            };
            metro.entry_time = Some(when);
            let trip = TripRecord {
                trip_type: 0x03,
                terminal: [0x30, 0, 0, 0, 2, 1, 0, 0],
                industry: 1,
                line: 2,
                station: 11,
                operator: 0,
                amount: Fen::ZERO,
                balance_after: Fen::yuan(50),
                when,
                acquirer_city: [0x29, 0x00],
                acquirer_institution: [0; 8],
            };
            vec![
                CappRecord {
                    p1: 0x01,
                    sfi: sfi::PROCESS,
                    image: metro.to_bytes().to_vec(),
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
            image.extend_from_slice(&[0x5C; 46]);
            vec![CappRecord {
                p1: 0x02,
                sfi: sfi::MANAGEMENT_OR_COMPOUND,
                image,
            }]
        }
    }
}

/// What one ride does to a card, as the terminal saw it.
#[derive(Debug, PartialEq, Eq)]
struct Ride {
    load: LoadReceipt,
    entry: PurchaseReceipt,
    exit: PurchaseReceipt,
    balance: Fen,
    log: Vec<(u16, u8, u64)>,
}

/// Load 50 yuan, enter (CAPP, 0 yuan, records), exit (CAPP, 4 yuan), over any link; checks
/// every MAC and TAC on the way.
fn ride<T: CardTransport>(link: T, family: Family, algorithm: Algorithm) -> Ride {
    let hsm = Hsm::new(keystore(algorithm));
    let mut psam = Psam::new(GATE, keystore(algorithm), MemorySerials(1));
    let mut s = CardSession::open(link).expect("select the e-purse");
    assert_eq!(s.family.name(), family.name());
    assert_eq!(s.info.serial, SERIAL);
    assert_eq!(s.balance().unwrap(), Fen::ZERO);

    let LoadOutcome::Done(load) = s.load(&hsm, Fen::yuan(50), LOADER, at(7, 30)).unwrap() else {
        panic!("load answer lost on a healthy link")
    };
    assert!(load.tac_verified, "host rejected the load TAC");
    assert_eq!(load.balance_after, Fen::yuan(50));

    let records = entry_records(family, at(8, 0));
    let PurchaseOutcome::Done(entry) = s
        .purchase(&mut psam, Fen::ZERO, at(8, 0), Some(&records))
        .unwrap()
    else {
        panic!("entry answer lost on a healthy link")
    };
    let PurchaseOutcome::Done(exit) = s
        .purchase(&mut psam, Fen::yuan(4), at(8, 41), Some(&[]))
        .unwrap()
    else {
        panic!("exit answer lost on a healthy link")
    };
    for (what, r) in [("entry", &entry), ("exit", &exit)] {
        assert_eq!(r.tx_type, tx_type::CAPP_PURCHASE, "{what}");
        assert!(r.mac2_verified, "{what}: PSAM rejected MAC2");
        assert!(
            hsm.verify_purchase_tac(&tac_of(r)).unwrap(),
            "{what}: host rejected the TAC"
        );
    }
    assert_eq!((entry.counter, exit.counter), (0, 1));
    assert_eq!(exit.balance_before, Fen::yuan(50));
    assert_eq!(exit.balance_after, Fen::yuan(46));
    let balance = s.balance().unwrap();
    let log = s
        .read_log()
        .unwrap()
        .iter()
        .map(|r| (r.counter, r.tx_type, r.amount.get()))
        .collect();
    Ride {
        load,
        entry,
        exit,
        balance,
        log,
    }
}

fn tac_of(r: &PurchaseReceipt) -> PurchaseTac {
    r.tac_check()
}

fn load_and_ride_over_pcsc(family: Family, algorithm: Algorithm) {
    let served = Served::start(issue(family, algorithm));
    let pcsc = ride(connect(), family, algorithm);
    let (card, stats) = served.stop();
    wait_until_removed();

    assert_eq!(pcsc.balance, Fen::yuan(46));
    // Newest first; load and purchases count separately (B.4.2), stored after increment.
    assert_eq!(
        pcsc.log,
        [
            (2, tx_type::CAPP_PURCHASE, 400),
            (1, tx_type::CAPP_PURCHASE, 0),
            (1, tx_type::EP_LOAD, 5000),
        ]
    );
    let state = card.state();
    assert_eq!(state.balance, 4600);
    assert_eq!((state.online_counter, state.offline_counter), (1, 2));
    assert_eq!(stats.connections, 1);
    assert!(stats.apdus >= 10, "{stats:?}");

    // The same card and terminal in-process: byte-identical receipts (same TACs, MACs,
    // serials), so vpcd, pcscd and PcscTransport carried every APDU unchanged.
    let local = ride(InProcess(issue(family, algorithm)), family, algorithm);
    assert_eq!(pcsc, local);
}

#[test]
fn t_union_3des_load_and_compound_purchase_over_pcsc() {
    let Some(_slot) = pcsc_or_skip("t_union_3des_load_and_compound_purchase_over_pcsc") else {
        return;
    };
    load_and_ride_over_pcsc(Family::TUnion, Algorithm::Tdes);
}

#[test]
fn mohurd_sm4_load_and_compound_purchase_over_pcsc() {
    let Some(_slot) = pcsc_or_skip("mohurd_sm4_load_and_compound_purchase_over_pcsc") else {
        return;
    };
    load_and_ride_over_pcsc(Family::Mohurd, Algorithm::Sm4);
}

/// Tears the link right after the card has answered the n-th DEBIT: the card committed, the
/// answer never reaches pcscd, exactly a phone pulled away at the wrong moment.
struct TearAfterDebit;

impl Hooks for TearAfterDebit {
    fn after_apdu(&mut self, command: &[u8], _response: &[u8]) -> Result<(), HookError> {
        if command.starts_with(&[0x80, 0x54, 0x01, 0x00]) {
            return Err("phone left the field".into());
        }
        Ok(())
    }
}

#[test]
fn torn_debit_over_pcsc_is_recovered_on_next_tap() {
    let Some(_slot) = pcsc_or_skip("torn_debit_over_pcsc_is_recovered_on_next_tap") else {
        return;
    };
    let (family, algorithm) = (Family::TUnion, Algorithm::Tdes);
    let hsm = Hsm::new(keystore(algorithm));
    let mut psam = Psam::new(GATE, keystore(algorithm), MemorySerials(1));

    // First tap: load normally, then tear during the purchase's DEBIT answer.
    let mut s = CardSession::open(InProcess(issue(family, algorithm))).unwrap();
    assert!(matches!(
        s.load(&hsm, Fen::yuan(20), LOADER, at(7, 0)).unwrap(),
        LoadOutcome::Done(_)
    ));
    let card = s.into_link().0;
    let served = Served::start_with(card, TearAfterDebit);
    let mut s = CardSession::open(connect()).unwrap();
    let outcome = s
        .purchase(&mut psam, Fen::new(350), at(9, 15), None)
        .expect("a torn DEBIT is a pending purchase, not an error");
    let PurchaseOutcome::Pending(pending) = outcome else {
        panic!("the DEBIT answer should have been lost, got {outcome:?}")
    };
    drop(s);
    let (card, result) = served.stop_any();
    assert!(
        matches!(result, Err(onecard_vpcd::VpcdError::Hook(_))),
        "{result:?}"
    );
    assert_eq!(card.state().balance, 1650, "the card did commit the debit");
    wait_until_removed();

    // Next tap: the terminal resolves it from the card (B.5.2) and never debits twice.
    let served = Served::start(card);
    let mut s = CardSession::open(connect()).unwrap();
    let Resolution::Debited(receipt) = s.resolve(&pending).unwrap() else {
        panic!("the card committed, so the resolution must be Debited")
    };
    assert!(hsm.verify_purchase_tac(&tac_of(&receipt)).unwrap());
    assert_eq!(receipt.balance_after, Fen::new(1650));
    assert_eq!(s.balance().unwrap(), Fen::new(1650));
    drop(s);
    let (card, _) = served.stop();
    assert_eq!(card.state().offline_counter, 1);
    wait_until_removed();
}
