//! ecomflow-time: timestamps as microseconds since 1970-01-01 UTC, parsed from the formats
//! events use (`event_time.format`) and turned into calendar dates, without a general format
//! engine on the hot path; and the event-time tracker of a source, reading those formats.

use ecomflow_core::event_time::{EventTimeConfig, EventTimeTracker, ReadTime};

/// The event-time tracker of a source with `config`, or why the config is wrong (an unknown
/// format).
pub fn tracker(config: &EventTimeConfig) -> Result<EventTimeTracker, String> {
    let format = TimeFormat::parse(&config.format)?;
    Ok(EventTimeTracker::new(config, Box::new(format)))
}

/// Microseconds in a day.
pub const US_PER_DAY: i64 = 86_400_000_000;

/// How an event-time field is written.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeFormat {
    /// The seed system's `2025-07-19T12:34:56.123456+0000`; without an offset it means UTC.
    /// Also accepts `Z` and `+00:00` offsets and 0 to 9 fractional digits.
    Seed,
    /// RFC 3339: `2025-07-19T12:34:56.123Z` or with a `+02:00` offset (required).
    Rfc3339,
    /// A number of milliseconds since 1970-01-01 UTC.
    EpochMillis,
    /// A number of seconds since 1970-01-01 UTC.
    EpochSeconds,
    /// A chrono `strftime` pattern (slower); without an offset in the pattern it means UTC.
    Pattern(String),
}

impl TimeFormat {
    /// Reads a format name: `seed`, `rfc3339`, `epoch_millis`, `epoch_seconds`, or a
    /// pattern containing `%`.
    pub fn parse(name: &str) -> Result<TimeFormat, String> {
        Ok(match name {
            "seed" => TimeFormat::Seed,
            "rfc3339" => TimeFormat::Rfc3339,
            "epoch_millis" => TimeFormat::EpochMillis,
            "epoch_seconds" => TimeFormat::EpochSeconds,
            p if p.contains('%') => TimeFormat::Pattern(p.to_string()),
            other => {
                return Err(format!(
                    "unknown time format `{other}`: use seed, rfc3339, epoch_millis, epoch_seconds or a strftime pattern such as %d/%m/%Y %H:%M"
                ));
            }
        })
    }

    /// Parses `value` into microseconds since the epoch, or says why not.
    pub fn read(&self, value: &ecomflow_core::Value) -> Result<i64, String> {
        use ecomflow_core::Value;
        match (self, value) {
            (TimeFormat::EpochMillis, Value::Int(ms)) => ms
                .checked_mul(1000)
                .ok_or_else(|| format!("{ms} ms is out of range")),
            (TimeFormat::EpochMillis, Value::Float(ms)) => float_micros(*ms * 1000.0),
            (TimeFormat::EpochSeconds, Value::Int(s)) => s
                .checked_mul(1_000_000)
                .ok_or_else(|| format!("{s} s is out of range")),
            (TimeFormat::EpochSeconds, Value::Float(s)) => float_micros(*s * 1_000_000.0),
            (TimeFormat::EpochMillis | TimeFormat::EpochSeconds, Value::Str(s)) => {
                match s.parse::<i64>() {
                    Ok(n) => self.read(&Value::Int(n)),
                    Err(_) => Err(format!("`{s}` is not a number of {}", self.unit())),
                }
            }
            (TimeFormat::Seed, Value::Str(s)) => parse_iso(s, false).ok_or_else(|| {
                leap_second(s)
                    .unwrap_or_else(|| format!("`{s}` is not like 2025-07-19T12:34:56.123456+0000"))
            }),
            (TimeFormat::Rfc3339, Value::Str(s)) => parse_iso(s, true).ok_or_else(|| {
                leap_second(s).unwrap_or_else(|| format!("`{s}` is not an RFC 3339 time"))
            }),
            (TimeFormat::Pattern(p), Value::Str(s)) => parse_pattern(s, p),
            (_, other) => Err(format!(
                "expected a {} time, found {}",
                self.unit(),
                other.type_name()
            )),
        }
    }

    fn unit(&self) -> &'static str {
        match self {
            TimeFormat::EpochMillis => "milliseconds",
            TimeFormat::EpochSeconds => "seconds",
            _ => "text",
        }
    }
}

