//! Card file layouts (B.3, B.4.2) for both families, as typed values with exact byte images.
//!
//! Every `parse` checks the length and the fields it interprets; every `to_bytes` produces the
//! exact image a real reader expects. Offsets are those of `shared/spec/epurse.md`.

use crate::bcd::{BcdError, Date, DateTime, Time};
use crate::money::Fen;
use thiserror::Error;

/// Why a record image is not what its layout requires.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LayoutError {
    /// The image has the wrong length.
    #[error("{what}: expected {expected} bytes, got {got}")]
    Length {
        /// The layout.
        what: &'static str,
        /// Its length.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A BCD date or time field is invalid.
    #[error("{what}: {source}")]
    Bcd {
        /// The layout.
        what: &'static str,
        /// The BCD problem.
        source: BcdError,
    },
    /// A header field has a value the layout does not allow.
    #[error("{what}: {detail}")]
    Field {
        /// The layout.
        what: &'static str,
        /// What is wrong.
        detail: &'static str,
    },
}

fn check_len(what: &'static str, b: &[u8], expected: usize) -> Result<(), LayoutError> {
    if b.len() != expected {
        return Err(LayoutError::Length {
            what,
            expected,
            got: b.len(),
        });
    }
    Ok(())
}

/// Copies `N` bytes at `off`; callers have checked the length.
pub(crate) fn arr<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[off..off + N]);
    out
}

fn bcd_err(what: &'static str) -> impl Fn(BcdError) -> LayoutError {
    move |source| LayoutError::Bcd { what, source }
}

/// Short file identifiers of the EP application.
pub mod sfi {
    /// Public application information (T-Union and MoHURD).
    pub const APP_INFO: u8 = 0x15;
    /// Cardholder information (T-Union).
    pub const CARDHOLDER: u8 = 0x16;
    /// Management information (T-Union) / compound records (MoHURD).
    pub const MANAGEMENT_OR_COMPOUND: u8 = 0x17;
    /// Transaction log, cyclic 10 × 23.
    pub const LOG: u8 = 0x18;
    /// Public-transport process records (T-Union), 128 bytes each.
    pub const PROCESS: u8 = 0x1A;
    /// Trip log, cyclic 30 × 48 (T-Union).
    pub const TRIPS: u8 = 0x1E;
}

/// The 30-byte public application information file (SFI 0x15), also the FCI tag 9F0C value.
///
/// onecard uses one layout for both families: the T-Union one (B.3.1). For MoHURD cards the same
/// bytes read as issuer(2) city(2) industry(2) rfu(2) enabled(1) version(1) and a serial whose
/// last 8 bytes are the MoHURD card serial at 12..20, which is where B.3.2 puts it, so a MoHURD
/// reader finds what it expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppInfo {
    /// Issuer identifier: issuer code(2) ‖ city code(2) ‖ `FFFFFFFF` (T-Union).
    pub issuer: [u8; 8],
    /// Application type (`02` = EP only) or, on MoHURD cards, the enabled flag.
    pub app_type: u8,
    /// Issuer application version.
    pub app_version: u8,
    /// Application serial, 20 BCD digits.
    pub serial: [u8; 10],
    /// First day of validity.
    pub start: Date,
    /// Last day of validity.
    pub expiry: Date,
    /// Issuer FCI data (card type, deposit in some cities). onecard puts the rider category
    /// in the first byte ([`rider`]).
    pub issuer_data: [u8; 2],
}

impl AppInfo {
    /// File length.
    pub const LEN: usize = 30;

    /// Parses the file image.
    pub fn parse(b: &[u8]) -> Result<AppInfo, LayoutError> {
        const W: &str = "0x15 application info";
        check_len(W, b, Self::LEN)?;
        Ok(AppInfo {
            issuer: arr(b, 0),
            app_type: b[8],
            app_version: b[9],
            serial: arr(b, 10),
            start: Date::from_bcd(arr(b, 20)).map_err(bcd_err(W))?,
            expiry: Date::from_bcd(arr(b, 24)).map_err(bcd_err(W))?,
            issuer_data: arr(b, 28),
        })
    }

    /// The file image.
    pub fn to_bytes(&self) -> [u8; 30] {
        let mut b = [0u8; 30];
        b[0..8].copy_from_slice(&self.issuer);
        b[8] = self.app_type;
        b[9] = self.app_version;
        b[10..20].copy_from_slice(&self.serial);
        b[20..24].copy_from_slice(&self.start.to_bcd());
        b[24..28].copy_from_slice(&self.expiry.to_bcd());
        b[28..30].copy_from_slice(&self.issuer_data);
        b
    }

    /// The rider category the issuer recorded ([`rider`]).
    pub fn rider_category(&self) -> u8 {
        self.issuer_data[0]
    }

    /// The card-level diversification factor: bytes 12..20 (the last 8 bytes of the serial).
    pub fn card_factor(&self) -> [u8; 8] {
        arr(&self.serial, 2)
    }

    /// True if `date` lies within the validity period.
    pub fn is_valid_on(&self, date: Date) -> bool {
        self.start <= date && date <= self.expiry
    }
}

