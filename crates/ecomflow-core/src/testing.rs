//! Helpers for testing plugins (the `testing` feature, for dev-dependencies): build a plugin
//! from TOML options through the registry exactly as the runtime does, run it on real
//! channels, and read what it sent and dead-lettered; cut a real server off with a
//! [`Proxy`].

mod proxy;

pub use proxy::Proxy;

use crate::channel::InputReceiver;
use crate::component::DeadLetterOutput;
use crate::registry::Builder;
use crate::{
    Batch, BuildContext, BuildError, Counters, DeadLetter, Emitter, Field, Kind, Message, Output,
    Payload, Plugin, Record, Sink, SinkContext, Source, SourceContext, Transform, Value,
};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The registered plugin of `kind` named `name` (panics when it is not linked in).
pub fn plugin(kind: Kind, name: &str) -> &'static Plugin {
    Plugin::find(kind, name).unwrap_or_else(|| panic!("{} `{name}` is not registered", kind.noun()))
}

fn context(kind: Kind, base_dir: &Path) -> BuildContext {
    BuildContext {
        component: format!("{}.test", kind.table()),
        base_dir: base_dir.to_path_buf(),
        admissions: Default::default(),
    }
}

/// Builds the source `name` from TOML options, exactly as the runtime does.
pub fn build_source(name: &str, options: &str) -> Result<Box<dyn Source>, BuildError> {
    let table = toml::de::DeTable::parse(options).expect("options are valid TOML");
    match plugin(Kind::Source, name).builder {
        Builder::Source(build) => build(table, &context(Kind::Source, Path::new("."))),
        _ => panic!("`{name}` is not a source"),
    }
}

/// Builds the transform `name` from TOML options, exactly as the runtime does.
pub fn build_transform(name: &str, options: &str) -> Result<Box<dyn Transform>, BuildError> {
    let table = toml::de::DeTable::parse(options).expect("options are valid TOML");
    match plugin(Kind::Transform, name).builder {
        Builder::Transform(build) => build(table, &context(Kind::Transform, Path::new("."))),
        _ => panic!("`{name}` is not a transform"),
    }
}

/// Builds the transform `name` from TOML options in a pipeline whose sinks' refusals are
/// `admissions`.
pub fn build_transform_with(
    name: &str,
    options: &str,
    admissions: &crate::Admissions,
) -> Result<Box<dyn Transform>, BuildError> {
    let table = toml::de::DeTable::parse(options).expect("options are valid TOML");
    let mut cx = context(Kind::Transform, Path::new("."));
    cx.admissions = admissions.clone();
    match plugin(Kind::Transform, name).builder {
        Builder::Transform(build) => build(table, &cx),
        _ => panic!("`{name}` is not a transform"),
    }
}

/// Builds the sink `name` from TOML options, exactly as the runtime does.
pub fn build_sink(name: &str, options: &str) -> Result<Box<dyn Sink>, BuildError> {
    build_sink_in(name, options, Path::new("."))
}

/// Builds the sink `name` as if its pipeline file were in `base_dir` (for options naming
/// files shipped beside the pipeline).
pub fn build_sink_in(
    name: &str,
    options: &str,
    base_dir: &Path,
) -> Result<Box<dyn Sink>, BuildError> {
    let table = toml::de::DeTable::parse(options).expect("options are valid TOML");
    match plugin(Kind::Sink, name).builder {
        Builder::Sink(build) => build(table, &context(Kind::Sink, base_dir)),
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
    pub dead_rx: LetterReceiver,
    /// The token that asks the source to stop.
    pub shutdown: CancellationToken,
    /// The source's counters.
    pub counters: Arc<Counters>,
}

/// The receiving end of a source's output, yielding batches and skipping watermarks.
pub struct BatchReceiver(InputReceiver<Message>);

impl BatchReceiver {
    /// The next batch, or `None` when the source has ended.
    pub async fn recv(&mut self) -> Option<Batch> {
        loop {
            if let Message::Batch { batch, .. } = self.0.recv().await? {
                return Some(Arc::unwrap_or_clone(batch));
            }
        }
    }
}

/// The receiving end of a collected dead-letter output.
pub struct LetterReceiver(mpsc::UnboundedReceiver<Vec<DeadLetter>>);

impl LetterReceiver {
    /// The next letters, or `None` when every sender has gone.
    pub async fn recv(&mut self) -> Option<Vec<DeadLetter>> {
        self.0.recv().await
    }

    /// The next letters already sent, without waiting.
    pub fn try_recv(&mut self) -> Option<Vec<DeadLetter>> {
        self.0.try_recv().ok()
    }
}

/// A fresh source context and the harness to observe it.
pub fn source_context() -> (SourceContext, SourceHarness) {
    let (tx, rx) = crate::channel::input(crate::channel::Capacity {
        messages: 4,
        ..Default::default()
    });
    let counters = Arc::new(Counters::default());
    let (dead_letter, dead_rx) =
        DeadLetterOutput::collected("sources.test".into(), counters.clone());
    let shutdown = CancellationToken::new();
    let cx = SourceContext {
        output: Output::new(vec![(tx, 0)]),
        dead_letter,
        shutdown: shutdown.clone(),
        counters: counters.clone(),
        event_time: None,
        checkpoints: None,
        telemetry: Arc::new(crate::telemetry::ComponentTelemetry::new(
            "sources.test".into(),
            crate::Kind::Source,
            "test",
            counters.clone(),
        )),
    };
    (
        cx,
        SourceHarness {
            rx: BatchReceiver(rx),
            dead_rx: LetterReceiver(dead_rx),
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
pub fn sink_context() -> (SinkContext, LetterReceiver) {
    let counters = Arc::new(Counters::default());
    let (dead_letter, dead_rx) = DeadLetterOutput::collected("sinks.test".into(), counters);
    let cx = SinkContext {
        dead_letter,
        telemetry: crate::telemetry::ComponentTelemetry::detached("sinks.test", crate::Kind::Sink),
    };
    (cx, LetterReceiver(dead_rx))
}

/// Every dead letter sent so far.
pub fn dead_letters(rx: &mut LetterReceiver) -> Vec<DeadLetter> {
    let mut all = Vec::new();
    while let Some(d) = rx.try_recv() {
        all.extend(d);
    }
    all
}
