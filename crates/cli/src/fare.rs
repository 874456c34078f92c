//! `onecard fare …` and `onecard bench fare`: the fare engine from the command line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use onecard_fares::{builtin, gtfs, Category, City, Item, MetroTrip, RiderMonth, Tap};
use onecard_proto::Fen;
use serde_json::json;

/// Fare subcommands.
#[derive(Subcommand)]
pub enum FareCommand {
    /// Price one trip and print JSON (distance_m, fare_fen, path, breakdown).
    Quote(QuoteArgs),
    /// Print `from,to,distance_m,fare_fen` for every ordered pair of stations.
    Matrix(MatrixArgs),
    /// Validate a city file and print what it holds.
    Check(CheckArgs),
}

/// `fare quote`.
#[derive(Args)]
pub struct QuoteArgs {
    /// Built-in city id (beijing, shanghai, …) or a path to a city TOML file.
    #[arg(long)]
    city: String,
    /// Entry station (name as in the source data).
    #[arg(long)]
    from: Option<String>,
    /// Exit station.
    #[arg(long)]
    to: Option<String>,
    /// Trip distance in metres, for cities without network data.
    #[arg(long)]
    distance_m: Option<u32>,
    /// Exit time, RFC 3339 (default: now). Business months use the city's local time.
    #[arg(long)]
    at: Option<String>,
    /// Minutes between entry and exit (default 30).
    #[arg(long, default_value_t = 30)]
    minutes: u32,
    /// Money already paid this month on trips that feed the monthly ladder.
    #[arg(long, default_value_t = 0)]
    month_spent_fen: u64,
    /// Rides already taken this month.
    #[arg(long, default_value_t = 0)]
    month_rides: u16,
    /// Rider category.
    #[arg(long, default_value = "adult", value_parser = ["adult", "student", "senior", "free"])]
    category: String,
    /// Paid area when a station name exists in several (e.g. capital-airport).
    #[arg(long)]
    area: Option<String>,
}

/// `fare matrix`.
#[derive(Args)]
pub struct MatrixArgs {
    /// Built-in city id or a city TOML file.
    #[arg(long, conflicts_with = "gtfs", required_unless_present = "gtfs")]
    city: Option<String>,
    /// A GTFS feed directory (fares from its fare table).
    #[arg(long)]
    gtfs: Option<PathBuf>,
    /// Paid area (default: the city's main area).
    #[arg(long)]
    area: Option<String>,
}

/// `fare check`.
#[derive(Args)]
pub struct CheckArgs {
    /// Built-in city id or a city TOML file.
    #[arg(long)]
    city: String,
}

