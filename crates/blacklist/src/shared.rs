//! [`Blacklist`]: the current [`List`] shared between the gate's lookup threads and the thread
//! that applies downloads.
//!
//! The current list sits behind `RwLock<Arc<List>>`. A writer builds the next list completely,
//! outside any lock readers wait on, then swaps the `Arc` under the write lock (a pointer
//! store) and bumps a generation counter. A list is immutable once built, so every lookup runs
//! on exactly one version: the old one or the new one, never a mix, whatever the delta's size.
//!
//! Readers on the hot path use a [`Reader`]: it keeps its own `Arc` to the list and checks the
//! generation with one atomic load per lookup, taking the read lock only after a swap. That
//! keeps the lookup free of shared-cache-line writes (an `RwLock` read is an atomic
//! read-modify-write that bounces between cores).
//!
//! Writers are serialised by a mutex, so two deltas built from the same version cannot both be
//! published. The memory of a replaced list is freed by whichever thread drops its last `Arc`:
//! the writer, or a reader refreshing after the swap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::entry::Entry;
use crate::error::Error;
use crate::list::{Delta, List};

/// The gate's blacklist: one current [`List`], replaced atomically.
#[derive(Debug)]
pub struct Blacklist {
    current: RwLock<Arc<List>>,
    /// Incremented after every swap; a [`Reader`] compares it with the one it cached.
    generation: AtomicU64,
    /// Held for the whole of an apply or replace.
    writer: Mutex<()>,
}

impl Blacklist {
    /// A blacklist holding `list`.
    pub fn new(list: List) -> Blacklist {
        Blacklist {
            current: RwLock::new(Arc::new(list)),
            generation: AtomicU64::new(0),
            writer: Mutex::new(()),
        }
    }

    /// The current list. Holding it pins that version: lookups on it stay consistent with
    /// each other while newer versions are published.
    pub fn snapshot(&self) -> Arc<List> {
        // A panic elsewhere cannot leave the Arc half-written, so a poisoned lock is usable.
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The current version.
    pub fn version(&self) -> u64 {
        self.snapshot().version()
    }

    /// True if the card is on the current list.
    pub fn contains(&self, entry: &Entry) -> bool {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(entry)
    }

    /// Applies `delta` to the current list and publishes the result; returns the new version.
    /// On any error nothing changes. Readers keep answering from the old list until the swap.
    pub fn apply(&self, delta: &Delta) -> Result<u64, Error> {
        let _w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let next = self.snapshot().apply(delta)?;
        let version = next.version();
        self.publish(next);
        Ok(version)
    }

    /// Replaces the list with a full snapshot, which must be newer than the current one.
    ///
    /// Until the last reader lets go of the old list both are resident: plan for twice
    /// [`List::resident_bytes`] at that moment.
    pub fn replace(&self, list: List) -> Result<(), Error> {
        let _w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.snapshot().version();
        if list.version() <= current {
            return Err(Error::NotNewer {
                current,
                offered: list.version(),
            });
        }
        self.publish(list);
        Ok(())
    }

    fn publish(&self, next: List) {
        let old = {
            let mut cur = self.current.write().unwrap_or_else(PoisonError::into_inner);
            std::mem::replace(&mut *cur, Arc::new(next))
        };
        self.generation.fetch_add(1, Ordering::Release);
        // Dropped after the lock is released, so freeing never delays readers.
        drop(old);
    }

    /// A lookup handle for one thread.
    pub fn reader(self: &Arc<Self>) -> Reader {
        let generation = self.generation.load(Ordering::Acquire);
        Reader {
            list: self.snapshot(),
            generation,
            shared: Arc::clone(self),
        }
    }
}

/// A thread's lookup handle: answers from its own `Arc` of the current list and refreshes it
/// when a new version has been published.
#[derive(Debug, Clone)]
pub struct Reader {
    shared: Arc<Blacklist>,
    list: Arc<List>,
    generation: u64,
}

impl Reader {
    /// The current list, refreshed if a new one was published since the last call.
    #[inline]
    pub fn list(&mut self) -> &List {
        let g = self.shared.generation.load(Ordering::Acquire);
        if g != self.generation {
            // Loaded before the snapshot: if another swap lands in between, the next call
            // sees a newer generation and refreshes again, never the reverse.
            self.list = self.shared.snapshot();
            self.generation = g;
        }
        &self.list
    }

    /// True if the card is on the current list.
    #[inline]
    pub fn contains(&mut self, entry: &Entry) -> bool {
        self.list().contains(entry)
    }

    /// The version lookups currently answer from.
    pub fn version(&mut self) -> u64 {
        self.list().version()
    }
}
