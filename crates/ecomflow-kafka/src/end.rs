//! When a `stop_at_end` source is done: every partition assigned to it has reached its end as it was when assigned (and, see `reader.rs`, every other partition of its topics was read to its end by whoever holds it).

use crate::offsets::TopicPartition;

/// Which assigned partitions have reached their end.
///
/// A partition's end is its end offset when it was assigned (later messages do not move it).
/// A partition reaches it when a message read reaches it, or when librdkafka reports the end
/// of the partition (which also covers partitions with nothing to read, and offsets that hold
/// no message). Through rdkafka that report names the partition number but not the topic:
/// with one topic that is enough; when several assigned topics share the number, the
/// candidates are probed (where this source stands in each) to find the one at its end.
#[derive(Debug, Default)]
pub struct Ends {
    partitions: Vec<Assigned>,
    /// An assignment is in force (false before the first one, and between a revocation and
    /// the assignment that follows it).
    assigned: bool,
}

/// One assigned partition.
#[derive(Debug)]
struct Assigned {
    tp: TopicPartition,
    /// Its end offset when it was assigned, if the broker said.
    end: Option<i64>,
    done: bool,
}

/// What is known of a partition when deciding whether it is at its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The partition.
    pub tp: TopicPartition,
    /// Where this source stands: the next offset after the last message read, else the
    /// group's committed offset, else where `start` puts a group without one.
    pub position: Option<i64>,
    /// The partition's end: its end offset when assigned, else its end offset now, when the
    /// broker answered.
    pub high: Option<i64>,
}

impl Probe {
    /// Whether the partition is at its end, when that can be told.
    fn at_end(&self) -> Option<bool> {
        Some(self.position? >= self.high?)
    }
}

impl Ends {
    /// Partitions were assigned (added to those already held), each with its end offset
    /// when the broker said.
    pub fn assign(&mut self, partitions: &[(TopicPartition, Option<i64>)]) {
        for (tp, end) in partitions {
            if !self.partitions.iter().any(|a| a.tp == *tp) {
                self.partitions.push(Assigned {
                    tp: tp.clone(),
                    end: *end,
                    done: end.is_some_and(|e| e <= 0),
                });
            }
        }
        self.assigned = true;
    }

    /// Partitions were revoked; until the next assignment nothing is done.
    pub fn revoke(&mut self, partitions: &[TopicPartition]) {
        self.partitions.retain(|a| !partitions.contains(&a.tp));
        self.assigned = false;
    }

    /// Everything in `tp` before `next` was read.
    pub fn read_to(&mut self, tp: &TopicPartition, next: i64) {
        if let Some(a) = self.partitions.iter_mut().find(|a| a.tp == *tp)
            && a.end.is_some_and(|end| next >= end)
        {
            a.done = true;
        }
    }

    /// The end offset `tp` had when it was assigned, if known.
    pub fn end(&self, tp: &TopicPartition) -> Option<i64> {
        self.partitions
            .iter()
            .find(|a| a.tp == *tp)
            .and_then(|a| a.end)
    }

    /// The assigned partitions numbered `partition` that have not reached their end: the
    /// ones an end event for that number may be about.
    pub fn open(&self, partition: i32) -> Vec<TopicPartition> {
        self.partitions
            .iter()
            .filter(|a| !a.done && a.tp.partition == partition)
            .map(|a| a.tp.clone())
            .collect()
    }

    /// True when several assigned partitions have the number `partition` (in different
    /// topics), so an end event for it must be resolved by probing.
    pub fn shared(&self, partition: i32) -> bool {
        self.partitions
            .iter()
            .filter(|a| a.tp.partition == partition)
            .count()
            > 1
    }

    /// `tp` reached its end.
    pub fn reached(&mut self, tp: &TopicPartition) {
        if let Some(a) = self.partitions.iter_mut().find(|a| a.tp == *tp) {
            a.done = true;
        }
    }

    /// An end event came for a partition number shared by the `probes`: marks those at their
    /// end. When none can be told (the broker did not answer), the first undecided one is
    /// taken, since the event is about one of them.
    pub fn resolve(&mut self, probes: &[Probe]) {
        let mut any = false;
        for p in probes {
            if p.at_end() == Some(true) {
                self.reached(&p.tp);
                any = true;
            }
        }
        if !any && let Some(p) = probes.iter().find(|p| p.at_end().is_none()) {
            self.reached(&p.tp);
        }
    }

