//! [`CardTransport`] over PC/SC: onecard's terminal code talking to a card in a real reader
//! (pcsc-lite on Linux and macOS, WinSCard on Windows), or to a virtual card that
//! `onecard-vpcd` puts into vsmartcard's "Virtual PCD" reader.
//!
//! ```no_run
//! use onecard_pcsc::{list_readers, PcscTransport};
//! use onecard_proto::CardTransport;
//! for reader in list_readers()? {
//!     println!("{reader}");
//! }
//! let mut card = PcscTransport::connect(Some("Virtual PCD"))?;
//! let balance = card.transmit(&[0x80, 0x5C, 0x00, 0x02, 0x04])?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Links against libpcsclite (`libpcsclite-dev` on Debian); that is why nothing in the
//! workspace depends on this crate unconditionally.

pub mod chain;

use onecard_proto::{CardTransport, TransportError};
use pcsc::{Context, Protocols, ReaderState, Scope, ShareMode, State};
use std::ffi::CString;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why a reader or card could not be reached.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PcscError {
    /// The PC/SC service is not running (pcscd down, or no access to its socket).
    #[error("PC/SC service unavailable: {0}")]
    NoService(#[source] pcsc::Error),
    /// No reader is attached at all.
    #[error("no PC/SC readers")]
    NoReaders,
    /// No reader name contains the requested text.
    #[error("no reader matching {pattern:?} (readers: {available:?})")]
    ReaderNotFound {
        /// The requested name or substring.
        pattern: String,
        /// The readers that exist.
        available: Vec<String>,
    },
    /// Matching readers exist but none had a card before the timeout.
    #[error("no card in {readers:?} within {waited:?}")]
    NoCard {
        /// The readers watched.
        readers: Vec<String>,
        /// How long it waited.
        waited: Duration,
    },
    /// Any other PC/SC failure, with the operation that failed.
    #[error("PC/SC {op} failed: {source}")]
    Pcsc {
        /// The PC/SC call.
        op: &'static str,
        /// Its error.
        #[source]
        source: pcsc::Error,
    },
}

impl PcscError {
    fn from_pcsc(op: &'static str, source: pcsc::Error) -> Self {
        match source {
            pcsc::Error::NoService | pcsc::Error::ServiceStopped => PcscError::NoService(source),
            pcsc::Error::NoReadersAvailable => PcscError::NoReaders,
            source => PcscError::Pcsc { op, source },
        }
    }
}

/// The transmission protocol negotiated with the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Character protocol: response data comes through `61xx` / GET RESPONSE.
    T0,
    /// Block protocol: response data comes back directly.
    T1,
    /// Raw (reader-specific).
    Raw,
}

/// How to find and open a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// A reader name, or a case-insensitive substring of one; `None` for any reader. When
    /// several readers match, the first with a card is used.
    pub reader: Option<String>,
    /// How long to wait for a card (and for a matching reader to appear). Zero: the card
    /// must already be there.
    pub wait: Duration,
    /// Exclusive access keeps other PC/SC clients from interleaving APDUs with a
    /// multi-step transaction; shared access lets diagnostic tools look on.
    pub exclusive: bool,
    /// Resolve `61xx` and `6Cxx` on T=1 too. Off by default: over T=1 (and ISO 14443) a
    /// card answers directly, and a stray `61xx` is then the card's business to report.
    pub chain_on_t1: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            reader: None,
            wait: Duration::ZERO,
            exclusive: false,
            chain_on_t1: false,
        }
    }
}

/// Names of the attached readers; empty when pcscd runs but no reader is attached.
pub fn list_readers() -> Result<Vec<String>, PcscError> {
    let ctx = establish()?;
    reader_names(&ctx)
}

fn establish() -> Result<Context, PcscError> {
    Context::establish(Scope::User).map_err(|e| PcscError::from_pcsc("establish context", e))
}

fn reader_names(ctx: &Context) -> Result<Vec<String>, PcscError> {
    match ctx.list_readers_owned() {
        Ok(names) => Ok(names
            .into_iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect()),
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(e) => Err(PcscError::from_pcsc("list readers", e)),
    }
}

