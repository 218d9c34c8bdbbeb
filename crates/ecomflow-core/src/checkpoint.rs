//! Checkpoints as components see them: the `[checkpoint]` table, what a completed checkpoint
//! holds and what components report. A source's link to the coordinator is in
//! `source_checkpoints.rs`, where partitions resume from in `partition_store.rs`; the runtime
//! owns the rest (when checkpoints are taken, barrier alignment, where they are kept).

use crate::shard::PartitionId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The `[checkpoint]` table of a pipeline.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Directory holding the last completed checkpoint (`checkpoint.json`), relative to the
    /// working directory. A pipeline started again with the same directory resumes from it.
    /// One process only: give each process its own, or use `url`.
    #[serde(default)]
    pub dir: Option<String>,
    /// A PostgreSQL database to keep checkpoints in instead of `dir`, such as
    /// `postgres://user:password@host:5432/db` (tables `ecomflow_checkpoints` and
    /// `ecomflow_partitions`, created when missing). Several processes of one consumer group
    /// share it: a Kafka partition's position and state move with the partition. `sql` sinks
    /// writing to the same URL commit their rows in the checkpoint's transaction, so each row
    /// is written exactly once whatever crashes. Empty: not used.
    #[serde(default)]
    pub url: String,
    /// The name the checkpoints are kept under in `url`, so several pipelines can share one
    /// database; every process of one pipeline uses the same.
    #[serde(default = "default_name")]
    pub name: String,
    /// How often a checkpoint is taken.
    #[serde(default = "five_seconds")]
    pub interval: crate::duration::Positive,
}

fn default_name() -> String {
    "ecomflow".into()
}

impl CheckpointConfig {
    /// The shared store's URL, if one is set.
    pub fn url(&self) -> Option<&str> {
        Some(self.url.trim()).filter(|u| !u.is_empty())
    }

    /// Where checkpoints are kept, for messages (a URL is not shown: it may hold a
    /// password).
    pub fn place(&self) -> String {
        match (self.url(), &self.dir) {
            (Some(_), _) => format!("the database of `checkpoint.url` (name `{}`)", self.name),
            (None, Some(dir)) => dir.clone(),
            (None, None) => String::new(),
        }
    }
}

fn five_seconds() -> crate::duration::Positive {
    crate::duration::Positive::new(Duration::from_secs(5))
}

/// A completed checkpoint, as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Its number.
    pub id: u64,
    /// Each source's position, by component path.
    pub sources: BTreeMap<String, serde_json::Value>,
    /// Each stateful transform's state of the whole shard, by component path.
    pub transforms: BTreeMap<String, serde_json::Value>,
    /// What each source partition owns (its position and every transform's state built
    /// from it), by source path and then `topic/number`. A partition this process does not
    /// hold keeps what its last owner here made durable.
    #[serde(default)]
    pub partitions: BTreeMap<String, BTreeMap<String, PartitionCheckpoint>>,
}

/// What a checkpoint keeps for one source partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionCheckpoint {
    /// Where the source resumes reading it.
    pub position: serde_json::Value,
    /// The state each stateful transform built from it, by component path.
    pub transforms: BTreeMap<String, serde_json::Value>,
}

impl Checkpoint {
    /// What this checkpoint keeps for `partition`.
    pub fn partition(&self, partition: &PartitionId) -> Option<&PartitionCheckpoint> {
        self.partitions
            .get(&*partition.source)?
            .get(&partition.key())
    }
}

/// A partition a source held at a checkpoint's barrier.
#[derive(Debug, Clone)]
pub struct Held {
    /// The partition.
    pub partition: Arc<PartitionId>,
    /// Where to resume it.
    pub position: serde_json::Value,
    /// This process's claim on it at the barrier, with a shared store: the checkpoint keeps
    /// the partition only while that claim stands (a later claim, by another process or by
    /// this one after the partition came back, resumed from an earlier checkpoint).
    pub claim: Option<i64>,
}

/// What a component tells the checkpoint coordinator.
#[derive(Debug)]
pub enum Report {
    /// A source passed barrier `id` at `position`.
    Source {
        /// The checkpoint.
        id: u64,
        /// The source's path.
        component: Arc<str>,
        /// Where to resume.
        position: serde_json::Value,
        /// Each partition it holds now.
        partitions: Vec<Held>,
    },
    /// A transform aligned barrier `id` and kept `state`.
    Transform {
        /// The checkpoint.
        id: u64,
        /// The transform's path.
        component: Arc<str>,
        /// Its state of the whole shard, if it has one.
        state: Option<serde_json::Value>,
        /// Its state of each partition it holds.
        partitions: Vec<(Arc<PartitionId>, serde_json::Value)>,
        /// What changed in its keyed states since the last barrier, of the whole shard
        /// (`None`) and of each partition it holds.
        deltas: Vec<(Option<Arc<PartitionId>>, crate::state::Delta)>,
    },
    /// A sink made everything before barrier `id` durable.
    Sink {
        /// The checkpoint.
        id: u64,
        /// The sink's path.
        component: Arc<str>,
    },
    /// A component has ended; it takes part in no later checkpoint.
    Ended {
        /// Its path.
        component: Arc<str>,
        /// It ended because every input (for a source, its input) ended, and it sent its end
        /// on: later barriers align without it, so a checkpoint it did not report can still
        /// complete. A component stopped for a restart (`false`) did not send its end: no
        /// checkpoint it has not reported can complete, since its part is missing.
        finished: bool,
    },
}
