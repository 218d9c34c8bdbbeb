//! Loading, validating and running pipelines built from small test plugins.

use ecomflow_core::{
    Batch, BuildContext, BuildError, ComponentError, Emitter, Field, Incoming, Plugin, Record,
    Sink, SinkContext, SinkPlugin, Source, SourceContext, SourcePlugin, Transform, TransformPlugin,
    Value,
};
use ecomflow_runtime::{
    GraphFormat, LoadOptions, Pipeline, RunTelemetry, load, render, run, run_observed,
};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use tokio_util::sync::CancellationToken;

// ---- test plugins -------------------------------------------------------------------------

/// Emits `n` = 0, 1, 2, ... up to `count` (0 = endless), in batches of `batch`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct NumbersConfig {
    /// How many.
    count: u64,
    /// Records per batch.
    #[serde(default = "ten")]
    batch: u64,
    /// Bytes of padding in each record's `pad` field.
    #[serde(default)]
    pad: usize,
}
fn ten() -> u64 {
    10
}
struct Numbers(NumbersConfig);
impl SourcePlugin for Numbers {
    type Config = NumbersConfig;
    fn build(c: NumbersConfig, _: &BuildContext) -> Result<Box<dyn Source>, BuildError> {
        if c.batch == 0 {
            return Err(BuildError::field("batch", "must be at least 1"));
        }
        Ok(Box::new(Numbers(c)))
    }
}
#[async_trait::async_trait]
impl Source for Numbers {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), ComponentError> {
        let n = Field::new("n");
        let mut i = 0u64;
        while (self.0.count == 0 || i < self.0.count) && !cx.shutdown.is_cancelled() {
            let mut batch = Batch::new();
            while (batch.len() as u64) < self.0.batch && (self.0.count == 0 || i < self.0.count) {
                let mut r = Record::default();
                r.push(n, Value::Int(i as i64));
                if self.0.pad > 0 {
                    r.push(
                        Field::new("pad"),
                        Value::from("x".repeat(self.0.pad).as_str()),
                    );
                }
                batch.push(r);
                i += 1;
            }
            if cx.send(batch).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
        Ok(())
    }
}
inventory::submit!(Plugin::source::<Numbers>("numbers", "test numbers"));

/// Passes even numbers on, odd ones to the `odd` output, and dead-letters multiples of `dead_every`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SplitConfig {
    /// Dead-letter every n-th record (0 = none).
    #[serde(default)]
    dead_every: i64,
}
struct Split(i64);
impl TransformPlugin for Split {
    type Config = SplitConfig;
    const OUTPUTS: &'static [&'static str] = &["odd"];
    fn build(c: SplitConfig, _: &BuildContext) -> Result<Box<dyn Transform>, BuildError> {
        Ok(Box::new(Split(c.dead_every)))
    }
}
impl Transform for Split {
    fn process(&mut self, batch: Batch, out: &mut Emitter) {
        for r in batch {
            let Some(Value::Int(n)) = r.get(Field::new("n")).cloned() else {
                out.dead_letter("no n", r);
                continue;
            };
            if self.0 > 0 && n % self.0 == 0 && n > 0 {
                out.dead_letter(format!("{n} is a multiple of {}", self.0), r);
            } else if n % 2 == 0 {
                out.emit(r);
            } else {
                out.emit_to("odd", r);
            }
        }
    }
}
inventory::submit!(Plugin::transform::<Split>("split", "test split"));

