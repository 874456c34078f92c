//! BCD dates and times as the card carries them: date `YYYYMMDD` (4 bytes), time `hhmmss`
//! (3 bytes), and the 7-byte date-time of 0x1A/0x1E records.
//!
//! Values are validated (real calendar dates, 24-hour times) when decoded from a card or a
//! terminal, so nothing downstream ever sees month 13.

use std::fmt;
use thiserror::Error;

/// Why bytes are not a valid BCD date or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BcdError {
    /// A nibble above 9.
    #[error("not BCD: {0:02X}")]
    NotBcd(u8),
    /// Digits that are not a calendar date or a time of day.
    #[error("not a valid date or time: {0}")]
    OutOfRange(&'static str),
}

fn from_bcd(b: u8) -> Result<u8, BcdError> {
    let (h, l) = (b >> 4, b & 15);
    if h > 9 || l > 9 {
        return Err(BcdError::NotBcd(b));
    }
    Ok(h * 10 + l)
}

fn to_bcd(v: u8) -> u8 {
    debug_assert!(v < 100);
    (v / 10) << 4 | (v % 10)
}

/// Days in a month of the proleptic Gregorian calendar.
pub fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
/// The date is not validated: callers pass a real date, or accept the arithmetic answer.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The `(year, month, day)` of a day count since 1970-01-01 (Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// A calendar date, BCD `YYYYMMDD` on the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Year, 0..=9999.
    pub year: u16,
    /// Month, 1..=12.
    pub month: u8,
    /// Day, 1..=31.
    pub day: u8,
}

impl Date {
    /// A validated date.
    pub fn new(year: u16, month: u8, day: u8) -> Result<Date, BcdError> {
        if year > 9999 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month)
        {
            return Err(BcdError::OutOfRange("date"));
        }
        Ok(Date { year, month, day })
    }

    /// Decodes 4 BCD bytes.
    pub fn from_bcd(b: [u8; 4]) -> Result<Date, BcdError> {
        let year = u16::from(from_bcd(b[0])?) * 100 + u16::from(from_bcd(b[1])?);
        Date::new(year, from_bcd(b[2])?, from_bcd(b[3])?)
    }

    /// Encodes as 4 BCD bytes.
    pub fn to_bcd(self) -> [u8; 4] {
        [
            to_bcd((self.year / 100) as u8),
            to_bcd((self.year % 100) as u8),
            to_bcd(self.month),
            to_bcd(self.day),
        ]
    }

    /// `YYYYMMDD` as a number, handy for comparisons and JSON.
    pub fn yyyymmdd(self) -> u32 {
        u32::from(self.year) * 10000 + u32::from(self.month) * 100 + u32::from(self.day)
    }

    /// Days since 1970-01-01 (negative before).
    pub fn days_since_epoch(self) -> i64 {
        days_from_civil(
            i64::from(self.year),
            u32::from(self.month),
            u32::from(self.day),
        )
    }

    /// The date `days` after 1970-01-01, if it lies in years 0..=9999.
    pub fn from_days_since_epoch(days: i64) -> Option<Date> {
        let (year, month, day) = civil_from_days(days);
        Date::new(u16::try_from(year).ok()?, month as u8, day as u8).ok()
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A time of day, BCD `hhmmss` on the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time {
    /// Hour, 0..=23.
    pub hour: u8,
    /// Minute, 0..=59.
    pub minute: u8,
    /// Second, 0..=59.
    pub second: u8,
}

impl Time {
    /// A validated time of day.
    pub fn new(hour: u8, minute: u8, second: u8) -> Result<Time, BcdError> {
        if hour > 23 || minute > 59 || second > 59 {
            return Err(BcdError::OutOfRange("time"));
        }
        Ok(Time {
            hour,
            minute,
            second,
        })
    }

    /// Decodes 3 BCD bytes.
    pub fn from_bcd(b: [u8; 3]) -> Result<Time, BcdError> {
        Time::new(from_bcd(b[0])?, from_bcd(b[1])?, from_bcd(b[2])?)
    }

    /// Encodes as 3 BCD bytes.
    pub fn to_bcd(self) -> [u8; 3] {
        [to_bcd(self.hour), to_bcd(self.minute), to_bcd(self.second)]
    }

    /// `hhmmss` as a number.
    pub fn hhmmss(self) -> u32 {
        u32::from(self.hour) * 10000 + u32::from(self.minute) * 100 + u32::from(self.second)
    }

    /// Seconds since midnight.
    pub fn seconds(self) -> u32 {
        u32::from(self.hour) * 3600 + u32::from(self.minute) * 60 + u32::from(self.second)
    }
}

/// A local date and time as terminals send it to the card (7 BCD bytes in records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    /// The date.
    pub date: Date,
    /// The time of day.
    pub time: Time,
}

