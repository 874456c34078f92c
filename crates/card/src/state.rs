//! The card's persistent state and its file format.
//!
//! Format (all integers big-endian), version 1:
//!
//! ```text
//! "OCRD" | format version u16 | payload length u32 | payload | CRC-32 (IEEE) of all before, u32
//! ```
//!
//! A file whose magic, version, length or CRC does not match is refused whole: a card is never
//! half-loaded. The payload holds the keys, so card files are secrets (mode 0600).

use crate::keys::CardKeys;
use onecard_crypto::{Algorithm, Key16};
use onecard_proto::files::{AppInfo, CompoundRecord, LayoutError, PROCESS_RECORD_LEN};
use thiserror::Error;
use zeroize::Zeroize;

/// Current file-format version.
pub const FORMAT_VERSION: u16 = 1;
const MAGIC: &[u8; 4] = b"OCRD";
/// Upper bound on a card file; anything larger is not a card.
pub const MAX_FILE_LEN: usize = 16 * 1024;
/// Records in the 0x18 log.
pub const LOG_RECORDS: usize = 10;
/// Records in the 0x1E trip log.
pub const TRIP_RECORDS: usize = 30;
/// Length of a 0x18 record.
pub const LOG_LEN: usize = 23;
/// Length of a 0x1E record.
pub const TRIP_LEN: usize = 48;
/// Most MoHURD compound records a card holds.
pub const MAX_COMPOUND: usize = 16;

pub use onecard_proto::Family;

/// What GET TRANSACTION PROVE returns for the last transaction of one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proof {
    /// Counter after the transaction.
    pub counter: u16,
    /// MAC2 (sent by the host for loads; computed by the card for purchases).
    pub mac2: [u8; 4],
    /// TAC.
    pub tac: [u8; 4],
}

/// Application block state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockState {
    /// Usable.
    Active,
    /// Blocked; APPLICATION UNBLOCK lifts it.
    Blocked,
    /// Blocked for good.
    PermanentlyBlocked,
}

/// Everything a card keeps across power loss, except its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardState {
    /// Family.
    pub family: Family,
    /// SFI 0x15 image.
    pub app_info: [u8; AppInfo::LEN],
    /// SFI 0x16 image (T-Union cardholder).
    pub cardholder: [u8; 55],
    /// SFI 0x17 image (T-Union management).
    pub management: [u8; 60],
    /// MoHURD SFI 0x17 compound records, in record-number order.
    pub compound: Vec<CompoundRecord>,
    /// T-Union SFI 0x1A records, record number = index + 1 (metro, bus).
    pub process: [[u8; PROCESS_RECORD_LEN]; 2],
    /// SFI 0x1E trip log, newest first.
    pub trips: Cyclic<TRIP_LEN, TRIP_RECORDS>,
    /// SFI 0x18 transaction log, newest first.
    pub log: Cyclic<LOG_LEN, LOG_RECORDS>,
    /// Balance in fen.
    pub balance: u32,
    /// The most the balance may hold (Part A, decision 11).
    pub max_balance: u32,
    /// Online (load) counter: number of loads so far.
    pub online_counter: u16,
    /// Offline (purchase) counter: number of debits so far.
    pub offline_counter: u16,
    /// Last load, for GET TRANSACTION PROVE type 02.
    pub last_load: Option<Proof>,
    /// Last EP purchase (type 06).
    pub last_purchase: Option<Proof>,
    /// Last compound purchase (type 09).
    pub last_capp: Option<Proof>,
    /// Application block state.
    pub block: BlockState,
}

impl CardState {
    /// The parsed 0x15 file. The card refuses any update that would make it unparsable, so this
    /// only fails for a state built by hand.
    pub fn info(&self) -> Result<AppInfo, LayoutError> {
        AppInfo::parse(&self.app_info)
    }
}

/// A cyclic record file (0x18, 0x1E) held inline, so copying a card state for a commit costs
/// no allocation: record 1 is the newest, and the oldest is overwritten when the file is full.
/// A ring: appending moves no other record.
#[derive(Debug, Clone, Copy)]
pub struct Cyclic<const N: usize, const CAP: usize> {
    records: [[u8; N]; CAP],
    /// Slot of the newest record.
    head: usize,
    len: usize,
}