/// Passes records on and remembers every watermark it is given, under `name`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct WatchConfig {
    /// Where the test finds the watermarks.
    name: String,
}
struct Watch(String);
impl TransformPlugin for Watch {
    type Config = WatchConfig;
    fn build(c: WatchConfig, _: &BuildContext) -> Result<Box<dyn Transform>, BuildError> {
        Ok(Box::new(Watch(c.name)))
    }
}
impl Transform for Watch {
    fn process(&mut self, batch: Batch, out: &mut Emitter) {
        batch.into_iter().for_each(|r| out.emit(r));
    }
    fn on_watermark(&mut self, watermark: i64, _: &mut Emitter) {
        let mut r = Record::default();
        r.push(Field::new("n"), Value::Int(watermark));
        store()
            .lock()
            .expect("lock")
            .entry(self.0.clone())
            .or_default()
            .push(r);
    }
}
inventory::submit!(Plugin::transform::<Watch>("watch", "test watermarks"));

fn store() -> &'static Mutex<HashMap<String, Vec<Record>>> {
    static S: OnceLock<Mutex<HashMap<String, Vec<Record>>>> = OnceLock::new();
    S.get_or_init(Default::default)
}
fn collected(name: &str) -> Vec<Record> {
    store()
        .lock()
        .expect("lock")
        .get(name)
        .cloned()
        .unwrap_or_default()
}

/// Collects records under `name`; fails on a record whose n equals `fail_on`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CollectConfig {
    /// Where the test finds them.
    name: String,
    /// Fail when this n arrives.
    #[serde(default)]
    fail_on: Option<i64>,
    /// Milliseconds each write takes.
    #[serde(default)]
    pause_ms: u64,
}
struct Collect(CollectConfig);
impl SinkPlugin for Collect {
    type Config = CollectConfig;
    fn build(c: CollectConfig, _: &BuildContext) -> Result<Box<dyn Sink>, BuildError> {
        Ok(Box::new(Collect(c)))
    }
}
#[async_trait::async_trait]
impl Sink for Collect {
    async fn write(&mut self, batch: Incoming, _: &SinkContext) -> Result<(), ComponentError> {
        let batch = batch.into_records();
        tokio::time::sleep(std::time::Duration::from_millis(self.0.pause_ms)).await;
        if let Some(f) = self.0.fail_on
            && batch
                .iter()
                .any(|r| r.get(Field::new("n")) == Some(&Value::Int(f)))
        {
            return Err(ComponentError::Other(format!("refused record {f}")));
        }
        store()
            .lock()
            .expect("lock")
            .entry(self.0.name.clone())
            .or_default()
            .extend(batch);
        Ok(())
    }
}
inventory::submit!(Plugin::sink::<Collect>("collect", "test collect"));

// ---- helpers ------------------------------------------------------------------------------

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).expect("write pipeline");
    p
}

fn load_with(
    paths: &[PathBuf],
    sets: &[String],
    vars: &[(&str, &str)],
) -> Result<Pipeline, String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env = move |n: &str| vars.get(n).cloned();
    load(paths, &LoadOptions { sets, env: &env }).map_err(|d| d.to_string())
}

