//! The `kafka` sink: each record as one JSON message, keyed by a field, written only once Kafka confirmed its delivery.

use crate::client::Logging;
use crate::config::{Managed, Options, Setting, brokers, check_topic, client_config, millis};
use ecomflow_core::async_trait::async_trait;
use ecomflow_core::{
    BuildContext, BuildError, ComponentError, Field, Incoming, Payload, Plugin, Record, Sink,
    SinkContext, SinkPlugin, Value,
};
use ecomflow_json::encode_line;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::Duration;

/// How long `finish` waits for messages still on their way (none, normally: every write
/// waits for its deliveries).
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Options of the `kafka` sink.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// The brokers to connect to first, as `host:port` separated by commas (librdkafka's
    /// `bootstrap.servers`).
    pub bootstrap_servers: String,
    /// The topic to write, such as `financial_transactions`. Each record becomes one message
    /// whose value is the record as a JSON object.
    pub topic: String,
    /// The record field whose value is the message key, such as `transactionId` (a string as
    /// it is, any other value as JSON); records without it, or with null, get no key. Kafka
    /// sends messages with one key to one partition, in order.
    #[serde(default)]
    pub key_field: Option<String>,
    /// How message batches are compressed: `none`, `gzip`, `snappy` or `lz4`.
    #[serde(default)]
    pub compression: Compression,
    /// The most messages in one request to a broker (librdkafka's `batch.num.messages`).
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub batch_size: usize,
    /// How long messages wait to fill a batch before it is sent, such as `5ms` (librdkafka's
    /// `linger.ms`). (The name every plugin gives this wait; `linger` is still read.)
    #[serde(default = "default_flush_interval", alias = "linger")]
    pub flush_interval: ecomflow_core::duration::ZeroAllowed,
    /// Which brokers must have a message before Kafka confirms it: `all` (every in-sync
    /// replica; the producer is then idempotent, so retries write no duplicates), `1` (the
    /// partition leader) or `0` (no confirmation at all).
    #[serde(default)]
    pub acks: Acks,
    /// Extra librdkafka producer settings, such as `{ "message.timeout.ms" = 30000 }` (how
    /// long a message may take to be delivered before the run fails; librdkafka's default is
    /// 5 minutes). See librdkafka's CONFIGURATION.md. Settings that an option above controls
    /// are refused.
    #[serde(default)]
    pub options: Options,
}

/// How message batches are compressed (the codecs this build of librdkafka has).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Not compressed.
    #[default]
    None,
    /// gzip: small, slow.
    Gzip,
    /// Snappy: fast, larger.
    Snappy,
    /// LZ4: fast, small.
    Lz4,
}

impl Compression {
    /// librdkafka's name of the codec.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
        }
    }
}

/// Which brokers must have a message before Kafka confirms it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum Acks {
    /// Every in-sync replica; the producer is idempotent.
    #[default]
    #[serde(rename = "all")]
    All,
    /// The partition leader only.
    #[serde(rename = "1")]
    Leader,
    /// No confirmation: a message counts as written once sent.
    #[serde(rename = "0")]
    None,
}

fn default_batch_size() -> usize {
    10_000
}

fn default_flush_interval() -> ecomflow_core::duration::ZeroAllowed {
    ecomflow_core::duration::ZeroAllowed::new(Duration::from_millis(5))
}

const MANAGED: &[Managed] = &[
    Managed {
        key: "bootstrap.servers",
        hint: "set `bootstrap_servers` instead",
    },
    Managed {
        key: "metadata.broker.list",
        hint: "set `bootstrap_servers` instead",
    },
    Managed {
        key: "compression.type",
        hint: "set `compression` instead",
    },
    Managed {
        key: "compression.codec",
        hint: "set `compression` instead",
    },
    Managed {
        key: "batch.num.messages",
        hint: "set `batch_size` instead",
    },
    Managed {
        key: "linger.ms",
        hint: "set `flush_interval` instead",
    },
    Managed {
        key: "queue.buffering.max.ms",
        hint: "set `flush_interval` instead",
    },
    Managed {
        key: "acks",
        hint: "set `acks` instead",
    },
    Managed {
        key: "request.required.acks",
        hint: "set `acks` instead",
    },
];

