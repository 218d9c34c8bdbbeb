//! Calendar buckets of event time in a named time zone (hour, day, week, month, year),
//! correct across daylight-saving changes: a bucket is the span between two local
//! boundaries, however long that is in real time.

use crate::aggregation::KeyPart;
use compact_str::CompactString;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use std::fmt::Write;

/// A calendar function of the event time, usable as a group key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimeKey {
    /// `hour(event_time)`: the local hour, 0 to 23.
    Hour,
    /// `day(event_time)`: the local date, `YYYY-MM-DD`.
    Day,
    /// `week(event_time)`: the local date of the week's Monday, `YYYY-MM-DD`.
    Week,
    /// `month(event_time)`: the local month, 1 to 12.
    Month,
    /// `year(event_time)`: the local year.
    Year,
}

impl TimeKey {
    /// Reads `hour(event_time)`, `day(event_time)`, `week(event_time)`,
    /// `month(event_time)` or `year(event_time)`.
    pub fn parse(expr: &str) -> Option<TimeKey> {
        let compact: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
        Some(match compact.as_str() {
            "hour(event_time)" => TimeKey::Hour,
            "day(event_time)" => TimeKey::Day,
            "week(event_time)" => TimeKey::Week,
            "month(event_time)" => TimeKey::Month,
            "year(event_time)" => TimeKey::Year,
            _ => return None,
        })
    }

    /// Checks a set of time keys: each must be pinned to one span of real time, or the
    /// group would merge the same month of different years (say).
    pub fn check_combination(keys: &[TimeKey]) -> Result<(), String> {
        let has = |k| keys.contains(&k);
        if has(TimeKey::Month) && !has(TimeKey::Year) {
            return Err("month(event_time) without year(event_time) would merge the same month of different years: add a year(event_time) key".into());
        }
        if has(TimeKey::Hour) && !has(TimeKey::Day) {
            return Err("hour(event_time) without day(event_time) would merge the same hour of different days: add a day(event_time) key".into());
        }
        if has(TimeKey::Week) && (has(TimeKey::Month) || has(TimeKey::Year)) {
            return Err("week(event_time) does not combine with month or year (a week can span two); use day(event_time) instead".into());
        }
        Ok(())
    }
}

/// The local calendar bucket an instant falls in.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// First instant of the bucket (microseconds since 1970 UTC).
    pub start: i64,
    /// First instant after the bucket.
    pub end: i64,
    year: i64,
    month: i64,
    hour: i64,
    date: CompactString,
    monday: CompactString,
}

impl Bucket {
    /// The value of time key `key` for every instant of this bucket.
    pub fn key(&self, key: TimeKey) -> KeyPart {
        match key {
            TimeKey::Hour => KeyPart::Int(self.hour),
            TimeKey::Day => KeyPart::Str(self.date.clone()),
            TimeKey::Week => KeyPart::Str(self.monday.clone()),
            TimeKey::Month => KeyPart::Int(self.month),
            TimeKey::Year => KeyPart::Int(self.year),
        }
    }
}

/// Finds buckets of one size in one time zone, remembering the last few.
pub struct Calendar {
    tz: TimeZone,
    unit: TimeKey,
    recent: Vec<Bucket>,
}

const REMEMBERED: usize = 4;

impl Calendar {
    /// A calendar of `unit`-sized buckets in the IANA time zone `time_zone`.
    pub fn new(time_zone: &str, unit: TimeKey) -> Result<Calendar, String> {
        let tz = TimeZone::get(time_zone).map_err(|e| {
            format!("unknown time zone `{time_zone}` ({e}): use an IANA name such as UTC or Europe/Berlin")
        })?;
        Ok(Calendar {
            tz,
            unit,
            recent: Vec::with_capacity(REMEMBERED),
        })
    }

