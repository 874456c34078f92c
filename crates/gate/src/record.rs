//! Journal records from terminal receipts.

use onecard_journal::{Algorithm, Direction, Journey, Kind, Penalty, RecordImage, TapRecord};
use onecard_proto::{DateTime, Fen};
use onecard_terminal::PurchaseReceipt;

/// Where and why a debit happened, beside what the card and PSAM say.
pub struct RecordContext {
    /// City id.
    pub city: String,
    /// Station name.
    pub station: String,
    /// Line name.
    pub line: String,
    /// Entry, exit or bus.
    pub direction: Direction,
    /// Entry station name, line name and time (exits).
    pub entry: Option<(String, Option<String>, Option<DateTime>)>,
    /// The fare decided.
    pub fare: Fen,
    /// Penalties in it.
    pub penalties: Vec<Penalty>,
}

/// The journal record of a receipt.
pub fn build_record(
    r: &PurchaseReceipt,
    kind: Kind,
    ctx: &RecordContext,
    resolves: Option<String>,
) -> TapRecord {
    let has_tac = matches!(kind, Kind::Completed | Kind::Recovered);
    TapRecord {
        record_id: TapRecord::record_id_for(kind, r.terminal, r.terminal_serial),
        kind,
        resolves,
        family: r.family.into(),
        issuer: r.card.issuer,
        serial: r.serial,
        counter: r.counter,
        tx_type: r.tx_type,
        amount: r.amount,
        balance_before: r.balance_before,
        balance_after: r.balance_after,
        terminal: r.terminal,
        terminal_serial: r.terminal_serial,
        date: r.when.date,
        time: r.when.time,
        tac: has_tac.then_some(r.tac),
        key_version: r.key_version,
        algorithm: Algorithm::from_id(r.algorithm).unwrap_or(Algorithm::TripleDes),
        mac2_verified: kind == Kind::Completed && r.mac2_verified,
        security_code: r.security_code,
        records: r
            .records
            .iter()
            .map(|(p1, sfi, data)| RecordImage {
                p1: *p1,
                sfi: *sfi,
                data: data.clone(),
            })
            .collect(),
        city: ctx.city.clone(),
        fares_version: None,
        station: Some(ctx.station.clone()),
        line: Some(ctx.line.clone()).filter(|l| !l.is_empty()),
        journey: Some(Journey {
            direction: ctx.direction,
            entry_station: ctx.entry.as_ref().map(|e| e.0.clone()),
            entry_line: ctx.entry.as_ref().and_then(|e| e.1.clone()),
            entry_time: ctx.entry.as_ref().and_then(|e| e.2),
            fare: ctx.fare,
            penalties: ctx.penalties.clone(),
        }),
    }
}
