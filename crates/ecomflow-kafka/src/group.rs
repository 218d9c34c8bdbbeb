//! The source's consumer-group callbacks: partitions assigned (a restarted source resumes them from its checkpoint) and revoked.

use crate::client;
use crate::offsets::{Offsets, Positions, TopicPartition};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{Offset, TopicPartitionList};
use std::sync::{Arc, Mutex, MutexGuard};

/// A change of the partitions this member of the group reads.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// These partitions were added.
    Assigned(Vec<TopicPartition>),
    /// These partitions were taken away (and forgotten).
    Revoked(Vec<TopicPartition>),
}

/// What the source and its group callbacks share.
#[derive(Debug, Default)]
pub struct Group {
    /// Offsets sent downstream, per partition.
    pub offsets: Offsets,
    /// Assignment changes the source has not looked at yet.
    pub changes: Vec<Change>,
    /// Partitions not assigned now, and where reading them starts when they are, whatever
    /// the group committed: a restored checkpoint's positions, and (with checkpoints) where
    /// this source stood in a partition a rebalance took away, since its state holds what was
    /// read. Checkpoints keep them too.
    pub resume: Positions,
}

/// Shared access to the [`Group`] state.
#[derive(Clone, Debug, Default)]
pub struct SharedGroup(Arc<Mutex<Group>>);

impl SharedGroup {
    /// Locks the state (a panic elsewhere while it was held leaves it usable).
    pub fn lock(&self) -> MutexGuard<'_, Group> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The consumer's context: logs to `tracing`, and keeps [`Group`] up to date on rebalances.
pub struct GroupContext {
    /// The state shared with the source.
    pub group: SharedGroup,
    /// The group id, for messages.
    pub group_id: String,
    /// The pipeline takes checkpoints: offsets are committed only once a checkpoint holding
    /// them completed, never for a revoked partition on the way out.
    pub checkpointing: bool,
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        client::log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        client::error(&error, reason);
    }
}

fn partitions(list: &TopicPartitionList) -> Vec<TopicPartition> {
    list.elements()
        .iter()
        .map(|e| TopicPartition {
            topic: e.topic().into(),
            partition: e.partition(),
        })
        .collect()
}

impl GroupContext {
    /// Partitions come: those the restored checkpoint holds start at its positions (which
    /// count as sent, so the next checkpoint keeps them even before a record is read).
    fn assign(&self, consumer: &BaseConsumer<Self>, list: &mut TopicPartitionList) {
        let assigned = partitions(list);
        {
            let mut group = self.group.lock();
            for tp in &assigned {
                let Some(next) = group.resume.remove(tp) else {
                    continue;
                };
                if let Err(e) =
                    list.set_partition_offset(&tp.topic, tp.partition, Offset::Offset(next))
                {
                    tracing::warn!(
                        "kafka group `{}`: cannot resume {}[{}] at {next}: {e}",
                        self.group_id,
                        tp.topic,
                        tp.partition
                    );
                    continue;
                }
                group.offsets.sent(tp, next);
            }
        }
        let assigned_now = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_assign(list),
            _ => consumer.assign(list),
        };
        self.warn_on_failure("cannot take the assigned partitions", assigned_now);
        self.group.lock().changes.push(Change::Assigned(assigned));
    }

    /// Partitions go: another member resumes them from the committed offsets. Without
    /// checkpoints, what was sent from them is committed first; with checkpoints the last
    /// completed checkpoint's offsets stand (what was sent since is not durable yet), and
    /// should they come back here, reading goes on where it stopped. Either way they are
    /// forgotten, so no later commit from here moves them.
    fn revoke(&self, consumer: &BaseConsumer<Self>, list: &TopicPartitionList) {
        let revoked = partitions(list);
        let positions = {
            let mut group = self.group.lock();
            if self.checkpointing {
                for (tp, next) in group.offsets.sent_in(&revoked).iter() {
                    group.resume.set(tp, *next);
                }
            }
            group.offsets.release(&revoked)
        };
        if !self.checkpointing && !positions.is_empty() {
            let committed = positions
                .to_list()
                .and_then(|l| consumer.commit(&l, CommitMode::Sync));
            self.warn_on_failure(
                "cannot commit the offsets of revoked partitions (their last records will be \
                 read again)",
                committed,
            );
        }
        let unassigned = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_unassign(list),
            _ => consumer.unassign(),
        };
        self.warn_on_failure("cannot give the revoked partitions up", unassigned);
        self.group.lock().changes.push(Change::Revoked(revoked));
    }

    fn warn_on_failure(&self, doing: &str, result: KafkaResult<()>) {
        if let Err(e) = result {
            tracing::warn!("kafka group `{}`: {doing}: {e}", self.group_id);
        }
    }
}

impl ConsumerContext for GroupContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        list: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assign(consumer, list),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.revoke(consumer, list),
            // rdkafka calls this for assignments and revocations only.
            other => tracing::warn!(
                "kafka group `{}`: unexpected rebalance event: {}",
                self.group_id,
                RDKafkaErrorCode::from(other)
            ),
        }
    }
}
