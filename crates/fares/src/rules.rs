//! The city fare file: schema (TOML, `format_version = 1`), validation and the pure pricing
//! functions (bands, rates, monthly ladders) that do not need a network.
//!
//! The format is described for humans in `crates/fares/FORMAT.md`; every field here is
//! documented because the file is the contract between operators and the engine.

use std::collections::BTreeMap;

use onecard_proto::Fen;
use serde::Deserialize;

use crate::error::{FareError, Result};

/// The city-file format version this build reads.
pub const FORMAT_VERSION: u32 = 1;
/// Largest city file accepted, in bytes.
pub const MAX_CITY_FILE_BYTES: usize = 1 << 20;
/// Most bands in one fare table.
pub const MAX_BANDS: usize = 256;
/// Most steps in a monthly ladder.
pub const MAX_LADDER_STEPS: usize = 16;

/// How a discounted amount is rounded to whole fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Nearest fen, halves up (0.5 fen → 1 fen). The default.
    #[default]
    HalfUp,
    /// Towards zero: the rider never pays a fraction more.
    Down,
    /// Away from zero.
    Up,
}

impl Rounding {
    /// `amount * percent / 100`, rounded by this rule. `None` on overflow.
    pub fn apply_percent(self, amount: Fen, percent: u32) -> Option<Fen> {
        self.div(u128::from(amount.get()) * u128::from(percent), 100)
    }

    /// `num / den` rounded by this rule, as fen.
    pub fn div(self, num: u128, den: u128) -> Option<Fen> {
        if den == 0 {
            return None;
        }
        let q = num / den;
        let r = num % den;
        let q = match self {
            Rounding::Down => q,
            Rounding::Up => q + u128::from(r != 0),
            Rounding::HalfUp => q + u128::from(r * 2 >= den),
        };
        u64::try_from(q).ok().map(Fen::new)
    }
}

/// Whether a band's upper bound belongs to the band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Bounds {
    /// `d <= up_to_m` is in the band (Beijing, Shanghai, Shenzhen, Wuhan).
    #[default]
    Inclusive,
    /// `d < up_to_m` is in the band (Guangzhou as tabulated by cnhuoche).
    Exclusive,
}

/// One distance band: trips up to `up_to_m` (see [`Bounds`]) cost `fen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    /// Upper bound in metres; absent on a last, open-ended band.
    pub up_to_m: Option<u32>,
    /// Fare in fen.
    pub fen: u64,
}

/// Above the last bounded band: `add_fen` more for every started `every_m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Beyond {
    /// Step length in metres (> 0).
    pub every_m: u32,
    /// Fare added per step, in fen.
    pub add_fen: u64,
}

/// A distance-band fare table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FareTable {
    /// Inclusive or exclusive upper bounds.
    #[serde(default)]
    pub upper_bounds: Bounds,
    /// Free mileage: this many metres are forgiven before the bands are read.
    #[serde(default)]
    pub tolerance_m: u32,
    /// Bands in increasing order.
    pub bands: Vec<Band>,
    /// Rule above the last bounded band; required unless the last band is open-ended.
    pub beyond: Option<Beyond>,
}

/// The band a distance fell in: index into `bands`, or `bands.len() + k - 1` for the k-th
/// step beyond the last band.
pub type BandIndex = u16;

impl FareTable {
    fn validate(&self, ctx: &str) -> std::result::Result<(), String> {
        if self.bands.is_empty() || self.bands.len() > MAX_BANDS {
            return Err(format!("{ctx}: needs 1..={MAX_BANDS} bands"));
        }
        let mut prev: Option<u32> = None;
        for (i, b) in self.bands.iter().enumerate() {
            match (b.up_to_m, i + 1 == self.bands.len()) {
                (None, false) => return Err(format!("{ctx}: only the last band may omit up_to_m")),
                (Some(u), _) => {
                    if prev.is_some_and(|p| u <= p) {
                        return Err(format!("{ctx}: band bounds must increase (at {u} m)"));
                    }
                    prev = Some(u);
                }
                (None, true) => {}
            }
        }
        let open = self.bands.last().is_some_and(|b| b.up_to_m.is_none());
        match (open, self.beyond) {
            (true, Some(_)) => Err(format!(
                "{ctx}: an open last band and `beyond` exclude each other"
            )),
            (false, None) => Err(format!(
                "{ctx}: the last band is bounded, so `beyond` is required"
            )),
            (_, Some(b)) if b.every_m == 0 => Err(format!("{ctx}: beyond.every_m must be > 0")),
            _ => Ok(()),
        }
    }

