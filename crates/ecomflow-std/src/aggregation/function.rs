//! Aggregation functions as written in a pipeline: `count()`, `count(field)`, `sum(field)`,
//! `min(field)`, `max(field)`, `avg(field)`.

use ecomflow_core::{BuildError, Field, Record, Value};
use indexmap::IndexMap;

/// One aggregation: its output field, its function and the field it reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregation {
    /// The output field.
    pub output: Field,
    /// The function.
    pub function: Function,
    /// The field it reads (`None` for `count()`).
    pub input: Option<Field>,
}

impl Aggregation {
    /// The value it reads from `record` (`None` for `count()`, or when the field is absent).
    pub fn value<'r>(&self, record: &'r Record) -> Option<&'r Value> {
        self.input.and_then(|f| record.get(f))
    }
}

/// The aggregation functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// Number of records (`count()`) or of records where the field is not null.
    Count,
    /// Sum of the field; an integer while every value is one.
    Sum,
    /// Smallest value of the field.
    Min,
    /// Largest value of the field.
    Max,
    /// Mean of the field.
    Avg,
}

/// Parses the `aggregations` option (output field -> function call); errors name
/// `aggregations.<output>`.
pub fn parse_aggregations(
    specs: &IndexMap<String, String>,
) -> Result<Vec<Aggregation>, BuildError> {
    if specs.is_empty() {
        return Err(BuildError::field(
            "aggregations",
            "name at least one aggregation, such as total = \"sum(amount)\"",
        ));
    }
    specs
        .iter()
        .map(|(output, spec)| {
            parse_one(spec)
                .map(|(function, input)| Aggregation {
                    output: Field::new(output),
                    function,
                    input,
                })
                .map_err(|e| BuildError::field(format!("aggregations.{output}"), e))
        })
        .collect()
}

fn parse_one(spec: &str) -> Result<(Function, Option<Field>), String> {
    let hint = "write count(), count(field), sum(field), min(field), max(field) or avg(field)";
    let spec = spec.trim();
    let (name, rest) = spec
        .split_once('(')
        .ok_or_else(|| format!("`{spec}` is not an aggregation: {hint}"))?;
    let arg = rest
        .strip_suffix(')')
        .ok_or_else(|| format!("`{spec}` lacks its closing `)`"))?
        .trim();
    let function = match name.trim() {
        "count" => Function::Count,
        "sum" => Function::Sum,
        "min" => Function::Min,
        "max" => Function::Max,
        "avg" => Function::Avg,
        other => return Err(format!("unknown aggregation `{other}`: {hint}")),
    };
    let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_');
    match (function, arg) {
        (Function::Count, "") => Ok((function, None)),
        (_, "") => Err(format!("`{spec}` needs a field: {hint}")),
        (_, a) if valid(a) => Ok((function, Some(Field::new(a)))),
        (_, a) => Err(format!("`{a}` is not a field name")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_function_and_rejects_the_rest() {
        let mut specs = IndexMap::new();
        specs.insert("n".to_string(), "count()".to_string());
        specs.insert("total".to_string(), " sum( amount ) ".to_string());
        let aggs = parse_aggregations(&specs).expect("valid");
        assert_eq!(aggs[0].function, Function::Count);
        assert_eq!(aggs[0].input, None);
        assert_eq!(aggs[1].function, Function::Sum);
        assert_eq!(aggs[1].input, Some(Field::new("amount")));

        for (bad, says) in [
            ("median(x)", "unknown aggregation `median`"),
            ("sum()", "needs a field"),
            ("sum(a + b)", "is not a field name"),
            ("sum", "is not an aggregation"),
            ("sum(x", "closing"),
        ] {
            let mut specs = IndexMap::new();
            specs.insert("out".to_string(), bad.to_string());
            let e = parse_aggregations(&specs).expect_err(bad);
            assert_eq!(e.field.as_deref(), Some("aggregations.out"));
            assert!(e.message.contains(says), "{bad}: {}", e.message);
        }
        assert!(parse_aggregations(&IndexMap::new()).is_err());
    }
}
