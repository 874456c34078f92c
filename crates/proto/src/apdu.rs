//! ISO 7816-4 command and response APDUs (short Lc/Le, all four cases).

use crate::sw::StatusWord;
use thiserror::Error;

/// Largest command data field in a short APDU.
pub const MAX_LC: usize = 255;
/// Largest short command APDU on the wire: header, Lc, 255 data bytes, Le.
pub const MAX_COMMAND_LEN: usize = 4 + 1 + MAX_LC + 1;
/// Largest response data in a short APDU (Le = 00 means 256).
pub const MAX_RESPONSE_DATA: usize = 256;

/// Why bytes are not a well-formed short command APDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ApduError {
    /// Fewer than the four header bytes.
    #[error("APDU shorter than its 4-byte header ({0} bytes)")]
    TooShort(usize),
    /// Longer than any short APDU can be.
    #[error("APDU of {0} bytes is longer than a short APDU can be")]
    TooLong(usize),
    /// The body length matches none of the four ISO 7816-4 cases.
    #[error("APDU body of {body} bytes does not match Lc = {lc}")]
    LengthMismatch {
        /// The Lc byte.
        lc: u8,
        /// Bytes after the header.
        body: usize,
    },
    /// Extended-length APDUs (Lc = 00 followed by two bytes) are not used by e-purse cards.
    #[error("extended-length APDUs are not supported")]
    Extended,
    /// A response shorter than its two status bytes.
    #[error("response shorter than its 2 status bytes")]
    ResponseTooShort,
}

/// A parsed command APDU, borrowing its data from the bytes it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandRef<'a> {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (empty for cases 1 and 2).
    pub data: &'a [u8],
    /// Expected response length: `None` for cases 1 and 3, `Some(256)` for Le = 00.
    pub le: Option<u16>,
}

impl<'a> CommandRef<'a> {
    /// Parses a short command APDU of any of the four cases.
    pub fn parse(bytes: &'a [u8]) -> Result<CommandRef<'a>, ApduError> {
        if bytes.len() < 4 {
            return Err(ApduError::TooShort(bytes.len()));
        }
        if bytes.len() > MAX_COMMAND_LEN {
            return Err(ApduError::TooLong(bytes.len()));
        }
        let (cla, ins, p1, p2) = (bytes[0], bytes[1], bytes[2], bytes[3]);
        let body = &bytes[4..];
        let le_of = |b: u8| if b == 0 { 256 } else { u16::from(b) };
        let (data, le) = match body.len() {
            0 => (&body[..0], None),
            1 => (&body[..0], Some(le_of(body[0]))),
            n => {
                let lc = body[0] as usize;
                if lc == 0 {
                    return Err(ApduError::Extended);
                }
                if n == 1 + lc {
                    (&body[1..], None)
                } else if n == 2 + lc {
                    (&body[1..1 + lc], Some(le_of(body[1 + lc])))
                } else {
                    return Err(ApduError::LengthMismatch {
                        lc: body[0],
                        body: n,
                    });
                }
            }
        };
        Ok(CommandRef {
            cla,
            ins,
            p1,
            p2,
            data,
            le,
        })
    }
}

/// An owned command APDU, as a terminal builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data; at most [`MAX_LC`] bytes.
    pub data: Vec<u8>,
    /// Expected response length (`Some(256)` is encoded as `00`).
    pub le: Option<u16>,
}

impl Command {
    /// A command with the given header, data and Le.
    ///
    /// # Panics
    /// If `data` is longer than 255 bytes or `le` above 256: terminal code builds commands from
    /// fixed-size fields, so that would be a programming error, not an input error.
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8], le: Option<u16>) -> Command {
        assert!(data.len() <= MAX_LC, "short APDU data over 255 bytes");
        assert!(le.is_none_or(|l| (1..=256).contains(&l)), "Le out of range");
        Command {
            cla,
            ins,
            p1,
            p2,
            data: data.to_vec(),
            le,
        }
    }

    /// Appends the wire form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if !self.data.is_empty() {
            out.push(self.data.len() as u8);
            out.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            out.push(le as u8); // 256 encodes as 00
        }
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(6 + self.data.len());
        self.encode_into(&mut out);
        out
    }

    /// A borrowed view, as the card side sees it.
    pub fn as_ref(&self) -> CommandRef<'_> {
        CommandRef {
            cla: self.cla,
            ins: self.ins,
            p1: self.p1,
            p2: self.p2,
            data: &self.data,
            le: self.le,
        }
    }
}

/// A response APDU: data and status word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Response data.
    pub data: Vec<u8>,
    /// Status word.
    pub sw: StatusWord,
}

impl Response {
    /// Splits wire bytes into data and status word.
    pub fn parse(bytes: &[u8]) -> Result<Response, ApduError> {
        if bytes.len() < 2 {
            return Err(ApduError::ResponseTooShort);
        }
        let (data, sw) = bytes.split_at(bytes.len() - 2);
        Ok(Response {
            data: data.to_vec(),
            sw: StatusWord::from_u16(u16::from_be_bytes([sw[0], sw[1]])),
        })
    }

    /// Splits wire bytes into data and status word, reusing the buffer.
    pub fn from_vec(mut bytes: Vec<u8>) -> Result<Response, ApduError> {
        if bytes.len() < 2 {
            return Err(ApduError::ResponseTooShort);
        }
        let n = bytes.len() - 2;
        let sw = StatusWord::from_u16(u16::from_be_bytes([bytes[n], bytes[n + 1]]));
        bytes.truncate(n);
        Ok(Response { data: bytes, sw })
    }

    /// A response with only a status word.
    pub fn status(sw: StatusWord) -> Response {
        Response {
            data: Vec::new(),
            sw,
        }
    }

    /// The wire form: data then SW1 SW2.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.sw.to_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_cases() {
        let c1 = CommandRef::parse(&[0x00, 0xA4, 0x04, 0x00]).unwrap();
        assert_eq!((c1.data.len(), c1.le), (0, None));
        let c2 = CommandRef::parse(&[0x80, 0x5C, 0x00, 0x02, 0x04]).unwrap();
        assert_eq!((c2.data.len(), c2.le), (0, Some(4)));
        let c3 = CommandRef::parse(&[0x84, 0x1E, 0x00, 0x00, 0x04, 1, 2, 3, 4]).unwrap();
        assert_eq!((c3.data, c3.le), (&[1u8, 2, 3, 4][..], None));
        let c4 = CommandRef::parse(&[0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00, 0x00]).unwrap();
        assert_eq!((c4.data, c4.le), (&[0x3Fu8, 0x00][..], Some(256)));
        assert_eq!(CommandRef::parse(&[0, 1, 2]), Err(ApduError::TooShort(3)));
        assert!(matches!(
            CommandRef::parse(&[0, 1, 2, 3, 5, 1]),
            Err(ApduError::LengthMismatch { .. })
        ));
        assert_eq!(
            CommandRef::parse(&[0, 1, 2, 3, 0, 1, 1]),
            Err(ApduError::Extended)
        );
    }

    #[test]
    fn encode_round_trip() {
        let c = Command::new(0x80, 0x50, 0x03, 0x02, &[0u8; 11], Some(15));
        let bytes = c.to_bytes();
        assert_eq!(bytes.len(), 4 + 1 + 11 + 1);
        assert_eq!(CommandRef::parse(&bytes).unwrap(), c.as_ref());
        let r = Response::parse(&[1, 2, 0x94, 0x01]).unwrap();
        assert_eq!(r.sw, StatusWord::InsufficientBalance);
        assert_eq!(r.to_bytes(), vec![1, 2, 0x94, 0x01]);
    }
}
