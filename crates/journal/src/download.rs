//! [`Downloader`]: fetches blacklist and fare-file updates with versions and hands them to the
//! gate through [`UpdateSink`] (protocol: `crates/journal/PROTOCOL.md`).
//!
//! Invariants: a version never goes backwards (an update not newer than what the sink holds is
//! refused, whatever the host says); a blacklist delta is applied only on top of exactly the
//! version it was made from; the sink decides whether an update is good (it parses the fare
//! file, swaps lists atomically …) and its refusal keeps the old version in force.

use crate::http::{self, Endpoint, HttpConfig, HttpError};
use crate::retry::{self, Backoff, Class, RetryPolicy, Sleeper};
use serde::Deserialize;
use std::time::Duration;
use thiserror::Error;

/// Most cards one blacklist answer may carry (adds plus removes).
pub const MAX_BLACKLIST_ENTRIES: usize = 200_000;

/// The versions a gate holds (0 = none yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Versions {
    /// Blacklist version.
    pub blacklist: u64,
    /// Fare file version.
    pub fares: u64,
}

/// A card on a blacklist: issuer identifier (8 bytes, 0x15 bytes 0..8) and application serial
/// (10 bytes, 0x15 bytes 10..20), because serials are unique only within an issuer.
pub type CardId = ([u8; 8], [u8; 10]);

/// A blacklist update: a delta from `base_version`, or the full list when that is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlacklistUpdate {
    /// The version after applying.
    pub version: u64,
    /// The version the delta applies to; `None`: `add` is the complete list.
    pub base_version: Option<u64>,
    /// Cards to add.
    pub add: Vec<CardId>,
    /// Cards to remove.
    pub remove: Vec<CardId>,
}

/// A fare-file update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FareUpdate {
    /// City id.
    pub city: String,
    /// Version.
    pub version: u64,
    /// The city file (TOML, `crates/fares/FORMAT.md`).
    pub toml: String,
}

/// What the gate supplies: its versions and how to apply updates. An `Err` refuses the update
/// (the old version stays in force and the next check asks again).
pub trait UpdateSink {
    /// Versions in force.
    fn versions(&self) -> Versions;
    /// Applies a blacklist update (already checked against [`UpdateSink::versions`]).
    fn apply_blacklist(&mut self, update: &BlacklistUpdate) -> Result<(), String>;
    /// Applies a fare file (already checked against [`UpdateSink::versions`]).
    fn apply_fares(&mut self, update: &FareUpdate) -> Result<(), String>;
}

/// What happened to one kind of update.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Outcome {
    /// Nothing newer.
    #[default]
    UpToDate,
    /// Applied.
    Applied {
        /// Version before.
        from: u64,
        /// Version now.
        to: u64,
    },
    /// Offered but not applied.
    Refused {
        /// Why.
        reason: String,
    },
}

/// What one check did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownloadReport {
    /// Blacklist.
    pub blacklist: Outcome,
    /// Fares.
    pub fares: Outcome,
    /// HTTP requests made.
    pub attempts: u32,
    /// Backoff delays waited.
    pub backoffs: Vec<Duration>,
}

/// Why a check failed.
#[derive(Debug, Error)]
pub enum DownloadError {
    /// Every attempt failed transiently.
    #[error("host unreachable after {attempts} attempts: {last_error}")]
    Unreachable {
        /// Attempts made.
        attempts: u32,
        /// Last failure.
        last_error: String,
    },
    /// The host refused the request (4xx).
    #[error("host refused the update request: HTTP {status}: {error}")]
    Rejected {
        /// Status.
        status: u16,
        /// Error text.
        error: String,
    },
    /// The configuration is unusable.
    #[error("download configuration: {0}")]
    Config(String),
}

/// Download settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadConfig {
    /// Host base URL (TLS via a local proxy).
    pub base_url: String,
    /// This gate's PSAM terminal number.
    pub terminal: [u8; 6],
    /// Retries.
    pub retry: RetryPolicy,
    /// HTTP bounds; the default body limit is raised to 8 MiB for fare files.
    pub http: HttpConfig,
}

