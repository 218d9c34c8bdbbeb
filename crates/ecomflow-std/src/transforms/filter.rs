//! The `filter` transform: keeps the records for which a condition is true.

use ecomflow_core::{
    Batch, BuildContext, BuildError, Emitter, Plugin, Record, Transform, TransformPlugin,
};
use ecomflow_expr::Expr;
use schemars::JsonSchema;
use serde::Deserialize;

/// Options of the `filter` transform.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// The condition (a minijinja expression over the record's fields, such as
    /// `paymentStatus == 'success' and totalAmount > 100`). Records for which it is true are
    /// kept, the others dropped; a record it cannot be evaluated on (a missing field, a wrong
    /// type) goes to the dead-letter output.
    pub condition: String,
}

/// Registers the `filter` transform.
pub struct FilterPlugin;

impl TransformPlugin for FilterPlugin {
    type Config = FilterConfig;

    fn build(cfg: FilterConfig, _cx: &BuildContext) -> Result<Box<dyn Transform>, BuildError> {
        let condition = Expr::compile(&cfg.condition, &[]).map_err(|e| {
            BuildError::field("condition", format!("expression does not compile: {e}"))
        })?;
        Ok(Box::new(Filter { condition }))
    }
}

struct Filter {
    condition: Expr,
}

impl Transform for Filter {
    fn process(&mut self, batch: Batch, out: &mut Emitter) {
        for record in batch {
            match self.condition.is_true(&record) {
                Ok(true) => out.emit(record),
                Ok(false) => out.drop_record(),
                Err(e) => out.dead_letter(e.0, record),
            }
        }
    }

    fn process_shared(&mut self, batch: &[Record], out: &mut Emitter) {
        for record in batch {
            match self.condition.is_true(record) {
                Ok(true) => out.emit(record.clone()),
                Ok(false) => out.drop_record(),
                Err(e) => out.dead_letter(e.0, record.clone()),
            }
        }
    }
}

ecomflow_core::inventory::submit!(Plugin::transform::<FilterPlugin>(
    "filter",
    "keeps the records for which a condition is true"
));

#[cfg(test)]
mod tests {
    use crate::test_support::{build_error, build_transform, process, record};
    use ecomflow_core::Payload;
    use serde_json::json;

    #[test]
    fn keeps_true_drops_false_and_dead_letters_failures() {
        let mut t = build_transform(
            "filter",
            "condition = \"paymentStatus == 'success' and totalAmount > 100\"",
        )
        .expect("builds");
        let batch = vec![
            record(json!({"paymentStatus": "success", "totalAmount": 150.5, "n": 1})),
            record(json!({"paymentStatus": "failed", "totalAmount": 150.5, "n": 2})),
            record(json!({"paymentStatus": "success", "totalAmount": 50, "n": 3})),
            record(json!({"totalAmount": 500, "n": 4})),
            record(json!({"paymentStatus": "success", "totalAmount": 101, "n": 5})),
        ];
        let (kept, dead) = process(t.as_mut(), batch);
        let n: Vec<_> = kept.iter().map(|r| r.to_json()["n"].clone()).collect();
        assert_eq!(n, [json!(1), json!(5)]);
        assert_eq!(dead.len(), 1);
        assert!(
            dead[0].0.contains("missing field `paymentStatus`"),
            "{}",
            dead[0].0
        );
        let Payload::Record(r) = &dead[0].1 else {
            panic!("the record is kept");
        };
        assert_eq!(r.to_json()["n"], json!(4));
    }

    #[test]
    fn a_type_error_is_dead_lettered() {
        let mut t =
            build_transform("filter", "condition = \"productPrice + 1 > 10\"").expect("builds");
        let (kept, dead) = process(t.as_mut(), vec![record(json!({"productPrice": "12.x"}))]);
        assert!(kept.is_empty());
        assert_eq!(dead.len(), 1);
        assert!(dead[0].0.contains("productPrice + 1 > 10"), "{}", dead[0].0);
    }

    #[test]
    fn a_broken_condition_is_a_build_error() {
        let e = build_error(build_transform("filter", "condition = \"status ==\""));
        assert_eq!(e.field.as_deref(), Some("condition"));
        assert!(
            e.message.starts_with("expression does not compile: "),
            "{e}"
        );
        let e = build_error(build_transform("filter", ""));
        assert!(e.message.contains("missing field `condition`"), "{e}");
    }
}
