//! Exactly once into PostgreSQL, on the real stack (`scripts/services.sh`): the flagship with
//! the `real-stack.toml` overlay keeps its checkpoints in PostgreSQL (`checkpoint.url`), so
//! the rows of its `sql` sinks commit in the checkpoints' transactions with the Kafka
//! positions and the states. A table written with plain INSERTs (no key, so a row written
//! twice stays twice) is added beside the flagship's. The pipeline is killed with SIGKILL 5
//! times at random moments, then run to the end of the topic: the plain table holds every
//! good transaction exactly once, and the flagship's five tables equal those of one run that
//! was never interrupted. Without the servers this test fails.

#![cfg(unix)]

use common::stack::{elasticsearch, kafka, pipeline, postgres_dump, run, topic_end};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common;

use common::processes::spawn;

/// Good transactions in the topic: enough that the fifth run still has some left to read
/// when it is killed (with 50,000, a faster pipeline once read the rest before its kill).
const GOOD: i64 = 100000;
/// SIGKILLs before the run that reads to the end, each once the run has committed something.
const KILLS: usize = 5;

/// The flagship with the plain table, reading `topic` as `group` with checkpoints in
/// `database` (every 500 ms), to the end of the topic.
fn flagship_args(
    overlay: &Path,
    topic: &str,
    group: &str,
    index: &str,
    database: &str,
) -> Vec<String> {
    let mut args = vec![
        "run".to_string(),
        pipeline("ecommerce.toml"),
        pipeline("real-stack.toml"),
        overlay.display().to_string(),
    ];
    for set in [
        format!("sources.transactions.topics=[\"{topic}\"]"),
        format!("sources.transactions.group_id=\"{group}\""),
        // The same member id in every run (static membership): a run started after a kill
        // takes the dead one's partitions over at once instead of after its session timeout.
        "sources.transactions.options={ \"session.timeout.ms\" = 6000 }".to_string(),
        format!("sources.transactions.instance_id=\"{group}-1\""),
        "sources.transactions.stop_at_end=true".to_string(),
        format!("sinks.transactions_index.index=\"{index}\""),
        format!("checkpoint.url=\"{database}\""),
        "checkpoint.interval=\"500ms\"".to_string(),
    ] {
        args.push("--set".into());
        args.push(set);
    }
    args
}

fn flagship_env(dir: &Path, name: &str, database: &str) -> Vec<(&'static str, String)> {
    vec![
        ("KAFKA_BOOTSTRAP_SERVERS", kafka()),
        ("DATABASE_URL", database.to_string()),
        ("ELASTICSEARCH_URL", elasticsearch()),
        (
            "ECOMFLOW_DEAD_LETTER",
            dir.join(format!("{name}.dead.jsonl")).display().to_string(),
        ),
    ]
}

/// A pseudo-random number in `0..n`, from `seed` (changed each call).
fn random(seed: &mut u64, n: u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*seed >> 33) % n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_insert_table_holds_every_transaction_once_after_five_sigkills() {
    let id = std::process::id();
    let topic = format!("ecomflow_once_{id}");
    let group = format!("ecomflow_once_{id}");
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let _keep = common::KeepOnFailure::new(dir, "exactly_once");
    let overlay = dir.join("plain-table.toml");
    std::fs::write(&overlay, common::plain_table::OVERLAY).expect("overlay");
    let database = common::fresh_postgres_database(&format!("ecomflow_once_{id}")).await;
    let reference = common::fresh_postgres_database(&format!("ecomflow_once_ref_{id}")).await;
    common::plain_table::create(&database).await;
    common::plain_table::create(&reference).await;

    // The whole topic first (3 partitions, the test broker's default).
    run(
        &[
            "run".to_string(),
            pipeline("generate.toml"),
            "--set".into(),
            format!("sinks.kafka.topic=\"{topic}\""),
            "--set".into(),
            format!("sources.transactions.count={GOOD}"),
        ],
        &[
            ("KAFKA_BOOTSTRAP_SERVERS", kafka()),
            (
                "ECOMFLOW_DEAD_LETTER",
                dir.join("generate.dead.jsonl").display().to_string(),
            ),
        ],
        dir,
    );
    let end = topic_end(&topic);
    assert!(end > GOOD, "the topic holds the good and the broken ones");

    // Five crashes at random moments, each run resuming from the last commit.
    let args = flagship_args(&overlay, &topic, &group, &format!("once_{id}"), &database);
    let env = flagship_env(dir, "crashed", &database);
    let mut seed = u64::from(id);
    let mut schedule = Vec::new();
    let mut committed = 0;
    for kill in 0..KILLS {
        let log = dir.join(format!("run{kill}.log"));
        let mut child = spawn(&args, &env, dir, &log);
        // A kill that matters: once this run has committed something, part-way through the
        // next checkpoint's work (its rows are written, or prepared and not committed).
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                panic!(
                    "run {kill} ended ({status}) before its SIGKILL:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            let (rows, _) = common::plain_table::counts(&database).await;
            if rows > committed {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "run {kill} commits nothing"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let first_commit = started.elapsed();
        tokio::time::sleep(Duration::from_millis(random(&mut seed, 800))).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("exits");
        let (rows, distinct) = common::plain_table::counts(&database).await;
        schedule.push(format!(
            "run {kill}: first commit after {first_commit:?}, killed after {:?}: {rows} rows \
             ({distinct} distinct)",
            started.elapsed()
        ));
        assert_eq!(rows, distinct, "a row written twice: {schedule:?}");
        committed = rows;
    }
    eprintln!("{}", schedule.join("\n"));
    let log = dir.join("last.log");
    let mut last = spawn(&args, &env, dir, &log);
    let status = last.wait().expect("exits");
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // The reference: the same topic, another group, never interrupted.
    let reference_group = format!("{group}_reference");
    run(
        &flagship_args(
            &overlay,
            &topic,
            &reference_group,
            &format!("once_ref_{id}"),
            &reference,
        ),
        &flagship_env(dir, "reference", &reference),
        dir,
    );

    assert_eq!(
        common::plain_table::counts(&reference).await,
        (GOOD, GOOD),
        "the reference"
    );
    assert_eq!(
        common::plain_table::counts(&database).await,
        (GOOD, GOOD),
        "every good transaction once in the plain table after {schedule:?}"
    );
    let expected = postgres_dump(&reference).await;
    let crashed = postgres_dump(&database).await;
    common::assert_same_rows(&expected, &crashed, "after the crashes");

    let http = reqwest::Client::new();
    for index in [format!("once_{id}"), format!("once_ref_{id}")] {
        let _ = http
            .delete(format!("{}/{index}", elasticsearch()))
            .send()
            .await;
    }
}
