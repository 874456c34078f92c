//! The file format: round trips, crash-safe save, every corruption and truncation refused,
//! specific structural errors, and bounded fuzzing with a fixed seed.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use onecard_blacklist::synth::Rng;
use onecard_blacklist::{Delta, Entry, Error, FormatError, List, Shape, MAX_ENTRIES};

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("onecard-blacklist-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn small_list() -> List {
    let mut e = Shape::Clustered.entries(40, 3);
    e.push(Entry::new([0xFF; 8], [0xFF; 10]));
    e.push(Entry::new([0xFF; 8], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0A]));
    List::from_entries(77, e).unwrap()
}

fn small_delta() -> Delta {
    Delta {
        from_version: 77,
        to_version: 78,
        add: Shape::Uniform.entries(9, 5),
        remove: small_list().iter().step_by(4).collect(),
    }
}

/// Replaces the trailing CRC so a mutation reaches the structural checks.
fn fix_crc(b: &mut [u8]) {
    if b.len() >= 4 {
        let n = b.len() - 4;
        let crc = crc32fast::hash(&b[..n]);
        b[n..].copy_from_slice(&crc.to_be_bytes());
    }
}

fn format_err(r: Result<impl std::fmt::Debug, Error>) -> FormatError {
    match r {
        Err(Error::Format(f)) => f,
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn snapshot_and_delta_round_trip() {
    let l = small_list();
    let b = l.to_bytes();
    assert_eq!(b.len() as u64, l.encoded_len());
    assert_eq!(&b[..4], b"OCBL");
    let back = List::decode(&b).unwrap();
    assert_eq!(back, l);
    assert_eq!(back.version(), 77);
    assert_eq!(List::read_from(&b[..]).unwrap(), l);
    assert_eq!(back.to_bytes(), b);

    let d = small_delta();
    let db = d.to_bytes().unwrap();
    let dback = Delta::decode(&db).unwrap();
    let mut sorted = d.clone();
    sorted.add.sort();
    sorted.remove.sort();
    assert_eq!(dback, sorted);
    assert_eq!(l.apply(&dback).unwrap(), l.apply(&d).unwrap());

    let empty = List::empty(5);
    assert_eq!(List::decode(&empty.to_bytes()).unwrap(), empty);
    assert_eq!(empty.to_bytes().len(), 28);
}

#[test]
fn exact_layout_of_a_tiny_snapshot() {
    let l = List::from_entries(
        0x0102,
        [Entry::new(
            [1, 1, 0x10, 0, 0xFF, 0xFF, 0xFF, 0xFF],
            [0x12; 10],
        )],
    )
    .unwrap();
    let b = l.to_bytes();
    let mut want = Vec::new();
    want.extend_from_slice(b"OCBL\x00\x01\x01\x00");
    want.extend_from_slice(&0x0102u64.to_be_bytes());
    want.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
    want.extend_from_slice(&[1, 1, 0x10, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 1]);
    want.extend_from_slice(&[0x12; 10]);
    want.extend_from_slice(&crc32fast::hash(&want).to_be_bytes());
    assert_eq!(b, want);
}

#[test]
fn save_and_load_replace_the_file_atomically() {
    let dir = tmp_dir("save");
    let path = dir.join("blacklist.bin");
    let l = small_list();
    l.save(&path).unwrap();
    assert_eq!(List::load(&path).unwrap(), l);
    // Saving again replaces the file; no temporary file is left behind.
    let l2 = l.apply(&small_delta()).unwrap();
    l2.save(&path).unwrap();
    assert_eq!(List::load(&path).unwrap(), l2);
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("blacklist.bin")]);
    // Deltas too.
    let dpath = dir.join("delta.bin");
    small_delta().save(&dpath).unwrap();
    assert_eq!(Delta::load(&dpath).unwrap().to_version, 78);
    // A failed save leaves the old file intact.
    assert!(l.save(dir.join("missing-dir").join("x.bin")).is_err());
    assert!(matches!(List::load(dir.join("nope")), Err(Error::Io(_))));
    // Loading a delta as a snapshot is refused by kind.
    assert_eq!(
        format_err(List::load(&dpath)),
        FormatError::WrongKind {
            expected: "snapshot",
            found: 2
        }
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_truncation_and_extension_is_refused() {
    for b in [small_list().to_bytes(), small_delta().to_bytes().unwrap()] {
        let is_delta = b[6] == 2;
        for n in 0..b.len() {
            let cut = &b[..n];
            let streamed = if is_delta {
                Delta::read_from(cut).map(|_| ())
            } else {
                List::read_from(cut).map(|_| ())
            };
            assert!(
                matches!(format_err(streamed), FormatError::Truncated { .. }),
                "prefix {n}"
            );
            let decoded = if is_delta {
                Delta::decode(cut).map(|_| ())
            } else {
                List::decode(cut).map(|_| ())
            };
            assert!(decoded.is_err(), "prefix {n}");
        }
        let mut longer = b.clone();
        longer.push(0);
        let r = if is_delta {
            Delta::read_from(&longer[..]).map(|_| ())
        } else {
            List::read_from(&longer[..]).map(|_| ())
        };
        assert_eq!(
            format_err(r),
            FormatError::TrailingBytes {
                offset: b.len() as u64
            }
        );
    }
}

#[test]
fn every_single_byte_corruption_is_refused() {
    for b in [small_list().to_bytes(), small_delta().to_bytes().unwrap()] {
        for i in 0..b.len() {
            for flip in [0x01u8, 0x80, 0xFF] {
                let mut c = b.clone();
                c[i] ^= flip;
                assert!(
                    List::decode(&c).is_err() && Delta::decode(&c).is_err(),
                    "byte {i}"
                );
                assert!(List::read_from(&c[..]).is_err() && Delta::read_from(&c[..]).is_err());
            }
        }
    }
    let mut c = small_list().to_bytes();
    let n = c.len();
    c[n / 2] ^= 4;
    assert!(matches!(
        format_err(List::decode(&c)),
        FormatError::BadCrc { .. }
    ));
}

/// Offsets in the small snapshot: header 16, counts 8, first group header 12, then serials.
const FIRST_SERIAL: usize = 16 + 8 + 12;

#[test]
fn structural_errors_are_named() {
    let good = small_list().to_bytes();
    let check = |edit: &dyn Fn(&mut Vec<u8>), want: FormatError| {
        let mut b = good.clone();
        edit(&mut b);
        fix_crc(&mut b);
        assert_eq!(format_err(List::decode(&b)), want.clone());
        assert_eq!(format_err(List::read_from(&b[..])), want);
    };
    check(&|b| b[0] = b'X', FormatError::BadMagic);
    check(&|b| b[5] = 2, FormatError::UnsupportedVersion(2));
    check(
        &|b| b[6] = 9,
        FormatError::WrongKind {
            expected: "snapshot",
            found: 9,
        },
    );
    check(&|b| b[7] = 1, FormatError::Reserved(1));
    // Entry count above the limit, checked before anything is read or allocated.
    check(
        &|b| b[16..20].copy_from_slice(&u32::MAX.to_be_bytes()),
        FormatError::TooLarge {
            count: u64::from(u32::MAX),
            max: MAX_ENTRIES as u64,
        },
    );
    // More groups than entries; no groups for a non-empty set.
    check(
        &|b| b[20..24].copy_from_slice(&1_000u32.to_be_bytes()),
        FormatError::BadCount { offset: 20 },
    );
    check(
        &|b| b[20..24].copy_from_slice(&0u32.to_be_bytes()),
        FormatError::BadCount { offset: 20 },
    );
    // An empty group, and a group claiming more entries than remain.
    check(
        &|b| b[32..36].copy_from_slice(&0u32.to_be_bytes()),
        FormatError::BadCount { offset: 32 },
    );
    check(
        &|b| b[32..36].copy_from_slice(&1_000u32.to_be_bytes()),
        FormatError::BadCount { offset: 32 },
    );
    // Serials out of order, and a duplicate.
    check(
        &|b| {
            let (x, y) = (FIRST_SERIAL, FIRST_SERIAL + 10);
            let first: Vec<u8> = b[x..x + 10].to_vec();
            b.copy_within(y..y + 10, x);
            b[y..y + 10].copy_from_slice(&first);
        },
        FormatError::Unsorted {
            offset: FIRST_SERIAL as u64 + 10,
        },
    );
    check(
        &|b| b.copy_within(FIRST_SERIAL..FIRST_SERIAL + 10, FIRST_SERIAL + 10),
        FormatError::Unsorted {
            offset: FIRST_SERIAL as u64 + 10,
        },
    );
    // Fewer entries declared than the groups hold: the leftover bytes are where the CRC
    // should be.
    let mut b = good.clone();
    let count = u32::from_be_bytes(b[16..20].try_into().unwrap());
    b[16..20].copy_from_slice(&(count + 1).to_be_bytes());
    fix_crc(&mut b);
    assert!(matches!(
        format_err(List::decode(&b)),
        FormatError::BadCount { offset: 16 }
    ));
}

#[test]
fn delta_limits_are_checked_before_reading() {
    let mut b = small_delta().to_bytes().unwrap();
    b[24..28].copy_from_slice(&2_000_000u32.to_be_bytes());
    fix_crc(&mut b);
    assert!(matches!(
        format_err(Delta::decode(&b)),
        FormatError::TooLarge {
            count: 2_000_000,
            ..
        }
    ));
    // Duplicates cannot be written.
    let e = Entry::new([1; 8], [2; 10]);
    let d = Delta {
        add: vec![e, e],
        ..Delta::default()
    };
    assert!(matches!(d.to_bytes(), Err(Error::Duplicate { .. })));
}

/// Accepted input must be canonical: re-encoding what was parsed gives the same bytes.
fn parse_all(b: &[u8]) -> bool {
    let list = List::decode(b);
    let streamed = List::read_from(b);
    assert_eq!(list.is_ok(), streamed.is_ok());
    if let Ok(l) = &list {
        assert_eq!(l.to_bytes(), b);
        for e in l.iter() {
            assert!(l.contains(&e));
        }
    }
    let delta = Delta::decode(b);
    assert_eq!(delta.is_ok(), Delta::read_from(b).is_ok());
    if let Ok(d) = &delta {
        assert_eq!(d.to_bytes().unwrap(), b);
    }
    list.is_ok() || delta.is_ok()
}

#[test]
fn fuzz_random_bytes_and_mutations() {
    let mut rng = Rng::new(0xF022);
    let seeds = [
        small_list().to_bytes(),
        small_delta().to_bytes().unwrap(),
        List::empty(1).to_bytes(),
        Delta::default().to_bytes().unwrap(),
    ];
    let mut accepted = 0;
    // Plain random bytes, sometimes behind a valid header, with a valid CRC half the time.
    for i in 0..3_000 {
        let len = rng.below(120) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        if i % 2 == 0 && b.len() >= 8 {
            b[..8].copy_from_slice(&seeds[rng.below(4) as usize][..8]);
        }
        if rng.below(2) == 0 {
            fix_crc(&mut b);
        }
        accepted += usize::from(parse_all(&b));
    }
    // Mutations of valid files: byte sets, bit flips, insertions, deletions, truncations.
    for _ in 0..6_000 {
        let mut b = seeds[rng.below(4) as usize].clone();
        for _ in 0..=rng.below(3) {
            let at = rng.below(b.len() as u64 + 1) as usize;
            match rng.below(5) {
                0 if at < b.len() => b[at] = rng.next_u64() as u8,
                1 if at < b.len() => b[at] ^= 1 << rng.below(8),
                2 => b.insert(at, rng.next_u64() as u8),
                3 if at < b.len() => {
                    b.remove(at);
                }
                _ => b.truncate(at),
            }
        }
        if rng.below(4) != 0 {
            fix_crc(&mut b);
        }
        accepted += usize::from(parse_all(&b));
    }
    eprintln!("fuzz: {accepted} of 9000 inputs accepted (all re-encoded identically)");
    // Some mutations (e.g. of a version field) are valid files; most are not.
    assert!(accepted > 10 && accepted < 3_000, "accepted {accepted}");
}
