//! Talking to the host when the network is there: journal upload (PROTOCOL.md of
//! `onecard-journal`) and blacklist / fare-file downloads, applied atomically and never going
//! backwards. Nothing here is on the tap path.

use crate::pending::PendingSet;
use onecard_blacklist::{Blacklist, Delta, Entry, List};
use onecard_journal::download::{BlacklistUpdate, FareUpdate, UpdateSink, Versions};
use onecard_journal::{Journal, TapRecord, UploadConfig, UploadReport, Uploader};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File names inside a gate's journal directory.
pub const BLACKLIST_FILE: &str = "blacklist.bin";
/// Pending debits carried past an upload.
pub const PENDING_FILE: &str = "pending.json";

/// Why a sync step failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Journal.
    #[error("journal: {0}")]
    Journal(#[from] onecard_journal::JournalError),
    /// Upload.
    #[error("upload: {0}")]
    Upload(#[from] onecard_journal::UploadError),
    /// Pending carry file.
    #[error("pending debits: {0}")]
    Pending(#[from] std::io::Error),
}

/// Carries unresolved pending debits into `pending.json`, so acknowledging (and so dropping)
/// their journal records cannot make the gate forget them.
pub fn carry_pending(journal: &Journal) -> Result<usize, SyncError> {
    let journaled: Vec<TapRecord> = journal
        .unacked(usize::MAX)?
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    let pending = PendingSet::load(&journal.dir().join(PENDING_FILE), &journaled)?;
    if !pending.items().is_empty() {
        pending.save()?;
    }
    Ok(pending.items().len())
}

/// One upload cycle with the default retry policy: carry pending debits, then send every
/// unacknowledged record.
pub fn upload(
    journal: &mut Journal,
    base_url: &str,
    terminal: [u8; 6],
) -> Result<UploadReport, SyncError> {
    upload_with(journal, UploadConfig::new(base_url, terminal))
}

/// [`upload`] with a chosen configuration (a gate between riders uses one short attempt, so
/// a dead network never holds up the next tap for long).
pub fn upload_with(journal: &mut Journal, cfg: UploadConfig) -> Result<UploadReport, SyncError> {
    carry_pending(journal)?;
    let mut up = Uploader::new(cfg)?;
    Ok(up.run_once(journal)?)
}

/// The gate's side of downloads: its blacklist and fare file, stored beside the journal.
pub struct GateUpdates {
    dir: PathBuf,
    city_id: String,
    blacklist: Option<Arc<Blacklist>>,
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(d) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::File::open(d)?.sync_all()?;
    }
    Ok(())
}

impl GateUpdates {
    /// Updates for the gate whose files live in `dir`; `blacklist` is the list the running gate
    /// reads, replaced in place when a new version arrives.
    pub fn new(dir: &Path, city_id: &str, blacklist: Option<Arc<Blacklist>>) -> GateUpdates {
        GateUpdates {
            dir: dir.to_owned(),
            city_id: city_id.to_string(),
            blacklist,
        }
    }

    /// The downloaded fare file of the city, if any, with its version.
    pub fn fares(&self) -> Option<(u64, String)> {
        let v = fs::read_to_string(self.fares_version_path())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some((v, fs::read_to_string(self.fares_path()).ok()?))
    }

    fn fares_path(&self) -> PathBuf {
        self.dir.join(format!("fares-{}.toml", self.city_id))
    }

    fn fares_version_path(&self) -> PathBuf {
        self.dir.join(format!("fares-{}.version", self.city_id))
    }

    fn current_list(&self) -> Result<List, String> {
        match &self.blacklist {
            Some(b) => Ok((*b.snapshot()).clone()),
            None => match List::load(self.dir.join(BLACKLIST_FILE)) {
                Ok(l) => Ok(l),
                Err(_) if !self.dir.join(BLACKLIST_FILE).exists() => Ok(List::empty(0)),
                Err(e) => Err(e.to_string()),
            },
        }
    }
}

fn entries(cards: &[onecard_journal::CardId]) -> Vec<Entry> {
    cards.iter().map(|(i, s)| Entry::new(*i, *s)).collect()
}

impl UpdateSink for GateUpdates {
    fn versions(&self) -> Versions {
        Versions {
            blacklist: self.current_list().map(|l| l.version()).unwrap_or(0),
            fares: self.fares().map_or(0, |(v, _)| v),
        }
    }

    fn apply_blacklist(&mut self, u: &BlacklistUpdate) -> Result<(), String> {
        let new = match u.base_version {
            Some(from) => self
                .current_list()?
                .apply(&Delta {
                    from_version: from,
                    to_version: u.version,
                    add: entries(&u.add),
                    remove: entries(&u.remove),
                })
                .map_err(|e| e.to_string())?,
            None => List::from_entries(u.version, entries(&u.add)).map_err(|e| e.to_string())?,
        };
        // Durable first: a restart must not fall back to an older list than the one in use.
        new.save(self.dir.join(BLACKLIST_FILE))
            .map_err(|e| e.to_string())?;
        if let Some(b) = &self.blacklist {
            b.replace(new).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn apply_fares(&mut self, u: &FareUpdate) -> Result<(), String> {
        if u.city != self.city_id {
            return Err(format!(
                "fare file for {}, this gate is in {}",
                u.city, self.city_id
            ));
        }
        // A file that does not load is refused; the one in force stays.
        let city = onecard_fares::builtin::city_from_toml(&u.toml).map_err(|e| e.to_string())?;
        if city.rules.id != self.city_id {
            return Err(format!("fare file says it is for {}", city.rules.id));
        }
        write_atomic(&self.fares_path(), u.toml.as_bytes()).map_err(|e| e.to_string())?;
        write_atomic(
            &self.fares_version_path(),
            format!("{}\n", u.version).as_bytes(),
        )
        .map_err(|e| e.to_string())?;
        Ok(())
    }
}
