//! A loaded city: its rules, its network and the fare tables a gate looks up at tap-out.

use onecard_proto::Fen;

use crate::error::{FareError, Result};
use crate::network::{self, AreaId, Network, StationId};
use crate::rules::{AreaRule, BandIndex, Charge, CityRules, Mode};
use crate::time::local_year_month;

/// Rider category, as stored on the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Category {
    /// Full fare (with the card's own discounts and monthly ladder).
    #[default]
    Adult,
    /// Student concession.
    Student,
    /// Senior concession.
    Senior,
    /// Free travel (e.g. staff, disabled veterans).
    Free,
}

impl Category {
    /// The key used in city files.
    pub fn key(self) -> &'static str {
        match self {
            Category::Adult => "adult",
            Category::Student => "student",
            Category::Senior => "senior",
            Category::Free => "free",
        }
    }

    /// Parses `adult|student|senior|free`.
    pub fn parse(s: &str) -> Option<Category> {
        Some(match s {
            "adult" => Category::Adult,
            "student" => Category::Student,
            "senior" => Category::Senior,
            "free" => Category::Free,
            _ => return None,
        })
    }
}

/// The card's monthly counters (what the gate keeps in the card's metro record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RiderMonth {
    /// Local business month `YYYYMM` the counters belong to; 0 = never used.
    pub year_month: u32,
    /// Money paid on trips that feed the ladder this month.
    pub spent: Fen,
    /// Rides that feed the ladder this month.
    pub rides: u16,
}

impl RiderMonth {
    /// The counters to use for a trip in month `ym`: reset when the month changed.
    pub fn for_month(self, ym: u32) -> RiderMonth {
        if self.year_month == ym {
            self
        } else {
            RiderMonth {
                year_month: ym,
                spent: Fen::ZERO,
                rides: 0,
            }
        }
    }
}

/// What the card remembers of the previous leg, for transfer discounts and out-of-station
/// transfers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferState {
    /// Unix time of the previous leg's last tap (metro exit, bus boarding).
    pub last_tap_utc: i64,
    /// Mode of the previous leg.
    pub mode: Mode,
    /// Bus line index (in the city file's `[[bus.line]]` order, `u16::MAX` if none); 0 for metro.
    pub line: u16,
    /// Metro exit station of the previous leg.
    pub station: StationId,
    /// Journey distance carried across out-of-station transfers, metres.
    pub carried_m: u32,
}

/// A tap at a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tap {
    /// Station.
    pub station: StationId,
    /// Unix time, seconds.
    pub at_utc: i64,
}

/// A metro trip to price at tap-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetroTrip {
    /// Entry tap; `None` when the card shows no entry (missing-entry charge).
    pub entry: Option<Tap>,
    /// Exit tap.
    pub exit: Tap,
    /// Rider category.
    pub category: Category,
    /// Card's monthly counters before this trip.
    pub month: RiderMonth,
    /// Card's previous leg, if any.
    pub previous: Option<TransferState>,
}

/// A bus leg to price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusTrip<'a> {
    /// Bus line name (for lines with their own fare).
    pub line: Option<&'a str>,
    /// On-board distance (tap-on/tap-off systems).
    pub distance_m: Option<u32>,
    /// Boarding time, Unix seconds.
    pub at_utc: i64,
    /// Rider category.
    pub category: Category,
    /// Card's monthly counters before this trip.
    pub month: RiderMonth,
    /// Card's previous leg, if any.
    pub previous: Option<TransferState>,
}

/// Why a penalty was charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PenaltyKind {
    /// Exit without an entry on the card.
    MissingEntry,
    /// Entry without an exit, charged at the next tap.
    MissingExit,
    /// Exit at the entry station after the free period.
    SameStation,
    /// Time limit in the paid area exceeded.
    Overstay,
}

