//! The source's consumer-group callbacks: partitions assigned and revoked, offsets committed before a partition goes.

use crate::client;
use crate::offsets::{Offsets, TopicPartition};
use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use std::sync::{Arc, Mutex, MutexGuard};

/// A change of the partitions this member of the group reads.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// These partitions were added.
    Assigned(Vec<TopicPartition>),
    /// These partitions were taken away (their offsets were committed and forgotten).
    Revoked(Vec<TopicPartition>),
}

/// What the source and its group callbacks share.
#[derive(Debug, Default)]
pub struct Group {
    /// Offsets sent downstream, per partition.
    pub offsets: Offsets,
    /// Assignment changes the source has not looked at yet.
    pub changes: Vec<Change>,
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

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(list) = rebalance else {
            return;
        };
        // Another member resumes these partitions from the committed offsets: commit what
        // was sent from them, and forget them so no later commit from here moves them.
        let revoked = partitions(list);
        let positions = self.group.lock().offsets.release(&revoked);
        if !positions.is_empty() {
            let committed = positions
                .to_list()
                .and_then(|l| consumer.commit(&l, CommitMode::Sync));
            if let Err(e) = committed {
                tracing::warn!(
                    "kafka group `{}`: cannot commit the offsets of revoked partitions \
                     (their last records will be read again): {e}",
                    self.group_id
                );
            }
        }
        self.group.lock().changes.push(Change::Revoked(revoked));
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                let assigned = partitions(list);
                self.group.lock().changes.push(Change::Assigned(assigned));
            }
            Rebalance::Error(e) => {
                tracing::warn!("kafka group `{}`: rebalance failed: {e}", self.group_id);
            }
            Rebalance::Revoke(_) => {}
        }
    }
}
