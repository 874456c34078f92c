//! Errors. Every refusal leaves the list it was applied to unchanged.

use crate::entry::Entry;

/// Why an operation on a list was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The delta does not start at the list's version.
    #[error("delta starts at version {from}, the list is at version {current}")]
    VersionMismatch {
        /// The list's version.
        current: u64,
        /// The delta's `from_version`.
        from: u64,
    },
    /// A delta must move the version forward.
    #[error("delta goes from version {from} to {to}: the target must be greater")]
    VersionNotIncreasing {
        /// The delta's `from_version`.
        from: u64,
        /// The delta's `to_version`.
        to: u64,
    },
    /// A replacement list is not newer than the current one (a replayed old list would unblock
    /// cards).
    #[error("offered list version {offered} is not newer than the current version {current}")]
    NotNewer {
        /// The current version.
        current: u64,
        /// The offered list's version.
        offered: u64,
    },
    /// The delta has more entries than [`crate::MAX_DELTA_ENTRIES`].
    #[error("delta has {entries} entries, more than the limit {max}")]
    DeltaTooLarge {
        /// Added plus removed entries.
        entries: usize,
        /// The limit.
        max: usize,
    },
    /// The list would hold more than [`crate::MAX_ENTRIES`].
    #[error("{entries} entries exceed the limit {max}")]
    TooManyEntries {
        /// Entries the list would hold.
        entries: usize,
        /// The limit.
        max: usize,
    },
    /// An entry appears twice in a delta's add or remove list.
    #[error("{entry} appears twice among the delta's {side}")]
    Duplicate {
        /// The entry.
        entry: Entry,
        /// `"additions"` or `"removals"`.
        side: &'static str,
    },
    /// An entry is both added and removed by one delta.
    #[error("{0} is both added and removed")]
    AddedAndRemoved(Entry),
    /// A removal names an entry that is not listed: the host's idea of the list differs from
    /// ours, so a full snapshot is needed.
    #[error("{0} is to be removed but is not listed")]
    RemoveAbsent(Entry),
    /// An addition names an entry that is already listed (same reason as
    /// [`Error::RemoveAbsent`]).
    #[error("{0} is to be added but is already listed")]
    AddPresent(Entry),
    /// Entries given as sorted were not strictly increasing in canonical order.
    #[error("entries not strictly increasing at {0}")]
    NotSorted(Entry),
    /// A snapshot or delta file is malformed.
    #[error("blacklist file: {0}")]
    Format(#[from] FormatError),
    /// Reading or writing a file failed.
    #[error("blacklist file i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a snapshot or delta file was refused. Offsets are byte offsets into the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The file ends before a field it declares.
    #[error("truncated: the file ends inside the field at offset {offset}")]
    Truncated {
        /// Where the incomplete field starts.
        offset: u64,
    },
    /// The file does not start with `OCBL`.
    #[error("not a onecard blacklist file (bad magic)")]
    BadMagic,
    /// A format version this build does not read.
    #[error("format version {0} is not supported (this build reads version 1)")]
    UnsupportedVersion(u16),
    /// A snapshot where a delta was expected or the other way round, or an unknown kind.
    #[error("expected a {expected} file, found kind byte {found:#04x}")]
    WrongKind {
        /// `"snapshot"` or `"delta"`.
        expected: &'static str,
        /// The kind byte found.
        found: u8,
    },
    /// The reserved header byte is not zero.
    #[error("reserved header byte is {0:#04x}, must be 0")]
    Reserved(u8),
    /// A declared count exceeds the limit.
    #[error("declares {count} entries, more than the limit {max}")]
    TooLarge {
        /// The declared count.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// Group and entry counts are inconsistent (more groups than entries, groups without
    /// entries, a group larger than what remains, or entries left over).
    #[error("inconsistent counts at offset {offset}")]
    BadCount {
        /// Where the offending count is.
        offset: u64,
    },
    /// Issuers or serials are not strictly increasing in canonical order (includes duplicates).
    #[error("entries not strictly increasing at offset {offset}")]
    Unsorted {
        /// Where the offending entry is.
        offset: u64,
    },
    /// The CRC-32 does not match the contents.
    #[error("CRC-32 mismatch: stored {stored:08x}, computed {computed:08x}")]
    BadCrc {
        /// CRC stored in the file.
        stored: u32,
        /// CRC of the contents.
        computed: u32,
    },
    /// Bytes follow the CRC.
    #[error("unexpected data after the CRC at offset {offset}")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: u64,
    },
}
