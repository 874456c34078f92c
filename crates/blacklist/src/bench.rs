//! Figures for `onecard bench blacklist`: build, memory, file load, lookup latency, delta.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use crate::entry::Entry;
use crate::error::Error;
use crate::list::{Delta, List};
use crate::shared::Blacklist;
use crate::synth::{Rng, Shape};
use crate::MAX_ENTRIES;

/// Figures of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BenchFigures {
    /// Serial distribution of the synthetic list.
    pub shape: Shape,
    /// Entries listed.
    pub entries: usize,
    /// Building the list from entries already sorted in memory, ms (best of 3).
    pub build_ms: f64,
    /// Bytes the list holds, from its capacities ([`List::resident_bytes`]).
    pub resident_bytes: usize,
    /// Segments, and entries stored as 32-bit offsets.
    pub segments: usize,
    /// Entries in narrow (32-bit) segments.
    pub narrow_entries: usize,
    /// Size of the snapshot file.
    pub file_bytes: u64,
    /// Encoding the snapshot file into memory, ms (best of 3).
    pub encode_ms: f64,
    /// Parsing the snapshot file from memory (CRC, checks, build), ms (best of 3).
    pub load_ms: f64,
    /// Timed lookups, half of them hits.
    pub lookups: usize,
    /// Median latency of one lookup, hits and misses together, ns (includes the timer's own
    /// cost, [`BenchFigures::timer_overhead_ns`]).
    pub lookup_p50_ns: f64,
    /// 99th percentile, hits and misses together, ns.
    pub lookup_p99_ns: f64,
    /// Median latency of hits, ns.
    pub hit_p50_ns: f64,
    /// 99th percentile of hits, ns.
    pub hit_p99_ns: f64,
    /// Median latency of misses, ns.
    pub miss_p50_ns: f64,
    /// 99th percentile of misses, ns.
    pub miss_p99_ns: f64,
    /// Lookups per second back to back, untimed individually (independent lookups overlap
    /// their cache misses, so this exceeds 1 / p50).
    pub lookups_per_s: f64,
    /// Lookups per second through a [`crate::Reader`] (one atomic load per lookup).
    pub reader_lookups_per_s: f64,
    /// Lookups per second through [`Blacklist::contains`] (read lock per lookup).
    pub locked_lookups_per_s: f64,
    /// Median cost of an empty timing, ns.
    pub timer_overhead_ns: f64,
    /// Applying a delta of 5,000 additions and 5,000 removals (validation, rebuild of the
    /// touched segments), ms.
    pub delta_ms: f64,
    /// Segments the delta's result shares with the list it was applied to.
    pub delta_shared_segments: usize,
    /// Lookups that disagreed with the generated list: must be 0 (the list is exact).
    pub wrong_answers: usize,
}

/// Runs the benchmark on a uniformly random list (the conservative case for memory).
pub fn bench(entries: usize, lookups: usize) -> Result<BenchFigures, Error> {
    bench_shape(Shape::Uniform, entries, lookups)
}