/// Rider categories in 0x15 byte 28 (onecard's use of the issuer FCI data byte, where some
/// cities keep a card type): what fares a gate applies to the card.
pub mod rider {
    /// Full fare.
    pub const ADULT: u8 = 0x00;
    /// Student rates.
    pub const STUDENT: u8 = 0x01;
    /// Senior rates.
    pub const SENIOR: u8 = 0x02;
    /// Rides free.
    pub const FREE: u8 = 0x03;
}

/// The 60-byte T-Union management file (SFI 0x17).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Management {
    /// Country code, `00000156` for China.
    pub country: [u8; 4],
    /// Province code.
    pub province: [u8; 2],
    /// City code.
    pub city: [u8; 2],
    /// Interoperation flag, `0000` / `0001`.
    pub interop: [u8; 2],
    /// Card kind.
    pub card_kind: u8,
}

impl Management {
    /// File length.
    pub const LEN: usize = 60;

    /// Parses the file image.
    pub fn parse(b: &[u8]) -> Result<Management, LayoutError> {
        check_len("0x17 management", b, Self::LEN)?;
        Ok(Management {
            country: arr(b, 0),
            province: arr(b, 4),
            city: arr(b, 6),
            interop: arr(b, 8),
            card_kind: b[10],
        })
    }

    /// The file image (reserved bytes zero).
    pub fn to_bytes(&self) -> [u8; 60] {
        let mut b = [0u8; 60];
        b[0..4].copy_from_slice(&self.country);
        b[4..6].copy_from_slice(&self.province);
        b[6..8].copy_from_slice(&self.city);
        b[8..10].copy_from_slice(&self.interop);
        b[10] = self.card_kind;
        b
    }
}

/// Transaction type identifiers (B.4.1).
pub mod tx_type {
    /// ED load.
    pub const ED_LOAD: u8 = 0x01;
    /// EP load.
    pub const EP_LOAD: u8 = 0x02;
    /// ED purchase.
    pub const ED_PURCHASE: u8 = 0x05;
    /// EP purchase.
    pub const EP_PURCHASE: u8 = 0x06;
    /// Compound (CAPP) purchase.
    pub const CAPP_PURCHASE: u8 = 0x09;
}

/// One 23-byte transaction log record (SFI 0x18, B.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRecord {
    /// The counter *after* the transaction (online for loads, offline for purchases).
    pub counter: u16,
    /// Overdraft limit, 3 bytes.
    pub overdraft: u32,
    /// Amount.
    pub amount: Fen,
    /// Transaction type (B.4.1).
    pub tx_type: u8,
    /// Terminal number.
    pub terminal: [u8; 6],
    /// Terminal date.
    pub date: Date,
    /// Terminal time.
    pub time: Time,
}

impl LogRecord {
    /// Record length.
    pub const LEN: usize = 23;

    /// Parses a record image.
    pub fn parse(b: &[u8]) -> Result<LogRecord, LayoutError> {
        const W: &str = "0x18 log record";
        check_len(W, b, Self::LEN)?;
        Ok(LogRecord {
            counter: u16::from_be_bytes(arr(b, 0)),
            overdraft: u32::from_be_bytes([0, b[2], b[3], b[4]]),
            amount: Fen::from_card_bytes(arr(b, 5)),
            tx_type: b[9],
            terminal: arr(b, 10),
            date: Date::from_bcd(arr(b, 16)).map_err(bcd_err(W))?,
            time: Time::from_bcd(arr(b, 20)).map_err(bcd_err(W))?,
        })
    }

    /// The record image. Amounts above 32 bits cannot be logged; the card never creates them.
    pub fn to_bytes(&self) -> [u8; 23] {
        let mut b = [0u8; 23];
        b[0..2].copy_from_slice(&self.counter.to_be_bytes());
        b[2..5].copy_from_slice(&self.overdraft.to_be_bytes()[1..]);
        b[5..9].copy_from_slice(&self.amount.to_card_bytes().unwrap_or([0xFF; 4]));
        b[9] = self.tx_type;
        b[10..16].copy_from_slice(&self.terminal);
        b[16..20].copy_from_slice(&self.date.to_bcd());
        b[20..23].copy_from_slice(&self.time.to_bcd());
        b
    }

    /// True for the purchase types a reader must accept (05, 06, 09).
    pub fn is_purchase(&self) -> bool {
        matches!(
            self.tx_type,
            tx_type::ED_PURCHASE | tx_type::EP_PURCHASE | tx_type::CAPP_PURCHASE
        )
    }
}

/// Journey status byte of 0x1A records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JourneyStatus {
    /// Never used.
    Initial = 0,
    /// Entered (metro) or boarded (bus).
    Entered = 1,
    /// Exited or alighted.
    Exited = 2,
}

impl JourneyStatus {
    /// The status byte of a journey record, if it is one of 00 / 01 / 02.
    pub fn from_byte(b: u8) -> Option<JourneyStatus> {
        match b {
            0 => Some(JourneyStatus::Initial),
            1 => Some(JourneyStatus::Entered),
            2 => Some(JourneyStatus::Exited),
            _ => None,
        }
    }
}

/// A transit station or stop as 0x1A/0x1E records carry it: line and station numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct StationCode {
    /// Line number within the city.
    pub line: u16,
    /// Station number within the city's network.
    pub station: u16,
}