    /// The fare and band for a distance. `None` only on money overflow.
    pub fn price(&self, distance_m: u32) -> Option<(Fen, BandIndex)> {
        let d = distance_m.saturating_sub(self.tolerance_m);
        let within = |bound: u32| match self.upper_bounds {
            Bounds::Inclusive => d <= bound,
            Bounds::Exclusive => d < bound,
        };
        for (i, b) in self.bands.iter().enumerate() {
            match b.up_to_m {
                Some(u) if !within(u) => continue,
                _ => return Some((Fen::new(b.fen), i as BandIndex)),
            }
        }
        let last = self.bands.last()?;
        let top = last.up_to_m?;
        let step = self.beyond?;
        let over = d - top; // d > top here, or d == top for exclusive bounds
        let steps = match self.upper_bounds {
            Bounds::Inclusive => over.div_ceil(step.every_m),
            Bounds::Exclusive => over / step.every_m + 1,
        };
        let fare = step
            .add_fen
            .checked_mul(u64::from(steps))?
            .checked_add(last.fen)?;
        let idx =
            (self.bands.len() as u64 + u64::from(steps) - 1).min(u64::from(u16::MAX)) as BandIndex;
        Some((Fen::new(fare), idx))
    }

    /// The lowest fare of the table.
    pub fn min_fare(&self) -> Fen {
        Fen::new(self.bands.iter().map(|b| b.fen).min().unwrap_or(0))
    }
}

/// What a penalty or special exit costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Charge {
    /// A fixed amount.
    Fixed {
        /// Amount in fen.
        fen: u64,
    },
    /// The lowest fare of the paid area.
    MinFare,
    /// The highest fare between any two stations of the paid area.
    MaxFare,
    /// The highest fare from (or to) the station where the rider was seen.
    MaxFromStation,
    /// Nothing.
    Free,
}

/// The same-station exit rule: free within a grace period, then a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SameStation {
    /// Minutes after entry during which leaving at the entry station is free.
    #[serde(default)]
    pub free_within_min: u32,
    /// What it costs after that.
    pub charge: Charge,
}

/// Which counter a monthly ladder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Money paid this month (fen).
    Spent,
    /// Rides taken this month; step `from` is the ride number (1 = first ride).
    Rides,
}

/// How a money threshold applies to the trip that crosses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reading {
    /// The rate is chosen from what was paid before this trip (Beijing operator FAQ).
    BeforeTrip,
    /// Only the part of the trip above a threshold gets the new rate (Beijing hearing notice).
    PartAbove,
    /// The trip whose full fare makes the month reach a threshold is itself discounted
    /// (Shanghai: 67 yuan spent, a 3-yuan trip costs 2.70).
    ReachingTrip,
}

/// One rung of a monthly ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Threshold: fen paid (measure `spent`) or ride number (measure `rides`).
    pub from: u64,
    /// Percentage of the fare paid from this threshold on (80 = 20% off).
    pub percent: u32,
}

/// A monthly volume discount, reset on the 1st of each local month.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Monthly {
    /// Money or rides.
    pub measure: Measure,
    /// Threshold reading (money ladders only; ignored for rides).
    #[serde(default = "default_reading")]
    pub reading: Reading,
    /// Rungs in increasing `from` order; below the first rung the rate is 100%.
    pub steps: Vec<Step>,
}

fn default_reading() -> Reading {
    Reading::BeforeTrip
}

/// Rider category rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryRule {
    /// Percentage of the full fare paid (50 = half price, 0 = free).
    pub percent: u32,
    /// Whether the monthly ladder still applies on top (default: no).
    #[serde(default)]
    pub monthly: bool,
}

/// A transfer discount between modes (e.g. Shanghai bus → metro within 120 min: 1 yuan off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferDiscount {
    /// Mode of the previous leg.
    pub from_mode: Mode,
    /// Mode of this leg.
    pub to_mode: Mode,
    /// Minutes from the previous leg's last tap to this leg's entry tap, inclusive.
    pub window_min: u32,
    /// Fen taken off this leg's fare (floored at zero).
    pub off_fen: u64,
}

