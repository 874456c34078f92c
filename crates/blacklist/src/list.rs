//! [`List`], one immutable version of the blacklist, and [`Delta`], the change from one version
//! to the next.
//!
//! A list is a directory of fences (the first key of each segment, sorted) and `Arc`-shared
//! segments. Applying a delta builds a *new* list that shares every segment the delta does not
//! touch; the old list is never modified, which is what makes publication atomic (see
//! [`crate::Blacklist`]).

use std::fmt;
use std::iter::Peekable;
use std::mem::size_of;
use std::sync::Arc;

use crate::entry::{Entry, Key};
use crate::error::Error;
use crate::segment::{Builder, Layout, Segment};
use crate::{MAX_DELTA_ENTRIES, MAX_ENTRIES};

/// One version of the blacklist: an exact, immutable set of [`Entry`].
#[derive(Clone)]
pub struct List {
    version: u64,
    len: usize,
    /// `fences[i]` is the first key of `segments[i]`; strictly increasing.
    fences: Vec<Key>,
    segments: Vec<Arc<Segment>>,
    layout: Layout,
}

/// The change from list version `from_version` to `to_version`.
///
/// Policy: a delta is exact. It applies only to a list at exactly `from_version`; every removal
/// must be listed and every addition must not be; no entry may appear twice or on both sides;
/// at most [`MAX_DELTA_ENTRIES`] entries in all. Any violation means the host and the gate
/// disagree about the list, and guessing would risk an unblocked stolen card or a blocked
/// innocent rider, so the whole delta is refused and the gate should fetch a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delta {
    /// The version this delta applies to.
    pub from_version: u64,
    /// The version of the result; greater than `from_version`.
    pub to_version: u64,
    /// Entries to add (any order).
    pub add: Vec<Entry>,
    /// Entries to remove (any order).
    pub remove: Vec<Entry>,
}

/// Shape of a list, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Entries.
    pub entries: usize,
    /// Segments in all.
    pub segments: usize,
    /// Segments storing 32-bit offsets.
    pub narrow_segments: usize,
    /// Entries in narrow segments.
    pub narrow_entries: usize,
    /// Bytes held, as [`List::resident_bytes`].
    pub resident_bytes: usize,
}

impl List {
    /// An empty list at `version`.
    pub fn empty(version: u64) -> List {
        List::with_layout(version, Layout::DEFAULT)
    }

    fn with_layout(version: u64, layout: Layout) -> List {
        List {
            version,
            len: 0,
            fences: Vec::new(),
            segments: Vec::new(),
            layout,
        }
    }

    /// The list of `entries` (any order; duplicates are merged). Sorts a copy of the keys
    /// (32 bytes an entry transiently); [`List::from_sorted`] streams instead.
    pub fn from_entries(
        version: u64,
        entries: impl IntoIterator<Item = Entry>,
    ) -> Result<List, Error> {
        List::from_entries_layout(version, entries, Layout::DEFAULT)
    }

    /// [`List::from_entries`] with small segments, so that tests on small lists exercise
    /// segment splits and merges. Not for production: lookups and memory are tuned for the
    /// default.
    #[doc(hidden)]
    pub fn from_entries_with_segment_size(
        version: u64,
        entries: impl IntoIterator<Item = Entry>,
        seg_max: usize,
    ) -> Result<List, Error> {
        List::from_entries_layout(version, entries, Layout::with_seg_max(seg_max))
    }

    fn from_entries_layout(
        version: u64,
        entries: impl IntoIterator<Item = Entry>,
        layout: Layout,
    ) -> Result<List, Error> {
        let mut keys: Vec<Key> = Vec::new();
        for e in entries {
            if keys.len() >= MAX_ENTRIES {
                return Err(Error::TooManyEntries {
                    entries: keys.len() + 1,
                    max: MAX_ENTRIES,
                });
            }
            keys.push(e.key());
        }
        keys.sort_unstable();
        keys.dedup();
        let mut b = Builder::new(layout);
        for k in keys {
            // Sorted and deduplicated just above.
            b.push(k)
                .map_err(|k| Error::NotSorted(Entry::from_key(k)))?;
        }
        Ok(List::from_builder(version, b, layout))
    }