impl StationCode {
    fn to8(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0..2].copy_from_slice(&self.line.to_be_bytes());
        b[2..4].copy_from_slice(&self.station.to_be_bytes());
        b
    }
    fn from8(b: [u8; 8]) -> StationCode {
        StationCode {
            line: u16::from_be_bytes([b[0], b[1]]),
            station: u16::from_be_bytes([b[2], b[3]]),
        }
    }
}

/// onecard's use of metro record bytes 85..127 (Part A, decision 10): what a gate needs offline.
///
/// | off | len | field |
/// |---|---|---|
/// | 85 | 1 | layout version, `01` |
/// | 86 | 3 | calendar month in the city's time zone, BCD `YYYYMM` (`000000` = none yet) |
/// | 89 | 4 | metro+bus amount paid in that month, fen |
/// | 93 | 2 | rides taken in that month |
/// | 95 | 7 | last exit or alighting, local BCD date-time (zeros = none) |
/// | 102 | 2 | line of that last exit |
/// | 104 | 1 | mode of that last exit: 0 none, 1 metro, 2 bus |
/// | 105 | 2 | entry line |
/// | 107 | 2 | station of the last exit (for out-of-station transfers) |
/// | 109 | 4 | metres carried over from the previous leg of an out-of-station transfer |
/// | 113 | 11 | reserved, zero |
/// | 124 | 4 | CRC-32 (IEEE) over bytes 0..124, big-endian |
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonthlyState {
    /// `YYYYMM` of the month the figures belong to, 0 if none.
    pub year_month: u32,
    /// Amount paid in that month.
    pub spent: Fen,
    /// Rides taken in that month.
    pub rides: u16,
    /// Last exit (local time), for transfer discounts.
    pub last_exit: Option<DateTime>,
    /// Line of the last exit.
    pub last_exit_line: u16,
    /// 0 none, 1 metro, 2 bus.
    pub last_exit_mode: u8,
    /// Station of the last exit.
    pub last_exit_station: u16,
    /// Distance carried over from the previous leg (out-of-station transfer), metres.
    pub carried_m: u32,
}

/// The 128-byte metro record of SFI 0x1A (record id `27 01`), B.3.1 plus [`MonthlyState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetroRecord {
    /// Interoperation flag (1 = time/segment or compound).
    pub interop: u8,
    /// Lock flag.
    pub lock: u8,
    /// Transaction serial, 8 bytes.
    pub txn_serial: [u8; 8],
    /// Journey status.
    pub status: JourneyStatus,
    /// Entry city code.
    pub entry_city: [u8; 2],
    /// Exit city code.
    pub exit_city: [u8; 2],
    /// Entry institution.
    pub entry_institution: [u8; 8],
    /// Exit institution.
    pub exit_institution: [u8; 8],
    /// Entry station.
    pub entry_station: StationCode,
    /// Exit station.
    pub exit_station: StationCode,
    /// Entry terminal (PSAM terminal number in the first 6 bytes).
    pub entry_terminal: [u8; 8],
    /// Exit terminal.
    pub exit_terminal: [u8; 8],
    /// Entry time (local).
    pub entry_time: Option<DateTime>,
    /// Exit time (local).
    pub exit_time: Option<DateTime>,
    /// Maximum fare, held at entry for fare-evasion recovery.
    pub max_fare: Fen,
    /// Entry line.
    pub entry_line: u16,
    /// The rider's monthly and transfer state.
    pub monthly: MonthlyState,
}

/// Record identifier of the metro record in 0x1A.
pub const METRO_RECORD_ID: [u8; 2] = [0x27, 0x01];
/// Record identifier of the bus record in 0x1A.
pub const BUS_RECORD_ID: [u8; 2] = [0x27, 0x02];
/// Length of a 0x1A process record.
pub const PROCESS_RECORD_LEN: usize = 128;

/// Writes the CRC-32 of bytes 0..124 at 124..128 (onecard's 0x1A process records).
fn seal_process(b: &mut [u8; PROCESS_RECORD_LEN]) {
    let crc = crc32fast::hash(&b[..124]);
    b[124..128].copy_from_slice(&crc.to_be_bytes());
}

/// Checks the CRC-32 of a 0x1A process record.
fn process_sealed(b: &[u8], what: &'static str) -> Result<(), LayoutError> {
    if u32::from_be_bytes(arr(b, 124)) != crc32fast::hash(&b[..124]) {
        return Err(LayoutError::Field {
            what,
            detail: "CRC-32 at 124..127 does not match",
        });
    }
    Ok(())
}

/// Writes the low 16 bits of the CRC-32 of bytes 0..44 at 44..46 (onecard's MoHURD payloads).
fn seal_mohurd(b: &mut [u8; MOHURD_PAYLOAD_LEN]) {
    let crc = (crc32fast::hash(&b[..44]) & 0xFFFF) as u16;
    b[44..46].copy_from_slice(&crc.to_be_bytes());
}

