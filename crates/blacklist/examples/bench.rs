//! `cargo run --release -p onecard-blacklist --example bench -- [entries] [lookups] [uniform|clustered]`
//!
//! Prints the figures of one benchmark run, then peak RSS of the process (Linux).

use onecard_blacklist::{bench_shape, Shape};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let entries = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let lookups = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let shape = match args.next().as_deref() {
        None | Some("uniform") => Shape::Uniform,
        Some("clustered") => Shape::Clustered,
        Some(other) => return Err(format!("unknown shape {other}").into()),
    };
    let f = bench_shape(shape, entries, lookups)?;
    println!("{f:#?}");
    println!(
        "resident {:.1} MB, {:.2} bytes/entry",
        f.resident_bytes as f64 / 1e6,
        f.resident_bytes as f64 / f.entries as f64
    );
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for l in status
        .lines()
        .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
    {
        println!("{l}");
    }
    Ok(())
}
