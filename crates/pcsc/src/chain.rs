//! ISO 7816-4 response chaining over a raw exchange, independent of PC/SC so it can be
//! tested without a reader.
//!
//! On T=0 the card cannot send response data in the same exchange as command data (the
//! TPDU has no room for Le on a case-4 command), so it answers `61 xx` ("xx bytes waiting")
//! and the terminal fetches them with GET RESPONSE `00 C0 00 00 xx`; or it answers `6C xx`
//! ("wrong Le, exactly xx available") and the terminal repeats the command with Le = xx.

use onecard_proto::TransportError;

/// At most this many exchanges for one command: enough for 256 bytes fetched in small
/// GET RESPONSE pieces, small enough that a card that answers `61 xx` forever cannot hang
/// the terminal.
pub const MAX_EXCHANGES: usize = 16;

/// The most response data accumulated over GET RESPONSE chains before giving up: a
/// short-APDU e-purse never sends more than 256.
pub const MAX_CHAINED_DATA: usize = 4096;

/// Sends `command` through `raw` and resolves `61 xx` / `6C xx` answers; returns the final
/// response (all data fetched so far ‖ the last status word).
pub fn exchange<F>(mut raw: F, command: &[u8]) -> Result<Vec<u8>, TransportError>
where
    F: FnMut(&[u8]) -> Result<Vec<u8>, TransportError>,
{
    let mut data: Vec<u8> = Vec::new();
    let mut next: Vec<u8> = command.to_vec();
    let mut resent_with_le = false;
    for _ in 0..MAX_EXCHANGES {
        let rsp = raw(&next)?;
        let Some((sw1, sw2)) = status(&rsp) else {
            // No status word: the card never answered (see `PcscTransport::transmit`).
            return Err(TransportError::CardLost);
        };
        let body = &rsp[..rsp.len() - 2];
        match sw1 {
            0x61 => {
                data.extend_from_slice(body);
                if data.len() > MAX_CHAINED_DATA {
                    return Err(TransportError::Reader(format!(
                        "card chained more than {MAX_CHAINED_DATA} bytes of response data"
                    )));
                }
                next = vec![0x00, 0xC0, 0x00, 0x00, sw2];
            }
            // Resending with a corrected Le is done once: a card that keeps changing its
            // mind gets its 6Cxx passed back to the caller.
            0x6C if !resent_with_le && data.is_empty() => match with_le(command, sw2) {
                Some(fixed) => {
                    resent_with_le = true;
                    next = fixed;
                }
                None => return Ok(rsp),
            },
            _ => {
                if data.is_empty() {
                    return Ok(rsp);
                }
                data.extend_from_slice(&rsp);
                return Ok(data);
            }
        }
    }
    Err(TransportError::Reader(format!(
        "no final status word after {MAX_EXCHANGES} exchanges"
    )))
}

fn status(rsp: &[u8]) -> Option<(u8, u8)> {
    match rsp {
        [.., sw1, sw2] => Some((*sw1, *sw2)),
        _ => None,
    }
}

