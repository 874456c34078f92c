//! The on-disk frame and the scanner that tells a torn tail from corruption.
//!
//! ```text
//! frame   = len:u32le ‖ seq:u64le ‖ kind:u8 ‖ payload[len] ‖ crc:u32le
//! crc     = CRC-32 (IEEE) over len ‖ seq ‖ kind ‖ payload
//! kind 1  = record: payload is one TapRecord as JSON (no newline)
//! kind 2  = gap: payload is the last lost seq (u64le); `seq` is the first lost one.
//!           Written only by quarantine, so that sequence numbers stay contiguous on disk.
//! ```
//!
//! The sequence number is in the frame (not implied by position) so that recovery can check
//! that every frame sits where it belongs and can resynchronise after a damaged region.

/// Bytes before the payload.
pub(crate) const HEADER: usize = 4 + 8 + 1;
/// Bytes of framing around a payload.
pub(crate) const OVERHEAD: usize = HEADER + 4;
/// Frame kind: a record.
pub(crate) const KIND_RECORD: u8 = 1;
/// Frame kind: a quarantined gap.
pub(crate) const KIND_GAP: u8 = 2;
/// Largest payload recovery will believe, whatever the configuration: a length field above
/// this is damage, and it bounds what a scan allocates.
pub(crate) const HARD_MAX_PAYLOAD: usize = 1 << 20;

/// One frame that checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    /// First (for records: only) seq covered.
    pub seq: u64,
    /// Last seq covered (`seq` for records, the payload for gaps).
    pub last: u64,
    /// Frame kind.
    pub kind: u8,
    /// Payload bytes.
    pub payload: &'a [u8],
    /// Whole frame length in bytes.
    pub len: usize,
}

/// Appends one frame to `out`.
pub(crate) fn encode(seq: u64, kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    // Callers bound payloads far below 4 GiB; the cast cannot truncate.
    let len = payload.len() as u32;
    let start = out.len();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Decodes the frame at the start of `buf`, or says why there is none.
pub(crate) fn decode(buf: &[u8]) -> Result<Frame<'_>, &'static str> {
    if buf.len() < HEADER {
        return Err("truncated frame header");
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > HARD_MAX_PAYLOAD {
        return Err("frame length above the hard limit");
    }
    let mut seq8 = [0u8; 8];
    seq8.copy_from_slice(&buf[4..12]);
    let seq = u64::from_le_bytes(seq8);
    let kind = buf[12];
    if kind != KIND_RECORD && kind != KIND_GAP {
        return Err("unknown frame kind");
    }
    let total = HEADER + len + 4;
    if buf.len() < total {
        return Err("truncated frame");
    }
    let body = &buf[..HEADER + len];
    let crc = u32::from_le_bytes([
        buf[HEADER + len],
        buf[HEADER + len + 1],
        buf[HEADER + len + 2],
        buf[HEADER + len + 3],
    ]);
    if crc32fast::hash(body) != crc {
        return Err("checksum mismatch");
    }
    let payload = &buf[HEADER..HEADER + len];
    let last = if kind == KIND_GAP {
        let p: [u8; 8] = payload
            .try_into()
            .map_err(|_| "gap frame of wrong length")?;
        let last = u64::from_le_bytes(p);
        if last < seq {
            return Err("gap frame ends before it starts");
        }
        last
    } else {
        seq
    };
    Ok(Frame {
        seq,
        last,
        kind,
        payload,
        len: total,
    })
}

/// A frame's place in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placed {
    /// First seq covered.
    pub seq: u64,
    /// Last seq covered.
    pub last: u64,
    /// Frame kind.
    pub kind: u8,
    /// Byte offset in the segment.
    pub offset: usize,
    /// Frame length.
    pub len: usize,
}

/// A damaged region of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    /// First damaged byte.
    pub offset: usize,
    /// One past the last damaged byte (the next good frame, or the end of the file).
    pub end: usize,
    /// What the first bad frame looked like.
    pub reason: &'static str,
    /// Seqs that no good frame covers (`None` when the damage hides none).
    pub lost: Option<(u64, u64)>,
    /// True when no good frame follows in this segment.
    pub to_end: bool,
}

/// What a scan of one segment found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Good frames in order.
    pub frames: Vec<Placed>,
    /// Damaged regions in order.
    pub damage: Vec<Damage>,
    /// The seq the next frame after this segment must carry.
    pub next: u64,
}