/// Registers the `kafka` sink.
pub struct KafkaSinkPlugin;

impl SinkPlugin for KafkaSinkPlugin {
    type Config = KafkaSinkConfig;

    fn build(cfg: KafkaSinkConfig, cx: &BuildContext) -> Result<Box<dyn Sink>, BuildError> {
        check_topic("topic", &cfg.topic, false)?;
        if cfg.key_field.as_deref().is_some_and(str::is_empty) {
            return Err(
                BuildError::field("key_field", "key_field is empty").with_hint(
                    "name a record field, or leave the option out for messages without a key",
                ),
            );
        }
        let (acks, idempotent) = match cfg.acks {
            Acks::All => ("all", true),
            Acks::Leader => ("1", false),
            Acks::None => ("0", false),
        };
        let settings = [
            Setting::new("compression.type", cfg.compression.name(), "compression"),
            Setting::new(
                "batch.num.messages",
                cfg.batch_size.to_string(),
                "batch_size",
            ),
            Setting::new(
                "linger.ms",
                millis(cfg.flush_interval.get()),
                "flush_interval",
            ),
            Setting::new("acks", acks, "acks"),
            Setting::new("enable.idempotence", idempotent.to_string(), "acks"),
        ];
        let config = client_config(
            &cx.component,
            &cfg.bootstrap_servers,
            &settings,
            &cfg.options,
            MANAGED,
        )?;
        Ok(Box::new(KafkaSink {
            config,
            topic: cfg.topic,
            key_field: cfg.key_field.as_deref().map(Field::new),
            producer: None,
            value: Vec::new(),
            key: Vec::new(),
        }))
    }
}

struct KafkaSink {
    config: ClientConfig,
    topic: String,
    key_field: Option<Field>,
    /// Created at the first write.
    producer: Option<FutureProducer<Logging>>,
    /// The message value being encoded, reused.
    value: Vec<u8>,
    /// The message key being rendered, reused.
    key: Vec<u8>,
}

/// What happened to one message handed to the producer.
enum Enqueued {
    /// It is on its way; the future tells how it went.
    Queued(DeliveryFuture),
    /// The producer's queue is full.
    Full,
    /// Refused at once.
    Refused(KafkaError),
}

impl KafkaSink {
    fn failure(&self, doing: &str, e: impl std::fmt::Display) -> ComponentError {
        ComponentError::Other(format!(
            "kafka topic `{}` at {}: {doing}: {e}",
            self.topic,
            brokers(&self.config)
        ))
    }

    fn producer(&mut self) -> Result<FutureProducer<Logging>, ComponentError> {
        if let Some(p) = &self.producer {
            return Ok(p.clone());
        }
        let producer: FutureProducer<Logging> = self
            .config
            .create_with_context(Logging)
            .map_err(|e| self.failure("cannot create the producer", e))?;
        self.producer = Some(producer.clone());
        Ok(producer)
    }

    /// Hands one record to the producer.
    fn enqueue(&mut self, producer: &FutureProducer<Logging>, record: &Record) -> Enqueued {
        self.value.clear();
        encode_line(record, &mut self.value);
        self.value.pop(); // the newline
        let keyed = render_key(record, self.key_field, &mut self.key);
        let mut message = FutureRecord::<[u8], [u8]>::to(&self.topic).payload(&self.value[..]);
        if keyed {
            message = message.key(&self.key[..]);
        }
        match producer.send_result(message) {
            Ok(delivery) => Enqueued::Queued(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => Enqueued::Full,
            Err((e, _)) => Enqueued::Refused(e),
        }
    }

    /// Takes the outcome of one delivery: a record Kafka refused becomes a dead letter, a
    /// failure of the brokers stops the run.
    fn settle(
        &self,
        record: &Record,
        outcome: Result<Result<(), KafkaError>, ComponentError>,
        dead: &mut Vec<(String, Payload)>,
    ) -> Result<(), ComponentError> {
        match outcome? {
            Ok(()) => Ok(()),
            Err(e) if refused_record(&e) => {
                let reason = format!("kafka topic `{}` refused the message: {e}", self.topic);
                dead.push((reason, Payload::Record(record.clone())));
                Ok(())
            }
            Err(e) => Err(self.failure("cannot deliver", e)),
        }
    }
}

/// Waits for one delivery.
async fn delivered(delivery: DeliveryFuture) -> Result<Result<(), KafkaError>, ComponentError> {
    match delivery.await {
        Ok(Ok(_)) => Ok(Ok(())),
        Ok(Err((e, _message))) => Ok(Err(e)),
        Err(_) => Err(ComponentError::Other(
            "the kafka producer closed before confirming a delivery".into(),
        )),
    }
}

/// True when Kafka refused the message itself (its size or format), not the brokers failing.
fn refused_record(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::InvalidTimestamp
                | RDKafkaErrorCode::BadMessage
        )
    )
}