/// One line of a fare breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// Standard fare from the distance table.
    Distance {
        /// Metres.
        distance_m: u32,
        /// Band index.
        band: BandIndex,
        /// Fare.
        fare: Fen,
    },
    /// Flat fare of a line or area.
    Flat {
        /// Fare.
        fare: Fen,
    },
    /// A per-pair override from the city file.
    PairOverride {
        /// Fare.
        fare: Fen,
    },
    /// The journey continues after an out-of-station transfer: only the increment is due.
    OutOfStation {
        /// Distance carried from the earlier legs.
        carried_m: u32,
        /// Full fare of the whole journey.
        journey_fare: Fen,
        /// Full fare already charged for the earlier legs.
        already_charged: Fen,
    },
    /// Concession category rate.
    Category {
        /// Category.
        category: Category,
        /// Percent paid.
        percent: u32,
        /// Amount taken off.
        off: Fen,
    },
    /// The city card's own discount.
    Card {
        /// Percent paid.
        percent: u32,
        /// Amount taken off.
        off: Fen,
    },
    /// Monthly ladder.
    Monthly {
        /// Percent paid (of the last rung reached).
        percent: u32,
        /// Amount taken off.
        off: Fen,
    },
    /// Transfer discount between modes.
    Transfer {
        /// Amount taken off.
        off: Fen,
    },
    /// A penalty added to (or replacing) the fare.
    Penalty {
        /// Why.
        kind: PenaltyKind,
        /// Amount.
        fare: Fen,
    },
}

impl Item {
    /// The item as JSON, `{"kind": …}` with amounts in fen: the form the CLI prints and gates
    /// put in their tap reports.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let f = |x: Fen| x.get();
        match *self {
            Item::Distance {
                distance_m,
                band,
                fare,
            } => {
                json!({"kind": "distance", "distance_m": distance_m, "band": band, "fare_fen": f(fare)})
            }
            Item::Flat { fare } => json!({"kind": "flat", "fare_fen": f(fare)}),
            Item::PairOverride { fare } => json!({"kind": "pair_override", "fare_fen": f(fare)}),
            Item::OutOfStation {
                carried_m,
                journey_fare,
                already_charged,
            } => json!({
                "kind": "out_of_station_transfer", "carried_m": carried_m,
                "journey_fare_fen": f(journey_fare), "already_charged_fen": f(already_charged)
            }),
            Item::Category {
                category,
                percent,
                off,
            } => {
                json!({"kind": "category", "category": category.key(), "percent": percent, "off_fen": f(off)})
            }
            Item::Card { percent, off } => {
                json!({"kind": "card", "percent": percent, "off_fen": f(off)})
            }
            Item::Monthly { percent, off } => {
                json!({"kind": "monthly", "percent": percent, "off_fen": f(off)})
            }
            Item::Transfer { off } => json!({"kind": "transfer_discount", "off_fen": f(off)}),
            Item::Penalty { kind, fare } => json!({"kind": "penalty", "penalty": match kind {
                PenaltyKind::MissingEntry => "missing_entry",
                PenaltyKind::MissingExit => "missing_exit",
                PenaltyKind::SameStation => "same_station",
                PenaltyKind::Overstay => "overstay",
            }, "fare_fen": f(fare)}),
        }
    }
}

/// The answer of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// Amount to deduct now.
    pub fare: Fen,
    /// Standard adult fare of the trip (no discount, no penalty).
    pub full_fare: Fen,
    /// Fare distance (shortest path), metres.
    pub distance_m: u32,
    /// Distance band, when a distance table priced the trip.
    pub band: Option<BandIndex>,
    /// Paid area of the trip (metro).
    pub area: Option<AreaId>,
    /// How the fare was made.
    pub breakdown: Vec<Item>,
    /// Monthly counters to write back to the card.
    pub new_month: RiderMonth,
    /// Transfer state to write back to the card.
    pub new_transfer: TransferState,
}