impl<const N: usize, const CAP: usize> Default for Cyclic<N, CAP> {
    fn default() -> Self {
        Cyclic {
            records: [[0; N]; CAP],
            head: 0,
            len: 0,
        }
    }
}

impl<const N: usize, const CAP: usize> PartialEq for Cyclic<N, CAP> {
    /// Equal when they hold the same records in the same order, wherever the ring starts.
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<const N: usize, const CAP: usize> Eq for Cyclic<N, CAP> {}

impl<const N: usize, const CAP: usize> Cyclic<N, CAP> {
    /// Appends `record` as the newest (record 1).
    pub fn push(&mut self, record: [u8; N]) {
        self.head = (self.head + CAP - 1) % CAP;
        self.records[self.head] = record;
        self.len = (self.len + 1).min(CAP);
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if no record was ever written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Records, newest first.
    pub fn iter(&self) -> impl Iterator<Item = &[u8; N]> {
        (0..self.len).map(move |i| &self.records[(self.head + i) % CAP])
    }
}

/// Why a card file could not be read or written.
#[derive(Debug, Error)]
pub enum StateError {
    /// Not a onecard card file.
    #[error("not a onecard card file (bad magic)")]
    BadMagic,
    /// A format version this build does not read.
    #[error(
        "card file format version {0} is not supported (this build reads version {FORMAT_VERSION})"
    )]
    UnsupportedVersion(u16),
    /// Truncated, oversized or with a length that does not add up.
    #[error("card file is damaged: {0}")]
    Damaged(&'static str),
    /// The integrity check failed.
    #[error("card file is damaged: checksum mismatch")]
    Checksum,
    /// A field holds a value no card can have.
    #[error("card file holds an invalid value: {0}")]
    Invalid(&'static str),
    /// Another process (or store) has this card open.
    #[error("card {0} is in use by another process")]
    Locked(std::path::PathBuf),
    /// I/O failure.
    #[error("card file I/O: {0}")]
    Io(#[from] std::io::Error),
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
    fn proof(&mut self, p: &Option<Proof>) {
        match p {
            None => self.u8(0),
            Some(p) => {
                self.u8(1);
                self.u16(p.counter);
                self.bytes(&p.mac2);
                self.bytes(&p.tac);
            }
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StateError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or(StateError::Damaged("payload truncated"))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], StateError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, StateError> {
        Ok(u16::from_be_bytes(self.arr()?))
    }
    fn u32(&mut self) -> Result<u32, StateError> {
        Ok(u32::from_be_bytes(self.arr()?))
    }
    fn proof(&mut self) -> Result<Option<Proof>, StateError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(Proof {
                counter: self.u16()?,
                mac2: self.arr()?,
                tac: self.arr()?,
            })),
            _ => Err(StateError::Invalid("proof flag")),
        }
    }
    fn key(&mut self) -> Result<Key16, StateError> {
        let mut k: [u8; 16] = self.arr()?;
        let key = Key16::from_bytes(k);
        k.zeroize();
        Ok(key)
    }
}

/// Encodes a card (keys and state) as a complete file image.
pub fn encode(keys: &CardKeys, s: &CardState) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(4096));
    w.bytes(MAGIC);
    w.u16(FORMAT_VERSION);
    w.u32(0); // payload length, patched below
    w.u8(match s.family {
        Family::TUnion => 0,
        Family::Mohurd => 1,
    });
    w.u8(keys.algorithm.id());
    w.u8(keys.version);
    w.bytes(keys.load.expose_secret());
    w.bytes(keys.purchase.expose_secret());
    w.bytes(keys.tac.expose_secret());
    match &keys.maintenance {
        None => w.u8(0),
        Some(k) => {
            w.u8(1);
            w.bytes(k.expose_secret());
        }
    }
    w.bytes(&s.app_info);
    w.bytes(&s.cardholder);
    w.bytes(&s.management);
    w.u8(s.compound.len() as u8);
    for r in &s.compound {
        let b = r.to_bytes();
        w.u8(b.len() as u8);
        w.bytes(&b);
    }
    w.bytes(&s.process[0]);
    w.bytes(&s.process[1]);
    w.u8(s.trips.len() as u8);
    s.trips.iter().for_each(|t| w.bytes(t));
    w.u8(s.log.len() as u8);
    s.log.iter().for_each(|t| w.bytes(t));
    w.u32(s.balance);
    w.u32(s.max_balance);
    w.u16(s.online_counter);
    w.u16(s.offline_counter);
    w.proof(&s.last_load);
    w.proof(&s.last_purchase);
    w.proof(&s.last_capp);
    w.u8(match s.block {
        BlockState::Active => 0,
        BlockState::Blocked => 1,
        BlockState::PermanentlyBlocked => 2,
    });
    let payload_len = (w.0.len() - 10) as u32;
    w.0[6..10].copy_from_slice(&payload_len.to_be_bytes());
    let crc = crc32fast::hash(&w.0);
    w.u32(crc);
    w.0
}

