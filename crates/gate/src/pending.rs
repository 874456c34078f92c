//! Pending debits: those whose DEBIT answer was lost. Each is resolved on the next contact of
//! the same card (B.5.2); until then it lives in the journal as a `pending` record and, once
//! that record has been uploaded and acknowledged, in a small carry file beside the journal.

use onecard_journal::{Kind, TapRecord};
use onecard_terminal::PurchaseReceipt;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Most pending debits a gate keeps; beyond this it refuses taps rather than forget one.
pub const MAX_PENDING: usize = 256;

/// A debit whose outcome the gate does not know yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTap {
    /// The pending record as journaled (no TAC).
    pub record: TapRecord,
}

impl PendingTap {
    /// The card's application serial.
    pub fn serial(&self) -> [u8; 10] {
        self.record.serial
    }
}

/// The set of pending debits, with its carry file.
#[derive(Debug)]
pub struct PendingSet {
    path: PathBuf,
    items: Vec<PendingTap>,
}

impl PendingSet {
    /// Loads the carry file (if any) and adds every `pending` record of `journaled` that no
    /// later record resolves.
    pub fn load(path: &Path, journaled: &[TapRecord]) -> std::io::Result<PendingSet> {
        let mut items: Vec<PendingTap> = match fs::read(path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        for r in journaled {
            match r.kind {
                Kind::Pending => {
                    if !items.iter().any(|p| p.record.record_id == r.record_id) {
                        items.push(PendingTap { record: r.clone() });
                    }
                }
                _ => {
                    if let Some(id) = &r.resolves {
                        items.retain(|p| &p.record.record_id != id);
                    }
                }
            }
        }
        Ok(PendingSet {
            path: path.to_owned(),
            items,
        })
    }

    /// Pending debits.
    pub fn items(&self) -> &[PendingTap] {
        &self.items
    }

    /// True if the set is at its bound.
    pub fn is_full(&self) -> bool {
        self.items.len() >= MAX_PENDING
    }

    /// The pending debit of this card, if any (at most one per card: a card with a pending
    /// debit is resolved before anything else happens to it).
    pub fn for_card(&self, serial: [u8; 10]) -> Option<&PendingTap> {
        self.items.iter().find(|p| p.serial() == serial)
    }

    /// Adds a pending debit (its journal record is already durable).
    pub fn add(&mut self, record: TapRecord) {
        debug_assert_eq!(record.kind, Kind::Pending);
        self.items.push(PendingTap { record });
    }

    /// Removes a resolved debit and rewrites the carry file if it held it.
    pub fn resolve(&mut self, record_id: &str) -> std::io::Result<()> {
        self.items.retain(|p| p.record.record_id != record_id);
        if self.path.exists() {
            self.save()?;
        }
        Ok(())
    }

    /// Writes the set durably (before the journal may drop acknowledged pending records).
    pub fn save(&self) -> std::io::Result<()> {
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(&self.items).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// Rebuilds the terminal's view of a pending debit from its journal record.
pub fn receipt_of(p: &PendingTap, card: onecard_sam::CardRef) -> PurchaseReceipt {
    let r = &p.record;
    PurchaseReceipt {
        card,
        serial: r.serial,
        family: r.family.into(),
        counter: r.counter,
        tx_type: r.tx_type,
        amount: r.amount,
        balance_before: r.balance_before,
        balance_after: r.balance_after,
        terminal: r.terminal,
        terminal_serial: r.terminal_serial,
        when: onecard_proto::DateTime {
            date: r.date,
            time: r.time,
        },
        tac: [0; 4],
        mac2: [0; 4],
        mac2_verified: false,
        key_version: r.key_version,
        algorithm: r.algorithm.id(),
        records: r
            .records
            .iter()
            .map(|i| (i.p1, i.sfi, i.data.clone()))
            .collect(),
        security_code: r.security_code,
    }
}