/// Microseconds from a float, refusing what an i64 cannot hold (instead of saturating).
fn float_micros(us: f64) -> Result<i64, String> {
    if us.is_finite() && us.abs() < 9.0e18 {
        Ok(us as i64)
    } else {
        Err(format!("{us} µs is not a time"))
    }
}

/// The reason for refusing `s` when its second is 60 (a leap second): sinks disagree on it
/// (PostgreSQL rolls it into the next minute, Elasticsearch refuses the document), so it is
/// refused once, at the source, for all of them.
fn leap_second(s: &str) -> Option<String> {
    (s.get(16..19) == Some(":60")).then(|| {
        format!(
            "`{s}` has second 60 (a leap second), which sinks store differently or refuse; \
             write it as :59 or the next minute"
        )
    })
}

fn parse_pattern(s: &str, pattern: &str) -> Result<i64, String> {
    use chrono::Timelike;
    let leap = |nanos: u32| {
        (nanos >= 1_000_000_000).then(|| {
            format!("`{s}` has second 60 (a leap second), which sinks store differently or refuse")
        })
    };
    if let Ok(t) = chrono::DateTime::parse_from_str(s, pattern) {
        return match leap(t.nanosecond()) {
            Some(e) => Err(e),
            None => Ok(t.timestamp_micros()),
        };
    }
    let t = chrono::NaiveDateTime::parse_from_str(s, pattern)
        .map_err(|e| format!("`{s}` does not match `{pattern}`: {e}"))?;
    match leap(t.nanosecond()) {
        Some(e) => Err(e),
        None => Ok(t.and_utc().timestamp_micros()),
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction][Z|±HH:MM|±HHMM]` (a space may stand for `T`).
/// Without an offset the time is UTC, unless `offset_required`.
pub fn parse_iso(s: &str, offset_required: bool) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let days = date_days(&b[0..10])?;
    let (h, mi, sec) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut at = 19;
    let mut micros = 0i64;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while at < b.len() && b[at].is_ascii_digit() {
            if at - start < 6 {
                micros = micros * 10 + i64::from(b[at] - b'0');
            }
            at += 1;
        }
        let n = at - start;
        if n == 0 || n > 9 {
            return None;
        }
        for _ in n..6 {
            micros *= 10;
        }
    }
    let offset_secs = match &b[at..] {
        [] if !offset_required => 0,
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let (oh, om) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = oh * 3600 + om * 60;
            if *sign == b'+' { secs } else { -secs }
        }
        _ => return None,
    };
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    Some(secs * 1_000_000 + micros)
}

/// The day number of `YYYY-MM-DD` (the 10 bytes `date`), `None` for a date that does not
/// exist. Timestamps come day after day: the last date read and its day are kept, per thread.
fn date_days(date: &[u8]) -> Option<i64> {
    thread_local! {
        static LAST: std::cell::Cell<([u8; 10], i64)> = const { std::cell::Cell::new(([0; 10], 0)) };
    }
    let (last, last_days) = LAST.get();
    if last == date {
        return Some(last_days);
    }
    let year = digits(&date[0..4])?;
    let month = digits(&date[5..7])?;
    let day = digits(&date[8..10])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month as u32, day as u32);
    let mut kept = [0; 10];
    kept.copy_from_slice(date);
    LAST.set((kept, days));
    Some(days)
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Day number (0 = 1970-01-01) of a proleptic Gregorian date (after Howard Hinnant).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian (year, month, day) of a day number (0 = 1970-01-01).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Writes day number `days` as `YYYY-MM-DD`.
pub fn write_date(days: i64, out: &mut String) {
    let mut text = [0; 10];
    if date_digits(days, &mut text[..]) {
        push_ascii(out, &text);
    } else {
        let (y, m, d) = civil_from_days(days);
        use std::fmt::Write;
        let _ = write!(out, "{y:04}-{m:02}-{d:02}");
    }
}

/// Writes `YYYY-MM-DD` into `text` (10 bytes), digit by digit (`write!` costs ten times as
/// much, and this runs once per record); false for a year outside 0..=9999.
fn date_digits(days: i64, text: &mut [u8]) -> bool {
    // Records come day after day: the last day's text is kept, per thread.
    thread_local! {
        static LAST: std::cell::Cell<(i64, [u8; 10])> = const { std::cell::Cell::new((i64::MIN, [0; 10])) };
    }
    let (last, last_text) = LAST.get();
    if last == days {
        text.copy_from_slice(&last_text);
        return true;
    }
    let (y, m, d) = civil_from_days(days);
    let Ok(y) = u32::try_from(y) else {
        return false;
    };
    if y > 9999 {
        return false;
    }
    put_digits(&mut text[0..4], y);
    text[4] = b'-';
    put_digits(&mut text[5..7], m);
    text[7] = b'-';
    put_digits(&mut text[8..10], d);
    let mut kept = [0; 10];
    kept.copy_from_slice(text);
    LAST.set((days, kept));
    true
}

/// Fills `place` with the last `place.len()` decimal digits of `v`, zero-padded.
fn put_digits(place: &mut [u8], mut v: u32) {
    for digit in place.iter_mut().rev() {
        *digit = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Appends ASCII bytes (digits and separators) to `out` in one step.
fn push_ascii(out: &mut String, text: &[u8]) {
    if let Ok(text) = std::str::from_utf8(text) {
        out.push_str(text);
    }
}

/// Writes `us` as `YYYY-MM-DD HH:MM:SS.ffffff` (UTC), the form SQL `TIMESTAMP` columns take.
pub fn write_timestamp(us: i64, out: &mut String) {
    let days = us.div_euclid(US_PER_DAY);
    let in_day = us.rem_euclid(US_PER_DAY);
    let mut text = *b"0000-00-00 00:00:00.000000";
    let whole = date_digits(days, &mut text[..10]);
    if !whole {
        write_date(days, out);
    }
    // `in_day` is below 86,400,000,000, so every part fits in a u32.
    let secs = (in_day / 1_000_000) as u32;
    put_digits(&mut text[11..13], secs / 3600);
    put_digits(&mut text[14..16], secs / 60 % 60);
    put_digits(&mut text[17..19], secs % 60);
    put_digits(&mut text[20..26], (in_day % 1_000_000) as u32);
    push_ascii(out, if whole { &text } else { &text[10..] });
}

/// `us` as an RFC 3339 time for messages (`2025-02-01T00:05:00Z`, with the fraction only when
/// there is one); outside the years 0001 to 9999, the microseconds.
pub fn describe(us: i64) -> String {
    const EARLIEST: i64 = -62_135_596_800_000_000;
    const LATEST: i64 = 253_402_300_799_999_999;
    if !(EARLIEST..=LATEST).contains(&us) {
        return format!("{us} µs since 1970");
    }
    let mut text = String::with_capacity(27);
    write_timestamp(us, &mut text);
    let text = text.replacen(' ', "T", 1);
    let text = text.strip_suffix(".000000").unwrap_or(&text);
    format!("{text}Z")
}

impl ReadTime for TimeFormat {
    fn read(&self, value: &ecomflow_core::Value) -> Result<i64, String> {
        TimeFormat::read(self, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_described_in_rfc_3339() {
        assert_eq!(describe(1_738_368_300_000_000), "2025-02-01T00:05:00Z");
        assert_eq!(
            describe(1_738_368_300_000_001),
            "2025-02-01T00:05:00.000001Z"
        );
        assert_eq!(describe(i64::MAX), format!("{} µs since 1970", i64::MAX));
    }
    use ecomflow_core::Value;

    fn chrono_us(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("valid reference")
            .timestamp_micros()
    }

    #[test]
    fn seed_format_with_and_without_offset() {
        let want = chrono_us("2025-07-19T12:34:56.123456Z");
        for s in [
            "2025-07-19T12:34:56.123456+0000",
            "2025-07-19T12:34:56.123456",
            "2025-07-19T12:34:56.123456Z",
            "2025-07-19 12:34:56.123456+00:00",
            "2025-07-19T14:34:56.123456+0200",
        ] {
            assert_eq!(parse_iso(s, false), Some(want), "{s}");
        }
        assert_eq!(
            parse_iso("2025-07-19T12:34:56.1-0130", false),
            Some(chrono_us("2025-07-19T12:34:56.1-01:30"))
        );
        assert_eq!(parse_iso("1969-12-31T23:59:59Z", true), Some(-1_000_000));
    }

    #[test]
    fn invalid_times_are_rejected() {
        for s in [
            "2025-02-29T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-07-19T24:00:00Z",
            "2025-07-19T12:34:56.Z",
            "2025-07-19T12:34:56+2500",
            "2025-07-19",
            "19/07/2025 12:34",
            "2025-07-19T12:34:56.123+00",
        ] {
            assert_eq!(parse_iso(s, false), None, "{s}");
        }
        assert_eq!(parse_iso("2025-07-19T12:34:56", true), None);
        assert_eq!(parse_iso("2016-12-31T23:59:60Z", true), None, "leap second");
        assert!(parse_iso("2024-02-29T00:00:00Z", true).is_some());
    }

    #[test]
    fn a_leap_second_is_refused_with_the_reason_in_every_format() {
        use ecomflow_core::Value;
        for (format, s) in [
            ("seed", "2025-07-19T12:34:60.123456+0000"),
            ("rfc3339", "2016-12-31T23:59:60Z"),
            ("%Y-%m-%d %H:%M:%S", "2016-12-31 23:59:60"),
            ("%Y-%m-%d %H:%M:%S %z", "2016-12-31 23:59:60 +0000"),
        ] {
            let e = TimeFormat::parse(format)
                .expect("format")
                .read(&Value::from(s))
                .expect_err(s);
            assert!(e.contains("second 60 (a leap second)"), "{format}: {e}");
        }
    }

    #[test]
    fn formats_read_values() {
        let ms = Value::Int(1_752_928_496_123);
        assert_eq!(TimeFormat::EpochMillis.read(&ms), Ok(1_752_928_496_123_000));
        assert_eq!(
            TimeFormat::EpochMillis.read(&Value::from("1752928496123")),
            Ok(1_752_928_496_123_000)
        );
        assert!(TimeFormat::Seed.read(&Value::Int(5)).is_err());
        assert!(TimeFormat::EpochSeconds.read(&Value::Float(1e300)).is_err());
        assert!(
            TimeFormat::EpochMillis
                .read(&Value::Float(f64::NAN))
                .is_err()
        );
        let p = TimeFormat::parse("%d/%m/%Y %H:%M").expect("pattern");
        assert_eq!(
            p.read(&Value::from("19/07/2025 12:34")),
            Ok(chrono_us("2025-07-19T12:34:00Z"))
        );
        assert!(TimeFormat::parse("iso").is_err());
    }

    #[test]
    fn calendar_round_trip() {
        for days in [-800_000, -1, 0, 1, 19_000, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        let mut s = String::new();
        write_timestamp(chrono_us("2025-07-19T12:34:56.123456Z"), &mut s);
        assert_eq!(s, "2025-07-19 12:34:56.123456");
    }

    /// The digit-by-digit writers agree with chrono everywhere, before 1970, at the edges of
    /// four-digit years and beyond them.
    #[test]
    fn timestamps_and_dates_match_chrono() {
        let edges = [
            chrono_us("0000-01-01T00:00:00Z"),
            chrono_us("1969-12-31T23:59:59.999999Z"),
            chrono_us("1970-01-01T00:00:00Z"),
            chrono_us("2024-02-29T12:00:00.5Z"),
            chrono_us("9999-12-31T23:59:59.999999Z"),
            chrono_us("9999-12-31T23:59:59.999999Z") + 1,
            chrono_us("0000-01-01T00:00:00Z") - 1,
        ];
        let spread = (0..2000i64).map(|i| i * 7_919_000_123_457 - 400_000_000_000_000_000);
        for us in edges.into_iter().chain(spread) {
            let t = chrono::DateTime::from_timestamp_micros(us).expect("in chrono's range");
            let mut s = String::new();
            if !(0..=9999).contains(&chrono::Datelike::year(&t)) {
                // chrono writes a sign on five-digit years; the SQL form has none.
                write_date(us.div_euclid(US_PER_DAY), &mut s);
                let year: Option<i32> = s[..s.len() - 6].parse().ok();
                assert_eq!(year, Some(chrono::Datelike::year(&t)), "{s}");
                assert_eq!(&s[s.len() - 6..], &t.format("-%m-%d").to_string(), "{s}");
                continue;
            }
            write_timestamp(us, &mut s);
            assert_eq!(s, t.format("%Y-%m-%d %H:%M:%S%.6f").to_string(), "{us}");
            s.clear();
            write_date(us.div_euclid(US_PER_DAY), &mut s);
            assert_eq!(s, t.format("%Y-%m-%d").to_string(), "{us}");
        }
    }
}
