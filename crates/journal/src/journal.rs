//! [`Journal`]: the append-only, crash-safe record store of one gate.
//!
//! Layout of the journal directory:
//!
//! ```text
//! 00000000000000000001.seg   segment files, named by the seq of their first frame
//! 00000000000000000420.seg   (the last one is the active segment; frames: see `frame.rs`)
//! ack                        acknowledgement watermark: "OCJA" ‖ seq:u64le ‖ crc32:u32le
//! quarantine/                copies of segments that `Journal::quarantine` rewrote
//! ```
//!
//! Durability rules, and why:
//!
//! * `append` writes one frame with one `write` and returns only after `fdatasync`: the gate
//!   opens (or the rider is told "paid") only once the record would survive a power cut.
//! * A new segment file is followed by an `fsync` of the directory before its first record is
//!   acknowledged, or a crash could lose the directory entry and with it the record.
//! * The watermark is replaced atomically (temp file, `fsync`, `rename`, directory `fsync`);
//!   segments are deleted only after the new watermark is durable, so a crash in between only
//!   leaves extra segments that the next `open` deletes.
//! * `open` truncates damage at the very end of the last segment (a torn append: the record was
//!   never acknowledged) and refuses anything else: a bad frame followed by a good one, a bad
//!   frame in an older segment, a missing segment. Such a journal stays untouched until an
//!   operator runs [`Journal::quarantine`].

use crate::frame::{self, Frame, HARD_MAX_PAYLOAD, KIND_GAP, KIND_RECORD, OVERHEAD};
use crate::record::{RecordError, TapRecord};
use serde::Deserialize;
use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Largest segment file `open` will read into memory; the journal never writes a bigger one.
pub const HARD_MAX_SEGMENT: u64 = 64 << 20;
const ACK_FILE: &str = "ack";
const ACK_TMP: &str = "ack.tmp";
const ACK_MAGIC: &[u8; 4] = b"OCJA";
const SEGMENT_EXT: &str = "seg";
const QUARANTINE_DIR: &str = "quarantine";

/// A journal sequence number: 1 for the first record a journal ever holds; a seq returned by
/// `append` is never handed out again (the watermark carries the count across compaction).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub u64);

impl Seq {
    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Bounds of one journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// Largest record payload (JSON bytes). Default 16 KiB; a compound record is about 1 KiB.
    pub max_record_bytes: usize,
    /// A segment is closed when the next frame would take it past this size. Default 4 MiB.
    pub segment_bytes: u64,
    /// Most bytes all segments may hold. Default 64 MiB (roughly 80,000 records, weeks of a
    /// busy gate offline).
    pub max_journal_bytes: u64,
    /// Bytes kept free for records that settle a pending one (`resolves` set): a gate that
    /// wrote a pending record must always be able to write its outcome. Default 256 KiB.
    pub reserve_bytes: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            max_record_bytes: 16 << 10,
            segment_bytes: 4 << 20,
            max_journal_bytes: 64 << 20,
            reserve_bytes: 256 << 10,
        }
    }
}

impl JournalConfig {
    fn check(&self) -> Result<()> {
        let frame = self.max_record_bytes as u64 + OVERHEAD as u64;
        if self.max_record_bytes == 0 || self.max_record_bytes > HARD_MAX_PAYLOAD {
            return Err(JournalError::Config("max_record_bytes must be 1..=1 MiB"));
        }
        if self.segment_bytes < frame || self.segment_bytes > HARD_MAX_SEGMENT {
            return Err(JournalError::Config(
                "segment_bytes must hold the largest record and be at most 64 MiB",
            ));
        }
        if self.reserve_bytes < frame || self.max_journal_bytes < self.reserve_bytes + frame {
            return Err(JournalError::Config(
                "reserve_bytes must hold a record, and max_journal_bytes the reserve plus one",
            ));
        }
        Ok(())
    }
}

