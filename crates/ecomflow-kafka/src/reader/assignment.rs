//! Partitions assigned and revoked, and the end of input: end offsets measured and probed,
//! and whether the group read every partition to its end (`stop_at_end`).

use super::{PROBE_TIMEOUT, Reader};
use crate::config::Start;
use crate::end::Probe;
use crate::group::Change;
use crate::offsets::TopicPartition;
use ecomflow_core::SourceContext;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

impl Reader {
    /// Takes in the assignment changes the group callbacks recorded, at once: callbacks run
    /// while the consumer is polled, and a message the same poll returned belongs to the new
    /// assignment. Unsent records of a revoked partition are dropped (its next reader starts
    /// after the last record sent); with `stop_at_end`, new partitions wait for
    /// [`Reader::measure_ends`].
    pub(super) async fn apply_changes(&mut self, cx: &SourceContext) {
        let changes = std::mem::take(&mut self.group.lock().changes);
        for change in changes {
            match change {
                Change::Assigned(assigned) => {
                    // Downstream, each partition resumes from the states kept with its
                    // position; until it sends or idles, nothing of it is closed.
                    let mut tps = Vec::with_capacity(assigned.len());
                    for (tp, states) in assigned {
                        let slot = self.slot_of(&tp);
                        cx.assign(&self.partition_id(&tp), slot, states).await;
                        tps.push(tp);
                    }
                    if self.settings.stop_at_end {
                        self.unmeasured.get_or_insert_with(Vec::new).extend(tps);
                    }
                }
                Change::Revoked(tps) => {
                    for tp in &tps {
                        let slot = self.slot_of(tp);
                        cx.revoke(&self.partition_id(tp), slot).await;
                    }
                    if let Some(waiting) = &mut self.unmeasured {
                        waiting.retain(|tp| !tps.contains(tp));
                    }
                    self.ends.revoke(&tps);
                    self.pending.retain(|p| !tps.contains(&p.tp));
                }
            }
        }
    }

    /// With `stop_at_end`: asks the end offsets of the partitions assigned since the last
    /// call, where each of them ends for this run.
    pub(super) async fn measure_ends(&mut self) {
        let Some(tps) = self.unmeasured.take() else {
            return;
        };
        let ends = self.end_offsets(tps).await;
        self.ends.assign(&ends);
        for (tp, _) in &ends {
            if let Some(next) = self.read_next(tp) {
                self.ends.read_to(tp, next);
            }
        }
    }

    /// With `stop_at_end`, once every partition held here is at its end: whether every
    /// other partition of the topics named (patterns aside) is read to its end too, as the
    /// group's committed offsets tell. A partition that no member holds right now (its
    /// member died and the group has not moved it yet) is not at its end, so a run never
    /// ends having read only part of a topic.
    pub(super) async fn others_at_end(&self) -> bool {
        let held = self.ends.held();
        let topics: Vec<String> = self
            .settings
            .topics
            .iter()
            .filter(|t| !t.starts_with('^'))
            .cloned()
            .collect();
        let consumer = self.consumer.clone();
        let asked = tokio::task::spawn_blocking(move || -> Result<bool, KafkaError> {
            let mut others = TopicPartitionList::new();
            for topic in &topics {
                let metadata = consumer.fetch_metadata(Some(topic), PROBE_TIMEOUT)?;
                for t in metadata.topics() {
                    for p in t.partitions() {
                        let tp = TopicPartition {
                            topic: t.name().into(),
                            partition: p.id(),
                        };
                        if !held.contains(&tp) {
                            others.add_partition(t.name(), p.id());
                        }
                    }
                }
            }
            if others.count() == 0 {
                return Ok(true);
            }
            let committed = consumer.committed_offsets(others.clone(), PROBE_TIMEOUT)?;
            for e in others.elements() {
                let (low, high) =
                    consumer.fetch_watermarks(e.topic(), e.partition(), PROBE_TIMEOUT)?;
                let read = committed
                    .find_partition(e.topic(), e.partition())
                    .and_then(|c| match c.offset() {
                        Offset::Offset(n) => Some(n),
                        _ => None,
                    });
                if high > low && read.is_none_or(|r| r < high) {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .await;
        match asked {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                tracing::debug!("cannot tell whether the other partitions are at their end: {e}");
                false
            }
            Err(_) => false,
        }
    }

    /// The next offset after the last message read from `tp`, if any was.
    pub(super) fn read_next(&self, tp: &TopicPartition) -> Option<i64> {
        self.pending
            .iter()
            .find(|p| p.tp == *tp)
            .and_then(|p| p.next)
    }

    /// The end offset of each of `tps` now, where the broker answers.
    pub(super) async fn end_offsets(
        &self,
        tps: Vec<TopicPartition>,
    ) -> Vec<(TopicPartition, Option<i64>)> {
        let consumer = self.consumer.clone();
        let asked = tokio::task::spawn_blocking(move || {
            tps.into_iter()
                .map(|tp| {
                    let end = consumer
                        .fetch_watermarks(&tp.topic, tp.partition, PROBE_TIMEOUT)
                        .map(|(_, high)| high);
                    (tp, end.ok())
                })
                .collect()
        })
        .await;
        asked.unwrap_or_default()
    }

    /// An end-of-partition event for partition number `partition`.
    pub(super) async fn end_of(&mut self, partition: i32) {
        let open = self.ends.open(partition);
        if open.is_empty() {
            return;
        }
        if !self.ends.shared(partition) {
            self.ends.reached(&open[0]);
            return;
        }
        let mut probes = Vec::with_capacity(open.len());
        for tp in open {
            probes.push(self.probe(tp).await);
        }
        self.ends.resolve(&probes);
    }

    /// Where this source stands in `tp` and where its end is, asking the broker.
    pub(super) async fn probe(&self, tp: TopicPartition) -> Probe {
        // Read from it, or resumed in it from a checkpoint.
        let read = self
            .read_next(&tp)
            .or_else(|| self.group.lock().offsets.sent_up_to(&tp));
        let end_at_assignment = self.ends.end(&tp);
        let consumer = self.consumer.clone();
        let start = self.settings.start;
        let asked = tp.clone();
        let answer = tokio::task::spawn_blocking(move || -> Result<(i64, i64), KafkaError> {
            let (low, high) =
                consumer.fetch_watermarks(&asked.topic, asked.partition, PROBE_TIMEOUT)?;
            if let Some(next) = read {
                return Ok((next, high));
            }
            let mut list = TopicPartitionList::new();
            list.add_partition(&asked.topic, asked.partition);
            let committed = consumer.committed_offsets(list, PROBE_TIMEOUT)?;
            let resume = committed
                .find_partition(&asked.topic, asked.partition)
                .and_then(|e| match e.offset() {
                    Offset::Offset(n) => Some(n),
                    _ => None,
                });
            let position = resume.unwrap_or(match start {
                Start::Earliest => low,
                Start::Latest => high,
            });
            Ok((position, high))
        })
        .await;
        match answer {
            Ok(Ok((position, high))) => Probe {
                tp,
                position: Some(position),
                high: Some(end_at_assignment.unwrap_or(high)),
            },
            _ => Probe {
                tp,
                position: read,
                high: end_at_assignment,
            },
        }
    }
}
