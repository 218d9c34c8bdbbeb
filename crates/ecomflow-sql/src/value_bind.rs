//! Field values as statement parameters: one conversion per column kind, then one `bind` for
//! either database.

use crate::dialect::BindKind;
use ecomflow_core::Value;
use sqlx::query::Query;
use sqlx::{Database, Encode, Type};
use std::borrow::Cow;

/// A value ready to bind. NULLs keep their column's type, because PostgreSQL prepares a
/// statement with fixed parameter types and sqlx reuses it by its SQL text.
#[derive(Clone, Debug, PartialEq)]
pub enum Bound<'a> {
    /// A 64-bit integer.
    Int(Option<i64>),
    /// A double.
    Float(Option<f64>),
    /// A boolean (SQLite stores 1 or 0).
    Bool(Option<bool>),
    /// Text.
    Text(Option<Cow<'a, str>>),
}

/// Converts a field's value (`None` when the record lacks the field) for a column of `kind`.
/// The error says why the value does not fit, for the dead-letter reason.
pub fn convert(value: Option<&Value>, kind: BindKind) -> Result<Bound<'_>, String> {
    let Some(value) = value.filter(|v| !matches!(v, Value::Null)) else {
        return Ok(match kind {
            BindKind::Int => Bound::Int(None),
            BindKind::Float => Bound::Float(None),
            BindKind::Native | BindKind::Text | BindKind::Json => Bound::Text(None),
        });
    };
    match kind {
        BindKind::Native => Ok(match value {
            Value::Bool(b) => Bound::Bool(Some(*b)),
            Value::Int(i) => Bound::Int(Some(*i)),
            Value::Float(f) => Bound::Float(Some(*f)),
            other => Bound::Text(Some(text(other))),
        }),
        BindKind::Int => int(value).map(|i| Bound::Int(Some(i))),
        BindKind::Float => float(value).map(|f| Bound::Float(Some(f))),
        BindKind::Text => Ok(Bound::Text(Some(text(value)))),
        BindKind::Json => Ok(Bound::Text(Some(value.to_json().to_string().into()))),
    }
}

fn int(value: &Value) -> Result<i64, String> {
    match value {
        Value::Int(i) => Ok(*i),
        // The bounds are exact powers of two; `as` then cannot saturate.
        Value::Float(f) if f.fract() == 0.0 && *f >= -(2f64.powi(63)) && *f < 2f64.powi(63) => {
            Ok(*f as i64)
        }
        Value::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a whole number")),
        other => Err(format!(
            "{} {} is not a whole number",
            other.type_name(),
            other.to_json()
        )),
    }
}

fn float(value: &Value) -> Result<f64, String> {
    match value {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        Value::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a number")),
        other => Err(format!(
            "{} {} is not a number",
            other.type_name(),
            other.to_json()
        )),
    }
}

/// The value as text: strings as they are, numbers and booleans as written in JSON (floats
/// also as `NaN`/`Infinity`), objects and arrays as JSON.
fn text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::Str(s) => Cow::Borrowed(s.as_str()),
        Value::Null => Cow::Borrowed(""),
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Value::Int(i) => Cow::Owned(i.to_string()),
        Value::Float(f) if f.is_nan() => Cow::Borrowed("NaN"),
        Value::Float(f) if f.is_infinite() => {
            Cow::Borrowed(if *f > 0.0 { "Infinity" } else { "-Infinity" })
        }
        Value::Float(f) => Cow::Owned(f.to_string()),
        Value::Nested(v) => Cow::Owned(v.to_string()),
    }
}

/// Binds one value to the next parameter of `query`.
pub fn bind<'q, DB>(
    query: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    value: &'q Bound<'_>,
) -> Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    Option<f64>: Encode<'q, DB> + Type<DB>,
    Option<bool>: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
{
    match value {
        Bound::Int(v) => query.bind(*v),
        Bound::Float(v) => query.bind(*v),
        Bound::Bool(v) => query.bind(*v),
        Bound::Text(v) => query.bind(v.as_deref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(json: serde_json::Value) -> Value {
        Value::from_json(json)
    }

    #[test]
    fn sqlite_binds_values_as_their_own_type() {
        let k = BindKind::Native;
        assert_eq!(convert(None, k), Ok(Bound::Text(None)));
        assert_eq!(convert(Some(&Value::Null), k), Ok(Bound::Text(None)));
        assert_eq!(
            convert(Some(&v(json!(true))), k),
            Ok(Bound::Bool(Some(true)))
        );
        assert_eq!(convert(Some(&v(json!(7))), k), Ok(Bound::Int(Some(7))));
        assert_eq!(
            convert(Some(&v(json!(2.5))), k),
            Ok(Bound::Float(Some(2.5)))
        );
        assert_eq!(
            convert(Some(&v(json!("usd"))), k),
            Ok(Bound::Text(Some("usd".into())))
        );
        assert_eq!(
            convert(Some(&v(json!({"a": [1, 2]}))), k),
            Ok(Bound::Text(Some(r#"{"a":[1,2]}"#.into())))
        );
    }

    #[test]
    fn postgres_integer_columns_take_whole_numbers_only() {
        let k = BindKind::Int;
        assert_eq!(convert(None, k), Ok(Bound::Int(None)));
        assert_eq!(convert(Some(&v(json!(3.0))), k), Ok(Bound::Int(Some(3))));
        assert_eq!(
            convert(Some(&v(json!(" 42 "))), k),
            Ok(Bound::Int(Some(42)))
        );
        assert_eq!(
            convert(Some(&v(json!(3.5))), k),
            Err("number 3.5 is not a whole number".into())
        );
        assert_eq!(
            convert(Some(&v(json!("ten"))), k),
            Err("\"ten\" is not a whole number".into())
        );
        assert!(convert(Some(&Value::Float(1e19)), k).is_err());
    }

    #[test]
    fn postgres_float_text_and_json_columns() {
        assert_eq!(
            convert(Some(&v(json!(2))), BindKind::Float),
            Ok(Bound::Float(Some(2.0)))
        );
        assert_eq!(
            convert(Some(&v(json!("19.99"))), BindKind::Float),
            Ok(Bound::Float(Some(19.99)))
        );
        assert!(convert(Some(&v(json!(true))), BindKind::Float).is_err());
        assert_eq!(convert(None, BindKind::Float), Ok(Bound::Float(None)));
        let text = |j, want: &str| {
            assert_eq!(
                convert(Some(&v(j)), BindKind::Text),
                Ok(Bound::Text(Some(want.into())))
            );
        };
        text(json!(12.5), "12.5");
        text(json!(7), "7");
        text(json!(false), "false");
        text(
            json!("2025-07-19T12:34:56.123456+0000"),
            "2025-07-19T12:34:56.123456+0000",
        );
        assert_eq!(
            convert(Some(&Value::Float(f64::NEG_INFINITY)), BindKind::Text),
            Ok(Bound::Text(Some("-Infinity".into())))
        );
        assert_eq!(
            convert(Some(&v(json!("hi"))), BindKind::Json),
            Ok(Bound::Text(Some("\"hi\"".into())))
        );
    }

    #[test]
    fn nulls_keep_the_column_type() {
        assert_eq!(
            convert(Some(&Value::Null), BindKind::Int),
            Ok(Bound::Int(None))
        );
        assert_eq!(convert(None, BindKind::Json), Ok(Bound::Text(None)));
    }
}
