//! The `storable` transform: refuses, once and before the fan-out, every record that one of
//! the sinks it names would refuse (a text longer than its column, a NUL character, an
//! integer out of range, an id Elasticsearch cannot take), with that sink's reason. Placed
//! where a stream splits into tables and aggregates, it keeps them in agreement: a record is
//! in all of them or in none.

use ecomflow_core::{
    Admission, Admissions, Batch, BuildContext, BuildError, Emitter, Plugin, Record, Said,
    Transform, TransformPlugin,
};
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;

/// Options of the `storable` transform.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StorableConfig {
    /// The sinks whose refusals apply, by id (`transactions_table`, as in `inputs`). A record
    /// that any of them would refuse goes to the dead-letter output with the sink's reason,
    /// and no further. Each sink says what it refuses once open (a `sql` sink from its
    /// table's columns, an `elasticsearch` sink from its index's limits), before the first
    /// record is read; a sink that says nothing lets every record pass (with a warning), as
    /// does a sink that `ecomflow test` does not run for real.
    pub sinks: Vec<String>,
}

/// Registers the `storable` transform.
pub struct StorablePlugin;

impl TransformPlugin for StorablePlugin {
    type Config = StorableConfig;

    fn build(cfg: StorableConfig, cx: &BuildContext) -> Result<Box<dyn Transform>, BuildError> {
        if cfg.sinks.is_empty() {
            return Err(BuildError::field("sinks", "name at least one sink"));
        }
        let known = cx.admissions.sinks();
        for sink in &cfg.sinks {
            if !known.contains(sink) {
                let all: Vec<&str> = known.iter().map(String::as_str).collect();
                return Err(BuildError::field(
                    "sinks",
                    format!(
                        "there is no sink `{sink}` (the pipeline's sinks: {})",
                        all.join(", ")
                    ),
                ));
            }
        }
        Ok(Box::new(Storable {
            sinks: cfg.sinks,
            admissions: cx.admissions.clone(),
            resolved: None,
            pending: Vec::new(),
        }))
    }
}

struct Storable {
    sinks: Vec<String>,
    admissions: Admissions,
    /// Each sink's refusals, once every sink named has said (in a run, before the first
    /// record).
    resolved: Option<Vec<(String, Arc<dyn Admission>)>>,
    /// What the sinks that have said refuse, while another has not opened yet.
    pending: Vec<(String, Arc<dyn Admission>)>,
}

impl Storable {
    fn resolved(&mut self) -> &[(String, Arc<dyn Admission>)] {
        if self.resolved.is_none() {
            let mut all_said = true;
            let mut found = Vec::new();
            for id in &self.sinks {
                match self.admissions.get(id) {
                    Said::Refuses(a) => found.push((format!("sinks.{id}"), a)),
                    Said::Nothing => tracing::warn!(
                        sink = %id,
                        "the sink says nothing about what it refuses: every record passes for it"
                    ),
                    // Not open: in `ecomflow test` without `real_sinks` (nothing is known),
                    // or a run stopped before its sinks opened. Looked up again next time.
                    Said::NotOpen => all_said = false,
                }
            }
            if !all_said {
                self.pending = found;
                return &self.pending;
            }
            self.resolved = Some(found);
        }
        self.resolved.as_deref().unwrap_or_default()
    }

    /// Why a sink would refuse `record`, naming it.
    fn refusal(&mut self, record: &Record) -> Option<String> {
        self.resolved().iter().find_map(|(sink, admission)| {
            let reason = admission.refuses(record)?;
            Some(format!("{sink} would refuse it: {reason}"))
        })
    }
}

impl Transform for Storable {
    fn process(&mut self, batch: Batch, out: &mut Emitter) {
        for record in batch {
            match self.refusal(&record) {
                None => out.emit(record),
                Some(reason) => out.dead_letter(reason, record),
            }
        }
    }

    fn process_shared(&mut self, batch: &[Record], out: &mut Emitter) {
        for record in batch {
            match self.refusal(record) {
                None => out.emit(record.clone()),
                Some(reason) => out.dead_letter(reason, record.clone()),
            }
        }
    }
}

ecomflow_core::inventory::submit!(Plugin::transform::<StorablePlugin>(
    "storable",
    "refuses, before the fan-out, what the named sinks would refuse"
));

#[cfg(test)]
mod tests {
    use crate::test_support::{process, record};
    use ecomflow_core::testing::build_transform_with;
    use ecomflow_core::{Admission, Admissions, Payload, Record, Value};
    use serde_json::json;
    use std::sync::Arc;

    /// Refuses a `name` longer than `max` characters.
    struct Longer(usize);

    impl Admission for Longer {
        fn refuses(&self, record: &Record) -> Option<String> {
            let name = record.get(ecomflow_core::Field::new("name"))?;
            match name {
                Value::Str(s) if s.chars().count() > self.0 => {
                    Some(format!("`name` is longer than {}", self.0))
                }
                _ => None,
            }
        }
    }

    #[test]
    fn what_a_named_sink_refuses_is_a_dead_letter_with_its_reason() {
        let admissions = Admissions::new(["db".to_string(), "index".to_string()]);
        admissions.publish("db", Some(Arc::new(Longer(5))));
        admissions.publish("index", Some(Arc::new(Longer(3))));
        let mut only_db =
            build_transform_with("storable", "sinks = [\"db\"]", &admissions).expect("builds");
        let batch = vec![
            record(json!({"name": "abc"})),
            record(json!({"name": "abcd"})),
            record(json!({"name": "abcdef"})),
        ];
        let (kept, dead) = process(only_db.as_mut(), batch.clone());
        assert_eq!(kept.len(), 2);
        assert_eq!(dead.len(), 1);
        assert_eq!(
            dead[0].0,
            "sinks.db would refuse it: `name` is longer than 5"
        );
        let Payload::Record(r) = &dead[0].1 else {
            panic!("the record is kept");
        };
        assert_eq!(r.to_json()["name"], json!("abcdef"));

        let mut both = build_transform_with("storable", "sinks = [\"db\", \"index\"]", &admissions)
            .expect("builds");
        let (kept, dead) = process(both.as_mut(), batch);
        assert_eq!(kept.len(), 1);
        assert_eq!(
            dead[0].0,
            "sinks.index would refuse it: `name` is longer than 3"
        );
        assert_eq!(
            dead[1].0,
            "sinks.db would refuse it: `name` is longer than 5"
        );
    }

    #[test]
    fn an_unknown_sink_is_a_build_error_that_lists_the_sinks() {
        let admissions = Admissions::new(["db".to_string()]);
        let e = build_transform_with("storable", "sinks = [\"dbb\"]", &admissions)
            .err()
            .expect("refused");
        assert_eq!(e.field.as_deref(), Some("sinks"));
        assert!(
            e.message.contains("no sink `dbb`") && e.message.contains("db"),
            "{e}"
        );
    }

    #[test]
    fn a_sink_that_says_nothing_lets_every_record_pass() {
        let admissions = Admissions::new(["console".to_string()]);
        admissions.publish("console", None);
        let mut t =
            build_transform_with("storable", "sinks = [\"console\"]", &admissions).expect("builds");
        let (kept, dead) = process(t.as_mut(), vec![record(json!({"name": "anything"}))]);
        assert_eq!((kept.len(), dead.len()), (1, 0));
    }
}
