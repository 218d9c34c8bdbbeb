//! The three kinds of component (source, transform, sink) and what the runtime hands them.

use crate::channel::{InputSender, batch_bytes};
use crate::dead_letter::{DeadLetter, Payload};
use crate::error::ComponentError;
use crate::event_time::EventTimeTracker;
use crate::record::{Batch, Record};
use crate::shard::{PartitionId, Shard};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use crate::telemetry::Counters;

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

/// The downstream end of one output port: the channel of every component that reads it,
/// each with the position of this output among that reader's inputs.
#[derive(Clone, Default)]
pub struct Output {
    senders: Vec<(InputSender<Message>, usize)>,
}

/// Every reader of an output has gone away; the sender should stop.
#[derive(Debug, thiserror::Error)]
#[error("no component reads this output any more")]
pub struct Closed;

impl Output {
    /// An output feeding `senders`, each with the reader's input position (built by the
    /// runtime).
    pub fn new(senders: Vec<(InputSender<Message>, usize)>) -> Output {
        Output { senders }
    }

    /// True when nothing reads this output.
    pub fn is_unconnected(&self) -> bool {
        self.senders.is_empty()
    }

    /// Sends `batch` of the whole shard to every reader (see [`Output::send_in`]).
    pub async fn send(&self, batch: Batch) -> Result<(), Closed> {
        self.send_in(&Shard::Whole, batch).await
    }

    /// Sends `batch` of `shard` to every reader, waiting while a reader's channel is full
    /// (backpressure). Readers that have gone away are skipped; `Closed` when none is left.
    pub async fn send_in(&self, shard: &Shard, batch: Batch) -> Result<(), Closed> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut delivered = false;
        let bytes = batch_bytes(&batch);
        let mut shared = Some(Arc::new(batch));
        let last = self.senders.len().saturating_sub(1);
        for (n, (tx, input)) in self.senders.iter().enumerate() {
            // The last reader gets the sender's own reference, so a reader that is the only
            // one left finds the batch unshared (and takes it without a copy) even when it
            // runs before the sender has moved on.
            let batch = if n == last {
                shared.take()
            } else {
                shared.clone()
            };
            let Some(batch) = batch else { break };
            let message = Message::Batch {
                input: *input,
                shard: shard.clone(),
                batch,
            };
            delivered |= tx.send(message, bytes).await.is_ok();
        }
        if delivered || self.senders.is_empty() {
            Ok(())
        } else {
            Err(Closed)
        }
    }

    /// Sends checkpoint barrier `id` to every reader.
    pub async fn send_barrier(&self, id: u64) {
        for (tx, input) in &self.senders {
            // A reader that has gone away takes part in no checkpoint.
            let _ = tx.send(Message::Barrier { input: *input, id }, 0).await;
        }
    }

    /// Tells every reader that this output has ended.
    pub async fn send_end(&self) {
        for (tx, input) in &self.senders {
            // A reader that has gone away needs no end.
            let _ = tx.send(Message::End { input: *input }, 0).await;
        }
    }

    /// Tells every reader that no earlier event time will come from this output.
    pub async fn send_watermark(&self, at: i64) {
        self.send_watermark_in(&Shard::Whole, at).await;
    }

    /// Tells every reader that no earlier event time of `shard` will come from this output.
    pub async fn send_watermark_in(&self, shard: &Shard, at: i64) {
        for (tx, input) in &self.senders {
            // A reader that has gone away needs no watermark.
            let message = Message::Watermark {
                input: *input,
                shard: shard.clone(),
                at,
            };
            let _ = tx.send(message, 0).await;
        }
    }

    /// Tells every reader that `partition` now belongs to this process, with the states the
    /// newest completed checkpoint kept for it.
    pub async fn send_assign(
        &self,
        partition: &Arc<PartitionId>,
        states: &Arc<BTreeMap<String, serde_json::Value>>,
    ) {
        for (tx, input) in &self.senders {
            let message = Message::Assign {
                input: *input,
                partition: partition.clone(),
                states: states.clone(),
            };
            let _ = tx.send(message, 0).await;
        }
    }

    /// Tells every reader that `partition` has gone to another process.
    pub async fn send_revoke(&self, partition: &Arc<PartitionId>) {
        for (tx, input) in &self.senders {
            let message = Message::Revoke {
                input: *input,
                partition: partition.clone(),
            };
            let _ = tx.send(message, 0).await;
        }
    }
}

/// What reaches the dead-letter output: letters, and each component's checkpoint barriers
/// and end, on which the dead-letter sink aligns like any sink.
#[derive(Debug)]
pub enum DeadLetterMessage {
    /// Letters from a component.
    Letters(Vec<DeadLetter>),
    /// Component number `from` passed checkpoint barrier `id`: every letter it sent before
    /// belongs to that checkpoint.
    Barrier {
        /// The component's number among the dead-letter output's senders.
        from: usize,
        /// The checkpoint.
        id: u64,
    },
    /// Component number `from` has stopped: no letter comes from it any more.
    End {
        /// The component's number among the dead-letter output's senders.
        from: usize,
    },
}