/// Readers whose name equals `pattern`, or else contains it (case-insensitively).
fn matching(readers: &[String], pattern: Option<&str>) -> Vec<String> {
    let Some(pattern) = pattern else {
        return readers.to_vec();
    };
    if let Some(exact) = readers.iter().find(|r| r.as_str() == pattern) {
        return vec![exact.clone()];
    }
    let needle = pattern.to_lowercase();
    readers
        .iter()
        .filter(|r| r.to_lowercase().contains(&needle))
        .cloned()
        .collect()
}

/// Waits up to `timeout` for a card in a reader matching `reader` (see
/// [`ConnectOptions::reader`]) and returns that reader's name.
pub fn wait_for_card(reader: Option<&str>, timeout: Duration) -> Result<String, PcscError> {
    let ctx = establish()?;
    wait_in(&ctx, reader, timeout)
}

/// Longest single blocking wait, so that readers plugged in meanwhile are noticed.
const WAIT_SLICE: Duration = Duration::from_millis(500);

fn wait_in(ctx: &Context, reader: Option<&str>, timeout: Duration) -> Result<String, PcscError> {
    let started = Instant::now();
    let deadline = started + timeout;
    // Each pass blocks for up to WAIT_SLICE (or returns on a state change), so the loop
    // ends by the deadline; the pass cap guards against a service that returns at once
    // forever.
    let max_passes = timeout.as_millis() / 10 + 2;
    let mut last_seen = Vec::new();
    for _ in 0..max_passes {
        let readers = reader_names(ctx)?;
        let candidates = matching(&readers, reader);
        let remaining = deadline.saturating_duration_since(Instant::now());
        if candidates.is_empty() {
            if remaining.is_zero() {
                return Err(match reader {
                    Some(pattern) if !readers.is_empty() => PcscError::ReaderNotFound {
                        pattern: pattern.to_string(),
                        available: readers,
                    },
                    _ => PcscError::NoReaders,
                });
            }
            std::thread::sleep(remaining.min(Duration::from_millis(100)));
            continue;
        }
        let mut states: Vec<ReaderState> = candidates
            .iter()
            .filter_map(|name| CString::new(name.as_str()).ok())
            .map(|name| ReaderState::new(name, State::UNAWARE))
            .collect();
        // With UNAWARE the call returns the present state at once.
        match ctx.get_status_change(Duration::ZERO, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(e) => return Err(PcscError::from_pcsc("get status change", e)),
        }
        if let Some(found) = states.iter().find(|s| card_ready(s.event_state())) {
            return Ok(found.name().to_string_lossy().into_owned());
        }
        last_seen = candidates;
        if remaining.is_zero() {
            break;
        }
        for s in &mut states {
            s.sync_current_state();
        }
        match ctx.get_status_change(remaining.min(WAIT_SLICE), &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            // A reader vanished while we watched it: list again.
            Err(pcsc::Error::UnknownReader | pcsc::Error::ReaderUnavailable) => {}
            Err(e) => return Err(PcscError::from_pcsc("get status change", e)),
        }
        if let Some(found) = states.iter().find(|s| card_ready(s.event_state())) {
            return Ok(found.name().to_string_lossy().into_owned());
        }
    }
    Err(PcscError::NoCard {
        readers: last_seen,
        waited: started.elapsed(),
    })
}

fn card_ready(state: State) -> bool {
    state.contains(State::PRESENT) && !state.intersects(State::MUTE | State::UNAVAILABLE)
}

/// A connected card. Each [`CardTransport::transmit`] is one command, with T=0 response
/// chaining resolved (see [`chain`]).
///
/// Dropping it disconnects with a card reset, ending any card-side session so the next
/// client starts clean, except after the card was lost: resetting a card that is gone fails
/// and leaves pcscd believing the slot empty while its reader driver still sees a card, so
/// the card is then left alone and pcscd notices the removal on its own.
pub struct PcscTransport {
    /// Always `Some` until dropped or disconnected.
    card: Option<pcsc::Card>,
    lost: bool,
    reader: String,
    protocol: Protocol,
    atr: Vec<u8>,
    chain: bool,
    share: ShareMode,
}

