//! The network model: stations, lines, track segments and the precomputed all-pairs tables.
//!
//! Stations are keyed by (paid area, name): a name served by two paid areas (三元桥 on line 10
//! and on the Capital Airport Express) is two stations, because each paid area has its own
//! gates and a trip never routes from one into the other. In-station transfers are the merge of
//! same-name stops inside one area, so they cost zero distance by construction.

use std::collections::HashMap;

use crate::error::{FareError, Result};

/// Compact station id (index into [`Network::stations`]).
pub type StationId = u16;
/// Compact line id (index into [`Network::lines`]).
pub type LineId = u16;
/// Paid-area index (index into [`Network::areas`]).
pub type AreaId = u8;

/// Most stations in one network: keeps the all-pairs tables within a gate's memory
/// (4096² × 10 bytes = 160 MiB is the absolute ceiling; real cities are far below).
pub const MAX_STATIONS: usize = 4096;
/// Most lines in one network.
pub const MAX_LINES: usize = 1024;
/// Most paid areas.
pub const MAX_AREAS: usize = 64;
/// Distance marking "unreachable" in the table.
pub const UNREACHABLE: u32 = u32::MAX;

/// A station inside one paid area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Station {
    /// Name as in the source data.
    pub name: String,
    /// Paid area.
    pub area: AreaId,
    /// Lines calling here.
    pub lines: Vec<LineId>,
}

/// A line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Name as in the source data.
    pub name: String,
    /// Paid area the line belongs to.
    pub area: AreaId,
    /// Whether the line is a loop (the closing segment is an edge).
    pub is_loop: bool,
}

/// A track segment between two adjacent stations, in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// Other end.
    pub to: StationId,
    /// Track distance in metres.
    pub dist_m: u32,
    /// Line the segment belongs to.
    pub line: LineId,
}

/// An out-of-station transfer: tap out at `from`, tap in at `to` within `window_s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfStationLink {
    /// Station tapped out at.
    pub from: StationId,
    /// Station tapped in at.
    pub to: StationId,
    /// Seconds allowed between the taps.
    pub window_s: u32,
}

/// A station network with its all-pairs shortest-path tables.
#[derive(Debug, Clone)]
pub struct Network {
    /// Stations by id.
    pub stations: Vec<Station>,
    /// Lines by id.
    pub lines: Vec<Line>,
    /// Paid-area ids (names), by [`AreaId`].
    pub areas: Vec<String>,
    /// Adjacency lists by station.
    pub adj: Vec<Vec<Edge>>,
    /// Out-of-station transfers (never used for paid-area paths).
    pub out_of_station: Vec<OutOfStationLink>,
    by_name: HashMap<String, Vec<StationId>>,
    /// `dist[a * n + b]`, metres, [`UNREACHABLE`] across areas.
    dist: Vec<u32>,
    /// `next[a * n + b]`: the station after `a` on a shortest path to `b`.
    next: Vec<StationId>,
}

/// Builds a [`Network`] line by line.
#[derive(Debug, Default)]
pub struct NetworkBuilder {
    stations: Vec<Station>,
    lines: Vec<Line>,
    areas: Vec<String>,
    index: HashMap<(AreaId, String), StationId>,
    edges: HashMap<(StationId, StationId), (u32, LineId)>,
}

impl NetworkBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of a paid area, created on first use.
    pub fn area(&mut self, id: &str) -> Result<AreaId> {
        if let Some(i) = self.areas.iter().position(|a| a == id) {
            return Ok(i as AreaId);
        }
        if self.areas.len() >= MAX_AREAS {
            return Err(FareError::Limit {
                what: "paid areas",
                max: MAX_AREAS as u64,
            });
        }
        self.areas.push(id.to_string());
        Ok((self.areas.len() - 1) as AreaId)
    }

    /// Adds a line.
    pub fn line(&mut self, name: &str, area: AreaId, is_loop: bool) -> Result<LineId> {
        if self.lines.len() >= MAX_LINES {
            return Err(FareError::Limit {
                what: "lines",
                max: MAX_LINES as u64,
            });
        }
        self.lines.push(Line {
            name: name.to_string(),
            area,
            is_loop,
        });
        Ok((self.lines.len() - 1) as LineId)
    }

    /// The station `name` in `area`, created on first use, and recorded as served by `line`.
    pub fn station(&mut self, area: AreaId, name: &str, line: Option<LineId>) -> Result<StationId> {
        let id = match self.index.get(&(area, name.to_string())) {
            Some(&id) => id,
            None => {
                if self.stations.len() >= MAX_STATIONS {
                    return Err(FareError::Limit {
                        what: "stations",
                        max: MAX_STATIONS as u64,
                    });
                }
                let id = self.stations.len() as StationId;
                self.stations.push(Station {
                    name: name.to_string(),
                    area,
                    lines: Vec::new(),
                });
                self.index.insert((area, name.to_string()), id);
                id
            }
        };
        if let Some(l) = line {
            let s = &mut self.stations[usize::from(id)];
            if !s.lines.contains(&l) {
                s.lines.push(l);
            }
        }
        Ok(id)
    }

    /// Adds a segment in both directions; parallel segments keep the shorter.
    pub fn segment(&mut self, a: StationId, b: StationId, dist_m: u32, line: LineId) {
        if a == b {
            return;
        }
        let key = (a.min(b), a.max(b));
        let e = self.edges.entry(key).or_insert((dist_m, line));
        if dist_m < e.0 {
            *e = (dist_m, line);
        }
    }

    /// Computes the all-pairs tables and returns the network.
    pub fn build(self, out_of_station: Vec<OutOfStationLink>) -> Network {
        let n = self.stations.len();
        let mut adj: Vec<Vec<Edge>> = vec![Vec::new(); n];
        let mut edges: Vec<_> = self.edges.into_iter().collect();
        edges.sort_unstable(); // deterministic adjacency order → deterministic tie-breaks
        for ((a, b), (d, l)) in edges {
            adj[usize::from(a)].push(Edge {
                to: b,
                dist_m: d,
                line: l,
            });
            adj[usize::from(b)].push(Edge {
                to: a,
                dist_m: d,
                line: l,
            });
        }
        let mut by_name: HashMap<String, Vec<StationId>> = HashMap::new();
        for (i, s) in self.stations.iter().enumerate() {
            by_name
                .entry(s.name.clone())
                .or_default()
                .push(i as StationId);
        }
        let (dist, next) = all_pairs(&adj);
        Network {
            stations: self.stations,
            lines: self.lines,
            areas: self.areas,
            adj,
            out_of_station,
            by_name,
            dist,
            next,
        }
    }
}