/// Transport mode of a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Bus.
    Bus,
    /// Metro / rail.
    Metro,
}

/// A paid area: a set of lines with its own gates and its own pricing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaRule {
    /// Short id (`main`, `capital-airport`).
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Lines (names as in the network data). Empty on the default area, which takes every
    /// line no other area lists.
    #[serde(default)]
    pub lines: Vec<String>,
    /// Name of a table in `metro.fare_table`.
    pub fare_table: Option<String>,
    /// A flat fare instead of a table.
    pub flat_fen: Option<u64>,
    /// Whether trips here feed and use the monthly ladder.
    #[serde(default = "yes")]
    pub monthly: bool,
    /// Overrides `metro.overstay` for this area.
    pub overstay: Option<Charge>,
}

fn yes() -> bool {
    true
}

/// A fixed fare between two stations that wins over the distance formula.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairOverride {
    /// Entry station name.
    pub from: String,
    /// Exit station name.
    pub to: String,
    /// Fare in fen.
    pub fen: u64,
    /// Whether the reverse direction gets the same fare (default yes).
    #[serde(default = "yes")]
    pub both_ways: bool,
}

/// Leaving the paid area at one station and re-entering at another, priced as one journey.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutOfStation {
    /// Station tapped out at.
    pub from: String,
    /// Station tapped in at.
    pub to: String,
    /// Minutes allowed between the two taps.
    pub window_min: u32,
    /// Whether the reverse direction is also allowed (default yes).
    #[serde(default = "yes")]
    pub both_ways: bool,
}

/// Metro rules of a city.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetroRules {
    /// Built-in network dataset id (`beijing-subway`), or `none`.
    #[serde(default = "none")]
    pub network: String,
    /// Id of the paid area used for quotes by distance and for the main matrix.
    pub default_area: String,
    /// Distance tables by name.
    #[serde(default)]
    pub fare_table: BTreeMap<String, FareTable>,
    /// Paid areas.
    pub area: Vec<AreaRule>,
    /// Fixed fares for station pairs.
    #[serde(default)]
    pub pair_override: Vec<PairOverride>,
    /// Minutes allowed inside the paid area per journey.
    pub time_limit_min: Option<u32>,
    /// Charged on top of the fare when the time limit is exceeded.
    pub overstay: Option<Charge>,
    /// Charged at exit when the card shows no entry.
    pub missing_entry: Charge,
    /// Charged at the next tap when the card shows an entry without exit.
    pub missing_exit: Charge,
    /// Exit at the entry station.
    pub same_station: SameStation,
    /// Percentage paid with the city's stored-value card (100 = no card discount).
    #[serde(default = "hundred")]
    pub card_percent: u32,
    /// Monthly volume discount.
    pub monthly: Option<Monthly>,
    /// Concession categories (`student`, `senior`); `free` is always 0%.
    #[serde(default)]
    pub categories: BTreeMap<String, CategoryRule>,
    /// Out-of-station transfers.
    #[serde(default)]
    pub out_of_station_transfer: Vec<OutOfStation>,
}

fn none() -> String {
    "none".into()
}
fn hundred() -> u32 {
    100
}

/// A bus line with its own flat fare.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusLine {
    /// Line name as printed on the bus.
    pub name: String,
    /// Flat fare in fen.
    pub flat_fen: u64,
}

/// Bus rules of a city.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusRules {
    /// Flat fare on boarding, used when no distance table applies.
    pub flat_fen: Option<u64>,
    /// Tap-on/tap-off distance table.
    pub distance: Option<FareTable>,
    /// Lines with their own flat fare.
    #[serde(default)]
    pub line: Vec<BusLine>,
    /// Percentage paid with the city's card.
    #[serde(default = "hundred")]
    pub card_percent: u32,
    /// Whether bus trips feed and use the metro monthly ladder (default no).
    #[serde(default)]
    pub monthly: bool,
    /// Concession categories for buses.
    #[serde(default)]
    pub categories: BTreeMap<String, CategoryRule>,
}

/// A whole city file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CityRules {
    /// Format version; must equal [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Short id (`beijing`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// ISO 4217 code; amounts are in its minor unit.
    pub currency: String,
    /// Fixed offset of local business time from UTC, minutes.
    pub utc_offset_minutes: i32,
    /// Rounding of discounted fares.
    #[serde(default)]
    pub rounding: Rounding,
    /// Free text shown by `fare check`.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Metro rules.
    pub metro: Option<MetroRules>,
    /// Bus rules.
    pub bus: Option<BusRules>,
    /// Transfer discounts between modes.
    #[serde(default)]
    pub transfer_discount: Vec<TransferDiscount>,
}

