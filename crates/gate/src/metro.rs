//! The metro gate: one tap, entry or exit, decided offline from the card, the PSAM, the fare
//! tables and the blacklist.
//!
//! The order of a tap is fixed, and each step either refuses with nothing debited or moves on:
//! select → resolve this card's pending debit, if any → validity, block and blacklist →
//! read the journey record → decide and price → check the balance → journal a `pending`
//! record (fsync) → compound purchase → journal the `completed` record (fsync) → open.

use crate::pending::{receipt_of, PendingSet};
use crate::record::{build_record, RecordContext};
use onecard_blacklist::{Blacklist, Entry};
use onecard_crypto::{Algorithm, KeyUsage};
use onecard_fares::{
    BusTrip, Category, City, FareError, Item, MetroTrip, Mode, Quote, RiderMonth, StationId, Tap,
    TransferState,
};
use onecard_journal::{Direction, Journal, Kind, TapRecord};
use onecard_proto::commands::{CardCommand, InitData};
use onecard_proto::files::{
    sfi, BusRecord, JourneyStatus, MetroRecord, StationCode, TripRecord, MOHURD_BUS_ID,
    MOHURD_METRO_ID, MOHURD_PAYLOAD_LEN,
};
use onecard_proto::{CardTransport, DateTime, Fen, StatusWord};
use onecard_sam::{KeyRequest, KeyStore, Psam, SerialSource};
use onecard_terminal::{
    CappRecord, CardSession, Family, Pending, PurchaseOutcome, Resolution, TerminalError,
};
use serde::Serialize;
use std::sync::Arc;
use thiserror::Error;

/// Which taps a gate accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateMode {
    /// Entry or exit, decided from the card's journey record (`onecard gate tap`).
    Auto,
    /// Entry gate.
    Entry,
    /// Exit gate.
    Exit,
}

/// Where a gate stands and what it knows.
#[derive(Clone)]
pub struct GateConfig {
    /// City id of the fare file (e.g. `beijing`).
    pub city_id: String,
    /// The city's fares and network.
    pub city: Arc<City>,
    /// The city code written into journey records (interop: which city an entry belongs to).
    pub city_code: [u8; 2],
    /// The gate's station (0 for a bus validator).
    pub station: StationId,
    /// Its name, as the network data spells it (a bus validator: route and stop).
    pub station_name: String,
    /// The station's line (first line listed in the network data).
    pub line: u16,
    /// Entry, exit or both.
    pub mode: GateMode,
    /// When set, this terminal is a bus validator on that route, not a metro gate.
    pub bus: Option<BusRoute>,
}

/// A bus validator's route and where the bus is on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusRoute {
    /// Route name as the city's bus rules name it (for per-line flat fares), if any.
    pub name: Option<String>,
    /// Route number written into card records.
    pub line: u16,
    /// Distance of each stop from the start of the route, metres, in stop order. Empty: flat
    /// fare on boarding. Otherwise riders tap on and tap off and pay by distance.
    pub stops_m: Vec<u32>,
    /// The stop the bus is at (index into `stops_m`); the vehicle's software moves it.
    pub stop: u8,
}

/// A tap-on older than this without a tap-off is a missing tap-off, not a ride in progress.
pub const BUS_RIDE_MAX_S: i64 = 4 * 3600;

/// Why a tap was refused: something the gate can show the rider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// Not an e-purse onecard knows.
    NotAnEpurse,
    /// The card left the field before anything was debited.
    CardRemoved,
    /// The card left the field while DEBIT was in flight; the debit is pending and will be
    /// settled at the next tap of this card.
    PaymentInterrupted,
    /// The application is blocked.
    Blocked,
    /// The card is on the blacklist (and has now been blocked on the card too).
    Blacklisted,
    /// Validity has not started.
    NotYetValid,
    /// Validity has ended.
    Expired,
    /// Not enough money for the fare (exit) or the minimum fare (entry).
    InsufficientBalance {
        /// What the card must hold.
        needed_fen: u64,
        /// What it holds.
        balance_fen: u64,
    },
    /// The fare engine cannot price this journey (e.g. the entry was in another paid area).
    CannotPrice {
        /// The engine's explanation.
        detail: String,
    },
    /// The card answered something unexpected.
    CardError {
        /// What happened.
        detail: String,
    },
    /// The gate cannot record taps (journal full or failing, too many pending debits): it
    /// refuses rather than lose a record.
    GateOutOfService {
        /// Why.
        detail: String,
    },
    /// A card from another city whose issuer did not enable interoperation (T-Union 0x17
    /// interop flag `0000`).
    NotInteroperable,
}

/// The gate's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Tap-in.
    Entry,
    /// Tap-out.
    Exit,
    /// Refused; see the reason.
    Refused,
}

