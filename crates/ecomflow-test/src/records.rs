//! Records in and out of a test: TOML tables and JSON lines into records, records into JSON
//! for comparison, and the comparison itself (numbers equal to within rounding, a `match`
//! comparing only the fields it names).

use ecomflow_core::Record;
use ecomflow_json::JsonDecoder;
use serde_json::Value as Json;

/// A TOML value as JSON (a TOML date-time becomes its RFC 3339 text).
pub fn toml_to_json(value: &toml::Value) -> Json {
    match value {
        toml::Value::String(s) => Json::String(s.clone()),
        toml::Value::Integer(i) => Json::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        toml::Value::Boolean(b) => Json::Bool(*b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(a) => Json::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => table_to_json(t),
    }
}

/// A TOML table as a JSON object.
pub fn table_to_json(table: &toml::Table) -> Json {
    Json::Object(
        table
            .iter()
            .map(|(k, v)| (k.clone(), toml_to_json(v)))
            .collect(),
    )
}

/// One line of JSON decoded as a source decodes it, or why it cannot be.
pub fn decode(decoder: &mut JsonDecoder, line: &[u8]) -> Result<Record, String> {
    decoder.decode(line).map_err(|e| e.to_string())
}

/// Whether `actual` equals `expected`: numbers to within rounding (an integer equals the
/// same float), objects with the same keys; with `subset`, an expected object's keys only.
pub fn matches(expected: &Json, actual: &Json, subset: bool) -> bool {
    match (expected, actual) {
        // Two integers compare exactly; otherwise to within rounding.
        (Json::Number(e), Json::Number(a)) if !(e.is_f64() || a.is_f64()) => e == a,
        (Json::Number(e), Json::Number(a)) => match (e.as_f64(), a.as_f64()) {
            (Some(e), Some(a)) => close(e, a),
            _ => e == a,
        },
        (Json::Object(e), Json::Object(a)) => {
            (subset || e.len() == a.len())
                && e.iter()
                    .all(|(k, ev)| a.get(k).is_some_and(|av| matches(ev, av, subset)))
        }
        (Json::Array(e), Json::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| matches(e, a, subset))
        }
        _ => expected == actual,
    }
}

fn close(e: f64, a: f64) -> bool {
    e == a || (e - a).abs() <= 1e-9 * e.abs().max(a.abs()).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_to_within_rounding_and_strings_exactly() {
        assert!(matches(&json!(10), &json!(10.0), false));
        assert!(matches(&json!(0.3), &json!(0.1 + 0.2), false));
        assert!(!matches(&json!(10.8), &json!(10.81), false));
        assert!(!matches(&json!("10"), &json!(10), false));
        assert!(
            !matches(&json!(1_000_000_000), &json!(1_000_000_001), false),
            "integers exactly"
        );
        assert!(matches(
            &json!(1_000_000_000),
            &json!(1_000_000_000.0),
            false
        ));
    }

    #[test]
    fn a_match_compares_only_the_fields_it_names_at_every_level() {
        let actual = json!({"a": 1, "b": {"c": 2, "d": 3}});
        assert!(matches(&json!({"b": {"c": 2}}), &actual, true));
        assert!(!matches(&json!({"b": {"c": 2}}), &actual, false));
        assert!(!matches(&json!({"e": 1}), &actual, true), "a missing field");
        assert!(matches(
            &json!({"a": 1, "b": {"c": 2, "d": 3}}),
            &actual,
            false
        ));
    }

    #[test]
    fn toml_dates_become_their_text() {
        let t: toml::Table =
            toml::from_str("at = 2025-02-01T00:05:00Z\nn = [1, 2.5]").expect("TOML");
        assert_eq!(
            table_to_json(&t),
            json!({"at": "2025-02-01T00:05:00Z", "n": [1, 2.5]})
        );
    }
}