fn numbers(r: &[Record]) -> Vec<i64> {
    let mut v: Vec<i64> = r
        .iter()
        .filter_map(|r| match r.get(Field::new("n")) {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

const GOOD: &str = r#"
[sources.nums]
type = "numbers"
count = 20

[transforms.split]
type = "split"
inputs = ["nums"]
dead_every = 5

[sinks.even]
type = "collect"
inputs = ["split"]
name = "${RUN}-even"

[sinks.odd]
type = "collect"
inputs = ["split.odd"]
name = "${RUN}-odd"

[dead_letter]
type = "collect"
name = "${RUN}-dead"
"#;

// ---- tests --------------------------------------------------------------------------------

#[tokio::test]
async fn runs_fan_out_named_outputs_and_dead_letters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(&dir, "good.toml", GOOD);
    let pipeline = load_with(&[p], &[], &[("RUN", "r1")]).expect("valid");
    let summary = run(pipeline, CancellationToken::new()).await.expect("runs");

    assert_eq!(
        numbers(&collected("r1-even")),
        [0, 2, 4, 6, 8, 12, 14, 16, 18]
    );
    assert_eq!(numbers(&collected("r1-odd")), [1, 3, 7, 9, 11, 13, 17, 19]);
    let dead = collected("r1-dead");
    assert_eq!(dead.len(), 3);
    let first = &dead[0];
    assert_eq!(
        first.get(Field::new("component")),
        Some(&Value::from("transforms.split"))
    );
    assert!(
        matches!(first.get(Field::new("reason")), Some(Value::Str(s)) if s.contains("multiple of 5"))
    );
    let split = summary.get("transforms.split").expect("split summary");
    assert_eq!(
        (split.received, split.sent, split.dead_lettered),
        (20, 17, 3)
    );
    assert_eq!(summary.get("dead_letter").map(|d| d.sent), Some(3));
}

#[tokio::test]
async fn set_overrides_an_option() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(&dir, "good.toml", GOOD);
    let sets = vec![
        "sources.nums.count=4".to_string(),
        "transforms.split.dead_every=0".to_string(),
    ];
    let pipeline = load_with(&[p], &sets, &[("RUN", "r2")]).expect("valid");
    run(pipeline, CancellationToken::new()).await.expect("runs");
    assert_eq!(numbers(&collected("r2-even")), [0, 2]);
    assert_eq!(numbers(&collected("r2-odd")), [1, 3]);
}

#[tokio::test]
async fn shutdown_drains_everything_already_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(&dir, "endless.toml", GOOD);
    let sets = vec![
        "sources.nums.count=0".to_string(),
        "transforms.split.dead_every=0".to_string(),
    ];
    let pipeline = load_with(&[p], &sets, &[("RUN", "r3")]).expect("valid");
    let token = CancellationToken::new();
    let stopper = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        stopper.cancel();
    });
    let summary = run(pipeline, token).await.expect("runs");
    let produced = summary.get("sources.nums").expect("source").sent;
    assert!(produced > 0);
    let written = collected("r3-even").len() + collected("r3-odd").len();
    assert_eq!(written as u64, produced, "every record read was written");
}

#[tokio::test]
async fn a_failing_sink_stops_the_run_with_its_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(&dir, "good.toml", GOOD);
    let sets = vec![
        "sinks.even.fail_on=4".to_string(),
        "sources.nums.count=0".to_string(),
    ];
    let pipeline = load_with(&[p], &sets, &[("RUN", "r4")]).expect("valid");
    let failure = run(pipeline, CancellationToken::new())
        .await
        .expect_err("fails");
    assert_eq!(failure.failures.len(), 1);
    assert_eq!(failure.failures[0].0, "sinks.even");
    assert!(failure.failures[0].1.contains("refused record 4"));
}

#[test]
fn every_error_is_reported_with_line_and_component() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = r#"
[sources.nums]
type = "numbers"
cont = 20

[sources.other]
type = "numbrs"
count = 1

[transforms.split]
type = "split"
inputs = ["nmus"]

[transforms.a]
type = "split"
inputs = ["b"]

[transforms.b]
type = "split"
inputs = ["a"]

[sinks.out]
type = "collect"
name = "${NOT_SET}"

[sinks.wrong]
type = "split"
inputs = ["nums"]

[dead_letter]
type = "collect"
name = "d"
"#;
    let p = write(&dir, "broken.toml", text);
    let err = load_with(&[p], &[], &[]).expect_err("invalid");
    let expect = [
        "broken.toml:4:1: sources.nums: unknown field `cont`, expected one of `count`, `batch`, `pad`",
        "broken.toml:6:10: sources.other: unknown source type `numbrs`",
        "did you mean `numbers`?",
        "transforms.split: input `nmus` names no component",
        "did you mean `nums`?",
        "cycle: ",
        "broken.toml:24:8: environment variable `NOT_SET` is not set",
        "broken.toml:22:8: sinks.out: a sink needs `inputs`",
        "sinks.wrong: `split` is a transform plugin, not a sink",
    ];
    for e in expect {
        assert!(err.contains(e), "missing {e:?} in:\n{err}");
    }
    assert!(err.contains("7 errors found"), "{err}");
}