    /// The list of `entries`, which must be strictly increasing in canonical order (the order
    /// of [`Entry`]'s `Ord`); builds without sorting or copying the input.
    pub fn from_sorted(
        version: u64,
        entries: impl IntoIterator<Item = Entry>,
    ) -> Result<List, Error> {
        let mut b = Builder::new(Layout::DEFAULT);
        for e in entries {
            if b.len() >= MAX_ENTRIES {
                return Err(Error::TooManyEntries {
                    entries: b.len() + 1,
                    max: MAX_ENTRIES,
                });
            }
            b.push(e.key()).map_err(|_| Error::NotSorted(e))?;
        }
        Ok(List::from_builder(version, b, Layout::DEFAULT))
    }

    pub(crate) fn from_builder(version: u64, b: Builder, layout: Layout) -> List {
        let mut built = b.finish();
        built.fences.shrink_to_fit();
        built.segments.shrink_to_fit();
        List {
            version,
            len: built.len,
            fences: built.fences,
            segments: built.segments,
            layout,
        }
    }

    /// The list's version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if no card is listed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True if the card is listed. Exact: no false positives, no false negatives.
    #[inline]
    pub fn contains(&self, entry: &Entry) -> bool {
        self.contains_key(entry.key())
    }

    /// True if the card with these 0x15 fields is listed.
    #[inline]
    pub fn contains_card(&self, issuer: &[u8; 8], serial: &[u8; 10]) -> bool {
        self.contains(&Entry::new(*issuer, *serial))
    }

    #[inline]
    pub(crate) fn contains_key(&self, k: Key) -> bool {
        // The segment that could hold k is the last one whose first key is ≤ k.
        let i = self.fences.partition_point(|f| *f <= k);
        let Some(i) = i.checked_sub(1) else {
            return false;
        };
        self.segments
            .get(i)
            .is_some_and(|s| s.issuer == k.issuer && s.contains(k.code))
    }

