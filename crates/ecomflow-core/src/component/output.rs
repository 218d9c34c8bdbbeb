//! An output port of a component: the channels of every component that reads it.

use super::message::Message;
use crate::channel::{InputSender, batch_bytes};
use crate::record::Batch;
use crate::shard::{PartitionId, Shard};
use std::collections::BTreeMap;
use std::sync::Arc;

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
