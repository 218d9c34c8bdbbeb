//! Shards: the part of a pipeline's input that owns the state built from it. A source that
//! reads partitions of a log another process may take over (Kafka) sends each partition as
//! its own shard; every other source sends the whole shard. Every stateful component keeps
//! one state per shard, so a partition's state can move to another process with the
//! partition.

use std::sync::Arc;

/// Which part of the input records belong to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shard {
    /// Everything that is not a source partition (a generator, a file): one state per
    /// process, as if the pipeline had one input.
    #[default]
    Whole,
    /// One partition of a source.
    Partition(Arc<PartitionId>),
}

/// One partition of one source's input.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionId {
    /// The source's path, such as `sources.transactions`.
    pub source: Arc<str>,
    /// The topic.
    pub topic: Arc<str>,
    /// The partition's number in its topic.
    pub number: i32,
}

impl PartitionId {
    /// The partition as a shard.
    pub fn shard(self) -> Shard {
        Shard::Partition(Arc::new(self))
    }

    /// How a checkpoint names it among its source's partitions: `topic/number`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.topic, self.number)
    }
}

impl Shard {
    /// The partition's number, or 0 for the whole shard (what a sink's partition column
    /// holds).
    pub fn number(&self) -> i32 {
        match self {
            Shard::Whole => 0,
            Shard::Partition(p) => p.number,
        }
    }

    /// The partition, unless this is the whole shard.
    pub fn partition(&self) -> Option<&Arc<PartitionId>> {
        match self {
            Shard::Whole => None,
            Shard::Partition(p) => Some(p),
        }
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shard::Whole => f.write_str("the whole input"),
            Shard::Partition(p) => write!(f, "{}[{}] of {}", p.topic, p.number, p.source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_named_by_topic_and_number() {
        let p = PartitionId {
            source: "sources.t".into(),
            topic: "orders".into(),
            number: 3,
        };
        assert_eq!(p.key(), "orders/3");
        let s = p.shard();
        assert_eq!(s.number(), 3);
        assert_eq!(s.to_string(), "orders[3] of sources.t");
        assert_eq!(Shard::Whole.number(), 0);
        assert!(Shard::Whole.partition().is_none());
    }
}
