//! The gate's offline journal: every tap a gate completes (or starts and cannot finish) is
//! made durable here before the gate opens, uploaded to the host in acknowledged batches,
//! and deleted only after the host's acknowledgement. The same crate downloads blacklist and
//! fare-file updates.
//!
//! Code map:
//!
//! * [`record`]: [`TapRecord`], the clearing record (B.4.3 of the e-purse spec) and its JSON
//!   form, which the gate prints and uploads and clearing imports; plain fields only, so
//!   clearing can use it without the terminal crate.
//! * `frame` (private): the on-disk frame `len ‖ seq ‖ kind ‖ payload ‖ CRC-32` and the scanner
//!   that tells a torn tail from damage in the middle.
//! * [`journal`]: [`Journal`], segment files plus an acknowledgement watermark; `append`
//!   returns after `fdatasync`, `open` recovers, `ack` persists the watermark then compacts.
//! * [`upload`]: [`Uploader`], batches to `POST /v1/gates/{terminal}/batches`.
//! * [`download`]: [`Downloader`], `GET /v1/gates/{terminal}/updates`, version checks, and
//!   the caller's [`UpdateSink`] that applies blacklists and fare files.
//! * [`http`]: a bounded HTTP/1.1 client on `std::net::TcpStream` (plain HTTP; TLS through a
//!   local proxy).
//! * [`retry`]: exponential backoff with full jitter.
//! * `src/bin/journal-stress.rs`: appends and prints each acknowledged seq (the kill test),
//!   measures append latency (`BENCHMARKS-journal.md`), prints a sample record.
//!
//! Invariants:
//!
//! 1. A seq returned by [`Journal::append`] is on stable storage; no later crash loses it.
//! 2. Recovery cuts only a torn tail (damage at the very end of the last segment, which no
//!    caller was told about) and refuses every other damage without changing the disk.
//! 3. Seqs increase by one per record, across compaction and restarts; a seq once returned by
//!    `append` is never handed out again (only the seq of a torn, never-returned append is).
//! 4. A record leaves the journal only after the host acknowledged the batch holding it by
//!    that batch's id and record count; the watermark is durable before any file is deleted.
//! 5. Everything is bounded: record size, segment size, journal size (a full journal refuses
//!    new taps, it never drops records), batch size, HTTP headers, bodies and time.
//!
//! The protocol is documented in `crates/journal/PROTOCOL.md`.

pub mod download;
mod frame;
pub mod http;
pub mod journal;
pub mod record;
pub mod retry;
pub mod upload;

pub use download::{
    BlacklistUpdate, CardId, DownloadConfig, DownloadError, DownloadReport, Downloader, FareUpdate,
    Outcome, UpdateSink, Versions,
};
pub use journal::{
    Journal, JournalConfig, JournalError, JournalStats, Quarantined, RawRecord, Recovery, Seq,
};
pub use record::{
    Algorithm, Direction, Family, Journey, Kind, Penalty, PenaltyKind, RecordError, RecordImage,
    TapRecord,
};
pub use retry::RetryPolicy;
pub use upload::{Batch, Stopped, UploadConfig, UploadError, UploadReport, Uploader};