/// A summary of the fare engine's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FareSummary {
    /// Shortest-path distance.
    pub distance_m: u32,
    /// The fare before discounts.
    pub full_fare_fen: u64,
    /// Each item of the breakdown.
    pub breakdown: Vec<serde_json::Value>,
}

/// What one tap did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TapResult {
    /// Entry, exit or refused.
    pub decision: Decision,
    /// Why it was refused.
    pub refusal: Option<Refusal>,
    /// Amount debited (0 on refusal).
    pub fare_fen: u64,
    /// Balance before the tap (as the card reported it), if read.
    pub balance_before_fen: Option<u64>,
    /// Balance after the tap.
    pub balance_after_fen: Option<u64>,
    /// The journal record of this tap's debit.
    pub record: Option<TapRecord>,
    /// Records written for a pending debit of this card settled on this contact.
    pub resolved: Vec<TapRecord>,
    /// The fare engine's view, for exits and penalties.
    pub fare: Option<FareSummary>,
    /// APDUs exchanged.
    pub apdus: u32,
}

impl TapResult {
    fn refused(refusal: Refusal, apdus: u32) -> TapResult {
        TapResult {
            decision: Decision::Refused,
            refusal: Some(refusal),
            fare_fen: 0,
            balance_before_fen: None,
            balance_after_fen: None,
            record: None,
            resolved: Vec::new(),
            fare: None,
            apdus,
        }
    }
}