/// Why a journal operation failed.
#[derive(Debug, Error)]
pub enum JournalError {
    /// Another process (or another `Journal` in this one) has the journal open: two writers
    /// would interleave sequence numbers.
    #[error("journal {path} is in use by another process")]
    Locked {
        /// The journal directory.
        path: PathBuf,
    },
    /// The file system failed.
    #[error("journal I/O on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The record breaks a [`TapRecord::validate`] rule.
    #[error("invalid record: {0}")]
    InvalidRecord(#[from] RecordError),
    /// The record's JSON is above [`JournalConfig::max_record_bytes`].
    #[error("record of {size} bytes is above the {limit}-byte limit")]
    RecordTooLarge {
        /// Payload size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// No room: the gate must refuse taps (never drop records) until an upload frees space.
    #[error("journal full: {used} of {limit} bytes used, {needed} more needed")]
    Full {
        /// Bytes in use.
        used: u64,
        /// Bytes this record needs.
        needed: u64,
        /// The limit that applies to this record (the reserve excluded unless it settles a
        /// pending record).
        limit: u64,
    },
    /// An unacknowledged record with this id is already in the journal.
    #[error("record_id {0} is already in the journal")]
    DuplicateRecordId(String),
    /// A damaged frame that is not a torn tail. Nothing was changed on disk.
    #[error(
        "corrupt journal segment {path} at byte {offset}: {reason}{}; the journal was left \
         untouched (Journal::quarantine sets it aside and keeps every readable record)",
        lost.map(|(a, b)| format!(", seqs {a}..={b} unreadable")).unwrap_or_default()
    )]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// Byte offset of the first bad frame.
        offset: u64,
        /// What was wrong with it.
        reason: &'static str,
        /// Sequence numbers no readable frame covers.
        lost: Option<(u64, u64)>,
    },
    /// Segments do not follow each other (a file is missing or foreign).
    #[error("journal segment {path} starts at seq {found}, expected {expected}")]
    Discontinuous {
        /// The segment.
        path: PathBuf,
        /// Seq it should start at.
        expected: u64,
        /// Seq its name says.
        found: u64,
    },
    /// A checksummed frame whose payload is not a tap record (a bug or a foreign writer).
    #[error("journal record {seq} is not a readable tap record: {reason}")]
    Undecodable {
        /// The record.
        seq: u64,
        /// Parser message.
        reason: String,
    },
    /// `ack` named a seq that was never appended.
    #[error("ack of seq {up_to} beyond the last appended seq {last}")]
    AckBeyondEnd {
        /// Requested watermark.
        up_to: u64,
        /// Last seq appended.
        last: u64,
    },
    /// An earlier write or fsync failed, so the file state is unknown: reopen to recover.
    #[error("an earlier journal write failed; reopen the journal to recover")]
    Poisoned,
    /// Inconsistent [`JournalConfig`].
    #[error("bad journal configuration: {0}")]
    Config(&'static str),
}

/// Result of journal operations.
pub type Result<T> = std::result::Result<T, JournalError>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What `open` found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Segment files kept.
    pub segments: usize,
    /// Unacknowledged records.
    pub unacked: usize,
    /// The acknowledgement watermark.
    pub acked: Seq,
    /// Bytes cut from a torn tail (0 if the last append completed).
    pub truncated_bytes: u64,
    /// The segment that was cut, if any.
    pub truncated_file: Option<PathBuf>,
    /// Fully acknowledged segments deleted (left over from a crash during `ack`).
    pub removed_segments: usize,
    /// The watermark file was missing or unreadable and was rebuilt from the oldest segment:
    /// records may be uploaded twice, which the host's deduplication absorbs.
    pub ack_reset: bool,
    /// Unacknowledged seq ranges that an earlier quarantine could not read.
    pub gaps: Vec<(Seq, Seq)>,
}

/// Current usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalStats {
    /// Bytes in all segments.
    pub used_bytes: u64,
    /// [`JournalConfig::max_journal_bytes`].
    pub max_bytes: u64,
    /// Unacknowledged records.
    pub unacked: usize,
    /// Segment files.
    pub segments: usize,
    /// The watermark.
    pub acked: Seq,
    /// The seq the next append gets.
    pub next: Seq,
}

