//! A Kafka source on the real broker (`scripts/services.sh`) shows what it reads: `/ready`
//! says 503 while no broker answers (no partitions), 200 once the group has assigned them, the scrape has each of the
//! topic's partitions as owned with its consumer lag (librdkafka's statistics), and the lag
//! falls to 0 once the topic is read; the bytes it read are counted. Without the broker this
//! test fails.

#![cfg(unix)]

use common::http::{get, parse_metrics, served_url};
use common::processes::{signal, spawn, spawn_generator};
use common::stack::{create_topic, kafka};
use std::time::{Duration, Instant};

use crate::common;

const PARTITIONS: i32 = 3;
const GOOD: u64 = 3000;

/// Reads `topic` in group `topic` from `servers`, serving on a free port: the process and
/// where it serves.
async fn start(
    dir: &std::path::Path,
    name: &str,
    servers: &str,
    topic: &str,
) -> (std::process::Child, String) {
    let pipeline = format!(
        r#"
[sources.transactions]
type = "kafka"
bootstrap_servers = "{servers}"
topics = ["{topic}"]
group_id = "{topic}"

[sinks.out]
type = "blackhole"
inputs = ["transactions"]

[dead_letter]
type = "blackhole"

[http]
port = 0
"#
    );
    let file = format!("{name}.toml");
    std::fs::write(dir.join(&file), pipeline).expect("pipeline");
    let log = dir.join(format!("{name}.log"));
    let child = spawn(&["run".into(), file], &[], dir, &log);
    let url = served_url(&log).await;
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_once_assigned_and_each_partition_shows_its_lag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let topic = format!("ecomflow-metrics-{}", std::process::id());
    create_topic(&topic, PARTITIONS).await;
    let (mut generator, _) = spawn_generator(&topic, GOOD, 0, dir.path());
    assert!(
        generator.wait().expect("generator").success(),
        "the topic is written"
    );

    // A member whose broker never answers gets no partitions: never ready, and it says why.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let nowhere = closed.local_addr().expect("bound").to_string();
    drop(closed);
    let (mut lonely, url) = start(dir.path(), "lonely", &nowhere, &topic).await;
    for _ in 0..10 {
        let (code, body) = get(&format!("{url}ready")).await;
        assert_eq!(code, 503, "no assignment, not ready: {body}");
        assert!(
            body.contains("sources.transactions: waiting for its partitions"),
            "{body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = lonely.kill();
    let _ = lonely.wait();

    // With the broker, ready once the group has assigned the partitions.
    let (mut run, url) = start(dir.path(), "member", &kafka(), &topic).await;
    let started = Instant::now();
    loop {
        let (code, body) = get(&format!("{url}ready")).await;
        if code == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never ready: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every partition owned, and its lag down to 0 once everything is read.
    let started = Instant::now();
    let samples = loop {
        let (_, text) = get(&format!("{url}metrics")).await;
        let samples = parse_metrics(&text);
        let of = |name: &str| -> Vec<(String, f64)> {
            samples
                .iter()
                .filter(|s| s.name == name)
                .map(|s| (s.labels["partition"].clone(), s.value))
                .collect()
        };
        let owned = of("ecomflow_partition_owned");
        let lag = of("ecomflow_kafka_consumer_lag_messages");
        let read = samples
            .iter()
            .find(|s| {
                s.name == "ecomflow_records_received_total"
                    && s.labels["component"] == "sources.transactions"
            })
            .map_or(0.0, |s| s.value);
        if owned.len() == PARTITIONS as usize
            && owned.iter().all(|(_, v)| *v == 1.0)
            && lag.len() == PARTITIONS as usize
            && lag.iter().all(|(_, v)| *v == 0.0)
            && read >= GOOD as f64
        {
            for n in 0..PARTITIONS {
                let key = format!("{topic}/{n}");
                assert!(owned.iter().any(|(p, _)| *p == key), "{key} in {owned:?}");
            }
            break samples;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "owned {owned:?}, lag {lag:?}, read {read}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let bytes = samples
        .iter()
        .find(|s| s.name == "ecomflow_source_read_bytes_total")
        .map_or(0.0, |s| s.value);
    assert!(
        bytes > GOOD as f64 * 300.0,
        "about 390 bytes a transaction: {bytes}"
    );

    signal(&run, "-TERM");
    assert!(run.wait().expect("exits").success());
}