/// Where a component sends what it cannot handle.
#[derive(Clone)]
pub struct DeadLetterOutput {
    component: Arc<str>,
    from: usize,
    tx: mpsc::Sender<DeadLetterMessage>,
    counters: Arc<Counters>,
}

impl DeadLetterOutput {
    /// A dead-letter output for `component`, sender number `from` of the dead-letter sink
    /// (built by the runtime).
    pub fn new(
        component: Arc<str>,
        from: usize,
        tx: mpsc::Sender<DeadLetterMessage>,
        counters: Arc<Counters>,
    ) -> DeadLetterOutput {
        DeadLetterOutput {
            component,
            from,
            tx,
            counters,
        }
    }

    /// Tells the dead-letter sink that this component passed checkpoint barrier `id`.
    pub async fn send_barrier(&self, id: u64) {
        let from = self.from;
        // The dead-letter writer outlives every component.
        let _ = self.tx.send(DeadLetterMessage::Barrier { from, id }).await;
    }

    /// Tells the dead-letter sink that this component sends nothing more.
    pub async fn send_end(&self) {
        let from = self.from;
        let _ = self.tx.send(DeadLetterMessage::End { from }).await;
    }

    /// The id of the component this output belongs to.
    pub fn component(&self) -> &Arc<str> {
        &self.component
    }