/// Scans a segment whose first frame must carry `first`. `limit` is the first seq of the next
/// segment (`None` for the last segment): frames found by resynchronisation must lie below it.
///
/// After a bad frame the scanner looks for the next frame that decodes, carries a plausible
/// seq and passes its CRC. Finding one proves the damage is not a torn tail (a torn append
/// only ever damages the very end), which is what lets `open` refuse to truncate it.
pub(crate) fn scan(buf: &[u8], first: u64, limit: Option<u64>) -> Scan {
    let mut out = Scan {
        next: first,
        ..Scan::default()
    };
    let mut off = 0usize;
    while off < buf.len() {
        let bad = match decode(&buf[off..]) {
            Ok(f) if f.seq == out.next => {
                out.frames.push(Placed {
                    seq: f.seq,
                    last: f.last,
                    kind: f.kind,
                    offset: off,
                    len: f.len,
                });
                out.next = f.last.saturating_add(1);
                off += f.len;
                continue;
            }
            Ok(_) => "frame out of sequence",
            Err(why) => why,
        };
        match resync(buf, off + 1, out.next, limit) {
            Some((at, seq)) => {
                out.damage.push(Damage {
                    offset: off,
                    end: at,
                    reason: bad,
                    lost: (seq > out.next).then(|| (out.next, seq - 1)),
                    to_end: false,
                });
                out.next = seq;
                off = at;
            }
            None => {
                let lost = match limit {
                    Some(l) if l > out.next => Some((out.next, l - 1)),
                    _ => None,
                };
                out.damage.push(Damage {
                    offset: off,
                    end: buf.len(),
                    reason: bad,
                    lost,
                    to_end: true,
                });
                if let Some((_, last)) = lost {
                    out.next = last + 1;
                }
                break;
            }
        }
    }
    out
}

/// The first offset at or after `from` holding a good frame with a seq in `[min, limit)`.
fn resync(buf: &[u8], from: usize, min: u64, limit: Option<u64>) -> Option<(usize, u64)> {
    // Seqs grow by one per frame of at least OVERHEAD bytes, which bounds how far ahead a
    // genuine seq can be and filters out nearly every false candidate before the CRC.
    let most_ahead = (buf.len() / OVERHEAD) as u64 + 1;
    let max = limit
        .unwrap_or(u64::MAX)
        .min(min.saturating_add(most_ahead));
    (from..buf.len()).find_map(|o| {
        let h = buf.get(o..o + HEADER)?;
        let mut seq8 = [0u8; 8];
        seq8.copy_from_slice(&h[4..12]);
        let seq = u64::from_le_bytes(seq8);
        // Cheap header checks first so the CRC runs only on real candidates.
        if !(min..max).contains(&seq) || (h[12] != KIND_RECORD && h[12] != KIND_GAP) {
            return None;
        }
        match decode(&buf[o..]) {
            Ok(f) => Some((o, f.seq)),
            Err(_) => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(first: u64, n: u64) -> (Vec<u8>, Vec<usize>) {
        let mut buf = Vec::new();
        let mut starts = Vec::new();
        for s in first..first + n {
            starts.push(buf.len());
            encode(
                s,
                KIND_RECORD,
                format!("{{\"n\":{s}}}").as_bytes(),
                &mut buf,
            );
        }
        (buf, starts)
    }

    #[test]
    fn clean_scan() {
        let (buf, _) = segment(5, 4);
        let s = scan(&buf, 5, None);
        assert_eq!(s.frames.len(), 4);
        assert!(s.damage.is_empty());
        assert_eq!(s.next, 9);
    }

    #[test]
    fn torn_tail_has_no_resync() {
        let (buf, starts) = segment(1, 3);
        for cut in starts[2]..buf.len() {
            let s = scan(&buf[..cut], 1, None);
            assert_eq!(s.frames.len(), 2, "cut {cut}");
            if cut == starts[2] {
                assert!(s.damage.is_empty());
            } else {
                assert_eq!(s.damage.len(), 1);
                assert!(s.damage[0].to_end);
                assert_eq!(s.damage[0].offset, starts[2]);
            }
        }
    }

    #[test]
    fn middle_damage_resyncs() {
        let (mut buf, starts) = segment(1, 5);
        buf[starts[1] + HEADER + 2] ^= 0x40;
        let s = scan(&buf, 1, None);
        assert_eq!(s.frames.len(), 4);
        assert_eq!(s.damage.len(), 1);
        let d = &s.damage[0];
        assert!(!d.to_end);
        assert_eq!((d.offset, d.end), (starts[1], starts[2]));
        assert_eq!(d.lost, Some((2, 2)));
        assert_eq!(s.next, 6);
    }

    #[test]
    fn gap_frames() {
        let mut buf = Vec::new();
        encode(1, KIND_RECORD, b"{}", &mut buf);
        encode(2, KIND_GAP, &4u64.to_le_bytes(), &mut buf);
        encode(5, KIND_RECORD, b"{}", &mut buf);
        let s = scan(&buf, 1, None);
        assert!(s.damage.is_empty());
        assert_eq!(s.next, 6);
        assert_eq!(s.frames[1].last, 4);
    }
}
