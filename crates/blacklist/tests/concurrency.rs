//! Readers hammer the blacklist while deltas are published; every answer must come from one
//! version.
//!
//! Version `v` of the list is `S ∪ {M_v} ∪ C_v`: a stable set, one marker per version and a
//! churn set per version, interleaved in the same key range so every delta rebuilds segments
//! that stable entries live in. Delta `v → v+1` removes `M_v` and `C_v` and adds `M_{v+1}` and
//! `C_{v+1}`. A reader that ever saw a list holding both markers, neither marker, a marker of
//! another version, a mix of churn sets, or a stable entry missing, saw a torn update. The
//! checks were confirmed to fail by publishing an intermediate list (removals applied,
//! additions not) in `Blacklist::apply`.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use onecard_blacklist::synth::Rng;
use onecard_blacklist::{Blacklist, Delta, Entry, List};

const VERSIONS: u64 = 120;
const CHURN: u64 = 40;
const STABLE: u64 = 20_000;

/// Entry number `i` of a dense range, so markers and churn sit among stable entries.
fn card(i: u64) -> Entry {
    let mut serial = [0u8; 10];
    let mut v = 100_000_000 + i;
    for b in serial.iter_mut().rev() {
        let two = (v % 100) as u8;
        v /= 100;
        *b = (two / 10) << 4 | (two % 10);
    }
    Entry::new([0x01, 0x00, 0x29, 0x00, 0xFF, 0xFF, 0xFF, 0xFF], serial)
}

/// Stable entries are 1,000 apart; markers and churn take the slots in between.
fn stable(i: u64) -> Entry {
    card(i * 1_000)
}

fn marker(v: u64) -> Entry {
    card((v * 151 % STABLE) * 1_000 + 1 + v % 7)
}

fn churn(v: u64, j: u64) -> Entry {
    card(((v * 7_919 + j * 487) % STABLE) * 1_000 + 100 + (v % 20) * 40 + j % 40)
}

fn version_set(v: u64) -> Vec<Entry> {
    let mut s: Vec<Entry> = (0..STABLE).map(stable).collect();
    s.push(marker(v));
    s.extend((0..CHURN).map(|j| churn(v, j)));
    s
}

/// Checks a whole list is exactly version `v`'s content, on a sample.
fn check_list(l: &List, rng: &mut Rng) {
    let v = l.version();
    assert_eq!(l.len() as u64, STABLE + 1 + CHURN, "v{v} size");
    assert!(l.contains(&marker(v)), "v{v} lacks its marker");
    if v > 0 {
        assert!(!l.contains(&marker(v - 1)), "v{v} still has the old marker");
        assert!(
            !l.contains(&churn(v - 1, rng.below(CHURN))),
            "v{v} has old churn"
        );
    }
    assert!(!l.contains(&marker(v + 1)), "v{v} has the next marker");
    assert!(l.contains(&churn(v, rng.below(CHURN))), "v{v} lacks churn");
    assert!(l.contains(&stable(rng.below(STABLE))));
}

#[test]
fn readers_see_one_version_per_lookup() {
    // Small segments: each delta rebuilds some and shares the rest.
    let first = List::from_entries_with_segment_size(0, version_set(0), 256).unwrap();
    assert!(first.stats().segments > 50);
    let bl = Arc::new(Blacklist::new(first));
    let done = Arc::new(AtomicBool::new(false));
    let checks = Arc::new(AtomicU64::new(0));

    let mut readers = Vec::new();
    for t in 0..2u64 {
        let (bl, done, checks) = (Arc::clone(&bl), Arc::clone(&done), Arc::clone(&checks));
        readers.push(thread::spawn(move || {
            let mut rng = Rng::new(t);
            let mut reader = bl.reader();
            let mut last_version = 0;
            let mut versions_seen = 0u64;
            while !done.load(Ordering::Acquire) {
                // Whole-list consistency through the two ways of holding a version.
                let snap = bl.snapshot();
                check_list(&snap, &mut rng);
                let l = reader.list();
                check_list(l, &mut rng);
                // Versions never go backwards for one reader.
                assert!(l.version() >= last_version);
                versions_seen += u64::from(l.version() != last_version);
                last_version = l.version();
                // Point lookups on whatever is current: stable always, never-listed never,
                // a removed marker never again once a newer version was observed.
                for _ in 0..50 {
                    assert!(bl.contains(&stable(rng.below(STABLE))));
                    assert!(reader.contains(&stable(rng.below(STABLE))));
                    assert!(!bl.contains(&card(STABLE * 1_000 + rng.below(1_000))));
                    if last_version > 0 {
                        assert!(!bl.contains(&marker(last_version - 1)));
                    }
                }
                checks.fetch_add(1, Ordering::Relaxed);
            }
            versions_seen
        }));
    }

    for v in 0..VERSIONS {
        let d = Delta {
            from_version: v,
            to_version: v + 1,
            add: [marker(v + 1)]
                .into_iter()
                .chain((0..CHURN).map(|j| churn(v + 1, j)))
                .collect(),
            remove: [marker(v)]
                .into_iter()
                .chain((0..CHURN).map(|j| churn(v, j)))
                .collect(),
        };
        let before = checks.load(Ordering::Relaxed);
        bl.apply(&d).unwrap();
        // Let readers run a few rounds on this version (bounded, so a stuck reader cannot
        // hang the test; the asserts below catch that).
        let t = Instant::now();
        while checks.load(Ordering::Relaxed) < before + 2
            && t.elapsed() < Duration::from_secs(5)
            && !readers.iter().any(|r| r.is_finished())
        {
            thread::yield_now();
        }
        if readers.iter().any(|r| r.is_finished()) {
            break;
        }
    }
    done.store(true, Ordering::Release);
    let seen: Vec<u64> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let last = bl.snapshot();
    assert_eq!(last.version(), VERSIONS);
    assert!(last.iter().eq({
        let mut s = version_set(VERSIONS);
        s.sort();
        s
    }));
    // The test only means something if readers ran during the updates.
    assert!(
        checks.load(Ordering::Relaxed) > 2 * VERSIONS,
        "readers barely ran"
    );
    assert!(
        seen.iter().all(|&s| s >= 2),
        "readers saw versions {seen:?}"
    );
}

#[test]
fn a_pinned_snapshot_keeps_answering_its_version() {
    let bl = Blacklist::new(List::from_entries(0, version_set(0)).unwrap());
    let old = bl.snapshot();
    for v in 0..5 {
        bl.apply(&Delta {
            from_version: v,
            to_version: v + 1,
            add: vec![marker(v + 1)],
            remove: vec![marker(v)],
        })
        .unwrap();
    }
    assert!(old.contains(&marker(0)) && !old.contains(&marker(5)));
    assert!(!bl.contains(&marker(0)) && bl.contains(&marker(5)));
}
