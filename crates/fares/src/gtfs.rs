//! GTFS import: stops, routes, trips, stop_times (`shape_dist_traveled`), transfers, and fares
//! in GTFS Fares v1 and Fares v2.
//!
//! Why our own reader on the `csv` crate rather than `gtfs-structures`: that crate brings
//! chrono and a large dependency tree (slow to build on 2 cores), stops at the first bad row
//! instead of reporting line-numbered errors and loading the rest, and models only part of
//! Fares v2 (no `fare_transfer_rules` duration types or `timeframes`). Here every file is read
//! row by row; a broken row is reported with its line number and skipped, and the feed loads
//! partially.
//!
//! Money stays in the feed currency's minor unit (integer; cents, fen, yen) and is never a
//! float: `amount = "2.40"` is parsed digit by digit.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::Path;

use crate::error::{FareError, Result};
use crate::time::days_from_civil;

/// Largest GTFS file read, bytes.
pub const MAX_FILE_BYTES: u64 = 2 << 30;
/// Most rows read from one GTFS file.
pub const MAX_ROWS: usize = 50_000_000;
/// Most stations in a matrix.
pub const MAX_MATRIX_STATIONS: usize = 20_000;
/// Most issues kept in a report (the count goes on).
pub const MAX_ISSUES: usize = 10_000;

/// Severity of a load issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The row was skipped.
    Error,
    /// The row was loaded, with a repair.
    Warning,
}

/// One problem found while loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// File name (`fare_leg_rules.txt`).
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// Error (row skipped) or warning.
    pub severity: Severity,
    /// What.
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}:{}: {s}: {}", self.file, self.line, self.message)
    }
}

/// What was loaded and what was not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Issues, in file order (at most [`MAX_ISSUES`]).
    pub issues: Vec<Issue>,
    /// Issues not kept because of the cap.
    pub dropped_issues: usize,
    /// Per file: `(name, rows loaded, rows skipped)`.
    pub files: Vec<(String, usize, usize)>,
}

impl LoadReport {
    /// Number of rows skipped as errors.
    pub fn errors(&self) -> usize {
        self.issues
            .iter()
            .filter(|i| i.severity == Severity::Error)
            .count()
    }
    fn push(&mut self, file: &str, line: u64, severity: Severity, message: String) {
        if self.issues.len() < MAX_ISSUES {
            self.issues.push(Issue {
                file: file.to_string(),
                line,
                severity,
                message,
            });
        } else {
            self.dropped_issues += 1;
        }
    }
}

/// A parsed CSV file: header and rows with their line numbers.
struct Table {
    name: String,
    cols: HashMap<String, usize>,
    rows: Vec<(u64, Vec<String>)>,
}

impl Table {
    fn get<'a>(&self, row: &'a [String], col: &str) -> &'a str {
        self.cols
            .get(col)
            .and_then(|&i| row.get(i))
            .map_or("", String::as_str)
    }
    fn has(&self, col: &str) -> bool {
        self.cols.contains_key(col)
    }
}

fn read_table(dir: &Path, name: &str, report: &mut LoadReport) -> Result<Option<Table>> {
    let path = dir.join(name);
    let Ok(meta) = std::fs::metadata(&path) else {
        return Ok(None);
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(FareError::Limit {
            what: "GTFS file size (bytes)",
            max: MAX_FILE_BYTES,
        });
    }
    let bytes = std::fs::read(&path)
        .map_err(|e| FareError::Io(path.display().to_string(), e.to_string()))?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rec = csv::ByteRecord::new();
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    let (mut ok, mut skipped) = (0usize, 0usize);
    loop {
        let line = rdr.position().line();
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                report.push(
                    name,
                    line,
                    Severity::Error,
                    format!("unreadable CSV: {e}; rest of file skipped"),
                );
                skipped += 1;
                break;
            }
        }
        let line = rec.position().map_or(line, |p| p.line());
        let fields: Vec<String> = rec
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        let Some(h) = &header else {
            header = Some(fields.iter().map(|f| f.trim().to_string()).collect());
            continue;
        };
        if fields.len() == 1 && fields[0].trim().is_empty() {
            continue; // blank line
        }
        if rows.len() >= MAX_ROWS {
            return Err(FareError::Limit {
                what: "GTFS rows per file",
                max: MAX_ROWS as u64,
            });
        }
        if fields.len() > h.len() {
            report.push(
                name,
                line,
                Severity::Error,
                format!(
                    "{} fields, header has {} (unquoted comma?); row skipped",
                    fields.len(),
                    h.len()
                ),
            );
            skipped += 1;
            continue;
        }
        if let Some((i, _)) = fields
            .iter()
            .enumerate()
            .find(|(_, f)| f.chars().any(|c| c.is_control() && c != '\n' && c != '\r'))
        {
            report.push(
                name,
                line,
                Severity::Error,
                format!(
                    "field {} contains a control character (tab?); row skipped",
                    h[i]
                ),
            );
            skipped += 1;
            continue;
        }
        let mut fields: Vec<String> = fields.into_iter().map(|f| f.trim().to_string()).collect();
        if fields.len() < h.len() {
            report.push(
                name,
                line,
                Severity::Warning,
                format!(
                    "{} fields, header has {}; missing trailing fields read as empty",
                    fields.len(),
                    h.len()
                ),
            );
            fields.resize(h.len(), String::new());
        }
        rows.push((line, fields));
        ok += 1;
    }
    report.files.push((name.to_string(), ok, skipped));
    let cols = header
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, c)| (c, i))
        .collect();
    Ok(Some(Table {
        name: name.to_string(),
        cols,
        rows,
    }))
}

/// Minor-unit exponent of an ISO 4217 currency (2 unless listed).
pub fn currency_decimals(code: &str) -> u32 {
    match code.to_ascii_uppercase().as_str() {
        "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "UGX" | "XAF" | "XOF" | "XPF" | "PYG" | "RWF"
        | "KMF" | "GNF" | "DJF" | "BIF" | "VUV" => 0,
        "BHD" | "KWD" | "OMR" | "JOD" | "TND" | "LYD" | "IQD" => 3,
        _ => 2,
    }
}

