//! Record values to and from minijinja's values, the expressions' own.

use ecomflow_core::Value;
use minijinja::Value as ExprValue;

/// `value` as an expression value.
pub fn to_expr(value: &Value) -> ExprValue {
    match value {
        Value::Null => ExprValue::from(()),
        Value::Bool(b) => ExprValue::from(*b),
        Value::Int(i) => ExprValue::from(*i),
        Value::Float(f) => ExprValue::from(*f),
        Value::Str(s) => ExprValue::from(s.as_str()),
        Value::Nested(v) => ExprValue::from_serialize(&**v),
    }
}

/// An expression's result as a record value.
pub fn from_expr(v: &ExprValue) -> Value {
    use minijinja::value::ValueKind;
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => Value::Null,
        ValueKind::Bool => Value::Bool(v.is_true()),
        ValueKind::String => Value::Str(v.as_str().unwrap_or_default().into()),
        ValueKind::Number if v.is_integer() => v
            .as_i64()
            .map_or_else(|| Value::Float(float_of(v)), Value::Int),
        ValueKind::Number => Value::Float(float_of(v)),
        _ => serde_json::to_value(v)
            .map(Value::from_json)
            .unwrap_or(Value::Null),
    }
}

fn float_of(v: &ExprValue) -> f64 {
    f64::try_from(v.clone()).unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expression_round_trip_keeps_types() {
        for v in [
            Value::Int(42),
            Value::Float(1.5),
            Value::from("usd"),
            Value::Bool(true),
            Value::Null,
        ] {
            assert_eq!(from_expr(&to_expr(&v)), v);
        }
    }
}