impl DateTime {
    /// Decodes 7 BCD bytes `YYYYMMDDhhmmss`.
    pub fn from_bcd(b: [u8; 7]) -> Result<DateTime, BcdError> {
        Ok(DateTime {
            date: Date::from_bcd([b[0], b[1], b[2], b[3]])?,
            time: Time::from_bcd([b[4], b[5], b[6]])?,
        })
    }

    /// Encodes as 7 BCD bytes.
    pub fn to_bcd(self) -> [u8; 7] {
        let d = self.date.to_bcd();
        let t = self.time.to_bcd();
        [d[0], d[1], d[2], d[3], t[0], t[1], t[2]]
    }

    /// The local date-time of a Unix instant seen at `utc_offset_s` (e.g. 28800 for China).
    pub fn from_unix(unix_s: i64, utc_offset_s: i32) -> Option<DateTime> {
        let local = unix_s.checked_add(i64::from(utc_offset_s))?;
        let date = Date::from_days_since_epoch(local.div_euclid(86400))?;
        let sod = local.rem_euclid(86400) as u32;
        let time = Time::new((sod / 3600) as u8, (sod / 60 % 60) as u8, (sod % 60) as u8).ok()?;
        Some(DateTime { date, time })
    }

    /// The Unix instant of this local date-time at `utc_offset_s`.
    pub fn to_unix(self, utc_offset_s: i32) -> i64 {
        self.date.days_since_epoch() * 86400 + i64::from(self.time.seconds())
            - i64::from(utc_offset_s)
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}T{:02}:{:02}:{:02}",
            self.date, self.time.hour, self.time.minute, self.time.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_round_trip_and_validation() {
        let d = Date::from_bcd([0x20, 0x14, 0x08, 0x25]).unwrap();
        assert_eq!(d.yyyymmdd(), 20140825);
        assert_eq!(d.to_bcd(), [0x20, 0x14, 0x08, 0x25]);
        assert_eq!(
            Date::from_bcd([0x20, 0x23, 0x02, 0x29]),
            Err(BcdError::OutOfRange("date"))
        );
        assert!(Date::from_bcd([0x20, 0x24, 0x02, 0x29]).is_ok());
        assert_eq!(
            Date::from_bcd([0x20, 0x1A, 0x01, 0x01]),
            Err(BcdError::NotBcd(0x1A))
        );
        let t = Time::from_bcd([0x10, 0x31, 0x00]).unwrap();
        assert_eq!(t.hhmmss(), 103100);
        assert!(Time::from_bcd([0x24, 0, 0]).is_err());
    }

    #[test]
    fn unix_conversion() {
        // 2026-11-25T08:00:00+08:00 = 2026-11-25T00:00:00Z.
        let dt = DateTime::from_unix(1_795_564_800, 28800).unwrap();
        assert_eq!(dt.to_string(), "2026-11-25T08:00:00");
        assert_eq!(dt.to_unix(28800), 1_795_564_800);
        for days in [-1000i64, 0, 59, 60, 10957, 20000, 2_000_000] {
            assert_eq!(
                Date::from_days_since_epoch(days)
                    .unwrap()
                    .days_since_epoch(),
                days
            );
        }
    }
}
