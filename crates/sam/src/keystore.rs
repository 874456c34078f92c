//! The key-store trait: every cryptographic operation that needs a card key, asked by card
//! identity, so that master keys never leave the store.

use onecard_crypto::{line_mac, Algorithm, CardKey, Key16, KeySet, KeyUsage, SessionKey};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use thiserror::Error;

/// Which card a key is for: the two diversification factors of Part A, decision 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CardRef {
    /// Issuer identifier (0x15 bytes 0..8).
    pub issuer: [u8; 8],
    /// Card factor (0x15 bytes 12..20).
    pub card_factor: [u8; 8],
}

/// Why a key operation could not be done.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyStoreError {
    /// No keys for this issuer.
    #[error("no keys for issuer {0}")]
    UnknownIssuer(String),
    /// The card reports an algorithm the store's keys are not for.
    #[error("card uses algorithm {card:?}, keys are for {keys:?}")]
    AlgorithmMismatch {
        /// Algorithm in the card's INIT response.
        card: Algorithm,
        /// Algorithm of the stored keys.
        keys: Algorithm,
    },
    /// The card reports a key version the store does not hold.
    #[error("key version {0} not held")]
    UnknownKeyVersion(u8),
    /// The store holds no key for this usage.
    #[error("no {0:?} key")]
    NoKey(KeyUsage),
}

/// A request for a card key: which card, which usage, which algorithm and version the card
/// reported.
#[derive(Debug, Clone, Copy)]
pub struct KeyRequest {
    /// The card.
    pub card: CardRef,
    /// The usage.
    pub usage: KeyUsage,
    /// Algorithm from the card.
    pub algorithm: Algorithm,
    /// Key version from the card.
    pub version: u8,
}

/// Cryptographic operations with card keys. A software store derives card keys from master
/// keys in memory; a hardware module can implement the same operations without ever exporting
/// a master key.
pub trait KeyStore {
    /// The session key for `input` (B.2.2 / B.2.3) under the card key of `req`.
    fn session_key(&self, req: &KeyRequest, input: [u8; 8]) -> Result<SessionKey, KeyStoreError>;
    /// The TAC key of the card (usage is ignored: always the DTK).
    fn tac_key(&self, req: &KeyRequest) -> Result<SessionKey, KeyStoreError>;
    /// A line-protection MAC (B.2.5) with the card's maintenance key.
    fn line_mac(
        &self,
        req: &KeyRequest,
        challenge: [u8; 4],
        data: &[u8],
    ) -> Result<[u8; 4], KeyStoreError>;
}

/// Most card keys cached by a [`SoftwareKeyStore`] before the cache is cleared.
pub const KEY_CACHE_LIMIT: usize = 4096;

/// Key version of every key in onecard's software stores (one version per issuer for now).
pub const KEY_VERSION: u8 = 1;

struct Source {
    keys: KeySet,
    /// True: `keys` are master keys to diversify; false: card-level keys of one card.
    master: bool,
}

/// A software key store holding issuer master keys (or, for tools like the trace verifier, the
/// card-level keys of a single card). Derived card keys are cached, bounded.
pub struct SoftwareKeyStore {
    /// Master keys by issuer and algorithm (an issuer may run 3DES and SM4 cards side by side).
    issuers: HashMap<([u8; 8], Algorithm), Source>,
    any_issuer: Vec<Source>,
    cache: Mutex<KeyCache>,
}

type KeyCache = HashMap<(CardRef, KeyUsage), std::sync::Arc<CardKey>, BuildHasherDefault<Fnv>>;

/// FNV-1a: card references are not attacker-chosen hash-flooding material (they come from cards
/// whose MACs must verify), and SipHash would cost more than the lookup it protects.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

impl SoftwareKeyStore {
    /// An empty store.
    pub fn new() -> SoftwareKeyStore {
        SoftwareKeyStore {
            issuers: HashMap::new(),
            any_issuer: Vec::new(),
            cache: Mutex::new(HashMap::default()),
        }
    }

    /// Adds the master keys of `issuer`.
    pub fn with_issuer(mut self, issuer: [u8; 8], master: KeySet) -> SoftwareKeyStore {
        self.issuers.insert(
            (issuer, master.algorithm),
            Source {
                keys: master,
                master: true,
            },
        );
        self
    }

    /// A store that answers for any card of this algorithm with these master keys (a
    /// single-issuer terminal, or a city whose cards from every issuer share one key hierarchy,
    /// as the published sample keys do). Call once per algorithm.
    pub fn with_any_issuer(mut self, master: KeySet) -> SoftwareKeyStore {
        self.any_issuer
            .retain(|s| s.keys.algorithm != master.algorithm);
        self.any_issuer.push(Source {
            keys: master,
            master: true,
        });
        self
    }

