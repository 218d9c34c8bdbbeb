//! The running `kafka` source: the consumer loop. Its batches per partition, its assignment
//! and end of input, and its checkpoints and commits are in the modules below.

mod assignment;
mod batches;
mod checkpoints;

use crate::config::Start;
use crate::config::brokers;
use crate::end::Ends;
use crate::group::{GroupContext, SharedGroup};
use crate::offsets::{Positions, TopicPartition};
use ecomflow_core::PartitionId;
use ecomflow_core::partition_store::PartitionStore;
use ecomflow_core::{Batch, ComponentError, ComponentTelemetry, Payload, SourceContext};
use ecomflow_json::JsonDecoder;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};

/// How long a look-up of offsets (end offsets, committed ones) may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a commit may take before the source reports it failed.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a `stop_at_end` source that read its own partitions to their end looks whether
/// the group read the others to theirs.
const OTHERS_PATIENCE: Duration = Duration::from_secs(1);

/// How long a stopping source waits for its last checkpoint to complete.
const LAST_CHECKPOINT_PATIENCE: Duration = Duration::from_secs(30);

/// What the source was built with.
pub struct Settings {
    /// The consumer's librdkafka configuration.
    pub config: ClientConfig,
    /// The topics (or patterns) to read.
    pub topics: Vec<String>,
    /// The consumer group.
    pub group_id: String,
    /// Where a group without a committed offset starts.
    pub start: Start,
    /// Records per batch.
    pub batch_size: usize,
    /// Payload bytes that send a batch however few records it holds.
    pub max_batch_bytes: usize,
    /// The longest a record waits in a partial batch.
    pub flush_interval: Duration,
    /// End once every assigned partition was read to its end.
    pub stop_at_end: bool,
    /// How often offsets are committed.
    pub commit_interval: Duration,
    /// Whether the group membership id is picked when it runs (`instance_id = "auto"`).
    pub auto_instance: bool,
}

/// Why reading stopped.
pub enum Ending {
    /// The end of every partition (`stop_at_end`), or shutdown was asked.
    Done,
    /// Nothing reads the output any more.
    Closed,
}

/// What woke the read loop.
enum Event {
    /// A partial batch waited `flush_interval`.
    Due,
    /// Time to commit.
    Commit,
    /// A checkpoint completed.
    Completed,
    /// A checkpoint is asked for (taken at the top of the loop).
    Checkpoint,
    /// A message was read; its partition when that partition's batch is full.
    Read(Option<TopicPartition>),
    /// The consumer reported something.
    Error(KafkaError),
}

/// Records read from one partition and not sent yet.
struct Pending {
    tp: TopicPartition,
    /// The partition as a shard.
    partition: Arc<PartitionId>,
    /// The partition as the event-time watermark knows it.
    slot: usize,
    records: Batch,
    dead: Vec<(String, Payload)>,
    /// The next offset after the last message read.
    next: Option<i64>,
    /// When the oldest message still waiting was read.
    since: Option<Instant>,
    /// Skipping messages delivered again (see [`read_again`]), warned about once.
    skipping_again: bool,
    /// Payload bytes of the messages waiting (counted when they are sent).
    bytes: usize,
}

impl Pending {
    fn len(&self) -> usize {
        self.records.len() + self.dead.len()
    }
}

/// Whether a message at `offset` was read already from its partition, whose next offset
/// expected is `expected` (after the last message read since it was assigned, or where it
/// was assigned to resume; `None` when neither is known). Offsets only grow within a
/// partition, so a lower one is the consumer delivering a message again (as it can around a
/// rebalance); sending it again would count it twice downstream.
fn read_again(expected: Option<i64>, offset: i64) -> bool {
    expected.is_some_and(|next| offset < next)
}