    /// The bucket holding instant `t` (microseconds since 1970 UTC).
    pub fn bucket(&mut self, t: i64) -> Result<&Bucket, String> {
        if let Some(i) = self.recent.iter().position(|b| b.start <= t && t < b.end) {
            return Ok(&self.recent[i]);
        }
        let bucket = self
            .compute(t)
            .map_err(|e| format!("event time {t} µs: {e}"))?;
        if self.recent.len() == REMEMBERED {
            self.recent.remove(0);
        }
        self.recent.push(bucket);
        Ok(&self.recent[self.recent.len() - 1])
    }

    fn compute(&self, t: i64) -> Result<Bucket, jiff::Error> {
        let z = Timestamp::from_microsecond(t)?.to_zoned(self.tz.clone());
        let date = z.date();
        let start_of = |d: Date| -> Result<i64, jiff::Error> {
            Ok(d.to_zoned(self.tz.clone())?.timestamp().as_microsecond())
        };
        let (start, end) = match self.unit {
            TimeKey::Hour => {
                // From the first instant the local clock shows hh:00 to the first it shows the
                // next hour: two real hours when the clocks go back and repeat this one.
                let hour = z.hour();
                let local = |h: i8| -> Result<i64, jiff::Error> {
                    let ts = self
                        .tz
                        .to_ambiguous_timestamp(date.at(h, 0, 0, 0))
                        .earlier()?;
                    Ok(ts.as_microsecond())
                };
                let end = if hour == 23 {
                    start_of(date.tomorrow()?)?
                } else {
                    local(hour + 1)?
                };
                (local(hour)?, end)
            }
            TimeKey::Day => (start_of(date)?, start_of(date.tomorrow()?)?),
            TimeKey::Week => {
                let monday = monday_of(date)?;
                (start_of(monday)?, start_of(monday.checked_add(7.days())?)?)
            }
            TimeKey::Month => (
                start_of(date.first_of_month())?,
                start_of(date.last_of_month().tomorrow()?)?,
            ),
            TimeKey::Year => (
                start_of(date.first_of_year())?,
                start_of(date.last_of_year().tomorrow()?)?,
            ),
        };
        Ok(Bucket {
            start,
            end,
            year: i64::from(date.year()),
            month: i64::from(date.month()),
            hour: i64::from(z.hour()),
            date: ymd(date),
            monday: ymd(monday_of(date)?),
        })
    }
}

fn monday_of(date: Date) -> Result<Date, jiff::Error> {
    let back = i64::from(date.weekday().to_monday_zero_offset());
    date.checked_sub(back.days())
}

