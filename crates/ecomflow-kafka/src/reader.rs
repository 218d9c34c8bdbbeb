//! The running `kafka` source: the consumer loop, batches per partition, offsets sent and committed.

use crate::config::Start;
use crate::config::brokers;
use crate::end::{Ends, Probe};
use crate::group::{Change, GroupContext, SharedGroup};
use crate::offsets::{Positions, TopicPartition};
use ecomflow_core::PartitionId;
use ecomflow_core::component::Closed;
use ecomflow_core::json::JsonDecoder;
use ecomflow_core::partition_store::PartitionStore;
use ecomflow_core::{Batch, ComponentError, ComponentTelemetry, Payload, SourceContext};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
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
    pub batch_timeout: Duration,
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
    /// A partial batch waited `batch_timeout`.
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

    /// Adds a message to its partition's batch; returns the partition when its batch is full.
    /// A message before the next offset expected from its partition (read already since it
    /// was assigned: the consumer delivered it again) is skipped, so no record is sent twice.
    fn take(&mut self, message: &BorrowedMessage<'_>) -> Option<TopicPartition> {
        self.last_warning = None;
        let offset = message.offset();
        let Some(i) = self.pending_index(message.topic(), message.partition()) else {
            tracing::debug!(
                "kafka group `{}`: {}[{}]@{offset} is not assigned here (any more): skipped",
                self.settings.group_id,
                message.topic(),
                message.partition()
            );
            return None;
        };
        let expected = self.pending[i]
            .next
            .or_else(|| self.group.lock().offsets.sent_up_to(&self.pending[i].tp));
        let p = &mut self.pending[i];
        if read_again(expected, offset) {
            if !p.skipping_again {
                tracing::warn!(
                    "kafka group `{}`: {}[{}]@{offset} delivered again (read up to {} already): \
                     skipped, with what follows it up to there",
                    self.settings.group_id,
                    p.tp.topic,
                    p.tp.partition,
                    expected.unwrap_or_default() - 1
                );
            }
            p.skipping_again = true;
            return None;
        }
        p.skipping_again = false;
        p.bytes += message.payload_len();
        let problem = match message.payload() {
            Some(bytes) if !bytes.is_empty() => match self.decoder.decode(bytes) {
                Ok(record) => {
                    p.records.push(record);
                    None
                }
                Err(e) => Some((e.to_string(), bytes.to_vec())),
            },
            Some(_) => Some(("invalid JSON: empty message".to_string(), Vec::new())),
            None => Some((
                "invalid JSON: no value (a tombstone)".to_string(),
                Vec::new(),
            )),
        };
        if let Some((why, bytes)) = problem {
            let reason = format!("{}[{}]@{offset}: {why}", p.tp.topic, p.tp.partition);
            p.dead.push((reason, Payload::Raw(bytes)));
        }
        p.next = Some(offset + 1);
        p.since.get_or_insert_with(Instant::now);
        let full = p.len() >= self.settings.batch_size || p.bytes >= self.settings.max_batch_bytes;
        let tp = &self.pending[i].tp;
        if self.settings.stop_at_end {
            self.ends.read_to(tp, offset + 1);
        }
        full.then(|| tp.clone())
    }

    /// The watermark slot of `tp`: its partition number for one topic, else its place among
    /// the partitions seen.
    fn slot_of(&mut self, tp: &TopicPartition) -> usize {
        if !self.several_topics {
            return usize::try_from(tp.partition).unwrap_or(0);
        }
        match self.slots.iter().position(|s| s == tp) {
            Some(s) => s,
            None => {
                self.slots.push(tp.clone());
                self.slots.len() - 1
            }
        }
    }

    /// The index of the batch of `topic`[`partition`], made on first use; `None` when the
    /// partition is not assigned to this member (a batch exists only while it is: a revocation
    /// drops it).
    fn pending_index(&mut self, topic: &str, partition: i32) -> Option<usize> {
        if let Some(i) = self
            .pending
            .iter()
            .position(|p| p.tp.partition == partition && *p.tp.topic == *topic)
        {
            return Some(i);
        }
        let tp = TopicPartition {
            topic: topic.into(),
            partition,
        };
        if !self.group.lock().held.contains(&tp) {
            return None;
        }
        let slot = self.slot_of(&tp);
        self.pending.push(Pending {
            partition: self.partition_id(&tp),
            tp,
            slot,
            records: Vec::new(),
            dead: Vec::new(),
            next: None,
            since: None,
            skipping_again: false,
            bytes: 0,
        });
        Some(self.pending.len() - 1)
    }

    /// When the oldest partial batch is due.
    fn next_due(&self) -> Option<Instant> {
        self.pending
            .iter()
            .filter_map(|p| p.since)
            .min()
            .map(|since| since + self.settings.batch_timeout)
    }

    /// Sends batch `i` (its dead letters first), then counts its messages as sent.
    async fn send(&mut self, i: usize, cx: &SourceContext) -> Result<(), Closed> {
        let capacity = self.settings.batch_size.min(4096);
        let p = &mut self.pending[i];
        let records = std::mem::replace(&mut p.records, Vec::with_capacity(capacity));
        let dead = std::mem::take(&mut p.dead);
        p.since = None;
        cx.read_bytes(std::mem::take(&mut p.bytes));
        let (tp, slot, next) = (p.tp.clone(), p.slot, p.next);
        let partition = p.partition.clone();
        cx.reject(dead).await;
        if !records.is_empty() {
            cx.send_partition(&partition, slot, records).await?;
        }
        if let Some(next) = next {
            self.group.lock().offsets.sent(&tp, next);
        }
        Ok(())
    }

    /// Sends the partial batches that waited `batch_timeout`.
    async fn send_due(&mut self, cx: &SourceContext) -> Result<(), Closed> {
        let now = Instant::now();
        let timeout = self.settings.batch_timeout;
        for i in 0..self.pending.len() {
            if self.pending[i].since.is_some_and(|s| s + timeout <= now) {
                self.send(i, cx).await?;
            }
        }
        Ok(())
    }

    /// Sends every batch still waiting.
    pub async fn send_all(&mut self, cx: &SourceContext) -> Result<(), Closed> {
        self.apply_changes(cx).await;
        for i in 0..self.pending.len() {
            if self.pending[i].len() > 0 {
                self.send(i, cx).await?;
            }
        }
        Ok(())
    }

    /// Takes in the assignment changes the group callbacks recorded, at once: callbacks run
    /// while the consumer is polled, and a message the same poll returned belongs to the new
    /// assignment. Unsent records of a revoked partition are dropped (its next reader starts
    /// after the last record sent); with `stop_at_end`, new partitions wait for
    /// [`Reader::measure_ends`].
    async fn apply_changes(&mut self, cx: &SourceContext) {
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
    async fn measure_ends(&mut self) {
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
    async fn others_at_end(&self) -> bool {
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
    fn read_next(&self, tp: &TopicPartition) -> Option<i64> {
        self.pending
            .iter()
            .find(|p| p.tp == *tp)
            .and_then(|p| p.next)
    }

    /// The end offset of each of `tps` now, where the broker answers.
    async fn end_offsets(&self, tps: Vec<TopicPartition>) -> Vec<(TopicPartition, Option<i64>)> {
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
    async fn end_of(&mut self, partition: i32) {
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
    async fn probe(&self, tp: TopicPartition) -> Probe {
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

    /// Takes part in the due checkpoint with where every partition it holds stands (the
    /// others keep what the last completed checkpoint kept for them).
    pub async fn checkpoint(&mut self, cx: &SourceContext) {
        let positions = self.group.lock().offsets.all_sent();
        let partitions = positions
            .iter()
            .map(|(tp, next)| (self.partition_id(tp), serde_json::json!(next)))
            .collect();
        let id = cx
            .checkpoint_partitions(serde_json::json!({}), partitions)
            .await;
        if let Some(id) = id {
            self.checkpointed.push((id, positions));
        }
    }

    /// `tp` as a partition of this source.
    fn partition_id(&self, tp: &TopicPartition) -> Arc<PartitionId> {
        Arc::new(PartitionId {
            source: self.source.clone(),
            topic: tp.topic.clone(),
            number: tp.partition,
        })
    }

    /// Commits the positions of the newest checkpoint up to `done` (a completed one).
    pub async fn commit_checkpointed(&mut self, done: u64) -> Result<(), ComponentError> {
        let Some(at) = self.checkpointed.iter().rposition(|(id, _)| *id <= done) else {
            return Ok(());
        };
        let (_, positions) = self.checkpointed.remove(at);
        self.checkpointed.retain(|(id, _)| *id > done);
        self.commit_positions(positions).await
    }

    /// Once reading stopped: takes part in a last checkpoint after everything sent (asking
    /// for one when `ask`, as a run that reached its end does; a stopped run takes part in
    /// every checkpoint up to the one every source stops at), waits a while for it to
    /// complete and commits its positions, so the group's offsets show everything durably
    /// written.
    pub async fn last_checkpoint(
        &mut self,
        cx: &SourceContext,
        ask: bool,
    ) -> Result<(), ComponentError> {
        let Some(mut completed) = cx.completed_checkpoints() else {
            return Ok(());
        };
        let patience = tokio::time::Instant::now() + LAST_CHECKPOINT_PATIENCE;
        let stopped = cx.shutdown.is_cancelled();
        if ask
            && !stopped
            && tokio::time::timeout_at(patience, cx.request_checkpoint())
                .await
                .is_err()
        {
            tracing::warn!(
                "kafka group `{}`: the checkpoint under way did not complete: no last one",
                self.settings.group_id
            );
        }
        self.checkpoint(cx).await;
        if !stopped {
            cx.ends_here();
        }
        while let Ok(true) = tokio::time::timeout_at(patience, cx.checkpoint_before_stop()).await {
            self.checkpoint(cx).await;
        }
        let Some(&(last, _)) = self.checkpointed.last() else {
            return Ok(());
        };
        let wait = completed.wait_for(|done| *done >= last);
        let done = matches!(tokio::time::timeout_at(patience, wait).await, Ok(Ok(_)));
        if done {
            self.commit_checkpointed(last).await
        } else {
            tracing::warn!(
                "kafka group `{}`: the last checkpoint did not complete: its offsets stay \
                 uncommitted",
                self.settings.group_id
            );
            Ok(())
        }
    }

    /// Commits the offsets sent and not committed yet.
    pub async fn commit(&self) -> Result<(), ComponentError> {
        let positions = self.group.lock().offsets.uncommitted();
        self.commit_positions(positions).await
    }

    /// Commits `positions` for the group, waiting for the broker's answer. A checkpoint can
    /// take [`crate::offsets::Offsets::uncommitted`] when it starts and pass it here once the
    /// sinks have acknowledged everything sent before it.
    pub async fn commit_positions(&self, positions: Positions) -> Result<(), ComponentError> {
        let positions = self.group.lock().offsets.still_held(&positions);
        if positions.is_empty() {
            return Ok(());
        }
        let consumer = self.consumer.clone();
        let list = positions
            .to_list()
            .map_err(|e| self.settings.failure("cannot commit offsets", e))?;
        let commit = tokio::task::spawn_blocking(move || consumer.commit(&list, CommitMode::Sync));
        match tokio::time::timeout(COMMIT_TIMEOUT, commit).await {
            Ok(Ok(Ok(()))) => {
                self.group.lock().offsets.committed(&positions);
                Ok(())
            }
            Ok(Ok(Err(e))) => Err(self.settings.failure("cannot commit offsets", e)),
            Ok(Err(e)) => Err(self.settings.failure("cannot commit offsets", e)),
            Err(_) => Err(self.settings.failure(
                "cannot commit offsets",
                format!("no answer within {}", humantime(COMMIT_TIMEOUT)),
            )),
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