/// A failure of the gate itself (not of the card): the tap did not complete and the gate
/// should be taken out of service.
#[derive(Debug, Error)]
pub enum GateError {
    /// The journal failed.
    #[error("journal: {0}")]
    Journal(#[from] onecard_journal::JournalError),
    /// The pending carry file failed.
    #[error("pending debits file: {0}")]
    Pending(#[from] std::io::Error),
    /// The fare engine failed on the gate's own configuration.
    #[error("fares: {0}")]
    Fares(#[from] FareError),
}

/// A metro gate.
pub struct Gate<K: KeyStore, S: SerialSource> {
    cfg: GateConfig,
    psam: Psam<K, S>,
    journal: Journal,
    pending: PendingSet,
    blacklist: Option<Arc<Blacklist>>,
}

fn card_error(e: TerminalError) -> Refusal {
    match e {
        TerminalError::Transport(_) => Refusal::CardRemoved,
        TerminalError::Blocked => Refusal::Blocked,
        TerminalError::NoApplication => Refusal::NotAnEpurse,
        TerminalError::InsufficientBalance => Refusal::InsufficientBalance {
            needed_fen: 0,
            balance_fen: 0,
        },
        other => Refusal::CardError {
            detail: other.to_string(),
        },
    }
}

/// The fare category of a card's rider code (0x15 byte 28); unknown codes pay full fare.
fn category_of(code: u8) -> Category {
    use onecard_proto::files::rider;
    match code {
        rider::STUDENT => Category::Student,
        rider::SENIOR => Category::Senior,
        rider::FREE => Category::Free,
        _ => Category::Adult,
    }
}

/// The journey record image of a card: T-Union 0x1A record `record`, or the payload of MoHURD
/// 0x17 compound record `compound_id` (its shape checked).
fn read_image<T: CardTransport>(
    s: &mut CardSession<T>,
    record: u8,
    compound_id: u8,
    what: &str,
) -> Result<Vec<u8>, Refusal> {
    let (sfi, n) = match s.family {
        Family::TUnion => (sfi::PROCESS, record),
        Family::Mohurd => (sfi::MANAGEMENT_OR_COMPOUND, compound_id),
    };
    let b = s
        .read_record(sfi, n)
        .map_err(card_error)?
        .ok_or_else(|| Refusal::CardError {
            detail: format!("no {what} record"),
        })?;
    match s.family {
        Family::TUnion => Ok(b),
        Family::Mohurd if b.len() == MOHURD_PAYLOAD_LEN + 2 && b[0] == compound_id => {
            Ok(b[2..].to_vec())
        }
        Family::Mohurd => Err(Refusal::CardError {
            detail: format!("{what} compound record has the wrong shape"),
        }),
    }
}

/// Writes what a priced ride leaves on the card: the month's totals and the last exit
/// (`(line, mode, station)`, mode 1 metro, 2 bus) with the distance a transfer carries over.
fn record_ride(
    m: &mut onecard_proto::files::MonthlyState,
    q: &Quote,
    now: DateTime,
    (line, mode, station): (u16, u8, u16),
) {
    m.year_month = q.new_month.year_month;
    m.spent = q.new_month.spent;
    m.rides = q.new_month.rides;
    m.last_exit = Some(now);
    m.last_exit_line = line;
    m.last_exit_mode = mode;
    m.last_exit_station = station;
    m.carried_m = q.new_transfer.carried_m;
}

fn summary(q: &Quote) -> FareSummary {
    FareSummary {
        distance_m: q.distance_m,
        full_fare_fen: q.full_fare.get(),
        breakdown: q.breakdown.iter().map(Item::to_json).collect(),
    }
}

fn penalties(q: &Quote) -> Vec<onecard_journal::Penalty> {
    q.breakdown
        .iter()
        .filter_map(|i| match *i {
            Item::Penalty { kind, fare } => Some(onecard_journal::Penalty {
                kind: match kind {
                    onecard_fares::PenaltyKind::MissingEntry => {
                        onecard_journal::PenaltyKind::MissingEntry
                    }
                    onecard_fares::PenaltyKind::MissingExit => {
                        onecard_journal::PenaltyKind::MissingExit
                    }
                    onecard_fares::PenaltyKind::SameStation => {
                        onecard_journal::PenaltyKind::SameStation
                    }
                    onecard_fares::PenaltyKind::Overstay => onecard_journal::PenaltyKind::Overstay,
                },
                amount: fare,
            }),
            _ => None,
        })
        .collect()
}

impl<K: KeyStore, S: SerialSource> Gate<K, S> {
    /// A gate over its journal (already opened: recovery done) and PSAM. Pending debits are
    /// rebuilt from the journal and the carry file `pending.json` in the journal directory.
    pub fn new(
        cfg: GateConfig,
        psam: Psam<K, S>,
        journal: Journal,
        blacklist: Option<Arc<Blacklist>>,
    ) -> Result<Gate<K, S>, GateError> {
        let journaled: Vec<TapRecord> = journal
            .unacked(usize::MAX)?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        let pending = PendingSet::load(&journal.dir().join("pending.json"), &journaled)?;
        Ok(Gate {
            cfg,
            psam,
            journal,
            pending,
            blacklist,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GateConfig {
        &self.cfg
    }

    /// Moves a bus validator to stop `stop` of its route (the vehicle reports it).
    pub fn set_stop(&mut self, stop: u8) {
        if let Some(route) = self.cfg.bus.as_mut() {
            route.stop = stop;
            self.cfg.station_name = match &route.name {
                Some(n) => format!("{n} stop {stop}"),
                None => format!("route {} stop {stop}", route.line),
            };
        }
    }

    /// The journal (for upload).
    pub fn journal_mut(&mut self) -> &mut Journal {
        &mut self.journal
    }

    /// The blacklist the gate reads (updates replace its contents in place).
    pub fn blacklist(&self) -> Option<Arc<Blacklist>> {
        self.blacklist.clone()
    }

    /// The PSAM terminal number.
    pub fn terminal(&self) -> [u8; 6] {
        self.psam.terminal()
    }

    /// Pending debits awaiting their card.
    pub fn pending(&self) -> &PendingSet {
        &self.pending
    }

    fn offset_s(&self) -> i32 {
        self.cfg.city.rules.utc_offset_minutes * 60
    }

    fn local(&self, at_utc: i64) -> DateTime {
        // Out-of-range instants cannot come from a sane clock; fall back to the epoch date so
        // the card refuses nothing it would otherwise accept.
        DateTime::from_unix(at_utc, self.offset_s()).unwrap_or(DateTime {
            date: onecard_proto::Date {
                year: 1970,
                month: 1,
                day: 1,
            },
            time: onecard_proto::Time {
                hour: 0,
                minute: 0,
                second: 0,
            },
        })
    }

    fn out_of_service(&self) -> Option<Refusal> {
        if !self.journal.accepts_new_taps() {
            return Some(Refusal::GateOutOfService {
                detail: "journal full: upload needed".into(),
            });
        }
        if self.pending.is_full() {
            return Some(Refusal::GateOutOfService {
                detail: "too many unresolved debits".into(),
            });
        }
        None
    }

    /// One tap of a card on this gate at `at_utc` (Unix seconds).
    pub fn tap<T: CardTransport>(&mut self, link: T, at_utc: i64) -> Result<TapResult, GateError> {
        if let Some(r) = self.out_of_service() {
            return Ok(TapResult::refused(r, 0));
        }
        let mut s = match CardSession::open(link) {
            Ok(s) => s,
            Err(e) => return Ok(TapResult::refused(card_error(e), 0)),
        };
        let mut resolved = Vec::new();
        if let Some(p) = self.pending.for_card(s.info.serial).cloned() {
            let receipt = receipt_of(&p, s.card_ref());
            match s.resolve(&Pending { receipt }) {
                Ok(Resolution::Debited(r)) => {
                    // The rider paid on the torn tap: settle it and let them through.
                    let mut rec = p.record.clone();
                    rec.kind = Kind::Recovered;
                    rec.record_id =
                        TapRecord::record_id_for(Kind::Recovered, r.terminal, r.terminal_serial);
                    rec.resolves = Some(p.record.record_id.clone());
                    rec.tac = Some(r.tac);
                    rec.mac2_verified = false;
                    self.journal.append(&rec)?;
                    self.pending.resolve(&p.record.record_id)?;
                    let decision = match rec.journey.as_ref().map(|j| j.direction) {
                        Some(Direction::Exit) => Decision::Exit,
                        _ => Decision::Entry,
                    };
                    return Ok(TapResult {
                        decision,
                        refusal: None,
                        fare_fen: rec.amount.get(),
                        balance_before_fen: Some(rec.balance_before.get()),
                        balance_after_fen: Some(rec.balance_after.get()),
                        record: Some(rec),
                        resolved,
                        fare: None,
                        apdus: s.apdu_count(),
                    });
                }
                Ok(Resolution::NotDebited) => {
                    let mut rec = p.record.clone();
                    rec.kind = Kind::Void;
                    rec.record_id =
                        TapRecord::record_id_for(Kind::Void, rec.terminal, rec.terminal_serial);
                    rec.resolves = Some(p.record.record_id.clone());
                    self.journal.append(&rec)?;
                    self.pending.resolve(&p.record.record_id)?;
                    resolved.push(rec);
                }
                Ok(Resolution::Unresolvable { .. }) => {
                    // The card has moved on; its later transactions reach clearing from other
                    // terminals, where the pending record is reconciled. Say so and stop waiting.
                    let mut rec = p.record.clone();
                    rec.kind = Kind::Unresolved;
                    rec.record_id = TapRecord::record_id_for(
                        Kind::Unresolved,
                        rec.terminal,
                        rec.terminal_serial,
                    );
                    rec.resolves = Some(p.record.record_id.clone());
                    self.journal.append(&rec)?;
                    self.pending.resolve(&p.record.record_id)?;
                    resolved.push(rec);
                }
                Err(e) => {
                    return Ok(TapResult {
                        resolved,
                        ..TapResult::refused(card_error(e), s.apdu_count())
                    })
                }
            }
        }
        let mut result = self.ride(&mut s, at_utc)?;
        result.resolved.extend(resolved);
        result.apdus = s.apdu_count();
        Ok(result)
    }

    fn ride<T: CardTransport>(
        &mut self,
        s: &mut CardSession<T>,
        at_utc: i64,
    ) -> Result<TapResult, GateError> {
        let now = self.local(at_utc);
        let info = s.info;
        if now.date < info.start {
            return Ok(TapResult::refused(Refusal::NotYetValid, 0));
        }
        if now.date > info.expiry {
            return Ok(TapResult::refused(Refusal::Expired, 0));
        }
        if self
            .blacklist
            .as_ref()
            .is_some_and(|b| b.contains(&Entry::from_app_info(&info)))
        {
            self.block_card(s);
            return Ok(TapResult::refused(Refusal::Blacklisted, 0));
        }
        if s.family == Family::TUnion && info.issuer[2..4] != self.cfg.city_code {
            // Only cards from elsewhere need their interoperation flag read (one APDU more).
            match s.read_binary(sfi::MANAGEMENT_OR_COMPOUND) {
                Ok(b) if b.len() >= 10 && b[8..10] == [0, 0] => {
                    return Ok(TapResult::refused(Refusal::NotInteroperable, 0))
                }
                Ok(_) => {}
                Err(e) => return Ok(TapResult::refused(card_error(e), 0)),
            }
        }
        let record = match self.read_journey(s) {
            Ok(r) => r,
            Err(refusal) => return Ok(TapResult::refused(refusal, 0)),
        };
        let category = category_of(info.rider_category());
        if let Some(route) = self.cfg.bus.clone() {
            let bus = match self.read_bus(s) {
                Ok(b) => b,
                Err(refusal) => return Ok(TapResult::refused(refusal, 0)),
            };
            return match self.plan_bus(&route, &record, &bus, category, at_utc, now) {
                Ok(plan) => self.execute(s, plan, now),
                Err(refusal) => Ok(TapResult::refused(refusal, 0)),
            };
        }
        let entered_here =
            record.status == JourneyStatus::Entered && record.entry_city == self.cfg.city_code;
        let exit = match self.cfg.mode {
            GateMode::Auto => entered_here,
            GateMode::Entry => false,
            GateMode::Exit => true,
        };
        let plan = if exit {
            self.plan_exit(&record, category, at_utc, now)
        } else {
            self.plan_entry(&record, now)
        };
        match plan {
            Ok(plan) => self.execute(s, plan, now),
            Err(refusal) => Ok(TapResult::refused(refusal, 0)),
        }
    }

    /// Reads the journey record: T-Union 0x1A record 1, MoHURD 0x17 record of id 02.
    fn read_journey<T: CardTransport>(
        &self,
        s: &mut CardSession<T>,
    ) -> Result<MetroRecord, Refusal> {
        let image = read_image(s, 1, MOHURD_METRO_ID, "metro")?;
        // A record another operator's gate wrote in a layout we cannot read is treated as "no
        // journey in progress", not as a reason to strand the rider.
        Ok(match s.family {
            Family::TUnion => MetroRecord::parse(&image),
            Family::Mohurd => MetroRecord::from_mohurd_payload(&image),
        }
        .unwrap_or_else(|_| MetroRecord::empty()))
    }

    fn previous_transfer(&self, m: &MetroRecord) -> Option<TransferState> {
        let mm = &m.monthly;
        let mode = match mm.last_exit_mode {
            1 => Mode::Metro,
            2 => Mode::Bus,
            _ => return None,
        };
        Some(TransferState {
            last_tap_utc: mm.last_exit?.to_unix(self.offset_s()),
            mode,
            line: mm.last_exit_line,
            station: mm.last_exit_station,
            carried_m: mm.carried_m,
        })
    }

    fn rider_month(m: &MetroRecord) -> RiderMonth {
        RiderMonth {
            year_month: m.monthly.year_month,
            spent: m.monthly.spent,
            rides: m.monthly.rides,
        }
    }

    fn plan_entry(&self, m: &MetroRecord, now: DateTime) -> Result<Plan, Refusal> {
        let city = &self.cfg.city;
        let net = city.network().ok_or(Refusal::CannotPrice {
            detail: "city has no metro network".into(),
        })?;
        let area = net
            .stations
            .get(usize::from(self.cfg.station))
            .map(|s| s.area)
            .unwrap_or(0);
        // The previous journey in this city never tapped out: its charge is due now.
        let (charge, penalty) =
            if m.status == JourneyStatus::Entered && m.entry_city == self.cfg.city_code {
                let f = city
                    .missing_exit_charge(m.entry_station.station)
                    .map_err(|e| Refusal::CannotPrice {
                        detail: e.to_string(),
                    })?;
                (
                    f,
                    Some(onecard_journal::Penalty {
                        kind: onecard_journal::PenaltyKind::MissingExit,
                        amount: f,
                    }),
                )
            } else {
                (Fen::ZERO, None)
            };
        // Entering needs the minimum fare on top of anything charged now.
        let min = city.area_min_fare(area).unwrap_or(Fen::ZERO);
        let needed = charge.checked_add(min).unwrap_or(charge);
        let mut new = *m;
        new.status = JourneyStatus::Entered;
        new.entry_city = self.cfg.city_code;
        new.exit_city = [0; 2];
        new.entry_station = StationCode {
            line: self.cfg.line,
            station: self.cfg.station,
        };
        new.entry_line = self.cfg.line;
        new.exit_station = StationCode::default();
        new.entry_time = Some(now);
        new.exit_time = None;
        new.entry_terminal = [0; 8];
        new.entry_terminal[..6].copy_from_slice(&self.psam.terminal());
        new.max_fare = city.area_max_fare(area).unwrap_or(Fen::ZERO);
        if charge > Fen::ZERO {
            // A missing-exit charge counts towards the month like any fare.
            let ym = u32::from(now.date.year) * 100 + u32::from(now.date.month);
            let month = Self::rider_month(m).for_month(ym);
            new.monthly.year_month = ym;
            new.monthly.spent = month.spent.checked_add(charge).unwrap_or(month.spent);
            new.monthly.rides = month.rides;
        }
        Ok(Plan {
            direction: Direction::Entry,
            amount: charge,
            needed,
            record: new,
            bus: None,
            trip_type: 0x03,
            quote: None,
            penalties: penalty.into_iter().collect(),
        })
    }

    fn plan_exit(
        &self,
        m: &MetroRecord,
        category: Category,
        at_utc: i64,
        now: DateTime,
    ) -> Result<Plan, Refusal> {
        let entered_here = m.status == JourneyStatus::Entered && m.entry_city == self.cfg.city_code;
        let entry = if entered_here {
            m.entry_time.map(|t| Tap {
                station: m.entry_station.station,
                at_utc: t.to_unix(self.offset_s()),
            })
        } else {
            None
        };
        let trip = MetroTrip {
            entry,
            exit: Tap {
                station: self.cfg.station,
                at_utc,
            },
            category,
            month: Self::rider_month(m),
            previous: self.previous_transfer(m),
        };
        let q = self
            .cfg
            .city
            .quote(&trip)
            .map_err(|e| Refusal::CannotPrice {
                detail: e.to_string(),
            })?;
        let mut new = *m;
        new.status = JourneyStatus::Exited;
        new.exit_city = self.cfg.city_code;
        new.exit_station = StationCode {
            line: self.cfg.line,
            station: self.cfg.station,
        };
        new.exit_time = Some(now);
        new.exit_terminal = [0; 8];
        new.exit_terminal[..6].copy_from_slice(&self.psam.terminal());
        record_ride(
            &mut new.monthly,
            &q,
            now,
            (self.cfg.line, 1, self.cfg.station),
        );
        let penalties = penalties(&q);
        Ok(Plan {
            direction: Direction::Exit,
            needed: q.fare,
            amount: q.fare,
            record: new,
            bus: None,
            trip_type: 0x04,
            quote: Some(q),
            penalties,
        })
    }

    fn place(&self) -> Place {
        let (line, station, industry) = match &self.cfg.bus {
            Some(route) => (route.line, u16::from(route.stop), 0x02),
            None => (self.cfg.line, self.cfg.station, 0x01),
        };
        Place {
            line,
            station,
            industry,
            city_code: self.cfg.city_code,
            terminal: self.psam.terminal(),
        }
    }
}

/// Where a tap happens, as the trip record says it.
struct Place {
    line: u16,
    station: u16,
    industry: u8,
    city_code: [u8; 2],
    terminal: [u8; 6],
}

impl Place {
    fn capp_records(
        &self,
        family: Family,
        plan: &Plan,
        balance_after: Fen,
        now: DateTime,
    ) -> Vec<CappRecord> {
        let Place {
            line,
            station,
            industry,
            ..
        } = *self;
        match family {
            Family::TUnion => {
                let mut terminal = [0u8; 8];
                terminal[..6].copy_from_slice(&self.terminal);
                let trip = TripRecord {
                    trip_type: plan.trip_type,
                    terminal,
                    industry,
                    line,
                    station,
                    operator: 0,
                    amount: plan.amount,
                    balance_after,
                    when: now,
                    acquirer_city: self.city_code,
                    acquirer_institution: [0; 8],
                };
                let mut v = vec![CappRecord {
                    p1: 0x01,
                    sfi: sfi::PROCESS,
                    image: plan.record.to_bytes().to_vec(),
                }];
                if let Some(b) = &plan.bus {
                    v.push(CappRecord {
                        p1: 0x02,
                        sfi: sfi::PROCESS,
                        image: b.to_bytes().to_vec(),
                    });
                }
                v.push(CappRecord {
                    p1: 0x00,
                    sfi: sfi::TRIPS,
                    image: trip.to_bytes().to_vec(),
                });
                v
            }
            Family::Mohurd => {
                let compound = |id: u8, payload: [u8; MOHURD_PAYLOAD_LEN]| {
                    let mut image = Vec::with_capacity(MOHURD_PAYLOAD_LEN + 2);
                    image.push(id);
                    image.push(MOHURD_PAYLOAD_LEN as u8);
                    image.extend_from_slice(&payload);
                    CappRecord {
                        p1: id,
                        sfi: sfi::MANAGEMENT_OR_COMPOUND,
                        image,
                    }
                };
                let mut v = vec![compound(MOHURD_METRO_ID, plan.record.to_mohurd_payload())];
                if let Some(b) = &plan.bus {
                    v.push(compound(MOHURD_BUS_ID, b.to_mohurd_payload()));
                }
                v
            }
        }
    }
}

impl<K: KeyStore, S: SerialSource> Gate<K, S> {
    /// Reads the bus record: T-Union 0x1A record 2, MoHURD 0x17 record of id 03.
    fn read_bus<T: CardTransport>(&self, s: &mut CardSession<T>) -> Result<BusRecord, Refusal> {
        let image = read_image(s, 2, MOHURD_BUS_ID, "bus")?;
        Ok(match s.family {
            Family::TUnion => BusRecord::parse(&image),
            Family::Mohurd => BusRecord::from_mohurd_payload(&image),
        }
        .unwrap_or_else(|_| BusRecord::empty()))
    }

    /// A bus tap: flat fare on boarding, or tap-on / tap-off by distance. The metro record
    /// carries the month and the transfer state either way, so bus-to-metro (and metro-to-bus)
    /// discounts see every ride.
    fn plan_bus(
        &self,
        route: &BusRoute,
        m: &MetroRecord,
        b: &BusRecord,
        category: Category,
        at_utc: i64,
        now: DateTime,
    ) -> Result<Plan, Refusal> {
        let city = &self.cfg.city;
        let price =
            |distance_m: Option<u32>, month: RiderMonth, previous: Option<TransferState>| {
                city.bus_fare(&BusTrip {
                    line: route.name.as_deref(),
                    distance_m,
                    at_utc,
                    category,
                    month,
                    previous,
                })
                .map_err(|e| Refusal::CannotPrice {
                    detail: e.to_string(),
                })
            };
        let boarded_s = b.board_time.map(|t| at_utc - t.to_unix(self.offset_s()));
        let on_board = b.status == JourneyStatus::Entered;
        let tap_off = !route.stops_m.is_empty()
            && on_board
            && b.board_line == route.line
            && boarded_s.is_some_and(|s| (0..=BUS_RIDE_MAX_S).contains(&s));
        // A tap-on that never tapped off costs what it held.
        let missing = (on_board && !tap_off)
            .then_some(b.marked_fare)
            .filter(|f| *f > Fen::ZERO);
        let mut penalties: Vec<onecard_journal::Penalty> = missing
            .map(|f| onecard_journal::Penalty {
                kind: onecard_journal::PenaltyKind::MissingExit,
                amount: f,
            })
            .into_iter()
            .collect();
        let stop_m = |i: u8| route.stops_m.get(usize::from(i)).copied();
        let here = stop_m(route.stop).unwrap_or(0);
        let mut new = *m;
        let mut bus = *b;
        let mut terminal = [0u8; 8];
        terminal[..6].copy_from_slice(&self.psam.terminal());
        // `extra`: what the card must hold beyond the amount (a tap-on needs the minimum fare).
        let (amount, quote, trip_type, extra) = if tap_off {
            let from = stop_m(b.board_stop).ok_or(Refusal::CannotPrice {
                detail: "boarding stop is not on this route".into(),
            })?;
            let d = here.abs_diff(from);
            let q = price(Some(d), Self::rider_month(m), self.previous_transfer(m))?;
            bus.status = JourneyStatus::Exited;
            bus.alight_stop = route.stop;
            bus.alight_time = Some(now);
            bus.amount = q.fare;
            bus.distance_hm = u16::try_from(d / 100).unwrap_or(u16::MAX);
            (q.fare, Some(q), 0x04, Fen::ZERO)
        } else if route.stops_m.is_empty() {
            let q = price(None, Self::rider_month(m), self.previous_transfer(m))?;
            bus = BusRecord {
                status: JourneyStatus::Exited,
                amount: q.fare,
                ..BusRecord::empty()
            };
            bus.board_city = self.cfg.city_code;
            bus.board_line = route.line;
            bus.board_stop = route.stop;
            bus.board_time = Some(now);
            bus.board_terminal = terminal;
            (q.fare, Some(q), 0x06, Fen::ZERO)
        } else {
            // Tap-on: hold the fare of the longest ride left on the route, charge nothing yet.
            let longest = route
                .stops_m
                .iter()
                .map(|&x| x.abs_diff(here))
                .max()
                .unwrap_or(0);
            let hold = price(Some(longest), Self::rider_month(m), None)?.full_fare;
            bus = BusRecord::empty();
            bus.status = JourneyStatus::Entered;
            bus.board_city = self.cfg.city_code;
            bus.board_line = route.line;
            bus.board_stop = route.stop;
            bus.board_time = Some(now);
            bus.board_terminal = terminal;
            bus.marked_fare = hold;
            let min = price(Some(0), Self::rider_month(m), None)?.full_fare;
            (Fen::ZERO, None, 0x03, min)
        };
        let amount =
            amount
                .checked_add(missing.unwrap_or(Fen::ZERO))
                .ok_or(Refusal::CannotPrice {
                    detail: "fare overflow".into(),
                })?;
        let needed = amount.checked_add(extra).unwrap_or(amount);
        if let Some(q) = &quote {
            record_ride(
                &mut new.monthly,
                q,
                now,
                (route.line, 2, u16::from(route.stop)),
            );
            penalties.extend(self::penalties(q));
        }
        Ok(Plan {
            direction: Direction::Bus,
            needed,
            amount,
            record: new,
            bus: Some(bus),
            trip_type,
            quote,
            penalties,
        })
    }

    fn execute<T: CardTransport>(
        &mut self,
        s: &mut CardSession<T>,
        plan: Plan,
        now: DateTime,
    ) -> Result<TapResult, GateError> {
        let place = self.place();
        let family = s.family;
        let ctx = RecordContext {
            city: self.cfg.city_id.clone(),
            station: self.cfg.station_name.clone(),
            line: self.line_name(),
            direction: plan.direction,
            entry: (plan.direction == Direction::Exit)
                .then(|| self.entry_names(&plan.record))
                .flatten(),
            fare: plan.amount,
            penalties: plan.penalties.clone(),
        };
        let Gate {
            psam,
            journal,
            pending,
            ..
        } = self;
        let mut pending_id: Option<String> = None;
        let mut journal_error: Option<onecard_journal::JournalError> = None;
        let mut short: Option<Refusal> = None;
        let mut seen_balance: Option<Fen> = None;
        let outcome = s.purchase_planned(
            psam,
            plan.amount,
            now,
            true,
            &mut |init| {
                // The card's own balance, from INITIALIZE: no separate GET BALANCE.
                seen_balance = Some(init.balance);
                if init.balance < plan.needed {
                    short = Some(Refusal::InsufficientBalance {
                        needed_fen: plan.needed.get(),
                        balance_fen: init.balance.get(),
                    });
                    return Err("insufficient balance".into());
                }
                let after = init.balance.checked_sub(plan.amount).unwrap_or(Fen::ZERO);
                Ok(place.capp_records(family, &plan, after, now))
            },
            &mut |receipt| {
                let rec = build_record(receipt, Kind::Pending, &ctx, None);
                match journal.append(&rec) {
                    Ok(_) => {
                        pending_id = Some(rec.record_id.clone());
                        pending.add(rec);
                        Ok(())
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        journal_error = Some(e);
                        Err(msg)
                    }
                }
            },
        );
        let summary = plan.quote.as_ref().map(summary);
        let refused = |r: Refusal| {
            let mut t = TapResult::refused(r, 0);
            t.balance_before_fen = seen_balance.map(Fen::get);
            t.fare = summary.clone();
            t
        };
        match outcome {
            Ok(PurchaseOutcome::Done(r)) => {
                let rec = build_record(&r, Kind::Completed, &ctx, pending_id.clone());
                self.journal.append(&rec)?;
                if let Some(id) = pending_id {
                    self.pending.resolve(&id)?;
                }
                Ok(TapResult {
                    decision: if plan.direction == Direction::Exit {
                        Decision::Exit
                    } else {
                        Decision::Entry
                    },
                    refusal: None,
                    fare_fen: r.amount.get(),
                    balance_before_fen: Some(r.balance_before.get()),
                    balance_after_fen: Some(r.balance_after.get()),
                    record: Some(rec),
                    resolved: Vec::new(),
                    fare: summary,
                    apdus: 0,
                })
            }
            Ok(PurchaseOutcome::Pending(_)) => Ok(refused(Refusal::PaymentInterrupted)),
            Err(TerminalError::Aborted(_)) => match (short, journal_error) {
                (Some(r), _) => Ok(refused(r)),
                (None, Some(onecard_journal::JournalError::Full { .. })) | (None, None) => {
                    Ok(refused(Refusal::GateOutOfService {
                        detail: "journal full: upload needed".into(),
                    }))
                }
                (None, Some(e)) => Err(e.into()),
            },
            // The card itself refused INITIALIZE (9401): ask it what it holds, for the rider.
            Err(TerminalError::InsufficientBalance) => {
                let balance = s.balance().map(Fen::get).unwrap_or(0);
                Ok(refused(Refusal::InsufficientBalance {
                    needed_fen: plan.needed.get(),
                    balance_fen: balance,
                }))
            }
            Err(e) => Ok(refused(card_error(e))),
        }
    }

    fn line_name(&self) -> String {
        if let Some(route) = &self.cfg.bus {
            return route.name.clone().unwrap_or_else(|| route.line.to_string());
        }
        self.cfg
            .city
            .network()
            .and_then(|n| n.lines.get(usize::from(self.cfg.line)))
            .map(|l| l.name.clone())
            .unwrap_or_default()
    }

    fn entry_names(&self, m: &MetroRecord) -> Option<(String, Option<String>, Option<DateTime>)> {
        let net = self.cfg.city.network()?;
        let st = net.stations.get(usize::from(m.entry_station.station))?;
        let line = net
            .lines
            .get(usize::from(m.entry_line))
            .map(|l| l.name.clone());
        Some((st.name.clone(), line, m.entry_time))
    }

    /// APPLICATION BLOCK with the issuer's MAC, as real systems do for a blacklisted card.
    /// Best effort: the refusal stands whether or not the card accepts the block.
    fn block_card<T: CardTransport>(&mut self, s: &mut CardSession<T>) {
        let Ok(r) = s.exchange(&CardCommand::InitCappPurchase(InitData {
            key_index: 1,
            amount: Fen::ZERO,
            terminal: self.psam.terminal(),
        })) else {
            return;
        };
        let Some(algorithm) = (r.sw == StatusWord::Ok && r.data.len() == 15)
            .then(|| Algorithm::from_id(r.data[10]))
            .flatten()
        else {
            return;
        };
        let Ok(ch) = s.exchange(&CardCommand::GetChallenge(4)) else {
            return;
        };
        let Ok(challenge) = <[u8; 4]>::try_from(ch.data.as_slice()) else {
            return;
        };
        let req = KeyRequest {
            card: s.card_ref(),
            usage: KeyUsage::Maintenance,
            algorithm,
            version: r.data[9],
        };
        if let Ok(mac) = self
            .psam
            .keys()
            .line_mac(&req, challenge, &[0x84, 0x1E, 0x00, 0x00, 0x04])
        {
            let _ = s.exchange(&CardCommand::AppBlock {
                permanent: false,
                mac,
            });
        }
    }
}

/// What a tap will do, decided before anything is sent.
struct Plan {
    direction: Direction,
    amount: Fen,
    /// What the card must hold for the tap to go ahead (the amount, or more: an entry needs
    /// the minimum fare), checked against the balance INITIALIZE reports.
    needed: Fen,
    /// The metro record as it will be (journey, month and transfer state).
    record: MetroRecord,
    /// The bus record as it will be, for bus taps.
    bus: Option<BusRecord>,
    /// 0x1E trip type: 03 entry, 04 exit, 06 single fare (bus).
    trip_type: u8,
    quote: Option<Quote>,
    penalties: Vec<onecard_journal::Penalty>,
}
