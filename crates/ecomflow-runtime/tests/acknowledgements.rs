//! Acknowledgements without a `[checkpoint]` table: a source that wants to learn what the
//! sinks made durable (as the Kafka source does, to commit offsets) gets checkpoints that only
//! acknowledge; a pipeline whose sources do not want them gets none.

use ecomflow_core::{
    BuildContext, BuildError, ComponentError, Field, Incoming, Plugin, Record, Sink, SinkContext,
    SinkPlugin, Source, SourceContext, SourcePlugin, Value,
};
use ecomflow_runtime::{LoadOptions, load, run};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What a source saw, by the name it was given.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// `completed_checkpoints()` was offered.
    offered: bool,
    /// The checkpoints it took part in.
    taken: Vec<u64>,
    /// The newest completed checkpoint when it ended.
    completed: u64,
    /// A restored position was offered.
    restored: bool,
}

fn seen() -> &'static Mutex<HashMap<String, Seen>> {
    static S: OnceLock<Mutex<HashMap<String, Seen>>> = OnceLock::new();
    S.get_or_init(Default::default)
}

/// Sends `count` records, a batch every 5 ms, taking part in every checkpoint asked for.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct AckedConfig {
    /// Where the test finds what it saw.
    name: String,
    /// How many records.
    count: u64,
    /// Want acknowledgements every 20 ms.
    wants: bool,
}
struct Acked(AckedConfig);
impl SourcePlugin for Acked {
    type Config = AckedConfig;
    fn build(c: AckedConfig, _: &BuildContext) -> Result<Box<dyn Source>, BuildError> {
        Ok(Box::new(Acked(c)))
    }
}
#[async_trait::async_trait]
impl Source for Acked {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), ComponentError> {
        let mut s = Seen {
            offered: cx.completed_checkpoints().is_some(),
            restored: cx.restored_position().is_some(),
            ..Seen::default()
        };
        for i in 0..self.0.count {
            if cx.checkpoint_due()
                && let Some(id) = cx.checkpoint(&i).await
            {
                s.taken.push(id);
            }
            let mut r = Record::default();
            r.push(Field::new("n"), Value::Int(i as i64));
            if cx.send(vec![r]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let Some(mut completed) = cx.completed_checkpoints()
            && let Some(&last) = s.taken.last()
        {
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                completed.wait_for(|done| *done >= last),
            )
            .await;
            s.completed = *completed.borrow();
        }
        seen().lock().expect("lock").insert(self.0.name.clone(), s);
        Ok(())
    }

    fn capabilities(&self) -> ecomflow_core::component::SourceCapabilities {
        ecomflow_core::component::SourceCapabilities {
            acknowledged_every: self.0.wants.then_some(Duration::from_millis(20)),
            ..Default::default()
        }
    }
}
inventory::submit!(Plugin::source::<Acked>("acked", "test acknowledgements"));

/// Takes records and forgets them.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct TallyConfig {}
struct Tally;
impl SinkPlugin for Tally {
    type Config = TallyConfig;
    fn build(_: TallyConfig, _: &BuildContext) -> Result<Box<dyn Sink>, BuildError> {
        Ok(Box::new(Tally))
    }
}
#[async_trait::async_trait]
impl Sink for Tally {
    async fn write(&mut self, _: Incoming, _: &SinkContext) -> Result<(), ComponentError> {
        Ok(())
    }
}
inventory::submit!(Plugin::sink::<Tally>("tally", "test sink"));

async fn run_pipeline(dir: &tempfile::TempDir, name: &str, wants: bool) -> Seen {
    let path = dir.path().join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[sources.a]\ntype = \"acked\"\nname = \"{name}\"\ncount = 40\nwants = {wants}\n\n\
             [sinks.t]\ntype = \"tally\"\ninputs = [\"a\"]\n\n\
             [dead_letter]\ntype = \"tally\"\n"
        ),
    )
    .expect("pipeline");
    let env = |_: &str| None;
    let pipeline = load(
        &[path],
        &LoadOptions {
            sets: &[],
            env: &env,
        },
    )
    .expect("valid");
    run(pipeline, CancellationToken::new()).await.expect("runs");
    seen()
        .lock()
        .expect("lock")
        .get(name)
        .cloned()
        .expect("the source ran")
}

#[tokio::test]
async fn a_source_that_wants_acknowledgements_gets_checkpoints_that_keep_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = run_pipeline(&dir, "wants", true).await;
    assert!(s.offered, "{s:?}");
    assert!(!s.restored, "nothing to resume from: {s:?}");
    assert!(
        s.taken.len() >= 2,
        "a checkpoint every 20 ms over 200 ms: {s:?}"
    );
    assert_eq!(s.completed, *s.taken.last().expect("taken"), "{s:?}");
}

#[tokio::test]
async fn without_a_checkpoint_table_or_a_source_that_wants_them_there_are_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = run_pipeline(&dir, "indifferent", false).await;
    assert!(!s.offered, "{s:?}");
    assert!(s.taken.is_empty(), "{s:?}");
}