/// Parses a decimal amount into minor units, exactly. Extra non-zero decimals are an error.
pub fn parse_amount(s: &str, decimals: u32) -> std::result::Result<u64, String> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("bad amount {s:?}"));
    }
    let d = decimals as usize;
    let (keep, extra) = if frac.len() > d {
        frac.split_at(d)
    } else {
        (frac, "")
    };
    if extra.bytes().any(|b| b != b'0') {
        return Err(format!(
            "amount {s:?} has more decimals than the currency's minor unit"
        ));
    }
    let mut v: u64 = 0;
    for b in int
        .bytes()
        .chain(keep.bytes())
        .chain(std::iter::repeat_n(b'0', d - keep.len()))
    {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or_else(|| format!("amount {s:?} too large"))?;
    }
    Ok(v)
}

/// Parses a GTFS time `H:MM:SS` (hours may exceed 24) into seconds.
pub fn parse_gtfs_time(s: &str) -> Option<u32> {
    let mut it = s.trim().split(':');
    let h: u32 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let sec: u32 = it.next()?.parse().ok()?;
    (it.next().is_none() && m < 60 && sec < 61).then_some(h * 3600 + m * 60 + sec)
}

fn parse_date(s: &str) -> Option<i64> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = s[0..4].parse().ok()?;
    let m: u32 = s[4..6].parse().ok()?;
    let d: u32 = s[6..8].parse().ok()?;
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then(|| days_from_civil(y, m, d))
}

/// A stop or station.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    /// `stop_id`.
    pub id: String,
    /// `stop_name`.
    pub name: String,
    /// `parent_station` (empty if none).
    pub parent: String,
    /// `zone_id` (Fares v1).
    pub zone: String,
    /// `location_type` (0 stop, 1 station, 2 entrance, 3 node, 4 boarding area).
    pub location_type: u8,
    /// Coordinates, when given.
    pub lat_lon: Option<(f64, f64)>,
}

/// A fare product row (Fares v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// `fare_product_id`.
    pub id: String,
    /// Amount in minor units.
    pub amount: u64,
    /// Currency code.
    pub currency: String,
    /// `rider_category_id` (may be empty).
    pub rider_category: String,
    /// `fare_media_id` (may be empty).
    pub media: String,
}

/// A `fare_leg_rules.txt` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegRule {
    /// File line.
    pub line: u64,
    /// `leg_group_id`.
    pub leg_group: String,
    /// `network_id`.
    pub network: String,
    /// `from_area_id`.
    pub from_area: String,
    /// `to_area_id`.
    pub to_area: String,
    /// `from_timeframe_group_id`.
    pub from_timeframe: String,
    /// `to_timeframe_group_id`.
    pub to_timeframe: String,
    /// `fare_product_id`.
    pub product: String,
    /// `rule_priority` (0 when empty).
    pub priority: i64,
}

/// A `fare_transfer_rules.txt` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRule {
    /// File line.
    pub line: u64,
    /// `from_leg_group_id`.
    pub from_group: String,
    /// `to_leg_group_id`.
    pub to_group: String,
    /// `transfer_count`: `None` when empty, -1 unlimited.
    pub transfer_count: Option<i64>,
    /// `duration_limit` in seconds.
    pub duration_limit: Option<i64>,
    /// `duration_limit_type` 0..=3.
    pub duration_limit_type: u8,
    /// `fare_transfer_type` 0 (A+AB), 1 (A+AB+B), 2 (AB).
    pub fare_transfer_type: u8,
    /// `fare_product_id` (empty = free transfer).
    pub product: String,
}

/// A `timeframes.txt` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeframe {
    /// `timeframe_group_id`.
    pub group: String,
    /// Start, seconds of day (inclusive).
    pub start: u32,
    /// End, seconds of day (exclusive).
    pub end: u32,
    /// `service_id`.
    pub service: String,
}

/// A `fare_attributes.txt` row with its rules (Fares v1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Fare {
    /// `fare_id`.
    pub id: String,
    /// Price in minor units.
    pub price: u64,
    /// `(route_id, origin_id, destination_id, contains_id)` rows of fare_rules.txt.
    pub rules: Vec<[String; 4]>,
}

/// A leg of a journey to price with Fares v2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leg {
    /// `route_id` ridden.
    pub route: String,
    /// Boarding stop.
    pub from_stop: String,
    /// Alighting stop.
    pub to_stop: String,
    /// Departure, local seconds since 1970-01-01 (so the date and time of day are known).
    pub depart: i64,
    /// Arrival, local seconds since 1970-01-01.
    pub arrive: i64,
}

/// Priced journey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JourneyPrice {
    /// Total in minor units.
    pub total: u64,
    /// Per leg: `(leg_group_id, fare_product_id, amount)` of the matched leg rule.
    pub legs: Vec<(String, String, u64)>,
    /// Per leg after the first: the line of the transfer rule applied, if any.
    pub transfers: Vec<Option<u64>>,
}

/// One matrix row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixRow {
    /// Parent station `stop_id` (or the stop's own id when it has no parent).
    pub from: String,
    /// Same for the destination.
    pub to: String,
    /// Shortest distance in metres, when the stations are connected.
    pub distance_m: Option<u32>,
    /// Fare from the feed's fare table, in the currency's minor unit.
    pub fare_minor: Option<u64>,
}

/// A stop of a trip: `stop_id` and `shape_dist_traveled`.
type TripStop = (String, Option<f64>);
/// A direct way from one station to another: route and the zones passed.
type DirectOption = (String, BTreeSet<String>);

/// A loaded GTFS feed.
#[derive(Debug, Clone, Default)]
pub struct Feed {
    /// Stops by id.
    pub stops: BTreeMap<String, Stop>,
    /// Station keys (parent or self), in `stops.txt` order.
    pub stations: Vec<String>,
    station_index: HashMap<String, usize>,
    /// `route_id` → network ids (routes.network_id and route_networks.txt).
    pub route_networks: HashMap<String, Vec<String>>,
    /// Trips: `route_id` and the stop sequence `(stop_id, shape_dist_traveled)`.
    trips: Vec<(String, Vec<TripStop>)>,
    transfers: Vec<(String, String)>,
    /// Stop → areas (stop_areas.txt).
    pub stop_areas: HashMap<String, Vec<String>>,
    /// Fares v1.
    pub v1: Vec<V1Fare>,
    /// Fares v2 products.
    pub products: Vec<Product>,
    /// Fares v2 leg rules.
    pub leg_rules: Vec<LegRule>,
    /// Whether `fare_leg_rules.txt` has a `rule_priority` column (changes empty-field meaning).
    pub has_priority: bool,
    /// Fares v2 transfer rules.
    pub transfer_rules: Vec<TransferRule>,
    /// Timeframes.
    pub timeframes: Vec<Timeframe>,
    /// Default rider categories (`is_default_fare_category = 1`).
    pub default_categories: HashSet<String>,
    /// Services: `service_id` → (weekday mask Mon=bit0, start day, end day).
    calendar: HashMap<String, (u8, i64, i64)>,
    /// `(service_id, day)` → added (true) / removed (false).
    calendar_dates: HashMap<(String, i64), bool>,
    /// Metres per `shape_dist_traveled` unit, as inferred.
    pub shape_unit_m: f64,
}