/// Checks a MoHURD payload: its length, then `None` for an all-zero (never written) payload,
/// else its CRC and its journey status byte.
fn mohurd_status(b: &[u8], what: &'static str) -> Result<Option<JourneyStatus>, LayoutError> {
    check_len(what, b, MOHURD_PAYLOAD_LEN)?;
    if b.iter().all(|&x| x == 0) {
        return Ok(None);
    }
    if u16::from_be_bytes(arr(b, 44)) != (crc32fast::hash(&b[..44]) & 0xFFFF) as u16 {
        return Err(LayoutError::Field {
            what,
            detail: "CRC at 44..46 does not match",
        });
    }
    JourneyStatus::from_byte(b[0])
        .map(Some)
        .ok_or(LayoutError::Field {
            what,
            detail: "status byte is not 00/01/02",
        })
}

fn opt_dt(b: [u8; 7], what: &'static str) -> Result<Option<DateTime>, LayoutError> {
    if b == [0; 7] {
        return Ok(None);
    }
    DateTime::from_bcd(b).map(Some).map_err(bcd_err(what))
}

fn dt_bytes(dt: Option<DateTime>) -> [u8; 7] {
    dt.map_or([0; 7], DateTime::to_bcd)
}

impl MetroRecord {
    /// An unused record (status initial, nothing recorded).
    pub fn empty() -> MetroRecord {
        MetroRecord {
            interop: 1,
            lock: 0,
            txn_serial: [0; 8],
            status: JourneyStatus::Initial,
            entry_city: [0; 2],
            exit_city: [0; 2],
            entry_institution: [0; 8],
            exit_institution: [0; 8],
            entry_station: StationCode::default(),
            exit_station: StationCode::default(),
            entry_terminal: [0; 8],
            exit_terminal: [0; 8],
            entry_time: None,
            exit_time: None,
            max_fare: Fen::ZERO,
            entry_line: 0,
            monthly: MonthlyState::default(),
        }
    }

    /// Parses a record image, checking its header and CRC.
    pub fn parse(b: &[u8]) -> Result<MetroRecord, LayoutError> {
        const W: &str = "0x1A metro record";
        check_len(W, b, PROCESS_RECORD_LEN)?;
        if b[0..2] != METRO_RECORD_ID || b[2] != 0x7D {
            return Err(LayoutError::Field {
                what: W,
                detail: "header is not 27 01 7D",
            });
        }
        process_sealed(b, W)?;
        let status = JourneyStatus::from_byte(b[14]).ok_or(LayoutError::Field {
            what: W,
            detail: "status byte is not 00/01/02",
        })?;
        let ym = &b[86..89];
        let year_month = if ym == [0, 0, 0] {
            0
        } else {
            let d = Date::from_bcd([ym[0], ym[1], ym[2], 0x01]).map_err(bcd_err(W))?;
            u32::from(d.year) * 100 + u32::from(d.month)
        };
        Ok(MetroRecord {
            interop: b[4],
            lock: b[5],
            txn_serial: arr(b, 6),
            status,
            entry_city: arr(b, 15),
            exit_city: arr(b, 17),
            entry_institution: arr(b, 19),
            exit_institution: arr(b, 27),
            entry_station: StationCode::from8(arr(b, 35)),
            exit_station: StationCode::from8(arr(b, 43)),
            entry_terminal: arr(b, 51),
            exit_terminal: arr(b, 59),
            entry_time: opt_dt(arr(b, 67), W)?,
            exit_time: opt_dt(arr(b, 74), W)?,
            max_fare: Fen::from_card_bytes(arr(b, 81)),
            entry_line: u16::from_be_bytes(arr(b, 105)),
            monthly: MonthlyState {
                year_month,
                spent: Fen::from_card_bytes(arr(b, 89)),
                rides: u16::from_be_bytes(arr(b, 93)),
                last_exit: opt_dt(arr(b, 95), W)?,
                last_exit_line: u16::from_be_bytes(arr(b, 102)),
                last_exit_mode: b[104],
                last_exit_station: u16::from_be_bytes(arr(b, 107)),
                carried_m: u32::from_be_bytes(arr(b, 109)),
            },
        })
    }

    /// The record image with its CRC.
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0..2].copy_from_slice(&METRO_RECORD_ID);
        b[2] = 0x7D;
        b[3] = 0x01;
        b[4] = self.interop;
        b[5] = self.lock;
        b[6..14].copy_from_slice(&self.txn_serial);
        b[14] = self.status as u8;
        b[15..17].copy_from_slice(&self.entry_city);
        b[17..19].copy_from_slice(&self.exit_city);
        b[19..27].copy_from_slice(&self.entry_institution);
        b[27..35].copy_from_slice(&self.exit_institution);
        b[35..43].copy_from_slice(&self.entry_station.to8());
        b[43..51].copy_from_slice(&self.exit_station.to8());
        b[51..59].copy_from_slice(&self.entry_terminal);
        b[59..67].copy_from_slice(&self.exit_terminal);
        b[67..74].copy_from_slice(&dt_bytes(self.entry_time));
        b[74..81].copy_from_slice(&dt_bytes(self.exit_time));
        b[81..85].copy_from_slice(&self.max_fare.to_card_bytes().unwrap_or([0xFF; 4]));
        b[85] = 0x01;
        let m = &self.monthly;
        if m.year_month != 0 {
            let y = (m.year_month / 100) as u16;
            let d = Date {
                year: y,
                month: (m.year_month % 100) as u8,
                day: 1,
            }
            .to_bcd();
            b[86..89].copy_from_slice(&d[..3]);
        }
        b[89..93].copy_from_slice(&m.spent.to_card_bytes().unwrap_or([0xFF; 4]));
        b[93..95].copy_from_slice(&m.rides.to_be_bytes());
        b[95..102].copy_from_slice(&dt_bytes(m.last_exit));
        b[102..104].copy_from_slice(&m.last_exit_line.to_be_bytes());
        b[104] = m.last_exit_mode;
        b[105..107].copy_from_slice(&self.entry_line.to_be_bytes());
        b[107..109].copy_from_slice(&m.last_exit_station.to_be_bytes());
        b[109..113].copy_from_slice(&m.carried_m.to_be_bytes());
        seal_process(&mut b);
        b
    }
}

