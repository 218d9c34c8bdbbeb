//! A source's link to the checkpoint coordinator: when a checkpoint is due, where reports go,
//! what the source resumes from, which checkpoints completed.

use crate::checkpoint::Report;
use crate::partition_store::PartitionStore;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::{mpsc, watch};

/// A source's link to the checkpoint coordinator.
pub struct SourceCheckpoints {
    /// The newest checkpoint asked for.
    pub requested: Arc<AtomicU64>,
    /// Woken when a checkpoint is asked for.
    pub asked: Arc<tokio::sync::Notify>,
    /// The newest checkpoint this source has taken part in.
    pub taken: AtomicU64,
    /// Where reports go.
    pub reports: mpsc::UnboundedSender<Report>,
    /// Asks the coordinator for a checkpoint as soon as the one under way (if any) is done.
    /// Only the coordinator decides which checkpoint comes when.
    pub wanted: mpsc::UnboundedSender<()>,
    /// The position kept by the last completed checkpoint.
    pub restored: Option<serde_json::Value>,
    /// The newest completed checkpoint.
    pub completed: watch::Receiver<u64>,
    /// What the newest completed checkpoint keeps for each partition.
    pub store: PartitionStore,
    /// The checkpoint a stop of the run asked for, once the coordinator has fixed it. A
    /// source stopped for a restart takes part in every checkpoint up to it, so that every
    /// source stops at the same checkpoint.
    pub stop_at: watch::Receiver<Option<u64>>,
    /// Set when the source took its last checkpoint at its own end, not stopped: the runtime
    /// then sends its end on, even if a stop came since.
    pub finished: Arc<AtomicBool>,
}

impl SourceCheckpoints {
    /// True when a checkpoint this source has not taken part in is asked for.
    pub fn due(&self) -> bool {
        self.requested.load(Ordering::Acquire) > self.taken.load(Ordering::Acquire)
    }

    /// Waits until a checkpoint this source has not taken part in is asked for.
    pub async fn wait_due(&self) {
        loop {
            let asked = self.asked.notified();
            tokio::pin!(asked);
            asked.as_mut().enable();
            if self.due() {
                return;
            }
            asked.await;
        }
    }

    /// Asks for a checkpoint and waits until one this source has not taken part in is due
    /// (at once when one already is). Returns early if the coordinator has stopped.
    pub async fn want(&self) {
        if !self.due() && self.wanted.send(()).is_err() {
            return;
        }
        self.wait_due_while_coordinated().await;
    }

    /// Waits until a checkpoint this source has not taken part in is due: true then, false
    /// when the coordinator has stopped (none will be).
    async fn wait_due_while_coordinated(&self) -> bool {
        let mut completed = self.completed.clone();
        loop {
            let asked = self.asked.notified();
            tokio::pin!(asked);
            asked.as_mut().enable();
            if self.due() {
                return true;
            }
            tokio::select! {
                _ = asked => {}
                changed = completed.changed() => {
                    if changed.is_err() {
                        return false;
                    }
                }
            }
        }
    }

    /// While the run stops: waits until the next checkpoint up to the one the stop asked for
    /// is due and returns true; false once this source has taken part in that one, or when
    /// the coordinator has stopped.
    pub async fn wait_before_stop(&self) -> bool {
        let mut stop_at = self.stop_at.clone();
        let last = match stop_at.wait_for(Option::is_some).await {
            Ok(at) => at.unwrap_or(0),
            Err(_) => return false,
        };
        // Checkpoints are asked for in order, one at a time: the next one due is at most
        // `last` until this source has taken part in `last`.
        self.taken.load(Ordering::Acquire) < last && self.wait_due_while_coordinated().await
    }

    /// Claims the due checkpoint's id, if one is due.
    pub fn take(&self) -> Option<u64> {
        let id = self.requested.load(Ordering::Acquire);
        (id > self.taken.swap(id, Ordering::AcqRel)).then_some(id)
    }

    /// Sends a report to the coordinator (which outlives every component).
    pub fn report(&self, report: Report) {
        let _ = self.reports.send(report);
    }
}
