//! Calendar days and timestamps as PostgreSQL stores them in binary form,
//! so rehearse can send and read `date` and `timestamptz` without a date
//! library: a day is a count of days since 2000-01-01.

use std::error::Error as StdError;
use std::fmt;

use tokio_postgres::types::{accepts, to_sql_checked, FromSql, IsNull, ToSql, Type};

/// A calendar day: days since 2000-01-01 (PostgreSQL's epoch).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(into = "String", try_from = "String")]
pub struct Day(pub i32);

impl From<Day> for String {
    fn from(d: Day) -> String {
        d.to_string()
    }
}

impl TryFrom<String> for Day {
    type Error = String;
    fn try_from(s: String) -> Result<Day, String> {
        s.parse()
    }
}

/// A `timestamptz`: microseconds since 2000-01-01 00:00 UTC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// Days from 1970-01-01 to 2000-01-01.
const UNIX_TO_PG: i64 = 10_957;

impl Day {
    /// The day for a proleptic Gregorian date (H. Hinnant's days_from_civil).
    pub fn from_ymd(y: i32, m: u32, d: u32) -> Day {
        let y = if m <= 2 { y - 1 } else { y } as i64;
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = y - era * 400;
        let m = m as i64;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Day((era * 146_097 + doe - 719_468 - UNIX_TO_PG) as i32)
    }

    /// Year, month (1-12) and day of month.
    pub fn ymd(self) -> (i32, u32, u32) {
        let z = self.0 as i64 + UNIX_TO_PG + 719_468;
        let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = (yoe + era * 400 + if m <= 2 { 1 } else { 0 }) as i32;
        (y, m, d)
    }

    /// 0 = Monday ... 6 = Sunday.
    pub fn weekday(self) -> u32 {
        // 2000-01-01 was a Saturday (5).
        ((self.0 as i64 + 5).rem_euclid(7)) as u32
    }

    /// 1-based day of the year.
    pub fn day_of_year(self) -> u32 {
        let (y, _, _) = self.ymd();
        (self.0 - Day::from_ymd(y, 1, 1).0 + 1) as u32
    }

    pub fn plus(self, days: i32) -> Day {
        Day(self.0 + days)
    }

    /// The first day of this day's month, and the first day of the next.
    pub fn month_bounds(self) -> (Day, Day) {
        let (y, m, _) = self.ymd();
        let next = if m == 12 {
            Day::from_ymd(y + 1, 1, 1)
        } else {
            Day::from_ymd(y, m + 1, 1)
        };
        (Day::from_ymd(y, m, 1), next)
    }

    /// Midnight UTC at the start of this day, plus `seconds`.
    pub fn at(self, seconds: i64) -> Timestamp {
        Timestamp(self.0 as i64 * 86_400_000_000 + seconds * 1_000_000)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl std::str::FromStr for Day {
    type Err = String;
    /// `YYYY-MM-DD`, checked to be a real date.
    fn from_str(s: &str) -> Result<Day, String> {
        let bad = || format!("{s:?} is not a date of the form YYYY-MM-DD");
        let mut parts = s.trim().splitn(3, '-');
        let y: i32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let m: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let d: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let day = Day::from_ymd(y, m, d);
        if day.ymd() != (y, m, d) {
            return Err(bad());
        }
        Ok(day)
    }
}

impl ToSql for Day {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        bytes::BufMut::put_i32(out, self.0);
        Ok(IsNull::No)
    }
    accepts!(DATE);
    to_sql_checked!();
}

impl<'a> FromSql<'a> for Day {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Day, Box<dyn StdError + Sync + Send>> {
        let b: [u8; 4] = raw.try_into().map_err(|_| "date value is not 4 bytes")?;
        Ok(Day(i32::from_be_bytes(b)))
    }
    accepts!(DATE);
}

impl ToSql for Timestamp {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        bytes::BufMut::put_i64(out, self.0);
        Ok(IsNull::No)
    }
    accepts!(TIMESTAMPTZ, TIMESTAMP);
    to_sql_checked!();
}

/// UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso_utc(t: std::time::SystemTime) -> String {
    let s = t
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let day = Day((s.div_euclid(86_400) - 10_957) as i32);
    let (y, m, d) = day.ymd();
    let r = s.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        r / 3600,
        r % 3600 / 60,
        r % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_dates_round_trip() {
        assert_eq!(Day::from_ymd(2000, 1, 1), Day(0));
        assert_eq!(Day::from_ymd(1999, 12, 31), Day(-1));
        assert_eq!(Day::from_ymd(2024, 2, 29).to_string(), "2024-02-29");
        for n in -800_000..800_000 {
            if n % 997 == 0 {
                let (y, m, d) = Day(n).ymd();
                assert_eq!(Day::from_ymd(y, m, d), Day(n));
            }
        }
    }

    #[test]
    fn weekday_and_day_of_year() {
        assert_eq!(Day::from_ymd(2026, 11, 24).weekday(), 1, "a Tuesday");
        assert_eq!(Day::from_ymd(2000, 1, 1).weekday(), 5, "a Saturday");
        assert_eq!(Day::from_ymd(2026, 12, 31).day_of_year(), 365);
        assert_eq!(Day::from_ymd(2024, 12, 31).day_of_year(), 366);
    }

    #[test]
    fn parsing_rejects_impossible_dates() {
        assert_eq!(
            "2026-10-31".parse::<Day>().unwrap(),
            Day::from_ymd(2026, 10, 31)
        );
        assert!("2026-02-30".parse::<Day>().is_err());
        assert!("2026-13-01".parse::<Day>().is_err());
        assert!("yesterday".parse::<Day>().is_err());
    }

    #[test]
    fn month_bounds_cross_the_year() {
        let (a, b) = Day::from_ymd(2026, 12, 15).month_bounds();
        assert_eq!(
            (a.to_string(), b.to_string()),
            ("2026-12-01".into(), "2027-01-01".into())
        );
    }
}