/// Payload length of a MoHURD transit compound record (48 bytes with `id ‖ len`).
pub const MOHURD_PAYLOAD_LEN: usize = 46;

impl MetroRecord {
    /// The MoHURD form of what a gate keeps on the card: the payload of compound record 02 in
    /// SFI 0x17 (onecard layout; Changsha treats the last two bytes as a terminal-written CRC,
    /// and so does onecard):
    ///
    /// | off | len | field |
    /// |---|---|---|
    /// | 0 | 1 | journey status (00 / 01 entered / 02 exited) |
    /// | 1 | 2 | entry city code |
    /// | 3 | 2 | entry line |
    /// | 5 | 2 | entry station |
    /// | 7 | 7 | entry time, local BCD |
    /// | 14 | 6 | entry terminal (PSAM number) |
    /// | 20 | 3 | month, BCD `YYYYMM` |
    /// | 23 | 4 | amount paid in that month, fen |
    /// | 27 | 2 | rides in that month |
    /// | 29 | 7 | last exit, local BCD |
    /// | 36 | 2 | line of the last exit |
    /// | 38 | 1 | mode of the last exit |
    /// | 39 | 2 | station of the last exit |
    /// | 41 | 3 | metres carried over (out-of-station transfer) |
    /// | 44 | 2 | low 16 bits of CRC-32 over bytes 0..44 |
    pub fn to_mohurd_payload(&self) -> [u8; MOHURD_PAYLOAD_LEN] {
        let mut b = [0u8; MOHURD_PAYLOAD_LEN];
        b[0] = self.status as u8;
        b[1..3].copy_from_slice(&self.entry_city);
        b[3..5].copy_from_slice(&self.entry_station.line.to_be_bytes());
        b[5..7].copy_from_slice(&self.entry_station.station.to_be_bytes());
        b[7..14].copy_from_slice(&dt_bytes(self.entry_time));
        b[14..20].copy_from_slice(&self.entry_terminal[..6]);
        let m = &self.monthly;
        if m.year_month != 0 {
            let d = Date {
                year: (m.year_month / 100) as u16,
                month: (m.year_month % 100) as u8,
                day: 1,
            }
            .to_bcd();
            b[20..23].copy_from_slice(&d[..3]);
        }
        b[23..27].copy_from_slice(&m.spent.to_card_bytes().unwrap_or([0xFF; 4]));
        b[27..29].copy_from_slice(&m.rides.to_be_bytes());
        b[29..36].copy_from_slice(&dt_bytes(m.last_exit));
        b[36..38].copy_from_slice(&m.last_exit_line.to_be_bytes());
        b[38] = m.last_exit_mode;
        b[39..41].copy_from_slice(&m.last_exit_station.to_be_bytes());
        b[41..44].copy_from_slice(&m.carried_m.min(0xFF_FFFF).to_be_bytes()[1..]);
        seal_mohurd(&mut b);
        b
    }

    /// Reads the MoHURD payload back (an all-zero payload is a fresh card: an empty record).
    pub fn from_mohurd_payload(b: &[u8]) -> Result<MetroRecord, LayoutError> {
        const W: &str = "0x17 MoHURD metro record";
        let Some(status) = mohurd_status(b, W)? else {
            return Ok(MetroRecord::empty());
        };
        let year_month = if b[20..23] == [0, 0, 0] {
            0
        } else {
            let d = Date::from_bcd([b[20], b[21], b[22], 0x01]).map_err(bcd_err(W))?;
            u32::from(d.year) * 100 + u32::from(d.month)
        };
        let mut entry_terminal = [0u8; 8];
        entry_terminal[..6].copy_from_slice(&b[14..20]);
        let mut r = MetroRecord::empty();
        r.status = status;
        r.entry_city = arr(b, 1);
        r.entry_station = StationCode {
            line: u16::from_be_bytes(arr(b, 3)),
            station: u16::from_be_bytes(arr(b, 5)),
        };
        r.entry_line = r.entry_station.line;
        r.entry_time = opt_dt(arr(b, 7), W)?;
        r.entry_terminal = entry_terminal;
        r.monthly = MonthlyState {
            year_month,
            spent: Fen::from_card_bytes(arr(b, 23)),
            rides: u16::from_be_bytes(arr(b, 27)),
            last_exit: opt_dt(arr(b, 29), W)?,
            last_exit_line: u16::from_be_bytes(arr(b, 36)),
            last_exit_mode: b[38],
            last_exit_station: u16::from_be_bytes(arr(b, 39)),
            carried_m: u32::from_be_bytes([0, b[41], b[42], b[43]]),
        };
        Ok(r)
    }
}

