//! Test helpers: build plugins from TOML through the registry and run them on real channels.

use ecomflow_core::component::DeadLetterOutput;
use ecomflow_core::registry::Builder;
use ecomflow_core::{
    Batch, BuildContext, BuildError, Counters, DeadLetter, Emitter, Field, Kind, Message, Output,
    Payload, Plugin, Record, Sink, SinkContext, Source, SourceContext, Transform, Value,
};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn plugin(kind: Kind, name: &str) -> &'static Plugin {
    Plugin::find(kind, name).unwrap_or_else(|| panic!("{} `{name}` is not registered", kind.noun()))
}

fn context(kind: Kind) -> BuildContext {
    BuildContext {
        component: format!("{}.test", kind.table()),
        base_dir: ".".into(),
    }
}

/// Builds the source `name` from TOML options, exactly as the runtime does.
pub fn build_source(name: &str, options: &str) -> Result<Box<dyn Source>, BuildError> {
    let table = toml::de::DeTable::parse(options).expect("options are valid TOML");
    match plugin(Kind::Source, name).builder {
        Builder::Source(build) => build(table, &context(Kind::Source)),
        _ => panic!("`{name}` is not a source"),
    }
}

/// Builds the transform `name` from TOML options, exactly as the runtime does.
pub fn build_transform(name: &str, options: &str) -> Result<Box<dyn Transform>, BuildError> {
    let table = toml::de::DeTable::parse(options).expect("options are valid TOML");
    match plugin(Kind::Transform, name).builder {
        Builder::Transform(build) => build(table, &context(Kind::Transform)),
        _ => panic!("`{name}` is not a transform"),
    }
}

/// Builds the sink `name` from TOML options, exactly as the runtime does.
pub fn build_sink(name: &str, options: &str) -> Result<Box<dyn Sink>, BuildError> {
    let table = toml::de::DeTable::parse(options).expect("options are valid TOML");
    match plugin(Kind::Sink, name).builder {
        Builder::Sink(build) => build(table, &context(Kind::Sink)),
        _ => panic!("`{name}` is not a sink"),
    }
}

/// The build error's text, for sources, transforms and sinks alike.
pub fn build_error<T>(result: Result<T, BuildError>) -> BuildError {
    match result {
        Ok(_) => panic!("expected a build error"),
        Err(e) => e,
    }
}

/// A record from a JSON object.
pub fn record(json: serde_json::Value) -> Record {
    let serde_json::Value::Object(map) = json else {
        panic!("not an object: {json}");
    };
    let mut r = Record::with_capacity(map.len());
    for (k, v) in map {
        r.push(Field::new(&k), Value::from_json(v));
    }
    r
}

/// Runs a transform over one batch and returns (records, dead letters).
pub fn process(t: &mut dyn Transform, batch: Batch) -> (Batch, Vec<(String, Payload)>) {
    let mut out = Emitter::default();
    t.process(batch, &mut out);
    let (records, named, dead) = out.take();
    assert!(named.is_empty(), "no named outputs expected");
    (records, dead)
}

/// A source context on real channels, with its receivers and shutdown token.
pub struct SourceHarness {
    /// What the source sends downstream.
    pub rx: BatchReceiver,
    /// What the source dead-letters.
    pub dead_rx: mpsc::Receiver<Vec<DeadLetter>>,
    /// The token that asks the source to stop.
    pub shutdown: CancellationToken,
    /// The source's counters.
    pub counters: Arc<Counters>,
}

/// The receiving end of a source's output, yielding batches and skipping watermarks.
pub struct BatchReceiver(mpsc::Receiver<Message>);

impl BatchReceiver {
    /// The next batch, or `None` when the source has ended.
    pub async fn recv(&mut self) -> Option<Batch> {
        loop {
            if let Message::Batch(b) = self.0.recv().await? {
                return Some(std::sync::Arc::unwrap_or_clone(b));
            }
        }
    }
}

/// A fresh source context and the harness to observe it.
pub fn source_context() -> (SourceContext, SourceHarness) {
    let (tx, rx) = mpsc::channel(4);
    let (dead_tx, dead_rx) = mpsc::channel(4);
    let counters = Arc::new(Counters::default());
    let shutdown = CancellationToken::new();
    let cx = SourceContext {
        output: Output::new(vec![(tx, 0)]),
        dead_letter: DeadLetterOutput::new("sources.test".into(), dead_tx, counters.clone()),
        shutdown: shutdown.clone(),
        counters: counters.clone(),
        event_time: None,
    };
    (
        cx,
        SourceHarness {
            rx: BatchReceiver(rx),
            dead_rx,
            shutdown,
            counters,
        },
    )
}

/// Runs a source to its end while draining both of its outputs.
pub async fn run_source(source: Box<dyn Source>) -> (Vec<Batch>, Vec<DeadLetter>) {
    let (cx, h) = source_context();
    let SourceHarness {
        mut rx,
        mut dead_rx,
        ..
    } = h;
    let batches = async move {
        let mut all = Vec::new();
        while let Some(b) = rx.recv().await {
            all.push(b);
        }
        all
    };
    let dead = async move {
        let mut all = Vec::new();
        while let Some(d) = dead_rx.recv().await {
            all.extend(d);
        }
        all
    };
    let (result, batches, dead) = tokio::join!(source.run(cx), batches, dead);
    result.expect("source runs");
    (batches, dead)
}

/// A sink context on a real channel, with the dead-letter receiver.
pub fn sink_context() -> (SinkContext, mpsc::Receiver<Vec<DeadLetter>>) {
    let (dead_tx, dead_rx) = mpsc::channel(16);
    let counters = Arc::new(Counters::default());
    let cx = SinkContext {
        dead_letter: DeadLetterOutput::new("sinks.test".into(), dead_tx, counters),
    };
    (cx, dead_rx)
}

#[test]
fn every_built_in_is_registered_with_documented_options_and_defaults() {
    let ours = [
        (Kind::Source, "generator"),
        (Kind::Source, "file"),
        (Kind::Transform, "filter"),
        (Kind::Transform, "map"),
        (Kind::Transform, "validate"),
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
    ecomflow_core::time::parse_iso(s, true).expect("time")
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