impl std::fmt::Debug for PcscTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscTransport")
            .field("reader", &self.reader)
            .field("protocol", &self.protocol)
            .field("atr", &self.atr)
            .finish_non_exhaustive()
    }
}

impl PcscTransport {
    /// Connects to the card in the first reader whose name equals or contains `reader`
    /// (any reader if `None`), shared, T=0 or T=1, without waiting.
    pub fn connect(reader: Option<&str>) -> Result<Self, PcscError> {
        Self::connect_with(&ConnectOptions {
            reader: reader.map(str::to_string),
            ..ConnectOptions::default()
        })
    }

    /// Connects as `options` say, waiting for a card if asked.
    pub fn connect_with(options: &ConnectOptions) -> Result<Self, PcscError> {
        let ctx = establish()?;
        let deadline = Instant::now() + options.wait;
        // The card can leave between the status check and the connect; retry within the
        // wait budget, at most a few times.
        let mut last_err = None;
        for _ in 0..4 {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let reader = wait_in(&ctx, options.reader.as_deref(), remaining)?;
            match Self::open(&ctx, &reader, options) {
                Ok(t) => return Ok(t),
                Err(PcscError::Pcsc {
                    source: e @ (pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard),
                    op,
                }) => last_err = Some(PcscError::Pcsc { op, source: e }),
                Err(other) => return Err(other),
            }
        }
        Err(last_err.unwrap_or(PcscError::NoReaders))
    }

    fn open(ctx: &Context, reader: &str, options: &ConnectOptions) -> Result<Self, PcscError> {
        let name = CString::new(reader).map_err(|_| PcscError::ReaderNotFound {
            pattern: reader.to_string(),
            available: Vec::new(),
        })?;
        let share = if options.exclusive {
            ShareMode::Exclusive
        } else {
            ShareMode::Shared
        };
        let card = ctx
            .connect(&name, share, Protocols::T0 | Protocols::T1)
            .map_err(|e| PcscError::from_pcsc("connect", e))?;
        let status = card
            .status2_owned()
            .map_err(|e| PcscError::from_pcsc("status", e))?;
        let protocol = match status.protocol2() {
            Some(pcsc::Protocol::T0) => Protocol::T0,
            Some(pcsc::Protocol::T1) => Protocol::T1,
            _ => Protocol::Raw,
        };
        Ok(PcscTransport {
            card: Some(card),
            lost: false,
            reader: reader.to_string(),
            protocol,
            atr: status.atr().to_vec(),
            chain: protocol == Protocol::T0 || options.chain_on_t1,
            share,
        })
    }

    /// The reader's full name.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// The negotiated protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The card's ATR as read at connection.
    pub fn atr(&self) -> &[u8] {
        &self.atr
    }

    /// Warm-resets the card (ends any card-side transaction session) and reconnects.
    pub fn reset(&mut self) -> Result<(), TransportError> {
        let card = self.card.as_mut().ok_or(TransportError::CardLost)?;
        let done = card.reconnect(
            self.share,
            Protocols::T0 | Protocols::T1,
            pcsc::Disposition::ResetCard,
        );
        if let Err(e) = done {
            let e = map_transmit_error(e);
            self.lost |= matches!(e, TransportError::CardLost);
            return Err(e);
        }
        if let Ok(status) = card.status2_owned() {
            self.atr = status.atr().to_vec();
        }
        self.lost = false;
        Ok(())
    }

    /// Whether an exchange reported the card lost since connection (or the last reset).
    pub fn is_lost(&self) -> bool {
        self.lost
    }

    /// Disconnects, leaving the card powered and its state as it is.
    pub fn disconnect(mut self) -> Result<(), PcscError> {
        match self.card.take() {
            Some(card) => card
                .disconnect(pcsc::Disposition::LeaveCard)
                .map_err(|(_, e)| PcscError::from_pcsc("disconnect", e)),
            None => Ok(()),
        }
    }

