//! BER-TLV, as far as e-purse FCIs need it: one- and two-byte tags, definite lengths up to
//! 65535, constructed tags parsed recursively on demand.

use thiserror::Error;

/// Why bytes are not well-formed BER-TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TlvError {
    /// The input ended inside a tag, length or value.
    #[error("TLV truncated at offset {0}")]
    Truncated(usize),
    /// Indefinite or over-long length forms are not used in FCIs.
    #[error("unsupported TLV length form at offset {0}")]
    BadLength(usize),
}

/// One TLV element borrowing from its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag, one or two bytes as a number (e.g. `0x6F`, `0x9F0C`).
    pub tag: u16,
    /// The value bytes.
    pub value: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// True if bit 6 of the first tag byte marks a constructed element.
    pub fn is_constructed(&self) -> bool {
        let first = if self.tag > 0xFF {
            (self.tag >> 8) as u8
        } else {
            self.tag as u8
        };
        first & 0x20 != 0
    }

    /// Parses every element at this level of `input`.
    pub fn parse_all(input: &'a [u8]) -> Result<Vec<Tlv<'a>>, TlvError> {
        Tlv::iter(input).collect()
    }

    /// The elements at this level of `input`, parsed lazily; iteration ends after the first
    /// error.
    pub fn iter(input: &'a [u8]) -> impl Iterator<Item = Result<Tlv<'a>, TlvError>> + 'a {
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= input.len() {
                return None;
            }
            match Tlv::parse_one(input, pos) {
                Ok((tlv, next)) => {
                    pos = next;
                    Some(Ok(tlv))
                }
                Err(e) => {
                    pos = input.len();
                    Some(Err(e))
                }
            }
        })
    }

    fn parse_one(input: &'a [u8], mut pos: usize) -> Result<(Tlv<'a>, usize), TlvError> {
        let byte = |p: usize| input.get(p).copied().ok_or(TlvError::Truncated(p));
        let first = byte(pos)?;
        pos += 1;
        let tag = if first & 0x1F == 0x1F {
            let second = byte(pos)?;
            pos += 1;
            if second & 0x80 != 0 {
                return Err(TlvError::BadLength(pos - 1)); // three-byte tags are not used here
            }
            u16::from_be_bytes([first, second])
        } else {
            u16::from(first)
        };
        let len_byte = byte(pos)?;
        pos += 1;
        let len = match len_byte {
            0x00..=0x7F => usize::from(len_byte),
            0x81 => {
                pos += 1;
                usize::from(byte(pos - 1)?)
            }
            0x82 => {
                pos += 2;
                usize::from(u16::from_be_bytes([byte(pos - 2)?, byte(pos - 1)?]))
            }
            _ => return Err(TlvError::BadLength(pos - 1)),
        };
        let end = pos
            .checked_add(len)
            .filter(|&e| e <= input.len())
            .ok_or(TlvError::Truncated(pos))?;
        Ok((
            Tlv {
                tag,
                value: &input[pos..end],
            },
            end,
        ))
    }

    /// Finds the first element with `tag`, searching constructed elements depth-first.
    pub fn find(input: &'a [u8], tag: u16) -> Result<Option<&'a [u8]>, TlvError> {
        for tlv in Tlv::iter(input) {
            let tlv = tlv?;
            if tlv.tag == tag {
                return Ok(Some(tlv.value));
            }
            if tlv.is_constructed() {
                if let Some(v) = Tlv::find(tlv.value, tag)? {
                    return Ok(Some(v));
                }
            }
        }
        Ok(None)
    }
}

/// Appends one TLV element to `out`.
///
/// # Panics
/// If `value` is longer than 65535 bytes (a programming error: FCIs are tiny).
pub fn push_tlv(out: &mut Vec<u8>, tag: u16, value: &[u8]) {
    if tag > 0xFF {
        out.extend_from_slice(&tag.to_be_bytes());
    } else {
        out.push(tag as u8);
    }
    match value.len() {
        0..=0x7F => out.push(value.len() as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, value.len() as u8]),
        n => {
            let n = u16::try_from(n).expect("TLV value over 65535 bytes");
            out.push(0x82);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_t_union_fci() {
        // nfsee mock data of a real T-Union card (B.1.3).
        let fci = hex("6F318408A000000632010105A5259F0801029F0C1E01011000FFFFFFFF0201031051700701047913812019071820401231 0000");
        let df = Tlv::find(&fci, 0x84).unwrap().unwrap();
        assert_eq!(df, &hex("A000000632010105")[..]);
        let issuer = Tlv::find(&fci, 0x9F0C).unwrap().unwrap();
        assert_eq!(issuer.len(), 30);
        let mut built = Vec::new();
        push_tlv(&mut built, 0x9F0C, issuer);
        assert_eq!(Tlv::find(&built, 0x9F0C).unwrap(), Some(issuer));
        assert_eq!(Tlv::find(&fci[..20], 0x9F0C), Err(TlvError::Truncated(2)));
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