/// One unacknowledged record exactly as stored (the uploader sends these bytes verbatim, so
/// fields a newer gate wrote survive a downgrade).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// Its seq.
    pub seq: Seq,
    /// Its `record_id`.
    pub record_id: String,
    /// The JSON object.
    pub json: String,
}

/// What [`Journal::quarantine`] did to one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// The segment, now rewritten with the readable frames and gap markers.
    pub segment: PathBuf,
    /// The untouched copy of the damaged original (`None` for a gap segment written in place
    /// of missing files).
    pub copy: Option<PathBuf>,
    /// Seq ranges no readable frame covered (now gap markers).
    pub lost: Vec<(Seq, Seq)>,
    /// Readable records kept.
    pub kept: usize,
}

#[derive(Debug)]
struct Segment {
    first: u64,
    /// Last seq covered; `first - 1` while empty.
    end: u64,
    len: u64,
    path: PathBuf,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    segment: u64,
    offset: u64,
    len: usize,
    record_id: String,
}

#[derive(Deserialize)]
struct IdOnly {
    record_id: String,
}

/// The journal. One process owns a journal directory at a time (the gate); nothing enforces
/// it, because a lock file would outlive a SIGKILL and a kernel lock needs a newer toolchain
/// than the workspace allows.
#[derive(Debug)]
pub struct Journal {
    /// Held for the journal's lifetime: one process, one owner (released when dropped or when
    /// the process dies).
    _lock: File,
    dir: PathBuf,
    cfg: JournalConfig,
    segments: Vec<Segment>,
    /// The last segment, open for appending; `Some` iff `segments` is not empty.
    active: Option<File>,
    unacked: VecDeque<Entry>,
    ids: HashSet<String>,
    acked: u64,
    next: u64,
    used: u64,
    poisoned: bool,
    recovery: Recovery,
    scratch: Vec<u8>,
}

enum AckRead {
    Missing,
    Valid(u64),
    Corrupt,
}

