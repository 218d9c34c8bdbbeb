//! The reader's checkpoints and offsets: positions recorded at a barrier, committed once the
//! checkpoint completes (or on a timer without checkpoints), and the last checkpoint at a stop.

use super::{COMMIT_TIMEOUT, LAST_CHECKPOINT_PATIENCE, Reader, humantime};
use crate::offsets::{Positions, TopicPartition};
use ecomflow_core::PartitionId;
use ecomflow_core::{ComponentError, SourceContext};
use rdkafka::consumer::{CommitMode, Consumer};
use std::sync::Arc;

impl Reader {
    /// Takes part in the due checkpoint with where every partition it holds stands (the
    /// others keep what the last completed checkpoint kept for them).
    pub async fn checkpoint(&mut self, cx: &SourceContext) {
        let positions = self.group.lock().offsets.all_sent();
        let partitions = positions
            .iter()
            .map(|(tp, next)| (self.partition_id(tp), serde_json::json!(next)))
            .collect();
        let id = cx
            .checkpoint_partitions(serde_json::json!({}), partitions)
            .await;
        if let Some(id) = id {
            self.checkpointed.push((id, positions));
        }
    }

    /// `tp` as a partition of this source.
    pub(super) fn partition_id(&self, tp: &TopicPartition) -> Arc<PartitionId> {
        Arc::new(PartitionId {
            source: self.source.clone(),
            topic: tp.topic.clone(),
            number: tp.partition,
        })
    }

    /// Commits the positions of the newest checkpoint up to `done` (a completed one).
    pub async fn commit_checkpointed(&mut self, done: u64) -> Result<(), ComponentError> {
        let Some(at) = self.checkpointed.iter().rposition(|(id, _)| *id <= done) else {
            return Ok(());
        };
        let (_, positions) = self.checkpointed.remove(at);
        self.checkpointed.retain(|(id, _)| *id > done);
        self.commit_positions(positions).await
    }

    /// Once reading stopped: the source's last checkpoints (asking for one when `ask`, as a
    /// run that reached its end does), then, once the last completes, its positions
    /// committed, so the group's offsets show everything durably written. Each wait lasts at
    /// most [`LAST_CHECKPOINT_PATIENCE`].
    pub async fn last_checkpoint(
        &mut self,
        cx: &SourceContext,
        ask: bool,
    ) -> Result<(), ComponentError> {
        let positions = self.group.lock().offsets.all_sent();
        let partitions = positions
            .iter()
            .map(|(tp, next)| (self.partition_id(tp), serde_json::json!(next)))
            .collect();
        let patience = Some(LAST_CHECKPOINT_PATIENCE);
        let Some(last) = cx
            .last_checkpoints(ask, serde_json::json!({}), partitions, patience)
            .await
        else {
            return Ok(());
        };
        self.checkpointed.push((last, positions));
        if cx.completed(last, LAST_CHECKPOINT_PATIENCE).await {
            self.commit_checkpointed(last).await
        } else {
            tracing::warn!(
                "kafka group `{}`: the last checkpoint did not complete: its offsets stay \
                 uncommitted",
                self.settings.group_id
            );
            Ok(())
        }
    }

    /// Commits the offsets sent and not committed yet.
    pub async fn commit(&self) -> Result<(), ComponentError> {
        let positions = self.group.lock().offsets.uncommitted();
        self.commit_positions(positions).await
    }

    /// Commits `positions` for the group, waiting for the broker's answer. A checkpoint can
    /// take [`crate::offsets::Offsets::uncommitted`] when it starts and pass it here once the
    /// sinks have acknowledged everything sent before it.
    pub async fn commit_positions(&self, positions: Positions) -> Result<(), ComponentError> {
        let positions = self.group.lock().offsets.still_held(&positions);
        if positions.is_empty() {
            return Ok(());
        }
        let consumer = self.consumer.clone();
        let list = positions
            .to_list()
            .map_err(|e| self.settings.failure("cannot commit offsets", e))?;
        let commit = tokio::task::spawn_blocking(move || consumer.commit(&list, CommitMode::Sync));
        match tokio::time::timeout(COMMIT_TIMEOUT, commit).await {
            Ok(Ok(Ok(()))) => {
                self.group.lock().offsets.committed(&positions);
                Ok(())
            }
            Ok(Ok(Err(e))) => Err(self.settings.failure("cannot commit offsets", e)),
            Ok(Err(e)) => Err(self.settings.failure("cannot commit offsets", e)),
            Err(_) => Err(self.settings.failure(
                "cannot commit offsets",
                format!("no answer within {}", humantime(COMMIT_TIMEOUT)),
            )),
        }
    }
}
