//! The source trait, and what the runtime hands a source: its output, dead letters,
//! shutdown, event time and checkpoints.

use super::dead_letter_output::DeadLetterOutput;
use super::output::Closed;
use super::output::Output;
use crate::dead_letter::Payload;
use crate::error::ComponentError;
use crate::event_time::EventTimeTracker;
use crate::record::Batch;
use crate::shard::{PartitionId, Shard};
use crate::telemetry::Counters;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What a source gets from the runtime.
pub struct SourceContext {
    /// Where its records go.
    pub output: Output,
    /// Where records it cannot decode go.
    pub dead_letter: DeadLetterOutput,
    /// Cancelled when the pipeline is asked to stop (SIGINT/SIGTERM or a failure elsewhere):
    /// stop reading, send what was already read, and return.
    pub shutdown: CancellationToken,
    /// This source's counters.
    pub counters: Arc<Counters>,
    /// Reads event time and tracks the watermark, when the source has an `event_time` table.
    pub event_time: Option<std::sync::Mutex<EventTimeTracker>>,
    /// Checkpointing, when the pipeline has a `[checkpoint]` table.
    pub checkpoints: Option<crate::source_checkpoints::SourceCheckpoints>,
    /// What this source shows while it runs (metrics, readiness, partitions).
    pub telemetry: Arc<crate::telemetry::ComponentTelemetry>,
}

impl SourceContext {
    /// Where the last completed checkpoint left this source (what it passed to
    /// [`SourceContext::checkpoint`]), to resume from after a restart, as the source's own
    /// position type. A position that does not read back as `P` is an error that names the
    /// source: resuming from the start instead would send everything twice.
    pub fn restored<P: serde::de::DeserializeOwned>(&self) -> Result<Option<P>, ComponentError> {
        let Some(json) = self.restored_position() else {
            return Ok(None);
        };
        serde_json::from_value(json.clone()).map(Some).map_err(|e| {
            ComponentError::Other(format!(
                "cannot resume from the checkpoint's position {json}: {e}. To start this \
                 source afresh, run again with `--reset-state {}`",
                self.dead_letter.component()
            ))
        })
    }

    /// The position the last completed checkpoint kept for this source, as stored.
    pub fn restored_position(&self) -> Option<&serde_json::Value> {
        self.checkpoints.as_ref()?.restored.as_ref()
    }

    /// True when the pipeline wants a checkpoint: call [`SourceContext::checkpoint`] between
    /// batches, and before returning when `shutdown` is cancelled.
    pub fn checkpoint_due(&self) -> bool {
        self.checkpoints.as_ref().is_some_and(|c| c.due())
    }

    /// Waits until a checkpoint is due (forever when the pipeline takes none): a source that
    /// can sit idle selects on this to take part in checkpoints while it waits for input.
    pub async fn checkpoint_requested(&self) {
        match &self.checkpoints {
            Some(c) => c.wait_due().await,
            None => std::future::pending().await,
        }
    }

    /// Asks for a checkpoint, for a bounded source that reached its end: a last one, so that
    /// its final position is kept and acknowledged once the sinks have made everything before
    /// it durable. Returns when one this source has not taken part in is due: at once, or
    /// after the checkpoint under way has completed (the coordinator takes one at a time).
    pub async fn request_checkpoint(&self) {
        if let Some(c) = &self.checkpoints {
            c.want().await;
        }
    }

