//! The `validate` transform: checks required fields, their types and named conditions on their
//! values (ranges, relations), and dead-letters what fails.

use ecomflow_core::{
    Batch, BuildContext, BuildError, Emitter, Field, Plugin, Record, Transform, TransformPlugin,
    Value,
};
use ecomflow_expr::Expr;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt::{self, Write as _};

/// Options of the `validate` transform.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateConfig {
    /// The required fields and their types, as `name = "type"`; a type is one of `string`,
    /// `number` (integer or not), `integer`, `boolean`, `object`, `array` or `any` (present,
    /// of any type, null included). A record missing one of them, or with one of the wrong
    /// type (null included), goes to the dead-letter output with the reason.
    pub fields: IndexMap<String, FieldType>,
    /// What to do with fields not listed in `fields`: `keep` them, `drop` them, or `reject`
    /// the record (dead-letter it).
    #[serde(default)]
    pub unknown_fields: UnknownFields,
    /// Conditions every record must meet, as `name = "expression"` (minijinja syntax, the
    /// same as a filter's `condition`), checked once the fields have their types: ranges
    /// such as `positive_amount = "totalAmount > 0"` and relations such as
    /// `total = "totalAmount - productPrice * productQuantity < 0.005"`. A record for which
    /// one is false, or cannot be evaluated, goes to the dead-letter output with the names of
    /// the checks it fails.
    #[serde(default)]
    pub checks: IndexMap<String, String>,
}

/// The type a field must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// A string.
    String,
    /// Any number, integer or not.
    Number,
    /// A whole number written without a decimal point.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// A JSON object.
    Object,
    /// A JSON array.
    Array,
    /// Anything, null included: the field only has to be present.
    Any,
}

impl FieldType {
    fn accepts(self, v: &Value) -> bool {
        match self {
            FieldType::String => matches!(v, Value::Str(_)),
            FieldType::Number => matches!(v, Value::Int(_) | Value::Float(_)),
            FieldType::Integer => matches!(v, Value::Int(_)),
            FieldType::Boolean => matches!(v, Value::Bool(_)),
            FieldType::Object => matches!(v, Value::Nested(j) if j.is_object()),
            FieldType::Array => matches!(v, Value::Nested(j) if j.is_array()),
            FieldType::Any => true,
        }
    }

    /// The type with its article, for messages: `a string`, `an integer`.
    fn with_article(self) -> &'static str {
        match self {
            FieldType::String => "a string",
            FieldType::Number => "a number",
            FieldType::Integer => "an integer",
            FieldType::Boolean => "a boolean",
            FieldType::Object => "an object",
            FieldType::Array => "an array",
            FieldType::Any => "anything",
        }
    }
}

/// What to do with fields that `fields` does not list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UnknownFields {
    /// Keep them.
    #[default]
    Keep,
    /// Remove them from records that pass.
    Drop,
    /// Dead-letter the record.
    Reject,
}

/// Registers the `validate` transform.
pub struct ValidatePlugin;

impl TransformPlugin for ValidatePlugin {
    type Config = ValidateConfig;

    fn build(cfg: ValidateConfig, _cx: &BuildContext) -> Result<Box<dyn Transform>, BuildError> {
        if cfg.fields.is_empty() {
            return Err(BuildError::field("fields", "no fields to check")
                .with_hint("list them as fields.<name> = \"<type>\""));
        }
        let checks = cfg
            .checks
            .iter()
            .map(|(name, source)| {
                let expr = Expr::compile(source, &[]).map_err(|e| {
                    BuildError::field(
                        format!("checks.{name}"),
                        format!("expression does not compile: {e}"),
                    )
                })?;
                Ok((name.clone(), expr))
            })
            .collect::<Result<Vec<_>, BuildError>>()?;
        Ok(Box::new(Validate {
            checks,
            fields: cfg
                .fields
                .iter()
                .map(|(name, ty)| (Field::new(name), *ty, 0))
                .collect(),
            unknown: cfg.unknown_fields,
            scratch: Vec::new(),
        }))
    }
}

struct Validate {
    /// Each field, its type, and where it was in the last record.
    fields: Vec<(Field, FieldType, usize)>,
    /// Named conditions on the values, checked once the types are right.
    checks: Vec<(String, Expr)>,
    unknown: UnknownFields,
    /// Unknown fields of the current record, reused across records.
    scratch: Vec<Field>,
}

