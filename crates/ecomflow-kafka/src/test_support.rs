//! Test helpers: plugins built from TOML through the registry, real channels, and a real broker (`ECOMFLOW_TEST_KAFKA`).

use ecomflow_core::CancellationToken;
use ecomflow_core::component::DeadLetterOutput;
use ecomflow_core::source_checkpoints::SourceCheckpoints;
use ecomflow_core::{
    Batch, BuildError, Counters, DeadLetter, Field, Kind, Message, Output, Record, Sink, Source,
    SourceContext, Value,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a test waits for the broker before failing.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The test broker, from `ECOMFLOW_TEST_KAFKA` (default `127.0.0.1:19092`, where
/// `scripts/services.sh start kafka` runs one).
pub fn broker() -> String {
    std::env::var("ECOMFLOW_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

/// A name no other test (or earlier run) uses.
pub fn unique(what: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "ecomflow-test-{what}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn client(extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", broker());
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

/// Creates `topic` with `partitions` partitions and topic `settings`, and waits until every
/// partition has a leader. Fails the test when the broker cannot be reached.
pub async fn create_topic(topic: &str, partitions: i32, settings: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> =
        client(&[]).create().expect("admin client is created");
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (k, v) in settings {
        new = new.set(k, v);
    }
    let options = AdminOptions::new()
        .request_timeout(Some(PATIENCE))
        .operation_timeout(Some(PATIENCE));
    let results = admin.create_topics(&[new], &options).await.unwrap_or_else(|e| {
        panic!(
            "cannot create topic {topic} at {} (start it with `scripts/services.sh start kafka`): {e}",
            broker()
        )
    });
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("cannot create topic {t}: {e}"));
    }
    let admin = Arc::new(admin);
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let ready = admin
                .inner()
                .fetch_metadata(Some(&topic), Duration::from_secs(5))
                .map(|m| {
                    m.topics().iter().any(|t| {
                        t.name() == topic
                            && t.error().is_none()
                            && t.partitions().len() == partitions as usize
                            && t.partitions().iter().all(|p| p.leader() >= 0)
                    })
                })
                .unwrap_or(false);
            if ready {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "topic {topic} has no leaders"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .expect("metadata wait");
}

/// One message to produce: partition, key and value (`None`: a tombstone).
pub struct Out {
    /// The partition.
    pub partition: i32,
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The value.
    pub value: Option<Vec<u8>>,
}

/// A JSON message for `partition`.
pub fn json_to(partition: i32, value: serde_json::Value) -> Out {
    Out {
        partition,
        key: None,
        value: Some(value.to_string().into_bytes()),
    }
}

/// Raw bytes (or a tombstone) for `partition`.
pub fn raw_to(partition: i32, value: Option<&[u8]>) -> Out {
    Out {
        partition,
        key: None,
        value: value.map(<[u8]>::to_vec),
    }
}

/// A producer for [`produce_with`].
pub fn producer() -> FutureProducer {
    client(&[("linger.ms", "2")])
        .create()
        .expect("producer is created")
}

/// Produces `messages` to `topic` in order, waiting for each batch of deliveries; returns
/// the (partition, offset) of each.
pub async fn produce(topic: &str, messages: &[Out]) -> Vec<(i32, i64)> {
    produce_with(&producer(), topic, messages).await
}

/// [`produce`] with a producer made once.
pub async fn produce_with(
    producer: &FutureProducer,
    topic: &str,
    messages: &[Out],
) -> Vec<(i32, i64)> {
    let mut deliveries = Vec::with_capacity(messages.len());
    for m in messages {
        let mut r = FutureRecord::<[u8], [u8]>::to(topic).partition(m.partition);
        if let Some(k) = &m.key {
            r = r.key(&k[..]);
        }
        if let Some(v) = &m.value {
            r = r.payload(&v[..]);
        }
        let d = producer
            .send_result(r)
            .map_err(|(e, _)| e)
            .expect("message is queued");
        deliveries.push(d);
    }
    let mut out = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        let delivery = d
            .await
            .expect("producer is alive")
            .unwrap_or_else(|(e, _)| panic!("cannot produce to {topic} at {}: {e}", broker()));
        out.push((delivery.partition, delivery.offset));
    }
    out
}

/// The (low, high) watermarks of each partition of `topic`.
pub async fn watermarks(topic: &str, partitions: i32) -> Vec<(i64, i64)> {
    let consumer: StreamConsumer = client(&[]).create().expect("consumer is created");
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        (0..partitions)
            .map(|p| {
                consumer
                    .fetch_watermarks(&topic, p, PATIENCE)
                    .expect("watermarks")
            })
            .collect()
    })
    .await
    .expect("watermarks task")
}

