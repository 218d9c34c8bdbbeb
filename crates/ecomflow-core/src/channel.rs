//! A component's input: a channel bounded both in messages and in the bytes of the records
//! waiting in it, so that large records cannot pile up gigabytes between two components.
//! The runtime's channels carry [`crate::Message`]s; the channel itself takes any message.

use crate::record::Batch;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// How much an input channel holds before its senders wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Messages (batches, watermarks, barriers) waiting.
    pub messages: usize,
    /// Bytes of records waiting (see [`crate::Record::size_in_memory`]). A batch larger than
    /// this still goes through, alone.
    pub bytes: usize,
}

/// What an input holds unless the pipeline's `[channels]` table says otherwise: 8 batches,
/// and 16 MiB, about three times what 8 batches of 1,024 of the flagship's records take by
/// our estimate, so only larger records meet it.
impl Default for Capacity {
    fn default() -> Self {
        Capacity {
            messages: 8,
            bytes: 16 << 20,
        }
    }
}

/// A message and the bytes it holds in its channel, given back when it is taken out.
#[derive(Debug)]
struct Held<M> {
    message: M,
    _bytes: Option<OwnedSemaphorePermit>,
}

/// The sending side of an input channel (one per writer; clone it for more).
#[derive(Debug)]
pub struct InputSender<M> {
    tx: mpsc::Sender<Held<M>>,
    bytes: Arc<Semaphore>,
    capacity: u32,
}

/// The receiving side of an input channel.
#[derive(Debug)]
pub struct InputReceiver<M> {
    rx: mpsc::Receiver<Held<M>>,
}

/// A handle on an input channel that does not keep it open (for watching how full it is).
#[derive(Debug)]
pub struct WeakInputSender<M> {
    tx: mpsc::WeakSender<Held<M>>,
    bytes: Arc<Semaphore>,
    capacity: u32,
}

/// The channel has no receiver any more.
#[derive(Debug, thiserror::Error)]
#[error("the reading component has gone away")]
pub struct Gone;

/// A new input channel of `capacity`.
pub fn input<M>(capacity: Capacity) -> (InputSender<M>, InputReceiver<M>) {
    let (tx, rx) = mpsc::channel(capacity.messages.max(1));
    let bytes = u32::try_from(capacity.bytes.max(1)).unwrap_or(u32::MAX);
    let sender = InputSender {
        tx,
        bytes: Arc::new(Semaphore::new(bytes as usize)),
        capacity: bytes,
    };
    (sender, InputReceiver { rx })
}

/// Records weighed in a batch: all of a small batch, these many spread over a larger one.
const WEIGHED: usize = 16;

/// The bytes `batch` holds, as its channels count them: every record of a small batch, and
/// for a larger one [`WEIGHED`] records spread over it, times its length (weighing every
/// record of every batch cost 3% of the flagship's instructions). Sources cut their batches
/// by bytes too (`max_batch_bytes`), so one large record among small ones is missed by at
/// most that much.
pub fn batch_bytes(batch: &Batch) -> usize {
    if batch.len() <= WEIGHED {
        return batch.iter().map(crate::Record::size_in_memory).sum();
    }
    let step = batch.len() / WEIGHED;
    let weighed: usize = batch
        .iter()
        .step_by(step)
        .take(WEIGHED)
        .map(crate::Record::size_in_memory)
        .sum();
    weighed / WEIGHED * batch.len()
}

// Written out: derived, they would ask `M: Clone` of the message.
impl<M> Clone for InputSender<M> {
    fn clone(&self) -> Self {
        InputSender {
            tx: self.tx.clone(),
            bytes: self.bytes.clone(),
            capacity: self.capacity,
        }
    }
}

impl<M> Clone for WeakInputSender<M> {
    fn clone(&self) -> Self {
        WeakInputSender {
            tx: self.tx.clone(),
            bytes: self.bytes.clone(),
            capacity: self.capacity,
        }
    }
}

impl<M> InputSender<M> {
    /// Sends `message`, first waiting until the channel has room for `bytes` more (all its
    /// room when `bytes` is more than it has: then the message goes alone).
    pub async fn send(&self, message: M, bytes: usize) -> Result<(), Gone> {
        let held = if bytes == 0 {
            None
        } else {
            let wanted = u32::try_from(bytes).unwrap_or(u32::MAX).min(self.capacity);
            // A reader that has gone away gives no bytes back: do not wait for it.
            tokio::select! {
                permit = self.bytes.clone().acquire_many_owned(wanted) => {
                    Some(permit.map_err(|_| Gone)?)
                }
                _ = self.tx.closed() => return Err(Gone),
            }
        };
        self.tx
            .send(Held {
                message,
                _bytes: held,
            })
            .await
            .map_err(|_| Gone)
    }

