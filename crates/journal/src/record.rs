//! [`TapRecord`]: one gate transaction in the JSON form the gate prints and uploads and
//! clearing imports.
//!
//! The struct holds plain fields (byte arrays, [`Fen`], [`Date`], [`Time`]) and no
//! `onecard-terminal` types, so clearing can import records without linking terminal code; the
//! gate builds records from its `PurchaseReceipt` / `Pending`. The JSON names and encodings are
//! the contract (see `crates/journal/PROTOCOL.md`): identifiers are fixed-length upper-case hex
//! strings, money is integer fen as JSON numbers, dates are `YYYYMMDD` and times `hhmmss`
//! strings, exactly as sent to the card.

use onecard_proto::money::MAX_CARD_FEN;
use onecard_proto::{Date, DateTime, Fen, Time};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest `record_id` (bytes). Ids are short: `{terminal}-{terminal_serial}` is 21.
pub const MAX_RECORD_ID_LEN: usize = 64;
/// Longest city, station or line name (bytes).
pub const MAX_NAME_LEN: usize = 64;
/// Most 80DC record images one transaction can carry.
pub const MAX_IMAGES: usize = 8;
/// Largest 80DC record image (bytes); card records are at most 128.
pub const MAX_IMAGE_LEN: usize = 256;
/// Most penalties on one journey.
pub const MAX_PENALTIES: usize = 8;

/// What happened to the transaction a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// DEBIT was answered: TAC present, MAC2 checked by the PSAM in the same session.
    Completed,
    /// The DEBIT answer was lost and the next contact resolved it with GET TRANSACTION PROVE
    /// (B.5.2): TAC present, `mac2_verified` false, `resolves` names the pending record.
    Recovered,
    /// Written and made durable *before* DEBIT was sent; the outcome is unknown until a later
    /// `completed`, `recovered` or `void` record resolves it. No TAC.
    Pending,
    /// A pending transaction the card showed never happened (counter unchanged); `resolves`
    /// names it. The amounts describe the debit that did *not* take place.
    Void,
    /// The gate stopped waiting for a pending transaction: the card came back having moved on
    /// (B.5.2 "unresolvable"), so only clearing, from the card's later transactions, can tell
    /// whether the debit happened. `resolves` names it; no TAC.
    Unresolved,
}

impl Kind {
    /// The JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Completed => "completed",
            Kind::Recovered => "recovered",
            Kind::Pending => "pending",
            Kind::Void => "void",
            Kind::Unresolved => "unresolved",
        }
    }

    /// Suffix of the conventional record id (see [`TapRecord::record_id_for`]): completed and
    /// recovered share the bare id because at most one of them exists per PSAM serial.
    fn id_suffix(self) -> &'static str {
        match self {
            Kind::Completed | Kind::Recovered => "",
            Kind::Pending => "-P",
            Kind::Void => "-V",
            Kind::Unresolved => "-U",
        }
    }
}

/// Card family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Family {
    /// T-Union (JT/T 978).
    #[serde(rename = "t-union")]
    TUnion,
    /// MoHURD city union.
    #[serde(rename = "mohurd")]
    Mohurd,
}

impl From<onecard_proto::Family> for Family {
    fn from(f: onecard_proto::Family) -> Family {
        match f {
            onecard_proto::Family::TUnion => Family::TUnion,
            onecard_proto::Family::Mohurd => Family::Mohurd,
        }
    }
}

impl From<Family> for onecard_proto::Family {
    fn from(f: Family) -> onecard_proto::Family {
        match f {
            Family::TUnion => onecard_proto::Family::TUnion,
            Family::Mohurd => onecard_proto::Family::Mohurd,
        }
    }
}

/// Session-key algorithm from the INIT response (the host needs it to pick the DTK).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// Algorithm id `00`: two-key 3DES.
    #[serde(rename = "3des")]
    TripleDes,
    /// Algorithm id `04`: the onecard SM4 profile.
    #[serde(rename = "sm4")]
    Sm4,
}

impl Algorithm {
    /// From the algorithm id byte of INIT FOR PURCHASE.
    pub fn from_id(id: u8) -> Option<Algorithm> {
        match id {
            0x00 => Some(Algorithm::TripleDes),
            0x04 => Some(Algorithm::Sm4),
            _ => None,
        }
    }

    /// The algorithm id byte.
    pub fn id(self) -> u8 {
        match self {
            Algorithm::TripleDes => 0x00,
            Algorithm::Sm4 => 0x04,
        }
    }
}

