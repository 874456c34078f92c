//! Civil time without a date crate: RFC 3339 parsing and local business months.
//!
//! Chinese cities have used UTC+8 without daylight saving since 1991, so a fixed offset per
//! city file is exact for them; pulling in a time-zone database would cost compile time and
//! gate memory for nothing.

use crate::error::{FareError, Result};

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(year, month, day)` of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
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