    /// The entries in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = Entry> + '_ {
        self.keys().map(Entry::from_key)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.segments.iter().flat_map(|s| s.keys())
    }

    /// Entry counts per issuer, in canonical order (for the file format's groups).
    pub(crate) fn issuer_groups(&self) -> Vec<(u64, usize)> {
        let mut groups: Vec<(u64, usize)> = Vec::new();
        for s in &self.segments {
            match groups.last_mut() {
                Some((issuer, n)) if *issuer == s.issuer => *n += s.len(),
                _ => groups.push((s.issuer, s.len())),
            }
        }
        groups
    }

    /// Bytes this list holds, computed from capacities: the directory, and for every segment
    /// its `Arc` allocation and tree nodes. Segments shared with another version are counted
    /// in both.
    pub fn resident_bytes(&self) -> usize {
        size_of::<List>()
            + self.fences.capacity() * size_of::<Key>()
            + self.segments.capacity() * size_of::<Arc<Segment>>()
            + self
                .segments
                .iter()
                .map(|s| s.resident_bytes())
                .sum::<usize>()
    }

    /// Shape of the list.
    pub fn stats(&self) -> Stats {
        let narrow = self.segments.iter().filter(|s| s.is_narrow());
        Stats {
            entries: self.len,
            segments: self.segments.len(),
            narrow_segments: narrow.clone().count(),
            narrow_entries: narrow.map(|s| s.len()).sum(),
            resident_bytes: self.resident_bytes(),
        }
    }

    /// How many of this list's segments are the very same allocation in `other`: what a delta
    /// shared instead of rebuilding (for tests and reports).
    pub fn shared_segments(&self, other: &List) -> usize {
        let theirs: std::collections::HashSet<*const Segment> =
            other.segments.iter().map(Arc::as_ptr).collect();
        self.segments
            .iter()
            .filter(|s| theirs.contains(&Arc::as_ptr(s)))
            .count()
    }

    /// The list at `delta.to_version`: validates the whole delta first (see [`Delta`] for the
    /// policy), then rebuilds only the segments it touches and shares the rest with `self`.
    /// `self` is unchanged whatever happens.
    ///
    /// Transient memory: the sorted delta (32 bytes an entry), the new directory (48 bytes a
    /// segment), the rebuilt segments (at most those the delta's entries fall in plus one small
    /// neighbour each side, ≤ ~0.5 MB each) and a ≤ 2.1 MB window in the builder. A delta spread
    /// over the whole key space touches every segment and so rebuilds the whole list beside
    /// the old one.
    pub fn apply(&self, delta: &Delta) -> Result<List, Error> {
        let changes = self.validate(delta)?;
        let new_len = self.len + delta.add.len() - delta.remove.len();
        Ok(self.rebuild(delta.to_version, new_len, &changes))
    }

    /// Checks a delta completely; returns its changes sorted, `true` for additions.
    fn validate(&self, d: &Delta) -> Result<Vec<(Key, bool)>, Error> {
        if d.from_version != self.version {
            return Err(Error::VersionMismatch {
                current: self.version,
                from: d.from_version,
            });
        }
        if d.to_version <= d.from_version {
            return Err(Error::VersionNotIncreasing {
                from: d.from_version,
                to: d.to_version,
            });
        }
        let total = d.add.len().saturating_add(d.remove.len());
        if total > MAX_DELTA_ENTRIES {
            return Err(Error::DeltaTooLarge {
                entries: total,
                max: MAX_DELTA_ENTRIES,
            });
        }
        let sorted = |entries: &[Entry], side| -> Result<Vec<Key>, Error> {
            let mut keys: Vec<Key> = entries.iter().map(Entry::key).collect();
            keys.sort_unstable();
            if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
                return Err(Error::Duplicate {
                    entry: Entry::from_key(w[0]),
                    side,
                });
            }
            Ok(keys)
        };
        let adds = sorted(&d.add, "additions")?;
        let removes = sorted(&d.remove, "removals")?;
        if let Some(&k) = removes.iter().find(|&&k| !self.contains_key(k)) {
            return Err(Error::RemoveAbsent(Entry::from_key(k)));
        }
        // Checked after removals: an entry both added and removed is reported as such, not as
        // "already listed".
        let mut changes: Vec<(Key, bool)> = Vec::with_capacity(total);
        let (mut a, mut r) = (adds.iter().peekable(), removes.iter().peekable());
        loop {
            let next = match (a.peek(), r.peek()) {
                (Some(&&x), Some(&&y)) if x == y => {
                    return Err(Error::AddedAndRemoved(Entry::from_key(x)))
                }
                (Some(&&x), Some(&&y)) if x < y => (a.next().copied(), true),
                (Some(_), Some(_)) | (None, Some(_)) => (r.next().copied(), false),
                (Some(_), None) => (a.next().copied(), true),
                (None, None) => break,
            };
            if let (Some(k), add) = next {
                changes.push((k, add));
            }
        }
        if let Some(&(k, _)) = changes
            .iter()
            .find(|&&(k, add)| add && self.contains_key(k))
        {
            return Err(Error::AddPresent(Entry::from_key(k)));
        }
        let new_len = self.len + adds.len() - removes.len();
        if new_len > MAX_ENTRIES {
            return Err(Error::TooManyEntries {
                entries: new_len,
                max: MAX_ENTRIES,
            });
        }
        Ok(changes)
    }

    /// Builds the new list from validated, sorted changes.
    ///
    /// Regions: region 0 is before the first segment, region `r ≥ 1` is from segment `r - 1`'s
    /// first key up to the next segment's. A change marks the region it falls in; runs of
    /// marked regions are rebuilt from their segments' keys merged with their changes, and
    /// unmarked segments are shared.
    fn rebuild(&self, version: u64, len: usize, changes: &[(Key, bool)]) -> List {
        let n = self.segments.len();
        let mut marked = vec![false; n + 1];
        for &(k, _) in changes {
            let p = self.fences.partition_point(|f| *f <= k);
            marked[p] = true;
            // A key before its issuer's first segment joins that segment rather than the
            // previous issuer's region, so it does not become a segment of its own.
            let joins_next = self.segments.get(p).is_some_and(|s| s.issuer == k.issuer)
                && (p == 0 || self.segments[p - 1].issuer != k.issuer);
            if joins_next {
                marked[p + 1] = true;
            }
        }
        // Small same-issuer neighbours join the rebuild, so fragments left by removals and
        // additions are merged back into full segments over time.
        let mut affected = marked.clone();
        for (r, _) in marked.iter().enumerate().filter(|&(r, &m)| m && r >= 1) {
            let issuer = self.segments[r - 1].issuer;
            for nb in [r - 1, r + 1] {
                let small = nb >= 1
                    && self
                        .segments
                        .get(nb - 1)
                        .is_some_and(|s| s.issuer == issuer && s.len() < self.layout.small());
                if small {
                    affected[nb] = true;
                }
            }
        }

        let mut out = List::with_layout(version, self.layout);
        out.len = len;
        out.fences.reserve(n + 16);
        out.segments.reserve(n + 16);
        let mut changes = changes.iter().copied().peekable();
        let mut r = 0;
        while r <= n {
            if !affected[r] {
                if let Some(s) = r.checked_sub(1).and_then(|i| self.segments.get(i)) {
                    out.fences.push(s.first_key());
                    out.segments.push(Arc::clone(s));
                }
                r += 1;
                continue;
            }
            let from = r;
            while r <= n && affected[r] {
                r += 1;
            }
            // Regions from..r are rebuilt; region r (segment r - 1) starts at `end`.
            let end = r.checked_sub(1).and_then(|i| self.fences.get(i)).copied();
            let existing = self.segments[from.saturating_sub(1)..r.saturating_sub(1)]
                .iter()
                .flat_map(|s| s.keys());
            let mine = std::iter::from_fn(|| changes.next_if(|&(k, _)| end.is_none_or(|e| k < e)));
            let mut b = Builder::new(self.layout);
            for k in Merge::new(existing, mine) {
                // Validated: the merge yields strictly increasing keys.
                let _ = b.push(k);
            }
            let built = b.finish();
            out.fences.extend(built.fences);
            out.segments.extend(built.segments);
        }
        out.fences.shrink_to_fit();
        out.segments.shrink_to_fit();
        out
    }

    /// The delta that turns `self` into `newer` (an exact delta by construction).
    pub fn diff(&self, newer: &List) -> Result<Delta, Error> {
        let mut d = Delta {
            from_version: self.version,
            to_version: newer.version,
            ..Delta::default()
        };
        let (mut old, mut new) = (self.keys().peekable(), newer.keys().peekable());
        loop {
            let removal = match (old.peek(), new.peek()) {
                (None, None) => break,
                (Some(o), Some(n)) if o == n => {
                    old.next();
                    new.next();
                    continue;
                }
                (Some(o), Some(n)) => o < n,
                (Some(_), None) => true,
                (None, Some(_)) => false,
            };
            let (side, next) = if removal {
                (&mut d.remove, old.next())
            } else {
                (&mut d.add, new.next())
            };
            side.extend(next.map(Entry::from_key));
            if d.add.len() + d.remove.len() > MAX_DELTA_ENTRIES {
                return Err(Error::DeltaTooLarge {
                    entries: d.add.len() + d.remove.len(),
                    max: MAX_DELTA_ENTRIES,
                });
            }
        }
        Ok(d)
    }
}