/// The short command `command` with its Le set to `le` (added for cases 1 and 3, replaced
/// for cases 2 and 4). `None` if `command` is not a well-formed short APDU.
pub fn with_le(command: &[u8], le: u8) -> Option<Vec<u8>> {
    let mut out = command.to_vec();
    match command.len() {
        0..=3 => return None,
        // Case 1: header only.
        4 => out.push(le),
        // Case 2: header ‖ Le.
        5 => out[4] = le,
        n => {
            let lc = usize::from(command[4]);
            if lc == 0 {
                // Lc = 0 would announce extended length: not handled here.
                return None;
            }
            if n == 5 + lc {
                out.push(le);
            } else if n == 6 + lc {
                out[n - 1] = le;
            } else {
                return None;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A scripted card: checks each command it receives and answers from the script.
    fn scripted(
        script: Vec<(&'static [u8], &'static [u8])>,
    ) -> impl FnMut(&[u8]) -> Result<Vec<u8>, TransportError> {
        let mut script: VecDeque<_> = script.into();
        move |cmd: &[u8]| {
            let (want, rsp) = script.pop_front().expect("unexpected extra exchange");
            assert_eq!(cmd, want);
            Ok(rsp.to_vec())
        }
    }

    #[test]
    fn direct_answer_passes_through() {
        let raw = scripted(vec![(
            &[0x80, 0x5C, 0x00, 0x02, 0x04],
            &[0, 0, 1, 0, 0x90, 0],
        )]);
        assert_eq!(
            exchange(raw, &[0x80, 0x5C, 0x00, 0x02, 0x04]).expect("ok"),
            [0, 0, 1, 0, 0x90, 0]
        );
    }

    #[test]
    fn get_response_collects_61xx_chains() {
        let raw = scripted(vec![
            (&[0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00], &[0x61, 0x04]),
            (&[0x00, 0xC0, 0x00, 0x00, 0x04], &[1, 2, 0x61, 0x02]),
            (&[0x00, 0xC0, 0x00, 0x00, 0x02], &[3, 4, 0x90, 0x00]),
        ]);
        assert_eq!(
            exchange(raw, &[0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00]).expect("ok"),
            [1, 2, 3, 4, 0x90, 0x00]
        );
    }

    #[test]
    fn wrong_le_is_corrected_once() {
        let raw = scripted(vec![
            (&[0x00, 0xB0, 0x95, 0x00, 0x00], &[0x6C, 0x1E]),
            (&[0x00, 0xB0, 0x95, 0x00, 0x1E], &[7, 0x90, 0x00]),
        ]);
        assert_eq!(
            exchange(raw, &[0x00, 0xB0, 0x95, 0x00, 0x00]).expect("ok"),
            [7, 0x90, 0x00]
        );
        let raw = scripted(vec![
            (&[0x00, 0xB0, 0x95, 0x00, 0x00], &[0x6C, 0x1E]),
            (&[0x00, 0xB0, 0x95, 0x00, 0x1E], &[0x6C, 0x10]),
        ]);
        assert_eq!(
            exchange(raw, &[0x00, 0xB0, 0x95, 0x00, 0x00]).expect("ok"),
            [0x6C, 0x10]
        );
    }

    #[test]
    fn wrong_le_then_get_response() {
        let raw = scripted(vec![
            (&[0x80, 0x5C, 0x00, 0x02, 0x00], &[0x6C, 0x04]),
            (&[0x80, 0x5C, 0x00, 0x02, 0x04], &[0x61, 0x04]),
            (&[0x00, 0xC0, 0x00, 0x00, 0x04], &[0, 0, 0, 9, 0x90, 0x00]),
        ]);
        assert_eq!(
            exchange(raw, &[0x80, 0x5C, 0x00, 0x02, 0x00]).expect("ok"),
            [0, 0, 0, 9, 0x90, 0x00]
        );
    }

    #[test]
    fn endless_61xx_is_bounded() {
        let mut calls = 0;
        let raw = |_: &[u8]| {
            calls += 1;
            Ok(vec![0x61, 0x00])
        };
        assert!(matches!(
            exchange(raw, &[0x00, 0xC0, 0x00, 0x00, 0x00]),
            Err(TransportError::Reader(_))
        ));
        assert_eq!(calls, MAX_EXCHANGES);
    }

    #[test]
    fn oversized_chain_is_refused() {
        let raw = |_: &[u8]| {
            let mut r = vec![0u8; 1024];
            r.extend_from_slice(&[0x61, 0x00]);
            Ok(r)
        };
        assert!(matches!(
            exchange(raw, &[0x00, 0xB0, 0x95, 0x00, 0x00]),
            Err(TransportError::Reader(_))
        ));
    }

    #[test]
    fn short_answers_are_lost_answers_and_errors_propagate() {
        assert!(matches!(
            exchange(|_: &[u8]| Ok(vec![0x90]), &[0, 0xA4, 0, 0]),
            Err(TransportError::CardLost)
        ));
        assert!(matches!(
            exchange(|_: &[u8]| Ok(Vec::new()), &[0, 0xA4, 0, 0]),
            Err(TransportError::CardLost)
        ));
        assert!(matches!(
            exchange(|_: &[u8]| Err(TransportError::CardLost), &[0, 0xA4, 0, 0]),
            Err(TransportError::CardLost)
        ));
    }

    #[test]
    fn le_is_set_for_every_short_case() {
        assert_eq!(with_le(&[0, 0xB0, 0, 0], 9), Some(vec![0, 0xB0, 0, 0, 9]));
        assert_eq!(
            with_le(&[0, 0xB0, 0, 0, 0], 9),
            Some(vec![0, 0xB0, 0, 0, 9])
        );
        assert_eq!(
            with_le(&[0, 0xA4, 4, 0, 1, 0xAA], 9),
            Some(vec![0, 0xA4, 4, 0, 1, 0xAA, 9])
        );
        assert_eq!(
            with_le(&[0, 0xA4, 4, 0, 1, 0xAA, 0], 9),
            Some(vec![0, 0xA4, 4, 0, 1, 0xAA, 9])
        );
        assert_eq!(with_le(&[0, 0xA4, 4], 9), None);
        assert_eq!(with_le(&[0, 0xA4, 4, 0, 0, 0, 1], 9), None);
        assert_eq!(with_le(&[0, 0xA4, 4, 0, 5, 1], 9), None);
    }
}
