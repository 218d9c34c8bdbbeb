//! Checkpoints as components see them: the `[checkpoint]` table, what a completed checkpoint
//! holds, what components report, and a source's link to the coordinator. The runtime owns the
//! rest (when checkpoints are taken, barrier alignment, the store).

use crate::shard::PartitionId;
use crate::shared_store::SharedStore;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

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
    #[serde(default = "five_seconds", with = "crate::duration::positive")]
    #[schemars(with = "crate::duration::Positive")]
    pub interval: Duration,
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

fn five_seconds() -> Duration {
    Duration::from_secs(5)
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

/// Where a partition's position and states come from when it is assigned: the newest
/// completed checkpoint of this process (kept in a directory), or a store shared by every
/// process of the pipeline, which the partition is claimed in. The coordinator replaces the
/// former as checkpoints complete.
#[derive(Clone, Default)]
pub struct PartitionStore {
    latest: Arc<std::sync::RwLock<Arc<Checkpoint>>>,
    shared: Option<Arc<dyn SharedStore>>,
    /// Components that start afresh (`--reset-state`): what was kept for them is left out.
    reset: Arc<BTreeSet<String>>,
}

impl std::fmt::Debug for PartitionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionStore")
            .field("shared", &self.shared.as_ref().map(|s| s.describe()))
            .finish()
    }
}

impl PartitionStore {
    /// A store holding `checkpoint`.
    pub fn new(checkpoint: Checkpoint) -> PartitionStore {
        PartitionStore {
            latest: Arc::new(std::sync::RwLock::new(Arc::new(checkpoint))),
            ..PartitionStore::default()
        }
    }

    /// A store whose partitions are claimed in `shared`, leaving out what was kept for the
    /// components in `reset`.
    pub fn shared(shared: Arc<dyn SharedStore>, reset: BTreeSet<String>) -> PartitionStore {
        PartitionStore {
            shared: Some(shared),
            reset: Arc::new(reset),
            ..PartitionStore::default()
        }
    }

    /// The newest completed checkpoint of this process.
    pub fn latest(&self) -> Arc<Checkpoint> {
        match self.latest.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Takes `partition` for this process (it was just assigned) and returns what was kept
    /// for it. Blocking with a shared store (a database round trip).
    pub fn claim(&self, partition: &PartitionId) -> Result<Option<PartitionCheckpoint>, String> {
        let kept = match &self.shared {
            Some(shared) => shared.claim(partition)?,
            None => self.latest().partition(partition).cloned(),
        };
        if self.reset.contains(&*partition.source) {
            return Ok(None);
        }
        Ok(kept.map(|mut k| {
            k.transforms.retain(|path, _| !self.reset.contains(path));
            k
        }))
    }

    /// This process's claim on `partition` now, with a shared store.
    pub fn claim_of(&self, partition: &PartitionId) -> Option<i64> {
        self.shared.as_ref()?.claim_of(partition)
    }

    /// Makes `checkpoint` the newest completed one of this process.
    pub fn set(&self, checkpoint: Checkpoint) {
        let new = Arc::new(checkpoint);
        match self.latest.write() {
            Ok(mut c) => *c = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
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
    },
}

/// A source's link to the checkpoint coordinator.
pub struct SourceCheckpoints {
    /// The newest checkpoint asked for.
    pub requested: Arc<AtomicU64>,
    /// Woken when a checkpoint is asked for.
    pub asked: Arc<tokio::sync::Notify>,
    /// The newest checkpoint this source has taken part in.
    pub taken: AtomicU64,
    /// Where reports go.
    pub reports: mpsc::UnboundedSender<Report>,
    /// Asks the coordinator for a checkpoint as soon as the one under way (if any) is done.
    /// Only the coordinator decides which checkpoint comes when.
    pub wanted: mpsc::UnboundedSender<()>,
    /// The position kept by the last completed checkpoint.
    pub restored: Option<serde_json::Value>,
    /// The newest completed checkpoint.
    pub completed: watch::Receiver<u64>,
    /// What the newest completed checkpoint keeps for each partition.
    pub store: PartitionStore,
}

impl SourceCheckpoints {
    /// True when a checkpoint this source has not taken part in is asked for.
    pub fn due(&self) -> bool {
        self.requested.load(Ordering::Acquire) > self.taken.load(Ordering::Acquire)
    }

    /// Waits until a checkpoint this source has not taken part in is asked for.
    pub async fn wait_due(&self) {
        loop {
            let asked = self.asked.notified();
            tokio::pin!(asked);
            asked.as_mut().enable();
            if self.due() {
                return;
            }
            asked.await;
        }
    }

    /// Asks for a checkpoint and waits until one this source has not taken part in is due
    /// (at once when one already is). Returns early if the coordinator has stopped.
    pub async fn want(&self) {
        let mut completed = self.completed.clone();
        if !self.due() && self.wanted.send(()).is_err() {
            return;
        }
        loop {
            let asked = self.asked.notified();
            tokio::pin!(asked);
            asked.as_mut().enable();
            if self.due() {
                return;
            }
            tokio::select! {
                _ = asked => {}
                changed = completed.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Claims the due checkpoint's id, if one is due.
    pub fn take(&self) -> Option<u64> {
        let id = self.requested.load(Ordering::Acquire);
        (id > self.taken.swap(id, Ordering::AcqRel)).then_some(id)
    }

    /// Sends a report to the coordinator (which outlives every component).
    pub fn report(&self, report: Report) {
        let _ = self.reports.send(report);
    }
}