/// Runs the benchmark on a synthetic list of `entries` (at most [`MAX_ENTRIES`]) with the
/// given shape, timing `lookups` individual lookups. Fixed seed: runs are comparable.
pub fn bench_shape(shape: Shape, entries: usize, lookups: usize) -> Result<BenchFigures, Error> {
    let entries = entries.clamp(1, MAX_ENTRIES);
    let lookups = lookups.max(2);
    let all = shape.entries(entries, 0x0B1A_C411_5700);

    // Best of three for the one-off operations: the first run also pays for page faults on
    // fresh memory, and the machine may be shared.
    let mut build_ms = f64::MAX;
    let mut list = List::empty(0);
    for _ in 0..3 {
        let t = Instant::now();
        list = List::from_sorted(1, all.iter().copied())?;
        build_ms = build_ms.min(ms(t));
    }
    let stats = list.stats();
    let (mut encode_ms, mut load_ms) = (f64::MAX, f64::MAX);
    let mut file_bytes = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let bytes = list.to_bytes();
        encode_ms = encode_ms.min(ms(t));
        let t = Instant::now();
        let loaded = List::decode(&bytes)?;
        load_ms = load_ms.min(ms(t));
        file_bytes = bytes.len() as u64;
        drop(loaded);
    }

    // Queries: hits drawn from the list, misses from the same distribution but not listed,
    // alternating so neither kind warms the cache for the other.
    let mut rng = Rng::new(0x5EED);
    let mut queries: Vec<(Entry, bool)> = Vec::with_capacity(lookups);
    while queries.len() < lookups {
        if queries.len().is_multiple_of(2) {
            let i = rng.below(all.len() as u64) as usize;
            queries.push((all[i], true));
        } else {
            let e = shape.random(&mut rng);
            if !list.contains(&e) {
                queries.push((e, false));
            }
        }
    }

    let mut overhead: Vec<u32> = (0..10_000)
        .map(|_| {
            let t = Instant::now();
            black_box(());
            t.elapsed().as_nanos() as u32
        })
        .collect();
    let mut hits: Vec<u32> = Vec::with_capacity(lookups / 2 + 1);
    let mut misses: Vec<u32> = Vec::with_capacity(lookups / 2 + 1);
    let mut wrong = 0usize;
    for (q, listed) in &queries {
        let t = Instant::now();
        let found = list.contains(black_box(q));
        let ns = t.elapsed().as_nanos() as u32;
        wrong += usize::from(found != *listed);
        if *listed {
            hits.push(ns);
        } else {
            misses.push(ns);
        }
    }
    let t = Instant::now();
    let found = queries
        .iter()
        .filter(|(q, _)| list.contains(black_box(q)))
        .count();
    let lookups_per_s = queries.len() as f64 / t.elapsed().as_secs_f64();
    wrong += found.abs_diff(queries.iter().filter(|q| q.1).count());

    // A day's delta: 5,000 listed entries removed, 5,000 new ones added.
    let mut delta = Delta {
        from_version: 1,
        to_version: 2,
        ..Delta::default()
    };
    let step = (all.len() / 5_000).max(1);
    delta
        .remove
        .extend(all.iter().step_by(step).take(5_000).copied());
    let mut seen = std::collections::HashSet::new();
    while delta.add.len() < 5_000.min(MAX_ENTRIES - entries) {
        let e = shape.random(&mut rng);
        if !list.contains(&e) && seen.insert(e) {
            delta.add.push(e);
        }
    }
    let t = Instant::now();
    let next = list.apply(&delta)?;
    let delta_ms = ms(t);
    let delta_shared_segments = next.shared_segments(&list);
    drop(next);

    let shared = Arc::new(Blacklist::new(list));
    let mut reader = shared.reader();
    let t = Instant::now();
    let found_r = queries
        .iter()
        .filter(|(q, _)| reader.contains(black_box(q)))
        .count();
    let reader_lookups_per_s = queries.len() as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let found_l = queries
        .iter()
        .filter(|(q, _)| shared.contains(black_box(q)))
        .count();
    let locked_lookups_per_s = queries.len() as f64 / t.elapsed().as_secs_f64();
    wrong += found_r.abs_diff(found) + found_l.abs_diff(found);

    let mut all_ns: Vec<u32> = hits.iter().chain(&misses).copied().collect();
    Ok(BenchFigures {
        shape,
        entries,
        build_ms,
        resident_bytes: stats.resident_bytes,
        segments: stats.segments,
        narrow_entries: stats.narrow_entries,
        file_bytes,
        encode_ms,
        load_ms,
        lookups: queries.len(),
        lookup_p50_ns: percentile(&mut all_ns, 50.0),
        lookup_p99_ns: percentile(&mut all_ns, 99.0),
        hit_p50_ns: percentile(&mut hits, 50.0),
        hit_p99_ns: percentile(&mut hits, 99.0),
        miss_p50_ns: percentile(&mut misses, 50.0),
        miss_p99_ns: percentile(&mut misses, 99.0),
        lookups_per_s,
        reader_lookups_per_s,
        locked_lookups_per_s,
        timer_overhead_ns: percentile(&mut overhead, 50.0),
        delta_ms,
        delta_shared_segments,
        wrong_answers: wrong,
    })
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// The `p`th percentile (nearest rank) of `v`; 0 if empty.
fn percentile(v: &mut [u32], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    f64::from(v[rank.clamp(1, v.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_run_reports_sane_figures() {
        for shape in [Shape::Uniform, Shape::Clustered] {
            let f = bench_shape(shape, 20_000, 2_000).unwrap();
            assert_eq!(f.entries, 20_000);
            assert!(f.resident_bytes > 20_000 * 4 && f.resident_bytes < 20_000 * 40);
            assert!(f.lookup_p50_ns <= f.lookup_p99_ns);
            assert!(f.lookups_per_s > 0.0);
            assert_eq!(f.wrong_answers, 0);
            let groups = if shape == Shape::Uniform { 256 } else { 8 };
            assert_eq!(f.file_bytes, 28 + 12 * groups + 10 * 20_000);
        }
    }
}