    /// The partitions assigned now.
    pub fn held(&self) -> Vec<TopicPartition> {
        self.partitions.iter().map(|a| a.tp.clone()).collect()
    }

    /// True when an assignment is in force and each of its partitions reached its end.
    pub fn all_done(&self) -> bool {
        self.assigned && self.partitions.iter().all(|a| a.done)
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

    fn probe(topic: &str, partition: i32, position: Option<i64>, high: Option<i64>) -> Probe {
        Probe {
            tp: tp(topic, partition),
            position,
            high,
        }
    }

    fn unknown(tps: &[TopicPartition]) -> Vec<(TopicPartition, Option<i64>)> {
        tps.iter().map(|tp| (tp.clone(), None)).collect()
    }

    #[test]
    fn done_only_once_every_assigned_partition_ended() {
        let mut e = Ends::default();
        assert!(!e.all_done(), "nothing assigned yet");
        e.assign(&unknown(&[tp("a", 0), tp("a", 1)]));
        assert!(!e.all_done());
        e.reached(&tp("a", 0));
        assert!(!e.all_done());
        assert_eq!(e.open(0), Vec::<TopicPartition>::new());
        assert_eq!(e.open(1), [tp("a", 1)]);
        assert!(!e.shared(1));
        e.reached(&tp("a", 1));
        assert!(e.all_done());
    }

    #[test]
    fn a_revocation_waits_for_the_next_assignment() {
        let mut e = Ends::default();
        e.assign(&unknown(&[tp("a", 0)]));
        e.reached(&tp("a", 0));
        e.revoke(&[tp("a", 0)]);
        assert!(!e.all_done(), "between revocation and assignment");
        e.assign(&unknown(&[tp("a", 0), tp("a", 2)]));
        assert!(!e.all_done(), "a[0] came back and starts over");
        e.reached(&tp("a", 0));
        e.reached(&tp("a", 2));
        assert!(e.all_done());
        // An empty assignment (more group members than partitions) has nothing to read.
        let mut empty = Ends::default();
        empty.assign(&[]);
        assert!(empty.all_done());
    }

    #[test]
    fn reading_up_to_the_end_at_assignment_is_the_end() {
        let mut e = Ends::default();
        e.assign(&[
            (tp("a", 0), Some(10)),
            (tp("a", 1), Some(0)),
            (tp("a", 2), None),
        ]);
        assert_eq!(
            e.open(1),
            Vec::<TopicPartition>::new(),
            "empty: done at once"
        );
        assert_eq!(e.end(&tp("a", 0)), Some(10));
        e.read_to(&tp("a", 0), 9);
        assert_eq!(e.open(0).len(), 1);
        e.read_to(&tp("a", 0), 10);
        assert_eq!(e.open(0).len(), 0, "later messages do not move the end");
        e.read_to(&tp("a", 2), 1_000);
        assert!(
            !e.all_done(),
            "a[2]'s end is not known: only its end event tells"
        );
        e.reached(&tp("a", 2));
        assert!(e.all_done());
    }

    #[test]
    fn a_shared_partition_number_is_resolved_by_probing() {
        let mut e = Ends::default();
        e.assign(&unknown(&[tp("a", 0), tp("b", 0), tp("c", 0)]));
        assert_eq!(e.open(0).len(), 3);
        assert!(e.shared(0));
        assert!(!e.shared(1));
        e.resolve(&[
            probe("a", 0, Some(5), Some(9)),
            probe("b", 0, Some(9), Some(9)),
            probe("c", 0, Some(0), Some(0)),
        ]);
        assert_eq!(e.open(0), [tp("a", 0)], "b and c are at their end");
        // A repeated end event for a partition already done changes nothing.
        e.resolve(&[probe("a", 0, Some(5), Some(9))]);
        assert_eq!(e.open(0), [tp("a", 0)]);
        // Without answers from the broker, the event still ends one partition.
        e.resolve(&[probe("a", 0, Some(5), None)]);
        assert!(e.all_done());
    }
}
