//! A worked example of a third-party ecomflow plugin: the `mask` transform hides all but the
//! first characters of string fields (for example customer ids before they leave the pipeline).
//!
//! The whole plugin is this file: an options struct, the transform, and one
//! `inventory::submit!` line. See `docs/guides/writing-a-plugin.md` for the walk-through.

use ecomflow_core::schemars::JsonSchema;
use ecomflow_core::serde::Deserialize;
use ecomflow_core::{
    Batch, BuildContext, BuildError, Emitter, Field, Plugin, Transform, TransformPlugin, Value,
};

/// Options of the `mask` transform.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(crate = "ecomflow_core::serde", deny_unknown_fields)]
#[schemars(crate = "ecomflow_core::schemars")]
pub struct MaskConfig {
    /// The string fields to mask. Other types and absent fields are left alone.
    pub fields: Vec<String>,
    /// How many leading characters stay visible.
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// The character that replaces the hidden ones.
    #[serde(default = "default_with")]
    pub with: char,
}

fn default_keep() -> usize {
    1
}

fn default_with() -> char {
    '*'
}

/// The `mask` transform, built from [`MaskConfig`].
pub struct Mask {
    fields: Vec<Field>,
    keep: usize,
    with: char,
}

impl TransformPlugin for Mask {
    type Config = MaskConfig;

    fn build(config: MaskConfig, _cx: &BuildContext) -> Result<Box<dyn Transform>, BuildError> {
        if config.fields.is_empty() {
            return Err(BuildError::field(
                "fields",
                "name at least one field to mask",
            ));
        }
        Ok(Box::new(Mask {
            // Field names are resolved once here, never per record.
            fields: config.fields.iter().map(|f| Field::new(f)).collect(),
            keep: config.keep,
            with: config.with,
        }))
    }
}

impl Transform for Mask {
    fn process(&mut self, batch: Batch, out: &mut Emitter) {
        for mut record in batch {
            for &field in &self.fields {
                if let Some(Value::Str(s)) = record.get(field) {
                    let masked: String = s
                        .chars()
                        .enumerate()
                        .map(|(i, c)| if i < self.keep { c } else { self.with })
                        .collect();
                    record.set(field, Value::from(masked.as_str()));
                }
            }
            out.emit(record);
        }
    }
}

ecomflow_core::inventory::submit!(Plugin::transform::<Mask>(
    "mask",
    "Hides all but the first characters of string fields"
));

#[cfg(test)]
mod tests {
    use super::*;
    use ecomflow_core::Record;

    #[test]
    fn masks_strings_and_leaves_the_rest() {
        let mut t = Mask {
            fields: vec![Field::new("customerId"), Field::new("productQuantity")],
            keep: 2,
            with: '#',
        };
        let mut r = Record::default();
        r.push(Field::new("customerId"), Value::from("alice99"));
        r.push(Field::new("productQuantity"), Value::Int(3));
        let mut out = Emitter::default();
        t.process(vec![r], &mut out);
        let (records, _, dead) = out.take();
        assert!(dead.is_empty());
        assert_eq!(
            records[0].get(Field::new("customerId")),
            Some(&Value::from("al#####"))
        );
        assert_eq!(
            records[0].get(Field::new("productQuantity")),
            Some(&Value::Int(3))
        );
    }
}