/// The running source: its consumer and what it read.
pub struct Reader {
    settings: Settings,
    /// The source's path, which names its partitions.
    source: Arc<str>,
    consumer: Arc<StreamConsumer<GroupContext>>,
    group: SharedGroup,
    pending: Vec<Pending>,
    /// Every partition seen, in order: its position is its watermark slot when several
    /// topics are read.
    slots: Vec<TopicPartition>,
    /// Several topics (or a pattern): partition numbers alone do not tell partitions apart.
    several_topics: bool,
    decoder: JsonDecoder,
    ends: Ends,
    /// With `stop_at_end`: partitions assigned whose end offsets were not asked yet (`Some`,
    /// possibly empty, once an assignment came).
    unmeasured: Option<Vec<TopicPartition>>,
    /// The last consumer error warned about, so a repeated one is not logged again.
    last_warning: Option<String>,
    /// Checkpoints taken and not completed yet, with the positions they hold.
    checkpointed: Vec<(u64, Positions)>,
}

impl Reader {
    /// Creates the consumer and joins the group (which happens in the background). With a
    /// checkpoint `store`, each partition assigned resumes from what it keeps for it, and
    /// offsets are committed only for completed checkpoints; `telemetry` is the source's
    /// (its path names its partitions).
    pub fn start(
        settings: Settings,
        store: Option<PartitionStore>,
        telemetry: Arc<ComponentTelemetry>,
    ) -> Result<Reader, ComponentError> {
        let group = SharedGroup::default();
        let source = telemetry.path.clone();
        let context = GroupContext {
            group: group.clone(),
            group_id: settings.group_id.clone(),
            store,
            source: source.clone(),
            telemetry,
        };
        let consumer: StreamConsumer<GroupContext> =
            settings
                .config
                .create_with_context(context)
                .map_err(|e| settings.failure("cannot create the consumer", e))?;
        let consumer = Arc::new(consumer);
        #[cfg(test)]
        test_consumers::keep(&settings.group_id, &consumer);
        let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| settings.failure("cannot subscribe", e))?;
        Ok(Reader {
            source,
            several_topics: settings.topics.len() > 1 || settings.topics[0].starts_with('^'),
            settings,
            consumer,
            group,
            pending: Vec::new(),
            slots: Vec::new(),
            decoder: JsonDecoder::new(),
            ends: Ends::default(),
            unmeasured: None,
            last_warning: None,
            checkpointed: Vec::new(),
        })
    }

    pub async fn read(&mut self, cx: &SourceContext) -> Result<Ending, ComponentError> {
        let consumer = self.consumer.clone();
        let every = self.settings.commit_interval;
        let mut commit_timer = tokio::time::interval_at(Instant::now() + every, every);
        commit_timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // With checkpoints, offsets are committed only once a checkpoint holding them is
        // complete (every sink made what came before it durable), never on a timer.
        let mut completed = cx.completed_checkpoints();
        let checkpointing = completed.is_some();
        loop {
            if cx.checkpoint_due() {
                self.checkpoint(cx).await;
            }
            self.apply_changes(cx).await;
            self.measure_ends().await;
            if let Some(e) = self.group.lock().unreadable.take() {
                return Err(self.settings.failure(
                    "cannot resume",
                    format!(
                        "{e}. To start this source afresh, run again with `--reset-state {}`",
                        self.source
                    ),
                ));
            }
            let mut waiting_for_others = false;
            if self.settings.stop_at_end && self.ends.all_done() {
                if self.others_at_end().await {
                    return Ok(Ending::Done);
                }
                waiting_for_others = true;
            }
            let due = self.next_due();
            let event = tokio::select! {
                biased;
                _ = cx.shutdown.cancelled() => return Ok(Ending::Done),
                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    Event::Due
                }
                _ = commit_timer.tick(), if !checkpointing => Event::Commit,
                // Another member holds partitions not at their end yet: look again later.
                _ = tokio::time::sleep(OTHERS_PATIENCE), if waiting_for_others => Event::Checkpoint,
                _ = cx.checkpoint_requested(), if checkpointing => Event::Checkpoint,
                Some(Ok(())) = async {
                    match completed.as_mut() {
                        Some(c) => Some(c.changed().await),
                        None => std::future::pending().await,
                    }
                } => Event::Completed,
                m = consumer.recv() => {
                    self.apply_changes(cx).await;
                    match m {
                        Ok(message) => Event::Read(self.take(&message)),
                        Err(e) => Event::Error(e),
                    }
                }
            };
            // Rebalance callbacks may have run while the other branches waited.
            self.apply_changes(cx).await;
            self.measure_ends().await;
            match event {
                Event::Due => {
                    if self.send_due(cx).await.is_err() {
                        return Ok(Ending::Closed);
                    }
                }
                Event::Commit => {
                    if let Err(e) = self.commit().await {
                        tracing::warn!("{e} (trying again in {})", humantime(every));
                    }
                }
                Event::Checkpoint => {}
                Event::Completed => {
                    let done = completed.as_ref().map_or(0, |c| *c.borrow());
                    if let Err(e) = self.commit_checkpointed(done).await {
                        tracing::warn!("{e} (the next checkpoint commits again)");
                    }
                }
                Event::Read(Some(tp)) => {
                    // Found again: the batch is gone if its partition was revoked since.
                    let full = self.pending.iter().position(|p| p.tp == tp);
                    if let Some(i) = full
                        && self.send(i, cx).await.is_err()
                    {
                        return Ok(Ending::Closed);
                    }
                }
                Event::Read(None) => {}
                Event::Error(KafkaError::PartitionEOF(partition)) => self.end_of(partition).await,
                Event::Error(e @ KafkaError::MessageConsumptionFatal(_)) => {
                    return Err(self.settings.failure("cannot read", e));
                }
                Event::Error(e) => self.warn(e),
            }
        }
    }

    /// Warns about a consumer error once (librdkafka retries on its own).
    fn warn(&mut self, e: KafkaError) {
        let text = e.to_string();
        if self.last_warning.as_deref() != Some(text.as_str()) {
            tracing::warn!(
                "kafka group `{}` reading {:?} at {}: {text}",
                self.settings.group_id,
                self.settings.topics,
                brokers(&self.settings.config)
            );
            self.last_warning = Some(text);
        }
    }

    /// Leaves the group. Closing waits for the broker, so it runs off the async threads.
    pub async fn close(self) {
        let consumer = self.consumer;
        let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
    }
}

