//! The `map` transform: sets fields from expressions, then renames and removes fields.

use ecomflow_core::{
    Batch, BuildContext, BuildError, Emitter, Field, Plugin, Transform, TransformPlugin, Value,
};
use ecomflow_expr::Expr;
use ecomflow_expr::minijinja;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

/// Options of the `map` transform.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MapConfig {
    /// Fields to set, as `name = "expression"` (minijinja syntax, such as
    /// `set.totalUsd = "totalAmount * rates[currency]"`). Every expression sees the record as
    /// it came in; the results are written after all are evaluated, existing fields in place
    /// and new ones at the end, in the order given here. A record an expression fails on goes
    /// to the dead-letter output unchanged.
    pub set: IndexMap<String, String>,
    /// Fields to rename after `set`, as `old = "new"`; a field already named `new` is replaced.
    pub rename: IndexMap<String, String>,
    /// Fields to remove after `rename`.
    pub remove: Vec<String>,
    /// Constant tables or values the expressions can read by name, such as
    /// `lookups.rates = { USD = 1.0, EUR = 1.08 }` read as `rates[currency]`.
    pub lookups: IndexMap<String, serde_json::Value>,
}

/// Registers the `map` transform.
pub struct MapPlugin;

impl TransformPlugin for MapPlugin {
    type Config = MapConfig;

    fn build(cfg: MapConfig, _cx: &BuildContext) -> Result<Box<dyn Transform>, BuildError> {
        if cfg.set.is_empty() && cfg.rename.is_empty() && cfg.remove.is_empty() {
            return Err(BuildError::component("map has nothing to do")
                .with_hint("give it `set`, `rename` or `remove`"));
        }
        let constants: Vec<(String, minijinja::Value)> = cfg
            .lookups
            .iter()
            .map(|(name, value)| (name.clone(), minijinja::Value::from_serialize(value)))
            .collect();
        let set = cfg
            .set
            .iter()
            .map(|(name, source)| {
                let expr = Expr::compile(source, &constants).map_err(|e| {
                    BuildError::field(
                        format!("set.{name}"),
                        format!("expression does not compile: {e}"),
                    )
                })?;
                Ok((Field::new(name), expr))
            })
            .collect::<Result<Vec<_>, BuildError>>()?;
        Ok(Box::new(Map {
            set,
            rename: cfg
                .rename
                .iter()
                .map(|(from, to)| (Field::new(from), Field::new(to)))
                .collect(),
            remove: cfg.remove.iter().map(|f| Field::new(f)).collect(),
            results: Vec::new(),
        }))
    }
}

struct Map {
    set: Vec<(Field, Expr)>,
    rename: Vec<(Field, Field)>,
    remove: Vec<Field>,
    /// The `set` results of the current record, reused across records.
    results: Vec<Value>,
}

impl Map {
    /// Evaluates every `set` expression into `results`; the error names the failing one.
    fn evaluate(&mut self, record: &ecomflow_core::Record) -> Result<(), String> {
        self.results.clear();
        for (field, expr) in &self.set {
            match expr.eval(record) {
                Ok(v) => self.results.push(v),
                Err(e) => return Err(format!("set.{field}: {e}")),
            }
        }
        Ok(())
    }
}

impl Transform for Map {
    fn process(&mut self, batch: Batch, out: &mut Emitter) {
        for mut record in batch {
            if let Err(reason) = self.evaluate(&record) {
                out.dead_letter(reason, record);
                continue;
            }
            for ((field, _), value) in self.set.iter().zip(self.results.drain(..)) {
                record.set(*field, value);
            }
            for (from, to) in &self.rename {
                record.rename(*from, *to);
            }
            for field in &self.remove {
                record.remove(*field);
            }
            out.emit(record);
        }
    }
}

ecomflow_core::inventory::submit!(Plugin::transform::<MapPlugin>(
    "map",
    "sets fields from expressions, then renames and removes fields"
));

#[cfg(test)]
mod tests {
    use crate::test_support::{build_error, build_transform, process, record};
    use ecomflow_core::Payload;
    use serde_json::json;

    #[test]
    fn sets_from_the_incoming_record_then_renames_then_removes() {
        let options = r#"
            set.totalUsd = "(totalAmount * rates[currency]) | round(2)"
            set.totalAmount = "totalAmount * 2"
            set.seenTotal = "totalAmount"
            rename.customerId = "customer"
            remove = ["currency"]
            lookups.rates = { USD = 1.0, EUR = 1.08 }
        "#;
        let mut t = build_transform("map", options).expect("builds");
        let batch = vec![record(
            json!({"customerId": "ann", "currency": "EUR", "totalAmount": 10}),
        )];
        let (out, dead) = process(t.as_mut(), batch);
        assert!(dead.is_empty());
        assert_eq!(
            serde_json::to_string(&out[0]).expect("json"),
            r#"{"customer":"ann","totalAmount":20,"totalUsd":10.8,"seenTotal":10}"#
        );
    }

    #[test]
    fn a_failing_expression_dead_letters_the_unchanged_record() {
        let options = r#"
            set.ok = "1"
            set.usd = "totalAmount * rates[currency]"
            lookups.rates = { USD = 1.0 }
        "#;
        let mut t = build_transform("map", options).expect("builds");
        let no_amount = record(json!({"currency": "USD"}));
        let unknown_currency = record(json!({"totalAmount": 5, "currency": "XXX"}));
        let fine = record(json!({"totalAmount": 5, "currency": "USD"}));
        let (out, dead) = process(
            t.as_mut(),
            vec![no_amount.clone(), unknown_currency.clone(), fine],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to_json()["usd"], json!(5.0));
        assert_eq!(dead.len(), 2);
        // ecomflow-core says "missing field" only when minijinja reports an undefined value;
        // for arithmetic on a missing field it reports the operation, naming the expression.
        assert!(
            dead[0].0.starts_with("set.usd: ") && dead[0].0.contains("totalAmount"),
            "{}",
            dead[0].0
        );
        assert_eq!(dead[0].1, Payload::Record(no_amount));
        assert!(
            dead[1]
                .0
                .starts_with("set.usd: `totalAmount * rates[currency]` failed"),
            "{}",
            dead[1].0
        );
        assert_eq!(dead[1].1, Payload::Record(unknown_currency));
    }

    #[test]
    fn bad_expressions_and_empty_maps_are_build_errors() {
        let e = build_error(build_transform("map", "set.x = \"1 +\""));
        assert_eq!(e.field.as_deref(), Some("set.x"));
        assert!(
            e.message.starts_with("expression does not compile: "),
            "{e}"
        );
        let e = build_error(build_transform("map", ""));
        assert!(e.message.contains("nothing to do"), "{e}");
        let e = build_error(build_transform("map", "sett.x = \"1\""));
        assert!(e.message.contains("unknown field `sett`"), "{e}");
    }
}