/// The 128-byte bus record of SFI 0x1A (record id `27 02`), B.3.1 layout; the fields a
/// validator needs are typed, the rest kept as written.
///
/// onecard reads "board stop" and "alight stop" as stop indexes on the route, `marked fare`
/// as the amount held at boarding (what a missing tap-off costs), and writes a CRC-32 over
/// bytes 0..124 at 124..127 (inside the reserved tail) so a torn or foreign write is detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusRecord {
    /// Journey status (entered = boarded, exited = alighted).
    pub status: JourneyStatus,
    /// Boarding city code.
    pub board_city: [u8; 2],
    /// Boarding line (route number).
    pub board_line: u16,
    /// Boarding stop index.
    pub board_stop: u8,
    /// Boarding terminal (PSAM number in the first 6 bytes).
    pub board_terminal: [u8; 8],
    /// Boarding time, local.
    pub board_time: Option<DateTime>,
    /// Fare held at boarding (charged if the rider never taps off).
    pub marked_fare: Fen,
    /// Alighting stop index.
    pub alight_stop: u8,
    /// Alighting time, local.
    pub alight_time: Option<DateTime>,
    /// Amount charged for the ride.
    pub amount: Fen,
    /// Distance ridden, in units of 100 m.
    pub distance_hm: u16,
}

impl BusRecord {
    /// An unused bus record.
    pub fn empty() -> BusRecord {
        BusRecord {
            status: JourneyStatus::Initial,
            board_city: [0; 2],
            board_line: 0,
            board_stop: 0,
            board_terminal: [0; 8],
            board_time: None,
            marked_fare: Fen::ZERO,
            alight_stop: 0,
            alight_time: None,
            amount: Fen::ZERO,
            distance_hm: 0,
        }
    }

    /// Parses a record image. A record without onecard's CRC (all zero tail, as personalised)
    /// reads as empty.
    pub fn parse(b: &[u8]) -> Result<BusRecord, LayoutError> {
        const W: &str = "0x1A bus record";
        check_len(W, b, PROCESS_RECORD_LEN)?;
        if b[0..2] != BUS_RECORD_ID {
            return Err(LayoutError::Field {
                what: W,
                detail: "header is not 27 02",
            });
        }
        if b[14..].iter().all(|&x| x == 0) {
            return Ok(BusRecord::empty());
        }
        process_sealed(b, W)?;
        let status = JourneyStatus::from_byte(b[14]).ok_or(LayoutError::Field {
            what: W,
            detail: "status byte is not 00/01/02",
        })?;
        Ok(BusRecord {
            status,
            board_city: arr(b, 15),
            board_line: u16::from_be_bytes(arr(b, 27)),
            board_stop: b[29],
            board_terminal: arr(b, 38),
            board_time: opt_dt(arr(b, 46), W)?,
            marked_fare: Fen::from_card_bytes(arr(b, 53)),
            alight_stop: b[72],
            alight_time: opt_dt(arr(b, 89), W)?,
            amount: Fen::from_card_bytes(arr(b, 96)),
            distance_hm: u16::from_be_bytes(arr(b, 100)),
        })
    }

    /// The record image with its CRC.
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0..2].copy_from_slice(&BUS_RECORD_ID);
        b[2] = 0x7D;
        b[3] = 0x01;
        b[4] = 0x01;
        b[14] = self.status as u8;
        b[15..17].copy_from_slice(&self.board_city);
        b[27..29].copy_from_slice(&self.board_line.to_be_bytes());
        b[29] = self.board_stop;
        b[38..46].copy_from_slice(&self.board_terminal);
        b[46..53].copy_from_slice(&dt_bytes(self.board_time));
        b[53..57].copy_from_slice(&self.marked_fare.to_card_bytes().unwrap_or([0xFF; 4]));
        b[58..60].copy_from_slice(&self.board_city);
        b[70..72].copy_from_slice(&self.board_line.to_be_bytes());
        b[72] = self.alight_stop;
        b[89..96].copy_from_slice(&dt_bytes(self.alight_time));
        b[96..100].copy_from_slice(&self.amount.to_card_bytes().unwrap_or([0xFF; 4]));
        b[100..102].copy_from_slice(&self.distance_hm.to_be_bytes());
        seal_process(&mut b);
        b
    }
}

/// MoHURD bus compound record id (0x17).
pub const MOHURD_BUS_ID: u8 = 0x03;

impl BusRecord {
    /// The MoHURD form: payload of compound record 03 in SFI 0x17 (onecard layout): status(1)
    /// city(2) line(2) board stop(1) board time(7) board terminal(6) marked fare(4) alight
    /// stop(1) alight time(7) amount(4) distance(2), zero to 44, then the low 16 bits of a
    /// CRC-32 over bytes 0..44.
    pub fn to_mohurd_payload(&self) -> [u8; MOHURD_PAYLOAD_LEN] {
        let mut b = [0u8; MOHURD_PAYLOAD_LEN];
        b[0] = self.status as u8;
        b[1..3].copy_from_slice(&self.board_city);
        b[3..5].copy_from_slice(&self.board_line.to_be_bytes());
        b[5] = self.board_stop;
        b[6..13].copy_from_slice(&dt_bytes(self.board_time));
        b[13..19].copy_from_slice(&self.board_terminal[..6]);
        b[19..23].copy_from_slice(&self.marked_fare.to_card_bytes().unwrap_or([0xFF; 4]));
        b[23] = self.alight_stop;
        b[24..31].copy_from_slice(&dt_bytes(self.alight_time));
        b[31..35].copy_from_slice(&self.amount.to_card_bytes().unwrap_or([0xFF; 4]));
        b[35..37].copy_from_slice(&self.distance_hm.to_be_bytes());
        seal_mohurd(&mut b);
        b
    }