#[test]
fn build_errors_point_at_the_option() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(
        &dir,
        "b.toml",
        "[sources.nums]\ntype = \"numbers\"\ncount = 3\nbatch = 0\n\n[dead_letter]\ntype = \"collect\"\nname = \"x\"\n",
    );
    let err = load_with(&[p], &[], &[]).expect_err("invalid");
    assert!(
        err.contains("b.toml:4:9: sources.nums: `batch`: must be at least 1"),
        "{err}"
    );
}

#[test]
fn an_unknown_or_missing_option_points_to_the_list_of_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dead = "\n[dead_letter]\ntype = \"collect\"\nname = \"x\"\n";
    let hint = "see the options of `numbers` with: ecomflow list";
    let unknown = write(
        &dir,
        "u.toml",
        &format!("[sources.nums]\ntype = \"numbers\"\ncont = 3\n{dead}"),
    );
    let err = load_with(&[unknown], &[], &[]).expect_err("invalid");
    assert!(
        err.contains("unknown field `cont`") && err.contains(hint),
        "{err}"
    );
    let missing = write(
        &dir,
        "m.toml",
        &format!("[sources.nums]\ntype = \"numbers\"\n{dead}"),
    );
    let err = load_with(&[missing], &[], &[]).expect_err("invalid");
    assert!(
        err.contains("missing field `count`") && err.contains(hint),
        "{err}"
    );
    let wrong = write(
        &dir,
        "w.toml",
        &format!("[sources.nums]\ntype = \"numbers\"\ncount = 3\nbatch = 0\n{dead}"),
    );
    let err = load_with(&[wrong], &[], &[]).expect_err("invalid");
    assert!(
        !err.contains(hint),
        "a wrong value is not about which options exist: {err}"
    );
}

#[test]
fn sources_reject_inputs_and_ports_must_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(
        &dir,
        "p.toml",
        r#"
[sources.nums]
type = "numbers"
count = 3
inputs = ["x"]

[sinks.out]
type = "collect"
name = "p"
inputs = ["nums.late", "out"]

[dead_letter]
type = "collect"
name = "p-dead"
"#,
    );
    let err = load_with(&[p], &[], &[]).expect_err("invalid");
    assert!(err.contains("a source takes no `inputs`"), "{err}");
    assert!(
        err.contains("`sources.nums` has no output named `late`"),
        "{err}"
    );
    assert!(err.contains("input `out` is a sink"), "{err}");
}

