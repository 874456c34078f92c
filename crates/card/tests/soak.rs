//! Bounded random APDU soak: every command the card can receive, in any state, with any length,
//! gets a status word and changes nothing. Runs in CI with a fixed seed; longer runs:
//!
//! ```text
//! ONECARD_SOAK_ITERS=10000000 ONECARD_SOAK_SEED=42 cargo test --release -p onecard-card --test soak
//! ```
//!
//! (and `fuzz/` holds a cargo-afl harness over the same entry point for coverage-guided runs).
#![allow(clippy::unwrap_used)]

use onecard_card::{
    personalize, BlockState, CardKeys, Family, Personalization, SeededRandom, VirtualCard,
    VolatileStore,
};
use onecard_crypto::{Algorithm, Key16};
use onecard_proto::commands::{
    CardCommand, InitData, Purse, RecordSelector, MOHURD_AID, PPSE, T_UNION_AID,
};
use onecard_proto::{Date, Fen, SmartCard, StatusWord};

fn card(family: Family, alg: Algorithm, seed: u64) -> VirtualCard<VolatileStore> {
    let mut state = personalize(&Personalization {
        family,
        issuer: [1, 1, 0x10, 0, 0xFF, 0xFF, 0xFF, 0xFF],
        serial: [0x03, 0x10, 0x51, 0x70, 0x07, 0x01, 0x04, 0x79, 0x13, 0x81],
        start: Date::new(2025, 1, 1).unwrap(),
        expiry: Date::new(2035, 1, 1).unwrap(),
        max_balance: Fen::yuan(1000),
        rider_category: onecard_proto::files::rider::ADULT,
    })
    .unwrap();
    state.balance = 12_345;
    if seed % 5 == 4 {
        state.block = BlockState::Blocked;
    }
    let k = |b| Key16::from_bytes([b; 16]);
    let keys = CardKeys {
        algorithm: alg,
        version: 1,
        load: k(1),
        purchase: k(2),
        tac: k(3),
        maintenance: Some(k(4)),
    };
    VirtualCard::new(
        keys,
        state,
        VolatileStore,
        Box::new(SeededRandom::new(seed)),
    )
}

/// A command that moves the card into an interesting state, or a valid-looking one with
/// random fields.
fn plausible(rng: &mut SeededRandom) -> Vec<u8> {
    let mut r4 = [0u8; 4];
    onecard_card::RandomSource::fill(rng, &mut r4);
    let init = InitData {
        key_index: if rng.below(4) == 0 { 2 } else { 1 },
        amount: Fen::new(rng.below(20_000)),
        terminal: [0x30, 0, 0, 0, 1, 2],
    };
    let image: Vec<u8> = (0..rng.below(140)).map(|i| i as u8).collect();
    let cmd = match rng.below(20) {
        0 => CardCommand::SelectByName(PPSE),
        1 => CardCommand::SelectByName(&T_UNION_AID),
        2 => CardCommand::SelectByName(&MOHURD_AID),
        3 => CardCommand::SelectByFid(0x3F00),
        4 => CardCommand::InitLoad(Purse::Ep, init),
        5 => CardCommand::InitCappPurchase(init),
        6 => CardCommand::InitPurchase(Purse::Ep, init),
        7 => CardCommand::CreditLoad {
            date: [0x20, 0x26, 0x11, 0x25],
            time: [8, 0, 0],
            mac2: r4,
        },
        8 => CardCommand::Debit {
            terminal_serial: r4,
            date: [0x20, 0x26, 0x11, 0x25],
            time: [8, 0, 0],
            mac1: r4,
        },
        9 => CardCommand::UpdateCappCache {
            p1: rng.below(3) as u8,
            sfi: [0x1A, 0x1E, 0x17][rng.below(3) as usize],
            record: &image,
        },
        10 => CardCommand::GetChallenge(if rng.below(2) == 0 { 4 } else { 8 }),
        11 => CardCommand::AppBlock {
            permanent: rng.below(2) == 0,
            mac: r4,
        },
        12 => CardCommand::AppUnblock(r4),
        13 => CardCommand::UpdateBinary {
            sfi: 0x15 + rng.below(4) as u8,
            offset: rng.below(64) as u8,
            data: &image[..image.len().min(64)],
            mac: r4,
        },
        14 => CardCommand::UpdateRecord {
            sfi: [0x1A, 0x17, 0x18][rng.below(3) as usize],
            record: 1 + rng.below(9) as u8,
            data: &image,
            mac: r4,
        },
        15 => CardCommand::GetTransactionProve {
            tx_type: [2, 6, 9, 5][rng.below(4) as usize],
            counter: rng.below(3) as u16,
        },
        16 => CardCommand::ReadRecord {
            sfi: 0x15 + rng.below(10) as u8,
            selector: RecordSelector::AllFrom(1 + rng.below(12) as u8),
            len: 1 + rng.below(256) as u16,
        },
        17 => CardCommand::ReadBinary {
            sfi: 0x15 + rng.below(10) as u8,
            offset: rng.below(70) as u8,
            len: 1 + rng.below(256) as u16,
        },
        18 => CardCommand::GetMessage,
        _ => CardCommand::ExternalAuthenticate {
            key_id: rng.below(3) as u8,
            cryptogram: [r4, r4].concat().try_into().unwrap(),
        },
    };
    cmd.to_command().to_bytes()
}

