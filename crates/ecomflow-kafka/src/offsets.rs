//! Per-partition offsets of a Kafka source: the next offset after what was sent downstream, and what of it the group has not committed yet.

use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};
use std::sync::Arc;

/// One partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition number.
    pub partition: i32,
}

/// Where the group should resume, per partition: the offsets a commit writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions(Vec<(TopicPartition, i64)>);

impl Positions {
    /// True when there is nothing to commit.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets `tp`'s position.
    pub fn set(&mut self, tp: &TopicPartition, next: i64) {
        match self.0.iter_mut().find(|(t, _)| t == tp) {
            Some((_, n)) => *n = next,
            None => self.0.push((tp.clone(), next)),
        }
    }

    /// These positions, and those of `other` for the partitions these do not have.
    pub fn or(mut self, other: &Positions) -> Positions {
        for (tp, next) in other.iter() {
            if !self.0.iter().any(|(t, _)| t == tp) {
                self.0.push((tp.clone(), *next));
            }
        }
        self
    }

    /// Takes `tp`'s position out, if there is one.
    pub fn remove(&mut self, tp: &TopicPartition) -> Option<i64> {
        let i = self.0.iter().position(|(t, _)| t == tp)?;
        Some(self.0.swap_remove(i).1)
    }

    /// The (partition, next offset) pairs.
    pub fn iter(&self) -> impl Iterator<Item = &(TopicPartition, i64)> {
        self.0.iter()
    }

    /// The positions as JSON (`[[topic, partition, next offset], ...]`), for a checkpoint.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.0
                .iter()
                .map(|(tp, next)| serde_json::json!([&*tp.topic, tp.partition, next]))
                .collect(),
        )
    }

    /// Positions read back from [`Positions::to_json`].
    pub fn from_json(value: &serde_json::Value) -> Option<Positions> {
        value
            .as_array()?
            .iter()
            .map(|e| {
                let topic = e.get(0)?.as_str()?;
                let partition = i32::try_from(e.get(1)?.as_i64()?).ok()?;
                Some((
                    TopicPartition {
                        topic: topic.into(),
                        partition,
                    },
                    e.get(2)?.as_i64()?,
                ))
            })
            .collect::<Option<Vec<_>>>()
            .map(Positions)
    }

    /// The positions as a list librdkafka takes for a commit.
    pub fn to_list(&self) -> KafkaResult<TopicPartitionList> {
        let mut list = TopicPartitionList::with_capacity(self.0.len());
        for (tp, next) in &self.0 {
            list.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*next))?;
        }
        Ok(list)
    }
}

#[derive(Debug)]
struct Entry {
    tp: TopicPartition,
    /// The next offset after the last message handled and sent downstream.
    sent: i64,
    /// The last offset the group committed for it, by this source.
    committed: Option<i64>,
}

/// The offsets of every partition this source reads. Only what was sent downstream is ever
/// offered for a commit, and offsets never move back.
#[derive(Debug, Default)]
pub struct Offsets {
    entries: Vec<Entry>,
}

impl Offsets {
    /// Everything in `tp` before `next` was sent downstream (or dead-lettered).
    pub fn sent(&mut self, tp: &TopicPartition, next: i64) {
        match self.entries.iter_mut().find(|e| e.tp == *tp) {
            Some(e) => e.sent = e.sent.max(next),
            None => self.entries.push(Entry {
                tp: tp.clone(),
                sent: next,
                committed: None,
            }),
        }
    }

    /// The next offset after what was sent from `tp`, if anything was.
    pub fn sent_up_to(&self, tp: &TopicPartition) -> Option<i64> {
        self.entries.iter().find(|e| e.tp == *tp).map(|e| e.sent)
    }

    /// Where every partition stands: the next offset after what was sent.
    pub fn all_sent(&self) -> Positions {
        Positions(
            self.entries
                .iter()
                .map(|e| (e.tp.clone(), e.sent))
                .collect(),
        )
    }

    /// Where each of `partitions` stands: the next offset after what was sent from it.
    pub fn sent_in(&self, partitions: &[TopicPartition]) -> Positions {
        Positions(
            self.entries
                .iter()
                .filter(|e| partitions.contains(&e.tp))
                .map(|e| (e.tp.clone(), e.sent))
                .collect(),
        )
    }

    /// What was sent and not committed yet: commit it now, or keep it until the sinks have
    /// acknowledged everything sent before it, then commit it.
    pub fn uncommitted(&self) -> Positions {
        Positions(
            self.entries
                .iter()
                .filter(|e| e.committed.is_none_or(|c| c < e.sent))
                .map(|e| (e.tp.clone(), e.sent))
                .collect(),
        )
    }

    /// The part of `positions` (a snapshot taken earlier) for partitions this source still
    /// reads: a partition revoked since then belongs to another member now.
    pub fn still_held(&self, positions: &Positions) -> Positions {
        Positions(
            positions
                .iter()
                .filter(|(tp, _)| self.entries.iter().any(|e| e.tp == *tp))
                .cloned()
                .collect(),
        )
    }