impl Monthly {
    fn validate(&self, ctx: &str) -> std::result::Result<(), String> {
        if self.steps.is_empty() || self.steps.len() > MAX_LADDER_STEPS {
            return Err(format!("{ctx}: needs 1..={MAX_LADDER_STEPS} steps"));
        }
        for w in self.steps.windows(2) {
            if w[1].from <= w[0].from {
                return Err(format!("{ctx}: steps must have increasing `from`"));
            }
        }
        if self.steps.iter().any(|s| s.percent > 100) {
            return Err(format!("{ctx}: percent must be 0..=100"));
        }
        if self.measure == Measure::Rides && self.steps.iter().any(|s| s.from == 0) {
            return Err(format!("{ctx}: ride numbers start at 1"));
        }
        Ok(())
    }

    /// The rate (percent) for a position on the ladder.
    fn rate_at(&self, pos: u64) -> u32 {
        self.steps
            .iter()
            .rev()
            .find(|s| s.from <= pos)
            .map_or(100, |s| s.percent)
    }

    /// What a trip of full fare `fare` costs given the month so far, by this ladder.
    pub fn apply(
        &self,
        fare: Fen,
        spent: Fen,
        rides_before: u32,
        rounding: Rounding,
    ) -> Option<(Fen, u32)> {
        match (self.measure, self.reading) {
            (Measure::Rides, _) => {
                let rate = self.rate_at(u64::from(rides_before) + 1);
                Some((rounding.apply_percent(fare, rate)?, rate))
            }
            (Measure::Spent, Reading::BeforeTrip) => {
                let rate = self.rate_at(spent.get());
                Some((rounding.apply_percent(fare, rate)?, rate))
            }
            (Measure::Spent, Reading::ReachingTrip) => {
                let rate = self.rate_at(spent.get().checked_add(fare.get())?);
                Some((rounding.apply_percent(fare, rate)?, rate))
            }
            (Measure::Spent, Reading::PartAbove) => {
                // Walk the ladder in exact units of fen*100/percent is not integral, so money is
                // carried in micro-fen (1e-6 fen) and rounded once at the end; the error is far
                // below the final rounding step.
                const U: u128 = 1_000_000;
                let mut remaining_full = u128::from(fare.get()) * U; // full-fare micro-fen still to price
                let mut pos = u128::from(spent.get()) * U; // paid so far, micro-fen
                let mut paid: u128 = 0;
                let mut last_rate = self.rate_at(spent.get());
                while remaining_full > 0 {
                    let rate = self.rate_at((pos / U) as u64);
                    last_rate = rate;
                    let next = self
                        .steps
                        .iter()
                        .map(|s| u128::from(s.from) * U)
                        .find(|&t| t > pos);
                    let cost_all = remaining_full * u128::from(rate) / 100;
                    match next {
                        Some(t) if rate > 0 && pos + cost_all > t => {
                            let pay = t - pos;
                            paid += pay;
                            remaining_full -= pay * 100 / u128::from(rate);
                            pos = t;
                        }
                        _ => {
                            paid += cost_all;
                            break;
                        }
                    }
                }
                Some((rounding.div(paid, U)?, last_rate))
            }
        }
    }
}

impl CityRules {
    /// Parses and validates a city file.
    pub fn from_toml(text: &str) -> Result<CityRules> {
        if text.len() > MAX_CITY_FILE_BYTES {
            return Err(FareError::Limit {
                what: "city file size (bytes)",
                max: MAX_CITY_FILE_BYTES as u64,
            });
        }
        // Read the version first so that an old build reports "unsupported version" rather
        // than a confusing schema error on a newer file.
        #[derive(Deserialize)]
        struct Probe {
            format_version: Option<u32>,
        }
        let probe: Probe = toml::from_str(text).map_err(|e| FareError::CityFile(e.to_string()))?;
        match probe.format_version {
            Some(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(FareError::UnsupportedVersion {
                    found: v,
                    supported: FORMAT_VERSION,
                })
            }
            None => return Err(FareError::CityFile("missing format_version".into())),
        }
        let rules: CityRules =
            toml::from_str(text).map_err(|e| FareError::CityFile(e.to_string()))?;
        rules.validate()?;
        Ok(rules)
    }

