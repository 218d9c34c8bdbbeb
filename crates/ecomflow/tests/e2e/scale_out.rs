//! Several processes in one consumer group, on the real stack (`scripts/services.sh`): while
//! `generate.toml` writes a topic of 6 partitions, three processes of the flagship with the
//! `real-stack.toml` overlay share it, with their checkpoints in PostgreSQL
//! (`checkpoint.url`), so a partition's position and state move with it. One of them is
//! killed with SIGKILL mid-stream and another, with a new member id, is started in its place;
//! the group moves the dead one's partitions once its session times out. Once the topic is
//! written and committed to its end, the processes are stopped, and a bounded run in the
//! same group closes what is still open at the end of the input. Every table (all five, rows
//! compared exactly, sums to 6 decimals) must equal a one-process run that was never
//! interrupted, and no record may be dead-lettered as late that the one-process run did not
//! dead-letter. Without the servers this test fails.

#![cfg(unix)]

use common::stack::{create_topic, elasticsearch, kafka, pipeline, postgres_dump, run, topic_end};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common;

use common::processes::{signal, spawn, spawn_generator};

/// Good transactions the generator writes.
const GOOD: u64 = 30000;
/// Its pace (transactions per second): it writes for 10 s, while the processes share it.
const RATE: u64 = 3000;
/// Partitions of the topic.
const PARTITIONS: i32 = 6;

/// The flagship on the real stack as member `member` of `group`, checkpoints in `database`.
fn member_args(
    topic: &str,
    group: &str,
    member: &str,
    index: &str,
    database: &str,
    to_the_end: bool,
) -> Vec<String> {
    let mut args = vec![
        "run".to_string(),
        pipeline("ecommerce.toml"),
        pipeline("real-stack.toml"),
    ];
    for set in [
        format!("sources.transactions.topics=[\"{topic}\"]"),
        format!("sources.transactions.group_id=\"{group}\""),
        // A dead member's partitions move after 6 s, not after the default 45 s.
        "sources.transactions.options={ \"session.timeout.ms\" = 6000 }".to_string(),
        format!("sources.transactions.instance_id=\"{member}\""),
        format!("sources.transactions.stop_at_end={to_the_end}"),
        format!("sinks.transactions_index.index=\"{index}\""),
        format!("checkpoint.url=\"{database}\""),
        "checkpoint.interval=\"1s\"".to_string(),
    ] {
        args.push("--set".into());
        args.push(set);
    }
    args
}

fn member_env(dir: &Path, member: &str, database: &str) -> Vec<(&'static str, String)> {
    vec![
        ("KAFKA_BOOTSTRAP_SERVERS", kafka()),
        ("DATABASE_URL", database.to_string()),
        ("ELASTICSEARCH_URL", elasticsearch()),
        ("ECOMFLOW_DEAD_LETTER", dead_letters(dir, member)),
    ]
}

fn dead_letters(dir: &Path, member: &str) -> String {
    dir.join(format!("{member}.dead.jsonl"))
        .display()
        .to_string()
}

/// The sum of the committed positions of every partition in the checkpoint store, and how
/// many distinct owners (processes) have committed.
async fn committed(database: &str) -> (i64, i64) {
    let pool = sqlx::PgPool::connect(database).await.expect("database");
    let row: Result<(Option<i64>, i64), _> = sqlx::query_as(
        "SELECT sum((position::text)::bigint)::bigint, count(DISTINCT owner)
         FROM ecomflow_partitions WHERE position IS NOT NULL",
    )
    .fetch_one(&pool)
    .await;
    pool.close().await;
    match row {
        Ok((sum, owners)) => (sum.unwrap_or(0), owners),
        // The store's tables are created by the first process.
        Err(_) => (0, 0),
    }
}

