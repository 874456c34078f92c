//! Why the bridge stopped, or why a frame was refused.

use std::error::Error;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use thiserror::Error;

/// An error from a hook ([`crate::Hooks::after_apdu`]), e.g. failing to persist the card.
pub type HookError = Box<dyn Error + Send + Sync + 'static>;

/// Everything that can go wrong between a card and vpcd.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VpcdError {
    /// vpcd could not be reached within the configured number of attempts (is pcscd running
    /// with the vpcd driver loaded?).
    #[error("could not connect to vpcd at {addr} after {attempts} attempts: {source}")]
    ConnectFailed {
        /// Where vpcd was expected.
        addr: SocketAddr,
        /// How many consecutive attempts failed.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: io::Error,
    },
    /// A frame announced more bytes than any short command APDU can have. The bridge skips
    /// such a frame without buffering it and answers `67 00`.
    #[error("frame of {len} bytes exceeds the {max}-byte limit for a command APDU")]
    FrameTooLong {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A frame with length 0: no request, nothing to answer.
    #[error("empty frame (length 0) from vpcd")]
    EmptyFrame,
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame: expected {expected} bytes, got {got}")]
    Truncated {
        /// Bytes the frame (or its 2-byte header) needed.
        expected: usize,
        /// Bytes that arrived.
        got: usize,
    },
    /// A frame started but did not complete in time; vpcd always sends a frame in one write,
    /// so this means a stalled or hostile peer.
    #[error("frame not completed within {0:?}")]
    FrameTimeout(Duration),
    /// A payload too long for the 2-byte length prefix.
    #[error("payload of {len} bytes does not fit a vpcd frame")]
    PayloadTooLong {
        /// The payload length.
        len: usize,
    },
    /// The card's ATR is outside ISO 7816-3's 2..=33 bytes; vpcd cannot present it.
    #[error("card returned an ATR of {len} bytes; ISO 7816-3 allows 2 to 33")]
    InvalidAtr {
        /// The ATR length.
        len: usize,
    },
    /// A hook failed; the link was dropped before the response was sent, so the terminal
    /// sees a torn exchange rather than a response the card could not make durable.
    #[error("hook failed: {0}")]
    Hook(#[source] HookError),
    /// Socket error on an established link.
    #[error("vpcd link I/O error: {0}")]
    Io(#[from] io::Error),
}