/// Dijkstra from every station. Segment weights are positive integers and the graph is
/// small and sparse, so a binary heap per source is fast (a few ms for Beijing).
fn all_pairs(adj: &[Vec<Edge>]) -> (Vec<u32>, Vec<StationId>) {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let n = adj.len();
    let mut dist = vec![UNREACHABLE; n * n];
    let mut next = vec![0 as StationId; n * n];
    let mut heap = BinaryHeap::new();
    for s in 0..n {
        let row = s * n;
        dist[row + s] = 0;
        next[row + s] = s as StationId;
        heap.clear();
        heap.push(Reverse((0u32, s as StationId, s as StationId)));
        while let Some(Reverse((d, v, first))) = heap.pop() {
            let vi = usize::from(v);
            if d > dist[row + vi] {
                continue;
            }
            for e in &adj[vi] {
                let nd = d.saturating_add(e.dist_m);
                let ti = usize::from(e.to);
                // Ties keep the first path found; with the sorted adjacency this is stable.
                if nd < dist[row + ti] {
                    dist[row + ti] = nd;
                    let f = if vi == s { e.to } else { first };
                    next[row + ti] = f;
                    heap.push(Reverse((nd, e.to, f)));
                }
            }
        }
    }
    (dist, next)
}

impl Network {
    /// Number of stations.
    pub fn len(&self) -> usize {
        self.stations.len()
    }

    /// Whether the network has no station.
    pub fn is_empty(&self) -> bool {
        self.stations.is_empty()
    }

    /// All stations of a name (one per paid area serving it).
    pub fn stations_named(&self, name: &str) -> &[StationId] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }

    /// The station of this name, preferring `prefer_area` when several areas have one.
    pub fn station_in(&self, name: &str, prefer_area: Option<AreaId>) -> Result<StationId> {
        let ids = self.stations_named(name);
        if let Some(a) = prefer_area {
            if let Some(&id) = ids
                .iter()
                .find(|&&i| self.stations[usize::from(i)].area == a)
            {
                return Ok(id);
            }
        }
        ids.first()
            .copied()
            .ok_or_else(|| FareError::UnknownStation {
                name: name.to_string(),
                suggestions: self.suggest(name),
            })
    }

    /// Station of this name; when several paid areas have one, the one in area 0 (the
    /// network's main area) wins.
    pub fn station_by_name(&self, name: &str) -> Result<StationId> {
        self.station_in(name, Some(0))
    }

    /// Up to five station names close to `name` (substring match, then shared characters).
    pub fn suggest(&self, name: &str) -> Vec<String> {
        let q: Vec<char> = name.chars().collect();
        let mut scored: Vec<(usize, &str)> = self
            .by_name
            .keys()
            .map(|k| {
                let score = if k.contains(name) || (!k.is_empty() && name.contains(k.as_str())) {
                    1000
                } else {
                    k.chars().filter(|c| q.contains(c)).count()
                };
                (score, k.as_str())
            })
            .filter(|(s, _)| *s > 0)
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        scored
            .into_iter()
            .take(5)
            .map(|(_, k)| k.to_string())
            .collect()
    }

    /// Shortest paid-area distance in metres, or `None` when not connected.
    #[inline]
    pub fn distance(&self, from: StationId, to: StationId) -> Option<u32> {
        let n = self.stations.len();
        let d = *self.dist.get(usize::from(from) * n + usize::from(to))?;
        (d != UNREACHABLE).then_some(d)
    }

    /// Stations of a shortest path, both ends included; empty when not connected.
    pub fn path(&self, from: StationId, to: StationId) -> Vec<StationId> {
        let n = self.stations.len();
        if self.distance(from, to).is_none() {
            return Vec::new();
        }
        let mut out = vec![from];
        let mut cur = from;
        while cur != to && out.len() <= n {
            cur = self.next[usize::from(cur) * n + usize::from(to)];
            out.push(cur);
        }
        out
    }

    /// The line of the segment between two adjacent stations.
    pub fn segment_line(&self, a: StationId, b: StationId) -> Option<LineId> {
        self.adj
            .get(usize::from(a))?
            .iter()
            .find(|e| e.to == b)
            .map(|e| e.line)
    }

    /// Stations of one paid area, in id order.
    pub fn area_stations(&self, area: AreaId) -> impl Iterator<Item = StationId> + '_ {
        self.stations
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.area == area)
            .map(|(i, _)| i as StationId)
    }

    /// Bytes held by the all-pairs tables (what a gate must keep in memory).
    pub fn table_bytes(&self) -> usize {
        self.dist.len() * 4 + self.next.len() * 2
    }
}

