//! Rows that `sql` sinks prepared for the checkpoint under way, waiting to be written in its
//! transaction: a sink writing to the database of the `postgres` checkpoint store is handed
//! the store's `Prepared` by the runtime (as the store's `CheckpointTransaction`) and hands its
//! rows over at each barrier instead of writing them itself, so rows, positions and states
//! commit together (exactly once).

use crate::plan::Plan;
use ecomflow_core::component::DeadLetterOutput;
use ecomflow_core::{Counters, Record, Shard};
use std::sync::{Arc, Mutex};

/// One sink's rows of one shard, to write with its plan.
pub struct Rows {
    /// How the sink writes them.
    pub plan: Arc<Plan>,
    /// The shard they were built from: not written when its partition was claimed away.
    pub shard: Shard,
    /// The rows (de-duplicated by key, every one bindable).
    pub rows: Vec<Record>,
    /// Where the rows the database rejects go.
    pub dead_letter: DeadLetterOutput,
    /// The sink's counters: rows written, and rows left out (a partition claimed away).
    pub counters: Arc<Counters>,
    /// The table, for messages.
    pub what: String,
}

/// The rows prepared for the checkpoint under way, in one database.
#[derive(Default)]
pub struct Prepared(Mutex<Vec<Rows>>);

impl Prepared {
    /// Adds a sink's rows.
    pub fn add(&self, rows: Rows) {
        self.lock().push(rows);
    }

    /// Takes every row prepared so far: the checkpoint being committed has had every sink's
    /// (each hands them over before reporting the barrier, and the next checkpoint starts
    /// only after this one).
    pub fn take(&self) -> Vec<Rows> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Rows>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