    /// Reads the MoHURD payload back (all zero: a fresh card).
    pub fn from_mohurd_payload(b: &[u8]) -> Result<BusRecord, LayoutError> {
        const W: &str = "0x17 MoHURD bus record";
        let Some(status) = mohurd_status(b, W)? else {
            return Ok(BusRecord::empty());
        };
        let mut board_terminal = [0u8; 8];
        board_terminal[..6].copy_from_slice(&b[13..19]);
        Ok(BusRecord {
            status,
            board_city: arr(b, 1),
            board_line: u16::from_be_bytes(arr(b, 3)),
            board_stop: b[5],
            board_terminal,
            board_time: opt_dt(arr(b, 6), W)?,
            marked_fare: Fen::from_card_bytes(arr(b, 19)),
            alight_stop: b[23],
            alight_time: opt_dt(arr(b, 24), W)?,
            amount: Fen::from_card_bytes(arr(b, 31)),
            distance_hm: u16::from_be_bytes(arr(b, 35)),
        })
    }
}

/// Trip-record types of 0x1E byte 0.
pub mod trip_type {
    /// EP entry.
    pub const EP_ENTRY: u8 = 0x03;
    /// EP exit.
    pub const EP_EXIT: u8 = 0x04;
    /// EP single fare (bus boarding).
    pub const EP_SINGLE: u8 = 0x06;
}

/// One 48-byte trip record of SFI 0x1E (B.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TripRecord {
    /// Type (03 EP entry, 04 EP exit, 06 EP single fare, …).
    pub trip_type: u8,
    /// Terminal (8 bytes, PSAM terminal number first).
    pub terminal: [u8; 8],
    /// Industry code (01 metro, 02 bus).
    pub industry: u8,
    /// Line.
    pub line: u16,
    /// Station.
    pub station: u16,
    /// Operator.
    pub operator: u16,
    /// Amount.
    pub amount: Fen,
    /// Balance after the transaction.
    pub balance_after: Fen,
    /// Local date-time.
    pub when: DateTime,
    /// Acquirer city code.
    pub acquirer_city: [u8; 2],
    /// Acquirer institution.
    pub acquirer_institution: [u8; 8],
}

impl TripRecord {
    /// Record length.
    pub const LEN: usize = 48;

    /// Parses a record image.
    pub fn parse(b: &[u8]) -> Result<TripRecord, LayoutError> {
        const W: &str = "0x1E trip record";
        check_len(W, b, Self::LEN)?;
        Ok(TripRecord {
            trip_type: b[0],
            terminal: arr(b, 1),
            industry: b[9],
            line: u16::from_be_bytes(arr(b, 10)),
            station: u16::from_be_bytes(arr(b, 12)),
            operator: u16::from_be_bytes(arr(b, 14)),
            amount: Fen::from_card_bytes(arr(b, 17)),
            balance_after: Fen::from_card_bytes(arr(b, 21)),
            when: DateTime::from_bcd(arr(b, 25)).map_err(bcd_err(W))?,
            acquirer_city: arr(b, 32),
            acquirer_institution: arr(b, 34),
        })
    }

    /// The record image.
    pub fn to_bytes(&self) -> [u8; 48] {
        let mut b = [0u8; 48];
        b[0] = self.trip_type;
        b[1..9].copy_from_slice(&self.terminal);
        b[9] = self.industry;
        b[10..12].copy_from_slice(&self.line.to_be_bytes());
        b[12..14].copy_from_slice(&self.station.to_be_bytes());
        b[14..16].copy_from_slice(&self.operator.to_be_bytes());
        b[17..21].copy_from_slice(&self.amount.to_card_bytes().unwrap_or([0xFF; 4]));
        b[21..25].copy_from_slice(&self.balance_after.to_card_bytes().unwrap_or([0xFF; 4]));
        b[25..32].copy_from_slice(&self.when.to_bcd());
        b[32..34].copy_from_slice(&self.acquirer_city);
        b[34..42].copy_from_slice(&self.acquirer_institution);
        b
    }
}

/// A MoHURD compound record of SFI 0x17: `id ‖ len ‖ payload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompoundRecord {
    /// Record identifier (metro = 02, application control = 0x11).
    pub id: u8,
    /// Payload (`len` bytes).
    pub payload: Vec<u8>,
}

/// MoHURD metro compound record id.
pub const MOHURD_METRO_ID: u8 = 0x02;
/// Size of MoHURD transit compound records (ids 01–05, 09), header included.
pub const MOHURD_RECORD_LEN: usize = 48;