    /// Takes part in the due checkpoint: `position` says where to resume (everything sent so
    /// far is before it); a barrier follows the records already sent. Returns the
    /// checkpoint's id (to act when it completes), or `None` when none was due.
    pub async fn checkpoint(&self, position: &impl serde::Serialize) -> Option<u64> {
        // A position that does not serialize keeps the source out of checkpoints (they then
        // never complete) rather than keeping a wrong one.
        self.checkpoints.as_ref()?;
        let position = match serde_json::to_value(position) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(component = %self.dead_letter.component(), "position not kept: {e}");
                return None;
            }
        };
        self.checkpoint_partitions(position, Vec::new()).await
    }

    /// Takes part in the due checkpoint like [`SourceContext::checkpoint`], with where to
    /// resume each partition this source holds now (a partition it does not hold keeps what
    /// the last completed checkpoint kept for it).
    pub async fn checkpoint_partitions(
        &self,
        position: serde_json::Value,
        partitions: Vec<(Arc<PartitionId>, serde_json::Value)>,
    ) -> Option<u64> {
        let c = self.checkpoints.as_ref()?;
        let id = c.take()?;
        self.output.send_barrier(id).await;
        self.dead_letter.send_barrier(id).await;
        let partitions = partitions
            .into_iter()
            .map(|(partition, position)| crate::checkpoint::Held {
                claim: c.store.claim_of(&partition),
                partition,
                position,
            })
            .collect();
        c.report(crate::checkpoint::Report::Source {
            id,
            component: self.dead_letter.component().clone(),
            position,
            partitions,
        });
        Some(id)
    }

    /// This source's path, such as `sources.transactions`.
    pub fn path(&self) -> &Arc<str> {
        self.dead_letter.component()
    }

    /// What the newest completed checkpoint keeps for each partition (`None` without
    /// checkpoints), to resume a partition from when it is assigned.
    pub fn partition_store(&self) -> Option<crate::partition_store::PartitionStore> {
        Some(self.checkpoints.as_ref()?.store.clone())
    }

    /// Partition `partition` now belongs to this source: every component downstream resumes
    /// its state of it from `states` (what the checkpoint it resumes from kept; empty for a
    /// partition never seen), and its records follow. Until it sends records, or stays
    /// silent for the idle timeout, nothing of it is closed.
    pub async fn assign(
        &self,
        partition: &Arc<PartitionId>,
        slot: usize,
        states: BTreeMap<String, serde_json::Value>,
    ) {
        self.register_partition(slot);
        self.output.send_assign(partition, &Arc::new(states)).await;
    }

    /// Partition `partition` has gone to another process: every component downstream drops
    /// what it built from it since the last completed checkpoint.
    pub async fn revoke(&self, partition: &Arc<PartitionId>, slot: usize) {
        if let Some(tracker) = &self.event_time
            && let Ok(mut t) = tracker.lock()
        {
            t.forget(slot);
        }
        self.telemetry.forget_watermark(&partition.key());
        self.output.send_revoke(partition).await;
    }

    /// Sends a batch read from `partition` (its watermark slot `slot`) downstream, in that
    /// partition's shard, and counts it. With event time, records whose time cannot be read
    /// are dead-lettered first, and the partition's own watermark follows the batch when it
    /// moved.
    pub async fn send_partition(
        &self,
        partition: &Arc<PartitionId>,
        slot: usize,
        mut batch: Batch,
    ) -> Result<(), Closed> {
        Counters::add(&self.counters.received, batch.len());
        let mut watermark = None;
        if let Some(tracker) = &self.event_time {
            let mut dead = Vec::new();
            if let Ok(mut t) = tracker.lock() {
                t.stamp(slot, &mut batch, &mut dead);
                watermark = t.advance_partition(slot);
            }
            self.dead_letter.send(dead).await;
        }
        let n = batch.len();
        let shard = Shard::Partition(partition.clone());
        self.telemetry.tap.offer(&batch);
        self.output.send_in(&shard, batch).await?;
        Counters::add(&self.counters.sent, n);
        if let Some(at) = watermark {
            self.telemetry
                .update_partition(&partition.key(), |p| p.watermark = Some(at));
            self.output.send_watermark_in(&shard, at).await;
        }
        Ok(())
    }

    /// Says that partition `partition` (a Kafka partition just assigned, say) exists: until
    /// it sends records, or stays silent for the idle timeout, it holds the watermark back,
    /// so its backlog is not late.
    pub fn register_partition(&self, partition: usize) {
        if let Some(tracker) = &self.event_time
            && let Ok(mut t) = tracker.lock()
        {
            t.register(partition);
        }
    }

    /// The newest checkpoint that completed (every sink made everything before it durable),
    /// to watch, for example to commit that checkpoint's offsets.
    pub fn completed_checkpoints(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.checkpoints.as_ref()?.completed.clone())
    }

    /// Counts `n` bytes read (message payloads, lines), for the metrics.
    pub fn read_bytes(&self, n: usize) {
        Counters::add(&self.telemetry.bytes_read, n);
    }

    /// Dead-letters what the source read but cannot send on (an undecodable line or message,
    /// an empty one), counting it as received and dead-lettered, so the end-of-run table
    /// adds up: received = sent + dead-lettered + dropped.
    pub async fn reject(&self, letters: Vec<(String, Payload)>) {
        Counters::add(&self.counters.received, letters.len());
        self.dead_letter.send(letters).await;
    }

    /// Sends a batch downstream and counts it (partition 0; see [`SourceContext::send_from`]).
    pub async fn send(&self, batch: Batch) -> Result<(), Closed> {
        self.send_from(0, batch).await
    }

    /// Sends a batch read from `partition` (a Kafka partition, say) downstream and counts
    /// it. With event time, records whose time cannot be read are dead-lettered first, and
    /// a watermark follows the batch when it moved.
    pub async fn send_from(&self, partition: usize, mut batch: Batch) -> Result<(), Closed> {
        Counters::add(&self.counters.received, batch.len());
        let mut watermark = None;
        if let Some(tracker) = &self.event_time {
            let mut dead = Vec::new();
            if let Ok(mut t) = tracker.lock() {
                t.stamp(partition, &mut batch, &mut dead);
                watermark = t.advance();
            }
            self.dead_letter.send(dead).await;
        }
        let n = batch.len();
        self.telemetry.tap.offer(&batch);
        self.output.send(batch).await?;
        Counters::add(&self.counters.sent, n);
        if let Some(at) = watermark {
            self.telemetry.set_watermark(at);
            self.output.send_watermark(at).await;
        }
        Ok(())
    }
}

/// A component that produces records. It runs until its input ends or shutdown is asked.
#[async_trait::async_trait]
pub trait Source: Send {
    /// Reads and sends records until done.
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), ComponentError>;

    /// What it does beyond sending records (by default, none of it).
    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::default()
    }
}

/// What a source does beyond sending records, declared once by [`Source::capabilities`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceCapabilities {
    /// Each partition it reads has its own instance of every transform downstream (its
    /// records sent in the partition's shard, with the partition's own watermark), so a
    /// partition's state can move to another process with it, as a Kafka source's does.
    /// `ecomflow test` then keeps state per partition too.
    pub partitioned_state: bool,
    /// How often it wants to learn what the sinks have made durable, if it does (a Kafka
    /// source commits its group's offsets then). In a pipeline without a `[checkpoint]`
    /// table the runtime then takes checkpoints at this interval that only acknowledge: they
    /// keep no state and write no file.
    pub acknowledged_every: Option<std::time::Duration>,
    /// Ready as soon as it starts; one that must first be given something (a Kafka group
    /// member, its partitions) says false and sets itself ready through
    /// [`SourceContext::telemetry`] once it has it.
    pub ready_at_start: bool,
}

impl Default for SourceCapabilities {
    fn default() -> Self {
        SourceCapabilities {
            partitioned_state: false,
            acknowledged_every: None,
            ready_at_start: true,
        }
    }
}