/// Which tap of a journey this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Metro entry (usually a zero-amount debit).
    Entry,
    /// Metro exit (the fare is charged here).
    Exit,
    /// Bus boarding (flat or line fare).
    Bus,
}

/// Why a penalty was charged (the fare engine's penalty kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

/// One penalty included in the fare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Penalty {
    /// Why.
    pub kind: PenaltyKind,
    /// How much of `fare_fen` it accounts for.
    #[serde(rename = "amount_fen", with = "fen")]
    pub amount: Fen,
}

/// The journey context of a gate or validator tap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journey {
    /// Entry, exit or bus.
    pub direction: Direction,
    /// Entry station read from the card (exit taps), if any.
    #[serde(default)]
    pub entry_station: Option<String>,
    /// Entry line read from the card, if any.
    #[serde(default)]
    pub entry_line: Option<String>,
    /// Entry date-time read from the card, `YYYYMMDDhhmmss`, if any.
    #[serde(default, with = "datetime_opt")]
    pub entry_time: Option<DateTime>,
    /// Fare the gate decided (equals `amount_fen` of a completed record).
    #[serde(rename = "fare_fen", with = "fen")]
    pub fare: Fen,
    /// Penalties included in the fare.
    #[serde(default)]
    pub penalties: Vec<Penalty>,
}

/// One UPDATE CAPP DATA CACHE (80DC) record image written atomically with the debit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordImage {
    /// P1: record id, or `00` to append to a cyclic file (2 hex digits).
    #[serde(with = "hex_byte")]
    pub p1: u8,
    /// SFI (2 hex digits).
    #[serde(with = "hex_byte")]
    pub sfi: u8,
    /// The record image (hex).
    #[serde(with = "hex_vec")]
    pub data: Vec<u8>,
}

/// One gate transaction: everything clearing needs (B.4.3) plus where and why it happened.
///
/// Field names below are the JSON names unless a `serde(rename)` says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapRecord {
    /// Gate-chosen idempotent id; the host deduplicates by it. Convention:
    /// [`TapRecord::record_id_for`].
    pub record_id: String,
    /// Completed, recovered, pending or void.
    pub kind: Kind,
    /// The `record_id` of the pending record this one settles (recovered and void always;
    /// completed when a pending record was written first).
    #[serde(default)]
    pub resolves: Option<String>,
    /// Card family.
    pub family: Family,
    /// Issuer identifier (8 bytes, 16 hex digits): issuer code ‖ city code ‖ …
    #[serde(with = "hex_array")]
    pub issuer: [u8; 8],
    /// Application serial (10 bytes, 20 hex digits).
    #[serde(with = "hex_array")]
    pub serial: [u8; 10],
    /// Offline counter from INIT, before the increment.
    pub counter: u16,
    /// Transaction type (`06` purchase, `09` compound purchase …), 2 hex digits.
    #[serde(rename = "type", with = "hex_byte")]
    pub tx_type: u8,
    /// Amount debited (or to be debited, for pending and void).
    #[serde(rename = "amount_fen", with = "fen")]
    pub amount: Fen,
    /// Balance before.
    #[serde(rename = "balance_before_fen", with = "fen")]
    pub balance_before: Fen,
    /// Balance after (`balance_before - amount`).
    #[serde(rename = "balance_after_fen", with = "fen")]
    pub balance_after: Fen,
    /// PSAM terminal number (6 bytes, 12 hex digits).
    #[serde(with = "hex_array")]
    pub terminal: [u8; 6],
    /// PSAM transaction serial (4 bytes, 8 hex digits).
    #[serde(with = "hex_array")]
    pub terminal_serial: [u8; 4],
    /// Terminal date exactly as sent to the card, `YYYYMMDD`.
    #[serde(with = "date")]
    pub date: Date,
    /// Terminal time exactly as sent to the card, `hhmmss`.
    #[serde(with = "time")]
    pub time: Time,
    /// TAC (8 hex digits); `null` for pending and void.
    #[serde(default, with = "hex_array_opt")]
    pub tac: Option<[u8; 4]>,
    /// Key version from INIT.
    pub key_version: u8,
    /// Algorithm from INIT.
    pub algorithm: Algorithm,
    /// True only if the PSAM verified MAC2 in the same session.
    pub mac2_verified: bool,
    /// MoHURD 9-byte security code (18 hex digits), `null` for T-Union.
    #[serde(default, with = "hex_array_opt")]
    pub security_code: Option<[u8; 9]>,
    /// The 80DC record images written with the debit.
    #[serde(default)]
    pub records: Vec<RecordImage>,
    /// City id of the fare file in force (e.g. `beijing`).
    pub city: String,
    /// Version of that fare file, if the gate priced the tap with one.
    #[serde(default)]
    pub fares_version: Option<u64>,
    /// Station (metro) or stop (bus) code as the city's fare file names it.
    #[serde(default)]
    pub station: Option<String>,
    /// Line (metro) or route (bus).
    #[serde(default)]
    pub line: Option<String>,
    /// Journey context; `null` for taps that are not rides.
    #[serde(default)]
    pub journey: Option<Journey>,
}

