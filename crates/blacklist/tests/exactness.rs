//! Exactness: every listed card found, nothing else found, across list shapes, serials that
//! are not BCD, extreme keys, and long random sequences of deltas checked against a model.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Instant;

use onecard_blacklist::synth::Rng;
use onecard_blacklist::{Delta, Entry, List, Shape};
use onecard_proto::files::AppInfo;

/// 1M entries always: debug build, must stay fast.
#[test]
fn one_million_inserted_present_random_absent() {
    let t = Instant::now();
    let entries = Shape::Uniform.entries(1_000_000, 1);
    let list = List::from_sorted(3, entries.iter().copied()).unwrap();
    assert_eq!(list.len(), 1_000_000);
    for e in entries.iter().step_by(10) {
        assert!(list.contains(e), "{e} missing");
    }
    let mut rng = Rng::new(2);
    let mut absent = 0;
    for _ in 0..50_000 {
        let e = Shape::Uniform.random(&mut rng);
        let listed = entries.binary_search(&e).is_ok();
        assert_eq!(list.contains(&e), listed, "{e}");
        absent += usize::from(!listed);
    }
    assert!(absent > 49_000);
    // Neighbours of listed serials (±1 in the last digit) are the likeliest false positives.
    for e in entries.iter().step_by(250) {
        for d in [1u8, 9] {
            let mut n = *e;
            n.serial[9] = (n.serial[9] & 0xF0) | (((n.serial[9] & 0x0F) + d) % 10);
            assert_eq!(list.contains(&n), entries.binary_search(&n).is_ok(), "{n}");
        }
    }
    eprintln!("1M exactness in {:?}", t.elapsed());
}

#[test]
fn clustered_list_is_narrow_and_exact() {
    let entries = Shape::Clustered.entries(300_000, 5);
    let list = List::from_sorted(1, entries.iter().copied()).unwrap();
    let stats = list.stats();
    assert_eq!(stats.narrow_entries, 300_000);
    assert!(stats.resident_bytes < 300_000 * 5, "{stats:?}");
    assert!(list.iter().eq(entries.iter().copied()));
    let mut rng = Rng::new(6);
    for _ in 0..50_000 {
        let e = Shape::Clustered.random(&mut rng);
        assert_eq!(list.contains(&e), entries.binary_search(&e).is_ok());
    }
}

fn serial_from(v: u128) -> [u8; 10] {
    v.to_be_bytes()[6..].try_into().unwrap()
}

#[test]
fn extreme_and_non_bcd_keys() {
    let issuers = [[0u8; 8], [0xFF; 8], [1, 1, 0x10, 0, 0xFF, 0xFF, 0xFF, 0xFF]];
    let serials = [
        [0u8; 10],
        [0x99; 10],
        [0xFF; 10],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0A],
        [0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10],
        [0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56, 0x78, 0x9F],
        serial_from(1),
    ];
    let all: Vec<Entry> = issuers
        .iter()
        .flat_map(|&i| serials.iter().map(move |&s| Entry::new(i, s)))
        .collect();
    for skip in 0..all.len() {
        let listed: Vec<Entry> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != skip % 3 && *i != skip)
            .map(|(_, e)| *e)
            .collect();
        let list = List::from_entries(0, listed.iter().rev().copied()).unwrap();
        for e in &all {
            assert_eq!(list.contains(e), listed.contains(e), "{e} (skip {skip})");
        }
        let mut sorted = listed.clone();
        sorted.sort();
        assert!(list.iter().eq(sorted.iter().copied()));
    }
}

#[test]
fn duplicates_merge_in_from_entries_but_not_from_sorted() {
    let e = Entry::new([1; 8], [0x11; 10]);
    let f = Entry::new([1; 8], [0x12; 10]);
    let l = List::from_entries(0, [f, e, f, e]).unwrap();
    assert_eq!(l.len(), 2);
    assert!(List::from_sorted(0, [e, e]).is_err());
    assert!(List::from_sorted(0, [f, e]).is_err());
    assert!(List::empty(0).is_empty() && !List::empty(0).contains(&e));
}

