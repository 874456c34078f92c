//! Journal durability and recovery: torn tails at every byte, corruption refused and
//! quarantined, acknowledgement and compaction across restarts, bounds.
#![allow(clippy::unwrap_used)]

mod common;

use common::{sample, tmp_dir};
use onecard_journal::{Journal, JournalConfig, JournalError, Kind, Seq};
use std::fs;
use std::path::{Path, PathBuf};

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

fn small() -> JournalConfig {
    JournalConfig {
        max_record_bytes: 4096,
        segment_bytes: 8192,
        max_journal_bytes: 1 << 20,
        reserve_bytes: 16 << 10,
    }
}

fn fill(dir: &Path, cfg: JournalConfig, n: u32) -> Vec<u64> {
    let mut j = Journal::open_with(dir, cfg).unwrap();
    (1..=n)
        .map(|i| j.append(&sample(i)).unwrap().get())
        .collect()
}

fn ids(j: &Journal) -> Vec<(u64, String)> {
    j.unacked(usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(s, r)| (s.get(), r.record_id))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = fs::remove_dir_all(to);
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn round_trip_across_reopen() {
    let dir = tmp_dir("roundtrip");
    assert_eq!(
        fill(&dir, JournalConfig::default(), 50),
        (1..=50).collect::<Vec<_>>()
    );
    let j = Journal::open(&dir).unwrap();
    let r = j.recovery();
    assert_eq!((r.unacked, r.truncated_bytes, r.ack_reset), (50, 0, false));
    let got = j.unacked(usize::MAX).unwrap();
    for (i, (seq, rec)) in got.iter().enumerate() {
        assert_eq!(seq.get(), i as u64 + 1);
        assert_eq!(*rec, sample(i as u32 + 1));
    }
    assert_eq!(j.unacked(7).unwrap().len(), 7);
    assert!(j.contains(&sample(3).record_id));
}

#[test]
fn torn_tail_at_every_byte_of_the_last_record() {
    let base = tmp_dir("torn-base");
    fill(&base, JournalConfig::default(), 5);
    let seg = segments(&base).pop().unwrap();
    let full = fs::read(&seg).unwrap();
    // The last record starts where a 4-record journal ends.
    let four = tmp_dir("torn-four");
    fill(&four, JournalConfig::default(), 4);
    let start = fs::read(segments(&four).pop().unwrap()).unwrap().len();
    assert_eq!(
        &full[..start],
        &fs::read(segments(&four).pop().unwrap()).unwrap()[..]
    );
    let work = tmp_dir("torn-work");
    for cut in start..full.len() {
        copy_dir(&base, &work);
        let s = segments(&work).pop().unwrap();
        fs::write(&s, &full[..cut]).unwrap();
        let mut j = Journal::open(&work).unwrap();
        let r = j.recovery().clone();
        assert_eq!(r.truncated_bytes, (cut - start) as u64, "cut at {cut}");
        assert_eq!(r.truncated_file.is_some(), cut > start);
        assert_eq!(r.unacked, 4, "cut at {cut}");
        assert_eq!(fs::metadata(&s).unwrap().len(), start as u64);
        // The torn record was never acknowledged, so its seq is free again.
        assert_eq!(j.append(&sample(99)).unwrap(), Seq(5));
        drop(j);
        let j = Journal::open(&work).unwrap();
        assert_eq!(j.recovery().truncated_bytes, 0);
        assert_eq!(j.unacked(usize::MAX).unwrap()[4].1, sample(99));
    }
}

#[test]
fn garbage_or_bit_flip_in_the_tail_is_cut() {
    let dir = tmp_dir("tail-garbage");
    fill(&dir, JournalConfig::default(), 3);
    let seg = segments(&dir).pop().unwrap();
    let clean = fs::read(&seg).unwrap();
    // Zeros past the end (a file system that extended the file but not its data).
    let mut z = clean.clone();
    z.extend_from_slice(&[0u8; 4096]);
    fs::write(&seg, &z).unwrap();
    let j = Journal::open(&dir).unwrap();
    assert_eq!((j.recovery().truncated_bytes, j.stats().unacked), (4096, 3));
    drop(j);
    // A flipped bit inside the last frame.
    let mut f = clean.clone();
    let n = f.len();
    f[n - 10] ^= 0x01;
    fs::write(&seg, &f).unwrap();
    let j = Journal::open(&dir).unwrap();
    assert_eq!(j.stats().unacked, 2);
    assert!(j.recovery().truncated_bytes > 0);
}

#[test]
fn corruption_in_the_middle_is_refused_then_quarantined() {
    let dir = tmp_dir("middle");
    fill(&dir, JournalConfig::default(), 5);
    let seg = segments(&dir).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    let frame = bytes.len() / 5;
    bytes[frame + frame / 2] ^= 0x20; // inside record 2
    fs::write(&seg, &bytes).unwrap();
    let before = fs::read(&seg).unwrap();
    match Journal::open(&dir) {
        Err(JournalError::Corrupt { lost, reason, .. }) => {
            assert_eq!(lost, Some((2, 2)));
            assert_eq!(reason, "checksum mismatch");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(
        fs::read(&seg).unwrap(),
        before,
        "a refused open changed the disk"
    );

    let report = Journal::quarantine(&dir).unwrap();
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].lost, vec![(Seq(2), Seq(2))]);
    assert_eq!(report[0].kept, 4);
    let copy = report[0].copy.clone().unwrap();
    assert_eq!(
        fs::read(copy).unwrap(),
        before,
        "the quarantined copy is the original"
    );

    let mut j = Journal::open(&dir).unwrap();
    assert_eq!(j.recovery().gaps, vec![(Seq(2), Seq(2))]);
    let seqs: Vec<u64> = ids(&j).into_iter().map(|(s, _)| s).collect();
    assert_eq!(seqs, vec![1, 3, 4, 5]);
    assert_eq!(j.append(&sample(6)).unwrap(), Seq(6));
    j.ack(Seq(6)).unwrap();
    drop(j);
    let j = Journal::open(&dir).unwrap();
    assert_eq!((j.stats().unacked, j.stats().next), (0, Seq(7)));
}

#[test]
fn damage_in_an_older_segment_is_refused_even_at_its_end() {
    let dir = tmp_dir("older");
    fill(&dir, small(), 30);
    let segs = segments(&dir);
    assert!(segs.len() >= 3, "{segs:?}");
    let mut b = fs::read(&segs[0]).unwrap();
    let n = b.len();
    b[n - 3] ^= 0xFF; // the CRC of the last frame of a closed segment
    fs::write(&segs[0], &b).unwrap();
    let Err(JournalError::Corrupt { path, lost, .. }) = Journal::open_with(&dir, small()) else {
        panic!("damage at the end of a closed segment must be refused");
    };
    assert_eq!(path, segs[0]);
    let (a, z) = lost.unwrap();
    assert_eq!(a, z, "exactly the one frame");
    let report = Journal::quarantine(&dir).unwrap();
    assert_eq!(report[0].lost, vec![(Seq(a), Seq(a))]);
    let j = Journal::open_with(&dir, small()).unwrap();
    assert_eq!(j.stats().unacked, 29);
}

#[test]
fn missing_segment_is_refused_then_marked() {
    let dir = tmp_dir("missing");
    fill(&dir, small(), 30);
    let segs = segments(&dir);
    fs::remove_file(&segs[1]).unwrap();
    assert!(matches!(
        Journal::open_with(&dir, small()),
        Err(JournalError::Discontinuous { .. })
    ));
    let report = Journal::quarantine(&dir).unwrap();
    assert_eq!(report.len(), 1);
    assert!(report[0].copy.is_none());
    let j = Journal::open_with(&dir, small()).unwrap();
    assert_eq!(j.recovery().gaps, report[0].lost);
    assert_eq!(j.stats().next, Seq(31));
}

#[test]
fn ack_persists_compacts_and_never_goes_back() {
    let dir = tmp_dir("ack");
    fill(&dir, small(), 40);
    let mut j = Journal::open_with(&dir, small()).unwrap();
    let segs = segments(&dir).len();
    assert!(segs >= 4);
    assert!(matches!(
        j.ack(Seq(41)),
        Err(JournalError::AckBeyondEnd {
            up_to: 41,
            last: 40
        })
    ));
    let removed = j.ack(Seq(25)).unwrap();
    assert!(removed >= 1);
    assert_eq!(segments(&dir).len(), segs - removed);
    assert_eq!(j.ack(Seq(10)).unwrap(), 0, "going back is a no-op");
    assert_eq!(j.acked(), Seq(25));
    assert_eq!(ids(&j)[0].0, 26);
    drop(j);
    let mut j = Journal::open_with(&dir, small()).unwrap();
    assert_eq!((j.acked(), j.stats().unacked), (Seq(25), 15));
    // Acknowledge everything: all segments go, numbering continues.
    j.ack(Seq(40)).unwrap();
    assert!(segments(&dir).is_empty());
    assert_eq!(j.stats().used_bytes, 0);
    drop(j);
    let mut j = Journal::open_with(&dir, small()).unwrap();
    assert_eq!(j.append(&sample(41)).unwrap(), Seq(41));
    assert_eq!(ids(&j), vec![(41, sample(41).record_id)]);
}

#[test]
fn crash_between_ack_and_deletion_is_finished_on_open() {
    let dir = tmp_dir("ack-crash");
    fill(&dir, small(), 30);
    let keep = tmp_dir("ack-crash-keep");
    copy_dir(&dir, &keep);
    let mut j = Journal::open_with(&dir, small()).unwrap();
    j.ack(Seq(20)).unwrap();
    drop(j);
    // Put the deleted segments back, as if the process died after the watermark was durable
    // and before the files were removed.
    for s in segments(&keep) {
        let to = dir.join(s.file_name().unwrap());
        if !to.exists() {
            fs::copy(&s, &to).unwrap();
        }
    }
    let j = Journal::open_with(&dir, small()).unwrap();
    assert!(j.recovery().removed_segments >= 1);
    assert_eq!(ids(&j).first().unwrap().0, 21);
    assert_eq!(j.stats().unacked, 10);
}

#[test]
fn unreadable_watermark_resends_rather_than_loses() {
    let dir = tmp_dir("ack-bad");
    fill(&dir, small(), 30);
    let mut j = Journal::open_with(&dir, small()).unwrap();
    j.ack(Seq(5)).unwrap();
    drop(j);
    fs::write(dir.join("ack"), b"garbage").unwrap();
    let j = Journal::open_with(&dir, small()).unwrap();
    assert!(j.recovery().ack_reset);
    // Nothing was compacted away at seq 5, so all 30 come back for upload (the host dedups).
    assert_eq!(j.stats().unacked, 30);
}

#[test]
fn bounds_full_journal_reserve_duplicates_and_size() {
    let dir = tmp_dir("bounds");
    let cfg = JournalConfig {
        max_record_bytes: 2048,
        segment_bytes: 4096,
        max_journal_bytes: 12 << 10,
        reserve_bytes: 4096,
    };
    let mut j = Journal::open_with(&dir, cfg.clone()).unwrap();
    let mut n = 0;
    let err = loop {
        n += 1;
        match j.append(&sample(n)) {
            Ok(_) => assert!(n < 100),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, JournalError::Full { .. }), "{err}");
    assert!(!j.accepts_new_taps());
    // A record that settles a pending one may use the reserve.
    let mut settle = sample(n);
    settle.kind = Kind::Recovered;
    settle.mac2_verified = false;
    settle.resolves = Some(format!("{}-P", settle.record_id));
    j.append(&settle).unwrap();
    // Same id again: refused.
    assert!(matches!(
        j.append(&settle),
        Err(JournalError::DuplicateRecordId(_))
    ));
    // Invalid records never reach the disk.
    let mut bad = sample(500);
    bad.balance_after = bad.balance_before;
    assert!(matches!(
        j.append(&bad),
        Err(JournalError::InvalidRecord(_))
    ));
    // Too large.
    let mut big = sample(501);
    big.records = vec![big.records[0].clone(); 8];
    for r in &mut big.records {
        r.data = vec![0; 256];
    }
    let mut tiny = JournalConfig {
        max_record_bytes: 2048,
        ..JournalConfig::default()
    };
    tiny.reserve_bytes = 4096;
    let mut j2 = Journal::open_with(tmp_dir("bounds2"), tiny).unwrap();
    assert!(matches!(
        j2.append(&big),
        Err(JournalError::RecordTooLarge { .. })
    ));
    // Uploading frees the space.
    let last = j.stats().next.get() - 1;
    j.ack(Seq(last)).unwrap();
    assert!(j.accepts_new_taps());
    assert!(j.append(&sample(1000)).is_ok());
    // Configurations that could not hold a record are refused.
    let bad_cfg = JournalConfig {
        segment_bytes: 100,
        ..JournalConfig::default()
    };
    assert!(matches!(
        Journal::open_with(tmp_dir("badcfg"), bad_cfg),
        Err(JournalError::Config(_))
    ));
}

#[test]
fn a_journal_has_one_owner_at_a_time() {
    let dir = std::env::temp_dir().join(format!("onecard-journal-lock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let first = onecard_journal::Journal::open(&dir).unwrap();
    assert!(matches!(
        onecard_journal::Journal::open(&dir),
        Err(onecard_journal::JournalError::Locked { .. })
    ));
    drop(first);
    assert!(
        onecard_journal::Journal::open(&dir).is_ok(),
        "released when the owner goes"
    );
}