    /// One SCardTransmit. A "successful" exchange without a status word is a lost answer:
    /// vpcd reports a virtual card that dropped its link mid-exchange exactly so (an empty
    /// response), and a terminal must treat it like a card pulled from the field.
    fn raw_transmit(card: &pcsc::Card, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE];
        let rsp = card
            .transmit(command, &mut buf)
            .map_err(map_transmit_error)?;
        if rsp.len() < 2 {
            return Err(TransportError::CardLost);
        }
        Ok(rsp.to_vec())
    }
}

/// Card gone, unpowered or reset under us: the transaction state on the card is unknown,
/// which is exactly what [`TransportError::CardLost`] tells the terminal to recover from.
fn map_transmit_error(e: pcsc::Error) -> TransportError {
    match e {
        pcsc::Error::RemovedCard
        | pcsc::Error::NoSmartcard
        | pcsc::Error::ResetCard
        | pcsc::Error::UnpoweredCard
        | pcsc::Error::UnresponsiveCard
        | pcsc::Error::CommDataLost
        | pcsc::Error::ReaderUnavailable
        // pcsc-lite's answer when the reader driver failed mid-exchange: the command may
        // or may not have reached the card.
        | pcsc::Error::NotTransacted
        | pcsc::Error::CommError => TransportError::CardLost,
        other => TransportError::Reader(other.to_string()),
    }
}

impl CardTransport for PcscTransport {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        if command.len() > pcsc::MAX_BUFFER_SIZE {
            return Err(TransportError::Reader(format!(
                "command of {} bytes exceeds a short APDU",
                command.len()
            )));
        }
        let Some(card) = self.card.as_ref() else {
            return Err(TransportError::CardLost);
        };
        let result = if self.chain {
            chain::exchange(|c| Self::raw_transmit(card, c), command)
        } else {
            Self::raw_transmit(card, command)
        };
        if matches!(result, Err(TransportError::CardLost)) {
            self.lost = true;
        }
        result
    }
}

impl Drop for PcscTransport {
    fn drop(&mut self) {
        if let Some(card) = self.card.take() {
            let disposition = if self.lost {
                pcsc::Disposition::LeaveCard
            } else {
                pcsc::Disposition::ResetCard
            };
            // Nothing useful can be done with a failed disconnect while dropping; pcscd
            // releases the handle when this process's context goes away anyway.
            let _ = card.disconnect(disposition);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reader_matching_prefers_exact_then_substring() {
        let readers = names(&[
            "Virtual PCD 00 00",
            "Virtual PCD 00 01",
            "ACS ACR122U 01 00",
        ]);
        assert_eq!(matching(&readers, None), readers);
        assert_eq!(
            matching(&readers, Some("Virtual PCD 00 01")),
            names(&["Virtual PCD 00 01"])
        );
        assert_eq!(
            matching(&readers, Some("virtual pcd")),
            names(&["Virtual PCD 00 00", "Virtual PCD 00 01"])
        );
        assert_eq!(
            matching(&readers, Some("acr122")),
            names(&["ACS ACR122U 01 00"])
        );
        assert!(matching(&readers, Some("Omnikey")).is_empty());
    }

    #[test]
    fn removal_maps_to_card_lost() {
        for e in [
            pcsc::Error::RemovedCard,
            pcsc::Error::NoSmartcard,
            pcsc::Error::ResetCard,
        ] {
            assert!(matches!(map_transmit_error(e), TransportError::CardLost));
        }
        assert!(matches!(
            map_transmit_error(pcsc::Error::InvalidParameter),
            TransportError::Reader(_)
        ));
    }

    #[test]
    fn card_ready_needs_present_and_not_mute() {
        assert!(card_ready(State::PRESENT | State::CHANGED));
        assert!(!card_ready(State::EMPTY));
        assert!(!card_ready(State::PRESENT | State::MUTE));
    }
}