impl Validate {
    /// What is wrong with `record`, or None when nothing is.
    fn problems(&mut self, record: &Record) -> Option<String> {
        let mut reason = String::new();
        for (field, ty, hint) in &mut self.fields {
            let field = *field;
            match record.get_hinted(field, hint) {
                None => problem(&mut reason, format_args!("missing field `{field}`")),
                Some(v) if !ty.accepts(v) => problem(
                    &mut reason,
                    format_args!(
                        "field `{field}` should be {}, found {}",
                        ty.with_article(),
                        Found(v)
                    ),
                ),
                Some(_) => {}
            }
        }
        if self.unknown != UnknownFields::Keep {
            self.scratch.clear();
            self.scratch.extend(
                record
                    .iter()
                    .map(|(f, _)| f)
                    .filter(|f| !self.fields.iter().any(|(known, _, _)| known == f)),
            );
            if self.unknown == UnknownFields::Reject {
                for f in &self.scratch {
                    match record.get(*f).and_then(|v| match v {
                        Value::Nested(rest) if f.is_rest() => rest.as_object(),
                        _ => None,
                    }) {
                        // Keys the decoder could not intern, kept together.
                        Some(rest) => {
                            for name in rest.keys() {
                                problem(&mut reason, format_args!("unknown field `{name}`"));
                            }
                        }
                        None => problem(&mut reason, format_args!("unknown field `{f}`")),
                    }
                }
            }
        }
        if reason.is_empty() {
            for (name, check) in &self.checks {
                match check.is_true(record) {
                    Ok(true) => {}
                    Ok(false) => problem(
                        &mut reason,
                        format_args!("check `{name}` fails: `{}` is false", check.source()),
                    ),
                    Err(e) => problem(&mut reason, format_args!("check `{name}`: {e}")),
                }
            }
        }
        (!reason.is_empty()).then_some(reason)
    }
}

fn problem(reason: &mut String, what: fmt::Arguments<'_>) {
    if !reason.is_empty() {
        reason.push_str("; ");
    }
    let _ = reason.write_fmt(what);
}

/// A value as shown in messages: its type, then its JSON cut to a readable length.
struct Found<'a>(&'a Value);

impl fmt::Display for Found<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 40;
        if let Value::Null = self.0 {
            return f.write_str("null");
        }
        let json = serde_json::to_string(self.0).unwrap_or_default();
        match json.char_indices().nth(MAX) {
            Some((cut, _)) => write!(f, "{} {}...", self.0.type_name(), &json[..cut]),
            None => write!(f, "{} {json}", self.0.type_name()),
        }
    }
}

impl Transform for Validate {
    fn process(&mut self, batch: Batch, out: &mut Emitter) {
        for mut record in batch {
            if let Some(reason) = self.problems(&record) {
                out.dead_letter(reason, record);
                continue;
            }
            if self.unknown == UnknownFields::Drop {
                for f in &self.scratch {
                    record.remove(*f);
                }
            }
            out.emit(record);
        }
    }
}

ecomflow_core::inventory::submit!(Plugin::transform::<ValidatePlugin>(
    "validate",
    "checks required fields, their types and conditions on their values; dead-letters \
     records that fail"
));

#[cfg(test)]
mod tests {
    use crate::test_support::{build_error, build_transform, process, record};
    use ecomflow_core::Payload;
    use serde_json::json;

    const SEED_FIELDS: &str = r#"
        fields.transactionId = "string"
        fields.productPrice = "number"
        fields.productQuantity = "integer"
        fields.currency = "string"
    "#;

