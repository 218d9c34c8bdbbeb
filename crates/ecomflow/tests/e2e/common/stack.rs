//! Helpers for the tests against the real servers `scripts/services.sh` starts: where they
//! are, running ecomflow, reading Elasticsearch, the group's committed offsets, and
//! PostgreSQL tables dumped as text.

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::TopicPartitionList;
use std::ffi::OsStr;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// The test broker.
pub fn kafka() -> String {
    env_or("ECOMFLOW_TEST_KAFKA", "127.0.0.1:19092")
}

/// The test Elasticsearch.
pub fn elasticsearch() -> String {
    env_or("ECOMFLOW_TEST_ELASTICSEARCH", "http://127.0.0.1:19200")
}

/// A pipeline file shipped in `pipelines/` (or in the folder `ECOMFLOW_TEST_PIPELINES` names:
/// a copy, beside its `migrations/`, that a long loop of a test keeps using while the tree
/// changes).
pub fn pipeline(name: &str) -> String {
    let dir = std::env::var_os("ECOMFLOW_TEST_PIPELINES").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines"),
        PathBuf::from,
    );
    let path: PathBuf = dir.join(name);
    path.to_str().expect("utf8").to_string()
}

/// `run` of the flagship with `--set` of each of `sets`.
pub fn flagship_run(sets: &[&str]) -> Vec<String> {
    let mut args = vec!["run".to_string(), pipeline("ecommerce.toml")];
    for set in sets {
        args.push("--set".into());
        args.push(set.to_string());
    }
    args
}

/// `ecomflow` with `args` and `envs`, in `dir`: the binary cargo built with the test, or the
/// one `ECOMFLOW_TEST_BIN` names (a copy that a long loop of a test keeps using while the
/// tree is built again).
pub fn ecomflow<S: AsRef<OsStr>>(args: &[S], envs: &[(&str, String)], dir: &Path) -> Command {
    let binary = std::env::var_os("ECOMFLOW_TEST_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_ecomflow").into());
    let mut cmd = Command::new(binary);
    cmd.args(args).current_dir(dir);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `ecomflow` to its end, which must be a success; its standard error.
pub fn run<S: AsRef<OsStr> + Debug>(args: &[S], envs: &[(&str, String)], dir: &Path) -> String {
    let out = ecomflow(args, envs, dir).output().expect("ecomflow runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ecomflow {args:?} failed:\n{stderr}");
    stderr
}

/// Runs the flagship on `lines` (JSON lines, through a `file` source; event times up to ten
/// years ahead taken) in `dir`, its tables in the SQLite file `dir/t.db`, its dead letters in
/// `dir/dead-letter.jsonl`. The database's URL.
pub fn run_flagship_on_lines(dir: &Path, lines: &[String]) -> String {
    let input = dir.join("in.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").expect("write");
    let overlay = dir.join("file.toml");
    std::fs::write(
        &overlay,
        format!(
            "[sources.transactions]\nreplace = true\ntype = \"file\"\npath = {:?}\n\n\
             [sources.transactions.event_time]\nfield = \"transactionDate\"\nformat = \"seed\"\n\
             max_future = \"10years\"\n",
            input.display().to_string()
        ),
    )
    .expect("write");
    let database = format!("sqlite://{}", dir.join("t.db").display());
    run(
        &[
            "run".to_string(),
            pipeline("ecommerce.toml"),
            overlay.display().to_string(),
        ],
        &[("DATABASE_URL", database.clone())],
        dir,
    );
    database
}

/// Writes `payloads` to `topic` of the test broker, keyed by their position (so that every
/// partition gets some).
pub async fn produce(topic: &str, payloads: &[String]) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .set("message.max.bytes", "10000000")
        .create()
        .expect("producer");
    for (i, payload) in payloads.iter().enumerate() {
        producer
            .send(
                FutureRecord::to(topic).key(&i.to_string()).payload(payload),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
    }
}

/// Runs the flagship with the `real-stack.toml` overlay to the end of `topic` (group `group`,
/// index `index`), its tables in `database`, its dead letters in `dead` and its checkpoints in
/// `dir`; event times up to ten years ahead are taken. Its standard error.
pub fn run_real_stack_to_the_end(
    topic: &str,
    group: &str,
    index: &str,
    database: &str,
    dead: &Path,
    dir: &Path,
) -> String {
    let mut args = vec![
        "run".to_string(),
        pipeline("ecommerce.toml"),
        pipeline("real-stack.toml"),
    ];
    for set in [
        format!("sources.transactions.topics=[\"{topic}\"]"),
        format!("sources.transactions.group_id=\"{group}\""),
        "sources.transactions.stop_at_end=true".into(),
        "sources.transactions.event_time.max_future=\"10years\"".into(),
        format!("sinks.transactions_index.index=\"{index}\""),
    ] {
        args.push("--set".into());
        args.push(set);
    }
    let envs = [
        ("KAFKA_BOOTSTRAP_SERVERS", kafka()),
        ("DATABASE_URL", database.to_string()),
        ("ELASTICSEARCH_URL", elasticsearch()),
        ("ECOMFLOW_DEAD_LETTER", dead.display().to_string()),
        (
            "ECOMFLOW_STATE_DIR",
            dir.join("state").display().to_string(),
        ),
    ];
    run(&args, &envs, dir)
}