/// Loads a GTFS feed directory (unzipped). Broken rows are reported and skipped.
pub fn load_dir(dir: &Path) -> Result<(Feed, LoadReport)> {
    if !dir.is_dir() {
        return Err(FareError::Gtfs(format!(
            "{} is not a directory (unzip the feed first)",
            dir.display()
        )));
    }
    let mut rep = LoadReport::default();
    let mut feed = Feed {
        shape_unit_m: 1.0,
        ..Feed::default()
    };
    let stops = read_table(dir, "stops.txt", &mut rep)?
        .ok_or_else(|| FareError::Gtfs("stops.txt missing".into()))?;
    for (line, r) in &stops.rows {
        let id = stops.get(r, "stop_id");
        if id.is_empty() {
            rep.push(
                &stops.name,
                *line,
                Severity::Error,
                "empty stop_id; row skipped".into(),
            );
            continue;
        }
        let lt = stops.get(r, "location_type");
        let location_type = if lt.is_empty() {
            0
        } else {
            lt.parse().unwrap_or(0)
        };
        let lat_lon = match (
            stops.get(r, "stop_lat").parse::<f64>(),
            stops.get(r, "stop_lon").parse::<f64>(),
        ) {
            (Ok(a), Ok(b)) if a.abs() <= 90.0 && b.abs() <= 180.0 => Some((a, b)),
            _ => None,
        };
        let stop = Stop {
            id: id.into(),
            name: stops.get(r, "stop_name").into(),
            parent: stops.get(r, "parent_station").into(),
            zone: stops.get(r, "zone_id").into(),
            location_type,
            lat_lon,
        };
        if feed.stops.insert(id.to_string(), stop).is_some() {
            rep.push(
                &stops.name,
                *line,
                Severity::Warning,
                format!("duplicate stop_id {id}; last row kept"),
            );
        }
    }
    let order: Vec<String> = stops
        .rows
        .iter()
        .map(|(_, r)| stops.get(r, "stop_id").to_string())
        .collect();
    for id in order {
        let Some(s) = feed.stops.get(&id) else {
            continue;
        };
        if s.location_type > 1 {
            continue;
        }
        let key = feed.station_key(&id);
        if !feed.station_index.contains_key(&key) {
            if feed.stations.len() >= MAX_MATRIX_STATIONS {
                return Err(FareError::Limit {
                    what: "GTFS stations",
                    max: MAX_MATRIX_STATIONS as u64,
                });
            }
            feed.station_index.insert(key.clone(), feed.stations.len());
            feed.stations.push(key);
        }
    }
    if let Some(t) = read_table(dir, "routes.txt", &mut rep)? {
        for (_, r) in &t.rows {
            let net = t.get(r, "network_id");
            let e = feed
                .route_networks
                .entry(t.get(r, "route_id").to_string())
                .or_default();
            if !net.is_empty() {
                e.push(net.to_string());
            }
        }
    }
    if let Some(t) = read_table(dir, "route_networks.txt", &mut rep)? {
        for (_, r) in &t.rows {
            feed.route_networks
                .entry(t.get(r, "route_id").to_string())
                .or_default()
                .push(t.get(r, "network_id").to_string());
        }
    }
    let mut trip_route: HashMap<String, String> = HashMap::new();
    if let Some(t) = read_table(dir, "trips.txt", &mut rep)? {
        for (_, r) in &t.rows {
            trip_route.insert(
                t.get(r, "trip_id").to_string(),
                t.get(r, "route_id").to_string(),
            );
        }
    }
    if let Some(t) = read_table(dir, "stop_times.txt", &mut rep)? {
        let mut by_trip: HashMap<String, Vec<(u32, String, Option<f64>)>> = HashMap::new();
        for (line, r) in &t.rows {
            let trip = t.get(r, "trip_id");
            let Ok(seq) = t.get(r, "stop_sequence").parse::<u32>() else {
                rep.push(
                    &t.name,
                    *line,
                    Severity::Error,
                    "bad stop_sequence; row skipped".into(),
                );
                continue;
            };
            let stop = t.get(r, "stop_id");
            if !feed.stops.contains_key(stop) {
                rep.push(
                    &t.name,
                    *line,
                    Severity::Error,
                    format!("unknown stop_id {stop}; row skipped"),
                );
                continue;
            }
            let sd = t.get(r, "shape_dist_traveled");
            let sd = if sd.is_empty() {
                None
            } else {
                sd.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
            };
            by_trip
                .entry(trip.to_string())
                .or_default()
                .push((seq, stop.to_string(), sd));
        }
        let mut ids: Vec<_> = by_trip.into_iter().collect();
        ids.sort_by(|a, b| a.0.cmp(&b.0));
        for (trip, mut v) in ids {
            v.sort_by_key(|x| x.0);
            let route = trip_route.get(&trip).cloned().unwrap_or_default();
            feed.trips
                .push((route, v.into_iter().map(|x| (x.1, x.2)).collect()));
        }
    }
    if let Some(t) = read_table(dir, "transfers.txt", &mut rep)? {
        for (_, r) in &t.rows {
            let (a, b) = (t.get(r, "from_stop_id"), t.get(r, "to_stop_id"));
            if feed.stops.contains_key(a)
                && feed.stops.contains_key(b)
                && t.get(r, "transfer_type") != "3"
            {
                feed.transfers.push((a.to_string(), b.to_string()));
            }
        }
    }
    // Read only to report their broken rows; matching uses the ids where they are referenced.
    for name in ["agency.txt", "areas.txt", "networks.txt", "fare_media.txt"] {
        read_table(dir, name, &mut rep)?;
    }
    feed.load_calendar(dir, &mut rep)?;
    feed.load_v1(dir, &mut rep)?;
    feed.load_v2(dir, &mut rep)?;
    feed.shape_unit_m = feed.infer_shape_unit();
    Ok((feed, rep))
}

