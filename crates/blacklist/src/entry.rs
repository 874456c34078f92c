//! A card's identity ([`Entry`]) and the search key it is stored under (`Key`).
//!
//! The serial is 20 BCD digits, so as raw bytes only 10 of every 16 nibble values occur and
//! an issuer's range of serials is spread thinly over 80 bits. Converting the digits to their
//! decimal value (below 10^20, 67 bits) makes issued ranges dense again: a run of serials
//! issued in sequence becomes a run of consecutive integers, and a segment of them fits in
//! 32-bit offsets from its first value. Serials that are not valid BCD (a card or host bug,
//! but the list must still be able to hold them, or the card could not be blocked) get the
//! codes from 10^20 upwards, `10^20 + raw value`, so the mapping stays injective.

use std::cmp::Ordering;
use std::fmt;

use onecard_proto::files::AppInfo;

/// 10^10: the two halves of a serial are 10 digits each.
const E10: u64 = 10_000_000_000;

/// The first code given to a serial that is not valid BCD; every decimal serial is below it.
pub(crate) const NON_BCD_BASE: u128 = 100_000_000_000_000_000_000;

/// One blacklisted card: issuer identifier and application serial, as read from SFI 0x15.
///
/// Ordering ([`Ord`]) is the list's *canonical order*: by issuer bytes, then serials that are
/// valid BCD by value (which is also their byte order), then serials that are not valid BCD by
/// byte value. Files store entries in this order.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Entry {
    /// Issuer identifier, 0x15 bytes 0..8 (issuer code ‖ city code ‖ `FFFFFFFF` on T-Union).
    pub issuer: [u8; 8],
    /// Application serial, 0x15 bytes 10..20: 20 BCD digits.
    pub serial: [u8; 10],
}

impl Entry {
    /// An entry from the two 0x15 fields.
    pub const fn new(issuer: [u8; 8], serial: [u8; 10]) -> Entry {
        Entry { issuer, serial }
    }

    /// The entry that identifies the card whose 0x15 file is `info`.
    pub fn from_app_info(info: &AppInfo) -> Entry {
        Entry::new(info.issuer, info.serial)
    }

    /// True if the serial is 20 valid BCD digits.
    pub fn serial_is_bcd(&self) -> bool {
        self.serial.iter().all(|&b| b >> 4 <= 9 && b & 0x0F <= 9)
    }

    /// The search key.
    #[inline]
    pub(crate) fn key(&self) -> Key {
        Key {
            issuer: u64::from_be_bytes(self.issuer),
            code: serial_code(&self.serial),
        }
    }

    /// The entry a key was made from (the inverse of [`Entry::key`]).
    pub(crate) fn from_key(k: Key) -> Entry {
        Entry::new(k.issuer.to_be_bytes(), code_serial(k.code))
    }
}

impl From<&AppInfo> for Entry {
    fn from(info: &AppInfo) -> Entry {
        Entry::from_app_info(info)
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Entry {
    /// `issuer/serial`, both in hex (the serial's hex is its digits when it is BCD).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.issuer {
            write!(f, "{b:02X}")?;
        }
        f.write_str("/")?;
        for b in self.serial {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Entry({self})")
    }
}

/// The internal search key: issuer as a big-endian integer, serial as its code (see the
/// module docs). Field order makes the derived ordering the canonical order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub(crate) struct Key {
    pub issuer: u64,
    pub code: u128,
}

/// The code of a serial: its decimal value if it is BCD, else `NON_BCD_BASE + raw value`.
#[inline]
pub(crate) fn serial_code(s: &[u8; 10]) -> u128 {
    let mut halves = [0u64; 2];
    let mut bad = false;
    for (half, bytes) in halves.iter_mut().zip(s.chunks_exact(5)) {
        for &b in bytes {
            let (hi, lo) = (b >> 4, b & 0x0F);
            bad |= hi > 9 || lo > 9;
            *half = *half * 100 + u64::from(hi * 10 + lo);
        }
    }
    if bad {
        let mut raw = [0u8; 16];
        raw[6..].copy_from_slice(s);
        NON_BCD_BASE + u128::from_be_bytes(raw)
    } else {
        u128::from(halves[0]) * u128::from(E10) + u128::from(halves[1])
    }
}

/// The serial a code was made from.
pub(crate) fn code_serial(code: u128) -> [u8; 10] {
    let mut s = [0u8; 10];
    if code >= NON_BCD_BASE {
        let raw = (code - NON_BCD_BASE).to_be_bytes();
        s.copy_from_slice(&raw[6..]);
        return s;
    }
    // Both halves are below 10^10 because the code is below 10^20.
    let halves = [
        (code / u128::from(E10)) as u64,
        (code % u128::from(E10)) as u64,
    ];
    for (mut half, bytes) in halves.into_iter().zip(s.chunks_exact_mut(5)) {
        for b in bytes.iter_mut().rev() {
            let two = (half % 100) as u8;
            half /= 100;
            *b = (two / 10) << 4 | (two % 10);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(serial: [u8; 10]) -> Entry {
        Entry::new([1, 1, 0x10, 0, 0xFF, 0xFF, 0xFF, 0xFF], serial)
    }

    #[test]
    fn bcd_serials_become_their_decimal_value() {
        let s = [0x00, 0x00, 0x51, 0x70, 0x07, 0x01, 0x04, 0x79, 0x13, 0x81];
        assert_eq!(serial_code(&s), 5_170_070_104_791_381);
        assert_eq!(code_serial(5_170_070_104_791_381), s);
        let max = [0x99; 10];
        assert_eq!(serial_code(&max), NON_BCD_BASE - 1);
        assert_eq!(code_serial(NON_BCD_BASE - 1), max);
        assert_eq!(serial_code(&[0; 10]), 0);
    }

    #[test]
    fn non_bcd_serials_sort_after_bcd_and_round_trip() {
        let bad = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0A];
        assert_eq!(serial_code(&bad), NON_BCD_BASE + 10);
        assert_eq!(code_serial(serial_code(&bad)), bad);
        let ff = [0xFF; 10];
        assert_eq!(code_serial(serial_code(&ff)), ff);
        assert!(e(bad) > e([0x99; 10]));
        assert!(!e(bad).serial_is_bcd() && e([0x99; 10]).serial_is_bcd());
    }

    #[test]
    fn canonical_order_is_byte_order_among_bcd_serials() {
        let mut x = 0x1234_5678_9ABC_DEF0u64;
        let mut prev: Option<Entry> = None;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut s = [0u8; 10];
            let mut y = x;
            for b in &mut s {
                *b = ((y % 10) as u8) << 4 | ((y / 10) % 10) as u8;
                y /= 97;
            }
            let cur = e(s);
            assert_eq!(Entry::from_key(cur.key()), cur);
            if let Some(p) = prev {
                assert_eq!(p.cmp(&cur), p.serial.cmp(&cur.serial));
            }
            prev = Some(cur);
        }
    }

    #[test]
    fn display() {
        let x = Entry::new([1, 2, 3, 4, 0xFF, 0xFF, 0xFF, 0xFF], [0x12; 10]);
        assert_eq!(x.to_string(), "01020304FFFFFFFF/12121212121212121212");
    }
}
