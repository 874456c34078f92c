//! ISO 7816-4 status words, with the e-purse meanings of B.1.5 (the real-card table).

use std::fmt;

/// A status word returned by a card, as a typed value.
///
/// The named variants are the ones onecard's card produces and its terminals act upon; any other
/// value read from a foreign card is kept as [`StatusWord::Other`] so nothing is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusWord {
    /// `9000`: success.
    Ok,
    /// `61xx`: more data available (contact interface only).
    MoreData(u8),
    /// `6581`: memory failure: the card could not commit; whether it did is unknown to the
    /// terminal until it asks again.
    MemoryFailure,
    /// `6700`: wrong length (Lc or Le).
    WrongLength,
    /// `6901`: command not accepted in the current state (e.g. DEBIT without INIT).
    InvalidState,
    /// `6981`: command incompatible with the file structure.
    IncompatibleFile,
    /// `6982`: security status not satisfied.
    SecurityNotSatisfied,
    /// `6983`: authentication method blocked.
    AuthBlocked,
    /// `6984`: referenced data invalid (e.g. no challenge before a MAC'd command).
    ReferencedDataInvalid,
    /// `6985`: conditions of use not satisfied.
    ConditionsNotSatisfied,
    /// `6988`: secure-messaging MAC wrong.
    SmMacWrong,
    /// `6A80`: wrong data field.
    WrongData,
    /// `6A81`: function not supported / application blocked.
    FunctionNotSupported,
    /// `6A82`: file not found.
    FileNotFound,
    /// `6A83`: record not found.
    RecordNotFound,
    /// `6A84`: not enough space.
    NotEnoughSpace,
    /// `6A86`: wrong P1-P2.
    WrongP1P2,
    /// `6A88`: referenced data (key) not found.
    KeyNotFound,
    /// `6Cxx`: wrong Le; the byte is the right one.
    WrongLe(u8),
    /// `6D00`: instruction not supported.
    InsNotSupported,
    /// `6E00`: class not supported.
    ClaNotSupported,
    /// `9302`: transaction MAC (MAC1 or MAC2) invalid.
    MacInvalid,
    /// `9303`: application permanently locked.
    PermanentlyLocked,
    /// `9401`: insufficient balance.
    InsufficientBalance,
    /// `9402`: transaction counter at its maximum.
    CounterAtMaximum,
    /// `9403`: key index not supported.
    KeyIndexNotSupported,
    /// `9406`: required MAC not available.
    MacNotAvailable,
    /// Any other value.
    Other(u16),
}

impl StatusWord {
    /// The typed form of a two-byte status word.
    pub fn from_u16(sw: u16) -> StatusWord {
        use StatusWord::*;
        match sw {
            0x9000 => Ok,
            0x6100..=0x61FF => MoreData(sw as u8),
            0x6C00..=0x6CFF => WrongLe(sw as u8),
            0x6581 => MemoryFailure,
            0x6700 => WrongLength,
            0x6901 => InvalidState,
            0x6981 => IncompatibleFile,
            0x6982 => SecurityNotSatisfied,
            0x6983 => AuthBlocked,
            0x6984 => ReferencedDataInvalid,
            0x6985 => ConditionsNotSatisfied,
            0x6988 => SmMacWrong,
            0x6A80 => WrongData,
            0x6A81 => FunctionNotSupported,
            0x6A82 => FileNotFound,
            0x6A83 => RecordNotFound,
            0x6A84 => NotEnoughSpace,
            0x6A86 => WrongP1P2,
            0x6A88 => KeyNotFound,
            0x6D00 => InsNotSupported,
            0x6E00 => ClaNotSupported,
            0x9302 => MacInvalid,
            0x9303 => PermanentlyLocked,
            0x9401 => InsufficientBalance,
            0x9402 => CounterAtMaximum,
            0x9403 => KeyIndexNotSupported,
            0x9406 => MacNotAvailable,
            other => Other(other),
        }
    }

    /// The two-byte value.
    pub fn to_u16(self) -> u16 {
        use StatusWord::*;
        match self {
            Ok => 0x9000,
            MoreData(n) => 0x6100 | u16::from(n),
            WrongLe(n) => 0x6C00 | u16::from(n),
            MemoryFailure => 0x6581,
            WrongLength => 0x6700,
            InvalidState => 0x6901,
            IncompatibleFile => 0x6981,
            SecurityNotSatisfied => 0x6982,
            AuthBlocked => 0x6983,
            ReferencedDataInvalid => 0x6984,
            ConditionsNotSatisfied => 0x6985,
            SmMacWrong => 0x6988,
            WrongData => 0x6A80,
            FunctionNotSupported => 0x6A81,
            FileNotFound => 0x6A82,
            RecordNotFound => 0x6A83,
            NotEnoughSpace => 0x6A84,
            WrongP1P2 => 0x6A86,
            KeyNotFound => 0x6A88,
            InsNotSupported => 0x6D00,
            ClaNotSupported => 0x6E00,
            MacInvalid => 0x9302,
            PermanentlyLocked => 0x9303,
            InsufficientBalance => 0x9401,
            CounterAtMaximum => 0x9402,
            KeyIndexNotSupported => 0x9403,
            MacNotAvailable => 0x9406,
            Other(v) => v,
        }
    }

    /// The two status bytes SW1 SW2.
    pub fn to_bytes(self) -> [u8; 2] {
        self.to_u16().to_be_bytes()
    }

    /// True for `9000`.
    pub fn is_ok(self) -> bool {
        self == StatusWord::Ok
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.to_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_value() {
        for v in 0..=u16::MAX {
            assert_eq!(StatusWord::from_u16(v).to_u16(), v);
        }
    }
}
