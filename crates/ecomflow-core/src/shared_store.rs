//! A checkpoint store that several processes share (a database), for state that moves with
//! partitions between processes: each process claims a partition when the group assigns it
//! (and gets what its last owner committed), and commits its checkpoints there. A claim
//! fences the partition's previous owner: its later commits leave that partition alone.
//! Store plugins register here by URL scheme, like components do.

use crate::checkpoint::{Checkpoint, PartitionCheckpoint};
use crate::error::ComponentError;
use crate::shard::PartitionId;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A checkpoint store shared by the processes of a pipeline.
#[async_trait::async_trait]
pub trait SharedStore: Send + Sync {
    /// What the last completed checkpoint kept for the whole shard (sources and transforms
    /// of input without partitions) and its id. Partitions are claimed as they are assigned.
    async fn load(&self) -> Result<Checkpoint, ComponentError>;

    /// Claims `partition` for this process and returns what its last owner committed for it
    /// (`None` for a partition never committed). From now on, commits of any other process
    /// for it are refused. Blocking: a consumer's rebalance callback calls it.
    fn claim(&self, partition: &PartitionId) -> Result<Option<PartitionCheckpoint>, String>;

    /// This process's claim on `partition` now (what [`SharedStore::claim`] made it), if it
    /// holds one.
    fn claim_of(&self, partition: &PartitionId) -> Option<i64>;

    /// Commits `checkpoint`: the whole shard's part, each partition in `held` (those whose
    /// source reported them, with this process's claim on each at the barrier), and whatever
    /// sinks sharing the store's database prepared for it, in one transaction. Returns the
    /// partitions of `held` whose claim no longer stands: nothing of them was written.
    async fn commit(
        &self,
        checkpoint: &Checkpoint,
        held: &[(Arc<PartitionId>, Option<i64>)],
    ) -> Result<Vec<Arc<PartitionId>>, ComponentError>;

    /// The store, for messages (no password).
    fn describe(&self) -> String;

    /// What sinks writing to the store's database use to write in its commits' transactions
    /// ([`crate::component::WritesInCheckpoint`]); `None`: it cannot share them.
    fn transaction(&self) -> Option<crate::component::CheckpointTransaction> {
        None
    }
}

/// What opening a store needs.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The database URL.
    pub url: String,
    /// The name the pipeline's checkpoints are kept under.
    pub name: String,
}

/// The future opening a store returns.
pub type Opening =
    Pin<Box<dyn Future<Output = Result<Arc<dyn SharedStore>, ComponentError>> + Send>>;

/// A registered kind of shared store.
pub struct StorePlugin {
    /// The URL scheme it serves, such as `postgres`.
    pub scheme: &'static str,
    /// Opens a store (connects, creates its tables when missing).
    pub open: fn(StoreOptions) -> Opening,
}

inventory::collect!(StorePlugin);

impl StorePlugin {
    /// The store plugin for `url`'s scheme.
    pub fn for_url(url: &str) -> Option<&'static StorePlugin> {
        let scheme = url.split_once(':')?.0;
        let scheme = if scheme == "postgresql" {
            "postgres"
        } else {
            scheme
        };
        inventory::iter::<StorePlugin>
            .into_iter()
            .find(|p| p.scheme == scheme)
    }

    /// The schemes of every store plugin linked in.
    pub fn schemes() -> Vec<&'static str> {
        inventory::iter::<StorePlugin>
            .into_iter()
            .map(|p| p.scheme)
            .collect()
    }
}