impl DownloadConfig {
    /// Defaults for a host at `base_url` and this terminal.
    pub fn new(base_url: impl Into<String>, terminal: [u8; 6]) -> DownloadConfig {
        DownloadConfig {
            base_url: base_url.into(),
            terminal,
            retry: RetryPolicy::default(),
            http: HttpConfig {
                max_body_bytes: 8 << 20,
                ..HttpConfig::default()
            },
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdatesBody {
    #[serde(default)]
    blacklist: Option<BlacklistJson>,
    #[serde(default)]
    fares: Option<FaresJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlacklistJson {
    version: u64,
    #[serde(default)]
    base_version: Option<u64>,
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaresJson {
    city: String,
    version: u64,
    toml: String,
}

/// Cards as 36 upper-case hex digits: issuer identifier (16) then application serial (20).
fn cards(list: &[String]) -> Result<Vec<CardId>, String> {
    list.iter()
        .map(|s| {
            if s.len() != 36 || !crate::record::is_upper_hex(s) {
                return Err(format!(
                    "card {:?} is not 36 upper-case hex digits (issuer then serial)",
                    s.chars().take(40).collect::<String>()
                ));
            }
            let issuer =
                onecard_proto::hex::decode_array::<8>(&s[..16]).map_err(|e| e.to_string())?;
            let serial =
                onecard_proto::hex::decode_array::<10>(&s[16..]).map_err(|e| e.to_string())?;
            Ok((issuer, serial))
        })
        .collect()
}

/// The download client.
pub struct Downloader {
    ep: Endpoint,
    cfg: DownloadConfig,
    backoff: Backoff,
    sleep: Sleeper,
}

impl std::fmt::Debug for Downloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downloader")
            .field("ep", &self.ep)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Downloader {
    /// A client with OS-seeded jitter and real sleeps.
    pub fn new(cfg: DownloadConfig) -> Result<Downloader, DownloadError> {
        let ep =
            Endpoint::parse(&cfg.base_url).map_err(|e| DownloadError::Config(e.to_string()))?;
        if cfg.retry.max_attempts == 0 {
            return Err(DownloadError::Config(
                "retry.max_attempts must be at least 1".into(),
            ));
        }
        Ok(Downloader {
            ep,
            cfg,
            backoff: Backoff::from_os(),
            sleep: retry::thread_sleeper(),
        })
    }

    /// Fixes the jitter seed.
    pub fn with_seed(mut self, seed: u64) -> Downloader {
        self.backoff = Backoff::seeded(seed);
        self
    }

    /// Replaces the sleeper.
    pub fn with_sleeper(mut self, sleep: impl FnMut(Duration) + Send + 'static) -> Downloader {
        self.sleep = Box::new(sleep);
        self
    }

    /// Asks the host for anything newer than the sink's versions and applies what passes the
    /// version checks. A malformed answer counts as a transient failure (a proxy may have
    /// mangled it); a malformed *part* (one bad serial, say) refuses that part only.
    pub fn check(&mut self, sink: &mut dyn UpdateSink) -> Result<DownloadReport, DownloadError> {
        let mut report = DownloadReport::default();
        let have = sink.versions();
        let path = format!(
            "/v1/gates/{}/updates?blacklist_version={}&fares_version={}",
            onecard_proto::hex::encode(&self.cfg.terminal),
            have.blacklist,
            have.fares
        );
        let mut last_error = String::new();
        let mut body = None;
        for attempt in 1..=self.cfg.retry.max_attempts {
            if attempt > 1 {
                let d = self.backoff.delay(&self.cfg.retry, attempt - 1);
                report.backoffs.push(d);
                (self.sleep)(d);
            }
            report.attempts += 1;
            let rsp = match http::exchange(&self.ep, &self.cfg.http, "GET", &path, None) {
                Ok(r) => r,
                Err(e @ HttpError::BadUrl(_)) => return Err(DownloadError::Config(e.to_string())),
                Err(e) => {
                    last_error = e.to_string();
                    continue;
                }
            };
            match retry::classify(rsp.status) {
                Class::Answer if rsp.status == 304 => return Ok(report),
                Class::Answer if rsp.status == 200 => {
                    match serde_json::from_slice::<UpdatesBody>(&rsp.body) {
                        Ok(b) => {
                            body = Some(b);
                            break;
                        }
                        Err(e) => last_error = format!("unreadable updates answer: {e}"),
                    }
                }
                Class::Answer => last_error = format!("unexpected HTTP {}", rsp.status),
                Class::Transient => {
                    last_error = format!("HTTP {}: {}", rsp.status, retry::error_text(&rsp.body))
                }
                Class::Permanent => {
                    return Err(DownloadError::Rejected {
                        status: rsp.status,
                        error: retry::error_text(&rsp.body),
                    })
                }
            }
        }
        let Some(body) = body else {
            return Err(DownloadError::Unreachable {
                attempts: report.attempts,
                last_error,
            });
        };
        if let Some(b) = body.blacklist {
            report.blacklist = apply_blacklist(sink, have.blacklist, b);
        }
        if let Some(f) = body.fares {
            report.fares = apply_fares(sink, have.fares, f);
        }
        Ok(report)
    }
}

fn apply_blacklist(sink: &mut dyn UpdateSink, have: u64, b: BlacklistJson) -> Outcome {
    let refuse = |reason: String| Outcome::Refused { reason };
    if b.version <= have {
        return refuse(format!(
            "blacklist version {} is not newer than {have}",
            b.version
        ));
    }
    if let Some(base) = b.base_version {
        if base != have {
            return refuse(format!(
                "blacklist delta from version {base} cannot apply to version {have}"
            ));
        }
    }
    if b.add.len() + b.remove.len() > MAX_BLACKLIST_ENTRIES {
        return refuse("blacklist answer above the entry limit".into());
    }
    if b.base_version.is_none() && !b.remove.is_empty() {
        return refuse("a full blacklist cannot remove entries".into());
    }
    let update = match (cards(&b.add), cards(&b.remove)) {
        (Ok(add), Ok(remove)) => BlacklistUpdate {
            version: b.version,
            base_version: b.base_version,
            add,
            remove,
        },
        (Err(e), _) | (_, Err(e)) => return refuse(e),
    };
    match sink.apply_blacklist(&update) {
        Ok(()) => Outcome::Applied {
            from: have,
            to: b.version,
        },
        Err(reason) => refuse(reason),
    }
}

fn apply_fares(sink: &mut dyn UpdateSink, have: u64, f: FaresJson) -> Outcome {
    if f.version <= have {
        return Outcome::Refused {
            reason: format!("fare file version {} is not newer than {have}", f.version),
        };
    }
    if f.city.is_empty() || f.city.len() > crate::record::MAX_NAME_LEN || f.toml.is_empty() {
        return Outcome::Refused {
            reason: "fare update without a city or a file".into(),
        };
    }
    let update = FareUpdate {
        city: f.city,
        version: f.version,
        toml: f.toml,
    };
    match sink.apply_fares(&update) {
        Ok(()) => Outcome::Applied {
            from: have,
            to: update.version,
        },
        Err(reason) => Outcome::Refused { reason },
    }
}