/// The end offset of each partition of `topic`.
pub async fn end_offsets(topic: &str, partitions: i32) -> Vec<i64> {
    watermarks(topic, partitions)
        .await
        .into_iter()
        .map(|(_, high)| high)
        .collect()
}

/// The offsets `group` committed for each partition of `topic` (`None`: none).
pub async fn committed(group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
    let consumer: StreamConsumer = client(&[("group.id", group)])
        .create()
        .expect("consumer is created");
    let mut list = TopicPartitionList::new();
    list.add_partition_range(topic, 0, partitions - 1);
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let c = consumer
            .committed_offsets(list, PATIENCE)
            .expect("committed offsets");
        (0..partitions)
            .map(|p| match c.find_partition(&topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(n)) => Some(n),
                _ => None,
            })
            .collect()
    })
    .await
    .expect("committed task")
}

/// Commits `offsets` (partition, next offset) of `topic` for `group`, from outside it.
pub async fn commit(group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let consumer: StreamConsumer = client(&[("group.id", group)])
        .create()
        .expect("consumer is created");
    let mut list = TopicPartitionList::new();
    for (p, next) in offsets {
        list.add_partition_offset(topic, *p, Offset::Offset(*next))
            .expect("offset");
    }
    tokio::task::spawn_blocking(move || {
        consumer
            .commit(&list, rdkafka::consumer::CommitMode::Sync)
            .expect("committed")
    })
    .await
    .expect("commit task")
}

/// A message read back.
#[derive(Debug)]
pub struct In {
    /// Its partition.
    pub partition: i32,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its value.
    pub value: Option<Vec<u8>>,
}

