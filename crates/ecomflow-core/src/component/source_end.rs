//! How a source ends: its last checkpoints, the same for every source. At its own end it asks
//! for one last checkpoint after everything it sent and takes part in it, and its end
//! follows: every later checkpoint resumes it at its end. Stopped for a restart, it takes part
//! in every checkpoint up to the one the stop asked for, the one every source stops at, so a
//! restart resumes it exactly there. A source that acts on completed checkpoints (Kafka
//! commits its offsets) then waits for the last one to complete.

use super::SourceContext;
use crate::shard::PartitionId;
use std::sync::Arc;
use std::time::Duration;

impl SourceContext {
    /// Called by a source when it returns, with its final position (see the file's doc).
    pub async fn last_checkpoint(&self, position: &impl serde::Serialize) {
        let position = match serde_json::to_value(position) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(component = %self.dead_letter.component(), "position not kept: {e}");
                return;
            }
        };
        let at_end = !self.shutdown.is_cancelled();
        self.last_checkpoints(at_end, position, Vec::new(), None)
            .await;
    }

    /// The last checkpoints of a source that has sent everything, with where it stands (as
    /// [`SourceContext::checkpoint_partitions`] takes it). `at_end`: it reached the end of its
    /// input and asks for a last checkpoint (a stopped run takes the stop's instead). Each
    /// wait lasts at most `patience` when given, then the source goes on without (and says
    /// so). Returns the id of the last checkpoint it took part in.
    pub async fn last_checkpoints(
        &self,
        at_end: bool,
        position: serde_json::Value,
        partitions: Vec<(Arc<PartitionId>, serde_json::Value)>,
        patience: Option<Duration>,
    ) -> Option<u64> {
        self.checkpoints.as_ref()?;
        let deadline = patience.map(|p| tokio::time::Instant::now() + p);
        let stopped = self.shutdown.is_cancelled();
        if at_end && !stopped && within(deadline, self.request_checkpoint()).await.is_none() {
            tracing::warn!(
                component = %self.dead_letter.component(),
                "the checkpoint under way did not complete: no last one"
            );
        }
        let mut last = self
            .checkpoint_partitions(position.clone(), partitions.clone())
            .await;
        if !stopped {
            self.ends_here();
        }
        while let Some(true) = within(deadline, self.checkpoint_before_stop()).await {
            let id = self
                .checkpoint_partitions(position.clone(), partitions.clone())
                .await;
            last = id.or(last);
        }
        last
    }

    /// Waits until checkpoint `id` has completed (every sink made everything before it
    /// durable), at most `patience`: false when it did not (or the run takes none).
    pub async fn completed(&self, id: u64, patience: Duration) -> bool {
        let Some(mut completed) = self.completed_checkpoints() else {
            return false;
        };
        let wait = completed.wait_for(|done| *done >= id);
        matches!(tokio::time::timeout(patience, wait).await, Ok(Ok(_)))
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
    /// restart takes part after each true, so that every source stops at the same
    /// checkpoint: one that took part in an earlier one alone would leave the components it
    /// feeds unable to align the stop's.
    pub async fn checkpoint_before_stop(&self) -> bool {
        match &self.checkpoints {
            Some(c) if self.shutdown.is_cancelled() => c.wait_before_stop().await,
            _ => false,
        }
    }
}

/// `f`'s output, unless `deadline` passes first.
async fn within<T>(
    deadline: Option<tokio::time::Instant>,
    f: impl std::future::Future<Output = T>,
) -> Option<T> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, f).await.ok(),
        None => Some(f.await),
    }
}
