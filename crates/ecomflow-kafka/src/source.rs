//! The `kafka` source: JSON messages from Kafka topics, sent in batches per partition; the group's offsets committed once the sinks made the records durable.

use crate::config::{Managed, Options, Setting, Start, check_topic, client_config};
use crate::offsets::Positions;
use crate::reader::{Ending, Reader, Settings};
use ecomflow_core::async_trait::async_trait;
use ecomflow_core::component::SourceCapabilities;
use ecomflow_core::{
    BuildContext, BuildError, ComponentError, Plugin, Source, SourceContext, SourcePlugin,
};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

/// Options of the `kafka` source.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// The brokers to connect to first, as `host:port` separated by commas (librdkafka's
    /// `bootstrap.servers`).
    pub bootstrap_servers: String,
    /// The topics to read, such as `["financial_transactions"]`; a name starting with `^` is a
    /// regular expression matching topic names. Each message is one JSON object; a message
    /// that is not (or is empty) goes to the dead-letter output with its topic, partition and
    /// offset.
    pub topics: Vec<String>,
    /// The consumer group. Members of one group share the topics' partitions, and the
    /// group's committed offsets tell where the next run resumes.
    pub group_id: String,
    /// Where the group starts reading a partition it has no committed offset for: `earliest`
    /// (the oldest message the topic keeps) or `latest` (only messages written from then on).
    #[serde(default)]
    pub start: Start,
    /// Records per batch sent downstream; a batch holds records of one partition only.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1))]
    pub batch_size: usize,
    /// A batch also goes out as soon as its messages' payloads reach this many bytes, such as
    /// `"4 MiB"`, however few records it holds: with large messages this bounds a batch's
    /// memory.
    #[serde(default = "default_max_batch_bytes")]
    #[schemars(with = "ecomflow_core::byte_size::Bytes")]
    pub max_batch_bytes: ecomflow_core::byte_size::ByteSize,
    /// The longest a record waits in a partial batch, such as `100ms`: a batch is sent when
    /// it is full, or when its first record has waited this long. (The name every plugin
    /// gives this wait; `batch_timeout` is still read.)
    #[serde(default = "default_flush_interval", alias = "batch_timeout")]
    pub flush_interval: ecomflow_core::duration::Positive,
    /// End the source once it has read every partition assigned to it to the end (the end
    /// as it was when reached: later messages are left for the next run), for bounded runs.
    /// By default the source reads until the pipeline is stopped.
    #[serde(default)]
    pub stop_at_end: bool,
    /// This member's fixed id in the group (librdkafka's `group.instance.id`, static
    /// membership), such as `ecomflow-1`: unique per running process and the same when it
    /// is started again. A member that restarts within `session.timeout.ms` (45 s unless
    /// `options` say otherwise) gets its partitions back at once, without a rebalance of the
    /// group; without it, a restarted process joins as a new member. The trade-off: a static
    /// member that stops for good, even cleanly, keeps its partitions until its session
    /// times out. `auto`: `<hostname>-<n>`, with n the first slot of the group free on this
    /// machine (the same after a restart, different for processes side by side). Empty: none.
    #[serde(default)]
    pub instance_id: String,
    /// How often the group's offsets are committed, such as `5s`, and when the source stops.
    /// Only offsets of records every sink has made durable are committed: in a pipeline
    /// without a `[checkpoint]` table the runtime asks the sinks at this interval (keeping no
    /// state); with one, offsets are committed as its checkpoints complete, at its interval.
    #[serde(default = "default_commit_interval")]
    pub commit_interval: ecomflow_core::duration::Positive,
    /// Extra librdkafka consumer settings, such as `{ "session.timeout.ms" = 10000 }` (see
    /// librdkafka's CONFIGURATION.md). Settings that an option above controls, and those the
    /// source sets itself (`enable.auto.commit`, `enable.auto.offset.store`,
    /// `enable.partition.eof`), are refused.
    #[serde(default)]
    pub options: Options,
}

fn default_batch_size() -> usize {
    1024
}

fn default_max_batch_bytes() -> ecomflow_core::byte_size::ByteSize {
    ecomflow_core::byte_size::ByteSize::mib(4)
}

fn default_flush_interval() -> ecomflow_core::duration::Positive {
    ecomflow_core::duration::Positive::new(Duration::from_millis(100))
}

fn default_commit_interval() -> ecomflow_core::duration::Positive {
    ecomflow_core::duration::Positive::new(Duration::from_secs(5))
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
        key: "group.id",
        hint: "set `group_id` instead",
    },
    Managed {
        key: "auto.offset.reset",
        hint: "set `start` instead",
    },
    Managed {
        key: "enable.auto.commit",
        hint: "the source commits the offsets of the records it sent; set `commit_interval`",
    },
    Managed {
        key: "auto.commit.interval.ms",
        hint: "set `commit_interval` instead",
    },
    Managed {
        key: "enable.auto.offset.store",
        hint: "the source commits the offsets of the records it sent; set `commit_interval`",
    },
    Managed {
        key: "enable.partition.eof",
        hint: "set `stop_at_end` instead",
    },
    Managed {
        key: "group.instance.id",
        hint: "set `instance_id` instead",
    },
];

/// The `instance_id` that picks one per process (see `member_slot`).
const AUTO: &str = "auto";

/// Registers the `kafka` source.
pub struct KafkaSourcePlugin;

impl SourcePlugin for KafkaSourcePlugin {
    type Config = KafkaSourceConfig;