#[test]
fn several_files_form_one_pipeline_and_ids_stay_unique() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = write(
        &dir,
        "a.toml",
        "[sources.nums]\ntype = \"numbers\"\ncount = 3\n\n[dead_letter]\ntype = \"collect\"\nname = \"m\"\n",
    );
    let b = write(
        &dir,
        "b.toml",
        "[sinks.out]\ntype = \"collect\"\nname = \"m2\"\ninputs = [\"nums\"]\n",
    );
    let p = load_with(&[a.clone(), b], &[], &[]).expect("valid together");
    let dot = render(&p, GraphFormat::Dot);
    assert!(dot.contains("\"nums\" -> \"out\""), "{dot}");
    let mermaid = render(&p, GraphFormat::Mermaid);
    assert!(mermaid.contains("nums --> out"), "{mermaid}");

    let c = write(
        &dir,
        "c.toml",
        "[sinks.nums]\ntype = \"collect\"\nname = \"z\"\ninputs = [\"nums\"]\n",
    );
    let err = load_with(&[a.clone(), c], &[], &[]).expect_err("duplicate");
    assert!(err.contains("duplicate component id `nums`"), "{err}");
    assert!(err.contains("add `replace = true`"), "{err}");

    // An overlay replaces a component explicitly.
    let overlay = write(
        &dir,
        "overlay.toml",
        "[sources.nums]\nreplace = true\ntype = \"numbers\"\ncount = 7\n",
    );
    let b2 = write(
        &dir,
        "b2.toml",
        "[sinks.out]\ntype = \"collect\"\nname = \"m3\"\ninputs = [\"nums\"]\n",
    );
    let p = load_with(&[a.clone(), b2, overlay], &[], &[]).expect("the overlay replaces nums");
    assert_eq!(p.components.len(), 2);
    let stray = write(
        &dir,
        "stray.toml",
        "[sources.other]\nreplace = true\ntype = \"numbers\"\ncount = 1\n",
    );
    let err = load_with(&[a.clone(), stray], &[], &[]).expect_err("nothing to replace");
    assert!(err.contains("no earlier file declares `other`"), "{err}");

    // `[dead_letter]` follows the same rule as components.
    let letters = |name: &str, replace: bool| {
        format!(
            "[dead_letter]\n{}type = \"collect\"\nname = \"{name}\"\n",
            if replace { "replace = true\n" } else { "" }
        )
    };
    let silent = write(&dir, "dl.toml", &letters("d1", false));
    let err = load_with(&[a.clone(), silent], &[], &[]).expect_err("a second dead letter output");
    assert!(
        err.contains("duplicate `[dead_letter]` table") && err.contains("add `replace = true`"),
        "{err}"
    );
    let explicit = write(&dir, "dl2.toml", &letters("d2", true));
    let p = load_with(&[a.clone(), explicit], &[], &[]).expect("replaced, saying so");
    assert_eq!(p.dead_letter.plugin.name, "collect");
    let b3 = write(&dir, "b3.toml", &letters("d3", true));
    let err = load_with(&[b3], &[], &[]).expect_err("nothing to replace");
    assert!(
        err.contains("no earlier file declares `[dead_letter]`"),
        "{err}"
    );
}

#[test]
fn syntax_errors_and_missing_files_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(&dir, "s.toml", "[sources.nums\ntype = \"numbers\"\n");
    let missing = dir.path().join("nope.toml");
    let err = load_with(&[p, missing], &[], &[]).expect_err("invalid");
    assert!(err.contains("s.toml:1:"), "{err}");
    assert!(err.contains("invalid TOML"), "{err}");
    assert!(
        err.contains("nope.toml: cannot read the pipeline file"),
        "{err}"
    );
}

fn watermarks(name: &str) -> Vec<i64> {
    collected(name)
        .iter()
        .filter_map(|r| match r.get(Field::new("n")) {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        })
        .collect()
}

const SECOND: i64 = 1_000_000;

#[tokio::test]
async fn watermarks_follow_event_time_and_the_slowest_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(
        &dir,
        "wm.toml",
        r#"
[sources.fast]
type = "numbers"
count = 20
batch = 5
event_time = { field = "n", format = "epoch_seconds", max_out_of_orderness = "1s", max_future = "1d" }

[sources.slow]
type = "numbers"
count = 3
batch = 1
event_time = { field = "n", format = "epoch_seconds" }

[transforms.one]
type = "watch"
inputs = ["fast"]
name = "wm-one"

[transforms.both]
type = "watch"
inputs = ["fast", "slow"]
name = "wm-both"

[sinks.out]
type = "collect"
inputs = ["one", "both"]
name = "wm-out"

[dead_letter]
type = "collect"
name = "wm-dead"
"#,
    );
    let pipeline = load_with(&[p], &[], &[]).expect("valid");
    run(pipeline, CancellationToken::new()).await.expect("runs");

    // Highest time per batch (4, 9, 14, 19 s) minus one second, then the end.
    assert_eq!(
        watermarks("wm-one"),
        [3 * SECOND, 8 * SECOND, 13 * SECOND, 18 * SECOND, i64::MAX]
    );
    // With two inputs, the watermark is the lowest of them and never goes back.
    let both = watermarks("wm-both");
    assert!(both.windows(2).all(|w| w[0] < w[1]), "{both:?}");
    assert_eq!(both.last(), Some(&i64::MAX));
    let slow_done = both
        .iter()
        .position(|w| *w > 2 * SECOND)
        .unwrap_or(both.len());
    assert!(
        both[..slow_done].iter().all(|w| *w <= 2 * SECOND),
        "while `slow` runs, it holds the watermark back: {both:?}"
    );
    assert_eq!(collected("wm-out").len(), 20 + 20 + 3);
}