fn read_ack(dir: &Path) -> Result<AckRead> {
    let path = dir.join(ACK_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(AckRead::Missing),
        Err(e) => return Err(io_err(&path)(e)),
    };
    if bytes.len() != 16 || &bytes[..4] != ACK_MAGIC {
        return Ok(AckRead::Corrupt);
    }
    let crc = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    if crc32fast::hash(&bytes[..12]) != crc {
        return Ok(AckRead::Corrupt);
    }
    let mut s = [0u8; 8];
    s.copy_from_slice(&bytes[4..12]);
    Ok(AckRead::Valid(u64::from_le_bytes(s)))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Writes `bytes` to `path` atomically and durably (temp file, fsync, rename, dir fsync).
fn replace_file(dir: &Path, tmp_name: &str, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(tmp_name);
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(dir)
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.{SEGMENT_EXT}")
}

/// Segment files sorted by first seq; other files are left alone.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(".seg") else {
            continue;
        };
        if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(first) = stem.parse::<u64>() {
                out.push((first, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn read_segment(path: &Path) -> Result<Vec<u8>> {
    let len = fs::metadata(path).map_err(io_err(path))?.len();
    if len > HARD_MAX_SEGMENT {
        return Err(JournalError::Corrupt {
            path: path.to_path_buf(),
            offset: HARD_MAX_SEGMENT,
            reason: "segment larger than any the journal writes",
            lost: None,
        });
    }
    fs::read(path).map_err(io_err(path))
}

/// Where segments must start: after the watermark, or right after the previous segment.
fn check_first(path: &Path, expected: u64, found: u64) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(JournalError::Discontinuous {
            path: path.to_path_buf(),
            expected,
            found,
        })
    }
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir` with default bounds and recovers it.
    pub fn open(dir: impl AsRef<Path>) -> Result<Journal> {
        Journal::open_with(dir, JournalConfig::default())
    }

    /// Opens the journal in `dir` and recovers it: truncates a torn tail of the last segment,
    /// refuses any other damage ([`JournalError::Corrupt`], nothing changed on disk), deletes
    /// segments a crash left behind after their acknowledgement. See [`Journal::recovery`].
    pub fn open_with(dir: impl AsRef<Path>, cfg: JournalConfig) -> Result<Journal> {
        cfg.check()?;
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let lock_path = dir.join("LOCK");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(JournalError::Locked { path: dir }),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        let mut recovery = Recovery::default();
        let names = list_segments(&dir)?;
        let oldest = names.first().map(|(f, _)| f.saturating_sub(1));
        let acked = match read_ack(&dir)? {
            AckRead::Valid(s) => {
                if let Some((first, path)) = names.first() {
                    // Segments are deleted only once fully acknowledged, so the oldest one
                    // starts at or before the first unacknowledged seq.
                    if *first > s + 1 {
                        return Err(JournalError::Discontinuous {
                            path: path.clone(),
                            expected: s + 1,
                            found: *first,
                        });
                    }
                }
                s
            }
            AckRead::Missing => {
                recovery.ack_reset = oldest.unwrap_or(0) > 0;
                oldest.unwrap_or(0)
            }
            AckRead::Corrupt => {
                recovery.ack_reset = true;
                oldest.unwrap_or(0)
            }
        };
        let mut j = Journal {
            _lock: lock,
            dir,
            cfg,
            segments: Vec::with_capacity(names.len()),
            active: None,
            unacked: VecDeque::new(),
            ids: HashSet::new(),
            acked,
            next: acked + 1,
            used: 0,
            poisoned: false,
            recovery,
            scratch: Vec::new(),
        };
        for (i, (first, path)) in names.iter().enumerate() {
            if let Some(prev) = j.segments.last() {
                check_first(path, prev.end + 1, *first)?;
            }
            let is_last = i + 1 == names.len();
            let limit = names.get(i + 1).map(|(f, _)| *f);
            let buf = read_segment(path)?;
            let scan = frame::scan(&buf, *first, limit);
            let mut good_len = buf.len() as u64;
            for d in &scan.damage {
                if is_last && d.to_end {
                    good_len = d.offset as u64;
                } else {
                    return Err(JournalError::Corrupt {
                        path: path.clone(),
                        offset: d.offset as u64,
                        reason: d.reason,
                        lost: d.lost,
                    });
                }
            }
            if good_len < buf.len() as u64 {
                // A torn append: this frame was never acknowledged, so cutting it loses
                // nothing anyone was told about.
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_err(path))?;
                f.set_len(good_len).map_err(io_err(path))?;
                f.sync_all().map_err(io_err(path))?;
                j.recovery.truncated_bytes = buf.len() as u64 - good_len;
                j.recovery.truncated_file = Some(path.clone());
            }
            for p in &scan.frames {
                if p.last <= j.acked {
                    continue;
                }
                if p.kind == KIND_GAP {
                    j.recovery.gaps.push((Seq(p.seq), Seq(p.last)));
                    continue;
                }
                let payload = &buf[p.offset + frame::HEADER..p.offset + p.len - 4];
                let id: IdOnly =
                    serde_json::from_slice(payload).map_err(|e| JournalError::Undecodable {
                        seq: p.seq,
                        reason: e.to_string(),
                    })?;
                j.ids.insert(id.record_id.clone());
                j.unacked.push_back(Entry {
                    seq: p.seq,
                    segment: *first,
                    offset: p.offset as u64,
                    len: p.len,
                    record_id: id.record_id,
                });
            }
            j.used += good_len;
            j.segments.push(Segment {
                first: *first,
                end: scan.next - 1,
                len: good_len,
                path: path.clone(),
            });
        }
        if let Some(last) = j.segments.last() {
            j.next = j.next.max(last.end + 1);
        }
        j.recovery.removed_segments = j.compact()?;
        if let Some(last) = j.segments.last() {
            let f = OpenOptions::new()
                .append(true)
                .open(&last.path)
                .map_err(io_err(&last.path))?;
            j.active = Some(f);
        }
        j.recovery.segments = j.segments.len();
        j.recovery.unacked = j.unacked.len();
        j.recovery.acked = Seq(j.acked);
        Ok(j)
    }

    /// What the last `open` found and did.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bounds in force.
    pub fn config(&self) -> &JournalConfig {
        &self.cfg
    }

    /// Current usage.
    pub fn stats(&self) -> JournalStats {
        JournalStats {
            used_bytes: self.used,
            max_bytes: self.cfg.max_journal_bytes,
            unacked: self.unacked.len(),
            segments: self.segments.len(),
            acked: Seq(self.acked),
            next: Seq(self.next),
        }
    }

    /// True if a record of the largest size that starts a new transaction (no `resolves`)
    /// still fits. A gate asks before it starts a tap, so that it refuses the rider up front
    /// rather than after the card was debited.
    pub fn accepts_new_taps(&self) -> bool {
        !self.poisoned
            && self.used + (self.cfg.max_record_bytes + OVERHEAD) as u64
                <= self.cfg.max_journal_bytes - self.cfg.reserve_bytes
    }

    /// True if an unacknowledged record with this id is in the journal (e.g. to decide, after
    /// a failed append and a reopen, whether the record made it).
    pub fn contains(&self, record_id: &str) -> bool {
        self.ids.contains(record_id)
    }

    /// Appends a record and returns its seq only once it is on stable storage (`fdatasync`,
    /// plus a directory `fsync` when a segment starts). Only then may the gate open.
    ///
    /// Refuses invalid records, records above the size limit, a `record_id` already waiting
    /// for upload, and records that do not fit ([`JournalError::Full`]: the gate must stop
    /// accepting taps; records that settle a pending one may use the reserve). After an I/O
    /// error the journal is [poisoned](JournalError::Poisoned): reopen it, then use
    /// [`Journal::contains`] to learn whether the record made it.
    pub fn append(&mut self, rec: &TapRecord) -> Result<Seq> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        rec.validate()?;
        if self.ids.contains(&rec.record_id) {
            return Err(JournalError::DuplicateRecordId(rec.record_id.clone()));
        }
        let json = rec.to_json();
        if json.len() > self.cfg.max_record_bytes {
            return Err(JournalError::RecordTooLarge {
                size: json.len(),
                limit: self.cfg.max_record_bytes,
            });
        }
        let needed = (json.len() + OVERHEAD) as u64;
        let limit = if rec.resolves.is_some() {
            self.cfg.max_journal_bytes
        } else {
            self.cfg.max_journal_bytes - self.cfg.reserve_bytes
        };
        if self.used + needed > limit {
            return Err(JournalError::Full {
                used: self.used,
                needed,
                limit,
            });
        }
        let roll = match self.segments.last() {
            None => true,
            Some(s) => s.len > 0 && s.len + needed > self.cfg.segment_bytes,
        };
        if roll {
            self.start_segment()?;
        }
        let seq = self.next;
        self.scratch.clear();
        frame::encode(seq, KIND_RECORD, json.as_bytes(), &mut self.scratch);
        let (Some(seg), Some(file)) = (self.segments.last_mut(), self.active.as_mut()) else {
            return Err(JournalError::Poisoned);
        };
        let written = file
            .write_all(&self.scratch)
            .and_then(|()| file.sync_data());
        if let Err(e) = written {
            // The frame may be partly on disk and fsync state is unknown after a failure;
            // try to cut it, and in any case let recovery decide on reopen.
            let _ = file.set_len(seg.len);
            self.poisoned = true;
            return Err(io_err(&seg.path)(e));
        }
        let offset = seg.len;
        seg.len += needed;
        seg.end = seq;
        self.used += needed;
        self.next += 1;
        self.ids.insert(rec.record_id.clone());
        self.unacked.push_back(Entry {
            seq,
            segment: seg.first,
            offset,
            len: self.scratch.len(),
            record_id: rec.record_id.clone(),
        });
        Ok(Seq(seq))
    }

    fn start_segment(&mut self) -> Result<()> {
        let path = self.dir.join(segment_name(self.next));
        let f = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err(&path))?;
        // The directory entry must be durable before a record in this file is acknowledged.
        sync_dir(&self.dir)?;
        self.active = Some(f);
        self.segments.push(Segment {
            first: self.next,
            end: self.next - 1,
            len: 0,
            path,
        });
        Ok(())
    }

    /// Up to `limit` unacknowledged records, oldest first, each re-read and re-checked.
    pub fn unacked(&self, limit: usize) -> Result<Vec<(Seq, TapRecord)>> {
        self.unacked_raw(limit, u64::MAX)?
            .into_iter()
            .map(|r| {
                TapRecord::from_json(&r.json)
                    .map(|t| (r.seq, t))
                    .map_err(|e| JournalError::Undecodable {
                        seq: r.seq.0,
                        reason: e.to_string(),
                    })
            })
            .collect()
    }

    /// Up to `limit` unacknowledged records as stored, oldest first, stopping before the total
    /// JSON would exceed `max_bytes` (at least one record is returned if any is waiting).
    /// Every frame is re-read from disk and its CRC checked again.
    pub fn unacked_raw(&self, limit: usize, max_bytes: u64) -> Result<Vec<RawRecord>> {
        let mut out = Vec::new();
        let mut total = 0u64;
        let mut cur: Option<(u64, File, PathBuf)> = None;
        let mut buf = Vec::new();
        for e in self.unacked.iter().take(limit) {
            if !out.is_empty() && total + (e.len - OVERHEAD) as u64 > max_bytes {
                break;
            }
            if cur.as_ref().map(|o| o.0) != Some(e.segment) {
                let path = self.dir.join(segment_name(e.segment));
                let f = File::open(&path).map_err(io_err(&path))?;
                cur = Some((e.segment, f, path));
            }
            let Some((_, f, path)) = cur.as_mut() else {
                continue;
            };
            buf.resize(e.len, 0);
            f.seek(SeekFrom::Start(e.offset))
                .and_then(|_| f.read_exact(&mut buf))
                .map_err(io_err(path))?;
            let fr: Frame<'_> = frame::decode(&buf)
                .ok()
                .filter(|fr| fr.seq == e.seq && fr.kind == KIND_RECORD)
                .ok_or_else(|| JournalError::Corrupt {
                    path: path.clone(),
                    offset: e.offset,
                    reason: "frame changed on disk since the journal was opened",
                    lost: Some((e.seq, e.seq)),
                })?;
            let json =
                String::from_utf8(fr.payload.to_vec()).map_err(|e2| JournalError::Undecodable {
                    seq: e.seq,
                    reason: e2.to_string(),
                })?;
            total += json.len() as u64;
            out.push(RawRecord {
                seq: Seq(e.seq),
                record_id: e.record_id.clone(),
                json,
            });
        }
        Ok(out)
    }

    /// The watermark: every seq up to it has been acknowledged.
    pub fn acked(&self) -> Seq {
        Seq(self.acked)
    }

    /// Records every seq up to `up_to` as acknowledged by the host, durably, then deletes the
    /// segments that hold nothing else. Acknowledging below the watermark is a no-op (the
    /// watermark never goes back). Returns the number of segments deleted.
    pub fn ack(&mut self, up_to: Seq) -> Result<usize> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        let last = self.next - 1;
        if up_to.0 > last {
            return Err(JournalError::AckBeyondEnd {
                up_to: up_to.0,
                last,
            });
        }
        if up_to.0 <= self.acked {
            return Ok(0);
        }
        let mut bytes = Vec::with_capacity(16);
        bytes.extend_from_slice(ACK_MAGIC);
        bytes.extend_from_slice(&up_to.0.to_le_bytes());
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        replace_file(&self.dir, ACK_TMP, &self.dir.join(ACK_FILE), &bytes)?;
        self.acked = up_to.0;
        while self.unacked.front().is_some_and(|e| e.seq <= up_to.0) {
            if let Some(e) = self.unacked.pop_front() {
                self.ids.remove(&e.record_id);
            }
        }
        self.compact()
    }

    /// Deletes segments whose every seq is acknowledged.
    fn compact(&mut self) -> Result<usize> {
        let n = self
            .segments
            .iter()
            .take_while(|s| s.end <= self.acked)
            .count();
        if n == 0 {
            return Ok(0);
        }
        if n == self.segments.len() {
            self.active = None;
        }
        for s in self.segments.drain(..n) {
            fs::remove_file(&s.path).map_err(io_err(&s.path))?;
            self.used -= s.len;
        }
        sync_dir(&self.dir)?;
        Ok(n)
    }

    /// Sets damaged segments aside so the journal can open again, keeping every readable
    /// record. For each segment that [`Journal::open`] refuses, the original is copied to
    /// `quarantine/` and the segment is rewritten (atomically) with its readable frames; each
    /// unreadable seq range becomes a gap marker, so seqs stay contiguous and the loss stays
    /// visible in [`Recovery::gaps`]. Missing segments between others also become gap
    /// markers. A torn tail is left for `open` to cut. Run by an operator, never implicitly.
    pub fn quarantine(dir: impl AsRef<Path>) -> Result<Vec<Quarantined>> {
        let dir = dir.as_ref();
        let names = list_segments(dir)?;
        let mut report = Vec::new();
        let mut expected = match read_ack(dir)? {
            AckRead::Valid(s) => Some(s + 1),
            AckRead::Missing | AckRead::Corrupt => None,
        };
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let qdir = dir.join(QUARANTINE_DIR);
        for (i, (first, path)) in names.iter().enumerate() {
            if let Some(exp) = expected {
                if *first > exp {
                    // Missing segment(s): a segment of its own holding one gap marker, so the
                    // damaged neighbours are never renamed.
                    let mut out = Vec::new();
                    frame::encode(exp, KIND_GAP, &(*first - 1).to_le_bytes(), &mut out);
                    let target = dir.join(segment_name(exp));
                    replace_file(dir, &format!("{}.tmp", segment_name(exp)), &target, &out)?;
                    report.push(Quarantined {
                        segment: target,
                        copy: None,
                        lost: vec![(Seq(exp), Seq(*first - 1))],
                        kept: 0,
                    });
                } else if i > 0 {
                    check_first(path, exp, *first)?;
                }
            }
            let is_last = i + 1 == names.len();
            let limit = names.get(i + 1).map(|(f, _)| *f);
            let buf = read_segment(path)?;
            let scan = frame::scan(&buf, *first, limit);
            expected = Some(scan.next);
            if scan.damage.iter().all(|d| is_last && d.to_end) {
                continue;
            }
            // Rebuild in seq order: frames and damaged regions interleaved by offset.
            let mut out = Vec::with_capacity(buf.len());
            let mut lost = Vec::new();
            let mut kept = 0usize;
            let mut gap = |d: &frame::Damage, out: &mut Vec<u8>| {
                if let Some((a, b)) = d.lost {
                    frame::encode(a, KIND_GAP, &b.to_le_bytes(), out);
                    lost.push((Seq(a), Seq(b)));
                }
            };
            let mut damage = scan.damage.iter().peekable();
            for p in &scan.frames {
                while let Some(d) = damage.next_if(|d| d.offset < p.offset) {
                    gap(d, &mut out);
                }
                out.extend_from_slice(&buf[p.offset..p.offset + p.len]);
                kept += usize::from(p.kind == KIND_RECORD);
            }
            for d in damage {
                gap(d, &mut out);
            }
            fs::create_dir_all(&qdir).map_err(io_err(&qdir))?;
            let name = segment_name(*first);
            let copy = qdir.join(format!("{name}.{stamp}"));
            fs::write(&copy, &buf).map_err(io_err(&copy))?;
            File::open(&copy)
                .and_then(|f| f.sync_all())
                .map_err(io_err(&copy))?;
            sync_dir(&qdir)?;
            replace_file(dir, &format!("{name}.tmp"), path, &out)?;
            report.push(Quarantined {
                segment: path.clone(),
                copy: Some(copy),
                lost,
                kept,
            });
        }
        Ok(report)
    }
}