impl PartialEq for List {
    /// Same version and same entries (segment boundaries may differ).
    fn eq(&self, other: &List) -> bool {
        self.version == other.version && self.len == other.len && self.keys().eq(other.keys())
    }
}

impl Eq for List {}

impl fmt::Debug for List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("List")
            .field("version", &self.version)
            .field("len", &self.len)
            .field("segments", &self.segments.len())
            .finish()
    }
}

/// Merges a strictly increasing key stream with sorted changes (removals are present in it,
/// additions are not).
struct Merge<I: Iterator<Item = Key>, C: Iterator<Item = (Key, bool)>> {
    keys: Peekable<I>,
    changes: Peekable<C>,
}

impl<I: Iterator<Item = Key>, C: Iterator<Item = (Key, bool)>> Merge<I, C> {
    fn new(keys: I, changes: C) -> Self {
        Merge {
            keys: keys.peekable(),
            changes: changes.peekable(),
        }
    }
}

impl<I: Iterator<Item = Key>, C: Iterator<Item = (Key, bool)>> Iterator for Merge<I, C> {
    type Item = Key;

    fn next(&mut self) -> Option<Key> {
        loop {
            match (self.keys.peek().copied(), self.changes.peek().copied()) {
                (Some(k), Some((c, add))) if c <= k => {
                    self.changes.next();
                    if c == k && !add {
                        self.keys.next();
                    } else if add {
                        return Some(c);
                    }
                }
                (Some(_), _) => return self.keys.next(),
                (None, Some((c, add))) => {
                    self.changes.next();
                    if add {
                        return Some(c);
                    }
                }
                (None, None) => return None,
            }
        }
    }
}
