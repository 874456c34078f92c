//! Typed errors of the fare engine and its loaders.

use thiserror::Error;

/// Everything that can go wrong while loading fare data or pricing a trip.
///
/// External input (city files, CSV, GTFS feeds, CLI arguments) never panics: it ends here.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FareError {
    /// The city file is not valid TOML or does not match the schema.
    #[error("city file: {0}")]
    CityFile(String),
    /// The city file parsed but its content is inconsistent (e.g. bands out of order).
    #[error("city file {city}: {msg}")]
    Invalid {
        /// City id from the file, or `?` if unknown.
        city: String,
        /// What is wrong.
        msg: String,
    },
    /// The `format_version` is not one this build understands.
    #[error("city file format_version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion {
        /// Version found in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// A network data file (station CSV) is malformed.
    #[error("{file}:{line}: {msg}")]
    Data {
        /// File name.
        file: String,
        /// 1-based line number (0 when not tied to a line).
        line: u64,
        /// What is wrong.
        msg: String,
    },
    /// A bounded resource would be exceeded (stations, rows, file size...).
    #[error("limit exceeded: {what} (max {max})")]
    Limit {
        /// Which limit.
        what: &'static str,
        /// Its value.
        max: u64,
    },
    /// No city with this id is built in.
    #[error("unknown city {0:?} (built in: {1})")]
    UnknownCity(String, String),
    /// No station with this name in the network.
    #[error("unknown station {name:?}{}", suggest_text(.suggestions))]
    UnknownStation {
        /// The name asked for.
        name: String,
        /// Close names, best first.
        suggestions: Vec<String>,
    },
    /// The two stations are in different paid areas or not connected.
    #[error("no fare between {0} and {1}: not in the same paid area or not connected")]
    NoRoute(String, String),
    /// The city has no metro network data, so a station-to-station quote is impossible.
    #[error("city {0} has no metro network data; quote by distance instead")]
    NoNetwork(String),
    /// The city has no rules for this mode.
    #[error("city {0} has no {1} fares")]
    NoMode(String, &'static str),
    /// A money computation overflowed.
    #[error("money overflow")]
    Overflow,
    /// A date/time argument could not be parsed.
    #[error("bad date-time {0:?}: {1}")]
    BadTime(String, &'static str),
    /// An I/O error reading a file (message only, so the error stays `Clone`).
    #[error("{0}: {1}")]
    Io(String, String),
    /// A GTFS feed could not be used at all (even partially).
    #[error("GTFS: {0}")]
    Gtfs(String),
}

fn suggest_text(s: &[String]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", s.join(", "))
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, FareError>;
