//! Where a Kafka partition's position and states come from when the group assigns it: the
//! newest completed checkpoint of this process, or a store shared by every process of the
//! pipeline, which the partition is claimed in.

use crate::checkpoint::{Checkpoint, PartitionCheckpoint};
use crate::shard::PartitionId;
use crate::shared_store::SharedStore;
use std::collections::BTreeSet;
use std::sync::Arc;

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