    fn validate(&self) -> Result<()> {
        let bad = |msg: String| FareError::Invalid {
            city: self.id.clone(),
            msg,
        };
        if !(-14 * 60..=14 * 60).contains(&self.utc_offset_minutes) {
            return Err(bad("utc_offset_minutes out of range".into()));
        }
        if self.metro.is_none() && self.bus.is_none() {
            return Err(bad("needs [metro] or [bus]".into()));
        }
        if let Some(m) = &self.metro {
            for (name, t) in &m.fare_table {
                t.validate(&format!("metro.fare_table.{name}"))
                    .map_err(bad)?;
            }
            if m.area.is_empty() {
                return Err(bad("metro needs at least one [[metro.area]]".into()));
            }
            let mut defaults = 0;
            for a in &m.area {
                match (&a.fare_table, a.flat_fen) {
                    (Some(t), None) if m.fare_table.contains_key(t) => {}
                    (Some(t), None) => {
                        return Err(bad(format!("area {}: unknown fare_table {t}", a.id)))
                    }
                    (None, Some(_)) => {}
                    _ => {
                        return Err(bad(format!(
                            "area {}: give exactly one of fare_table, flat_fen",
                            a.id
                        )))
                    }
                }
                if a.lines.is_empty() {
                    defaults += 1;
                }
            }
            if defaults > 1 {
                return Err(bad("at most one area may leave `lines` empty".into()));
            }
            if !m.area.iter().any(|a| a.id == m.default_area) {
                return Err(bad(format!(
                    "default_area {} is not an area",
                    m.default_area
                )));
            }
            if let Some(l) = &m.monthly {
                l.validate("metro.monthly").map_err(bad)?;
            }
            if m.card_percent > 100 || m.categories.values().any(|c| c.percent > 100) {
                return Err(bad("percentages must be 0..=100".into()));
            }
            if m.time_limit_min.is_some() != m.overstay.is_some() {
                return Err(bad("time_limit_min and overstay go together".into()));
            }
        }
        if let Some(b) = &self.bus {
            if let Some(t) = &b.distance {
                t.validate("bus.distance").map_err(bad)?;
            }
            if b.flat_fen.is_none() && b.distance.is_none() && b.line.is_empty() {
                return Err(bad("bus needs flat_fen, distance or lines".into()));
            }
            if b.card_percent > 100 || b.categories.values().any(|c| c.percent > 100) {
                return Err(bad("percentages must be 0..=100".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(bounds: Bounds, tol: u32) -> FareTable {
        FareTable {
            upper_bounds: bounds,
            tolerance_m: tol,
            bands: vec![
                Band {
                    up_to_m: Some(4000),
                    fen: 200,
                },
                Band {
                    up_to_m: Some(8000),
                    fen: 300,
                },
            ],
            beyond: Some(Beyond {
                every_m: 8000,
                add_fen: 100,
            }),
        }
    }

    #[test]
    fn inclusive_exclusive_and_tolerance() {
        let inc = table(Bounds::Inclusive, 0);
        assert_eq!(inc.price(4000).map(|p| p.0), Some(Fen::new(200)));
        assert_eq!(inc.price(4001).map(|p| p.0), Some(Fen::new(300)));
        assert_eq!(inc.price(16_000).map(|p| p.0), Some(Fen::new(400)));
        assert_eq!(inc.price(16_001).map(|p| p.0), Some(Fen::new(500)));
        let exc = table(Bounds::Exclusive, 0);
        assert_eq!(exc.price(3999).map(|p| p.0), Some(Fen::new(200)));
        assert_eq!(exc.price(4000).map(|p| p.0), Some(Fen::new(300)));
        assert_eq!(exc.price(8000).map(|p| p.0), Some(Fen::new(400)));
        assert_eq!(exc.price(15_999).map(|p| p.0), Some(Fen::new(400)));
        assert_eq!(exc.price(16_000).map(|p| p.0), Some(Fen::new(500)));
        let tol = table(Bounds::Inclusive, 99);
        assert_eq!(tol.price(4099).map(|p| p.0), Some(Fen::new(200)));
        assert_eq!(tol.price(4100).map(|p| p.0), Some(Fen::new(300)));
        assert_eq!(tol.price(16_099).map(|p| p.0), Some(Fen::new(400)));
        assert_eq!(tol.price(16_100).map(|p| p.0), Some(Fen::new(500)));
    }

    #[test]
    fn rounding_rules() {
        assert_eq!(
            Rounding::HalfUp.apply_percent(Fen::new(300), 90),
            Some(Fen::new(270))
        );
        assert_eq!(
            Rounding::HalfUp.apply_percent(Fen::new(700), 95),
            Some(Fen::new(665))
        );
        assert_eq!(
            Rounding::HalfUp.apply_percent(Fen::new(1), 50),
            Some(Fen::new(1))
        );
        assert_eq!(
            Rounding::Down.apply_percent(Fen::new(1), 50),
            Some(Fen::new(0))
        );
        assert_eq!(
            Rounding::Up.apply_percent(Fen::new(101), 50),
            Some(Fen::new(51))
        );
    }

    fn beijing_ladder(reading: Reading) -> Monthly {
        Monthly {
            measure: Measure::Spent,
            reading,
            steps: vec![
                Step {
                    from: 10_000,
                    percent: 80,
                },
                Step {
                    from: 15_000,
                    percent: 50,
                },
                Step {
                    from: 40_000,
                    percent: 100,
                },
            ],
        }
    }

    #[test]
    fn ladder_readings_differ_on_the_crossing_trip() {
        let r = Rounding::HalfUp;
        let before = beijing_ladder(Reading::BeforeTrip);
        let part = beijing_ladder(Reading::PartAbove);
        // 95 yuan paid, a 10-yuan trip crosses 100.
        assert_eq!(
            before.apply(Fen::yuan(10), Fen::yuan(95), 0, r),
            Some((Fen::yuan(10), 100))
        );
        // 5 yuan at full price, then 5 yuan of full fare at 80% = 4 → 9 yuan.
        assert_eq!(
            part.apply(Fen::yuan(10), Fen::yuan(95), 0, r),
            Some((Fen::yuan(9), 80))
        );
        // Crossing 150: 148 paid, 6 yuan trip at 80%: 2 yuan paid reaches 150 (2.50 of full
        // fare), the remaining 3.50 full at 50% = 1.75 → 3.75.
        assert_eq!(
            part.apply(Fen::yuan(6), Fen::yuan(148), 0, r),
            Some((Fen::new(375), 50))
        );
        assert_eq!(
            before.apply(Fen::yuan(6), Fen::yuan(148), 0, r),
            Some((Fen::new(480), 80))
        );
        // From 400 full price again, in both readings.
        assert_eq!(
            before.apply(Fen::yuan(6), Fen::yuan(400), 0, r),
            Some((Fen::yuan(6), 100))
        );
        // 399 paid at 50%: 1 yuan reaches 400 (2 yuan full fare), the remaining 4 yuan at 100%.
        assert_eq!(
            part.apply(Fen::yuan(6), Fen::yuan(399), 0, r),
            Some((Fen::yuan(5), 100))
        );
    }

    #[test]
    fn shanghai_reaching_trip_and_guangzhou_rides() {
        let sh = Monthly {
            measure: Measure::Spent,
            reading: Reading::ReachingTrip,
            steps: vec![Step {
                from: 7000,
                percent: 90,
            }],
        };
        assert_eq!(
            sh.apply(Fen::yuan(3), Fen::yuan(67), 0, Rounding::HalfUp),
            Some((Fen::new(270), 90))
        );
        assert_eq!(
            sh.apply(Fen::yuan(3), Fen::new(6699), 0, Rounding::HalfUp),
            Some((Fen::new(300), 100))
        );
        let gz = Monthly {
            measure: Measure::Rides,
            reading: Reading::BeforeTrip,
            steps: vec![
                Step {
                    from: 1,
                    percent: 95,
                },
                Step {
                    from: 16,
                    percent: 60,
                },
            ],
        };
        assert_eq!(
            gz.apply(Fen::yuan(4), Fen::ZERO, 14, Rounding::HalfUp),
            Some((Fen::new(380), 95))
        );
        assert_eq!(
            gz.apply(Fen::yuan(4), Fen::ZERO, 15, Rounding::HalfUp),
            Some((Fen::new(240), 60))
        );
    }
}
