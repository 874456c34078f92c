//! The card file: atomic commits torn at every step, and damaged files refused whole.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use onecard_card::{state, CommitStep, Family, FileStore, OsRandom, StateError, VirtualCard};
use onecard_crypto::Algorithm;
use onecard_proto::Fen;
use onecard_terminal::{CardSession, PurchaseOutcome, Resolution};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

fn temp_path(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "onecard-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn file_card(path: &std::path::Path) -> VirtualCard<FileStore> {
    let keys = card_keys(Algorithm::Tdes, SERIAL);
    let state = card_state(Family::TUnion, SERIAL);
    let store = FileStore::create(path, &keys, &state).unwrap();
    VirtualCard::new(keys, state, store, Box::new(OsRandom))
}

fn reopen(path: &std::path::Path) -> VirtualCard<FileStore> {
    let (store, keys, state) = FileStore::open(path).unwrap();
    VirtualCard::new(keys, state, store, Box::new(OsRandom))
}

#[test]
fn torn_debit_at_each_commit_step_leaves_before_or_after_and_resolves() {
    for step in CommitStep::ALL {
        let path = temp_path("card.ocrd");
        let mut s = CardSession::open(link(file_card(&path))).unwrap();
        s.load(&hsm(Algorithm::Tdes), Fen::yuan(20), LOADER, at(8, 0))
            .unwrap();
        s.link().0.store_mut().tear_at = Some(step);
        let mut psam = psam(Algorithm::Tdes);
        let out = s
            .purchase(&mut psam, Fen::yuan(3), at(8, 30), Some(&[]))
            .unwrap();
        let PurchaseOutcome::Pending(p) = out else {
            panic!("{step:?}: a failed commit must leave the debit pending")
        };
        let after = step.is_after_durable_point();
        let expect = if after { Fen::yuan(17) } else { Fen::yuan(20) };
        // The running card and its file agree.
        assert_eq!(
            u64::from(s.link().0.state().balance),
            expect.get(),
            "{step:?} in memory"
        );
        drop(s);
        let card = reopen(&path);
        assert_eq!(
            u64::from(card.state().balance),
            expect.get(),
            "{step:?} on disk"
        );
        let mut s = CardSession::open(link(card)).unwrap();
        match s.resolve(&p).unwrap() {
            Resolution::Debited(r) => assert!(after && !r.mac2_verified),
            Resolution::NotDebited => assert!(!after),
            Resolution::Unresolvable { .. } => panic!("unresolvable"),
        }
        assert!(!path.with_extension("ocrd.tmp").exists());
    }
}

#[test]
fn damaged_files_are_refused_whole() {
    let path = temp_path("card.ocrd");
    drop(file_card(&path));
    let good = std::fs::read(&path).unwrap();
    assert!(state::decode(&good).is_ok());
    let mut flipped = good.clone();
    flipped[40] ^= 0x01;
    assert!(matches!(state::decode(&flipped), Err(StateError::Checksum)));
    assert!(matches!(
        state::decode(&good[..good.len() - 1]),
        Err(StateError::Damaged(_))
    ));
    assert!(matches!(
        state::decode(b"NOPE\0\x01\0\0\0\0\0\0\0\0"),
        Err(StateError::BadMagic)
    ));
    let mut v2 = good.clone();
    v2[5] = 2;
    assert!(matches!(
        state::decode(&v2),
        Err(StateError::UnsupportedVersion(2))
    ));
    // Every truncation and every single-byte corruption is refused, never half-loaded.
    for n in 0..good.len() {
        assert!(state::decode(&good[..n]).is_err());
        let mut b = good.clone();
        b[n] = b[n].wrapping_add(1);
        assert!(
            state::decode(&b).is_err(),
            "corruption at byte {n} accepted"
        );
    }
    std::fs::write(&path, &flipped).unwrap();
    assert!(FileStore::open(&path).is_err());
    assert!(
        FileStore::create(
            &path,
            &card_keys(Algorithm::Tdes, SERIAL),
            &card_state(Family::TUnion, SERIAL)
        )
        .is_err(),
        "never overwrite"
    );
}

#[test]
fn a_card_file_is_in_one_place_at_a_time() {
    let path = temp_path("card.ocrd");
    let card = file_card(&path);
    assert!(
        matches!(FileStore::open(&path), Err(StateError::Locked(_))),
        "a second owner is refused"
    );
    drop(card);
    assert!(FileStore::open(&path).is_ok(), "released with its owner");
}
