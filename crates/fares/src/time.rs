//! Civil time without a date crate: RFC 3339 parsing and local business months.
//!
//! Chinese cities have used UTC+8 without daylight saving since 1991, so a fixed offset per
//! city file is exact for them; pulling in a time-zone database would cost compile time and
//! gate memory for nothing.

use crate::error::{FareError, Result};

pub use onecard_proto::bcd::{civil_from_days, days_from_civil};

fn days_in_month(y: i64, m: u32) -> u32 {
    // Years outside the card's 0..=9999 have no business in a fare file.
    onecard_proto::bcd::days_in_month(y.clamp(0, 9999) as u16, m as u8).into()
}

fn num(s: &str, input: &str) -> Result<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FareError::BadTime(input.to_string(), "expected digits"));
    }
    s.parse()
        .map_err(|_| FareError::BadTime(input.to_string(), "number out of range"))
}

/// Parses an RFC 3339 date-time (`2025-03-01T08:30:00+08:00`, `...Z`, optional fraction)
/// into Unix seconds.
pub fn parse_rfc3339(input: &str) -> Result<i64> {
    let bad = |why| FareError::BadTime(input.to_string(), why);
    let s = input.trim();
    if s.len() < 20 || !s.is_ascii() {
        return Err(bad("expected YYYY-MM-DDTHH:MM:SS and an offset"));
    }
    let b = s.as_bytes();
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad("expected YYYY-MM-DDTHH:MM:SS"));
    }
    let y = i64::from(num(&s[0..4], input)?);
    let mo = num(&s[5..7], input)?;
    let d = num(&s[8..10], input)?;
    let h = num(&s[11..13], input)?;
    let mi = num(&s[14..16], input)?;
    let se = num(&s[17..19], input)?;
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 60
    {
        return Err(bad("field out of range"));
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err(bad("empty fraction"));
        }
        rest = &frac[n..];
    }
    let offset_s: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || !matches!(rb[0], b'+' | b'-') || rb[3] != b':' {
                return Err(bad("expected Z or +HH:MM offset"));
            }
            let oh = i64::from(num(&rest[1..3], input)?);
            let om = i64::from(num(&rest[4..6], input)?);
            if oh > 23 || om > 59 {
                return Err(bad("offset out of range"));
            }
            let v = oh * 3600 + om * 60;
            if rb[0] == b'-' {
                -v
            } else {
                v
            }
        }
    };
    // A leap second is counted as the next second's start; fares do not care.
    let secs = days_from_civil(y, mo, d) * 86_400
        + i64::from(h) * 3600
        + i64::from(mi) * 60
        + i64::from(se);
    Ok(secs - offset_s)
}

/// The local business month `YYYYMM` of a Unix time at a fixed UTC offset.
pub fn local_year_month(unix_s: i64, utc_offset_minutes: i32) -> u32 {
    let local = unix_s + i64::from(utc_offset_minutes) * 60;
    let (y, m, _) = civil_from_days(local.div_euclid(86_400));
    (y.clamp(0, 9999) as u32) * 100 + m
}

/// Local `(days since epoch, seconds of day)` of a Unix time at a fixed offset.
pub fn local_day_and_secs(unix_s: i64, utc_offset_minutes: i32) -> (i64, u32) {
    let local = unix_s + i64::from(utc_offset_minutes) * 60;
    (local.div_euclid(86_400), local.rem_euclid(86_400) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339("2025-03-01T08:00:00+08:00"),
            Ok(1_740_787_200)
        );
        assert_eq!(parse_rfc3339("2025-03-01T00:00:00.250Z"), Ok(1_740_787_200));
        assert!(parse_rfc3339("2025-02-29T00:00:00Z").is_err());
        assert!(parse_rfc3339("2025-13-01T00:00:00Z").is_err());
        assert!(parse_rfc3339("2025-01-01T00:00:00").is_err());
        assert!(parse_rfc3339("二〇二五-01-01T00:00:00Z").is_err());
        for z in [-1000_i64, 0, 19_000, 20_148, 100_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn local_month_crosses_midnight() {
        // 2025-02-28T16:30Z is 2025-03-01 00:30 in Beijing.
        let t = parse_rfc3339("2025-02-28T16:30:00Z").expect("valid");
        assert_eq!(local_year_month(t, 480), 202_503);
        assert_eq!(local_year_month(t, 0), 202_502);
    }
}