fn ymd(d: Date) -> CompactString {
    let mut s = String::with_capacity(10);
    let _ = write!(s, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day());
    CompactString::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        s.parse::<Timestamp>().expect("time").as_microsecond()
    }

    const HOUR: i64 = 3_600_000_000;

    #[test]
    fn daylight_saving_days_are_23_and_25_hours_long() {
        let mut berlin = Calendar::new("Europe/Berlin", TimeKey::Day).expect("zone");
        // 2025-03-30: clocks go from 02:00 to 03:00 in Berlin.
        let spring = berlin
            .bucket(at("2025-03-30T12:00:00Z"))
            .expect("bucket")
            .clone();
        assert_eq!(spring.end - spring.start, 23 * HOUR);
        assert_eq!(spring.start, at("2025-03-29T23:00:00Z"));
        assert_eq!(spring.key(TimeKey::Day), KeyPart::Str("2025-03-30".into()));
        // 2025-10-26: clocks go from 03:00 back to 02:00.
        let autumn = berlin
            .bucket(at("2025-10-26T12:00:00Z"))
            .expect("bucket")
            .clone();
        assert_eq!(autumn.end - autumn.start, 25 * HOUR);
        // 23:30 UTC on the 26th is already the 27th in Berlin.
        let next = berlin.bucket(at("2025-10-26T23:30:00Z")).expect("bucket");
        assert_eq!(next.key(TimeKey::Day), KeyPart::Str("2025-10-27".into()));
    }

    #[test]
    fn month_and_year_boundaries() {
        let mut utc = Calendar::new("UTC", TimeKey::Month).expect("zone");
        let dec = utc
            .bucket(at("2024-12-31T23:59:59.999999Z"))
            .expect("bucket")
            .clone();
        assert_eq!(
            (dec.key(TimeKey::Year), dec.key(TimeKey::Month)),
            (KeyPart::Int(2024), KeyPart::Int(12))
        );
        assert_eq!(dec.end, at("2025-01-01T00:00:00Z"));
        let jan = utc
            .bucket(at("2025-01-01T00:00:00Z"))
            .expect("bucket")
            .clone();
        assert_eq!(
            (jan.key(TimeKey::Year), jan.key(TimeKey::Month)),
            (KeyPart::Int(2025), KeyPart::Int(1))
        );
        let feb = utc
            .bucket(at("2024-02-10T00:00:00Z"))
            .expect("bucket")
            .clone();
        assert_eq!(feb.end - feb.start, 29 * 24 * HOUR, "2024 is a leap year");
        let mut years = Calendar::new("UTC", TimeKey::Year).expect("zone");
        let y = years.bucket(at("2025-06-01T00:00:00Z")).expect("bucket");
        assert_eq!(
            (y.start, y.end),
            (at("2025-01-01T00:00:00Z"), at("2026-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn weeks_start_on_monday_and_hours_are_local() {
        let mut weeks = Calendar::new("UTC", TimeKey::Week).expect("zone");
        let w = weeks.bucket(at("2025-07-19T12:00:00Z")).expect("bucket"); // a Saturday
        assert_eq!(w.key(TimeKey::Week), KeyPart::Str("2025-07-14".into()));
        assert_eq!(w.end - w.start, 7 * 24 * HOUR);
        let mut kolkata = Calendar::new("Asia/Kolkata", TimeKey::Hour).expect("zone");
        let h = kolkata.bucket(at("2025-07-19T12:40:00Z")).expect("bucket");
        assert_eq!(h.key(TimeKey::Hour), KeyPart::Int(18), "UTC+05:30");
        assert_eq!(h.start, at("2025-07-19T12:30:00Z"));
    }

    #[test]
    fn a_repeated_local_hour_is_one_two_hour_bucket() {
        let mut berlin = Calendar::new("Europe/Berlin", TimeKey::Hour).expect("zone");
        // 2025-10-26: 02:00-03:00 local happens twice (00:00Z-01:00Z, then 01:00Z-02:00Z).
        let first = berlin
            .bucket(at("2025-10-26T00:30:00Z"))
            .expect("bucket")
            .clone();
        let second = berlin
            .bucket(at("2025-10-26T01:20:00Z"))
            .expect("bucket")
            .clone();
        assert_eq!(first.key(TimeKey::Hour), KeyPart::Int(2));
        assert_eq!(second.key(TimeKey::Hour), KeyPart::Int(2));
        assert_eq!((first.start, first.end), (second.start, second.end));
        assert_eq!(
            (first.start, first.end),
            (at("2025-10-26T00:00:00Z"), at("2025-10-26T02:00:00Z"))
        );
        // Spring forward: local 03:00 follows 01:59 directly.
        let three = berlin
            .bucket(at("2025-03-30T01:10:00Z"))
            .expect("bucket")
            .clone();
        assert_eq!(three.key(TimeKey::Hour), KeyPart::Int(3));
        assert_eq!(
            (three.start, three.end),
            (at("2025-03-30T01:00:00Z"), at("2025-03-30T02:00:00Z"))
        );
    }

    #[test]
    fn time_keys_and_zones_are_checked() {
        assert_eq!(TimeKey::parse(" day( event_time ) "), Some(TimeKey::Day));
        assert_eq!(TimeKey::parse("day(transactionDate)"), None);
        assert!(TimeKey::check_combination(&[TimeKey::Month]).is_err());
        assert!(TimeKey::check_combination(&[TimeKey::Year, TimeKey::Month]).is_ok());
        assert!(TimeKey::check_combination(&[TimeKey::Hour]).is_err());
        assert!(TimeKey::check_combination(&[TimeKey::Week, TimeKey::Year]).is_err());
        assert!(Calendar::new("Mars/Olympus", TimeKey::Day).is_err());
    }
}