fn load_city(arg: &str) -> Result<City> {
    let path = Path::new(arg);
    if arg.ends_with(".toml") || arg.contains('/') {
        let meta = std::fs::metadata(path).with_context(|| format!("reading city file {arg}"))?;
        if meta.len() > onecard_fares::rules::MAX_CITY_FILE_BYTES as u64 {
            bail!(
                "city file {arg} is larger than {} bytes",
                onecard_fares::rules::MAX_CITY_FILE_BYTES
            );
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading city file {arg}"))?;
        return builtin::city_from_toml(&text).with_context(|| format!("loading city file {arg}"));
    }
    builtin::city(arg).map_err(|e| anyhow!(e))
}

fn area_index(city: &City, area: Option<&str>) -> Result<u8> {
    let Some(a) = area else { return Ok(0) };
    let net = city
        .network()
        .ok_or_else(|| anyhow!("city {} has no network", city.rules.id))?;
    net.areas
        .iter()
        .position(|x| x == a)
        .map(|p| p as u8)
        .ok_or_else(|| anyhow!("unknown area {a:?}; areas: {}", net.areas.join(", ")))
}

fn quote(a: QuoteArgs) -> Result<()> {
    let city = load_city(&a.city)?;
    let at = match &a.at {
        Some(s) => onecard_fares::time::parse_rfc3339(s).map_err(|e| anyhow!(e))?,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    };
    let category =
        Category::parse(&a.category).ok_or_else(|| anyhow!("unknown category {}", a.category))?;
    let ym = onecard_fares::time::local_year_month(at, city.rules.utc_offset_minutes);
    let month = RiderMonth {
        year_month: ym,
        spent: Fen::new(a.month_spent_fen),
        rides: a.month_rides,
    };
    let (q, from_name, to_name, path) = match (&a.from, &a.to, a.distance_m) {
        (Some(from), Some(to), _) => {
            let net = city.network().ok_or_else(|| {
                anyhow!(
                    "city {} has no network data; use --distance-m",
                    city.rules.id
                )
            })?;
            let pref = area_index(&city, a.area.as_deref())?;
            let find = |name: &str| -> Result<u16> {
                // Prefer the asked area, else the area both stations share.
                net.station_in(name, Some(pref)).map_err(|e| anyhow!(e))
            };
            let (mut fa, mut tb) = (find(from)?, find(to)?);
            if net.stations[usize::from(fa)].area != net.stations[usize::from(tb)].area {
                // e.g. 3号航站楼 → 东直门: pick the area where both names exist.
                'outer: for &x in net.stations_named(from) {
                    for &y in net.stations_named(to) {
                        if net.stations[usize::from(x)].area == net.stations[usize::from(y)].area {
                            (fa, tb) = (x, y);
                            break 'outer;
                        }
                    }
                }
            }
            let trip = MetroTrip {
                entry: Some(Tap {
                    station: fa,
                    at_utc: at - i64::from(a.minutes) * 60,
                }),
                exit: Tap {
                    station: tb,
                    at_utc: at,
                },
                category,
                month,
                previous: None,
            };
            let q = city.quote(&trip).map_err(|e| anyhow!(e))?;
            let path: Vec<String> = net
                .path(fa, tb)
                .iter()
                .map(|&s| net.stations[usize::from(s)].name.clone())
                .collect();
            (q, from.clone(), to.clone(), path)
        }
        (None, None, Some(d)) => {
            let q = city
                .quote_distance(d, at, category, month, None)
                .map_err(|e| anyhow!(e))?;
            (q, String::new(), String::new(), Vec::new())
        }
        _ => bail!("give --from and --to, or --distance-m"),
    };
    let area = match (city.network(), q.area) {
        (Some(n), Some(a)) => n.areas.get(usize::from(a)).cloned(),
        _ => None,
    };
    let out = json!({
        "city": city.rules.id,
        "from": from_name,
        "to": to_name,
        "area": area,
        "distance_m": q.distance_m,
        "fare_fen": q.fare.get(),
        "fare_yuan": q.fare.to_string(),
        "full_fare_fen": q.full_fare.get(),
        "band": q.band,
        "category": category.key(),
        "path": path,
        "breakdown": q.breakdown.iter().map(Item::to_json).collect::<Vec<_>>(),
        "new_month": {"year_month": q.new_month.year_month, "spent_fen": q.new_month.spent.get(), "rides": q.new_month.rides},
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// RFC 4180 quoting, only when needed.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn matrix(a: MatrixArgs) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    writeln!(out, "from,to,distance_m,fare_fen")?;
    if let Some(dir) = &a.gtfs {
        let (feed, report) = gtfs::load_dir(dir)
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("loading GTFS feed {}", dir.display()))?;
        for issue in report.issues.iter().take(50) {
            eprintln!("{issue}");
        }
        if report.issues.len() > 50 {
            eprintln!("... {} more issues", report.issues.len() - 50);
        }
        for r in feed.matrix().map_err(|e| anyhow!(e))? {
            let d = r.distance_m.map(|d| d.to_string()).unwrap_or_default();
            let f = r.fare_minor.map(|f| f.to_string()).unwrap_or_default();
            writeln!(out, "{},{},{d},{f}", csv_field(&r.from), csv_field(&r.to))?;
        }
        out.flush()?;
        return Ok(());
    }
    let city = load_city(a.city.as_deref().unwrap_or_default())?;
    let area = area_index(&city, a.area.as_deref())?;
    let net = city
        .network()
        .ok_or_else(|| anyhow!("city {} has no network data", city.rules.id))?;
    for (from, to, d, f) in city.matrix(area).map_err(|e| anyhow!(e))? {
        let (fname, tname) = (
            &net.stations[usize::from(from)].name,
            &net.stations[usize::from(to)].name,
        );
        writeln!(
            out,
            "{},{},{d},{}",
            csv_field(fname),
            csv_field(tname),
            f.get()
        )?;
    }
    out.flush()?;
    Ok(())
}

fn check(a: CheckArgs) -> Result<()> {
    let city = load_city(&a.city)?;
    let r = &city.rules;
    println!(
        "city {} ({}), format_version {}, currency {}, UTC{:+}min, rounding {:?}",
        r.id, r.name, r.format_version, r.currency, r.utc_offset_minutes, r.rounding
    );
    if let Some(m) = &r.metro {
        println!(
            "metro: network {}, default area {}, {} fare tables, {} areas",
            m.network,
            m.default_area,
            m.fare_table.len(),
            m.area.len()
        );
        if let Some(l) = &m.monthly {
            println!(
                "  monthly ladder: {:?} / {:?}: {}",
                l.measure,
                l.reading,
                l.steps
                    .iter()
                    .map(|s| format!("from {} → {}%", s.from, s.percent))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if let Some(t) = m.time_limit_min {
            println!("  time limit {t} min, overstay {:?}", m.overstay);
        }
        println!(
            "  missing entry {:?}, missing exit {:?}, same station {:?}",
            m.missing_entry, m.missing_exit, m.same_station
        );
        if let Some(net) = city.network() {
            for (i, a) in net.areas.iter().enumerate() {
                let ids: Vec<u16> = net.area_stations(i as u8).collect();
                let lines = net
                    .lines
                    .iter()
                    .filter(|l| usize::from(l.area) == i)
                    .count();
                let connected = ids
                    .iter()
                    .all(|&x| ids.iter().all(|&y| net.distance(x, y).is_some()));
                println!(
                    "  area {a}: {} lines, {} stations, {}connected, highest fare {}",
                    lines,
                    ids.len(),
                    if connected { "" } else { "NOT " },
                    city.area_max_fare(i as u8).unwrap_or_default()
                );
            }
            println!(
                "  tables: {} bytes (distance + next hop), {} out-of-station transfers",
                net.table_bytes(),
                net.out_of_station.len()
            );
        }
    }
    if let Some(b) = &r.bus {
        println!(
            "bus: flat {:?}, distance table {}, {} lines, card {}%",
            b.flat_fen,
            b.distance.is_some(),
            b.line.len(),
            b.card_percent
        );
    }
    for t in &r.transfer_discount {
        println!(
            "transfer discount {:?} → {:?} within {} min: {} fen off",
            t.from_mode, t.to_mode, t.window_min, t.off_fen
        );
    }
    for n in &r.notes {
        println!("note: {n}");
    }
    let text = builtin::CITIES
        .iter()
        .find(|c| c.0 == a.city)
        .map(|c| c.1.to_string())
        .or_else(|| std::fs::read_to_string(&a.city).ok())
        .unwrap_or_default();
    println!(
        "UNVERIFIED rules marked in the file: {}",
        text.matches("UNVERIFIED").count()
    );
    println!("ok");
    Ok(())
}

/// Runs a fare subcommand.
pub fn run(cmd: FareCommand) -> Result<()> {
    match cmd {
        FareCommand::Quote(a) => quote(a),
        FareCommand::Matrix(a) => matrix(a),
        FareCommand::Check(a) => check(a),
    }
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `onecard bench fare`: build time of Beijing (load + all pairs priced), quote throughput
/// over random pairs (fixed seed), peak RSS. Last line: one JSON object.
pub fn bench_fare() -> Result<()> {
    let mut build_ms = f64::MAX;
    let mut city = None;
    for _ in 0..5 {
        let t = Instant::now();
        let c = builtin::city("beijing").map_err(|e| anyhow!(e))?;
        let pairs = c.matrix(0).map_err(|e| anyhow!(e))?.len();
        build_ms = build_ms.min(t.elapsed().as_secs_f64() * 1e3);
        eprintln!("beijing: {pairs} ordered pairs priced");
        city = Some(c);
    }
    let city = city.ok_or_else(|| anyhow!("no city"))?;
    let net = city.network().ok_or_else(|| anyhow!("no network"))?;
    let ids: Vec<u16> = net.area_stations(0).collect();
    let n = ids.len() as u64;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let quotes: u64 = 2_000_000;
    let mut total = 0u64;
    let t = Instant::now();
    for i in 0..quotes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let trip = MetroTrip {
            entry: Some(Tap {
                station: ids[(x % n) as usize],
                at_utc: 1_740_787_200,
            }),
            exit: Tap {
                station: ids[((x >> 32) % n) as usize],
                at_utc: 1_740_789_000,
            },
            category: Category::Adult,
            month: RiderMonth {
                year_month: 202_503,
                spent: Fen::new(i % 50_000),
                rides: 10,
            },
            previous: None,
        };
        let q = city
            .quote(std::hint::black_box(&trip))
            .map_err(|e| anyhow!(e))?;
        total = total.wrapping_add(q.fare.get());
    }
    let secs = t.elapsed().as_secs_f64();
    let qps = quotes as f64 / secs;
    eprintln!(
        "{quotes} quotes in {secs:.3} s ({:.0} ns/quote), checksum {total}; tables {} bytes",
        secs * 1e9 / quotes as f64,
        net.table_bytes()
    );
    println!(
        "{}",
        json!({"quotes_per_s": qps.round(), "build_ms": (build_ms * 100.0).round() / 100.0, "peak_rss_mb": (peak_rss_mb() * 10.0).round() / 10.0})
    );
    Ok(())
}