/// `GET` a path of the test Elasticsearch, as JSON.
pub async fn es_json(path: &str) -> serde_json::Value {
    let url = format!("{}{path}", elasticsearch());
    reqwest::get(&url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// The number of documents in `index`, once refreshed.
pub async fn es_count(index: &str) -> Option<u64> {
    reqwest::Client::new()
        .post(format!("{}/{index}/_refresh", elasticsearch()))
        .send()
        .await
        .expect("refresh");
    es_json(&format!("/{index}/_count")).await["count"].as_u64()
}

/// A consumer of the test broker for `group` (it joins nothing), and the partition numbers
/// of `topic`.
fn consumer_of(group: &str, topic: &str) -> (BaseConsumer, Vec<i32>) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .set("group.id", group)
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    (consumer, partitions)
}

/// How many messages `topic` holds: the sum of its partitions' end offsets.
pub fn topic_end(topic: &str) -> i64 {
    let (consumer, partitions) = consumer_of("ecomflow-tests", topic);
    partitions
        .into_iter()
        .map(|p| {
            // A topic created a moment ago may have no leader yet: ask again for a while.
            let started = std::time::Instant::now();
            loop {
                match consumer.fetch_watermarks(topic, p, Duration::from_secs(10)) {
                    Ok((_, high)) => break high,
                    Err(e) if started.elapsed() < Duration::from_secs(30) => {
                        eprintln!("{topic}[{p}] end not known yet ({e}); asking again");
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    Err(e) => panic!("watermarks of {topic}[{p}]: {e}"),
                }
            }
        })
        .sum()
}

/// Commits offset 0 of every partition of `topic` for `group` (which must have no member):
/// a run that resumed from the committed offsets would read everything again.
pub fn rewind_group(group: &str, topic: &str) {
    let (consumer, partitions) = consumer_of(group, topic);
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Offset(0))
            .expect("offset");
    }
    consumer
        .commit(&tpl, rdkafka::consumer::CommitMode::Sync)
        .expect("offsets committed from outside the group");
}

/// Asserts that `group` committed the end of every partition of `topic`.
pub fn assert_committed_to_the_end(group: &str, topic: &str) {
    let (consumer, partitions) = consumer_of(group, topic);
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    for e in committed.elements() {
        let (_, high) = consumer
            .fetch_watermarks(topic, e.partition(), Duration::from_secs(10))
            .expect("watermarks");
        assert_eq!(
            e.offset(),
            rdkafka::Offset::Offset(high),
            "partition {} is committed to its end",
            e.partition()
        );
    }
}

/// Every row of the flagship's tables in the PostgreSQL database at `url`, as sorted text;
/// floating-point sums rounded to 6 decimals (the order of additions can change their last
/// bits when several partitions interleave).
pub async fn postgres_dump(url: &str) -> Vec<String> {
    postgres_dump_tables(url, &super::TABLES).await
}

/// Every row of `tables` (tables or views) in the PostgreSQL database at `url`, as sorted
/// text, table by table; floating-point values rounded as in [`postgres_dump`].
pub async fn postgres_dump_tables(url: &str, tables: &[&str]) -> Vec<String> {
    let pool = sqlx::PgPool::connect(url).await.expect("database");
    let mut all = Vec::new();
    for &table in tables {
        let columns: Vec<(String, String)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_name = $1 ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(&pool)
        .await
        .expect("columns");
        let row_expr = columns
            .iter()
            .map(|(name, kind)| match kind.as_str() {
                "double precision" => format!("coalesce(round({name}::numeric, 6)::text, 'NULL')"),
                _ => format!("coalesce({name}::text, 'NULL')"),
            })
            .collect::<Vec<_>>()
            .join(" || ',' || ");
        let rows: Vec<(String,)> =
            sqlx::query_as(&format!("SELECT {row_expr} AS r FROM {table} ORDER BY r"))
                .fetch_all(&pool)
                .await
                .unwrap_or_else(|e| panic!("{table}: {e}"));
        all.extend(rows.into_iter().map(|(r,)| format!("{table} {r}")));
    }
    pool.close().await;
    all
}

/// Creates `topic` with `partitions` partitions on the test broker.
pub async fn create_topic(topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .create()
        .expect("admin client");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = admin
        .create_topics(&[new], &AdminOptions::new())
        .await
        .expect("create topic");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("cannot create topic {t}: {e}"));
    }
}
