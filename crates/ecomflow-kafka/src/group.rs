//! The source's consumer-group callbacks: partitions assigned (each resumes from what the newest completed checkpoint kept for it) and revoked.

use crate::client;
use crate::offsets::{Offsets, TopicPartition};
use ecomflow_core::partition_store::PartitionStore;
use ecomflow_core::{ComponentTelemetry, PartitionId};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::statistics::Statistics;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

/// A change of the partitions this member of the group reads.
#[derive(Debug, PartialEq)]
pub enum Change {
    /// These partitions were added, each with the states the newest completed checkpoint
    /// kept for it (by component path; empty when it kept none).
    Assigned(Vec<(TopicPartition, BTreeMap<String, serde_json::Value>)>),
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
    /// A partition assigned whose kept position does not read back: the source stops with
    /// it (resuming from the start instead would read everything twice).
    pub unreadable: Option<String>,
    /// The partitions assigned to this member now: a message of another one (the consumer
    /// can still deliver one of a partition just revoked) is not this member's to send.
    pub held: BTreeSet<TopicPartition>,
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
    /// With checkpoints, what the newest completed one keeps for each partition: a
    /// partition assigned resumes from there, whatever the group committed. Offsets are then
    /// committed only once a checkpoint holding them completed, never for a revoked
    /// partition on the way out.
    pub store: Option<PartitionStore>,
    /// The source's path, which names its partitions in checkpoints.
    pub source: Arc<str>,
    /// What the source shows: its partitions owned, their consumer lag, its readiness.
    pub telemetry: Arc<ComponentTelemetry>,
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        client::log(level, facility, message);
    }

    /// Every `statistics.interval.ms`: the consumer lag of each partition this member reads.
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (number, p) in &t.partitions {
                // -1 is librdkafka's internal "unassigned" partition; a lag of -1 is unknown; a
                // partition not owned here is another member's to show.
                if *number >= 0 && p.consumer_lag >= 0 {
                    self.telemetry
                        .update_owned_partition(&format!("{topic}/{number}"), |shown| {
                            shown.lag = Some(p.consumer_lag)
                        });
                }
            }
        }
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
    /// Partitions come: each resumes where the newest completed checkpoint left it (which
    /// counts as sent, so the next checkpoint keeps it even before a record is read), with
    /// the states that checkpoint kept for it, read at the same moment so the two agree.
    fn assign(&self, consumer: &BaseConsumer<Self>, list: &mut TopicPartitionList) {
        let mut assigned = Vec::new();
        for tp in partitions(list) {
            let claimed = self.store.as_ref().map(|store| {
                store.claim(&PartitionId {
                    source: self.source.clone(),
                    topic: tp.topic.clone(),
                    number: tp.partition,
                })
            });
            let kept = match claimed {
                Some(Ok(kept)) => kept,
                Some(Err(e)) => {
                    self.group.lock().unreadable = Some(format!(
                        "cannot take {}[{}] over from the checkpoint store: {e}",
                        tp.topic, tp.partition
                    ));
                    None
                }
                None => None,
            };
            let (next, states) = match kept {
                Some(k) => {
                    if k.position.as_i64().is_none() {
                        self.group.lock().unreadable = Some(format!(
                            "the checkpoint's offsets are unreadable: {}[{}] at {}",
                            tp.topic, tp.partition, k.position
                        ));
                    }
                    (k.position.as_i64(), k.transforms)
                }
                None => (None, BTreeMap::new()),
            };
            if let Some(next) = next {
                match list.set_partition_offset(&tp.topic, tp.partition, Offset::Offset(next)) {
                    Ok(()) => self.group.lock().offsets.sent(&tp, next),
                    Err(e) => tracing::warn!(
                        "kafka group `{}`: cannot resume {}[{}] at {next}: {e}",
                        self.group_id,
                        tp.topic,
                        tp.partition
                    ),
                }
            }
            self.group.lock().held.insert(tp.clone());
            assigned.push((tp, states));
        }
        let assigned_now = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_assign(list),
            _ => consumer.assign(list),
        };
        self.warn_on_failure("cannot take the assigned partitions", assigned_now);
        for (tp, _) in &assigned {
            self.show(tp, true);
        }
        self.telemetry.set_ready(true);
        self.group.lock().changes.push(Change::Assigned(assigned));
    }

    /// Partitions go: another member resumes them. Without checkpoints, what was sent from
    /// them is committed first; with checkpoints the last completed checkpoint's offsets and
    /// states stand (what was built since is dropped downstream, and the next owner builds
    /// it again from there). Either way they are forgotten, so no later commit from here
    /// moves them.
    fn revoke(&self, consumer: &BaseConsumer<Self>, list: &TopicPartitionList) {
        let revoked = partitions(list);
        if !revoked.is_empty() {
            let names: Vec<String> = revoked
                .iter()
                .map(|tp| format!("{}[{}]", tp.topic, tp.partition))
                .collect();
            tracing::info!(
                "kafka group `{}`: revoked {}",
                self.group_id,
                names.join(", ")
            );
        }
        let positions = {
            let mut group = self.group.lock();
            for tp in &revoked {
                group.held.remove(tp);
            }
            group.offsets.release(&revoked)
        };
        if self.store.is_none() && !positions.is_empty() {
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
        for tp in &revoked {
            self.show(tp, false);
        }
        self.group.lock().changes.push(Change::Revoked(revoked));
    }

    /// Shows whether this member owns `tp` now (its lag is no longer this member's to show).
    fn show(&self, tp: &TopicPartition, owned: bool) {
        self.telemetry
            .update_partition(&format!("{}/{}", tp.topic, tp.partition), |shown| {
                shown.owned = owned;
                if !owned {
                    shown.lag = None;
                }
            });
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