impl Settings {
    fn failure(&self, doing: &str, e: impl std::fmt::Display) -> ComponentError {
        ComponentError::Other(format!(
            "kafka group `{}` reading {:?} at {}: {doing}: {e}",
            self.group_id,
            self.topics,
            brokers(&self.config)
        ))
    }
}

fn humantime(d: Duration) -> String {
    humantime_serde::re::humantime::format_duration(d).to_string()
}

/// The consumers of the sources this crate's tests start, by group id: a test moves one
/// back (`seek`) to deliver messages again, as librdkafka can around a rebalance. Kept weakly:
/// a consumer still held here after its source ended would stay in its group and keep
/// partitions from the next one.
#[cfg(test)]
pub(crate) mod test_consumers {
    use super::GroupContext;
    use rdkafka::consumer::StreamConsumer;
    use std::sync::{Arc, Mutex, Weak};

    type Kept = Vec<(String, Weak<StreamConsumer<GroupContext>>)>;
    static CONSUMERS: Mutex<Kept> = Mutex::new(Vec::new());

    pub(crate) fn keep(group: &str, consumer: &Arc<StreamConsumer<GroupContext>>) {
        if let Ok(mut kept) = CONSUMERS.lock() {
            kept.retain(|(_, c)| c.strong_count() > 0);
            kept.push((group.to_string(), Arc::downgrade(consumer)));
        }
    }

    /// The consumer of the running source reading as `group`.
    pub(crate) fn of(group: &str) -> Option<Arc<StreamConsumer<GroupContext>>> {
        let kept = CONSUMERS.lock().ok()?;
        kept.iter()
            .filter(|(g, _)| g == group)
            .find_map(|(_, c)| c.upgrade())
    }
}

#[cfg(test)]
mod tests {
    use super::read_again;

    #[test]
    fn a_message_before_the_next_offset_expected_was_read_already() {
        assert!(read_again(Some(1790), 1789), "delivered again");
        assert!(read_again(Some(1790), 0));
        assert!(!read_again(Some(1790), 1790), "the next one");
        assert!(
            !read_again(Some(1790), 1800),
            "a gap (compaction, transactions)"
        );
        assert!(!read_again(None, 5), "nothing known yet: the first message");
    }
}
