//! Test helpers: the shared ones from `ecomflow_core::testing`, and drivers for the
//! transforms' golden tests.

pub use ecomflow_core::testing::*;
use ecomflow_core::{Emitter, Kind, Payload, Record, Transform};

#[test]
fn every_built_in_is_registered_with_documented_options_and_defaults() {
    let ours = [
        (Kind::Source, "generator"),
        (Kind::Source, "file"),
        (Kind::Transform, "filter"),
        (Kind::Transform, "map"),
        (Kind::Transform, "validate"),
        (Kind::Transform, "storable"),
        (Kind::Transform, "aggregate"),
        (Kind::Transform, "window"),
        (Kind::Sink, "console"),
        (Kind::Sink, "file"),
        (Kind::Sink, "blackhole"),
    ];
    for (kind, name) in ours {
        let p = plugin(kind, name);
        assert!(!p.summary.is_empty());
        let schema = serde_json::to_value((p.schema)()).expect("schema is JSON");
        let empty = serde_json::Map::new();
        let properties = match name {
            // These two take no options.
            "console" | "blackhole" => schema["properties"].as_object().unwrap_or(&empty),
            _ => schema["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("{name} has no documented options: {schema}")),
        };
        for (option, s) in properties {
            assert!(
                s["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{name}.{option} has no documentation: {s}"
            );
        }
    }
    let generator =
        serde_json::to_value((plugin(Kind::Source, "generator").schema)()).expect("schema is JSON");
    assert_eq!(generator["properties"]["event_step_ms"]["default"], 60_000);
    assert_eq!(
        generator["properties"]["start_time"]["default"],
        "2025-01-01T00:00:00Z"
    );
    let validate = serde_json::to_value((plugin(Kind::Transform, "validate").schema)())
        .expect("schema is JSON");
    assert_eq!(validate["properties"]["unknown_fields"]["default"], "keep");
    assert_eq!(validate["required"], serde_json::json!(["fields"]));
    let file = serde_json::to_value((plugin(Kind::Sink, "file").schema)()).expect("JSON");
    assert_eq!(file["properties"]["append"]["default"], true);
}

/// Everything a transform emitted over a run.
#[derive(Default)]
pub struct Seen {
    /// Rows on the default output.
    pub rows: Vec<Record>,
    /// Records on the `late` output.
    pub late: Vec<Record>,
    /// Dead letters.
    pub dead: Vec<(String, Payload)>,
    /// Records dropped on purpose.
    pub dropped: u64,
}

impl Seen {
    /// Adds what `out` holds.
    pub fn collect(&mut self, out: &mut Emitter) {
        let (rows, named, dead) = out.take();
        self.rows.extend(rows);
        for (port, batch) in named {
            assert_eq!(port, "late");
            self.late.extend(batch);
        }
        self.dead.extend(dead);
        self.dropped += out.take_dropped();
    }

    /// The last row emitted for each key (what an upsert sink ends with), as JSON, sorted.
    pub fn table(&self, keys: &[&str]) -> Vec<serde_json::Value> {
        let mut last: Vec<(String, serde_json::Value)> = Vec::new();
        for r in &self.rows {
            let j = r.to_json();
            let k = keys
                .iter()
                .map(|k| j[k].to_string())
                .collect::<Vec<_>>()
                .join("|");
            match last.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = j,
                None => last.push((k, j)),
            }
        }
        last.sort_by(|a, b| a.0.cmp(&b.0));
        last.into_iter().map(|(_, j)| j).collect()
    }
}

/// Microseconds of an RFC 3339 time.
pub fn us(s: &str) -> i64 {
    ecomflow_time::parse_iso(s, true).expect("time")
}

/// A sale at `t` (RFC 3339) with `fields`.
pub fn at(t: &str, fields: serde_json::Value) -> Record {
    let mut r = record(fields);
    r.set_time(us(t));
    r
}

/// Runs one batch through `t`.
pub fn feed(t: &mut dyn Transform, seen: &mut Seen, batch: Vec<Record>) {
    let mut out = Emitter::default();
    t.process(batch, &mut out);
    seen.collect(&mut out);
}

/// Gives `t` a watermark.
pub fn watermark(t: &mut dyn Transform, seen: &mut Seen, at: &str) {
    let mut out = Emitter::default();
    t.on_watermark(us(at), &mut out);
    seen.collect(&mut out);
}

/// Ends `t`'s input.
pub fn flush(t: &mut dyn Transform, seen: &mut Seen) {
    let mut out = Emitter::default();
    t.flush(&mut out);
    seen.collect(&mut out);
}
