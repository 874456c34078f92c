//! Segments (up to 65,536 keys of one issuer, stored as offsets from the first) and the
//! streaming [`Builder`] that cuts a sorted key stream into them.
//!
//! A segment is *narrow* when all its codes lie within 2^32 of its first code (offsets are
//! `u32`, 4 bytes a key) and *wide* otherwise (offsets `u64`, 8 bytes; codes within 2^64).
//! Cards are issued in sequence, so a city's blacklist is mostly narrow; uniformly random
//! serials (20 random digits) are wide. The builder is greedy: it takes the longest narrow run
//! it can, and only makes a wide segment where no narrow run of at least `narrow_min` keys
//! starts, so a handful of outliers cannot turn a dense run wide.

use std::mem::size_of;
use std::sync::Arc;

use crate::entry::Key;
use crate::tree::{Tree, MAX_KEYS};

/// How the builder cuts segments. Fixed in production ([`Layout::DEFAULT`]); tests shrink it
/// to exercise splits and merges on small lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Keys per segment at most (≤ 65,536, the tree's capacity).
    pub seg_max: usize,
    /// Shortest narrow run worth its own segment (a segment costs ~200 bytes; narrow saves
    /// 4 bytes a key).
    pub narrow_min: usize,
}

impl Layout {
    /// The production layout.
    pub(crate) const DEFAULT: Layout = Layout {
        seg_max: MAX_KEYS,
        narrow_min: 128,
    };

    /// A layout with the given segment size, clamped to what a tree holds.
    pub(crate) fn with_seg_max(seg_max: usize) -> Layout {
        let seg_max = seg_max.clamp(1, MAX_KEYS);
        Layout {
            seg_max,
            narrow_min: Layout::DEFAULT.narrow_min.min(seg_max),
        }
    }

    /// Segments below this size are merged with a neighbour when a delta touches either.
    pub(crate) fn small(&self) -> usize {
        self.seg_max / 4
    }
}

/// The keys of a segment as offsets from its first code.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Offsets {
    /// Span below 2^32.
    Narrow(Tree<u32>),
    /// Span below 2^64.
    Wide(Tree<u64>),
}

/// Up to `seg_max` keys of one issuer. Invariant: `first` ≤ every code ≤ `last`, offsets are
/// `code - first`, at least one key.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    pub issuer: u64,
    pub first: u128,
    pub last: u128,
    pub offsets: Offsets,
}

impl Segment {
    /// True if the code is in the segment (the issuer is checked by the caller).
    #[inline]
    pub(crate) fn contains(&self, code: u128) -> bool {
        if code < self.first || code > self.last {
            return false;
        }
        let off = code - self.first;
        match &self.offsets {
            Offsets::Narrow(t) => u32::try_from(off).is_ok_and(|o| t.contains(o)),
            Offsets::Wide(t) => u64::try_from(off).is_ok_and(|o| t.contains(o)),
        }
    }

    /// Number of keys.
    pub(crate) fn len(&self) -> usize {
        match &self.offsets {
            Offsets::Narrow(t) => t.len(),
            Offsets::Wide(t) => t.len(),
        }
    }

    /// True for a narrow segment.
    pub(crate) fn is_narrow(&self) -> bool {
        matches!(self.offsets, Offsets::Narrow(_))
    }

    /// The first key (the segment's fence in the directory).
    pub(crate) fn first_key(&self) -> Key {
        Key {
            issuer: self.issuer,
            code: self.first,
        }
    }