    /// A store holding the card-level keys of one card, used for whatever card is presented.
    pub fn card_level(keys: KeySet) -> SoftwareKeyStore {
        SoftwareKeyStore {
            issuers: HashMap::new(),
            any_issuer: vec![Source {
                keys,
                master: false,
            }],
            cache: Mutex::new(HashMap::default()),
        }
    }

    fn source(&self, req: &KeyRequest) -> Result<&Source, KeyStoreError> {
        let found = self
            .issuers
            .get(&(req.card.issuer, req.algorithm))
            .or_else(|| {
                self.any_issuer
                    .iter()
                    .find(|s| s.keys.algorithm == req.algorithm)
            });
        let Some(src) = found else {
            // Say why: keys of another algorithm, or none at all for this issuer.
            let other = self
                .issuers
                .iter()
                .find(|((i, _), _)| *i == req.card.issuer)
                .map(|(_, s)| s)
                .or(self.any_issuer.first());
            return Err(match other {
                Some(s) => KeyStoreError::AlgorithmMismatch {
                    card: req.algorithm,
                    keys: s.keys.algorithm,
                },
                None => KeyStoreError::UnknownIssuer(onecard_proto::hex::encode(&req.card.issuer)),
            });
        };
        if req.version != KEY_VERSION {
            return Err(KeyStoreError::UnknownKeyVersion(req.version));
        }
        Ok(src)
    }

    fn card_key_bytes(&self, req: &KeyRequest, usage: KeyUsage) -> Result<Key16, KeyStoreError> {
        let src = self.source(req)?;
        let k = src.keys.get(usage).ok_or(KeyStoreError::NoKey(usage))?;
        Ok(if src.master {
            onecard_crypto::derive_card_key(
                src.keys.algorithm,
                k,
                req.card.issuer,
                req.card.card_factor,
            )
        } else {
            k.duplicate()
        })
    }

    fn card_key(
        &self,
        req: &KeyRequest,
        usage: KeyUsage,
    ) -> Result<std::sync::Arc<CardKey>, KeyStoreError> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = cache.get(&(req.card, usage)) {
            if k.algorithm() == req.algorithm {
                return Ok(k.clone());
            }
        }
        let key = std::sync::Arc::new(CardKey::new(
            req.algorithm,
            &self.card_key_bytes(req, usage)?,
        ));
        if cache.len() >= KEY_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert((req.card, usage), key.clone());
        Ok(key)
    }
}

impl Default for SoftwareKeyStore {
    fn default() -> Self {
        SoftwareKeyStore::new()
    }
}

impl KeyStore for SoftwareKeyStore {
    fn session_key(&self, req: &KeyRequest, input: [u8; 8]) -> Result<SessionKey, KeyStoreError> {
        Ok(self.card_key(req, req.usage)?.session_key(input))
    }

    fn tac_key(&self, req: &KeyRequest) -> Result<SessionKey, KeyStoreError> {
        let dtk = self.card_key_bytes(req, KeyUsage::Tac)?;
        Ok(SessionKey::tac(req.algorithm, &dtk))
    }

    fn line_mac(
        &self,
        req: &KeyRequest,
        challenge: [u8; 4],
        data: &[u8],
    ) -> Result<[u8; 4], KeyStoreError> {
        let k = self.card_key_bytes(req, KeyUsage::Maintenance)?;
        Ok(line_mac(req.algorithm, &k, challenge, data))
    }
}

impl<K: KeyStore + ?Sized> KeyStore for &K {
    fn session_key(&self, req: &KeyRequest, input: [u8; 8]) -> Result<SessionKey, KeyStoreError> {
        (**self).session_key(req, input)
    }
    fn tac_key(&self, req: &KeyRequest) -> Result<SessionKey, KeyStoreError> {
        (**self).tac_key(req)
    }
    fn line_mac(
        &self,
        req: &KeyRequest,
        challenge: [u8; 4],
        data: &[u8],
    ) -> Result<[u8; 4], KeyStoreError> {
        (**self).line_mac(req, challenge, data)
    }
}

impl<K: KeyStore + ?Sized> KeyStore for std::sync::Arc<K> {
    fn session_key(&self, req: &KeyRequest, input: [u8; 8]) -> Result<SessionKey, KeyStoreError> {
        (**self).session_key(req, input)
    }
    fn tac_key(&self, req: &KeyRequest) -> Result<SessionKey, KeyStoreError> {
        (**self).tac_key(req)
    }
    fn line_mac(
        &self,
        req: &KeyRequest,
        challenge: [u8; 4],
        data: &[u8],
    ) -> Result<[u8; 4], KeyStoreError> {
        (**self).line_mac(req, challenge, data)
    }
}