#[test]
fn event_time_errors_are_located() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(
        &dir,
        "et.toml",
        "[sources.nums]\ntype = \"numbers\"\ncount = 3\nevent_time = { field = \"n\", format = \"iso\" }\n\n[sources.more]\ntype = \"numbers\"\ncount = 3\nevent_time = { fild = \"n\" }\n\n[dead_letter]\ntype = \"collect\"\nname = \"et\"\n",
    );
    let err = load_with(&[p], &[], &[]).expect_err("invalid");
    assert!(err.contains("et.toml:4:"), "{err}");
    assert!(
        err.contains("sources.nums: `event_time.format`: unknown time format `iso`"),
        "{err}"
    );
    assert!(err.contains("et.toml:9:"), "{err}");
    assert!(err.contains("sources.more: unknown field `fild`"), "{err}");
}

const LARGE_RECORDS: &str = r#"
[sources.nums]
type = "numbers"
count = 0
batch = 1
pad = 10000

[sinks.slow]
type = "collect"
inputs = ["nums"]
name = "large"
pause_ms = 20

[dead_letter]
type = "collect"
name = "large-dead"

[channels]
batches = 100
bytes = 30000
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_bounded_in_bytes_holds_only_a_few_large_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(&dir, "large.toml", LARGE_RECORDS);
    let pipeline = load_with(&[p], &[], &[]).expect("valid");
    assert_eq!(pipeline.channels.capacity().bytes, 30_000);
    let telemetry = RunTelemetry::new(&pipeline);
    let watched = telemetry.clone();
    let most = tokio::spawn(async move {
        // The most batches and bytes seen waiting for the slow sink, until the run ends.
        let mut most = (0, 0);
        while !matches!(
            watched.state(),
            ecomflow_runtime::RunState::Finished | ecomflow_runtime::RunState::Failed
        ) {
            for fill in watched.channels() {
                most = (most.0.max(fill.batches), most.1.max(fill.bytes));
                assert_eq!(fill.byte_capacity, 30_000);
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        most
    });
    let stop = CancellationToken::new();
    let stopper = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        stopper.cancel();
    });
    run_observed(pipeline, stop, telemetry).await.expect("runs");
    let (batches, bytes) = most.await.expect("watched");
    // Every record read arrives, but no more than two of about 10 KB wait at once, though
    // the channel has room for 100 batches.
    let got = numbers(&collected("large"));
    assert!(got.len() >= 10, "{} records", got.len());
    assert_eq!(got, (0..got.len() as i64).collect::<Vec<_>>());
    assert!(bytes <= 30_000, "{bytes} bytes waited");
    assert!((1..=2).contains(&batches), "{batches} batches waited");
}

#[test]
fn a_bad_channels_table_is_refused_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zero = write(
        &dir,
        "zero.toml",
        &format!("{GOOD}\n[channels]\nbatches = 0\n"),
    );
    let e = load_with(&[zero], &[], &[("RUN", "c0")]).expect_err("refused");
    assert!(
        e.contains("zero.toml:") && e.contains("`channels.batches` must be at least 1"),
        "{e}"
    );
    let typo = write(
        &dir,
        "typo.toml",
        &format!("{GOOD}\n[channels]\nbyts = 1\n"),
    );
    let e = load_with(&[typo], &[], &[("RUN", "c1")]).expect_err("refused");
    assert!(e.contains("typo.toml:") && e.contains("byts"), "{e}");
    let good = write(&dir, "good.toml", GOOD);
    let e = load_with(
        std::slice::from_ref(&good),
        &["channels.bytes=lots".to_string()],
        &[("RUN", "c2")],
    )
    .expect_err("refused");
    assert!(e.contains("channels") && e.contains("lots"), "{e}");
    let set = load_with(
        &[good],
        &["channels.bytes=1 KiB".to_string()],
        &[("RUN", "c3")],
    )
    .expect("a size with a unit");
    assert_eq!(set.channels.capacity().bytes, 1024);
}

