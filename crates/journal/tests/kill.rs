//! The kill test: a separate process appends records and prints each seq only after `append`
//! returned; it is killed with SIGKILL at random moments (fixed seed). After every kill the
//! journal is recovered and every printed record must be there exactly once, at its seq, and
//! nothing may be duplicated. Iterations: `JOURNAL_KILL_ITERATIONS` (default 30).
#![allow(clippy::unwrap_used)]

mod common;

use common::tmp_dir;
use onecard_journal::{Journal, JournalConfig, Seq};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

const SEGMENT_BYTES: u64 = 24 << 10;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Runs the helper until killed; returns the complete lines it printed.
fn run_and_kill(dir: &Path, run: u64, ack_every: u64, kill_after: Duration) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_journal-stress"))
        .arg("append")
        .arg(dir)
        .args(["--segment-bytes", &SEGMENT_BYTES.to_string()])
        .args(["--ack-every", &ack_every.to_string()])
        .args(["--run", &run.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut lines = Vec::new();
        let mut r = BufReader::new(out);
        loop {
            let mut l = String::new();
            match r.read_line(&mut l) {
                // A line without its newline was cut by the kill: not a promise.
                Ok(0) | Err(_) => break,
                Ok(_) if l.ends_with('\n') => lines.push(l.trim_end().to_string()),
                Ok(_) => break,
            }
        }
        lines
    });
    thread::sleep(kill_after);
    // SIGKILL on Unix: no destructors, no flushes.
    let _ = child.kill();
    let status = child.wait().unwrap();
    let lines = reader.join().unwrap();
    if status.success() || status.code().is_some() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        panic!("helper exited by itself ({status}) before the kill: {err}");
    }
    lines
}

struct Promises {
    /// seq → record_id of every record whose append returned.
    appended: BTreeMap<u64, String>,
    /// Highest acknowledged watermark printed.
    acked: u64,
}

/// Returns the next seq the journal will hand out.
fn check(dir: &Path, p: &Promises, iteration: u64) -> u64 {
    // Check a copy so the helper's own recovery gets exercised on the next run.
    let copy = tmp_dir("kill-check");
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
        }
    }
    let cfg = JournalConfig {
        segment_bytes: SEGMENT_BYTES,
        ..JournalConfig::default()
    };
    let j = Journal::open_with(&copy, cfg).unwrap();
    assert!(
        j.acked().get() >= p.acked,
        "iteration {iteration}: watermark {} below printed ack {}",
        j.acked(),
        p.acked
    );
    let present = j.unacked(usize::MAX).unwrap();
    let mut seen_ids = HashSet::new();
    let mut prev = j.acked().get();
    for (seq, rec) in &present {
        assert_eq!(
            seq.get(),
            prev + 1,
            "iteration {iteration}: seqs not contiguous"
        );
        prev = seq.get();
        assert!(
            seen_ids.insert(rec.record_id.clone()),
            "iteration {iteration}: {} duplicated",
            rec.record_id
        );
    }
    let by_seq: BTreeMap<u64, &str> = present
        .iter()
        .map(|(s, r)| (s.get(), r.record_id.as_str()))
        .collect();
    for (seq, id) in p.appended.range(j.acked().get() + 1..) {
        assert_eq!(
            by_seq.get(seq).copied(),
            Some(id.as_str()),
            "iteration {iteration}: acknowledged record {seq} {id} lost or replaced"
        );
    }
    assert_eq!(j.stats().next, Seq(prev + 1));
    let _ = std::fs::remove_dir_all(&copy);
    prev + 1
}

fn tear_last_segment(dir: &Path, next: u64, rng: &mut Rng) {
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    let Some(last) = segs.pop() else { return };
    let len = 1 + (rng.next() % 700) as usize;
    let tail: Vec<u8> = match rng.next() % 3 {
        // A torn append: the next frame's header (length, the next seq, kind) and part of its
        // payload, cut before the CRC.
        0 => {
            let mut t = 600u32.to_le_bytes().to_vec();
            t.extend_from_slice(&next.to_le_bytes());
            t.push(1);
            t.extend_from_slice(&[b'{'; 600]);
            t.truncate(len.min(t.len()));
            t
        }
        1 => vec![0; len],
        _ => (0..len).map(|_| rng.next() as u8).collect(),
    };
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    std::io::Write::write_all(&mut f, &tail).unwrap();
}

fn kill_loop(name: &str, seed: u64, ack_every: u64) -> (usize, u64) {
    let iterations: u64 = std::env::var("JOURNAL_KILL_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let dir = tmp_dir(name);
    let mut rng = Rng(seed);
    let mut p = Promises {
        appended: BTreeMap::new(),
        acked: 0,
    };
    let mut truncations = 0u64;
    for it in 0..iterations {
        // From "during startup and recovery" to a few dozen appends.
        let delay = Duration::from_millis(2 + rng.next() % 120);
        let lines = run_and_kill(&dir, it + 1, ack_every, delay);
        for l in &lines {
            let mut f = l.split_whitespace();
            match (f.next(), f.next(), f.next()) {
                (Some("OPEN"), Some(_), Some(t)) => {
                    truncations += u64::from(t != "0");
                }
                (Some("A"), Some(seq), Some(id)) => {
                    let seq: u64 = seq.parse().unwrap();
                    let old = p.appended.insert(seq, id.to_string());
                    // A seq may be handed out again only if its earlier holder was never
                    // acknowledged, which would have been caught by `check` below.
                    assert!(old.is_none(), "seq {seq} acknowledged twice");
                }
                (Some("K"), Some(seq), None) => p.acked = p.acked.max(seq.parse().unwrap()),
                _ => panic!("unexpected helper output {l:?}"),
            }
        }
        let next = check(&dir, &p, it);
        // SIGKILL cannot tear a write(2) to the page cache, so emulate the power cut that can:
        // a partial frame or zeros after the last acknowledged record, for the next run's
        // recovery to cut.
        if rng.next().is_multiple_of(3) {
            tear_last_segment(&dir, next, &mut rng);
        }
    }
    eprintln!(
        "{name}: {iterations} kills, {} acknowledged appends, watermark {}, {truncations} \
         torn tails cut",
        p.appended.len(),
        p.acked
    );
    let _ = std::fs::remove_dir_all(&dir);
    (p.appended.len(), truncations)
}

#[test]
fn sigkill_never_loses_or_duplicates_acknowledged_records() {
    let (appended, truncations) = kill_loop("kill", 0x5EED_0001, 0);
    assert!(
        appended > 30,
        "only {appended} appends: kills came too early"
    );
    assert!(truncations > 0, "no torn tail was ever recovered");
}

#[test]
fn sigkill_during_acknowledgement_and_compaction() {
    let (appended, _) = kill_loop("kill-ack", 0x5EED_0002, 8);
    assert!(appended > 30, "only {appended} appends");
}