    fn build(cfg: KafkaSourceConfig, cx: &BuildContext) -> Result<Box<dyn Source>, BuildError> {
        if cfg.topics.is_empty() {
            return Err(BuildError::field("topics", "topics is empty")
                .with_hint("name a topic, such as `topics = [\"financial_transactions\"]`"));
        }
        for topic in &cfg.topics {
            check_topic("topics", topic, true)?;
        }
        if cfg.group_id.trim().is_empty() {
            return Err(BuildError::field("group_id", "group_id is empty"));
        }
        if cfg.batch_size == 0 {
            return Err(BuildError::field(
                "batch_size",
                "batch_size must be at least 1",
            ));
        }
        if cfg.commit_interval.is_zero() {
            return Err(BuildError::field(
                "commit_interval",
                "commit_interval must be longer than 0",
            ));
        }
        // Rebalances move only the partitions that change owner (cooperative-sticky), unless
        // the options pick a protocol or an assignor of their own (KIP-848's
        // `group.protocol = "consumer"` assigns on the broker and takes no assignor here).
        let assignor = !cfg.options.contains_key("group.protocol")
            && !cfg.options.contains_key("partition.assignment.strategy");
        let instance_id = cfg.instance_id.trim().to_string();
        let reset = match cfg.start {
            Start::Earliest => "earliest",
            Start::Latest => "latest",
        };
        let mut settings = vec![
            Setting::new("group.id", cfg.group_id.as_str(), "group_id"),
            Setting::new("auto.offset.reset", reset, "start"),
            Setting::new("enable.auto.commit", "false", "options"),
            Setting::new("enable.auto.offset.store", "false", "options"),
            Setting::new(
                "enable.partition.eof",
                cfg.stop_at_end.to_string(),
                "stop_at_end",
            ),
        ];
        if assignor {
            settings.push(Setting::new(
                "partition.assignment.strategy",
                "cooperative-sticky",
                "options",
            ));
        }
        // librdkafka's statistics give each partition's consumer lag, for the metrics.
        if !cfg.options.contains_key("statistics.interval.ms") {
            settings.push(Setting::new("statistics.interval.ms", "1000", "options"));
        }
        if !instance_id.is_empty() && instance_id != AUTO {
            settings.push(Setting::new(
                "group.instance.id",
                instance_id.as_str(),
                "instance_id",
            ));
        }
        let config = client_config(
            &cx.component,
            &cfg.bootstrap_servers,
            &settings,
            &cfg.options,
            MANAGED,
        )?;
        Ok(Box::new(KafkaSource(Settings {
            config,
            topics: cfg.topics,
            group_id: cfg.group_id,
            start: cfg.start,
            batch_size: cfg.batch_size,
            max_batch_bytes: ecomflow_core::byte_size::bytes(cfg.max_batch_bytes).max(1),
            flush_interval: cfg.flush_interval.get(),
            stop_at_end: cfg.stop_at_end,
            commit_interval: cfg.commit_interval.get(),
            auto_instance: instance_id == AUTO,
        })))
    }
}

/// The `kafka` source as built; it reads when it runs.
struct KafkaSource(Settings);

#[async_trait]
impl Source for KafkaSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), ComponentError> {
        // Each partition resumes where the newest completed checkpoint left it, whatever the
        // group committed: a checkpoint completes before its offsets are committed, so they
        // may lag behind. A checkpoint from before partitions kept their own state holds
        // one state for every partition, which cannot be split.
        if let Some(json) = cx.restored_position()
            && !json.as_object().is_some_and(|o| o.is_empty())
        {
            let Some(old) = Positions::from_json(json) else {
                return Err(ComponentError::Other(format!(
                    "kafka group `{}`: the checkpoint's offsets are unreadable: {json}",
                    self.0.group_id
                )));
            };
            if !old.is_empty() {
                return Err(ComponentError::Other(format!(
                    "kafka group `{}`: the checkpoint was written by an ecomflow that kept one \
                 state for all partitions; each partition now keeps its own. Finish it with \
                 the older ecomflow, or start afresh with `--reset-state {}` and the \
                 transforms' paths",
                    self.0.group_id,
                    cx.path()
                )));
            }
        }
        let checkpointing = cx.completed_checkpoints().is_some();
        let mut settings = self.0;
        // Held until the source ends: the slot is this process's while it reads.
        let _slot = if settings.auto_instance {
            let slot =
                crate::member_slot::claim(&settings.group_id).map_err(ComponentError::Other)?;
            tracing::info!(group = %settings.group_id, instance_id = %slot.id, "static group membership");
            settings.config.set("group.instance.id", &slot.id);
            Some(slot)
        } else {
            None
        };
        let mut reader = Reader::start(settings, cx.partition_store(), cx.telemetry.clone())?;
        let read = reader.read(&cx).await;
        if !matches!(read, Ok(Ending::Closed)) {
            // Nothing reads the output any more when this fails: what is left stays
            // uncommitted, for the next run.
            let _ = reader.send_all(&cx).await;
        }
        let committed = if checkpointing {
            reader
                .last_checkpoint(&cx, matches!(read, Ok(Ending::Done)))
                .await
        } else {
            reader.commit().await
        };
        reader.close().await;
        read?;
        committed
    }

    /// Each partition keeps its own state; offsets are committed every `commit_interval`
    /// once the sinks made what came before durable; not ready until the group gives this
    /// member its partitions.
    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities {
            partitioned_state: true,
            acknowledged_every: Some(self.0.commit_interval),
            ready_at_start: false,
        }
    }
}

ecomflow_core::inventory::submit!(Plugin::source::<KafkaSourcePlugin>(
    "kafka",
    "JSON messages from Kafka topics, offsets committed for a consumer group"
));