#[test]
fn app_info_identifies_the_card() {
    let mut b = [0u8; 30];
    b[..8].copy_from_slice(&[1, 1, 0x10, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
    b[8] = 2;
    b[10..20].copy_from_slice(&[0, 0, 0x51, 0x70, 0x07, 0x01, 0x04, 0x79, 0x13, 0x81]);
    b[20..24].copy_from_slice(&[0x20, 0x14, 0x01, 0x01]);
    b[24..28].copy_from_slice(&[0x20, 0x40, 0x12, 0x31]);
    let info = AppInfo::parse(&b).unwrap();
    let e = Entry::from(&info);
    let list = List::from_entries(0, [e]).unwrap();
    assert!(list.contains_card(&info.issuer, &info.serial));
    let mut other = info.serial;
    other[9] = 0x82;
    assert!(!list.contains_card(&info.issuer, &other));
}

/// A pool of candidate cards mixing dense runs, scattered serials and non-BCD serials over
/// three issuers, so deltas split, merge and create segments of every kind.
fn pool(rng: &mut Rng) -> Vec<Entry> {
    let mut set = BTreeSet::new();
    while set.len() < 3_000 {
        let issuer = [0x01, 0x00, 0x00, rng.below(3) as u8, 0xFF, 0xFF, 0xFF, 0xFF];
        let serial = match rng.below(4) {
            0 | 1 => {
                let v = 1_234_000_000u128 + u128::from(rng.below(5_000));
                bcd(v)
            }
            2 => bcd(u128::from(rng.next_u64()) * 5 + u128::from(rng.below(5))),
            _ => {
                let mut s = [0u8; 10];
                s[4..].copy_from_slice(&rng.next_u64().to_be_bytes()[2..]);
                s[9] |= 0x0A;
                s
            }
        };
        set.insert(Entry::new(issuer, serial));
    }
    set.into_iter().collect()
}

/// The BCD serial of the decimal value `v` (taken mod 10^20).
fn bcd(mut v: u128) -> [u8; 10] {
    v %= 10u128.pow(20);
    let mut s = [0u8; 10];
    for b in s.iter_mut().rev() {
        let two = (v % 100) as u8;
        v /= 100;
        *b = (two / 10) << 4 | (two % 10);
    }
    s
}

fn model_run(seg: Option<usize>, seed: u64) {
    let mut rng = Rng::new(seed);
    let pool = pool(&mut rng);
    let mut model: BTreeSet<Entry> = pool.iter().filter(|_| rng.below(2) == 0).copied().collect();
    let mut list = match seg {
        Some(s) => List::from_entries_with_segment_size(0, model.iter().copied(), s).unwrap(),
        None => List::from_entries(0, model.iter().copied()).unwrap(),
    };
    for round in 0..100u64 {
        let mut delta = Delta {
            from_version: list.version(),
            to_version: list.version() + 1 + rng.below(3),
            ..Delta::default()
        };
        // Sometimes a burst in one place, sometimes scattered, sometimes emptying a run.
        let n = match rng.below(4) {
            0 => 1,
            1 => rng.below(40) as usize,
            _ => rng.below(400) as usize,
        };
        let start = rng.below(pool.len() as u64) as usize;
        for (i, e) in pool.iter().cycle().skip(start).take(n).enumerate() {
            if i % 2 == 0 || rng.below(3) == 0 {
                if model.contains(e) {
                    delta.remove.push(*e);
                } else {
                    delta.add.push(*e);
                }
            }
        }
        let next = list.apply(&delta).unwrap();
        for e in &delta.add {
            model.insert(*e);
        }
        for e in &delta.remove {
            model.remove(e);
        }
        assert_eq!(next.version(), delta.to_version);
        assert_eq!(next.len(), model.len());
        assert!(next.iter().eq(model.iter().copied()), "round {round}");
        for e in &pool {
            assert_eq!(next.contains(e), model.contains(e), "round {round}: {e}");
        }
        // diff reproduces the delta's effect exactly.
        let d = list.diff(&next).unwrap();
        assert_eq!(list.apply(&d).unwrap(), next);
        list = next;
    }
}

#[test]
fn random_deltas_match_a_model_with_tiny_segments() {
    model_run(Some(16), 11);
}

#[test]
fn random_deltas_match_a_model_with_small_segments() {
    model_run(Some(100), 12);
}

#[test]
fn random_deltas_match_a_model_with_production_segments() {
    model_run(None, 13);
}

#[test]
fn delta_on_a_big_list_shares_untouched_segments() {
    let entries = Shape::Clustered.entries(400_000, 8);
    let list = List::from_sorted(1, entries.iter().copied()).unwrap();
    let segments = list.stats().segments;
    let delta = Delta {
        from_version: 1,
        to_version: 2,
        add: vec![],
        remove: vec![entries[123_456]],
    };
    let next = list.apply(&delta).unwrap();
    assert!(next.shared_segments(&list) >= segments - 3, "{segments}");
    assert!(!next.contains(&entries[123_456]) && list.contains(&entries[123_456]));
}