fn haversine_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let r = 6_371_008.8_f64;
    let (la1, lo1, la2, lo2) = (
        a.0.to_radians(),
        a.1.to_radians(),
        b.0.to_radians(),
        b.1.to_radians(),
    );
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().asin()
}

impl Feed {
    /// The station a stop belongs to: its parent station, or itself.
    pub fn station_key(&self, stop: &str) -> String {
        match self.stops.get(stop) {
            Some(s) if !s.parent.is_empty() && self.stops.contains_key(&s.parent) => {
                // Boarding areas hang under platforms, which hang under stations.
                let p = &self.stops[&s.parent];
                if !p.parent.is_empty() && self.stops.contains_key(&p.parent) {
                    p.parent.clone()
                } else {
                    s.parent.clone()
                }
            }
            _ => stop.to_string(),
        }
    }

    fn load_calendar(&mut self, dir: &Path, rep: &mut LoadReport) -> Result<()> {
        if let Some(t) = read_table(dir, "calendar.txt", rep)? {
            for (line, r) in &t.rows {
                let days = [
                    "monday",
                    "tuesday",
                    "wednesday",
                    "thursday",
                    "friday",
                    "saturday",
                    "sunday",
                ];
                let mask = days.iter().enumerate().fold(0u8, |m, (i, d)| {
                    if t.get(r, d) == "1" {
                        m | 1 << i
                    } else {
                        m
                    }
                });
                match (
                    parse_date(t.get(r, "start_date")),
                    parse_date(t.get(r, "end_date")),
                ) {
                    (Some(s), Some(e)) => {
                        self.calendar
                            .insert(t.get(r, "service_id").to_string(), (mask, s, e));
                    }
                    _ => rep.push(
                        &t.name,
                        *line,
                        Severity::Error,
                        "bad start_date/end_date; row skipped".into(),
                    ),
                }
            }
        }
        if let Some(t) = read_table(dir, "calendar_dates.txt", rep)? {
            for (line, r) in &t.rows {
                match (parse_date(t.get(r, "date")), t.get(r, "exception_type")) {
                    (Some(d), "1") => {
                        self.calendar_dates
                            .insert((t.get(r, "service_id").to_string(), d), true);
                    }
                    (Some(d), "2") => {
                        self.calendar_dates
                            .insert((t.get(r, "service_id").to_string(), d), false);
                    }
                    _ => rep.push(
                        &t.name,
                        *line,
                        Severity::Error,
                        "bad date or exception_type; row skipped".into(),
                    ),
                }
            }
        }
        Ok(())
    }

    /// Whether a service runs on a local day (days since 1970-01-01).
    pub fn service_active(&self, service: &str, day: i64) -> bool {
        if let Some(&v) = self.calendar_dates.get(&(service.to_string(), day)) {
            return v;
        }
        // 1970-01-01 was a Thursday (bit 3 with Monday = bit 0).
        let wd = (day + 3).rem_euclid(7) as u8;
        self.calendar
            .get(service)
            .is_some_and(|&(mask, s, e)| day >= s && day <= e && mask & (1 << wd) != 0)
    }

    fn load_v1(&mut self, dir: &Path, rep: &mut LoadReport) -> Result<()> {
        let Some(t) = read_table(dir, "fare_attributes.txt", rep)? else {
            return Ok(());
        };
        for (line, r) in &t.rows {
            let id = t.get(r, "fare_id");
            let cur = t.get(r, "currency_type");
            match parse_amount(t.get(r, "price"), currency_decimals(cur)) {
                Ok(p) if !id.is_empty() => self.v1.push(V1Fare {
                    id: id.into(),
                    price: p,
                    rules: Vec::new(),
                }),
                Ok(_) => rep.push(
                    &t.name,
                    *line,
                    Severity::Error,
                    "empty fare_id; row skipped".into(),
                ),
                Err(e) => rep.push(&t.name, *line, Severity::Error, format!("{e}; row skipped")),
            }
        }
        if let Some(t) = read_table(dir, "fare_rules.txt", rep)? {
            for (line, r) in &t.rows {
                let id = t.get(r, "fare_id");
                match self.v1.iter_mut().find(|f| f.id == id) {
                    Some(f) => f.rules.push(
                        ["route_id", "origin_id", "destination_id", "contains_id"]
                            .map(|c| t.get(r, c).to_string()),
                    ),
                    None => rep.push(
                        &t.name,
                        *line,
                        Severity::Error,
                        format!("unknown fare_id {id}; row skipped"),
                    ),
                }
            }
        }
        Ok(())
    }