/// Why a record is not acceptable for the journal.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    /// `record_id` empty, too long or with characters outside `[A-Za-z0-9._:-]`.
    #[error("bad record_id {0:?}")]
    BadRecordId(String),
    /// `balance_after != balance_before - amount`.
    #[error("balance_after {after} is not balance_before {before} minus amount {amount}")]
    Balance {
        /// Balance before.
        before: Fen,
        /// Amount.
        amount: Fen,
        /// Balance after.
        after: Fen,
    },
    /// An amount larger than a card field can carry.
    #[error("amount or balance above the card maximum")]
    AmountTooLarge,
    /// A field that this kind must (or must not) carry.
    #[error("{kind} record: {why}")]
    KindMismatch {
        /// The record kind.
        kind: &'static str,
        /// What is wrong.
        why: &'static str,
    },
    /// A bound exceeded (names, images, penalties).
    #[error("{0} too large")]
    TooLarge(&'static str),
}

impl TapRecord {
    /// The conventional id: `{terminal}-{terminal_serial}` for completed and recovered records,
    /// with `-P` / `-V` appended for pending and void ones. PSAM serials never repeat, so the
    /// id is unique per terminal and the same every time the gate rebuilds the record (a resend
    /// after a crash is recognised by the host).
    pub fn record_id_for(kind: Kind, terminal: [u8; 6], terminal_serial: [u8; 4]) -> String {
        format!(
            "{}-{}{}",
            onecard_proto::hex::encode(&terminal),
            onecard_proto::hex::encode(&terminal_serial),
            kind.id_suffix()
        )
    }

    /// The record as one line of JSON (no newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .expect("plain fields, strings and sequences always serialise to JSON")
    }

    /// Parses and [validates](TapRecord::validate) one JSON record.
    pub fn from_json(text: &str) -> Result<TapRecord, serde_json::Error> {
        let r: TapRecord = serde_json::from_str(text)?;
        r.validate().map_err(serde::de::Error::custom)?;
        Ok(r)
    }

    /// Checks the invariants clearing relies on: a well-formed id, consistent balances, the
    /// fields each kind must or must not carry, and size bounds.
    pub fn validate(&self) -> Result<(), RecordError> {
        check_id(&self.record_id)?;
        if let Some(r) = &self.resolves {
            check_id(r)?;
        }
        for v in [self.amount, self.balance_before, self.balance_after] {
            if v.get() > MAX_CARD_FEN {
                return Err(RecordError::AmountTooLarge);
            }
        }
        if self.balance_before.checked_sub(self.amount) != Some(self.balance_after) {
            return Err(RecordError::Balance {
                before: self.balance_before,
                amount: self.amount,
                after: self.balance_after,
            });
        }
        let kind = self.kind.name();
        let mismatch = |why| Err(RecordError::KindMismatch { kind, why });
        match self.kind {
            Kind::Completed => {
                if self.tac.is_none() {
                    return mismatch("a completed record needs a TAC");
                }
            }
            Kind::Recovered => {
                if self.tac.is_none() {
                    return mismatch("a recovered record needs a TAC");
                }
                if self.mac2_verified {
                    return mismatch("a recovered record cannot have MAC2 verified");
                }
                if self.resolves.is_none() {
                    return mismatch("a recovered record must name the pending record");
                }
            }
            Kind::Pending | Kind::Void | Kind::Unresolved => {
                if self.tac.is_some() {
                    return mismatch("no TAC before the outcome is known");
                }
                if self.mac2_verified {
                    return mismatch("MAC2 cannot be verified without an answer");
                }
                if self.kind == Kind::Pending && self.resolves.is_some() {
                    return mismatch("a pending record resolves nothing");
                }
                if self.kind != Kind::Pending && self.resolves.is_none() {
                    return mismatch("a void or unresolved record must name the pending record");
                }
            }
        }
        let names = [Some(&self.city), self.station.as_ref(), self.line.as_ref()];
        let journey_names = self
            .journey
            .iter()
            .flat_map(|j| [j.entry_station.as_ref(), j.entry_line.as_ref()]);
        if names
            .into_iter()
            .chain(journey_names)
            .flatten()
            .any(|n| n.len() > MAX_NAME_LEN)
        {
            return Err(RecordError::TooLarge("name"));
        }
        if self.records.len() > MAX_IMAGES {
            return Err(RecordError::TooLarge("records"));
        }
        if self.records.iter().any(|r| r.data.len() > MAX_IMAGE_LEN) {
            return Err(RecordError::TooLarge("record image"));
        }
        if let Some(j) = &self.journey {
            if j.penalties.len() > MAX_PENALTIES {
                return Err(RecordError::TooLarge("penalties"));
            }
            if j.fare.get() > MAX_CARD_FEN {
                return Err(RecordError::AmountTooLarge);
            }
        }
        Ok(())
    }
}

