//! `journal-stress`: drives a journal from a separate process so it can be killed.
//!
//! ```text
//! journal-stress append <dir> [--count N] [--segment-bytes B] [--ack-every K] [--run R]
//!     Opens (recovers) the journal, prints `OPEN <next seq> <truncated bytes>`, then appends
//!     N records (default: until killed). After each append returns it prints
//!     `A <seq> <record_id>`; with --ack-every K it acknowledges every K-th seq minus K/2 and
//!     prints `K <seq>` after `ack` returns. A line on stdout is a promise the kill test checks.
//! journal-stress bench <dir> [--count N]
//!     Appends N records and prints append+fsync latency percentiles as one JSON line.
//! journal-stress sample
//!     Prints one sample record in its JSON form.
//! ```

use onecard_journal::{
    Algorithm, Direction, Family, Journal, JournalConfig, Journey, Kind, RecordImage, TapRecord,
};
use onecard_proto::{Date, DateTime, Fen, Time};
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

/// Record number `n` of run `run`: the run goes into the PSAM serial's top byte so that a
/// record lost and rewritten by a later run would show up with a different id.
fn record(run: u8, n: u64) -> TapRecord {
    let terminal = [0x10, 0x20, 0x30, 0x40, 0x50, 0x60];
    let serial = (u32::from(run) << 24 | (n as u32 & 0x00FF_FFFF)).to_be_bytes();
    let amount = Fen::new(n % 900 + 100);
    let before = Fen::new(100_000);
    TapRecord {
        record_id: TapRecord::record_id_for(Kind::Completed, terminal, serial),
        kind: Kind::Completed,
        resolves: None,
        family: Family::TUnion,
        issuer: [0x02, 0x10, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF],
        serial: [0x31, 0x04, 0, 0, 0, 0, 0, 0, 0x12, 0x34],
        counter: (n % 65_536) as u16,
        tx_type: 0x09,
        amount,
        balance_before: before,
        balance_after: Fen::new(before.get() - amount.get()),
        terminal,
        terminal_serial: serial,
        date: Date {
            year: 2025,
            month: 3,
            day: 9,
        },
        time: Time {
            hour: 8,
            minute: 5,
            second: (n % 60) as u8,
        },
        tac: Some((n as u32 ^ 0xA5A5_A5A5).to_be_bytes()),
        key_version: 1,
        algorithm: Algorithm::TripleDes,
        mac2_verified: true,
        security_code: None,
        records: vec![RecordImage {
            p1: 0x02,
            sfi: 0x1A,
            data: vec![0x5A; 128],
        }],
        city: "beijing".into(),
        fares_version: Some(3),
        station: Some("0517".into()),
        line: Some("L5".into()),
        journey: Some(Journey {
            direction: Direction::Exit,
            entry_station: Some("0101".into()),
            entry_line: Some("L1".into()),
            entry_time: Some(DateTime {
                date: Date {
                    year: 2025,
                    month: 3,
                    day: 9,
                },
                time: Time {
                    hour: 7,
                    minute: 40,
                    second: 12,
                },
            }),
            fare: amount,
            penalties: vec![],
        }),
    }
}

struct Args {
    mode: String,
    dir: String,
    count: u64,
    segment_bytes: Option<u64>,
    ack_every: u64,
    run: u8,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it
        .next()
        .ok_or("usage: journal-stress append|bench <dir> … | sample")?;
    let dir = if mode == "sample" {
        String::new()
    } else {
        it.next().ok_or("missing <dir>")?
    };
    let mut a = Args {
        mode,
        dir,
        count: u64::MAX,
        segment_bytes: None,
        ack_every: 0,
        run: 0,
    };
    while let Some(flag) = it.next() {
        let v: u64 = it
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{flag} needs a number"))?;
        match flag.as_str() {
            "--count" => a.count = v,
            "--segment-bytes" => a.segment_bytes = Some(v),
            "--ack-every" => a.ack_every = v,
            "--run" => a.run = (v % 256) as u8,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

fn run(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    if a.mode == "sample" {
        let v: serde_json::Value = serde_json::from_str(&record(0, 42).to_json())?;
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let mut cfg = JournalConfig::default();
    if let Some(s) = a.segment_bytes {
        cfg.segment_bytes = s;
    }
    let mut j = Journal::open_with(&a.dir, cfg)?;
    let out = std::io::stdout();
    let mut out = out.lock();
    match a.mode.as_str() {
        "append" => {
            writeln!(
                out,
                "OPEN {} {}",
                j.stats().next,
                j.recovery().truncated_bytes
            )?;
            out.flush()?;
            for _ in 0..a.count {
                let n = j.stats().next.get();
                let rec = record(a.run, n);
                let seq = j.append(&rec)?;
                writeln!(out, "A {seq} {}", rec.record_id)?;
                out.flush()?;
                if a.ack_every > 0 && seq.get() % a.ack_every == 0 {
                    let upto = onecard_journal::Seq(seq.get() - a.ack_every / 2);
                    j.ack(upto)?;
                    writeln!(out, "K {upto}")?;
                    out.flush()?;
                }
            }
        }
        "bench" => {
            let count = if a.count == u64::MAX {
                1000
            } else {
                a.count.max(1)
            };
            let bytes = record(0, 1).to_json().len();
            let mut lat = Vec::with_capacity(count as usize);
            let start = Instant::now();
            for _ in 0..count {
                let rec = record(0, j.stats().next.get());
                let t = Instant::now();
                j.append(&rec)?;
                lat.push(t.elapsed().as_secs_f64() * 1e6);
            }
            let total = start.elapsed().as_secs_f64();
            lat.sort_by(f64::total_cmp);
            let pct =
                |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
            writeln!(
                out,
                "{{\"appends\":{count},\"record_bytes\":{bytes},\"p50_us\":{:.0},\"p90_us\":{:.0},\
                 \"p99_us\":{:.0},\"max_us\":{:.0},\"mean_us\":{:.0},\"appends_per_s\":{:.0}}}",
                pct(0.50),
                pct(0.90),
                pct(0.99),
                lat.last().copied().unwrap_or(0.0),
                lat.iter().sum::<f64>() / lat.len().max(1) as f64,
                count as f64 / total
            )?;
        }
        m => return Err(format!("unknown mode {m}").into()),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("journal-stress: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("journal-stress: {e}");
            ExitCode::FAILURE
        }
    }
}
