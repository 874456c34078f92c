//! KEYS.json / MASTER.json: a key set in hex, as the CLI, the trace verifier and the
//! personalisation machine read it (card-level keys, or an issuer's master keys in the same
//! form).
//!
//! ```json
//! {"load": "374598B5C0B0EAE1E1D06609AC5BB369",
//!  "purchase": "A338D92A10C8285411E761445C831C22",
//!  "tac": "CAA6025290114BFCC3C9043F70F7A07A",
//!  "algorithm": "3des"}
//! ```
//!
//! All three keys are required (16 bytes of hex each, spaces allowed); `maintenance` (the
//! application maintenance key for block, unblock and updates with MAC) is optional;
//! `algorithm` (`3des` or `sm4`) is optional and, when given, overrides the algorithm-id byte
//! of every INIT response.
//! Unknown fields are an error, so a misspelt `"algoritm"` cannot be silently ignored.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use onecard_crypto::{Algorithm, Key16, KeySet};
use onecard_proto::hex::{self, HexError};
use serde::Deserialize;
use thiserror::Error;
use zeroize::Zeroize;

/// Largest KEYS.json accepted, in bytes.
pub const MAX_KEYS_BYTES: usize = 64 * 1024;

/// Why KEYS.json cannot be used.
#[derive(Debug, Error)]
pub enum KeysError {
    /// The file could not be opened or read.
    #[error("cannot read keys {path}: {source}")]
    Io {
        /// The path as given.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Over [`MAX_KEYS_BYTES`].
    #[error("keys file is larger than {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// Not JSON, a missing key, or an unknown field (serde's message names line and column).
    #[error("keys JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A key that is not 16 bytes of hex.
    #[error("keys JSON: \"{field}\": {source}")]
    Key {
        /// `load`, `purchase`, `tac` or `maintenance`.
        field: &'static str,
        /// What is wrong with it.
        source: HexError,
    },
    /// The file is not UTF-8 text.
    #[error("keys file is not UTF-8 text")]
    NotUtf8,
    /// An `algorithm` other than `3des` or `sm4`.
    #[error("keys JSON: \"algorithm\" must be \"3des\" or \"sm4\", not {0}")]
    Algorithm(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysJson {
    load: String,
    purchase: String,
    tac: String,
    #[serde(default)]
    maintenance: Option<String>,
    #[serde(default)]
    algorithm: Option<String>,
}

impl Drop for KeysJson {
    fn drop(&mut self) {
        self.load.zeroize();
        self.purchase.zeroize();
        self.tac.zeroize();
        if let Some(m) = self.maintenance.as_mut() {
            m.zeroize();
        }
    }
}

/// The card-level keys of one card. No `Debug`: keys must never reach a log.
pub struct Keys {
    /// DLK: the load key.
    pub load: Key16,
    /// DPK: the purchase key.
    pub purchase: Key16,
    /// DTK: the TAC key.
    pub tac: Key16,
    /// Application maintenance key, if given.
    pub maintenance: Option<Key16>,
    /// Forces an algorithm instead of the INIT responses' algorithm-id byte.
    pub algorithm: Option<Algorithm>,
}

fn key(field: &'static str, text: &str) -> Result<Key16, KeysError> {
    let mut bytes = hex::decode(text).map_err(|source| KeysError::Key { field, source })?;
    let key = <[u8; 16]>::try_from(bytes.as_slice())
        .map(Key16::from_bytes)
        .map_err(|_| KeysError::Key {
            field,
            source: HexError::WrongLength {
                expected: 16,
                got: bytes.len(),
            },
        });
    bytes.zeroize();
    key
}

impl Keys {
    /// Parses KEYS.json text.
    pub fn from_json(text: &str) -> Result<Keys, KeysError> {
        let raw: KeysJson = serde_json::from_str(text)?;
        let algorithm = match raw.algorithm.as_deref() {
            None => None,
            Some(name) => Some(
                Algorithm::from_name(name)
                    .ok_or_else(|| KeysError::Algorithm(format!("{name:?}")))?,
            ),
        };
        Ok(Keys {
            load: key("load", &raw.load)?,
            purchase: key("purchase", &raw.purchase)?,
            tac: key("tac", &raw.tac)?,
            maintenance: raw
                .maintenance
                .as_deref()
                .map(|m| key("maintenance", m))
                .transpose()?,
            algorithm,
        })
    }

    /// The keys as a [`KeySet`] for `algorithm` (the file's own `algorithm`, when present,
    /// must agree).
    pub fn into_key_set(self, algorithm: Algorithm) -> Result<KeySet, KeysError> {
        if let Some(a) = self.algorithm.filter(|&a| a != algorithm) {
            return Err(KeysError::Algorithm(format!(
                "{} (the command asks for {})",
                a.name(),
                algorithm.name()
            )));
        }
        let Keys {
            load,
            purchase,
            tac,
            maintenance,
            ..
        } = self;
        Ok(KeySet {
            algorithm,
            load,
            purchase,
            tac,
            maintenance,
        })
    }

    /// Reads and parses a KEYS.json file.
    pub fn read(path: &Path) -> Result<Keys, KeysError> {
        let io = |source| KeysError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let mut buf = Vec::new();
        file.take(MAX_KEYS_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(io)?;
        let result = if buf.len() > MAX_KEYS_BYTES {
            Err(KeysError::TooLarge {
                max: MAX_KEYS_BYTES,
            })
        } else {
            std::str::from_utf8(&buf)
                .map_err(|_| KeysError::NotUtf8)
                .and_then(Keys::from_json)
        };
        buf.zeroize();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"load": "374598B5C0B0EAE1E1D06609AC5BB369",
        "purchase": "A338 D92A 10C8 2854 11E7 6144 5C83 1C22",
        "tac": "CAA6025290114BFCC3C9043F70F7A07A"}"#;

    #[test]
    fn parses_and_rejects() {
        let k = Keys::from_json(GOOD).expect("valid keys");
        assert_eq!(k.purchase.expose_secret()[0], 0xA3);
        assert!(k.algorithm.is_none());
        let with_alg = GOOD.replace('}', r#", "algorithm": "sm4"}"#);
        assert_eq!(
            Keys::from_json(&with_alg).expect("valid").algorithm,
            Some(Algorithm::Sm4)
        );
        let err = |s: &str| {
            Keys::from_json(s)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err(&GOOD.replace('}', r#", "algorithm": "des"}"#)).contains("\"3des\" or \"sm4\""));
        assert!(err(&GOOD.replace('}', r#", "extra": 1}"#)).contains("unknown field"));
        assert!(err(&GOOD.replace("374598B5", "3745")).contains("\"load\": expected 16 bytes"));
        assert!(err(r#"{"load": "00"}"#).contains("keys JSON"));
        assert!(err("not json").contains("keys JSON"));
    }
}