    /// The keys in increasing order.
    pub(crate) fn keys(&self) -> Box<dyn Iterator<Item = Key> + '_> {
        let (issuer, first) = (self.issuer, self.first);
        let key = move |off: u128| Key {
            issuer,
            code: first + off,
        };
        match &self.offsets {
            Offsets::Narrow(t) => Box::new(t.keys().map(move |o| key(u128::from(o)))),
            Offsets::Wide(t) => Box::new(t.keys().map(move |o| key(u128::from(o)))),
        }
    }

    /// Bytes held: the `Arc` allocation (two counters and the segment) plus the nodes.
    pub(crate) fn resident_bytes(&self) -> usize {
        let heap = match &self.offsets {
            Offsets::Narrow(t) => t.heap_bytes(),
            Offsets::Wide(t) => t.heap_bytes(),
        };
        2 * size_of::<usize>() + size_of::<Segment>() + heap
    }
}

/// The output of a build: the directory (fences and segments, in key order) and the key count.
#[derive(Default)]
pub(crate) struct Built {
    pub fences: Vec<Key>,
    pub segments: Vec<Arc<Segment>>,
    pub len: usize,
}

/// Cuts a strictly increasing key stream into segments. Looks ahead `seg_max + narrow_min`
/// codes to decide where to cut and keeps at most about twice that (≤ 2.1 MB of `u128`), so
/// building from a file needs no copy of the whole list.
pub(crate) struct Builder {
    layout: Layout,
    out: Built,
    issuer: u64,
    /// Codes of `issuer` not yet in a segment: `window[start..]`.
    window: Vec<u128>,
    start: usize,
    last: Option<Key>,
    scratch32: Vec<u32>,
    scratch64: Vec<u64>,
}

impl Builder {
    /// An empty builder.
    pub(crate) fn new(layout: Layout) -> Builder {
        Builder {
            layout,
            out: Built::default(),
            issuer: 0,
            window: Vec::new(),
            start: 0,
            last: None,
            scratch32: Vec::new(),
            scratch64: Vec::new(),
        }
    }

    /// Keys pushed so far.
    pub(crate) fn len(&self) -> usize {
        self.out.len
    }

    /// Appends `k`, which must be greater than every key pushed before; else gives `k` back
    /// and changes nothing.
    pub(crate) fn push(&mut self, k: Key) -> Result<(), Key> {
        if self.last.is_some_and(|p| k <= p) {
            return Err(k);
        }
        if k.issuer != self.issuer {
            self.flush();
            self.issuer = k.issuer;
        }
        self.window.push(k.code);
        self.last = Some(k);
        self.out.len += 1;
        if self.window.len() - self.start >= self.layout.seg_max + self.layout.narrow_min {
            self.cut();
        }
        Ok(())
    }

    /// The segments built.
    pub(crate) fn finish(mut self) -> Built {
        self.flush();
        self.out
    }

    /// Cuts everything held back (at the end of an issuer or of the stream).
    fn flush(&mut self) {
        while self.start < self.window.len() {
            self.cut();
        }
        self.window.clear();
        self.start = 0;
    }