    fn load_v2(&mut self, dir: &Path, rep: &mut LoadReport) -> Result<()> {
        if let Some(t) = read_table(dir, "rider_categories.txt", rep)? {
            for (_, r) in &t.rows {
                if t.get(r, "is_default_fare_category") == "1" {
                    self.default_categories
                        .insert(t.get(r, "rider_category_id").to_string());
                }
            }
        }
        if let Some(t) = read_table(dir, "fare_products.txt", rep)? {
            for (line, r) in &t.rows {
                let cur = t.get(r, "currency");
                match parse_amount(t.get(r, "amount"), currency_decimals(cur)) {
                    Ok(a) => self.products.push(Product {
                        id: t.get(r, "fare_product_id").into(),
                        amount: a,
                        currency: cur.into(),
                        rider_category: t.get(r, "rider_category_id").into(),
                        media: t.get(r, "fare_media_id").into(),
                    }),
                    Err(e) => {
                        rep.push(&t.name, *line, Severity::Error, format!("{e}; row skipped"))
                    }
                }
            }
        }
        if let Some(t) = read_table(dir, "stop_areas.txt", rep)? {
            for (_, r) in &t.rows {
                self.stop_areas
                    .entry(t.get(r, "stop_id").to_string())
                    .or_default()
                    .push(t.get(r, "area_id").to_string());
            }
        }
        if let Some(t) = read_table(dir, "timeframes.txt", rep)? {
            for (line, r) in &t.rows {
                let st = t.get(r, "start_time");
                let et = t.get(r, "end_time");
                let start = if st.is_empty() {
                    Some(0)
                } else {
                    parse_gtfs_time(st)
                };
                let end = if et.is_empty() {
                    Some(86_400)
                } else {
                    parse_gtfs_time(et)
                };
                match (start, end) {
                    (Some(s), Some(e)) if s < e => self.timeframes.push(Timeframe {
                        group: t.get(r, "timeframe_group_id").into(),
                        start: s,
                        end: e,
                        service: t.get(r, "service_id").into(),
                    }),
                    _ => rep.push(
                        &t.name,
                        *line,
                        Severity::Error,
                        "bad start_time/end_time; row skipped".into(),
                    ),
                }
            }
        }
        if let Some(t) = read_table(dir, "fare_leg_rules.txt", rep)? {
            self.has_priority = t.has("rule_priority");
            for (line, r) in &t.rows {
                let product = t.get(r, "fare_product_id");
                if !self.products.iter().any(|p| p.id == product) {
                    rep.push(
                        &t.name,
                        *line,
                        Severity::Error,
                        format!("unknown fare_product_id {product:?}; row skipped"),
                    );
                    continue;
                }
                let pr = t.get(r, "rule_priority");
                let priority = if pr.is_empty() {
                    0
                } else if let Ok(p) = pr.parse() {
                    p
                } else {
                    rep.push(
                        &t.name,
                        *line,
                        Severity::Error,
                        format!("bad rule_priority {pr:?}; row skipped"),
                    );
                    continue;
                };
                self.leg_rules.push(LegRule {
                    line: *line,
                    leg_group: t.get(r, "leg_group_id").into(),
                    network: t.get(r, "network_id").into(),
                    from_area: t.get(r, "from_area_id").into(),
                    to_area: t.get(r, "to_area_id").into(),
                    from_timeframe: t.get(r, "from_timeframe_group_id").into(),
                    to_timeframe: t.get(r, "to_timeframe_group_id").into(),
                    product: product.into(),
                    priority,
                });
            }
        }
        if let Some(t) = read_table(dir, "fare_transfer_rules.txt", rep)? {
            for (line, r) in &t.rows {
                let int = |c: &str| -> std::result::Result<Option<i64>, String> {
                    let v = t.get(r, c);
                    if v.is_empty() {
                        Ok(None)
                    } else {
                        v.parse().map(Some).map_err(|_| format!("bad {c} {v:?}"))
                    }
                };
                let parsed = (|| -> std::result::Result<TransferRule, String> {
                    let from_group = t.get(r, "from_leg_group_id").to_string();
                    let to_group = t.get(r, "to_leg_group_id").to_string();
                    let transfer_count = int("transfer_count")?;
                    if matches!(transfer_count, Some(c) if c == 0 || c < -1) {
                        return Err("transfer_count must be -1 or >= 1".into());
                    }
                    let duration_limit = int("duration_limit")?;
                    let dlt = int("duration_limit_type")?;
                    if duration_limit.is_some() != dlt.is_some() {
                        return Err("duration_limit and duration_limit_type go together".into());
                    }
                    let dlt = dlt.unwrap_or(0);
                    let ftt = int("fare_transfer_type")?.ok_or("fare_transfer_type is required")?;
                    if !(0..=3).contains(&dlt) || !(0..=2).contains(&ftt) {
                        return Err("duration_limit_type or fare_transfer_type out of range".into());
                    }
                    let product = t.get(r, "fare_product_id").to_string();
                    if !product.is_empty() && !self.products.iter().any(|p| p.id == product) {
                        return Err(format!("unknown fare_product_id {product:?}"));
                    }
                    Ok(TransferRule {
                        line: *line,
                        from_group,
                        to_group,
                        transfer_count,
                        duration_limit,
                        duration_limit_type: dlt as u8,
                        fare_transfer_type: ftt as u8,
                        product,
                    })
                })();
                match parsed {
                    Ok(rule) => self.transfer_rules.push(rule),
                    Err(e) => {
                        rep.push(&t.name, *line, Severity::Error, format!("{e}; row skipped"))
                    }
                }
            }
        }
        Ok(())
    }

    /// Metres per `shape_dist_traveled` unit: the unit (m, km, mi, ft) whose scale makes
    /// the track about 1.15× the straight line between consecutive stops.
    fn infer_shape_unit(&self) -> f64 {
        let mut ratios = Vec::new();
        for (_, stops) in &self.trips {
            for w in stops.windows(2) {
                let (Some(a), Some(b)) = (w[0].1, w[1].1) else {
                    continue;
                };
                let (Some(pa), Some(pb)) = (
                    self.stops.get(&w[0].0).and_then(|s| s.lat_lon),
                    self.stops.get(&w[1].0).and_then(|s| s.lat_lon),
                ) else {
                    continue;
                };
                let geo = haversine_m(pa, pb);
                if geo > 100.0 && b > a {
                    ratios.push((b - a) / geo);
                }
                if ratios.len() > 10_000 {
                    break;
                }
            }
        }
        if ratios.is_empty() {
            return 1.0;
        }
        ratios.sort_by(f64::total_cmp);
        let med = ratios[ratios.len() / 2];
        [1.0, 1000.0, 1609.344, 0.3048]
            .into_iter()
            .min_by(|x, y| {
                (med * x / 1.15)
                    .ln()
                    .abs()
                    .total_cmp(&(med * y / 1.15).ln().abs())
            })
            .unwrap_or(1.0)
    }

