//! [`Uploader`]: sends unacknowledged journal records to the host in batches and acknowledges
//! them in the journal only after the host's matching acknowledgement (protocol:
//! `crates/journal/PROTOCOL.md`).
//!
//! Invariant: `Journal::ack` is called with a batch's last seq only after a `200` whose `ack`
//! equals that batch's id and whose `accepted + duplicates` equals its record count. Anything
//! else (no answer, a wrong id, wrong counts, 5xx) keeps the records and is retried; a 4xx
//! other than 408/429 keeps them too but is not retried (the same bytes would be refused
//! again) and holds the batch back for [`UploadConfig::rejected_hold_off`].

use crate::http::{self, Endpoint, HttpConfig, HttpError};
use crate::journal::{Journal, JournalError, RawRecord, Seq};
use crate::retry::{self, Backoff, Class, RetryPolicy, Sleeper};
use serde::Deserialize;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Upload settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadConfig {
    /// Host base URL, `http://host[:port][/path]` (TLS via a local proxy).
    pub base_url: String,
    /// This gate's PSAM terminal number (path segment and batch field).
    pub terminal: [u8; 6],
    /// Most records per batch. Default 500.
    pub max_batch_records: usize,
    /// Most record JSON bytes per batch. Default 512 KiB.
    pub max_batch_bytes: u64,
    /// Most batches per `run_once`, so one cycle is bounded even with a large backlog.
    /// Default 200.
    pub max_batches_per_cycle: usize,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// HTTP timeouts and bounds.
    pub http: HttpConfig,
    /// After a permanent rejection, how long the same batch is held back before it is tried
    /// again (an operator may fix the host meanwhile). Default 10 minutes.
    pub rejected_hold_off: Duration,
}

impl UploadConfig {
    /// Defaults for a host at `base_url` and this terminal.
    pub fn new(base_url: impl Into<String>, terminal: [u8; 6]) -> UploadConfig {
        UploadConfig {
            base_url: base_url.into(),
            terminal,
            max_batch_records: 500,
            max_batch_bytes: 512 << 10,
            max_batches_per_cycle: 200,
            retry: RetryPolicy::default(),
            http: HttpConfig::default(),
            rejected_hold_off: Duration::from_secs(600),
        }
    }
}

/// Why a cycle stopped before the journal was empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// Every attempt for this batch failed transiently; the next cycle tries again.
    Unreachable {
        /// The batch.
        batch_id: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last_error: String,
    },
    /// The host refused the batch (4xx). Records kept; alert an operator.
    Rejected {
        /// The batch.
        batch_id: String,
        /// HTTP status.
        status: u16,
        /// The host's `error` text.
        error: String,
    },
    /// The batch was refused earlier and its hold-off has not passed: nothing was sent.
    HeldOff {
        /// The batch.
        batch_id: String,
        /// Time left.
        remaining: Duration,
    },
    /// [`UploadConfig::max_batches_per_cycle`] reached.
    CycleLimit,
}

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadReport {
    /// Batches acknowledged.
    pub batches: usize,
    /// Records acknowledged (and deleted from the journal's unacked set).
    pub records: usize,
    /// Sum of `accepted` in acknowledgements.
    pub accepted: u64,
    /// Sum of `duplicates` in acknowledgements.
    pub duplicates: u64,
    /// HTTP requests made.
    pub attempts: u32,
    /// Backoff delays waited, in order.
    pub backoffs: Vec<Duration>,
    /// Unacknowledged records left.
    pub remaining: usize,
    /// Why the cycle stopped early, if it did.
    pub stopped: Option<Stopped>,
}

/// Why a cycle could not run at all.
#[derive(Debug, Error)]
pub enum UploadError {
    /// The journal failed (reading records or persisting the acknowledgement).
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The configuration is unusable.
    #[error("upload configuration: {0}")]
    Config(String),
}

/// A batch as built from the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// `{terminal}-{first seq}-{last seq}-{CRC-32 of the records}`: deterministic, so a resend
    /// after a crash carries the same id and the same bytes.
    pub batch_id: String,
    /// Last seq in the batch (what `Journal::ack` gets).
    pub last: Seq,
    /// Records in it.
    pub count: usize,
    /// The request body.
    pub body: Vec<u8>,
}

