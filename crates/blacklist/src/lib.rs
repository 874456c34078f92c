//! The gate blacklist: which cards a gate must refuse (and block on the card).
//!
//! A card is identified by its issuer (SFI 0x15 bytes 0..8) and application serial (bytes
//! 10..20, 20 BCD digits): an [`Entry`]. A gate holds up to 10 million of them, must answer
//! "is this card listed?" well under a microsecond during a tap, and receives versioned deltas
//! and full snapshots from the host while it keeps serving taps.
//!
//! # Requirements and how they are met
//!
//! * **Exact.** A false positive blocks an innocent rider, a false negative lets a stolen card
//!   ride, so no hashing, filters or truncated keys: every entry's full key is stored and a
//!   lookup ends in an equality compare.
//! * **10M entries in ≤ 100 MB.** 18 raw bytes an entry would be 180 MB. The key is
//!   `(issuer, code)`, the code being the serial's *decimal value* (BCD leaves 6 of 16 nibble
//!   values unused, so issued ranges of raw serials are sparse; their decimal values are
//!   dense). Keys are cut into segments of ≤ 65,536 keys of one issuer, each storing offsets
//!   from its first code: 4 bytes a key when the segment spans < 2^32 (cards issued in
//!   sequence: real blacklists), 8 bytes otherwise (e.g. uniformly random serials). With the
//!   tree's internal levels that is ~4.3 or ~8.6 bytes an entry; see `BENCHMARKS-blacklist.md`.
//! * **< 1 µs lookups.** A sorted directory of segment fences (a few KB to ~100 KB, stays in
//!   cache) is binary-searched, then the segment's static B+-tree (16-key nodes, cache-line
//!   aligned, ≤ 4 levels, top levels shared by all lookups and so cached) is descended; a
//!   lookup typically misses cache on the leaf line only.
//! * **Atomic deltas.** A [`List`] is immutable. [`List::apply`] validates the whole [`Delta`]
//!   first, then builds a new list that shares (by `Arc`) every segment the delta does not
//!   touch; [`Blacklist`] publishes it with one pointer swap. A reader's lookup runs entirely
//!   on the old list or entirely on the new one.
//! * **Bounded.** At most [`MAX_ENTRIES`] entries in a list and [`MAX_DELTA_ENTRIES`] in a
//!   delta; files are checked against these before anything is allocated for them.
//!
//! # Code map
//!
//! * [`entry`]: [`Entry`], the serial → code mapping and the canonical order.
//! * `tree`: the static B+-tree over one segment's offsets.
//! * `segment`: segments (narrow `u32` / wide `u64` offsets) and the streaming builder that
//!   cuts a sorted key stream into them.
//! * [`list`]: [`List`] (lookup, iteration, build, [`List::apply`], [`List::diff`]) and
//!   [`Delta`].
//! * [`mod@file`]: the snapshot/delta file format, parsing, crash-safe saving.
//! * [`shared`]: [`Blacklist`] (the current list behind `RwLock<Arc<List>>`) and [`Reader`].
//! * [`synth`], [`mod@bench`]: synthetic lists and the benchmark behind `onecard bench blacklist`.
//!
//! # Invariants
//!
//! 1. Within a list, keys are strictly increasing in canonical order across segments; a
//!    segment holds ≥ 1 key, all of one issuer, all within `[first, last]`, `last - first` <
//!    2^32 (narrow) or < 2^64 (wide); `fences[i]` is segment `i`'s first key.
//! 2. A published list is never mutated; segments are shared between versions read-only.
//! 3. A delta is applied only to its exact `from_version`, only if every removal is listed,
//!    every addition is not, and no entry repeats (policy in [`Delta`]); else nothing changes.
//! 4. Versions only increase: a delta's target and a replacement snapshot must be newer.
//!
//! # Memory during updates
//!
//! A delta needs its sorted keys (32 bytes an entry), a new directory (48 bytes a segment) and
//! the segments it touches rebuilt (≤ ~0.5 MB each, plus a ≤ 2.1 MB build window); untouched
//! segments are shared. Blacklist changes are spread over the whole key space, so a delta with
//! more entries than there are segments (~160 for a 10M city list, ~1,500 for uniformly random
//! serials) touches nearly all of them: plan for the list twice over during such an apply
//! (~86 MB for a realistic 10M list, ~172 MB for random serials), for ~0.2-0.3 s. A full
//! snapshot likewise needs the new list built beside the old one until readers let go of the
//! old; loading it streams the file and never holds the file in memory.
//!
//! Blocking the card itself (APPLICATION BLOCK with the issuer's MAC) is the terminal's job;
//! this crate answers whether to.

pub mod bench;
pub mod entry;
mod error;
pub mod file;
pub mod list;
mod segment;
pub mod shared;
pub mod synth;
mod tree;

pub use bench::{bench, bench_shape, BenchFigures};
pub use entry::Entry;
pub use error::{Error, FormatError};
pub use list::{Delta, List, Stats};
pub use shared::{Blacklist, Reader};
pub use synth::Shape;

/// Entries a list may hold: twice the design point of 10 million.
pub const MAX_ENTRIES: usize = 20_000_000;

/// Entries (additions plus removals) a delta may carry. Larger changes come as snapshots.
pub const MAX_DELTA_ENTRIES: usize = 1_000_000;