impl CompoundRecord {
    /// Parses `id ‖ len ‖ payload`, checking that `len` matches.
    pub fn parse(b: &[u8]) -> Result<CompoundRecord, LayoutError> {
        const W: &str = "0x17 compound record";
        if b.len() < 2 || usize::from(b[1]) != b.len() - 2 {
            return Err(LayoutError::Field {
                what: W,
                detail: "length byte does not match the record",
            });
        }
        Ok(CompoundRecord {
            id: b[0],
            payload: b[2..].to_vec(),
        })
    }

    /// The record image.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(self.payload.len() + 2);
        b.push(self.id);
        b.push(self.payload.len() as u8);
        b.extend_from_slice(&self.payload);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::decode;

    #[test]
    fn real_app_info() {
        let b =
            decode("01011000FFFFFFFF 02 01 03105170070104791381 20190718 20401231 0000").unwrap();
        let info = AppInfo::parse(&b).unwrap();
        assert_eq!(info.issuer, [1, 1, 0x10, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(info.expiry.yyyymmdd(), 20401231);
        assert_eq!(
            info.card_factor(),
            [0x51, 0x70, 0x07, 0x01, 0x04, 0x79, 0x13, 0x81]
        );
        assert_eq!(info.to_bytes().to_vec(), b);
    }

    #[test]
    fn real_log_record() {
        // Read back from the Huada card after the load of the changsha vector.
        let b = decode("0001 000000 00001C37 02 000001000050 20140825 103100").unwrap();
        let r = LogRecord::parse(&b).unwrap();
        assert_eq!((r.counter, r.amount, r.tx_type), (1, Fen::new(0x1C37), 2));
        assert_eq!(r.to_bytes().to_vec(), b);
    }

    #[test]
    fn metro_record_round_trip_and_crc() {
        let mut m = MetroRecord::empty();
        m.status = JourneyStatus::Entered;
        m.entry_station = StationCode {
            line: 1,
            station: 42,
        };
        m.entry_time = Some(DateTime {
            date: Date::new(2026, 11, 25).unwrap(),
            time: Time::new(8, 0, 0).unwrap(),
        });
        m.monthly = MonthlyState {
            year_month: 202611,
            spent: Fen::new(12300),
            rides: 7,
            ..Default::default()
        };
        let b = m.to_bytes();
        assert_eq!(MetroRecord::parse(&b).unwrap(), m);
        let mut bad = b;
        bad[40] ^= 1;
        assert!(MetroRecord::parse(&bad).is_err());
        assert!(MetroRecord::parse(&b[..127]).is_err());
    }

    #[test]
    fn mohurd_payload_round_trip() {
        let mut m = MetroRecord::empty();
        m.status = JourneyStatus::Entered;
        m.entry_city = [0x10, 0x00];
        m.entry_station = StationCode {
            line: 2,
            station: 300,
        };
        m.entry_line = 2;
        m.entry_time = Some(DateTime {
            date: Date::new(2026, 11, 25).unwrap(),
            time: Time::new(8, 0, 0).unwrap(),
        });
        m.entry_terminal[..6].copy_from_slice(&[0x30, 0, 0, 0, 1, 2]);
        m.monthly = MonthlyState {
            year_month: 202611,
            spent: Fen::new(9900),
            rides: 33,
            last_exit_station: 7,
            carried_m: 1234,
            ..Default::default()
        };
        let p = m.to_mohurd_payload();
        assert_eq!(MetroRecord::from_mohurd_payload(&p).unwrap(), m);
        assert_eq!(
            MetroRecord::from_mohurd_payload(&[0; 46]).unwrap(),
            MetroRecord::empty()
        );
        let mut bad = p;
        bad[24] ^= 1;
        assert!(MetroRecord::from_mohurd_payload(&bad).is_err());
    }

    #[test]
    fn bus_record_round_trip() {
        let mut r = BusRecord::empty();
        r.status = JourneyStatus::Entered;
        r.board_line = 300;
        r.board_stop = 7;
        r.board_time = Some(DateTime {
            date: Date::new(2026, 11, 25).unwrap(),
            time: Time::new(7, 10, 0).unwrap(),
        });
        r.marked_fare = Fen::new(300);
        let b = r.to_bytes();
        assert_eq!(BusRecord::parse(&b).unwrap(), r);
        let mut blank = [0u8; 128];
        blank[0..5].copy_from_slice(&[0x27, 0x02, 0x7D, 0x01, 0x01]);
        assert_eq!(BusRecord::parse(&blank).unwrap(), BusRecord::empty());
        let mut bad = b;
        bad[30] ^= 1;
        assert!(BusRecord::parse(&bad).is_err());
        let p = r.to_mohurd_payload();
        assert_eq!(BusRecord::from_mohurd_payload(&p).unwrap(), r);
        assert_eq!(
            BusRecord::from_mohurd_payload(&[0; 46]).unwrap(),
            BusRecord::empty()
        );
    }

    #[test]
    fn compound_record() {
        let r = CompoundRecord {
            id: 2,
            payload: vec![0; 46],
        };
        let b = r.to_bytes();
        assert_eq!(b.len(), MOHURD_RECORD_LEN);
        assert_eq!(CompoundRecord::parse(&b).unwrap(), r);
        assert!(CompoundRecord::parse(&b[..47]).is_err());
    }
}
