//! Money as integer fen (0.01 CNY).
//!
//! Floats never touch money in onecard. Card fields are 4-byte unsigned big-endian values, so the
//! conversions to and from the wire are checked: an amount that does not fit in 32 bits is an
//! error, never a silent truncation.

use std::fmt;

/// An amount of money in fen (0.01 CNY). Never negative; arithmetic is checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fen(u64);

/// The largest amount a card field can carry (4 bytes, bit 31 clear as our cards use it).
pub const MAX_CARD_FEN: u64 = 0x7FFF_FFFF;

impl Fen {
    /// Zero fen.
    pub const ZERO: Fen = Fen(0);

    /// An amount of `fen` fen.
    pub const fn new(fen: u64) -> Fen {
        Fen(fen)
    }

    /// An amount of whole yuan.
    pub const fn yuan(yuan: u64) -> Fen {
        Fen(yuan * 100)
    }

    /// The amount in fen.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }

    /// `self - other`, or `None` if it would go below zero.
    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        self.0.checked_sub(other.0).map(Fen)
    }

    /// `self - other`, floored at zero.
    pub fn saturating_sub(self, other: Fen) -> Fen {
        Fen(self.0.saturating_sub(other.0))
    }

    /// The amount as the 4-byte big-endian card field, or `None` if it does not fit.
    pub fn to_card_bytes(self) -> Option<[u8; 4]> {
        u32::try_from(self.0).ok().map(u32::to_be_bytes)
    }

    /// Reads a 4-byte big-endian card amount.
    pub fn from_card_bytes(bytes: [u8; 4]) -> Fen {
        Fen(u64::from(u32::from_be_bytes(bytes)))
    }

    /// Reads a balance from another issuer's card: bit 31 is masked off, as real readers do
    /// (B.1.6), because several issuers set it.
    pub fn from_foreign_balance(bytes: [u8; 4]) -> Fen {
        Fen(u64::from(u32::from_be_bytes(bytes) & 0x7FFF_FFFF))
    }
}

impl fmt::Display for Fen {
    /// Yuan with two decimals, e.g. `12.30`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl std::iter::Sum for Fen {
    fn sum<I: Iterator<Item = Fen>>(iter: I) -> Fen {
        // Summing money that overflows u64 is a bug, not an input error.
        iter.fold(Fen::ZERO, |a, b| {
            a.checked_add(b).expect("money sum overflows u64")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_bytes() {
        assert_eq!(Fen::new(1230).to_string(), "12.30");
        assert_eq!(Fen::new(5).to_string(), "0.05");
        assert_eq!(Fen::new(0x1C37).to_card_bytes(), Some([0, 0, 0x1C, 0x37]));
        assert_eq!(Fen::new(1 << 32).to_card_bytes(), None);
        assert_eq!(
            Fen::from_foreign_balance([0x80, 0, 0x16, 0x4E]),
            Fen::new(5710)
        );
        assert_eq!(Fen::new(3).checked_sub(Fen::new(4)), None);
    }
}
