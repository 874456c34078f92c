//! The one trait through which terminal code talks to a card, whatever carries the bytes:
//! the in-process virtual card, a PC/SC reader, or a test harness that tears the link.

use crate::apdu::{ApduError, Response};
use crate::commands::CardCommand;
use thiserror::Error;

/// Why an APDU exchange did not produce a response.
#[derive(Debug, Error)]
pub enum TransportError {
    /// The card left the field, or the link was torn, before a response arrived. Whether the
    /// card acted on the command is unknown: callers must recover, never assume.
    #[error("card removed or link lost")]
    CardLost,
    /// The reader or driver failed.
    #[error("reader error: {0}")]
    Reader(String),
    /// The card answered with bytes that are not a response APDU.
    #[error("malformed response: {0}")]
    Malformed(#[from] ApduError),
}

/// Sends a command APDU to a card and returns its response APDU (data ‖ SW1 SW2).
pub trait CardTransport {
    /// One exchange. `command` is a complete short command APDU.
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError>;

    /// Sends a typed command and parses the response.
    fn exchange(&mut self, command: &CardCommand<'_>) -> Result<Response, TransportError> {
        let mut bytes = Vec::with_capacity(64);
        command.encode_into(&mut bytes);
        let rsp = self.transmit(&bytes)?;
        Ok(Response::from_vec(rsp)?)
    }
}

impl<T: CardTransport + ?Sized> CardTransport for &mut T {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(command)
    }
}

impl<T: CardTransport + ?Sized> CardTransport for Box<T> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(command)
    }
}

/// The card side of a contactless link: what a reader driver (vpcd, an NFC host-card-emulation
/// service, a test harness) needs from a card it powers and talks to.
pub trait SmartCard {
    /// Power on (card enters the field): returns the ATR. Resets any transaction session.
    fn power_on(&mut self) -> Vec<u8>;
    /// Power off (card leaves the field): any transaction in progress is abandoned.
    fn power_off(&mut self);
    /// Warm reset: like power off then on; returns the ATR.
    fn reset(&mut self) -> Vec<u8> {
        self.power_off();
        self.power_on()
    }
    /// Processes one command APDU and returns the response APDU (data ‖ SW1 SW2). Never
    /// panics, whatever the bytes: malformed input gets a status word.
    fn process_apdu(&mut self, command: &[u8]) -> Vec<u8>;
}

/// An in-process link from terminal code to a card object.
pub struct InProcess<C>(pub C);

impl<C: SmartCard> CardTransport for InProcess<C> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        Ok(self.0.process_apdu(command))
    }
}