    /// A handle that does not keep the channel open.
    pub fn downgrade(&self) -> WeakInputSender<M> {
        WeakInputSender {
            tx: self.tx.downgrade(),
            bytes: self.bytes.clone(),
            capacity: self.capacity,
        }
    }
}

impl<M> InputReceiver<M> {
    /// The next message, or `None` once every sender has gone. Its bytes are given back to
    /// the channel as it is taken out.
    pub async fn recv(&mut self) -> Option<M> {
        self.rx.recv().await.map(|held| held.message)
    }

    /// Stops taking messages; those already sent can still be received.
    pub fn close(&mut self) {
        self.rx.close();
    }
}

/// How full a channel is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    /// Messages waiting.
    pub messages: usize,
    /// The most messages it holds.
    pub message_capacity: usize,
    /// Bytes of records waiting.
    pub bytes: usize,
    /// The most bytes it holds.
    pub byte_capacity: usize,
}

impl<M> WeakInputSender<M> {
    /// How full the channel is, unless it has closed.
    pub fn fill(&self) -> Option<Fill> {
        let tx = self.tx.upgrade()?;
        Some(Fill {
            messages: tx.max_capacity() - tx.capacity(),
            message_capacity: tx.max_capacity(),
            bytes: (self.capacity as usize).saturating_sub(self.bytes.available_permits()),
            byte_capacity: self.capacity as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Record, Value, field::Field};
    use std::time::Duration;

    fn batch_of(records: usize, text: usize) -> Arc<Batch> {
        let field = Field::new("text");
        Arc::new(
            (0..records)
                .map(|_| {
                    let mut r = Record::with_capacity(1);
                    r.push(field, Value::from("x".repeat(text).as_str()));
                    r
                })
                .collect(),
        )
    }

    /// The tests' messages: a batch, or nothing (like a watermark or an end).
    type Message = Option<Arc<Batch>>;

    fn message(batch: Arc<Batch>) -> Message {
        Some(batch)
    }

    #[test]
    fn a_long_string_counts_its_buffer_and_a_short_one_nothing_more() {
        let long = batch_of(1, 1000);
        let short = batch_of(1, 10);
        assert!(batch_bytes(&long) >= 1000, "{}", batch_bytes(&long));
        assert!(batch_bytes(&short) < 100, "{}", batch_bytes(&short));
        assert!(batch_bytes(&batch_of(10, 1000)) >= 10 * batch_bytes(&long));
        // A large batch is weighed by a sample, scaled to its length.
        let many = batch_of(1000, 1000);
        let exact: usize = many.iter().map(Record::size_in_memory).sum();
        assert_eq!(batch_bytes(&many), exact);
    }

    #[tokio::test]
    async fn a_sender_waits_while_the_bytes_waiting_fill_the_channel() {
        let (tx, mut rx) = input::<Message>(Capacity {
            messages: 100,
            bytes: 10_000,
        });
        let batch = batch_of(4, 1000);
        let bytes = batch_bytes(&batch);
        assert!(bytes > 4000 && bytes < 5000, "{bytes}");
        tx.send(message(batch.clone()), bytes).await.expect("first");
        tx.send(message(batch.clone()), bytes)
            .await
            .expect("second");
        // A third would make more than 10,000 bytes: it waits until one is taken out.
        let third = tokio::time::timeout(
            Duration::from_millis(50),
            tx.send(message(batch.clone()), bytes),
        )
        .await;
        assert!(third.is_err(), "the third batch went in beside two others");
        let fill = tx.downgrade().fill().expect("open");
        assert_eq!((fill.messages, fill.bytes), (2, 2 * bytes));
        assert!(rx.recv().await.is_some());
        tokio::time::timeout(Duration::from_secs(5), tx.send(message(batch), bytes))
            .await
            .expect("room once one was taken out")
            .expect("sent");
    }

    #[tokio::test]
    async fn a_batch_larger_than_the_channel_goes_alone() {
        let (tx, mut rx) = input::<Message>(Capacity {
            messages: 100,
            bytes: 1000,
        });
        let small = batch_of(1, 100);
        let huge = batch_of(10, 1000);
        tx.send(message(small.clone()), batch_bytes(&small))
            .await
            .expect("small");
        let waiting = tokio::time::timeout(
            Duration::from_millis(50),
            tx.send(message(huge.clone()), batch_bytes(&huge)),
        )
        .await;
        assert!(waiting.is_err(), "the huge batch went in beside another");
        assert!(rx.recv().await.is_some());
        let huge_bytes = batch_bytes(&huge);
        tokio::time::timeout(Duration::from_secs(5), tx.send(message(huge), huge_bytes))
            .await
            .expect("the huge batch goes into an empty channel")
            .expect("sent");
        // Messages without records never wait for bytes.
        tokio::time::timeout(Duration::from_secs(5), tx.send(None, 0))
            .await
            .expect("an end needs no bytes")
            .expect("sent");
    }
}