/// Decodes a complete file image, checking everything before returning anything.
pub fn decode(b: &[u8]) -> Result<(CardKeys, CardState), StateError> {
    if b.len() > MAX_FILE_LEN {
        return Err(StateError::Damaged("file too large"));
    }
    if b.len() < 14 {
        return Err(StateError::Damaged("file too short"));
    }
    if &b[0..4] != MAGIC {
        return Err(StateError::BadMagic);
    }
    let version = u16::from_be_bytes([b[4], b[5]]);
    if version != FORMAT_VERSION {
        return Err(StateError::UnsupportedVersion(version));
    }
    let payload_len = u32::from_be_bytes([b[6], b[7], b[8], b[9]]) as usize;
    if payload_len + 14 != b.len() {
        return Err(StateError::Damaged("length does not match the file size"));
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32fast::hash(body) != u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err(StateError::Checksum);
    }
    let mut r = Reader {
        b: &body[10..],
        at: 0,
    };
    let family = match r.u8()? {
        0 => Family::TUnion,
        1 => Family::Mohurd,
        _ => return Err(StateError::Invalid("family")),
    };
    let algorithm = Algorithm::from_id(r.u8()?).ok_or(StateError::Invalid("algorithm"))?;
    let version = r.u8()?;
    let load = r.key()?;
    let purchase = r.key()?;
    let tac = r.key()?;
    let maintenance = match r.u8()? {
        0 => None,
        1 => Some(r.key()?),
        _ => return Err(StateError::Invalid("maintenance key flag")),
    };
    let keys = CardKeys {
        algorithm,
        version,
        load,
        purchase,
        tac,
        maintenance,
    };
    let app_info = r.arr()?;
    AppInfo::parse(&app_info).map_err(|_| StateError::Invalid("0x15 application info"))?;
    let cardholder = r.arr()?;
    let management = r.arr()?;
    let n = usize::from(r.u8()?);
    if n > MAX_COMPOUND {
        return Err(StateError::Invalid("too many compound records"));
    }
    let mut compound = Vec::with_capacity(n);
    for _ in 0..n {
        let len = usize::from(r.u8()?);
        let rec = CompoundRecord::parse(r.take(len)?)
            .map_err(|_| StateError::Invalid("compound record"))?;
        compound.push(rec);
    }
    let process = [r.arr()?, r.arr()?];
    let n = usize::from(r.u8()?);
    if n > TRIP_RECORDS {
        return Err(StateError::Invalid("too many trip records"));
    }
    let mut trips = Cyclic::default();
    for rec in (0..n)
        .map(|_| r.arr())
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .rev()
    {
        trips.push(rec);
    }
    let n = usize::from(r.u8()?);
    if n > LOG_RECORDS {
        return Err(StateError::Invalid("too many log records"));
    }
    let mut log = Cyclic::default();
    for rec in (0..n)
        .map(|_| r.arr())
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .rev()
    {
        log.push(rec);
    }
    let state = CardState {
        family,
        app_info,
        cardholder,
        management,
        compound,
        process,
        trips,
        log,
        balance: r.u32()?,
        max_balance: r.u32()?,
        online_counter: r.u16()?,
        offline_counter: r.u16()?,
        last_load: r.proof()?,
        last_purchase: r.proof()?,
        last_capp: r.proof()?,
        block: match r.u8()? {
            0 => BlockState::Active,
            1 => BlockState::Blocked,
            2 => BlockState::PermanentlyBlocked,
            _ => return Err(StateError::Invalid("block state")),
        },
    };
    if r.at != r.b.len() {
        return Err(StateError::Damaged("trailing bytes after the payload"));
    }
    if state.balance > state.max_balance {
        return Err(StateError::Invalid("balance above the maximum balance"));
    }
    Ok((keys, state))
}
