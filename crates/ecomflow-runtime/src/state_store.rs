//! The keyed-state store of a run, and how transforms' keyed states are attached to it.
//!
//! With checkpoints in a directory the store is `keyed` there (or `[state] dir`): each
//! checkpoint commits the changes since the previous one, and a restart opens it in place.
//! With checkpoints in a shared database, or none kept, it is a temporary directory that
//! only holds what memory cannot: a shared store's checkpoint takes each state whole.

use crate::state_config::StateConfig;
use ecomflow_core::state::{MemoryBudget, StateDb, Tracking};
use ecomflow_core::{PartitionId, Transform};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Bytes of the disk store's own block cache: a quarter of the state's memory.
pub fn disk_cache(config: &StateConfig) -> u64 {
    (config.memory_bytes() / 4) as u64
}

/// Where a run's transforms keep their keyed state.
pub struct StateStore {
    db: Arc<StateDb>,
    budget: Arc<MemoryBudget>,
    tracking: Tracking,
    /// Components that start afresh (`--reset-state`): what was committed for them goes.
    reset: BTreeSet<String>,
}

impl StateStore {
    /// The store of a run: `committed` when checkpoints commit to it (a directory's), else
    /// a temporary one, whose states are kept whole by checkpoints when `whole`.
    pub fn new(
        config: &StateConfig,
        committed: Option<Arc<StateDb>>,
        whole: bool,
        reset: BTreeSet<String>,
    ) -> Result<StateStore, String> {
        let (db, tracking) = match committed {
            Some(db) => (db, Tracking::Incremental),
            None => {
                let parent = config.dir.as_deref().map(std::path::Path::new);
                let db = StateDb::temporary(parent, disk_cache(config))?;
                (
                    db,
                    if whole {
                        Tracking::Full
                    } else {
                        Tracking::None
                    },
                )
            }
        };
        Ok(StateStore {
            db,
            budget: Arc::new(MemoryBudget::new(config.memory_bytes())),
            tracking,
            reset,
        })
    }

    /// Attaches the keyed states of `transform` (component `component`; its instance of
    /// `partition`, or the whole shard's) to their namespaces.
    pub fn attach(
        &self,
        transform: &mut dyn Transform,
        component: &str,
        partition: Option<&PartitionId>,
    ) -> Result<(), String> {
        for (i, state) in transform.keyed_states().into_iter().enumerate() {
            let name = match partition {
                None => format!("{component}#{i}"),
                Some(p) => format!("{component}#{i}@{}/{}", p.source, p.key()),
            };
            let namespace = self.db.namespace(&name);
            if self.reset.contains(component) && self.tracking == Tracking::Incremental {
                namespace.clear_committed()?;
            }
            state.attach(namespace, self.budget.clone(), self.tracking)?;
        }
        Ok(())
    }

    /// The budget the states share.
    pub fn budget(&self) -> &MemoryBudget {
        &self.budget
    }

    /// The store.
    pub fn db(&self) -> &Arc<StateDb> {
        &self.db
    }
}