    /// Sends dead letters collected as (reason, payload) pairs.
    pub async fn send(&self, letters: Vec<(String, Payload)>) {
        if letters.is_empty() {
            return;
        }
        Counters::add(&self.counters.dead_lettered, letters.len());
        let letters = letters
            .into_iter()
            .map(|(reason, payload)| DeadLetter {
                component: self.component.clone(),
                reason,
                payload,
            })
            .collect();
        // The dead-letter writer outlives every component; if it failed, the run is already
        // stopping with its error.
        let _ = self.tx.send(DeadLetterMessage::Letters(letters)).await;
    }
}

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

    /// Called by a source when it returns, with its final position. At its own end it takes
    /// part in one last checkpoint after everything it sent (one it asks for), and its end
    /// follows: every later checkpoint resumes it at its end. Stopped for a restart, it takes
    /// part in every checkpoint up to the one the stop asked for, the one every source stops
    /// at, so a restart resumes it exactly there.
    pub async fn last_checkpoint(&self, position: &impl serde::Serialize) {
        if !self.shutdown.is_cancelled() {
            self.request_checkpoint().await;
            self.checkpoint(position).await;
            self.ends_here();
            return;
        }
        while self.checkpoint_before_stop().await {
            self.checkpoint(position).await;
        }
    }

    /// Says that the source has taken its last checkpoint at its own end, not stopped: its
    /// end is sent on when it returns, even if a stop comes meanwhile, so the components it
    /// feeds align later checkpoints without it.
    pub fn ends_here(&self) {
        if let Some(c) = &self.checkpoints {
            c.finished.store(true, std::sync::atomic::Ordering::Release);
        }
    }

    /// While the run stops (`shutdown` cancelled): waits until this source must take part in
    /// another checkpoint before it returns, and returns true; false when it has taken part
    /// in the one the stop asked for (or there are no checkpoints). A source stopped for a
    /// restart calls [`SourceContext::checkpoint`] after each true, so that every source
    /// stops at the same checkpoint: one that took part in an earlier one alone would leave
    /// the components it feeds unable to align the stop's.
    pub async fn checkpoint_before_stop(&self) -> bool {
        match &self.checkpoints {
            Some(c) if self.shutdown.is_cancelled() => c.wait_before_stop().await,
            _ => false,
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

    /// How often this source wants to learn what the sinks have made durable, if it does (a
    /// Kafka source commits its group's offsets then). In a pipeline without a `[checkpoint]`
    /// table the runtime then takes checkpoints at this interval that only acknowledge: they
    /// keep no state and write no file.
    fn acknowledged_every(&self) -> Option<std::time::Duration> {
        None
    }

    /// Whether the source is ready as soon as it starts; one that must first be given
    /// something (a Kafka group member, its partitions) says false and sets itself ready
    /// through [`SourceContext::telemetry`] once it has it.
    fn ready_at_start(&self) -> bool {
        true
    }

    /// Whether each partition it reads has its own instance of every transform downstream
    /// (its records sent in the partition's shard, with the partition's own watermark), as a
    /// Kafka source's do: `ecomflow test` then keeps state per partition too.
    fn partitioned_state(&self) -> bool {
        false
    }
}

/// Collects what a transform produces from one call: records for its outputs and dead letters.
#[derive(Default)]
pub struct Emitter {
    records: Batch,
    named: Vec<(&'static str, Batch)>,
    dead: Vec<(String, Payload)>,
    dropped: u64,
}

impl Emitter {
    /// An emitter with room for `n` records on the default output.
    pub fn with_capacity(n: usize) -> Emitter {
        Emitter {
            records: Vec::with_capacity(n),
            ..Emitter::default()
        }
    }

    /// Sends a record to the default output.
    #[inline]
    pub fn emit(&mut self, record: Record) {
        self.records.push(record);
    }

    /// Sends a record to the named output `port` (one the plugin declared).
    pub fn emit_to(&mut self, port: &'static str, record: Record) {
        match self.named.iter_mut().find(|(p, _)| *p == port) {
            Some((_, b)) => b.push(record),
            None => self.named.push((port, vec![record])),
        }
    }

    /// Sends a record to the dead-letter output with the reason.
    pub fn dead_letter(&mut self, reason: impl Into<String>, record: Record) {
        self.dead.push((reason.into(), Payload::Record(record)));
    }

    /// Counts a record dropped on purpose (it is not sent anywhere).
    pub fn drop_record(&mut self) {
        self.dropped += 1;
    }

    /// Takes the count of records dropped on purpose since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// Takes what was emitted: default records, named outputs and dead letters.
    #[allow(clippy::type_complexity)]
    pub fn take(&mut self) -> (Batch, Vec<(&'static str, Batch)>, Vec<(String, Payload)>) {
        (
            std::mem::take(&mut self.records),
            std::mem::take(&mut self.named),
            std::mem::take(&mut self.dead),
        )
    }
}

/// A component that turns records into records. Synchronous, so it is tested without tokio.
pub trait Transform: Send {
    /// Handles one batch.
    fn process(&mut self, batch: Batch, out: &mut Emitter);

    /// Handles one batch that other components read too. The default copies it for
    /// [`Transform::process`]; a transform that only reads records (or keeps few) overrides
    /// this and clones just what it emits.
    fn process_shared(&mut self, batch: &[Record], out: &mut Emitter) {
        self.process(batch.to_vec(), out);
    }

    /// The state to keep in a checkpoint (everything needed to go on after a restart as if
    /// nothing happened), or `None` for a stateless transform.
    fn snapshot(&self) -> Option<serde_json::Value> {
        None
    }

    /// Restores the state a checkpoint kept, before any record arrives.
    fn restore(&mut self, _state: serde_json::Value) -> Result<(), String> {
        Ok(())
    }

    /// Called when the watermark of this transform's inputs (the lowest of them) moves:
    /// no record with an earlier event time should come any more; close what ends before it.
    fn on_watermark(&mut self, _watermark: i64, _out: &mut Emitter) {}

    /// Called when every input has ended, before the outputs close: emit held state.
    fn flush(&mut self, _out: &mut Emitter) {}

    /// How often [`Transform::tick`] should run, if at all.
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// Called every [`Transform::tick_interval`] (timers: periodic emits).
    fn tick(&mut self, _out: &mut Emitter) {}
}

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

    /// How the records it writes become the rows of a table, if it writes one (one row per
    /// key for an upsert sink): `ecomflow test` checks a sink's final rows with it, without
    /// running the sink.
    fn table_view(&self) -> Option<crate::table_view::TableView> {
        None
    }

    /// The rows its table holds now, read back from its database after writing what it
    /// buffers (`ecomflow test` checks a sink it runs for real with it); `None` when it
    /// writes no table.
    async fn read_table(
        &mut self,
        _cx: &SinkContext,
    ) -> Result<Option<Vec<Record>>, ComponentError> {
        Ok(None)
    }

    /// Called once after the last batch: flush buffers and make the writes durable.
    async fn finish(&mut self, _cx: &SinkContext) -> Result<(), ComponentError> {
        Ok(())
    }

    /// Makes everything written so far durable, for a checkpoint (flush buffers, commit).
    async fn checkpoint(&mut self, _cx: &SinkContext) -> Result<(), ComponentError> {
        Ok(())
    }

    /// Partition `partition` went to another process: drop what came from it since the last
    /// checkpoint and is not written yet (its new owner builds it again), if the sink writes
    /// only at checkpoints.
    fn revoked(&mut self, _partition: &Arc<PartitionId>) {}

    /// Every input has ended on its own (not stopped for a restart): what comes before
    /// [`Sink::finish`] is the last of it, flushed by the transforms at their end, and no
    /// checkpoint follows it.
    fn inputs_ended(&mut self) {}

    /// How often [`Sink::tick`] should run, if at all (for time-based flushing).
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// Called every [`Sink::tick_interval`] between batches.
    async fn tick(&mut self, _cx: &SinkContext) -> Result<(), ComponentError> {
        Ok(())
    }
}