/// Every message of `topic`, read with a plain consumer outside any group.
pub async fn read_topic(topic: &str, partitions: i32) -> Vec<In> {
    let marks = watermarks(topic, partitions).await;
    let expected: i64 = marks.iter().map(|(low, high)| high - low).sum();
    // Assigned partitions, no subscription; librdkafka still wants a group id.
    let group = unique("reader");
    let consumer: StreamConsumer = client(&[("group.id", &group), ("enable.auto.commit", "false")])
        .create()
        .expect("consumer is created");
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&list).expect("assigned");
    let mut out = Vec::new();
    while (out.len() as i64) < expected {
        let m = tokio::time::timeout(PATIENCE, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {expected} messages came", out.len()))
            .expect("message");
        out.push(In {
            partition: m.partition(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
        });
    }
    out
}

pub use ecomflow_core::testing::{build_error, dead_letters, plugin, record, sink_context};

/// The schema of the `kafka` plugin of `kind`, as JSON.
pub fn schema(kind: Kind) -> serde_json::Value {
    serde_json::to_value((plugin(kind, "kafka").schema)()).expect("schema is JSON")
}

/// Builds the `kafka` source from TOML options, exactly as the runtime does.
pub fn build_source(options: &str) -> Result<Box<dyn Source>, BuildError> {
    ecomflow_core::testing::build_source("kafka", options)
}

/// Builds the `kafka` sink from TOML options, exactly as the runtime does.
pub fn build_sink(options: &str) -> Result<Box<dyn Sink>, BuildError> {
    ecomflow_core::testing::build_sink("kafka", options)
}

/// The integer field `name` of `r`.
pub fn int(r: &Record, name: &str) -> i64 {
    match r.get(Field::new(name)) {
        Some(Value::Int(i)) => *i,
        other => panic!("{name} is {other:?}"),
    }
}

/// A source running in the background, with what it sent so far.
pub struct Running {
    /// Batches sent downstream, as they come.
    pub batches: mpsc::UnboundedReceiver<Batch>,
    /// Dead letters, as they come.
    pub dead: mpsc::UnboundedReceiver<DeadLetter>,
    /// Asks the source to stop.
    pub shutdown: CancellationToken,
    /// The source's own task, ending with its result.
    pub task: tokio::task::JoinHandle<Result<(), ecomflow_core::ComponentError>>,
}

/// Starts `source` on real channels, draining them into [`Running`].
pub fn start(source: Box<dyn Source>) -> Running {
    start_paced(source, Duration::ZERO)
}

/// Like [`start`], with a downstream that takes `pause` per batch (backpressure).
pub fn start_paced(source: Box<dyn Source>, pause: Duration) -> Running {
    start_with(source, pause, None)
}

/// Like [`start`], in a pipeline that takes checkpoints and was restarted from one that
/// kept `positions` ((topic, partition, position) triples) for the source's partitions. No
/// coordinator runs: a checkpoint the source asks for never completes, so it commits
/// nothing.
pub fn start_restored(
    source: Box<dyn Source>,
    positions: &[(&str, i32, serde_json::Value)],
) -> Running {
    start_restored_from(source, serde_json::json!({}), positions)
}

/// Like [`start_restored`], with `whole` as what the checkpoint kept for the source itself
/// (`{}` since partitions keep their own positions).
pub fn start_restored_from(
    source: Box<dyn Source>,
    whole: serde_json::Value,
    positions: &[(&str, i32, serde_json::Value)],
) -> Running {
    let (reports, _) = mpsc::unbounded_channel();
    let (wanted, _) = mpsc::unbounded_channel();
    let (_, completed) = tokio::sync::watch::channel(0);
    let mut checkpoint = ecomflow_core::checkpoint::Checkpoint::default();
    let kept = checkpoint
        .partitions
        .entry("sources.test".to_string())
        .or_default();
    for (topic, partition, position) in positions {
        kept.insert(
            format!("{topic}/{partition}"),
            ecomflow_core::checkpoint::PartitionCheckpoint {
                position: position.clone(),
                transforms: Default::default(),
            },
        );
    }
    let checkpoints = SourceCheckpoints {
        requested: Arc::default(),
        asked: Arc::default(),
        taken: Default::default(),
        reports,
        wanted,
        restored: Some(whole),
        completed,
        store: ecomflow_core::partition_store::PartitionStore::new(checkpoint),
        stop_at: tokio::sync::watch::channel(None).1,
        finished: Arc::default(),
    };
    start_with(source, Duration::ZERO, Some(checkpoints))
}

fn start_with(
    source: Box<dyn Source>,
    pause: Duration,
    checkpoints: Option<SourceCheckpoints>,
) -> Running {
    let (tx, mut rx) = ecomflow_core::channel::input(ecomflow_core::channel::Capacity {
        messages: 4,
        ..Default::default()
    });
    let counters = Arc::new(Counters::default());
    let (dead_letter, mut dead_rx) =
        DeadLetterOutput::collected("sources.test".into(), counters.clone());
    let shutdown = CancellationToken::new();
    let cx = SourceContext {
        output: Output::new(vec![(tx, 0)]),
        dead_letter,
        shutdown: shutdown.clone(),
        telemetry: Arc::new(ecomflow_core::ComponentTelemetry::new(
            "sources.test".into(),
            ecomflow_core::Kind::Source,
            "kafka",
            counters.clone(),
        )),
        counters,
        event_time: None,
        checkpoints,
    };
    let (batches_tx, batches) = mpsc::unbounded_channel();
    let (letters_tx, dead) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if let Message::Batch { batch: b, .. } = m {
                let _ = batches_tx.send(Arc::unwrap_or_clone(b));
                tokio::time::sleep(pause).await;
            }
        }
    });
    tokio::spawn(async move {
        while let Some(d) = dead_rx.recv().await {
            for letter in d {
                let _ = letters_tx.send(letter);
            }
        }
    });
    let task = tokio::spawn(source.run(cx));
    Running {
        batches,
        dead,
        shutdown,
        task,
    }
}

impl Running {
    /// Receives batches until they hold `n` records in all.
    pub async fn records(&mut self, n: usize) -> Vec<Batch> {
        let mut out = Vec::new();
        let mut seen = 0;
        while seen < n {
            let b = tokio::time::timeout(PATIENCE, self.batches.recv())
                .await
                .unwrap_or_else(|_| panic!("only {seen} of {n} records came"))
                .expect("the source is running");
            seen += b.len();
            out.push(b);
        }
        assert_eq!(seen, n, "more records than expected");
        out
    }

    /// Waits for the source to end on its own (`stop_at_end`) and returns everything it
    /// sent: batches and dead letters.
    pub async fn finish(mut self) -> (Vec<Batch>, Vec<DeadLetter>) {
        let result = tokio::time::timeout(PATIENCE, &mut self.task)
            .await
            .expect("the source ends by itself")
            .expect("the source task does not panic");
        result.expect("the source runs without error");
        self.drain().await
    }

    /// Everything the source sent, once its task has ended.
    pub async fn drain(mut self) -> (Vec<Batch>, Vec<DeadLetter>) {
        let mut batches = Vec::new();
        while let Some(b) = self.batches.recv().await {
            batches.push(b);
        }
        let mut dead = Vec::new();
        while let Some(d) = self.dead.recv().await {
            dead.push(d);
        }
        (batches, dead)
    }
}

/// Runs a `stop_at_end` source to its end: (batches, dead letters).
pub async fn run_to_end(source: Box<dyn Source>) -> (Vec<Batch>, Vec<DeadLetter>) {
    start(source).finish().await
}
