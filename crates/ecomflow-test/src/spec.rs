//! The test file's format: which pipeline files it tests, and each test's steps in order,
//! each step kept with its position in the file for the failure messages. A pipeline file may
//! hold `[[tests]]` of its own in the same format.

use serde::Deserialize;
use toml::Spanned;

/// A test file (`*.test.toml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The pipeline files under test, relative to this file; several form one pipeline, as
    /// with `ecomflow run`.
    pub pipelines: Spanned<Vec<String>>,
    /// The tests, run one after another, each on a fresh pipeline.
    #[serde(default)]
    pub tests: Vec<Spanned<TestCase>>,
}

/// The `[[tests]]` of a pipeline file (its other tables are the pipeline's).
#[derive(Debug, Deserialize)]
pub struct PipelineTests {
    /// The tests of this pipeline file alone.
    #[serde(default)]
    pub tests: Vec<Spanned<TestCase>>,
}

/// One test: a name and its steps.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// What the test shows, printed with its result.
    pub name: String,
    /// `PATH=VALUE` overrides of the pipeline's options for this test, as `ecomflow run
    /// --set` takes them (`sinks.db.url=sqlite::memory:`).
    #[serde(default)]
    pub set: Vec<String>,
    /// Sinks that run for real in this test: they open (their database must be there; an
    /// SQLite file or `sqlite::memory:` needs no server), write every batch at once and
    /// finish at the end, and what they cannot write goes to the dead letters as in a run.
    /// The other sinks only keep what they are given.
    #[serde(default)]
    pub real_sinks: Vec<String>,
    /// What happens, in order: records sent, time moved, restarts, and expectations.
    #[serde(default)]
    pub steps: Vec<Spanned<Step>>,
}

/// One step. Exactly one of `send`, `watermark`, `advance`, `restart`, `end` and `expect`
/// says what it does; the other keys qualify it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Sends records as if the source with this id (`transactions`) had read them: the
    /// source's `event_time` reads their event time (a record without one goes to the dead
    /// letters, as in a run) and its watermark moves as it would. With the id of a transform
    /// or sink, the records go straight into its input; a record with the event-time field
    /// of the source upstream is stamped by it (and moves its watermark), one without goes in
    /// without an event time.
    pub send: Option<String>,
    /// With `send`: the source partition the records come from (default 0). An empty `send`
    /// to a partition makes it known: it holds the watermark back until it sends or has been
    /// silent for the source's `idle_timeout` (see `advance`). A source that keeps state per
    /// partition (`kafka`) has one instance of every transform per partition, each with its
    /// own watermark. With `watermark`, for such a source: the partition whose watermark
    /// moves (by default every partition that has sent).
    pub partition: Option<i32>,
    /// With `send` into a transform or sink that has several inputs: the one the records come
    /// in by (`usd`, or `window.late`).
    pub from: Option<String>,
    /// With `send`: the records, as inline tables. With `expect`: the records expected.
    pub records: Option<Vec<toml::Table>>,
    /// With `send`: the records as JSON lines (a line that is not JSON goes to the dead
    /// letters, as the file source does).
    pub lines: Option<String>,
    /// With `send`: a file of JSON lines, relative to the test file.
    pub file: Option<String>,
    /// Moves the watermark to this time (RFC 3339, such as `2025-02-01T00:05:00Z`): of
    /// the source `input`, or of every source that reads event time.
    pub watermark: Option<toml::Value>,
    /// With `watermark`: the source whose watermark moves.
    pub input: Option<String>,
    /// Moves the processing clock by this much (`30s`): each transform with a timer
    /// (`emit_interval`, early updates) fires once for every interval that passes, and a
    /// source partition silent for its `idle_timeout` stops holding the watermark back.
    pub advance: Option<String>,
    /// `true`: stops the pipeline at a checkpoint and starts it again from it (every
    /// transform's state goes through the checkpoint's JSON into a freshly built pipeline).
    pub restart: Option<bool>,
    /// `true`: every source ends, so the watermark passes everything and transforms flush.
    pub end: Option<bool>,
    /// Checks what a component emitted since the last `expect` on it: a transform or
    /// source id (`sales_per_day`), a named output (`failures_per_minute.late`), a sink id
    /// (the rows its table holds now, one per key for an upsert `sql` sink; for other sinks,
    /// what they were given since the last `expect`) or `dead_letter` (each with
    /// `component`, `reason` and `payload`).
    pub expect: Option<String>,
    /// With `expect`: records expected, compared only on the fields given (nested tables
    /// too).
    #[serde(rename = "match")]
    pub match_fields: Option<Vec<toml::Table>>,
    /// With `expect`: an expression every record emitted must make true
    /// (`total_sales > 0`).
    pub condition: Option<String>,
    /// With `expect`: how many records were emitted (after `latest_by`).
    pub count: Option<usize>,
    /// With `expect`: keep only the last record of each value of these fields, as an upsert
    /// table keyed by them would (`["transaction_date"]`).
    pub latest_by: Option<Vec<String>>,
    /// With `expect` and `records` or `match`: the records must come in this order (by
    /// default any order).
    pub ordered: Option<bool>,
}
