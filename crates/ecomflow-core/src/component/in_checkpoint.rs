//! A capability some sinks have: writing inside the checkpoint's transaction, when the
//! pipeline keeps its checkpoints in the database the sink writes to. Rows, source positions
//! and states then commit together, exactly once. The runtime finds the link when it loads the
//! pipeline (`ecomflow graph` draws it, `ecomflow validate` refuses one that was asked for and
//! cannot be made) and, before the sink opens, hands it the store's way into the transaction.

use std::any::Any;
use std::sync::Arc;

/// Whether a sink writes in the checkpoint's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// It must: a pipeline whose checkpoints are kept elsewhere is an error.
    Required,
    /// When the checkpoints are kept in its database; otherwise it commits its own writes.
    WhenShared,
    /// Never: it commits its own writes.
    Own,
}

/// The store's way into the checkpoint's transaction, handed to a linked sink. What it holds
/// is the store's own type: a sink knows the stores it can join and takes it with
/// [`CheckpointTransaction::get`].
#[derive(Clone)]
pub struct CheckpointTransaction(Arc<dyn Any + Send + Sync>);

impl CheckpointTransaction {
    /// Wraps what a store hands its sinks.
    pub fn new<T: Any + Send + Sync>(inner: Arc<T>) -> CheckpointTransaction {
        CheckpointTransaction(inner)
    }

    /// What the store handed, if it is a `T`.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.0.clone().downcast().ok()
    }
}

/// A sink that can write in the checkpoint's transaction ([`crate::Sink::in_checkpoint`]).
pub trait WritesInCheckpoint: Send {
    /// The database it writes to, as a URL (compared with `checkpoint.url`).
    fn database(&self) -> &str;

    /// Whether it must, may or must not join.
    fn commit(&self) -> Commit;

    /// Joins the checkpoint store's transactions: called before the sink opens, only when the
    /// pipeline keeps its checkpoints in [`WritesInCheckpoint::database`].
    fn join(&mut self, transaction: CheckpointTransaction);

    /// Partition `partition` went to another process: drop what came from it since the last
    /// checkpoint and is not written yet (its new owner builds it again).
    fn revoked(&mut self, partition: &std::sync::Arc<crate::PartitionId>);

    /// Every input has ended on its own (not stopped for a restart): what comes before
    /// [`crate::Sink::finish`] is the last of it, flushed by the transforms at their end, and
    /// no checkpoint follows it, so it is written at the finish.
    fn inputs_ended(&mut self);
}