    /// Areas of a stop, including those of its parent stations.
    pub fn areas_of(&self, stop: &str) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        let mut cur = Some(stop);
        let mut depth = 0;
        while let (Some(s), true) = (cur, depth < 3) {
            if let Some(v) = self.stop_areas.get(s) {
                out.extend(v.iter().map(String::as_str));
            }
            cur = self
                .stops
                .get(s)
                .map(|x| x.parent.as_str())
                .filter(|p| !p.is_empty());
            depth += 1;
        }
        out
    }

    /// The cheapest amount of a product for the standard rider: a default rider category
    /// (or none), preferring rows without a fare medium, else the cheapest medium.
    pub fn product_amount(&self, id: &str) -> Option<u64> {
        let rows: Vec<&Product> = self.products.iter().filter(|p| p.id == id).collect();
        let std_cat: Vec<&&Product> = rows
            .iter()
            .filter(|p| {
                p.rider_category.is_empty() || self.default_categories.contains(&p.rider_category)
            })
            .collect();
        let pool: Vec<&Product> = if std_cat.is_empty() {
            rows
        } else {
            std_cat.into_iter().copied().collect()
        };
        let no_media: Vec<&&Product> = pool.iter().filter(|p| p.media.is_empty()).collect();
        if no_media.is_empty() {
            pool.iter().map(|p| p.amount).min()
        } else {
            no_media.iter().map(|p| p.amount).min()
        }
    }

    fn timeframe_groups_at(&self, local_s: i64) -> BTreeSet<&str> {
        let day = local_s.div_euclid(86_400);
        let secs = local_s.rem_euclid(86_400) as u32;
        let mut out = BTreeSet::new();
        for tf in &self.timeframes {
            // A service day runs past midnight: try today and yesterday (+24 h).
            let today = secs >= tf.start && secs < tf.end && self.service_active(&tf.service, day);
            let late = secs + 86_400 >= tf.start
                && secs + 86_400 < tf.end
                && self.service_active(&tf.service, day - 1);
            if today || late {
                out.insert(tf.group.as_str());
            }
        }
        out
    }

    /// Leg rules matching a leg (Fares v2 semantics). With a `rule_priority` column an empty
    /// field is a wildcard and only the highest priority survives; without it an empty field
    /// means "every value not listed in this column for any rule".
    /// `times = None` ignores timeframes (standard fare: rules without timeframes).
    pub fn match_leg_rules(
        &self,
        networks: &BTreeSet<&str>,
        from_areas: &BTreeSet<&str>,
        to_areas: &BTreeSet<&str>,
        times: Option<(i64, i64)>,
    ) -> Vec<&LegRule> {
        let (ft, tt) = match times {
            Some((d, a)) => (
                Some(self.timeframe_groups_at(d)),
                Some(self.timeframe_groups_at(a)),
            ),
            None => (None, None),
        };
        let listed = |f: fn(&LegRule) -> &str| -> HashSet<&str> {
            self.leg_rules
                .iter()
                .map(f)
                .filter(|v| !v.is_empty())
                .collect()
        };
        let (ln, lfa, lta, lft, ltt) = (
            listed(|r| &r.network),
            listed(|r| &r.from_area),
            listed(|r| &r.to_area),
            listed(|r| &r.from_timeframe),
            listed(|r| &r.to_timeframe),
        );
        let field = |v: &str, have: &BTreeSet<&str>, listed: &HashSet<&str>| -> bool {
            if v.is_empty() {
                self.has_priority || have.is_empty() || have.iter().any(|h| !listed.contains(h))
            } else {
                have.contains(v)
            }
        };
        let tf_field = |v: &str, have: &Option<BTreeSet<&str>>, listed: &HashSet<&str>| -> bool {
            match have {
                None => v.is_empty(),
                Some(h) => field(v, h, listed),
            }
        };
        let matched: Vec<&LegRule> = self
            .leg_rules
            .iter()
            .filter(|r| {
                field(&r.network, networks, &ln)
                    && field(&r.from_area, from_areas, &lfa)
                    && field(&r.to_area, to_areas, &lta)
                    && tf_field(&r.from_timeframe, &ft, &lft)
                    && tf_field(&r.to_timeframe, &tt, &ltt)
            })
            .collect();
        let top = matched.iter().map(|r| r.priority).max();
        matched
            .into_iter()
            .filter(|r| Some(r.priority) == top)
            .collect()
    }

    /// The cheapest matching leg rule and its amount.
    fn leg_price(
        &self,
        networks: &BTreeSet<&str>,
        from: &BTreeSet<&str>,
        to: &BTreeSet<&str>,
        times: Option<(i64, i64)>,
    ) -> Option<(&LegRule, u64)> {
        self.match_leg_rules(networks, from, to, times)
            .into_iter()
            .filter_map(|r| self.product_amount(&r.product).map(|a| (r, a)))
            .min_by_key(|x| x.1)
    }

    /// Prices a journey with Fares v2 leg and transfer rules.
    ///
    /// Transfer windows (`duration_limit_type`): 0 = departure of the sub-journey's first leg
    /// → arrival of the next leg; 1 = first leg's departure → next leg's departure; 2 =
    /// arrival of the leg before the transfer → next departure; 3 = that arrival → next
    /// arrival. `fare_transfer_type` 0 adds the transfer product to the first leg (A + AB),
    /// 1 adds the transfer product and the next leg (A + AB + B), 2 replaces the first leg by
    /// the transfer product (AB). `transfer_count` bounds transfers within a sub-journey
    /// between legs of the same group (-1 = unlimited).
    pub fn price_journey(&self, legs: &[Leg]) -> Result<JourneyPrice> {
        let mut out = JourneyPrice {
            total: 0,
            legs: Vec::new(),
            transfers: Vec::new(),
        };
        let mut sub_first = 0usize;
        let mut sub_transfers: i64 = 0;
        for (i, leg) in legs.iter().enumerate() {
            let nets: BTreeSet<&str> = self
                .route_networks
                .get(&leg.route)
                .map(|v| v.iter().map(String::as_str).collect())
                .unwrap_or_default();
            let (fa, ta) = (self.areas_of(&leg.from_stop), self.areas_of(&leg.to_stop));
            let (rule, amount) = self
                .leg_price(&nets, &fa, &ta, Some((leg.depart, leg.arrive)))
                .ok_or_else(|| {
                    FareError::Gtfs(format!(
                        "leg {i}: no fare leg rule matches (route {}, {} → {})",
                        leg.route, leg.from_stop, leg.to_stop
                    ))
                })?;
            out.legs
                .push((rule.leg_group.clone(), rule.product.clone(), amount));
            if i == 0 {
                out.total = amount;
                continue;
            }
            let prev_group = out.legs[i - 1].0.clone();
            let group = rule.leg_group.clone();
            let listed_from: HashSet<&str> = self
                .transfer_rules
                .iter()
                .map(|t| t.from_group.as_str())
                .filter(|v| !v.is_empty())
                .collect();
            let listed_to: HashSet<&str> = self
                .transfer_rules
                .iter()
                .map(|t| t.to_group.as_str())
                .filter(|v| !v.is_empty())
                .collect();
            let gm = |v: &str, g: &str, listed: &HashSet<&str>| {
                if v.is_empty() {
                    !listed.contains(g)
                } else {
                    v == g
                }
            };
            let prev = &legs[i - 1];
            let first = &legs[sub_first];
            let best = self
                .transfer_rules
                .iter()
                .filter(|t| {
                    gm(&t.from_group, &prev_group, &listed_from)
                        && gm(&t.to_group, &group, &listed_to)
                })
                .filter(|t| match t.transfer_count {
                    Some(-1) => true,
                    Some(c) => sub_transfers < c,
                    // Without a count the rule is a single transfer between different groups.
                    None => sub_transfers == 0,
                })
                .filter(|t| {
                    let Some(limit) = t.duration_limit else {
                        return true;
                    };
                    let span = match t.duration_limit_type {
                        0 => leg.arrive - first.depart,
                        1 => leg.depart - first.depart,
                        2 => leg.depart - prev.arrive,
                        _ => leg.arrive - prev.arrive,
                    };
                    span >= 0 && span <= limit
                })
                .filter_map(|t| {
                    let tp = if t.product.is_empty() {
                        0
                    } else {
                        self.product_amount(&t.product)?
                    };
                    let add: i128 = match t.fare_transfer_type {
                        0 => i128::from(tp),
                        1 => i128::from(tp) + i128::from(amount),
                        // AB replaces A on the first transfer of the sub-journey.
                        _ if sub_transfers == 0 => {
                            i128::from(tp) - i128::from(out.legs[sub_first].2)
                        }
                        _ => i128::from(tp),
                    };
                    Some((add, t))
                })
                .min_by_key(|x| x.0);
            match best {
                Some((add, t)) => {
                    let total = i128::from(out.total) + add;
                    out.total = u64::try_from(total.max(0)).map_err(|_| FareError::Overflow)?;
                    out.transfers.push(Some(t.line));
                    sub_transfers += 1;
                }
                None => {
                    out.total = out.total.checked_add(amount).ok_or(FareError::Overflow)?;
                    out.transfers.push(None);
                    sub_first = i;
                    sub_transfers = 0;
                }
            }
        }
        Ok(out)
    }

    /// Fares v1: the cheapest fare whose rules match a trip from station `a` to `b` by
    /// route `route` (when known) passing zones `contains`.
    fn v1_price(
        &self,
        za: &BTreeSet<&str>,
        zb: &BTreeSet<&str>,
        options: &[DirectOption],
        no_rules_file: bool,
    ) -> Option<u64> {
        let mut best: Option<u64> = None;
        for f in &self.v1 {
            let ok = if f.rules.is_empty() {
                no_rules_file
            } else {
                let row_ok = |r: &[String; 4], route: Option<&str>| {
                    (r[0].is_empty() || Some(r[0].as_str()) == route)
                        && (r[1].is_empty() || za.contains(r[1].as_str()))
                        && (r[2].is_empty() || zb.contains(r[2].as_str()))
                };
                let plain = f.rules.iter().filter(|r| r[3].is_empty());
                let contains: BTreeSet<&str> = f
                    .rules
                    .iter()
                    .filter(|r| !r[3].is_empty())
                    .map(|r| r[3].as_str())
                    .collect();
                let mut any = false;
                for r in plain {
                    if options.is_empty() {
                        any |= row_ok(r, None);
                    } else {
                        any |= options.iter().any(|(route, _)| row_ok(r, Some(route)));
                    }
                }
                if !contains.is_empty() {
                    // All contains_ids of a fare must equal the zones passed through.
                    any |= options.iter().any(|(route, zones)| {
                        let z: BTreeSet<&str> = zones.iter().map(String::as_str).collect();
                        z == contains
                            && f.rules
                                .iter()
                                .filter(|r| !r[3].is_empty())
                                .all(|r| r[0].is_empty() || r[0] == *route)
                    });
                }
                any
            };
            if ok {
                best = Some(best.map_or(f.price, |b| b.min(f.price)));
            }
        }
        best
    }

    /// Whether the feed carries a fare table (v1 or v2).
    pub fn has_fares(&self) -> bool {
        !self.v1.is_empty() || !self.leg_rules.is_empty()
    }

    /// Every ordered pair of distinct stations: distance (shortest path over
    /// `shape_dist_traveled`, else straight lines between consecutive stops) and the
    /// standard fare from the feed's table (Fares v2 when present, else v1).
    pub fn matrix(&self) -> Result<Vec<MatrixRow>> {
        let n = self.stations.len();
        // Graph over stations.
        let mut adj: Vec<Vec<(usize, u32)>> = vec![Vec::new(); n];
        let add = |adj: &mut Vec<Vec<(usize, u32)>>, a: usize, b: usize, w: u32| {
            if a == b {
                return;
            }
            match adj[a].iter_mut().find(|e| e.0 == b) {
                Some(e) => e.1 = e.1.min(w),
                None => adj[a].push((b, w)),
            }
        };
        // Direct options per ordered pair: routes and the zones passed (v1 route/contains, v2 networks).
        let mut direct: HashMap<(usize, usize), Vec<DirectOption>> = HashMap::new();
        let need_direct = self
            .v1
            .iter()
            .any(|f| f.rules.iter().any(|r| !r[0].is_empty() || !r[3].is_empty()))
            || !self.leg_rules.is_empty();
        let mut patterns: HashSet<(String, Vec<usize>)> = HashSet::new();
        for (route, stops) in &self.trips {
            let idx: Vec<Option<usize>> = stops
                .iter()
                .map(|(s, _)| self.station_index.get(&self.station_key(s)).copied())
                .collect();
            for (k, w) in stops.windows(2).enumerate() {
                let (Some(a), Some(b)) = (idx[k], idx[k + 1]) else {
                    continue;
                };
                let w_m = match (w[0].1, w[1].1) {
                    (Some(x), Some(y)) if y >= x => Some(((y - x) * self.shape_unit_m).round()),
                    _ => match (
                        self.stops.get(&w[0].0).and_then(|s| s.lat_lon),
                        self.stops.get(&w[1].0).and_then(|s| s.lat_lon),
                    ) {
                        (Some(p), Some(q)) => Some(haversine_m(p, q).round()),
                        _ => None,
                    },
                };
                if let Some(m) = w_m {
                    let m = m.clamp(0.0, f64::from(u32::MAX / 4)) as u32;
                    add(&mut adj, a, b, m);
                    add(&mut adj, b, a, m);
                }
            }
            if need_direct {
                let seq: Vec<usize> = idx.into_iter().flatten().collect();
                patterns.insert((route.clone(), seq));
            }
        }
        let mut members: Vec<Vec<&str>> = vec![Vec::new(); n];
        for s in self.stops.values() {
            if let Some(&i) = self.station_index.get(&self.station_key(&s.id)) {
                members[i].push(s.id.as_str());
            }
        }
        let zones: Vec<BTreeSet<&str>> = members
            .iter()
            .map(|m| {
                m.iter()
                    .filter_map(|id| self.stops.get(*id))
                    .map(|s| s.zone.as_str())
                    .filter(|z| !z.is_empty())
                    .collect()
            })
            .collect();
        let areas: Vec<BTreeSet<&str>> = members
            .iter()
            .map(|m| m.iter().flat_map(|id| self.areas_of(id)).collect())
            .collect();
        let has_contains = self
            .v1
            .iter()
            .any(|f| f.rules.iter().any(|r| !r[3].is_empty()));
        for (route, seq) in &patterns {
            for i in 0..seq.len() {
                let mut zs: BTreeSet<String> = BTreeSet::new();
                if has_contains {
                    zs.extend(zones[seq[i]].iter().map(|z| z.to_string()));
                }
                for j in i + 1..seq.len() {
                    if has_contains {
                        zs.extend(zones[seq[j]].iter().map(|z| z.to_string()));
                    }
                    let zones = &zs;
                    let e = direct.entry((seq[i], seq[j])).or_default();
                    if !e.iter().any(|(r, z)| r == route && z == zones) {
                        e.push((route.clone(), zones.clone()));
                    }
                }
            }
        }
        for (a, b) in &self.transfers {
            if let (Some(&x), Some(&y)) = (
                self.station_index.get(&self.station_key(a)),
                self.station_index.get(&self.station_key(b)),
            ) {
                add(&mut adj, x, y, 0);
            }
        }
        let serving: Vec<BTreeSet<&str>> = {
            let mut v = vec![BTreeSet::new(); n];
            for (route, seq) in &patterns {
                for &s in seq {
                    if let Some(nets) = self.route_networks.get(route) {
                        v[s].extend(nets.iter().map(String::as_str));
                    }
                }
            }
            v
        };
        let all_networks: BTreeSet<&str> = self
            .route_networks
            .values()
            .flatten()
            .map(String::as_str)
            .chain(
                self.leg_rules
                    .iter()
                    .map(|r| r.network.as_str())
                    .filter(|x| !x.is_empty()),
            )
            .collect();
        let no_rules_file = self.v1.iter().all(|f| f.rules.is_empty());
        let use_v2 = !self.leg_rules.is_empty();
        let mut out = Vec::with_capacity(n * n.saturating_sub(1));
        let mut dist = vec![u32::MAX; n];
        for a in 0..n {
            dijkstra(&adj, a, &mut dist);
            for b in 0..n {
                if a == b {
                    continue;
                }
                let options = direct.get(&(a, b)).map_or(&[][..], Vec::as_slice);
                let fare = if use_v2 {
                    // The leg's network: that of a route running directly from a to b; with
                    // none, any network serving either end (or any network at all).
                    let mut cands: Vec<BTreeSet<&str>> = options
                        .iter()
                        .map(|(r, _)| {
                            self.route_networks
                                .get(r)
                                .map(|v| v.iter().map(String::as_str).collect())
                                .unwrap_or_default()
                        })
                        .collect();
                    if cands.is_empty() {
                        let ends: BTreeSet<&str> = serving[a].union(&serving[b]).copied().collect();
                        let pool = if ends.is_empty() {
                            &all_networks
                        } else {
                            &ends
                        };
                        cands = pool.iter().map(|x| BTreeSet::from([*x])).collect();
                        cands.push(BTreeSet::new());
                    }
                    cands
                        .iter()
                        .filter_map(|nets| {
                            self.leg_price(nets, &areas[a], &areas[b], None)
                                .map(|x| x.1)
                        })
                        .min()
                } else if !self.v1.is_empty() {
                    self.v1_price(&zones[a], &zones[b], options, no_rules_file)
                } else {
                    None
                };
                let d = (dist[b] != u32::MAX).then_some(dist[b]);
                out.push(MatrixRow {
                    from: self.stations[a].clone(),
                    to: self.stations[b].clone(),
                    distance_m: d,
                    fare_minor: fare,
                });
            }
        }
        Ok(out)
    }
}