    /// Cuts one segment from the front of the window.
    fn cut(&mut self) {
        let w = &self.window[self.start..];
        let Some(&first) = w.first() else {
            return;
        };
        let cap = w.len().min(self.layout.seg_max);
        let narrow = w[..cap].partition_point(|&c| c - first <= u128::from(u32::MAX));
        let min = self.layout.narrow_min;
        let narrow_starts = |j: usize| {
            w.get(j + min - 1)
                .is_some_and(|&c| c - w[j] <= u128::from(u32::MAX))
        };
        let (take, wide) = if narrow >= min || narrow == w.len() {
            (narrow, false)
        } else {
            let span = w[..cap].partition_point(|&c| c - first <= u128::from(u64::MAX));
            let mut j = 1;
            while j < span && !narrow_starts(j) {
                j += 1;
            }
            // A wide segment no longer than the narrow run would only waste space.
            if j <= narrow {
                (narrow, false)
            } else {
                (j, true)
            }
        };
        let codes = &w[..take];
        let offsets = if wide {
            self.scratch64.clear();
            self.scratch64
                .extend(codes.iter().map(|&c| (c - first) as u64));
            Tree::build(&self.scratch64).map(Offsets::Wide)
        } else {
            self.scratch32.clear();
            self.scratch32
                .extend(codes.iter().map(|&c| (c - first) as u32));
            Tree::build(&self.scratch32).map(Offsets::Narrow)
        };
        // `take` is between 1 and seg_max ≤ MAX_KEYS, so the tree always builds.
        if let (Some(offsets), Some(&last)) = (offsets, codes.last()) {
            let seg = Segment {
                issuer: self.issuer,
                first,
                last,
                offsets,
            };
            self.out.fences.push(seg.first_key());
            self.out.segments.push(Arc::new(seg));
        }
        self.start += take.max(1);
        // Compacting only once a full segment's worth is consumed keeps the copying linear.
        if self.start >= self.layout.seg_max {
            self.window.drain(..self.start);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(layout: Layout, keys: &[Key]) -> Built {
        let mut b = Builder::new(layout);
        for &k in keys {
            b.push(k).unwrap();
        }
        b.finish()
    }

    fn k(issuer: u64, code: u128) -> Key {
        Key { issuer, code }
    }

    fn all_keys(b: &Built) -> Vec<Key> {
        b.segments.iter().flat_map(|s| s.keys()).collect()
    }

    #[test]
    fn dense_run_is_narrow_and_split_at_seg_max() {
        let keys: Vec<Key> = (0..150_000u128).map(|i| k(7, 1_000 + 3 * i)).collect();
        let b = build(Layout::DEFAULT, &keys);
        assert_eq!(b.len, keys.len());
        assert_eq!(b.segments.len(), 3);
        assert!(b.segments.iter().all(|s| s.is_narrow()));
        assert_eq!(b.segments[0].len(), 65_536);
        assert_eq!(all_keys(&b), keys);
        for (f, s) in b.fences.iter().zip(&b.segments) {
            assert_eq!(*f, s.first_key());
        }
    }

    #[test]
    fn sparse_keys_are_wide_and_outliers_do_not_widen_a_dense_run() {
        // 1,000 keys 2^40 apart, then a dense run of 1,000.
        let mut keys: Vec<Key> = (0..1_000u128).map(|i| k(1, i << 40)).collect();
        let base = 1_000u128 << 40;
        keys.extend((0..1_000u128).map(|i| k(1, base + i)));
        let b = build(Layout::DEFAULT, &keys);
        assert_eq!(all_keys(&b), keys);
        let narrow: usize = b
            .segments
            .iter()
            .filter(|s| s.is_narrow())
            .map(|s| s.len())
            .sum();
        assert!(narrow >= 1_000, "dense run stored narrow ({narrow})");
        assert!(b.segments.iter().any(|s| !s.is_narrow()));
    }

    #[test]
    fn span_beyond_u64_splits_and_issuers_never_share_a_segment() {
        let keys = vec![
            k(1, 0),
            k(1, u128::from(u64::MAX) + 1),
            k(2, 5),
            k(2, 6),
            k(3, 0),
        ];
        let b = build(Layout::DEFAULT, &keys);
        assert_eq!(all_keys(&b), keys);
        assert_eq!(b.segments.len(), 4);
        for s in &b.segments {
            for key in s.keys() {
                assert!(s.contains(key.code) && key.issuer == s.issuer);
            }
        }
    }

    #[test]
    fn unsorted_or_duplicate_refused() {
        let mut b = Builder::new(Layout::DEFAULT);
        b.push(k(1, 5)).unwrap();
        assert!(b.push(k(1, 5)).is_err());
        assert!(b.push(k(1, 4)).is_err());
        assert!(b.push(k(0, 9)).is_err());
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn small_layout_cuts_many_segments() {
        let keys: Vec<Key> = (0..1_000u128).map(|i| k(i as u64 / 300, i * 7)).collect();
        let b = build(Layout::with_seg_max(16), &keys);
        assert!(b.segments.iter().all(|s| s.len() <= 16));
        assert_eq!(all_keys(&b), keys);
    }
}
