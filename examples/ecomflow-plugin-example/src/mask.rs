//! The `mask` transform: hides all but the first characters of string fields (customer ids
//! before they leave the pipeline, say).

use ecomflow_core::schemars::JsonSchema;
use ecomflow_core::serde::Deserialize;
use ecomflow_core::{Batch, BuildContext, BuildError, Emitter, Field, Plugin};
use ecomflow_core::{Transform, TransformPlugin, Value};

/// Options of the `mask` transform.
#[derive(Deserialize, JsonSchema)]
#[serde(crate = "ecomflow_core::serde", deny_unknown_fields)]
#[schemars(crate = "ecomflow_core::schemars")]
pub struct MaskConfig {
    /// The string fields to mask. Other types and absent fields are left alone.
    pub fields: Vec<String>,
    /// How many leading characters stay visible.
    #[serde(default)]
    pub keep: usize,
}

/// The `mask` transform: the fields (resolved once, at build, never per record) and how many
/// characters stay visible.
pub struct Mask(Vec<Field>, usize);

impl TransformPlugin for Mask {
    type Config = MaskConfig;

    fn build(config: MaskConfig, _: &BuildContext) -> Result<Box<dyn Transform>, BuildError> {
        if config.fields.is_empty() {
            return Err(BuildError::field("fields", "name a field to mask"));
        }
        let fields = config.fields.iter().map(|f| Field::new(f)).collect();
        Ok(Box::new(Mask(fields, config.keep)))
    }
}

impl Transform for Mask {
    fn process(&mut self, batch: Batch, out: &mut Emitter) {
        for mut record in batch {
            for &field in &self.0 {
                if let Some(Value::Str(s)) = record.get(field) {
                    let shown: String = s.chars().take(self.1).collect();
                    let hidden = s.chars().count().saturating_sub(self.1);
                    record.set(field, Value::from(shown + &"*".repeat(hidden)));
                }
            }
            out.emit(record);
        }
    }
}

ecomflow_core::inventory::submit!(Plugin::transform::<Mask>("mask", "Masks string fields"));

#[cfg(test)]
mod tests {
    use super::*;
    use ecomflow_core::Record;

    #[test]
    fn masks_strings_and_leaves_the_rest() {
        let fields = vec![Field::new("customerId"), Field::new("productQuantity")];
        let mut t = Mask(fields, 2);
        let mut r = Record::default();
        r.push(Field::new("customerId"), Value::from("alice99"));
        r.push(Field::new("productQuantity"), Value::Int(3));
        let mut out = Emitter::default();
        t.process(vec![r], &mut out);
        let (records, _, dead) = out.take();
        assert!(dead.is_empty());
        let masked = records[0].get(Field::new("customerId"));
        assert_eq!(masked, Some(&Value::from("al*****")));
        let quantity = records[0].get(Field::new("productQuantity"));
        assert_eq!(quantity, Some(&Value::Int(3)));
    }
}