/// The dead letters in `paths` that say a record came late.
fn late_letters(paths: &[String]) -> Vec<String> {
    let mut late: Vec<String> = paths
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|text| text.lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| l.contains("late: "))
        .collect();
    late.sort();
    late
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_with_a_crash_give_the_tables_of_one() {
    let id = std::process::id();
    let topic = format!("ecomflow_scale_{id}");
    let group = format!("ecomflow_scale_{id}");
    let index = format!("scale_{id}");
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let _keep = common::KeepOnFailure::new(dir, "scale_out");
    let database = common::fresh_postgres_database(&format!("ecomflow_scale_{id}")).await;
    let reference = common::fresh_postgres_database(&format!("ecomflow_scale_ref_{id}")).await;
    create_topic(&topic, PARTITIONS).await;

    // 1. The generator writes the topic at its pace while the members share it.
    let (mut generator, generator_log) = spawn_generator(&topic, GOOD, RATE, dir);

    // 2. Three members.
    let mut members = Vec::new();
    for member in ["a", "b", "c"] {
        let args = member_args(&topic, &group, member, &index, &database, false);
        let log = dir.join(format!("{member}.log"));
        members.push((
            member,
            spawn(&args, &member_env(dir, member, &database), dir, &log),
        ));
    }

    // 3. Once all three have committed, b crashes; d starts in its place.
    let started = Instant::now();
    while committed(&database).await.1 < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the three members did not all commit"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        generator.try_wait().expect("wait").is_none(),
        "the topic is still being written when b crashes"
    );
    let (_, mut b) = members.remove(1);
    signal(&b, "-KILL");
    assert!(!b.wait().expect("exits").success(), "killed");
    let args = member_args(&topic, &group, "d", &index, &database, false);
    let log = dir.join("d.log");
    members.push((
        "d",
        spawn(&args, &member_env(dir, "d", &database), dir, &log),
    ));

    // 4. The generator finishes; once the store holds the whole topic, the members stop.
    let status = generator.wait().expect("generator exits");
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&generator_log).unwrap_or_default()
    );
    let end = topic_end(&topic);
    let started = Instant::now();
    while committed(&database).await.0 < end {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the members did not commit the whole topic: {:?} of {end}",
            committed(&database).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (member, child) in &mut members {
        signal(child, "-TERM");
        let status = child.wait().expect("exits");
        let log = std::fs::read_to_string(dir.join(format!("{member}.log"))).unwrap_or_default();
        assert!(status.success(), "member {member}:\n{log}");
    }

    // 5. A bounded run in the same group ends the job: it resumes every partition at its
    //    end, and at the end of its input closes what is still open (the last minutes'
    //    windows), as the reference does at its end.
    run(
        &member_args(&topic, &group, "e", &index, &database, true),
        &member_env(dir, "e", &database),
        dir,
    );

    // 6. The reference: one process, another group, never interrupted.
    run(
        &member_args(
            &topic,
            &format!("{group}_ref"),
            "ref",
            &format!("{index}_ref"),
            &reference,
            true,
        ),
        &member_env(dir, "reference", &reference),
        dir,
    );

    // 7. The same tables; no late dead letter the reference does not have.
    let expected = postgres_dump(&reference).await;
    let shared = postgres_dump(&database).await;
    let transactions = expected
        .iter()
        .filter(|r| r.starts_with("transactions "))
        .count();
    assert_eq!(
        transactions as u64, GOOD,
        "the reference holds every good one"
    );
    common::assert_same_rows(&expected, &shared, "with several processes");
    let reference_late = late_letters(&[dead_letters(dir, "reference")]);
    let members_late = late_letters(&["a", "b", "c", "d"].map(|m| dead_letters(dir, m)));
    let extra: Vec<&String> = members_late
        .iter()
        .filter(|l| !reference_late.contains(l))
        .collect();
    assert!(
        extra.is_empty(),
        "late only with several processes: {extra:?}"
    );

    let http = reqwest::Client::new();
    for index in [index.clone(), format!("{index}_ref")] {
        let _ = http
            .delete(format!("{}/{index}", elasticsearch()))
            .send()
            .await;
    }
}
