//! Where a component sends what it cannot handle: the dead-letter sink's input, on which the
//! component is one input among all the pipeline's components, sending its letters as records,
//! its checkpoint barriers and its end like any other input (the sink aligns on them as every
//! sink does). Tests collect the letters themselves instead.

use crate::channel::{InputSender, batch_bytes};
use crate::component::Message;
use crate::dead_letter::{DeadLetter, Payload};
use crate::shard::Shard;
use crate::telemetry::Counters;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Where the letters go.
#[derive(Clone)]
enum Letters {
    /// The dead-letter sink's input; the component is its input number `from`.
    Sink {
        tx: InputSender<Message>,
        from: usize,
    },
    /// Kept as they are, for a test to look at.
    Collected(mpsc::UnboundedSender<Vec<DeadLetter>>),
}

/// Where a component sends what it cannot handle.
#[derive(Clone)]
pub struct DeadLetterOutput {
    component: Arc<str>,
    to: Letters,
    counters: Arc<Counters>,
}

impl DeadLetterOutput {
    /// The dead-letter output of `component`, input number `from` of the dead-letter sink
    /// (built by the runtime).
    pub fn new(
        component: Arc<str>,
        from: usize,
        tx: InputSender<Message>,
        counters: Arc<Counters>,
    ) -> DeadLetterOutput {
        DeadLetterOutput {
            component,
            to: Letters::Sink { tx, from },
            counters,
        }
    }

    /// A dead-letter output whose letters are collected, unchanged, on the receiver (tests,
    /// and sinks that `ecomflow test` runs for real).
    pub fn collected(
        component: Arc<str>,
        counters: Arc<Counters>,
    ) -> (DeadLetterOutput, mpsc::UnboundedReceiver<Vec<DeadLetter>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let output = DeadLetterOutput {
            component,
            to: Letters::Collected(tx),
            counters,
        };
        (output, rx)
    }

    /// Tells the dead-letter sink that this component passed checkpoint barrier `id`.
    pub async fn send_barrier(&self, id: u64) {
        if let Letters::Sink { tx, from } = &self.to {
            // The dead-letter sink outlives every component.
            let _ = tx.send(Message::Barrier { input: *from, id }, 0).await;
        }
    }

    /// Tells the dead-letter sink that this component sends nothing more.
    pub async fn send_end(&self) {
        if let Letters::Sink { tx, from } = &self.to {
            let _ = tx.send(Message::End { input: *from }, 0).await;
        }
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
        let letters = letters.into_iter().map(|(reason, payload)| DeadLetter {
            component: self.component.clone(),
            reason,
            payload,
        });
        // The dead-letter sink outlives every component; if it failed, the run is already
        // stopping with its error.
        match &self.to {
            Letters::Sink { tx, from } => {
                let batch: Vec<_> = letters.map(|l| l.to_record()).collect();
                let bytes = batch_bytes(&batch);
                let message = Message::Batch {
                    input: *from,
                    shard: Shard::Whole,
                    batch: Arc::new(batch),
                };
                let _ = tx.send(message, bytes).await;
            }
            Letters::Collected(tx) => {
                let _ = tx.send(letters.collect());
            }
        }
    }
}