impl Batch {
    /// Builds the batch body from stored records (sent verbatim: they are already JSON).
    pub fn build(terminal: [u8; 6], records: &[RawRecord]) -> Option<Batch> {
        let (first, last) = (records.first()?.seq, records.last()?.seq);
        let mut joined = String::with_capacity(records.iter().map(|r| r.json.len() + 1).sum());
        for (i, r) in records.iter().enumerate() {
            if i > 0 {
                joined.push(',');
            }
            joined.push_str(&r.json);
        }
        let term = onecard_proto::hex::encode(&terminal);
        let batch_id = format!(
            "{term}-{}-{}-{:08X}",
            first.0,
            last.0,
            crc32fast::hash(joined.as_bytes())
        );
        let body = format!(
            "{{\"batch_id\":\"{batch_id}\",\"terminal\":\"{term}\",\"records\":[{joined}]}}"
        );
        Some(Batch {
            batch_id,
            last,
            count: records.len(),
            body: body.into_bytes(),
        })
    }
}

/// The host's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AckBody {
    /// The batch id acknowledged.
    pub ack: String,
    /// Records new to the host.
    pub accepted: u64,
    /// Records the host already had (by `record_id`).
    pub duplicates: u64,
}

/// How a cycle reaches the journal: exclusively, or through a lock taken per step.
trait Access {
    fn read(&mut self, records: usize, bytes: u64) -> Result<Vec<RawRecord>, JournalError>;
    fn ack(&mut self, up_to: Seq) -> Result<usize, JournalError>;
    fn unacked(&mut self) -> Result<usize, JournalError>;
}

impl Access for &mut Journal {
    fn read(&mut self, records: usize, bytes: u64) -> Result<Vec<RawRecord>, JournalError> {
        self.unacked_raw(records, bytes)
    }

    fn ack(&mut self, up_to: Seq) -> Result<usize, JournalError> {
        Journal::ack(self, up_to)
    }

    fn unacked(&mut self) -> Result<usize, JournalError> {
        Ok(self.stats().unacked)
    }
}

impl Access for &Mutex<Journal> {
    fn read(&mut self, records: usize, bytes: u64) -> Result<Vec<RawRecord>, JournalError> {
        // A panic while holding the lock poisons it; the journal's own state is still
        // consistent on disk, but this process should reopen it, as after a failed write.
        self.lock()
            .map_err(|_| JournalError::Poisoned)?
            .unacked_raw(records, bytes)
    }

    fn ack(&mut self, up_to: Seq) -> Result<usize, JournalError> {
        self.lock().map_err(|_| JournalError::Poisoned)?.ack(up_to)
    }

    fn unacked(&mut self) -> Result<usize, JournalError> {
        Ok(self
            .lock()
            .map_err(|_| JournalError::Poisoned)?
            .stats()
            .unacked)
    }
}

enum Attempt {
    Acked(AckBody),
    Transient(String),
    Permanent(u16, String),
}

/// The upload client.
pub struct Uploader {
    ep: Endpoint,
    cfg: UploadConfig,
    path: String,
    backoff: Backoff,
    sleep: Sleeper,
    rejected: Option<(String, Instant)>,
}

impl std::fmt::Debug for Uploader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploader")
            .field("ep", &self.ep)
            .field("cfg", &self.cfg)
            .field("rejected", &self.rejected)
            .finish_non_exhaustive()
    }
}

impl Uploader {
    /// A client with OS-seeded jitter and real sleeps.
    pub fn new(cfg: UploadConfig) -> Result<Uploader, UploadError> {
        let ep = Endpoint::parse(&cfg.base_url).map_err(|e| UploadError::Config(e.to_string()))?;
        if cfg.max_batch_records == 0 || cfg.retry.max_attempts == 0 {
            return Err(UploadError::Config(
                "max_batch_records and retry.max_attempts must be at least 1".into(),
            ));
        }
        let path = format!(
            "/v1/gates/{}/batches",
            onecard_proto::hex::encode(&cfg.terminal)
        );
        Ok(Uploader {
            ep,
            cfg,
            path,
            backoff: Backoff::from_os(),
            sleep: retry::thread_sleeper(),
            rejected: None,
        })
    }

    /// Fixes the jitter seed (tests, simulations).
    pub fn with_seed(mut self, seed: u64) -> Uploader {
        self.backoff = Backoff::seeded(seed);
        self
    }

    /// Replaces the sleeper (tests record delays instead of waiting).
    pub fn with_sleeper(mut self, sleep: impl FnMut(Duration) + Send + 'static) -> Uploader {
        self.sleep = Box::new(sleep);
        self
    }

    /// Sends every unacknowledged record, batch by batch, oldest first, and acknowledges each
    /// batch in the journal once the host acknowledged it. Stops at the first batch that
    /// cannot be delivered (later records never overtake earlier ones), after at most
    /// [`UploadConfig::max_batches_per_cycle`] batches.
    ///
    /// This holds the journal for the whole cycle, network waits included; a gate that taps
    /// while it uploads uses [`Uploader::run_once_shared`] instead.
    pub fn run_once(&mut self, journal: &mut Journal) -> Result<UploadReport, UploadError> {
        self.cycle(journal)
    }

