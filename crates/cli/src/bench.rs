//! `onecard bench tap`.

use anyhow::{Context, Result};
use onecard_crypto::Algorithm;
use serde_json::json;

/// Runs the tap benchmark and prints its JSON line.
pub fn tap(algorithm: &str, taps: u32) -> Result<()> {
    let alg = Algorithm::from_name(algorithm).context("algorithm must be 3des or sm4")?;
    let f = onecard_sim::bench::measure(alg, taps, 5)?;
    let ratio = f.floor_taps_per_s / f.taps_per_s;
    eprintln!(
        "{} full compound exit taps ({}): {:.0} taps/s; crypto floor {:.0} taps/s; a tap costs {:.2}x its floor; {} APDUs per tap",
        f.taps, algorithm, f.taps_per_s, f.floor_taps_per_s, ratio, f.apdus_per_tap
    );
    println!(
        "{}",
        json!({
            "bench": "tap",
            "algorithm": algorithm,
            "taps": f.taps,
            "taps_per_s": f.taps_per_s.round(),
            "floor_taps_per_s": f.floor_taps_per_s.round(),
            "tap_over_floor": (ratio * 1000.0).round() / 1000.0,
            "apdus_per_tap": f.apdus_per_tap,
        })
    );
    Ok(())
}

/// Runs the gate benchmark (journals in a fresh directory under the system temp dir) and prints
/// its JSON line.
pub fn gate(rides: u32) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("onecard-bench-gate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let f = onecard_sim::gatebench::measure(rides, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    let f = f?;
    eprintln!(
        "{} rides at Beijing gates, journal fsynced before DEBIT and before opening: {:.0} taps/s; entry p50 {:.0} µs p99 {:.0} µs; exit p50 {:.0} µs p99 {:.0} µs; {} APDUs per exit tap",
        f.rides, f.taps_per_s, f.entry_p50_us, f.entry_p99_us, f.exit_p50_us, f.exit_p99_us, f.apdus_per_tap
    );
    println!(
        "{}",
        json!({
            "bench": "gate",
            "rides": f.rides,
            "taps_per_s": f.taps_per_s.round(),
            "entry_p50_us": f.entry_p50_us.round(),
            "entry_p99_us": f.entry_p99_us.round(),
            "exit_p50_us": f.exit_p50_us.round(),
            "exit_p99_us": f.exit_p99_us.round(),
            "apdus_per_tap": f.apdus_per_tap,
        })
    );
    Ok(())
}

/// Runs the blacklist benchmark and prints its JSON line.
pub fn blacklist(entries: usize, lookups: usize, clustered: bool) -> Result<()> {
    let shape = if clustered {
        onecard_blacklist::Shape::Clustered
    } else {
        onecard_blacklist::Shape::Uniform
    };
    let f = onecard_blacklist::bench_shape(shape, entries, lookups)?;
    anyhow::ensure!(
        f.wrong_answers == 0,
        "the blacklist answered {} lookups wrongly",
        f.wrong_answers
    );
    eprintln!(
        "{} entries ({:?}): {:.1} MB resident, built in {:.0} ms, loaded in {:.0} ms; lookup p50 {:.0} ns, p99 {:.0} ns",
        f.entries, shape, f.resident_bytes as f64 / 1e6, f.build_ms, f.load_ms, f.lookup_p50_ns, f.lookup_p99_ns
    );
    println!(
        "{}",
        json!({
            "bench": "blacklist",
            "shape": if clustered { "clustered" } else { "uniform" },
            "entries": f.entries,
            "resident_mb": (f.resident_bytes as f64 / 1e5).round() / 10.0,
            "build_ms": f.build_ms.round(),
            "load_ms": f.load_ms.round(),
            "lookup_p50_ns": f.lookup_p50_ns.round(),
            "lookup_p99_ns": f.lookup_p99_ns.round(),
            "lookups_per_s": f.lookups_per_s.round(),
            "delta_ms": f.delta_ms.round(),
        })
    );
    Ok(())
}
