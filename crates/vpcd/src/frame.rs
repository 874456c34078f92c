//! The vpcd wire format: every message is a 2-byte big-endian length, then that many bytes.
//!
//! What vpcd (the reader driver inside pcscd) sends to the card, and what it waits for:
//!
//! | payload | meaning | answer from the card |
//! |---|---|---|
//! | 1 byte `00` | power off | none |
//! | 1 byte `01` | power on | none (vpcd asks for the ATR next) |
//! | 1 byte `02` | warm reset | none (vpcd asks for the ATR next) |
//! | 1 byte `04` | get ATR; also vpcd's presence poll | the ATR, framed |
//! | 2 bytes or more | command APDU | the response APDU, framed |
//!
//! vpcd treats a zero-length answer as a dead card and drops the link, so every answer this
//! crate sends is at least two bytes.

use crate::error::VpcdError;
use std::io::{Read, Write};

/// The TCP port vpcd listens on for its first slot (`0x8C7B`, the `CHANNELID` in
/// `/etc/reader.conf.d/vpcd`); slot *n* listens on this port + *n*.
pub const DEFAULT_PORT: u16 = 35963;

/// The largest command frame accepted: a short case-4 APDU, `CLA INS P1 P2 Lc` + 255 data
/// bytes + `Le`. The e-purse uses short APDUs only; an extended APDU is answered `67 00`.
pub const MAX_APDU_LEN: usize = 261;

/// The largest response passed on from the card: 256 data bytes + `SW1 SW2`.
pub const MAX_RESPONSE_LEN: usize = 258;

/// ISO 7816-3 bounds an ATR to 33 bytes, TS included; vpcd's buffer is that size too.
pub const MAX_ATR_LEN: usize = 33;

/// The shortest ATR: TS and T0.
pub const MIN_ATR_LEN: usize = 2;

/// Control byte: power off.
pub const CTRL_OFF: u8 = 0;
/// Control byte: power on.
pub const CTRL_ON: u8 = 1;
/// Control byte: warm reset.
pub const CTRL_RESET: u8 = 2;
/// Control byte: get ATR.
pub const CTRL_ATR: u8 = 4;

/// One message from vpcd, classified by its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// `00`: the card leaves the field.
    PowerOff,
    /// `01`: the card is powered.
    PowerOn,
    /// `02`: warm reset.
    Reset,
    /// `04`: vpcd wants the ATR (also its way of polling for card presence).
    GetAtr,
    /// A one-byte payload this protocol does not define; vpcd expects no answer.
    UnknownControl(u8),
    /// A command APDU (two bytes or more).
    Apdu(&'a [u8]),
}

impl<'a> Message<'a> {
    /// Classifies a frame payload. `None` for an empty payload, which vpcd never sends and
    /// which carries no request to answer.
    pub fn classify(payload: &'a [u8]) -> Option<Self> {
        match payload {
            [] => None,
            [CTRL_OFF] => Some(Message::PowerOff),
            [CTRL_ON] => Some(Message::PowerOn),
            [CTRL_RESET] => Some(Message::Reset),
            [CTRL_ATR] => Some(Message::GetAtr),
            [other] => Some(Message::UnknownControl(*other)),
            apdu => Some(Message::Apdu(apdu)),
        }
    }
}

/// Writes one framed message in a single `write_all`, so vpcd never sees a length without
/// its payload because of a short write between the two.
pub fn write_frame<W: Write + ?Sized>(w: &mut W, payload: &[u8]) -> Result<(), VpcdError> {
    let len = u16::try_from(payload.len())
        .map_err(|_| VpcdError::PayloadTooLong { len: payload.len() })?;
    let mut buf = Vec::with_capacity(payload.len() + 2);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf)?;
    w.flush()?;
    Ok(())
}

/// Reads one framed message from a blocking reader, refusing (before reading or allocating
/// the payload) any frame longer than `max`. Meant for simple peers and tests; the bridge
/// itself reads through a stop-aware loop.
///
/// A clean end of stream before the first length byte is `Ok(None)`.
pub fn read_frame<R: Read + ?Sized>(r: &mut R, max: usize) -> Result<Option<Vec<u8>>, VpcdError> {
    let mut header = [0u8; 2];
    let got = read_up_to(r, &mut header)?;
    if got == 0 {
        return Ok(None);
    }
    if got < header.len() {
        return Err(VpcdError::Truncated {
            expected: header.len(),
            got,
        });
    }
    let len = usize::from(u16::from_be_bytes(header));
    if len > max {
        return Err(VpcdError::FrameTooLong { len, max });
    }
    let mut payload = vec![0u8; len];
    let got = read_up_to(r, &mut payload)?;
    if got < len {
        return Err(VpcdError::Truncated { expected: len, got });
    }
    Ok(Some(payload))
}

/// Fills `buf` unless the stream ends first; returns how many bytes were read.
fn read_up_to<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> Result<usize, VpcdError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_control_bytes_and_apdus() {
        assert_eq!(Message::classify(&[]), None);
        assert_eq!(Message::classify(&[0]), Some(Message::PowerOff));
        assert_eq!(Message::classify(&[1]), Some(Message::PowerOn));
        assert_eq!(Message::classify(&[2]), Some(Message::Reset));
        assert_eq!(Message::classify(&[4]), Some(Message::GetAtr));
        assert_eq!(Message::classify(&[3]), Some(Message::UnknownControl(3)));
        assert_eq!(
            Message::classify(&[0x80, 0x5C]),
            Some(Message::Apdu(&[0x80, 0x5C]))
        );
    }

    #[test]
    fn frame_round_trip() {
        let mut wire = Vec::new();
        write_frame(&mut wire, &[0x90, 0x00]).expect("write");
        assert_eq!(wire, [0, 2, 0x90, 0x00]);
        let got = read_frame(&mut wire.as_slice(), MAX_APDU_LEN).expect("read");
        assert_eq!(got, Some(vec![0x90, 0x00]));
        assert!(matches!(read_frame(&mut [].as_slice(), 10), Ok(None)));
    }

    #[test]
    fn read_frame_rejects_before_allocating() {
        let wire = [0xFF, 0xFF];
        let err = read_frame(&mut wire.as_slice(), MAX_APDU_LEN).expect_err("too long");
        assert!(matches!(
            err,
            VpcdError::FrameTooLong {
                len: 0xFFFF,
                max: MAX_APDU_LEN
            }
        ));
    }

    #[test]
    fn read_frame_reports_truncation() {
        assert!(matches!(
            read_frame(&mut [0u8].as_slice(), 10),
            Err(VpcdError::Truncated {
                expected: 2,
                got: 1
            })
        ));
        assert!(matches!(
            read_frame(&mut [0u8, 5, 1, 2].as_slice(), 10),
            Err(VpcdError::Truncated {
                expected: 5,
                got: 2
            })
        ));
    }

    #[test]
    fn write_frame_refuses_what_two_bytes_cannot_count() {
        let big = vec![0u8; 0x1_0000];
        assert!(matches!(
            write_frame(&mut Vec::new(), &big),
            Err(VpcdError::PayloadTooLong { len: 0x1_0000 })
        ));
    }
}
