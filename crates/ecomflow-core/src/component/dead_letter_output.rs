//! Where a component sends what it cannot handle, and what reaches the dead-letter sink.

use crate::dead_letter::{DeadLetter, Payload};
use crate::telemetry::Counters;
use std::sync::Arc;
use tokio::sync::mpsc;

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
