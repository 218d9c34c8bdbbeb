//! The start of a run: every sink opens (connects, applies its migrations) and publishes what
//! it refuses before any source reads its first record, so that a `storable` transform knows
//! every sink's refusals from the first record on, and nothing is read that could not yet be
//! written.

use ecomflow_core::{Admissions, Sink};
use std::sync::Arc;
use tokio::sync::watch;

/// How many of the run's sinks have opened, out of how many.
#[derive(Clone)]
pub(crate) struct SinksOpen {
    opened: watch::Sender<usize>,
    total: usize,
}

impl SinksOpen {
    /// The start of a run with `total` sinks.
    pub(crate) fn new(total: usize) -> SinksOpen {
        SinksOpen {
            opened: watch::Sender::new(0),
            total,
        }
    }

    /// Waits until every sink has opened, or failed to (the run then stops: a source may
    /// read a little meanwhile, which nothing writes).
    pub(crate) async fn all(&self) {
        let mut opened = self.opened.subscribe();
        let _ = opened.wait_for(|n| *n >= self.total).await;
    }
}

/// What a sink's task needs to say it has opened.
pub(crate) struct SinkStart {
    /// The sink's path: `sinks.transactions_table`.
    pub(crate) component: Arc<str>,
    /// Its id, as `storable` names it: `transactions_table`.
    pub(crate) id: String,
    pub(crate) admissions: Admissions,
    pub(crate) open: SinksOpen,
}

impl SinkStart {
    /// The sink opened (`true`) or failed to: it publishes what it refuses, and counts.
    pub(crate) fn opened(&self, sink: &dyn Sink, ok: bool) {
        if ok {
            self.admissions.publish(&self.id, sink.admission());
        }
        self.open.opened.send_modify(|n| *n += 1);
    }
}
