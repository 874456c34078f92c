//! The terminal security module (PSAM): terminal number, transaction serials that never
//! repeat, MAC1 for purchases, MAC2 verification.

use crate::keystore::{CardRef, KeyRequest, KeyStore, KeyStoreError};
use onecard_crypto::{mac_eq, purchase_session_input, Algorithm, KeyUsage, SessionKey};
use onecard_proto::commands::InitPurchaseResponse;
use onecard_proto::{DateTime, Fen};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why the PSAM refused an operation.
#[derive(Debug, Error)]
pub enum PsamError {
    /// A key problem.
    #[error(transparent)]
    Key(#[from] KeyStoreError),
    /// The card reported an algorithm onecard does not know.
    #[error("unknown algorithm id {0:02X}")]
    UnknownAlgorithm(u8),
    /// The amount does not fit the card's 4-byte field.
    #[error("amount {0} fen is too large")]
    Amount(u64),
    /// The 4-byte serial space is used up: the PSAM must be replaced, never wrap.
    #[error("terminal transaction serials exhausted")]
    SerialsExhausted,
    /// The serial reservation could not be made durable.
    #[error("serial reservation I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Where terminal transaction serials come from. Implementations guarantee a serial is never
/// handed out twice, across restarts too.
pub trait SerialSource {
    /// The next serial.
    fn next_serial(&mut self) -> Result<u32, PsamError>;
}

/// Serials counted in memory (tests, benchmarks, simulations that never restart a PSAM).
#[derive(Debug, Clone)]
pub struct MemorySerials(pub u32);

impl SerialSource for MemorySerials {
    fn next_serial(&mut self) -> Result<u32, PsamError> {
        let s = self.0;
        self.0 = self.0.checked_add(1).ok_or(PsamError::SerialsExhausted)?;
        Ok(s)
    }
}

/// How many serials a [`FileSerials`] reserves with one durable write.
pub const SERIAL_BLOCK: u32 = 1024;

/// Serials reserved in blocks: the end of the reserved block is written durably (write, fsync,
/// rename) before any serial of the block is used, so a crash skips at most one block and never
/// repeats a serial.
#[derive(Debug)]
pub struct FileSerials {
    path: PathBuf,
    next: u32,
    reserved_end: u32,
}

impl FileSerials {
    /// Opens (or creates, starting at 1) the reservation file.
    pub fn open(path: &Path) -> Result<FileSerials, PsamError> {
        let next = match fs::read_to_string(path) {
            Ok(s) => s.trim().parse::<u32>().map_err(|_| {
                PsamError::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not a serial reservation", path.display()),
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
            Err(e) => return Err(e.into()),
        };
        // Everything below the recorded end may have been used before the restart.
        Ok(FileSerials {
            path: path.to_owned(),
            next,
            reserved_end: next,
        })
    }

    fn reserve(&mut self) -> Result<(), PsamError> {
        let end = self
            .reserved_end
            .checked_add(SERIAL_BLOCK)
            .ok_or(PsamError::SerialsExhausted)?;
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(".tmp");
        let mut f = fs::File::create(&tmp)?;
        writeln!(f, "{end}")?;
        f.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::File::open(dir)?.sync_all()?;
        }
        self.reserved_end = end;
        Ok(())
    }
}

impl SerialSource for FileSerials {
    fn next_serial(&mut self) -> Result<u32, PsamError> {
        if self.next >= self.reserved_end {
            self.reserve()?;
        }
        let s = self.next;
        self.next += 1;
        debug_assert!(self.next <= self.reserved_end);
        Ok(s)
    }
}

/// A purchase the PSAM has authorised: the serial and MAC1 to send in DEBIT, and the session
/// key that checks the card's MAC2.
pub struct PsamPurchase {
    /// Terminal transaction serial.
    pub terminal_serial: [u8; 4],
    /// MAC1 for DEBIT.
    pub mac1: [u8; 4],
    key: SessionKey,
    amount: [u8; 4],
}

impl PsamPurchase {
    /// Checks the card's MAC2 (the PSAM's 8072).
    pub fn verify_mac2(&self, mac2: &[u8; 4]) -> bool {
        mac_eq(&self.key.mac(&self.amount), mac2)
    }
}

/// What the PSAM needs to authorise one purchase.
#[derive(Debug, Clone, Copy)]
pub struct PurchaseRequest {
    /// The card.
    pub card: CardRef,
    /// The card's INIT FOR (CAPP) PURCHASE answer.
    pub init: InitPurchaseResponse,
    /// Amount.
    pub amount: Fen,
    /// Transaction type (06 or 09).
    pub tx_type: u8,
    /// Terminal date and time (local).
    pub when: DateTime,
    /// MoHURD security code from GET MESSAGE, if the card is MoHURD.
    pub security_code: Option<[u8; 9]>,
}

/// A software PSAM.
pub struct Psam<K: KeyStore, S: SerialSource> {
    terminal: [u8; 6],
    keys: K,
    serials: S,
}

impl<K: KeyStore, S: SerialSource> Psam<K, S> {
    /// A PSAM with terminal number `terminal`.
    pub fn new(terminal: [u8; 6], keys: K, serials: S) -> Psam<K, S> {
        Psam {
            terminal,
            keys,
            serials,
        }
    }

    /// The terminal number (PSAM SFI 0x16).
    pub fn terminal(&self) -> [u8; 6] {
        self.terminal
    }

    /// The key store.
    pub fn keys(&self) -> &K {
        &self.keys
    }

    /// The PSAM's 8070: draws a serial, derives the session key, computes MAC1.
    pub fn begin_purchase(&mut self, r: &PurchaseRequest) -> Result<PsamPurchase, PsamError> {
        let algorithm = Algorithm::from_id(r.init.algorithm)
            .ok_or(PsamError::UnknownAlgorithm(r.init.algorithm))?;
        let amount = r
            .amount
            .to_card_bytes()
            .ok_or(PsamError::Amount(r.amount.get()))?;
        let req = KeyRequest {
            card: r.card,
            usage: KeyUsage::Purchase,
            algorithm,
            version: r.init.key_version,
        };
        let serial = self.serials.next_serial()?.to_be_bytes();
        let key = self.keys.session_key(
            &req,
            purchase_session_input(r.init.random, r.init.offline_counter, serial),
        )?;
        let dt = r.when.to_bcd();
        let mac1 = match &r.security_code {
            Some(code) => key.mac_parts(&[&amount, &[r.tx_type], &self.terminal, &dt, code]),
            None => key.mac_parts(&[&amount, &[r.tx_type], &self.terminal, &dt]),
        };
        Ok(PsamPurchase {
            terminal_serial: serial,
            mac1,
            key,
            amount,
        })
    }
}