    /// The group committed `positions`.
    pub fn committed(&mut self, positions: &Positions) {
        for (tp, next) in positions.iter() {
            if let Some(e) = self.entries.iter_mut().find(|e| e.tp == *tp) {
                e.committed = Some(e.committed.map_or(*next, |c| c.max(*next)));
            }
        }
    }

    /// Forgets partitions taken away from this source (another group member reads them now,
    /// and a later commit from here must not move them), returning what of them was sent and
    /// not committed yet, to commit before they go.
    pub fn release(&mut self, partitions: &[TopicPartition]) -> Positions {
        let mut out = Vec::new();
        self.entries.retain(|e| {
            if !partitions.contains(&e.tp) {
                return true;
            }
            if e.committed.is_none_or(|c| c < e.sent) {
                out.push((e.tp.clone(), e.sent));
            }
            false
        });
        Positions(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    fn pairs(p: &Positions) -> Vec<(String, i32, i64)> {
        p.iter()
            .map(|(tp, n)| (tp.topic.to_string(), tp.partition, *n))
            .collect()
    }

    #[test]
    fn offers_only_what_moved_since_the_last_commit() {
        let mut o = Offsets::default();
        assert!(o.uncommitted().is_empty());
        o.sent(&tp("a", 0), 5);
        o.sent(&tp("a", 1), 3);
        o.sent(&tp("b", 0), 1);
        let first = o.uncommitted();
        assert_eq!(
            pairs(&first),
            [("a".into(), 0, 5), ("a".into(), 1, 3), ("b".into(), 0, 1)]
        );
        o.committed(&first);
        assert!(o.uncommitted().is_empty(), "all committed");
        o.sent(&tp("a", 1), 9);
        assert_eq!(pairs(&o.uncommitted()), [("a".into(), 1, 9)]);
        assert_eq!(o.sent_up_to(&tp("a", 1)), Some(9));
        assert_eq!(o.sent_up_to(&tp("c", 0)), None);
    }

    #[test]
    fn offsets_never_move_back() {
        let mut o = Offsets::default();
        o.sent(&tp("a", 0), 10);
        o.sent(&tp("a", 0), 4);
        assert_eq!(pairs(&o.uncommitted()), [("a".into(), 0, 10)]);
        // An older snapshot acknowledged late does not undo a newer commit.
        let old = o.uncommitted();
        o.sent(&tp("a", 0), 12);
        let new = o.uncommitted();
        o.committed(&new);
        o.committed(&old);
        assert!(o.uncommitted().is_empty());
    }

    #[test]
    fn a_snapshot_commits_only_what_it_saw() {
        let mut o = Offsets::default();
        o.sent(&tp("a", 0), 10);
        let acknowledged = o.uncommitted();
        o.sent(&tp("a", 0), 20);
        o.committed(&acknowledged);
        assert_eq!(pairs(&o.uncommitted()), [("a".into(), 0, 20)]);
    }

    #[test]
    fn released_partitions_hand_back_their_uncommitted_offsets_and_are_forgotten() {
        let mut o = Offsets::default();
        o.sent(&tp("a", 0), 5);
        o.sent(&tp("a", 1), 7);
        o.sent(&tp("a", 2), 2);
        let c = o.uncommitted();
        o.committed(&c);
        o.sent(&tp("a", 1), 8);
        let snapshot = o.uncommitted();
        let gone = o.release(&[tp("a", 0), tp("a", 1)]);
        assert!(o.still_held(&snapshot).is_empty(), "a[1] went");
        assert_eq!(
            pairs(&gone),
            [("a".into(), 1, 8)],
            "a[0] was committed already"
        );
        assert_eq!(o.sent_up_to(&tp("a", 0)), None);
        o.sent(&tp("a", 2), 3);
        let snapshot = o.uncommitted();
        assert_eq!(pairs(&snapshot), [("a".into(), 2, 3)]);
        assert_eq!(o.still_held(&snapshot), snapshot);
    }

    #[test]
    fn positions_combine_without_repeating_a_partition() {
        let mut o = Offsets::default();
        o.sent(&tp("a", 0), 5);
        o.sent(&tp("a", 1), 7);
        assert_eq!(
            pairs(&o.sent_in(&[tp("a", 1), tp("b", 0)])),
            [("a".into(), 1, 7)]
        );
        let mut waiting = Positions::default();
        waiting.set(&tp("a", 1), 3);
        waiting.set(&tp("a", 2), 9);
        waiting.set(&tp("a", 2), 10);
        assert_eq!(
            pairs(&o.all_sent().or(&waiting)),
            [("a".into(), 0, 5), ("a".into(), 1, 7), ("a".into(), 2, 10)],
            "what was sent wins over what waits"
        );
        assert_eq!(waiting.remove(&tp("a", 2)), Some(10));
        assert_eq!(waiting.remove(&tp("a", 2)), None);
    }

    #[test]
    fn positions_become_a_commit_list() {
        let mut o = Offsets::default();
        o.sent(&tp("a", 2), 42);
        let list = o.uncommitted().to_list().expect("list");
        let elements = list.elements();
        assert_eq!(elements.len(), 1);
        assert_eq!(elements[0].topic(), "a");
        assert_eq!(elements[0].partition(), 2);
        assert_eq!(elements[0].offset(), Offset::Offset(42));
    }
}