fn mutate(rng: &mut SeededRandom, mut b: Vec<u8>) -> Vec<u8> {
    match rng.below(6) {
        0 => {
            let i = rng.below(b.len() as u64) as usize;
            b[i] ^= 1 << rng.below(8);
        }
        1 => b.truncate(rng.below(b.len() as u64 + 1) as usize),
        2 => b.extend((0..rng.below(300)).map(|_| rng.below(256) as u8)),
        3 => b = (0..rng.below(270)).map(|_| rng.below(256) as u8).collect(),
        4 if b.len() > 4 => b[4] = rng.below(256) as u8,
        _ => {}
    }
    b
}

#[test]
fn random_apdus_never_panic_or_move_money() {
    let iters: u64 = std::env::var("ONECARD_SOAK_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let seed: u64 = std::env::var("ONECARD_SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261125);
    let mut rng = SeededRandom::new(seed);
    let cards = 10;
    for c in 0..cards {
        let family = if c % 2 == 0 {
            Family::TUnion
        } else {
            Family::Mohurd
        };
        let alg = if c % 4 < 2 {
            Algorithm::Tdes
        } else {
            Algorithm::Sm4
        };
        let mut card = card(family, alg, seed ^ c);
        let (balance, online, offline) = (
            card.state().balance,
            card.state().online_counter,
            card.state().offline_counter,
        );
        let mut ok = 0u64;
        for i in 0..iters / cards {
            let base = plausible(&mut rng);
            let cmd = if rng.below(3) == 0 {
                base
            } else {
                mutate(&mut rng, base)
            };
            if rng.below(500) == 0 {
                card.power_on();
            }
            let rsp = card.process_apdu(&cmd);
            assert!(
                rsp.len() >= 2 && rsp.len() <= 258,
                "iteration {i}: response of {} bytes",
                rsp.len()
            );
            let sw =
                StatusWord::from_u16(u16::from_be_bytes([rsp[rsp.len() - 2], rsp[rsp.len() - 1]]));
            assert!(
                !matches!(sw, StatusWord::Other(_))
                    || sw.to_u16() == 0x6B00
                    || sw.to_u16() == 0x6300,
                "iteration {i}: unexpected {sw}"
            );
            ok += u64::from(sw.is_ok());
            let s = card.state();
            assert_eq!(
                (s.balance, s.online_counter, s.offline_counter),
                (balance, online, offline),
                "iteration {i} (seed {seed}) moved money"
            );
        }
        assert!(
            ok > 0,
            "no command succeeded: the soak is not reaching the card's states"
        );
    }
}
