//! The trace text format: one APDU per line, `>` command or `<` response, hex with optional
//! spaces, `#` comments (whole line or trailing).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use onecard_proto::apdu::{ApduError, CommandRef, MAX_RESPONSE_DATA};
use onecard_proto::hex::{self, HexError};
use thiserror::Error;

/// Largest trace accepted, in bytes. A gate log of a whole day fits many times over; anything
/// bigger is more likely the wrong file than a trace.
pub const MAX_TRACE_BYTES: usize = 16 * 1024 * 1024;

/// Longest line accepted, in bytes, comment included. A maximal short APDU written with a space
/// between every byte takes under 800 characters, which leaves room for a comment.
pub const MAX_LINE_LEN: usize = 4096;

/// Why a trace cannot be read. Every variant about content names its 1-based line.
#[derive(Debug, Error)]
pub enum TraceError {
    /// The file could not be opened or read.
    #[error("cannot read trace {path}: {source}")]
    Io {
        /// The path as given.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The trace is over [`MAX_TRACE_BYTES`].
    #[error("trace is larger than {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// A line is over [`MAX_LINE_LEN`].
    #[error("line {line}: longer than {max} bytes")]
    LineTooLong {
        /// Line number.
        line: usize,
        /// The limit.
        max: usize,
    },
    /// A non-blank line that does not start with `>` or `<`.
    #[error("line {line}: expected '>' (command) or '<' (response) before the hex")]
    NoDirection {
        /// Line number.
        line: usize,
    },
    /// The APDU part of a line holds something other than ASCII hex and spaces.
    #[error("line {line}: {source}")]
    Hex {
        /// Line number.
        line: usize,
        /// What is wrong with the hex.
        source: HexError,
    },
    /// The APDU part holds non-ASCII bytes (a comment may hold anything, after `#`).
    #[error("line {line}: non-ASCII text where hex was expected (start comments with '#')")]
    NotAscii {
        /// Line number.
        line: usize,
    },
    /// A `>` or `<` with no bytes after it.
    #[error("line {line}: no bytes after the direction marker")]
    Empty {
        /// Line number.
        line: usize,
    },
    /// A command that is not a well-formed short APDU.
    #[error("line {line}: malformed command APDU: {source}")]
    Command {
        /// Line number.
        line: usize,
        /// What is wrong with it.
        source: ApduError,
    },
    /// A response shorter than its status word or longer than any short response.
    #[error("line {line}: a response must be 2 to {max} bytes (data and status word), got {len}")]
    Response {
        /// Line number.
        line: usize,
        /// Bytes on the line.
        len: usize,
        /// The largest possible response.
        max: usize,
    },
}

/// Which way an APDU went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `>`: terminal to card.
    Command,
    /// `<`: card to terminal, status word included.
    Response,
}

/// One APDU of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number in the trace text, for reports and errors.
    pub line: usize,
    /// Which way it went.
    pub direction: Direction,
    /// The APDU bytes: a well-formed short command, or response data followed by the SW.
    pub bytes: Vec<u8>,
}

/// A parsed trace: its APDUs in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// The APDUs, in trace order.
    pub entries: Vec<Entry>,
}

impl Trace {
    /// Parses trace text. Works on bytes rather than `str` because comments in real logs are
    /// often not UTF-8 (GBK from Windows card tools); only the APDU part must be ASCII.
    pub fn parse(input: &[u8]) -> Result<Trace, TraceError> {
        if input.len() > MAX_TRACE_BYTES {
            return Err(TraceError::TooLarge {
                max: MAX_TRACE_BYTES,
            });
        }
        let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
        let mut entries = Vec::new();
        for (i, raw) in input.split(|&b| b == b'\n').enumerate() {
            let line = i + 1;
            if raw.len() > MAX_LINE_LEN {
                return Err(TraceError::LineTooLong {
                    line,
                    max: MAX_LINE_LEN,
                });
            }
            let content = match raw.iter().position(|&b| b == b'#') {
                Some(at) => &raw[..at],
                None => raw,
            };
            let content = content.trim_ascii();
            let Some((&marker, rest)) = content.split_first() else {
                continue;
            };
            let direction = match marker {
                b'>' => Direction::Command,
                b'<' => Direction::Response,
                _ => return Err(TraceError::NoDirection { line }),
            };
            let text = std::str::from_utf8(rest)
                .ok()
                .filter(|t| t.is_ascii())
                .ok_or(TraceError::NotAscii { line })?;
            let bytes = hex::decode(text).map_err(|source| TraceError::Hex { line, source })?;
            if bytes.is_empty() {
                return Err(TraceError::Empty { line });
            }
            match direction {
                Direction::Command => {
                    CommandRef::parse(&bytes)
                        .map_err(|source| TraceError::Command { line, source })?;
                }
                Direction::Response => {
                    let max = MAX_RESPONSE_DATA + 2;
                    if !(2..=max).contains(&bytes.len()) {
                        return Err(TraceError::Response {
                            line,
                            len: bytes.len(),
                            max,
                        });
                    }
                }
            }
            entries.push(Entry {
                line,
                direction,
                bytes,
            });
        }
        Ok(Trace { entries })
    }

    /// Reads and parses a trace file, refusing files over [`MAX_TRACE_BYTES`] before reading
    /// them whole.
    pub fn read(path: &Path) -> Result<Trace, TraceError> {
        let io = |source| TraceError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let mut buf = Vec::new();
        // One byte past the limit tells "too large" apart from "exactly at the limit".
        file.take(MAX_TRACE_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(io)?;
        Trace::parse(&buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_and_spaces() {
        let t = Trace::parse(
            b"# header\n\n> 80 5C 00 02 04  # balance\r\n<00001C37 9000\n   # indented\n",
        )
        .expect("valid trace");
        assert_eq!(t.entries.len(), 2);
        assert_eq!(
            t.entries[0],
            Entry {
                line: 3,
                direction: Direction::Command,
                bytes: vec![0x80, 0x5C, 0, 2, 4]
            }
        );
        assert_eq!(t.entries[1].line, 4);
        assert_eq!(t.entries[1].direction, Direction::Response);
    }

    #[test]
    fn errors_name_the_line() {
        let err = |s: &[u8]| Trace::parse(s).expect_err("must fail").to_string();
        assert!(err(b"> 805C000204\n< 9000\nhello\n").starts_with("line 3:"));
        assert!(err(b"> 805C00020\n").starts_with("line 1:"));
        assert!(err(b"\n> 805C0002ZZ\n").starts_with("line 2:"));
        assert!(err(b"> 80\n").contains("malformed command"));
        assert!(err(b"> 805C000204\n< 90\n").starts_with("line 2:"));
        assert!(err(b">\n").contains("no bytes"));
        assert!(err(b"> 80 \xE4\xB8\xAD 5C\n").contains("non-ASCII"));
        let long = vec![b'#'; MAX_LINE_LEN + 1];
        assert!(err(&long).contains("longer than"));
    }

    #[test]
    fn non_utf8_comments_are_fine() {
        let t = Trace::parse(b"> 805C000204 # \xC7\xAE\xB0\xFC\n< 9000\n").expect("valid trace");
        assert_eq!(t.entries.len(), 2);
    }
}