fn dijkstra(adj: &[Vec<(usize, u32)>], s: usize, dist: &mut [u32]) {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    dist.fill(u32::MAX);
    dist[s] = 0;
    let mut h = BinaryHeap::from([Reverse((0u32, s))]);
    while let Some(Reverse((d, v))) = h.pop() {
        if d > dist[v] {
            continue;
        }
        for &(t, w) in &adj[v] {
            let nd = d.saturating_add(w);
            if nd < dist[t] {
                dist[t] = nd;
                h.push(Reverse((nd, t)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact() {
        assert_eq!(parse_amount("2.40", 2), Ok(240));
        assert_eq!(parse_amount("3.2", 2), Ok(320));
        assert_eq!(parse_amount("3", 2), Ok(300));
        assert_eq!(parse_amount("210", 0), Ok(210));
        assert_eq!(parse_amount("1.500", 2), Ok(150));
        assert!(parse_amount("1.505", 2).is_err());
        assert!(parse_amount("-1", 2).is_err());
        assert!(parse_amount("1e3", 2).is_err());
        assert_eq!(parse_amount("0.125", 3), Ok(125));
    }

    #[test]
    fn gtfs_times() {
        assert_eq!(parse_gtfs_time("25:10:00"), Some(90_600));
        assert_eq!(parse_gtfs_time("7:00:00"), Some(25_200));
        assert_eq!(parse_gtfs_time("7:00"), None);
    }
}
