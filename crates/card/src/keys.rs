//! The card's own keys (card level, already diversified).

use onecard_crypto::{Algorithm, CardKey, Key16, KeySet};

/// The card-level keys a card holds, with their algorithm and version.
pub struct CardKeys {
    /// Algorithm of every key.
    pub algorithm: Algorithm,
    /// Key version reported in INIT responses (one version per key type on onecard cards).
    pub version: u8,
    /// DLK: load key.
    pub load: Key16,
    /// DPK: purchase key.
    pub purchase: Key16,
    /// DTK: TAC key.
    pub tac: Key16,
    /// Application maintenance key: line protection for APPLICATION BLOCK / UNBLOCK and
    /// UPDATE BINARY / RECORD, and EXTERNAL AUTHENTICATE. Optional: a card personalised
    /// without it refuses those commands with `6A88`.
    pub maintenance: Option<Key16>,
}

impl CardKeys {
    /// Card keys of `version` from a card-level key set.
    pub fn from_set(set: KeySet, version: u8) -> CardKeys {
        let KeySet {
            algorithm,
            load,
            purchase,
            tac,
            maintenance,
        } = set;
        CardKeys {
            algorithm,
            version,
            load,
            purchase,
            tac,
            maintenance,
        }
    }

    /// An explicit copy.
    pub fn duplicate(&self) -> CardKeys {
        CardKeys {
            algorithm: self.algorithm,
            version: self.version,
            load: self.load.duplicate(),
            purchase: self.purchase.duplicate(),
            tac: self.tac.duplicate(),
            maintenance: self.maintenance.as_ref().map(Key16::duplicate),
        }
    }
}

/// Keys with their ciphers prepared once, when the card is loaded.
pub(crate) struct PreparedKeys {
    pub load: CardKey,
    pub purchase: CardKey,
    pub tac: CardKey,
}

impl PreparedKeys {
    pub fn new(k: &CardKeys) -> PreparedKeys {
        PreparedKeys {
            load: CardKey::new(k.algorithm, &k.load),
            purchase: CardKey::new(k.algorithm, &k.purchase),
            tac: CardKey::new(k.algorithm, &k.tac),
        }
    }
}