fn check_id(id: &str) -> Result<(), RecordError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_RECORD_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(RecordError::BadRecordId(id.chars().take(80).collect()))
    }
}

/// True for `0-9A-F`: one spelling per value, so ids and hashes of records compare equal.
pub(crate) fn is_upper_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

/// Strict hex: exactly `2 * n` upper-case hex digits, nothing else (the proto decoder also
/// skips whitespace and accepts lower case, which a schema must not allow).
fn parse_hex<E: serde::de::Error>(text: &str, n: usize) -> Result<Vec<u8>, E> {
    if text.len() != 2 * n || !is_upper_hex(text) {
        return Err(E::custom(format!(
            "expected {} upper-case hex digits",
            2 * n
        )));
    }
    onecard_proto::hex::decode(text).map_err(E::custom)
}

mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&onecard_proto::hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let v = super::parse_hex::<D::Error>(&text, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&v);
        Ok(out)
    }
}

mod hex_array_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(
        v: &Option<[u8; N]>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&onecard_proto::hex::encode(v)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<Option<[u8; N]>, D::Error> {
        let Some(text) = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)? else {
            return Ok(None);
        };
        let v = super::parse_hex::<D::Error>(&text, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&v);
        Ok(Some(out))
    }
}

mod hex_byte {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u8, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&onecard_proto::hex::encode(&[*v]))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let v = super::parse_hex::<D::Error>(&text, 1)?;
        Ok(v[0])
    }
}

mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&onecard_proto::hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if text.len() > 2 * super::MAX_IMAGE_LEN || text.len() % 2 != 0 {
            return Err(serde::de::Error::custom("record image: bad hex length"));
        }
        super::parse_hex::<D::Error>(&text, text.len() / 2)
    }
}

mod fen {
    use onecard_proto::Fen;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Fen, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(v.get())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Fen, D::Error> {
        u64::deserialize(d).map(Fen::new)
    }
}

fn digits<E: serde::de::Error>(text: &str, n: usize, what: &str) -> Result<Vec<u8>, E> {
    if text.len() != n || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(E::custom(format!("{what}: expected {n} digits")));
    }
    Ok(text.bytes().map(|b| b - b'0').collect())
}

fn two(d: &[u8], i: usize) -> u8 {
    d[i] * 10 + d[i + 1]
}

fn parse_date<E: serde::de::Error>(d: &[u8]) -> Result<Date, E> {
    let year = u16::from(two(d, 0)) * 100 + u16::from(two(d, 2));
    Date::new(year, two(d, 4), two(d, 6)).map_err(E::custom)
}

fn parse_time<E: serde::de::Error>(d: &[u8]) -> Result<Time, E> {
    Time::new(two(d, 0), two(d, 2), two(d, 4)).map_err(E::custom)
}

mod date {
    use onecard_proto::Date;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:08}", v.yyyymmdd()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::parse_date(&super::digits::<D::Error>(&text, 8, "date")?)
    }
}

mod time {
    use onecard_proto::Time;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Time, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:06}", v.hhmmss()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::parse_time(&super::digits::<D::Error>(&text, 6, "time")?)
    }
}

