//! The reader's batches, one per partition: a message taken into its partition's batch, and
//! batches sent when full, due or asked for.

use super::{Pending, Reader, read_again};
use crate::offsets::TopicPartition;
use ecomflow_core::component::Closed;
use ecomflow_core::{Payload, SourceContext};
use rdkafka::message::{BorrowedMessage, Message};
use tokio::time::Instant;

impl Reader {
    /// Adds a message to its partition's batch; returns the partition when its batch is full.
    /// A message before the next offset expected from its partition (read already since it
    /// was assigned: the consumer delivered it again) is skipped, so no record is sent twice.
    pub(super) fn take(&mut self, message: &BorrowedMessage<'_>) -> Option<TopicPartition> {
        self.last_warning = None;
        let offset = message.offset();
        let Some(i) = self.pending_index(message.topic(), message.partition()) else {
            tracing::debug!(
                "kafka group `{}`: {}[{}]@{offset} is not assigned here (any more): skipped",
                self.settings.group_id,
                message.topic(),
                message.partition()
            );
            return None;
        };
        let expected = self.pending[i]
            .next
            .or_else(|| self.group.lock().offsets.sent_up_to(&self.pending[i].tp));
        let p = &mut self.pending[i];
        if read_again(expected, offset) {
            if !p.skipping_again {
                tracing::warn!(
                    "kafka group `{}`: {}[{}]@{offset} delivered again (read up to {} already): \
                     skipped, with what follows it up to there",
                    self.settings.group_id,
                    p.tp.topic,
                    p.tp.partition,
                    expected.unwrap_or_default() - 1
                );
            }
            p.skipping_again = true;
            return None;
        }
        p.skipping_again = false;
        p.bytes += message.payload_len();
        let problem = match message.payload() {
            Some(bytes) if !bytes.is_empty() => match self.decoder.decode(bytes) {
                Ok(record) => {
                    p.records.push(record);
                    None
                }
                Err(e) => Some((e.to_string(), bytes.to_vec())),
            },
            Some(_) => Some(("invalid JSON: empty message".to_string(), Vec::new())),
            None => Some((
                "invalid JSON: no value (a tombstone)".to_string(),
                Vec::new(),
            )),
        };
        if let Some((why, bytes)) = problem {
            let reason = format!("{}[{}]@{offset}: {why}", p.tp.topic, p.tp.partition);
            p.dead.push((reason, Payload::Raw(bytes)));
        }
        p.next = Some(offset + 1);
        p.since.get_or_insert_with(Instant::now);
        let full = p.len() >= self.settings.batch_size || p.bytes >= self.settings.max_batch_bytes;
        let tp = &self.pending[i].tp;
        if self.settings.stop_at_end {
            self.ends.read_to(tp, offset + 1);
        }
        full.then(|| tp.clone())
    }

    /// The watermark slot of `tp`: its partition number for one topic, else its place among
    /// the partitions seen.
    pub(super) fn slot_of(&mut self, tp: &TopicPartition) -> usize {
        if !self.several_topics {
            return usize::try_from(tp.partition).unwrap_or(0);
        }
        match self.slots.iter().position(|s| s == tp) {
            Some(s) => s,
            None => {
                self.slots.push(tp.clone());
                self.slots.len() - 1
            }
        }
    }

    /// The index of the batch of `topic`[`partition`], made on first use; `None` when the
    /// partition is not assigned to this member (a batch exists only while it is: a revocation
    /// drops it).
    pub(super) fn pending_index(&mut self, topic: &str, partition: i32) -> Option<usize> {
        if let Some(i) = self
            .pending
            .iter()
            .position(|p| p.tp.partition == partition && *p.tp.topic == *topic)
        {
            return Some(i);
        }
        let tp = TopicPartition {
            topic: topic.into(),
            partition,
        };
        if !self.group.lock().held.contains(&tp) {
            return None;
        }
        let slot = self.slot_of(&tp);
        self.pending.push(Pending {
            partition: self.partition_id(&tp),
            tp,
            slot,
            records: Vec::new(),
            dead: Vec::new(),
            next: None,
            since: None,
            skipping_again: false,
            bytes: 0,
        });
        Some(self.pending.len() - 1)
    }

    /// When the oldest partial batch is due.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.pending
            .iter()
            .filter_map(|p| p.since)
            .min()
            .map(|since| since + self.settings.flush_interval)
    }

    /// Sends batch `i` (its dead letters first), then counts its messages as sent.
    pub(super) async fn send(&mut self, i: usize, cx: &SourceContext) -> Result<(), Closed> {
        let capacity = self.settings.batch_size.min(4096);
        let p = &mut self.pending[i];
        let records = std::mem::replace(&mut p.records, Vec::with_capacity(capacity));
        let dead = std::mem::take(&mut p.dead);
        p.since = None;
        cx.read_bytes(std::mem::take(&mut p.bytes));
        let (tp, slot, next) = (p.tp.clone(), p.slot, p.next);
        let partition = p.partition.clone();
        cx.reject(dead).await;
        if !records.is_empty() {
            cx.send_partition(&partition, slot, records).await?;
        }
        if let Some(next) = next {
            self.group.lock().offsets.sent(&tp, next);
        }
        Ok(())
    }

    /// Sends the partial batches that waited `flush_interval`.
    pub(super) async fn send_due(&mut self, cx: &SourceContext) -> Result<(), Closed> {
        let now = Instant::now();
        let timeout = self.settings.flush_interval;
        for i in 0..self.pending.len() {
            if self.pending[i].since.is_some_and(|s| s + timeout <= now) {
                self.send(i, cx).await?;
            }
        }
        Ok(())
    }

    /// Sends every batch still waiting.
    pub async fn send_all(&mut self, cx: &SourceContext) -> Result<(), Closed> {
        self.apply_changes(cx).await;
        for i in 0..self.pending.len() {
            if self.pending[i].len() > 0 {
                self.send(i, cx).await?;
            }
        }
        Ok(())
    }
}
