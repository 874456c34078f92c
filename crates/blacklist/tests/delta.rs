//! Delta policy: exact version, complete validation before any change, typed errors.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use onecard_blacklist::{Blacklist, Delta, Entry, Error, List, Shape, MAX_DELTA_ENTRIES};

fn setup() -> (Vec<Entry>, Blacklist) {
    let entries = Shape::Clustered.entries(20_000, 4);
    let list = List::from_sorted(10, entries.iter().copied()).unwrap();
    (entries, Blacklist::new(list))
}

fn absent(i: u8) -> Entry {
    Entry::new([9; 8], [0, 0, 0, 0, 0, 0, 0, 0, 0, i])
}

/// Applies `delta`, expects the given refusal, and checks that nothing changed: same list
/// object, same version, same contents.
fn refused(bl: &Blacklist, delta: &Delta, check: impl Fn(&Error) -> bool) {
    let before = bl.snapshot();
    let bytes = before.to_bytes();
    let err = bl.apply(delta).unwrap_err();
    assert!(check(&err), "unexpected error {err:?}");
    let after = bl.snapshot();
    assert!(Arc::ptr_eq(&before, &after));
    assert_eq!(after.version(), 10);
    assert_eq!(after.to_bytes(), bytes);
    // The pure form refuses the same way.
    assert!(check(&before.apply(delta).unwrap_err()));
}

#[test]
fn version_mismatch_changes_nothing() {
    let (entries, bl) = setup();
    for from in [0, 9, 11, u64::MAX] {
        let d = Delta {
            from_version: from,
            to_version: from.saturating_add(1),
            add: vec![absent(1)],
            remove: vec![entries[0]],
        };
        refused(
            &bl,
            &d,
            |e| matches!(e, Error::VersionMismatch { current: 10, from: f } if *f == from),
        );
    }
    for to in [0, 9, 10] {
        let d = Delta {
            from_version: 10,
            to_version: to,
            add: vec![absent(1)],
            remove: vec![],
        };
        refused(&bl, &d, |e| matches!(e, Error::VersionNotIncreasing { .. }));
    }
}

#[test]
fn invalid_deltas_change_nothing() {
    let (entries, bl) = setup();
    let d = |add: Vec<Entry>, remove: Vec<Entry>| Delta {
        from_version: 10,
        to_version: 11,
        add,
        remove,
    };
    // Every invalid delta also carries valid changes, which must not be applied either.
    let (x, y) = (entries[100], entries[15_000]);
    refused(
        &bl,
        &d(vec![absent(1), absent(2), absent(1)], vec![x]),
        |e| matches!(e, Error::Duplicate { side: "additions", entry } if *entry == absent(1)),
    );
    refused(
        &bl,
        &d(vec![absent(1)], vec![x, y, x]),
        |e| matches!(e, Error::Duplicate { side: "removals", entry } if *entry == x),
    );
    refused(
        &bl,
        &d(vec![absent(1)], vec![x, absent(3)]),
        |e| matches!(e, Error::RemoveAbsent(a) if *a == absent(3)),
    );
    refused(
        &bl,
        &d(vec![absent(1), y], vec![x]),
        |e| matches!(e, Error::AddPresent(a) if *a == y),
    );
    refused(
        &bl,
        &d(vec![absent(1), x], vec![x]),
        |e| matches!(e, Error::AddedAndRemoved(a) if *a == x),
    );
    refused(
        &bl,
        &d(vec![absent(4); MAX_DELTA_ENTRIES], vec![x]),
        |e| matches!(e, Error::DeltaTooLarge { entries, .. } if *entries == MAX_DELTA_ENTRIES + 1),
    );
    // A valid one then goes through.
    assert_eq!(bl.apply(&d(vec![absent(1)], vec![x, y])).unwrap(), 11);
    assert!(bl.contains(&absent(1)) && !bl.contains(&x) && !bl.contains(&y));
    assert_eq!(bl.snapshot().len(), entries.len() - 1);
}

#[test]
fn deltas_chain_and_an_old_one_is_refused() {
    let (entries, bl) = setup();
    let d1 = Delta {
        from_version: 10,
        to_version: 20,
        add: vec![absent(7)],
        remove: vec![entries[5]],
    };
    bl.apply(&d1).unwrap();
    // Replaying the same delta fails on version, not on content.
    assert!(matches!(
        bl.apply(&d1),
        Err(Error::VersionMismatch {
            current: 20,
            from: 10
        })
    ));
    let d2 = Delta {
        from_version: 20,
        to_version: 21,
        add: vec![entries[5]],
        remove: vec![absent(7)],
    };
    bl.apply(&d2).unwrap();
    assert_eq!(bl.version(), 21);
    assert!(bl.snapshot().iter().eq(entries.iter().copied()));
}

#[test]
fn empty_delta_moves_the_version_and_shares_everything() {
    let (_, bl) = setup();
    let before = bl.snapshot();
    bl.apply(&Delta {
        from_version: 10,
        to_version: 11,
        ..Delta::default()
    })
    .unwrap();
    let after = bl.snapshot();
    assert_eq!(after.version(), 11);
    assert_eq!(after.shared_segments(&before), before.stats().segments);
}

#[test]
fn snapshots_replace_only_with_a_newer_version() {
    let (entries, bl) = setup();
    let old = List::from_entries(10, [absent(1)]).unwrap();
    assert!(matches!(
        bl.replace(old),
        Err(Error::NotNewer {
            current: 10,
            offered: 10
        })
    ));
    assert!(bl.contains(&entries[0]));
    let new = List::from_entries(12, [absent(1)]).unwrap();
    bl.replace(new).unwrap();
    assert_eq!(bl.version(), 12);
    assert!(bl.contains(&absent(1)) && !bl.contains(&entries[0]));
}

#[test]
fn adding_a_new_issuer_and_emptying_an_old_one() {
    let a: Vec<Entry> = (0..50)
        .map(|i| Entry::new([1; 8], [0, 0, 0, 0, 0, 0, 0, 0, 0, i]))
        .collect();
    let list = List::from_entries(0, a.iter().copied()).unwrap();
    let b: Vec<Entry> = (0..30)
        .map(|i| Entry::new([0; 8], [0, 0, 0, 0, 0, 0, 0, 0, 0, i]))
        .collect();
    let next = list
        .apply(&Delta {
            from_version: 0,
            to_version: 1,
            add: b.clone(),
            remove: a.clone(),
        })
        .unwrap();
    // Raw bytes 0x0A.. are not BCD: canonical order puts them after the BCD ones.
    let mut sorted = b.clone();
    sorted.sort();
    assert_ne!(sorted, b);
    assert!(next.iter().eq(sorted.iter().copied()));
    let d = next.diff(&List::empty(2)).unwrap();
    assert_eq!((d.add.len(), d.remove.len()), (0, 30));
    assert!(next.apply(&d).unwrap().is_empty());
}