mod datetime_opt {
    use onecard_proto::DateTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<DateTime>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&format!("{:08}{:06}", v.date.yyyymmdd(), v.time.hhmmss())),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime>, D::Error> {
        let Some(text) = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)? else {
            return Ok(None);
        };
        let dg = super::digits::<D::Error>(&text, 14, "date-time")?;
        Ok(Some(DateTime {
            date: super::parse_date(&dg[..8])?,
            time: super::parse_time(&dg[8..])?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> TapRecord {
        TapRecord {
            record_id: TapRecord::record_id_for(
                Kind::Completed,
                [0x11, 0x22, 0x33, 0x44, 0x55, 0x66],
                [0, 0, 0, 0x2A],
            ),
            kind: Kind::Completed,
            resolves: None,
            family: Family::TUnion,
            issuer: [0x02, 0x10, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF],
            serial: [0x31, 0x04, 0, 0, 0, 0, 0, 0, 0x12, 0x34],
            counter: 7,
            tx_type: 0x09,
            amount: Fen::new(400),
            balance_before: Fen::new(5000),
            balance_after: Fen::new(4600),
            terminal: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66],
            terminal_serial: [0, 0, 0, 0x2A],
            date: Date::new(2025, 3, 9).unwrap(),
            time: Time::new(8, 5, 0).unwrap(),
            tac: Some([0xDE, 0xAD, 0xBE, 0xEF]),
            key_version: 1,
            algorithm: Algorithm::TripleDes,
            mac2_verified: true,
            security_code: None,
            records: vec![RecordImage {
                p1: 0x02,
                sfi: 0x1A,
                data: vec![0xAB; 4],
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
                    date: Date::new(2025, 3, 9).unwrap(),
                    time: Time::new(7, 40, 12).unwrap(),
                }),
                fare: Fen::new(400),
                penalties: vec![],
            }),
        }
    }

    #[test]
    fn json_names_and_encodings() {
        let r = sample();
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["record_id"], "112233445566-0000002A");
        assert_eq!(v["kind"], "completed");
        assert_eq!(v["family"], "t-union");
        assert_eq!(v["issuer"], "02101000FFFFFFFF");
        assert_eq!(v["serial"], "31040000000000001234");
        assert_eq!(v["counter"], 7);
        assert_eq!(v["type"], "09");
        assert_eq!(v["amount_fen"], 400);
        assert_eq!(v["balance_before_fen"], 5000);
        assert_eq!(v["balance_after_fen"], 4600);
        assert_eq!(v["terminal"], "112233445566");
        assert_eq!(v["terminal_serial"], "0000002A");
        assert_eq!(v["date"], "20250309");
        assert_eq!(v["time"], "080500");
        assert_eq!(v["tac"], "DEADBEEF");
        assert_eq!(v["key_version"], 1);
        assert_eq!(v["algorithm"], "3des");
        assert_eq!(v["mac2_verified"], true);
        assert_eq!(v["security_code"], serde_json::Value::Null);
        assert_eq!(v["records"][0]["p1"], "02");
        assert_eq!(v["records"][0]["sfi"], "1A");
        assert_eq!(v["records"][0]["data"], "ABABABAB");
        assert_eq!(v["journey"]["direction"], "exit");
        assert_eq!(v["journey"]["entry_time"], "20250309074012");
        assert_eq!(v["journey"]["fare_fen"], 400);
        assert_eq!(TapRecord::from_json(&r.to_json()).unwrap(), r);
    }

    #[test]
    fn strict_parsing() {
        let good = sample().to_json();
        for (from, to) in [
            ("\"DEADBEEF\"", "\"DEADBEE\""),
            ("\"DEADBEEF\"", "\"DEAD BEF\""),
            ("\"20250309\"", "\"20250230\""),
            ("\"080500\"", "\"246000\""),
            ("\"3des\"", "\"des\""),
            ("\"t-union\"", "\"tunion\""),
            ("\"amount_fen\":400", "\"amount_fen\":-400"),
            ("\"amount_fen\":400", "\"amount_fen\":401"),
        ] {
            let bad = good.replacen(from, to, 1);
            assert_ne!(bad, good, "{from}");
            assert!(TapRecord::from_json(&bad).is_err(), "{to} accepted");
        }
        assert!(TapRecord::from_json(&good.to_lowercase()).is_err());
    }

    #[test]
    fn kind_rules() {
        let mut r = sample();
        r.kind = Kind::Recovered;
        assert!(r.validate().is_err(), "recovered with MAC2 verified");
        r.mac2_verified = false;
        assert!(r.validate().is_err(), "recovered without resolves");
        r.resolves = Some("112233445566-0000002A-P".into());
        r.validate().unwrap();
        r.kind = Kind::Void;
        assert!(r.validate().is_err(), "void with a TAC");
        r.tac = None;
        r.validate().unwrap();
        r.kind = Kind::Pending;
        assert!(r.validate().is_err(), "pending resolving something");
        r.resolves = None;
        r.validate().unwrap();
        r.record_id = "bad id".into();
        assert!(matches!(r.validate(), Err(RecordError::BadRecordId(_))));
        assert_eq!(
            TapRecord::record_id_for(Kind::Void, [0xAB; 6], [1, 2, 3, 4]),
            "ABABABABABAB-01020304-V"
        );
    }
}