    #[test]
    fn checks_refuse_out_of_range_and_inconsistent_records_by_name() {
        let options = r#"
            fields.productPrice = "number"
            fields.productQuantity = "integer"
            fields.totalAmount = "number"
            checks.positive_price = "productPrice > 0"
            checks.positive_amount = "totalAmount > 0"
            checks.total_is_price_times_quantity = "totalAmount - productPrice * productQuantity < 0.005 and productPrice * productQuantity - totalAmount < 0.005"
        "#;
        let mut t = build_transform("validate", options).expect("builds");
        let (out, dead) = process(
            t.as_mut(),
            vec![
                record(json!({"productPrice": 2.5, "productQuantity": 3, "totalAmount": 7.5})),
                record(json!({"productPrice": 2.5, "productQuantity": 3, "totalAmount": 0})),
                record(json!({"productPrice": -1, "productQuantity": 2, "totalAmount": -2})),
                record(json!({"productPrice": 2.5, "productQuantity": 3, "totalAmount": 9.99})),
                record(json!({"productPrice": "x", "productQuantity": 3, "totalAmount": 1})),
            ],
        );
        assert_eq!(out.len(), 1);
        let reasons: Vec<&str> = dead.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(
            reasons[0].starts_with("check `positive_amount` fails: `totalAmount > 0` is false;")
                && reasons[0].contains("check `total_is_price_times_quantity` fails"),
            "{}",
            reasons[0]
        );
        assert!(
            reasons[1].contains("`positive_price`") && reasons[1].contains("`positive_amount`"),
            "{}",
            reasons[1]
        );
        assert_eq!(
            reasons[2],
            "check `total_is_price_times_quantity` fails: `totalAmount - productPrice * productQuantity < 0.005 and productPrice * productQuantity - totalAmount < 0.005` is false"
        );
        assert!(
            reasons[3].starts_with("field `productPrice` should be a number")
                && !reasons[3].contains("check"),
            "types first: {}",
            reasons[3]
        );
        let e = build_error(build_transform(
            "validate",
            "fields.a = \"number\"\nchecks.broken = \"a >\"",
        ));
        assert_eq!(e.field.as_deref(), Some("checks.broken"));
    }

    #[test]
    fn passes_good_records_and_explains_bad_ones() {
        let mut t = build_transform("validate", SEED_FIELDS).expect("builds");
        let good = json!({"transactionId": "t1", "productPrice": 12, "productQuantity": 3, "currency": "USD", "extra": true});
        let batch = vec![
            record(good.clone()),
            record(
                json!({"transactionId": "t2", "productPrice": "12.x", "productQuantity": 3, "currency": "USD"}),
            ),
            record(json!({"transactionId": "t3", "productPrice": 1.5, "productQuantity": 2.5})),
            record(
                json!({"transactionId": null, "productPrice": 1.5, "productQuantity": 2, "currency": ["USD"]}),
            ),
        ];
        let (out, dead) = process(t.as_mut(), batch);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to_json(), good, "unknown fields are kept by default");
        let reasons: Vec<&str> = dead.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(
            reasons,
            [
                r#"field `productPrice` should be a number, found string "12.x""#,
                "field `productQuantity` should be an integer, found number 2.5; missing field `currency`",
                r#"field `transactionId` should be a string, found null; field `currency` should be a string, found array ["USD"]"#,
            ]
        );
        let Payload::Record(r) = &dead[0].1 else {
            panic!("records are dead-lettered as records");
        };
        assert_eq!(r.to_json()["transactionId"], json!("t2"));
    }

    #[test]
    fn unknown_fields_can_be_dropped_or_rejected() {
        let batch = || vec![record(json!({"a": 1, "x": 2, "b": "s", "y": 3}))];
        let mut drop = build_transform(
            "validate",
            "fields = { a = \"integer\", b = \"any\" }\nunknown_fields = \"drop\"",
        )
        .expect("builds");
        let (out, dead) = process(drop.as_mut(), batch());
        assert!(dead.is_empty());
        assert_eq!(out[0].to_json(), json!({"a": 1, "b": "s"}));

        let mut reject = build_transform(
            "validate",
            "fields = { a = \"integer\", b = \"any\" }\nunknown_fields = \"reject\"",
        )
        .expect("builds");
        let (out, dead) = process(reject.as_mut(), batch());
        assert!(out.is_empty());
        assert_eq!(dead[0].0, "unknown field `x`; unknown field `y`");
    }

    #[test]
    fn long_values_are_cut_in_reasons() {
        let mut t = build_transform("validate", "fields.n = \"number\"").expect("builds");
        let (_, dead) = process(t.as_mut(), vec![record(json!({"n": "y".repeat(100)}))]);
        assert_eq!(
            dead[0].0,
            format!(
                "field `n` should be a number, found string \"{}...",
                "y".repeat(39)
            )
        );
    }

    #[test]
    fn unknown_types_and_empty_lists_are_build_errors() {
        let e = build_error(build_transform("validate", "fields.a = \"float\""));
        assert!(e.message.contains("unknown variant `float`"), "{e}");
        let e = build_error(build_transform("validate", "fields = {}"));
        assert_eq!(e.field.as_deref(), Some("fields"));
        let e = build_error(build_transform(
            "validate",
            "fields.a = \"any\"\nunknown_fields = \"ignore\"",
        ));
        assert!(e.message.contains("unknown variant `ignore`"), "{e}");
    }
}
