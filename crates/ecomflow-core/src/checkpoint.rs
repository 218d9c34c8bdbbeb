//! Checkpoints as components see them: the `[checkpoint]` table, what a completed checkpoint
//! holds, what components report, and a source's link to the coordinator. The runtime owns the
//! rest (when checkpoints are taken, barrier alignment, the store).

use crate::shard::PartitionId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    pub dir: String,
    /// How often a checkpoint is taken.
    #[serde(default = "five_seconds", with = "crate::duration::positive")]
    #[schemars(with = "crate::duration::Positive")]
    pub interval: Duration,
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

/// The partitions of the newest completed checkpoint, shared by the coordinator (which
/// replaces them as checkpoints complete) and the sources (which read a partition's when it
/// is assigned).
#[derive(Debug, Clone, Default)]
pub struct PartitionStore(Arc<std::sync::RwLock<Arc<Checkpoint>>>);

impl PartitionStore {
    /// A store holding `checkpoint`.
    pub fn new(checkpoint: Checkpoint) -> PartitionStore {
        PartitionStore(Arc::new(std::sync::RwLock::new(Arc::new(checkpoint))))
    }

    /// The newest completed checkpoint.
    pub fn latest(&self) -> Arc<Checkpoint> {
        match self.0.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// What the newest completed checkpoint keeps for `partition`.
    pub fn get(&self, partition: &PartitionId) -> Option<PartitionCheckpoint> {
        self.latest().partition(partition).cloned()
    }

    /// Makes `checkpoint` the newest completed one.
    pub fn set(&self, checkpoint: Checkpoint) {
        let new = Arc::new(checkpoint);
        match self.0.write() {
            Ok(mut c) => *c = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
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
        /// Where to resume each partition it holds now.
        partitions: Vec<(Arc<PartitionId>, serde_json::Value)>,
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
