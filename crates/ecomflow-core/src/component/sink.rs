//! The sink trait, what the runtime hands a sink, and the records it gets in one call.

use super::dead_letter_output::DeadLetterOutput;
use crate::error::ComponentError;
use crate::record::{Batch, Record};
use crate::shard::Shard;
use std::sync::Arc;
use std::time::Duration;

/// What a sink gets from the runtime besides its records.
pub struct SinkContext {
    /// Where records it cannot write go.
    pub dead_letter: DeadLetterOutput,
    /// What this sink shows while it runs (metrics, readiness).
    pub telemetry: Arc<crate::telemetry::ComponentTelemetry>,
}

/// The records a sink gets in one call: shared with the other readers of the same output,
/// or its own when it is the last reader (then taking them costs no copy).
#[derive(Debug, Clone)]
pub struct Incoming {
    batch: Arc<Batch>,
    shard: Shard,
}

impl Incoming {
    /// Records of `shard`.
    pub fn in_shard(shard: Shard, batch: Arc<Batch>) -> Incoming {
        Incoming { batch, shard }
    }

    /// The records, to read.
    pub fn records(&self) -> &[Record] {
        &self.batch
    }

    /// The shard they belong to (the source partition whose state made them).
    pub fn shard(&self) -> &Shard {
        &self.shard
    }

    /// The records, to keep: without a copy when no other reader holds them.
    pub fn into_records(self) -> Batch {
        Arc::unwrap_or_clone(self.batch)
    }

    /// How many records there are.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }
}

impl From<Arc<Batch>> for Incoming {
    fn from(batch: Arc<Batch>) -> Incoming {
        Incoming::in_shard(Shard::Whole, batch)
    }
}

impl From<Batch> for Incoming {
    fn from(batch: Batch) -> Incoming {
        Incoming::in_shard(Shard::Whole, Arc::new(batch))
    }
}

impl From<&[Record]> for Incoming {
    fn from(records: &[Record]) -> Incoming {
        Incoming::in_shard(Shard::Whole, Arc::new(records.to_vec()))
    }
}

/// A component that writes records out of the pipeline.
#[async_trait::async_trait]
pub trait Sink: Send {
    /// Called once before the first batch: connect, so that the sink is ready (for the
    /// readiness check) before records come. Failing here stops the run.
    async fn open(&mut self, _cx: &SinkContext) -> Result<(), ComponentError> {
        Ok(())
    }

    /// Writes one batch. An error stops the run; per-record problems go to dead letters. A
    /// sink that only reads the records uses [`Incoming::records`]; one that keeps them
    /// takes them with [`Incoming::into_records`].
    async fn write(&mut self, batch: Incoming, cx: &SinkContext) -> Result<(), ComponentError>;

    /// Whether it counts the records it has written itself (adding to
    /// `cx.telemetry.counters.sent`, and `dropped` for what it leaves out on purpose),
    /// because it learns which were refused only after `write` returns (it writes beside
    /// itself). Otherwise a record counts as written once `write` returns. Either way,
    /// received = written + dead-lettered + dropped once it has finished.
    fn counts_written(&self) -> bool {
        false
    }

    /// What it would refuse, once open (its table's column types and lengths, an index's
    /// id and field limits): published for a `storable` transform upstream, which refuses
    /// such records before the fan-out. `None`: it says nothing.
    fn admission(&self) -> Option<std::sync::Arc<dyn crate::admission::Admission>> {
        None
    }

    /// Where it writes (a table in a database, a file, an index), for the end of a run to
    /// tell the user where the results are; `None` for a sink that keeps nothing (the
    /// console, the dashboard).
    fn destination(&self) -> Option<crate::destination::Destination> {
        None
    }

    /// Its capability to write in the checkpoint's transaction, if it has it (see
    /// [`super::WritesInCheckpoint`]).
    fn in_checkpoint(&mut self) -> Option<&mut dyn super::WritesInCheckpoint> {
        None
    }

    /// Its capability to be read back as a table (see [`WritesTable`]), if it writes one.
    fn as_table(&mut self) -> Option<&mut dyn WritesTable> {
        None
    }

    /// Called once after the last batch: flush buffers and make the writes durable. By
    /// default it does what [`Sink::checkpoint`] does.
    async fn finish(&mut self, cx: &SinkContext) -> Result<(), ComponentError> {
        self.checkpoint(cx).await
    }

    /// Makes everything written so far durable, for a checkpoint (flush buffers, commit).
    async fn checkpoint(&mut self, _cx: &SinkContext) -> Result<(), ComponentError> {
        Ok(())
    }

    /// How often [`Sink::tick`] should run, if at all (for time-based flushing).
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// Called every [`Sink::tick_interval`] between batches.
    async fn tick(&mut self, _cx: &SinkContext) -> Result<(), ComponentError> {
        Ok(())
    }
}

/// A sink that writes a table: `ecomflow test` checks what it would hold without running the
/// sink ([`WritesTable::view`]), or reads it back after running it for real.
#[async_trait::async_trait]
pub trait WritesTable: Send {
    /// How the records it writes become the rows of its table (one row per key for an upsert
    /// sink).
    fn view(&self) -> crate::table_view::TableView;

    /// The rows its table holds now, read back from its database after writing what it
    /// buffers.
    async fn read(&mut self, cx: &SinkContext) -> Result<Vec<Record>, ComponentError>;
}
