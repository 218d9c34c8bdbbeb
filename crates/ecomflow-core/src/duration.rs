//! Duration options as pipeline files write them (`250ms`, `30s`, `5m`, `1d`), checked where
//! they are parsed: never negative, never longer than [`MAX`], and zero only where an option
//! gives zero a meaning. A config field picks its rule with serde's `with`:
//!
//! ```ignore
//! /// How often buffered rows are written.
//! #[serde(default = "one_second", with = "ecomflow_core::duration::positive")]
//! #[schemars(with = "ecomflow_core::duration::Positive")]
//! pub flush_interval: Duration,
//! ```
//!
//! The schema types ([`Positive`], [`ZeroAllowed`]) tell `ecomflow list` (and its tests)
//! which options are durations and whether zero is allowed.

use humantime_serde::re::humantime;
use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// The longest duration any option takes: ten years (of 365.25 days). Longer values are
/// refused rather than overflowing a clock or a timer.
pub const MAX: Duration = Duration::from_secs(315_576_000);

/// Whether zero is a valid value of an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Zero {
    Refused,
    Allowed,
}

/// Parses and checks one duration as written in a pipeline file.
fn parse(text: &str, zero: Zero) -> Result<Duration, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!("cannot be negative (found `{text}`)"));
    }
    let d = humantime::parse_duration(text).map_err(|e| {
        format!("`{text}` is not a duration ({e}): write it as 250ms, 30s, 5m, 2h or 1d")
    })?;
    if d.is_zero() && zero == Zero::Refused {
        return Err(format!(
            "must be longer than zero, such as 100ms or 1s (found `{text}`)"
        ));
    }
    if d > MAX {
        return Err(format!(
            "`{text}` is too long: at most {}",
            humantime::format_duration(MAX)
        ));
    }
    Ok(d)
}

struct DurationVisitor(Zero);

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.0 {
            Zero::Refused => f.write_str("a duration longer than zero, such as \"30s\""),
            Zero::Allowed => f.write_str("a duration such as \"30s\" (or \"0s\")"),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse(v, self.0).map_err(E::custom)
    }
}

struct OptionVisitor(Zero);

impl<'de> Visitor<'de> for OptionVisitor {
    type Value = Option<Duration>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        DurationVisitor(self.0).expecting(f)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(DurationVisitor(self.0)).map(Some)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse(v, self.0).map(Some).map_err(E::custom)
    }
}

fn write<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

/// A duration longer than zero (an interval, a timeout): `with = "...::duration::positive"`.
pub mod positive {
    use super::*;

    /// Parses a duration longer than zero.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_str(DurationVisitor(Zero::Refused))
    }

    /// Writes it back as a pipeline file would (`1s`).
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        write(d, s)
    }
}

/// An optional duration longer than zero: `with = "...::duration::positive_option"`.
pub mod positive_option {
    use super::*;

    /// Parses an optional duration longer than zero.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        d.deserialize_option(OptionVisitor(Zero::Refused))
    }

    /// Writes it back as a pipeline file would.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => write(d, s),
            None => s.serialize_none(),
        }
    }
}

/// A duration where zero means something (no lateness, no retry):
/// `with = "...::duration::zero_allowed"`.
pub mod zero_allowed {
    use super::*;

    /// Parses a duration, zero allowed.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_str(DurationVisitor(Zero::Allowed))
    }

    /// Writes it back as a pipeline file would (`0s`).
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        write(d, s)
    }
}

/// The schema of a [`positive`] option: a string of format `duration`.
pub struct Positive;

/// The schema of a [`zero_allowed`] option: a string of format `duration-or-zero`.
pub struct ZeroAllowed;

impl schemars::JsonSchema for Positive {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "duration" })
    }

    fn inline_schema() -> bool {
        true
    }
}

impl schemars::JsonSchema for ZeroAllowed {
    fn schema_name() -> Cow<'static, str> {
        "DurationOrZero".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "duration-or-zero" })
    }

    fn inline_schema() -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Options {
        #[serde(with = "positive")]
        every: Duration,
        #[serde(default, with = "positive_option")]
        maybe: Option<Duration>,
        #[serde(default, with = "zero_allowed")]
        lateness: Duration,
    }

    fn options(toml_text: &str) -> Result<Options, String> {
        toml::from_str(toml_text).map_err(|e| e.message().to_string())
    }

    #[test]
    fn durations_parse_in_the_usual_units() {
        let o = options("every = \"250ms\"\nmaybe = \"5m\"\nlateness = \"0s\"").expect("valid");
        assert_eq!(o.every, Duration::from_millis(250));
        assert_eq!(o.maybe, Some(Duration::from_secs(300)));
        assert_eq!(o.lateness, Duration::ZERO);
        assert_eq!(options("every = \"1d\"").expect("valid").maybe, None);
    }

    #[test]
    fn zero_negative_huge_and_mistyped_durations_are_refused_with_the_reason() {
        for (text, reason) in [
            ("every = \"0s\"", "must be longer than zero"),
            ("every = \"0ms\"", "must be longer than zero"),
            ("every = \"1s\"\nmaybe = \"0s\"", "must be longer than zero"),
            ("every = \"-5s\"", "cannot be negative"),
            ("every = \"1s\"\nlateness = \"-1ms\"", "cannot be negative"),
            ("every = \"11years\"", "too long"),
            ("every = \"99999999999999999999d\"", "not a duration"),
            ("every = \"soon\"", "not a duration"),
            ("every = 5", "a duration longer than zero"),
        ] {
            let e = options(text).expect_err(text);
            assert!(e.contains(reason), "{text}: {e}");
        }
        assert_eq!(options("every = \"10years\"").expect("allowed").every, MAX);
    }

    #[test]
    fn schemas_tell_the_two_rules_apart() {
        let p = serde_json::to_value(schemars::schema_for!(Positive)).expect("json");
        let z = serde_json::to_value(schemars::schema_for!(ZeroAllowed)).expect("json");
        assert_eq!(p["format"], "duration");
        assert_eq!(z["format"], "duration-or-zero");
    }
}
