//! What moves through the channels between components: records, watermarks, checkpoint
//! barriers, partition changes and the end.

use crate::record::Batch;
use crate::shard::{PartitionId, Shard};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What moves through the channels between components.
#[derive(Debug)]
pub enum Message {
    /// Records from the reader's input number `input`, shared by every reader of the output
    /// that sent them (a reader that is the only one left takes them without a copy).
    Batch {
        /// Which of the reader's inputs sent it.
        input: usize,
        /// The shard the records belong to.
        shard: Shard,
        /// The records.
        batch: Arc<Batch>,
    },
    /// Checkpoint barrier `id`: everything the input sent before it belongs to checkpoint
    /// `id`, everything after to the next one.
    Barrier {
        /// Which of the reader's inputs sent it.
        input: usize,
        /// The checkpoint.
        id: u64,
    },
    /// No record with an earlier event time (microseconds since 1970 UTC) will come from the
    /// reader's input number `input`.
    Watermark {
        /// Which of the reader's inputs sent it (its position in the reader's `inputs`).
        input: usize,
        /// The shard whose records it is about.
        shard: Shard,
        /// The watermark.
        at: i64,
    },
    /// Partition `partition` now belongs to this process: its records follow. `states` is
    /// what the newest completed checkpoint kept for it, each transform's by its path (a
    /// transform resumes from its own; empty for a partition never seen).
    Assign {
        /// Which of the reader's inputs sent it.
        input: usize,
        /// The partition.
        partition: Arc<PartitionId>,
        /// The states kept for it, by component path.
        states: Arc<BTreeMap<String, serde_json::Value>>,
    },
    /// Partition `partition` has gone to another process: nothing more comes from it, and
    /// what was built from it since the last completed checkpoint is dropped (its new owner
    /// resumes from that checkpoint).
    Revoke {
        /// Which of the reader's inputs sent it.
        input: usize,
        /// The partition.
        partition: Arc<PartitionId>,
    },
    /// The reader's input number `input` has ended on its own: nothing more comes from it, so
    /// it holds no watermark back and takes part in no later checkpoint. (An input stopped
    /// for a restart sends no end: what it holds open stays open, kept by the checkpoint.)
    End {
        /// Which of the reader's inputs ended.
        input: usize,
    },
}
