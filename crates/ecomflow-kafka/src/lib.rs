//! ecomflow-kafka: the `kafka` source and sink, through librdkafka.
//!
//! The sink writes each record as one JSON message and counts it as written only once Kafka
//! confirmed its delivery; records Kafka refuses (too large, say) go to the dead-letter
//! output. The source reads JSON messages in a consumer group, sends them downstream in
//! batches of one partition each (so event-time watermarks are tracked per partition),
//! dead-letters undecodable messages with their topic, partition and offset, and commits the
//! offsets of what it sent. Neither connects at build time, so `ecomflow validate` runs
//! offline; librdkafka still checks every setting then.

mod client;
mod config;
mod end;
mod group;
mod member_slot;
mod offsets;
mod reader;
mod sink;
mod source;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use config::Start;
pub use config::{OptionValue, Options};
pub use offsets::{Offsets, Positions, TopicPartition};
pub use sink::{Acks, Compression, KafkaSinkConfig, KafkaSinkPlugin};
pub use source::{KafkaSourceConfig, KafkaSourcePlugin};