/// Renders the key of `record` into `out`; false when the message gets no key.
fn render_key(record: &Record, field: Option<Field>, out: &mut Vec<u8>) -> bool {
    let Some(field) = field else {
        return false;
    };
    out.clear();
    match record.get(field) {
        None | Some(Value::Null) => return false,
        Some(Value::Str(s)) => out.extend_from_slice(s.as_bytes()),
        // Writing into a Vec cannot fail and a value always serializes.
        Some(other) => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
    true
}

#[async_trait]
impl Sink for KafkaSink {
    fn destination(&self) -> Option<ecomflow_core::Destination> {
        let brokers = self.config.get("bootstrap.servers").unwrap_or_default();
        Some(ecomflow_core::Destination::named(
            format!("kafka {brokers}"),
            format!("topic {}", self.topic),
        ))
    }

    async fn write(&mut self, batch: Incoming, cx: &SinkContext) -> Result<(), ComponentError> {
        let batch = batch.records();
        if batch.is_empty() {
            return Ok(());
        }
        let producer = self.producer()?;
        let mut in_flight: VecDeque<(usize, DeliveryFuture)> = VecDeque::with_capacity(batch.len());
        let mut dead = Vec::new();
        let mut result = Ok(());
        'records: for (i, record) in batch.iter().enumerate() {
            loop {
                match self.enqueue(&producer, record) {
                    Enqueued::Queued(delivery) => {
                        in_flight.push_back((i, delivery));
                        continue 'records;
                    }
                    Enqueued::Refused(e) if refused_record(&e) => {
                        self.settle(record, Ok(Err(e)), &mut dead)?;
                        continue 'records;
                    }
                    Enqueued::Refused(e) => {
                        result = Err(self.failure("cannot send", e));
                        break 'records;
                    }
                    // The oldest message's delivery makes room in the queue.
                    Enqueued::Full => match in_flight.pop_front() {
                        Some((j, delivery)) => {
                            let outcome = delivered(delivery).await;
                            if let Err(e) = self.settle(&batch[j], outcome, &mut dead) {
                                result = Err(e);
                                break 'records;
                            }
                        }
                        None => tokio::time::sleep(Duration::from_millis(5)).await,
                    },
                }
            }
        }
        if result.is_ok() {
            // A record counts as written once Kafka confirmed it.
            while let Some((j, delivery)) = in_flight.pop_front() {
                let outcome = delivered(delivery).await;
                if let Err(e) = self.settle(&batch[j], outcome, &mut dead) {
                    result = Err(e);
                    break;
                }
            }
        }
        cx.dead_letter.send(dead).await;
        result
    }

    async fn finish(&mut self, _cx: &SinkContext) -> Result<(), ComponentError> {
        let Some(producer) = self.producer.clone() else {
            return Ok(());
        };
        // Flushing waits on librdkafka, so it runs off the async threads.
        let flushed =
            tokio::task::spawn_blocking(move || producer.flush(Timeout::After(FLUSH_TIMEOUT)))
                .await;
        match flushed {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.failure("cannot flush", e)),
            Err(e) => Err(self.failure("cannot flush", e)),
        }
    }
}

ecomflow_core::inventory::submit!(Plugin::sink::<KafkaSinkPlugin>(
    "kafka",
    "each record as one JSON message to a Kafka topic, keyed by a field"
));