/// One row of the Beijing-style line/station CSV.
#[derive(Debug, Clone, serde::Deserialize)]
struct LineStationRow {
    line: String,
    is_loop: u8,
    seq: u32,
    station: String,
    dist_from_prev_m: Option<u32>,
}

/// Most rows read from a line/station CSV.
pub const MAX_CSV_ROWS: usize = 100_000;

/// Reads the `line,line_en,line_index,is_loop,seq,station,station_aliases_en,dist_from_prev_m`
/// CSV (the flattened Mick235711 format) and builds the network, giving each line the paid
/// area `area_of(line)` returns.
pub fn from_line_csv(
    file: &str,
    text: &str,
    area_ids: &[String],
    mut area_of: impl FnMut(&str) -> String,
    out_of_station: &[(String, String, u32)],
) -> Result<Network> {
    let mut rdr = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let mut rows: Vec<(u64, LineStationRow)> = Vec::new();
    for (i, rec) in rdr.deserialize::<LineStationRow>().enumerate() {
        let line_no = i as u64 + 2;
        let row = rec.map_err(|e| FareError::Data {
            file: file.into(),
            line: line_no,
            msg: e.to_string(),
        })?;
        if rows.len() >= MAX_CSV_ROWS {
            return Err(FareError::Limit {
                what: "CSV rows",
                max: MAX_CSV_ROWS as u64,
            });
        }
        rows.push((line_no, row));
    }
    let mut b = NetworkBuilder::new();
    for a in area_ids {
        b.area(a)?;
    }
    let mut i = 0;
    while i < rows.len() {
        let name = rows[i].1.line.clone();
        let mut j = i;
        while j < rows.len() && rows[j].1.line == name {
            j += 1;
        }
        let group = &rows[i..j];
        let is_loop = group[0].1.is_loop == 1;
        let area = b.area(&area_of(&name))?;
        let line = b.line(&name, area, is_loop)?;
        let mut ids = Vec::with_capacity(group.len());
        for (k, (ln, r)) in group.iter().enumerate() {
            if r.seq as usize != k {
                return Err(FareError::Data {
                    file: file.into(),
                    line: *ln,
                    msg: format!("line {name}: seq {} out of order", r.seq),
                });
            }
            let id = b.station(area, &r.station, Some(line))?;
            if k > 0 {
                let d = r.dist_from_prev_m.ok_or_else(|| FareError::Data {
                    file: file.into(),
                    line: *ln,
                    msg: "missing dist_from_prev_m".into(),
                })?;
                if d == 0 {
                    return Err(FareError::Data {
                        file: file.into(),
                        line: *ln,
                        msg: "zero-length segment".into(),
                    });
                }
                b.segment(ids[k - 1], id, d, line);
            }
            ids.push(id);
        }
        if is_loop {
            // Row 0 holds the closing segment back from the last station.
            let (ln, r0) = &group[0];
            let d = r0.dist_from_prev_m.ok_or_else(|| FareError::Data {
                file: file.into(),
                line: *ln,
                msg: "loop line without closing segment".into(),
            })?;
            if let (Some(&first), Some(&last)) = (ids.first(), ids.last()) {
                b.segment(last, first, d, line);
            }
        }
        i = j;
    }
    let mut links = Vec::new();
    for (from, to, window_s) in out_of_station {
        let find = |name: &str| {
            b.index
                .get(&(0, name.to_string()))
                .copied()
                .ok_or_else(|| FareError::UnknownStation {
                    name: name.to_string(),
                    suggestions: Vec::new(),
                })
        };
        links.push(OutOfStationLink {
            from: find(from)?,
            to: find(to)?,
            window_s: *window_s,
        });
    }
    Ok(b.build(links))
}
