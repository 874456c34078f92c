//! Where a card's state lives between transactions, and how a commit becomes durable.
//!
//! Part A, decision 8: the new state is written completely before the old one is replaced.
//! [`FileStore`] writes a temporary file, fsyncs it, renames it over the card file and fsyncs
//! the directory, so a crash at any instant leaves either the old file or the new one.

use crate::keys::CardKeys;
use crate::state::{self, CardState, StateError};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a commit did not become durable.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Power or the link was lost during the commit (simulated tear). The durable state is
    /// whatever the step reached: before the rename, the old state; after it, the new one.
    #[error("commit torn at step {0:?}")]
    Torn(CommitStep),
    /// The file system failed. `new_state_visible` is true when the failure came after the
    /// rename, so the card file already holds the new state.
    #[error("card store I/O: {source}")]
    Io {
        /// The failure.
        source: std::io::Error,
        /// True if the card file already holds the new state.
        new_state_visible: bool,
    },
}

impl StoreError {
    /// True if, despite the error, the store now holds the new state: the card must adopt it,
    /// or its memory and its file would disagree.
    pub fn new_state_visible(&self) -> bool {
        match self {
            StoreError::Torn(step) => step.is_after_durable_point(),
            StoreError::Io {
                new_state_visible, ..
            } => *new_state_visible,
        }
    }
}

fn before_rename(source: std::io::Error) -> StoreError {
    StoreError::Io {
        source,
        new_state_visible: false,
    }
}

fn after_rename(source: std::io::Error) -> StoreError {
    StoreError::Io {
        source,
        new_state_visible: true,
    }
}

/// The steps of a durable commit, in order; a tear can be injected at each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitStep {
    /// Half of the new image is written to the temporary file.
    WriteTemp,
    /// The temporary file is complete but not yet synced.
    SyncTemp,
    /// The temporary file is synced; the rename has not happened.
    Rename,
    /// The rename happened; the directory is not yet synced.
    SyncDir,
}

impl CommitStep {
    /// Every step, in order.
    pub const ALL: [CommitStep; 4] = [
        CommitStep::WriteTemp,
        CommitStep::SyncTemp,
        CommitStep::Rename,
        CommitStep::SyncDir,
    ];

    /// True if a tear at this step leaves the new state durable.
    pub fn is_after_durable_point(self) -> bool {
        matches!(self, CommitStep::SyncDir)
    }
}

/// Durable storage for one card.
pub trait CardStore {
    /// Makes `state` (with `keys`) the durable state, atomically: on error the durable state is
    /// the old one or, for a tear after the durable point, the new one, never a mixture.
    fn persist(&mut self, keys: &CardKeys, state: &CardState) -> Result<(), StoreError>;
}

/// A card kept only in memory (benchmarks, throwaway demo cards).
#[derive(Debug, Default)]
pub struct VolatileStore;

impl CardStore for VolatileStore {
    fn persist(&mut self, _keys: &CardKeys, _state: &CardState) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A card file on disk, committed by write-and-rename with fsync.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    tmp: PathBuf,
    /// `CARD.lock`, locked while this store lives: a card is in one place at a time (two
    /// processes committing to one card file would lose each other's transactions). The card
    /// file itself cannot carry the lock, because every commit replaces it.
    _lock: File,
    /// Fault injection for tests: tear the next commit at this step.
    pub tear_at: Option<CommitStep>,
}

impl FileStore {
    /// Opens an existing card file, refusing it whole if it is damaged. A temporary file left by
    /// a torn commit is discarded: the card file itself is the durable state.
    pub fn open(path: &Path) -> Result<(FileStore, CardKeys, CardState), StateError> {
        let store = FileStore::at(path)?;
        let _ = fs::remove_file(&store.tmp);
        let meta = fs::metadata(path)?;
        if meta.len() > state::MAX_FILE_LEN as u64 {
            return Err(StateError::Damaged("file too large"));
        }
        let bytes = fs::read(path)?;
        let (keys, state) = state::decode(&bytes)?;
        Ok((store, keys, state))
    }

    /// Creates a new card file; fails if one exists, so a card is never overwritten by mistake.
    pub fn create(
        path: &Path,
        keys: &CardKeys,
        state: &CardState,
    ) -> Result<FileStore, StoreError> {
        if path.exists() {
            return Err(before_rename(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} already exists", path.display()),
            )));
        }
        let mut store = FileStore::at(path).map_err(|e| match e {
            StateError::Io(source) => before_rename(source),
            other => before_rename(std::io::Error::other(other.to_string())),
        })?;
        store.persist(keys, state)?;
        Ok(store)
    }

    fn at(path: &Path) -> Result<FileStore, StateError> {
        let sibling = |ext: &str| {
            let mut p = path.as_os_str().to_owned();
            p.push(ext);
            PathBuf::from(p)
        };
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(sibling(".lock"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(StateError::Locked(path.to_owned())),
            Err(fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        Ok(FileStore {
            path: path.to_owned(),
            tmp: sibling(".tmp"),
            _lock: lock,
            tear_at: None,
        })
    }

    fn tear(&mut self, step: CommitStep) -> Result<(), StoreError> {
        if self.tear_at == Some(step) {
            self.tear_at = None;
            return Err(StoreError::Torn(step));
        }
        Ok(())
    }
}

fn open_private(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

impl CardStore for FileStore {
    fn persist(&mut self, keys: &CardKeys, state: &CardState) -> Result<(), StoreError> {
        let image = state::encode(keys, state);
        let mut f = open_private(&self.tmp).map_err(before_rename)?;
        if self.tear_at == Some(CommitStep::WriteTemp) {
            f.write_all(&image[..image.len() / 2])
                .map_err(before_rename)?;
        }
        self.tear(CommitStep::WriteTemp)?;
        f.write_all(&image).map_err(before_rename)?;
        self.tear(CommitStep::SyncTemp)?;
        f.sync_all().map_err(before_rename)?;
        drop(f);
        self.tear(CommitStep::Rename)?;
        fs::rename(&self.tmp, &self.path).map_err(before_rename)?;
        self.tear(CommitStep::SyncDir)?;
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(after_rename)?;
        Ok(())
    }
}

/// An in-memory store that keeps the durable image as bytes and can tear any commit: the
/// simulation counterpart of [`FileStore`], used by seeded tear tests.
#[derive(Default)]
pub struct SimStore {
    durable: Vec<u8>,
    /// Tear the next commit at this step.
    pub tear_at: Option<CommitStep>,
    /// Commits that became durable.
    pub commits: u64,
}

impl SimStore {
    /// A store holding `keys` and `state` as its durable image.
    pub fn new(keys: &CardKeys, state: &CardState) -> SimStore {
        SimStore {
            durable: state::encode(keys, state),
            tear_at: None,
            commits: 0,
        }
    }

    /// The durable image, as a card would find it after power returns.
    pub fn load(&self) -> Result<(CardKeys, CardState), StateError> {
        state::decode(&self.durable)
    }
}

impl CardStore for SimStore {
    fn persist(&mut self, keys: &CardKeys, state: &CardState) -> Result<(), StoreError> {
        if let Some(step) = self.tear_at.take() {
            if step.is_after_durable_point() {
                self.durable = state::encode(keys, state);
                self.commits += 1;
            }
            return Err(StoreError::Torn(step));
        }
        self.durable = state::encode(keys, state);
        self.commits += 1;
        Ok(())
    }
}