    /// As [`Uploader::run_once`], but locks the journal only to read a batch and to record its
    /// acknowledgement, never across network exchanges, so appends (taps) go on meanwhile.
    pub fn run_once_shared(
        &mut self,
        journal: &Mutex<Journal>,
    ) -> Result<UploadReport, UploadError> {
        self.cycle(journal)
    }

    fn cycle(&mut self, mut journal: impl Access) -> Result<UploadReport, UploadError> {
        let mut report = UploadReport::default();
        for _ in 0..self.cfg.max_batches_per_cycle {
            let raw = journal.read(self.cfg.max_batch_records, self.cfg.max_batch_bytes)?;
            let Some(batch) = Batch::build(self.cfg.terminal, &raw) else {
                report.remaining = journal.unacked()?;
                return Ok(report);
            };
            if let Some((id, at)) = &self.rejected {
                if *id == batch.batch_id {
                    let waited = at.elapsed();
                    if waited < self.cfg.rejected_hold_off {
                        report.stopped = Some(Stopped::HeldOff {
                            batch_id: batch.batch_id,
                            remaining: self.cfg.rejected_hold_off - waited,
                        });
                        report.remaining = journal.unacked()?;
                        return Ok(report);
                    }
                }
                self.rejected = None;
            }
            match self.deliver(&batch, &mut report) {
                Ok(ack) => {
                    journal.ack(batch.last)?;
                    report.batches += 1;
                    report.records += batch.count;
                    report.accepted += ack.accepted;
                    report.duplicates += ack.duplicates;
                }
                Err(stop) => {
                    if let Stopped::Rejected { batch_id, .. } = &stop {
                        self.rejected = Some((batch_id.clone(), Instant::now()));
                    }
                    report.stopped = Some(stop);
                    report.remaining = journal.unacked()?;
                    return Ok(report);
                }
            }
        }
        report.remaining = journal.unacked()?;
        if report.remaining > 0 {
            report.stopped = Some(Stopped::CycleLimit);
        }
        Ok(report)
    }

    fn deliver(&mut self, batch: &Batch, report: &mut UploadReport) -> Result<AckBody, Stopped> {
        let mut last_error = String::new();
        for attempt in 1..=self.cfg.retry.max_attempts {
            if attempt > 1 {
                let d = self.backoff.delay(&self.cfg.retry, attempt - 1);
                report.backoffs.push(d);
                (self.sleep)(d);
            }
            report.attempts += 1;
            match self.attempt(batch) {
                Attempt::Acked(ack) => return Ok(ack),
                Attempt::Transient(e) => last_error = e,
                Attempt::Permanent(status, error) => {
                    return Err(Stopped::Rejected {
                        batch_id: batch.batch_id.clone(),
                        status,
                        error,
                    })
                }
            }
        }
        Err(Stopped::Unreachable {
            batch_id: batch.batch_id.clone(),
            attempts: self.cfg.retry.max_attempts,
            last_error,
        })
    }

    fn attempt(&self, batch: &Batch) -> Attempt {
        let rsp = match http::exchange(
            &self.ep,
            &self.cfg.http,
            "POST",
            &self.path,
            Some(("application/json", &batch.body)),
        ) {
            Ok(r) => r,
            Err(e @ HttpError::BadUrl(_)) => return Attempt::Permanent(0, e.to_string()),
            Err(e) => return Attempt::Transient(e.to_string()),
        };
        match retry::classify(rsp.status) {
            Class::Transient => {
                return Attempt::Transient(format!(
                    "HTTP {}: {}",
                    rsp.status,
                    retry::error_text(&rsp.body)
                ))
            }
            Class::Permanent => {
                return Attempt::Permanent(rsp.status, retry::error_text(&rsp.body))
            }
            Class::Answer if rsp.status != 200 => {
                return Attempt::Transient(format!("unexpected HTTP {}", rsp.status))
            }
            Class::Answer => {}
        }
        let ack: AckBody = match serde_json::from_slice(&rsp.body) {
            Ok(a) => a,
            Err(e) => return Attempt::Transient(format!("unreadable acknowledgement: {e}")),
        };
        if ack.ack != batch.batch_id {
            return Attempt::Transient(format!(
                "acknowledgement names {:?}, not {:?}",
                ack.ack.chars().take(100).collect::<String>(),
                batch.batch_id
            ));
        }
        if ack.accepted.checked_add(ack.duplicates) != Some(batch.count as u64) {
            return Attempt::Transient(format!(
                "acknowledgement counts {} + {} for {} records",
                ack.accepted, ack.duplicates, batch.count
            ));
        }
        Attempt::Acked(ack)
    }
}
