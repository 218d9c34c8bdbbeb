//! Duration options as pipeline files write them (`250ms`, `30s`, `5m`, `1d`), checked where
//! they are parsed: never negative, never longer than [`MAX`], and zero only where an option
//! gives zero a meaning. A config field picks its rule by its type, with no attribute:
//!
//! ```ignore
//! /// How often buffered rows are written.
//! #[serde(default = "one_second")]
//! pub flush_interval: ecomflow_core::duration::Positive,
//! ```
//!
//! Their schemas tell `ecomflow list` (and its tests) which options are durations and
//! whether zero is allowed.

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

fn write<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

/// A duration option longer than zero (an interval, a timeout), as a pipeline file writes it
/// (`250ms`, `30s`, `5m`, `1d`): a config field of this type needs no attribute to be parsed,
/// checked, shown by `ecomflow list` (format `duration`) and written back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Positive(Duration);

/// A duration option where zero means something (no lateness, no retry, no linger); otherwise
/// as [`Positive`] (format `duration-or-zero`). Its default is zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ZeroAllowed(Duration);

macro_rules! duration_option {
    ($name:ident, $zero:expr, $schema_name:literal, $format:literal) => {
        impl $name {
            /// A default value (not checked: defaults are written in the code).
            pub const fn new(d: Duration) -> $name {
                $name(d)
            }

            /// The duration.
            pub const fn get(self) -> Duration {
                self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = Duration;

            fn deref(&self) -> &Duration {
                &self.0
            }
        }

        impl From<$name> for Duration {
            fn from(d: $name) -> Duration {
                d.0
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                d.deserialize_str(DurationVisitor($zero)).map($name)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                write(&self.0, s)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                $schema_name.into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "format": $format })
            }

            fn inline_schema() -> bool {
                true
            }
        }
    };
}

duration_option!(Positive, Zero::Refused, "Duration", "duration");
duration_option!(
    ZeroAllowed,
    Zero::Allowed,
    "DurationOrZero",
    "duration-or-zero"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Options {
        every: Positive,
        #[serde(default)]
        maybe: Option<Positive>,
        #[serde(default)]
        lateness: ZeroAllowed,
    }

    fn options(toml_text: &str) -> Result<Options, String> {
        toml::from_str(toml_text).map_err(|e| e.message().to_string())
    }

    #[test]
    fn durations_parse_in_the_usual_units() {
        let o = options("every = \"250ms\"\nmaybe = \"5m\"\nlateness = \"0s\"").expect("valid");
        assert_eq!(o.every.get(), Duration::from_millis(250));
        assert_eq!(o.maybe.map(Positive::get), Some(Duration::from_secs(300)));
        assert_eq!(*o.lateness, Duration::ZERO);
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
        assert_eq!(
            options("every = \"10years\"").expect("allowed").every.get(),
            MAX
        );
    }

    #[test]
    fn they_are_written_back_as_a_pipeline_file_would() {
        let d = Positive::new(Duration::from_millis(1500));
        assert_eq!(serde_json::to_value(d).expect("json"), "1s 500ms");
    }

    #[test]
    fn schemas_tell_the_two_rules_apart() {
        let p = serde_json::to_value(schemars::schema_for!(Positive)).expect("json");
        let z = serde_json::to_value(schemars::schema_for!(ZeroAllowed)).expect("json");
        assert_eq!(p["format"], "duration");
        assert_eq!(z["format"], "duration-or-zero");
    }
}