/// A city: rules, optional network and precomputed fares.
#[derive(Debug, Clone)]
pub struct City {
    /// The validated city file.
    pub rules: CityRules,
    network: Option<Network>,
    /// Rule index (into `rules.metro.area`) of each network paid area.
    area_rule: Vec<usize>,
    /// `fare[a * n + b]` in fen, `u32::MAX` when no fare.
    fare: Vec<u32>,
    band: Vec<BandIndex>,
    /// Highest fare per area and from each station.
    area_max: Vec<Fen>,
    area_min: Vec<Fen>,
    station_max: Vec<Fen>,
}

const NO_FARE: u32 = u32::MAX;
/// Band value stored for flat fares and overrides.
const NO_BAND: BandIndex = BandIndex::MAX;

impl City {
    /// Loads a city from its rules and, when `metro.network` names a dataset, the dataset
    /// text (`(file name, contents)`) resolved by `dataset`.
    pub fn new(
        rules: CityRules,
        dataset: impl Fn(&str) -> Option<(&'static str, String)>,
    ) -> Result<City> {
        let Some(metro) = &rules.metro else {
            return Ok(City::without_network(rules));
        };
        if metro.network == "none" {
            return Ok(City::without_network(rules));
        }
        let (file, text) = dataset(&metro.network).ok_or_else(|| FareError::Invalid {
            city: rules.id.clone(),
            msg: format!("unknown network dataset {:?}", metro.network),
        })?;
        // Default area first, so that AreaId 0 is the main network.
        let mut order: Vec<usize> = (0..metro.area.len()).collect();
        order.sort_by_key(|&i| metro.area[i].id != metro.default_area);
        let area_ids: Vec<String> = order.iter().map(|&i| metro.area[i].id.clone()).collect();
        let default_lines_area = metro
            .area
            .iter()
            .find(|a| a.lines.is_empty())
            .map(|a| a.id.clone());
        let mut unknown_line = None;
        let oos: Vec<(String, String, u32)> = metro
            .out_of_station_transfer
            .iter()
            .flat_map(|t| {
                let w = t.window_min.saturating_mul(60);
                let mut v = vec![(t.from.clone(), t.to.clone(), w)];
                if t.both_ways {
                    v.push((t.to.clone(), t.from.clone(), w));
                }
                v
            })
            .collect();
        let net = network::from_line_csv(
            file,
            &text,
            &area_ids,
            |line| match metro
                .area
                .iter()
                .find(|a| a.lines.iter().any(|l| l == line))
            {
                Some(a) => a.id.clone(),
                None => default_lines_area.clone().unwrap_or_else(|| {
                    unknown_line = Some(line.to_string());
                    String::new()
                }),
            },
            &oos,
        )?;
        if let Some(l) = unknown_line {
            return Err(FareError::Invalid {
                city: rules.id.clone(),
                msg: format!("line {l} is in no area"),
            });
        }
        for a in &metro.area {
            for l in &a.lines {
                if !net.lines.iter().any(|x| &x.name == l) {
                    return Err(FareError::Invalid {
                        city: rules.id.clone(),
                        msg: format!("area {}: no line {l} in the network", a.id),
                    });
                }
            }
        }
        let area_rule: Vec<usize> = net
            .areas
            .iter()
            .map(|id| metro.area.iter().position(|a| &a.id == id).unwrap_or(0))
            .collect();
        let mut city = City {
            rules,
            network: None,
            area_rule,
            fare: Vec::new(),
            band: Vec::new(),
            area_max: Vec::new(),
            area_min: Vec::new(),
            station_max: Vec::new(),
        };
        city.build_tables(net)?;
        Ok(city)
    }

    fn without_network(rules: CityRules) -> City {
        City {
            rules,
            network: None,
            area_rule: Vec::new(),
            fare: Vec::new(),
            band: Vec::new(),
            area_max: Vec::new(),
            area_min: Vec::new(),
            station_max: Vec::new(),
        }
    }

    fn build_tables(&mut self, net: Network) -> Result<()> {
        let n = net.len();
        let mut fare = vec![NO_FARE; n * n];
        let mut band = vec![NO_BAND; n * n];
        for a in 0..n {
            let area = net.stations[a].area;
            let rule = self.area_rule_of(area)?;
            for b in 0..n {
                let Some(d) = net.distance(a as StationId, b as StationId) else {
                    continue;
                };
                let (f, bi) = self.price_in_area(rule, d)?;
                fare[a * n + b] = u32::try_from(f.get()).map_err(|_| FareError::Overflow)?;
                band[a * n + b] = bi.unwrap_or(NO_BAND);
            }
        }
        if let Some(m) = &self.rules.metro {
            for o in &m.pair_override {
                let bad = |name: &str| FareError::Invalid {
                    city: self.rules.id.clone(),
                    msg: format!("pair_override: unknown station {name}"),
                };
                let a = net.station_by_name(&o.from).map_err(|_| bad(&o.from))?;
                let b = net.station_by_name(&o.to).map_err(|_| bad(&o.to))?;
                let f = u32::try_from(o.fen).map_err(|_| FareError::Overflow)?;
                let (a, b) = (usize::from(a), usize::from(b));
                fare[a * n + b] = f;
                band[a * n + b] = NO_BAND;
                if o.both_ways {
                    fare[b * n + a] = f;
                    band[b * n + a] = NO_BAND;
                }
            }
        }
        let mut area_max = vec![Fen::ZERO; net.areas.len()];
        let mut area_min = vec![Fen::new(u64::MAX); net.areas.len()];
        let mut station_max = vec![Fen::ZERO; n];
        for a in 0..n {
            let ar = usize::from(net.stations[a].area);
            for b in 0..n {
                let f = fare[a * n + b];
                if f == NO_FARE || a == b {
                    continue;
                }
                let f = Fen::new(u64::from(f));
                area_max[ar] = area_max[ar].max(f);
                area_min[ar] = area_min[ar].min(f);
                station_max[a] = station_max[a].max(f);
                station_max[b] = station_max[b].max(f);
            }
        }
        for (i, m) in area_min.iter_mut().enumerate() {
            if *m == Fen::new(u64::MAX) {
                *m = area_max[i];
            }
        }
        self.fare = fare;
        self.band = band;
        self.area_max = area_max;
        self.area_min = area_min;
        self.station_max = station_max;
        self.network = Some(net);
        Ok(())
    }

    fn area_rule_of(&self, area: AreaId) -> Result<&AreaRule> {
        let m = self.metro_rules()?;
        self.area_rule
            .get(usize::from(area))
            .and_then(|&i| m.area.get(i))
            .ok_or(FareError::Overflow)
    }

    fn metro_rules(&self) -> Result<&crate::rules::MetroRules> {
        self.rules
            .metro
            .as_ref()
            .ok_or_else(|| FareError::NoMode(self.rules.id.clone(), "metro"))
    }

    /// Standard fare of a distance in an area (flat areas ignore the distance).
    fn price_in_area(&self, rule: &AreaRule, d: u32) -> Result<(Fen, Option<BandIndex>)> {
        if let Some(f) = rule.flat_fen {
            return Ok((Fen::new(f), None));
        }
        let m = self.metro_rules()?;
        let t = rule
            .fare_table
            .as_ref()
            .and_then(|t| m.fare_table.get(t))
            .ok_or(FareError::Overflow)?;
        let (f, b) = t.price(d).ok_or(FareError::Overflow)?;
        Ok((f, Some(b)))
    }

    /// The network, when the city has one.
    pub fn network(&self) -> Option<&Network> {
        self.network.as_ref()
    }

    fn net(&self) -> Result<&Network> {
        self.network
            .as_ref()
            .ok_or_else(|| FareError::NoNetwork(self.rules.id.clone()))
    }

    /// Station by name (main area preferred).
    pub fn station_by_name(&self, name: &str) -> Result<StationId> {
        self.net()?.station_by_name(name)
    }

    /// The standard adult fare between two stations (table lookup), `None` when not connected.
    #[inline]
    pub fn base_fare(&self, from: StationId, to: StationId) -> Option<Fen> {
        let n = self.network.as_ref()?.len();
        let f = *self.fare.get(usize::from(from) * n + usize::from(to))?;
        (f != NO_FARE).then(|| Fen::new(u64::from(f)))
    }

    fn band_of(&self, from: StationId, to: StationId) -> Option<BandIndex> {
        let n = self.network.as_ref()?.len();
        let b = *self.band.get(usize::from(from) * n + usize::from(to))?;
        (b != NO_BAND).then_some(b)
    }

    /// Lowest standard fare within a paid area (what an entry gate asks the card to hold).
    pub fn area_min_fare(&self, area: AreaId) -> Option<Fen> {
        self.area_min
            .get(usize::from(area))
            .copied()
            .filter(|f| f.get() != u64::MAX)
    }

    /// Highest standard fare within a paid area.
    pub fn area_max_fare(&self, area: AreaId) -> Option<Fen> {
        self.area_max.get(usize::from(area)).copied()
    }

    /// Evaluates a charge rule at a station.
    pub fn charge(&self, c: Charge, station: Option<StationId>, area: AreaId) -> Result<Fen> {
        Ok(match c {
            Charge::Fixed { fen } => Fen::new(fen),
            Charge::Free => Fen::ZERO,
            Charge::MinFare => match self.area_min.get(usize::from(area)) {
                Some(&f) => f,
                None => self.default_table_min()?,
            },
            Charge::MaxFare => *self
                .area_max
                .get(usize::from(area))
                .ok_or_else(|| FareError::NoNetwork(self.rules.id.clone()))?,
            Charge::MaxFromStation => {
                let s = station.ok_or_else(|| FareError::NoNetwork(self.rules.id.clone()))?;
                *self
                    .station_max
                    .get(usize::from(s))
                    .ok_or_else(|| FareError::NoNetwork(self.rules.id.clone()))?
            }
        })
    }

    fn default_table_min(&self) -> Result<Fen> {
        let m = self.metro_rules()?;
        let a = m
            .area
            .iter()
            .find(|a| a.id == m.default_area)
            .ok_or(FareError::Overflow)?;
        Ok(
            match (
                a.flat_fen,
                a.fare_table.as_ref().and_then(|t| m.fare_table.get(t)),
            ) {
                (Some(f), _) => Fen::new(f),
                (None, Some(t)) => t.min_fare(),
                (None, None) => Fen::ZERO,
            },
        )
    }

    /// What a card that entered at `entry` and never tapped out owes, charged at its next tap.
    pub fn missing_exit_charge(&self, entry: StationId) -> Result<Fen> {
        let m = self.metro_rules()?;
        let area = self
            .net()?
            .stations
            .get(usize::from(entry))
            .map(|s| s.area)
            .unwrap_or(0);
        self.charge(m.missing_exit, Some(entry), area)
    }

    /// Category, card and monthly discounts, in that order of precedence: a concession
    /// replaces the card rate, and the monthly ladder stacks only where the file says so.
    fn discounts(
        &self,
        full: Fen,
        mode: Mode,
        ladder_ok: bool,
        category: Category,
        month: &mut RiderMonth,
        items: &mut Vec<Item>,
    ) -> Result<Fen> {
        let r = self.rules.rounding;
        let (card_percent, cats, monthly_mode) = match mode {
            Mode::Metro => {
                let m = self.metro_rules()?;
                (m.card_percent, &m.categories, ladder_ok)
            }
            Mode::Bus => {
                let b = self
                    .rules
                    .bus
                    .as_ref()
                    .ok_or_else(|| FareError::NoMode(self.rules.id.clone(), "bus"))?;
                (b.card_percent, &b.categories, ladder_ok && b.monthly)
            }
        };
        let mut fare = full;
        let mut ladder = monthly_mode;
        match category {
            Category::Adult => {
                if card_percent != 100 {
                    let f = r
                        .apply_percent(fare, card_percent)
                        .ok_or(FareError::Overflow)?;
                    items.push(Item::Card {
                        percent: card_percent,
                        off: fare.saturating_sub(f),
                    });
                    fare = f;
                }
            }
            Category::Free => {
                items.push(Item::Category {
                    category,
                    percent: 0,
                    off: fare,
                });
                fare = Fen::ZERO;
                ladder = false;
            }
            c => {
                if let Some(rule) = cats.get(c.key()) {
                    let f = r
                        .apply_percent(fare, rule.percent)
                        .ok_or(FareError::Overflow)?;
                    items.push(Item::Category {
                        category: c,
                        percent: rule.percent,
                        off: fare.saturating_sub(f),
                    });
                    fare = f;
                    ladder &= rule.monthly;
                }
            }
        }
        if ladder {
            if let Some(l) = self.rules.metro.as_ref().and_then(|m| m.monthly.as_ref()) {
                let (f, pct) = l
                    .apply(fare, month.spent, u32::from(month.rides), r)
                    .ok_or(FareError::Overflow)?;
                if f != fare {
                    items.push(Item::Monthly {
                        percent: pct,
                        off: fare.saturating_sub(f),
                    });
                }
                fare = f;
            }
        }
        Ok(fare)
    }

    fn transfer_discount(
        &self,
        prev: Option<TransferState>,
        to: Mode,
        at: i64,
        fare: Fen,
        items: &mut Vec<Item>,
    ) -> Fen {
        let Some(p) = prev else { return fare };
        let elapsed = at - p.last_tap_utc;
        for t in &self.rules.transfer_discount {
            if t.from_mode == p.mode
                && t.to_mode == to
                && elapsed >= 0
                && elapsed <= i64::from(t.window_min) * 60
            {
                let f = fare.saturating_sub(Fen::new(t.off_fen));
                items.push(Item::Transfer {
                    off: fare.saturating_sub(f),
                });
                return f;
            }
        }
        fare
    }

    /// Prices a metro trip at tap-out.
    pub fn quote(&self, trip: &MetroTrip) -> Result<Quote> {
        let net = self.net()?;
        let m = self.metro_rules()?;
        let exit = trip.exit;
        let exit_st = net
            .stations
            .get(usize::from(exit.station))
            .ok_or_else(|| FareError::NoRoute("?".into(), "?".into()))?;
        let area = exit_st.area;
        let ym = local_year_month(exit.at_utc, self.rules.utc_offset_minutes);
        let mut month = trip.month.for_month(ym);
        let mut items = Vec::with_capacity(4);
        let mut new_transfer = TransferState {
            last_tap_utc: exit.at_utc,
            mode: Mode::Metro,
            line: 0,
            station: exit.station,
            carried_m: 0,
        };
        let Some(entry) = trip.entry else {
            let f = self.charge(m.missing_entry, Some(exit.station), area)?;
            items.push(Item::Penalty {
                kind: PenaltyKind::MissingEntry,
                fare: f,
            });
            return Ok(Quote {
                fare: f,
                full_fare: f,
                distance_m: 0,
                band: None,
                area: Some(area),
                breakdown: items,
                new_month: month,
                new_transfer,
            });
        };
        let entry_st = net
            .stations
            .get(usize::from(entry.station))
            .ok_or_else(|| FareError::NoRoute("?".into(), "?".into()))?;
        if entry_st.area != area {
            return Err(FareError::NoRoute(
                entry_st.name.clone(),
                exit_st.name.clone(),
            ));
        }
        let rule = self.area_rule_of(area)?;
        let in_system = exit.at_utc - entry.at_utc;
        if entry.station == exit.station {
            let ss = m.same_station;
            let f = if in_system <= i64::from(ss.free_within_min) * 60 {
                Fen::ZERO
            } else {
                self.charge(ss.charge, Some(exit.station), area)?
            };
            items.push(Item::Penalty {
                kind: PenaltyKind::SameStation,
                fare: f,
            });
            return Ok(Quote {
                fare: f,
                full_fare: f,
                distance_m: 0,
                band: None,
                area: Some(area),
                breakdown: items,
                new_month: month,
                new_transfer,
            });
        }
        let d = net
            .distance(entry.station, exit.station)
            .ok_or_else(|| FareError::NoRoute(entry_st.name.clone(), exit_st.name.clone()))?;
        // An out-of-station transfer continues the journey: price the whole distance and
        // charge only what the earlier legs did not.
        let carried = trip.previous.filter(|p| {
            p.mode == Mode::Metro
                && net.out_of_station.iter().any(|l| {
                    l.from == p.station
                        && l.to == entry.station
                        && entry.at_utc >= p.last_tap_utc
                        && entry.at_utc - p.last_tap_utc <= i64::from(l.window_s)
                })
        });
        let (full, band) = if let Some(p) = carried {
            let total = p.carried_m.saturating_add(d);
            let (whole, band) = self.price_in_area(rule, total)?;
            let (before, _) = self.price_in_area(rule, p.carried_m)?;
            items.push(Item::OutOfStation {
                carried_m: p.carried_m,
                journey_fare: whole,
                already_charged: before,
            });
            new_transfer.carried_m = total;
            (whole.saturating_sub(before), band)
        } else {
            let f = self
                .base_fare(entry.station, exit.station)
                .ok_or_else(|| FareError::NoRoute(entry_st.name.clone(), exit_st.name.clone()))?;
            let band = self.band_of(entry.station, exit.station);
            items.push(match (band, rule.flat_fen) {
                (Some(b), _) => Item::Distance {
                    distance_m: d,
                    band: b,
                    fare: f,
                },
                (None, Some(_)) => Item::Flat { fare: f },
                (None, None) => Item::PairOverride { fare: f },
            });
            new_transfer.carried_m = d;
            (f, band)
        };
        let mut fare = self.discounts(
            full,
            Mode::Metro,
            rule.monthly,
            trip.category,
            &mut month,
            &mut items,
        )?;
        fare = self.transfer_discount(trip.previous, Mode::Metro, entry.at_utc, fare, &mut items);
        if rule.monthly {
            month.spent = month.spent.checked_add(fare).ok_or(FareError::Overflow)?;
            month.rides = month.rides.saturating_add(1);
        }
        if let (Some(limit), Some(charge)) = (m.time_limit_min, rule.overstay.or(m.overstay)) {
            if in_system > i64::from(limit) * 60 {
                let f = self.charge(charge, Some(exit.station), area)?;
                items.push(Item::Penalty {
                    kind: PenaltyKind::Overstay,
                    fare: f,
                });
                fare = fare.checked_add(f).ok_or(FareError::Overflow)?;
            }
        }
        Ok(Quote {
            fare,
            full_fare: full,
            distance_m: d,
            band,
            area: Some(area),
            breakdown: items,
            new_month: month,
            new_transfer,
        })
    }

    /// Prices a metro trip of a known distance in the default area: for cities without
    /// network data, and for simulators.
    pub fn quote_distance(
        &self,
        distance_m: u32,
        at_utc: i64,
        category: Category,
        month: RiderMonth,
        previous: Option<TransferState>,
    ) -> Result<Quote> {
        let m = self.metro_rules()?;
        let rule = m
            .area
            .iter()
            .find(|a| a.id == m.default_area)
            .ok_or(FareError::Overflow)?;
        let (full, band) = self.price_in_area(rule, distance_m)?;
        let mut month = month.for_month(local_year_month(at_utc, self.rules.utc_offset_minutes));
        let mut items = vec![match band {
            Some(b) => Item::Distance {
                distance_m,
                band: b,
                fare: full,
            },
            None => Item::Flat { fare: full },
        }];
        let mut fare = self.discounts(
            full,
            Mode::Metro,
            rule.monthly,
            category,
            &mut month,
            &mut items,
        )?;
        fare = self.transfer_discount(previous, Mode::Metro, at_utc, fare, &mut items);
        if rule.monthly {
            month.spent = month.spent.checked_add(fare).ok_or(FareError::Overflow)?;
            month.rides = month.rides.saturating_add(1);
        }
        let new_transfer = TransferState {
            last_tap_utc: at_utc,
            mode: Mode::Metro,
            line: 0,
            station: 0,
            carried_m: distance_m,
        };
        Ok(Quote {
            fare,
            full_fare: full,
            distance_m,
            band,
            area: Some(0),
            breakdown: items,
            new_month: month,
            new_transfer,
        })
    }

    /// Prices a bus leg (flat on boarding, per line, or by tap-on/tap-off distance).
    pub fn bus_fare(&self, trip: &BusTrip<'_>) -> Result<Quote> {
        let b = self
            .rules
            .bus
            .as_ref()
            .ok_or_else(|| FareError::NoMode(self.rules.id.clone(), "bus"))?;
        let line_idx = trip
            .line
            .and_then(|l| b.line.iter().position(|x| x.name == l));
        let (full, band) = match (line_idx, &b.distance, trip.distance_m, b.flat_fen) {
            (Some(i), ..) => (Fen::new(b.line[i].flat_fen), None),
            (None, Some(t), Some(d), _) => {
                let (f, band) = t.price(d).ok_or(FareError::Overflow)?;
                (f, Some(band))
            }
            (None, _, _, Some(f)) => (Fen::new(f), None),
            _ => {
                return Err(FareError::Invalid {
                    city: self.rules.id.clone(),
                    msg: "bus fare needs a distance here".into(),
                })
            }
        };
        let mut month = trip
            .month
            .for_month(local_year_month(trip.at_utc, self.rules.utc_offset_minutes));
        let mut items = vec![match band {
            Some(bi) => Item::Distance {
                distance_m: trip.distance_m.unwrap_or(0),
                band: bi,
                fare: full,
            },
            None => Item::Flat { fare: full },
        }];
        let mut fare =
            self.discounts(full, Mode::Bus, true, trip.category, &mut month, &mut items)?;
        fare = self.transfer_discount(trip.previous, Mode::Bus, trip.at_utc, fare, &mut items);
        if b.monthly {
            month.spent = month.spent.checked_add(fare).ok_or(FareError::Overflow)?;
            month.rides = month.rides.saturating_add(1);
        }
        let new_transfer = TransferState {
            last_tap_utc: trip.at_utc,
            mode: Mode::Bus,
            line: line_idx.map_or(u16::MAX, |i| i.min(usize::from(u16::MAX)) as u16),
            station: 0,
            carried_m: 0,
        };
        Ok(Quote {
            fare,
            full_fare: full,
            distance_m: trip.distance_m.unwrap_or(0),
            band,
            area: None,
            breakdown: items,
            new_month: month,
            new_transfer,
        })
    }

    /// Every ordered pair of distinct stations of a paid area with its distance and standard
    /// adult fare, in station-id order.
    pub fn matrix(&self, area: AreaId) -> Result<Vec<(StationId, StationId, u32, Fen)>> {
        let net = self.net()?;
        let ids: Vec<StationId> = net.area_stations(area).collect();
        let mut out = Vec::with_capacity(ids.len() * ids.len().saturating_sub(1));
        for &a in &ids {
            for &b in &ids {
                if a == b {
                    continue;
                }
                if let (Some(d), Some(f)) = (net.distance(a, b), self.base_fare(a, b)) {
                    out.push((a, b, d, f));
                }
            }
        }
        Ok(out)
    }
}
