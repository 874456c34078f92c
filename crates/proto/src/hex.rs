//! Hex text for APDUs, keys and identifiers in traces, JSON and the CLI.

use thiserror::Error;

/// Why text is not hex.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HexError {
    /// An odd number of hex digits.
    #[error("odd number of hex digits ({0})")]
    OddLength(usize),
    /// A character that is not a hex digit.
    #[error("not a hex digit: {0:?}")]
    BadDigit(char),
    /// The wrong number of bytes for the field.
    #[error("expected {expected} bytes, got {got}")]
    WrongLength {
        /// Bytes the field needs.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
}

/// Decodes hex digits, ignoring ASCII whitespace between them.
pub fn decode(text: &str) -> Result<Vec<u8>, HexError> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high: Option<u8> = None;
    let mut digits = 0usize;
    for c in text.chars() {
        if c.is_ascii_whitespace() {
            continue;
        }
        let v = c.to_digit(16).ok_or(HexError::BadDigit(c))? as u8;
        digits += 1;
        match high.take() {
            None => high = Some(v),
            Some(h) => out.push(h << 4 | v),
        }
    }
    if high.is_some() {
        return Err(HexError::OddLength(digits));
    }
    Ok(out)
}

/// Decodes exactly `N` bytes of hex.
pub fn decode_array<const N: usize>(text: &str) -> Result<[u8; N], HexError> {
    let v = decode(text)?;
    v.as_slice().try_into().map_err(|_| HexError::WrongLength {
        expected: N,
        got: v.len(),
    })
}

/// Upper-case hex without separators.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        assert_eq!(decode("80 5c 00 02 04").unwrap(), vec![0x80, 0x5C, 0, 2, 4]);
        assert_eq!(encode(&[0xAB, 0x01]), "AB01");
        assert_eq!(decode("ABC"), Err(HexError::OddLength(3)));
        assert_eq!(decode("zz"), Err(HexError::BadDigit('z')));
        assert_eq!(decode_array::<2>("0102").unwrap(), [1, 2]);
        assert!(decode_array::<3>("0102").is_err());
    }
}