/// A value taken from the environment, in an option of the wrong type or shape, is shown in
/// the error as its variable, from a file and from `--set` alike.
#[test]
fn environment_values_are_never_shown_in_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(
        &dir,
        "p.toml",
        "[sources.nums]\ntype = \"numbers\"\ncount = \"${SECRET_PW}\"\n\n\
         [sinks.out]\ntype = \"collect\"\nname = \"o\"\ninputs = [\"nums\"]\n",
    );
    let vars = [
        ("SECRET_PW", "hunter2-the-password"),
        ("OTHER", "s3cr3t-t0ken"),
    ];
    let err = load_with(std::slice::from_ref(&p), &[], &vars).expect_err("a string for a count");
    assert!(err.contains("${SECRET_PW}"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    // Interpolated by ecomflow (in single quotes, the shell leaves `${OTHER}` alone).
    let sets = ["sources.nums.count=\"x-${OTHER}\"".to_string()];
    let err = load_with(&[p], &sets, &vars).expect_err("a string for a count");
    assert!(err.contains("invalid type: string \"x-${OTHER}\""), "{err}");
    assert!(!err.contains("s3cr3t"), "{err}");
}

#[test]
fn the_state_table_is_read_checked_and_set_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The example of docs/concepts/state.md, as written there.
    let doc = include_str!("../../../docs/concepts/state.md");
    let example = doc
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the page has a TOML example");
    assert!(example.contains("[state]"), "{example}");
    let documented = write(&dir, "doc.toml", &format!("{GOOD}\n{example}"));
    let p = load_with(&[documented], &[], &[("RUN", "s0")]).expect("the documented example");
    assert_eq!(p.state, ecomflow_runtime::StateConfig::default());
    assert_eq!(p.state.memory_bytes(), 256 << 20);

    let small = write(
        &dir,
        "small.toml",
        &format!("{GOOD}\n[state]\nmemory = \"10 KiB\"\n"),
    );
    let e = load_with(&[small], &[], &[("RUN", "s1")]).expect_err("refused");
    assert!(
        e.contains("small.toml:") && e.contains("`state.memory` must be at least 1MiB"),
        "{e}"
    );
    let typo = write(
        &dir,
        "typo.toml",
        &format!("{GOOD}\n[state]\nmemroy = \"1 GiB\"\n"),
    );
    let e = load_with(&[typo], &[], &[("RUN", "s2")]).expect_err("refused");
    assert!(e.contains("typo.toml:") && e.contains("memroy"), "{e}");
    let empty = write(
        &dir,
        "empty.toml",
        &format!("{GOOD}\n[state]\ndir = \" \"\n"),
    );
    let e = load_with(&[empty], &[], &[("RUN", "s3")]).expect_err("refused");
    assert!(e.contains("`state.dir` must not be empty"), "{e}");

    let good = write(&dir, "good.toml", GOOD);
    let set = load_with(
        &[good],
        &[
            "state.memory=2 GiB".to_string(),
            "state.dir=/var/lib/keyed".to_string(),
        ],
        &[("RUN", "s4")],
    )
    .expect("set from the command line");
    assert_eq!(set.state.memory_bytes(), 2 << 30);
    assert_eq!(set.state.dir.as_deref(), Some("/var/lib/keyed"));
}
