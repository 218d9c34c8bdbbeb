//! Stops and crashes on the real stack (Kafka, PostgreSQL, Elasticsearch from
//! `scripts/services.sh`): while `generate.toml` is still writing the topic, the flagship with
//! the `real-stack.toml` overlay is stopped with SIGTERM, started again, killed with SIGKILL (a
//! crash), and started again at once to read the topic to its end (between the first two runs
//! the group's offsets are rewound, so only the checkpoint says where to resume). Its
//! PostgreSQL tables must then equal those of a run that was never interrupted (nothing lost,
//! no aggregate counted twice), Elasticsearch must hold every good transaction once, and the
//! group's offsets must be committed to the end. Without the servers this test fails.

#![cfg(unix)]

use common::stack::{
    assert_committed_to_the_end, elasticsearch, es_count, kafka, pipeline, postgres_dump,
    rewind_group, run, topic_end,
};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::common;

use common::processes::{signal, spawn, spawn_generator};

/// Good transactions the generator writes.
const GOOD: u64 = 30000;
/// Its pace (transactions per second): it writes for 15 s, while the flagship is stopped and
/// crashed.
const RATE: u64 = 2000;

/// The flagship on the real stack, reading `topic` as `group` into `index`.
fn flagship_args(topic: &str, group: &str, index: &str, to_the_end: bool) -> Vec<String> {
    let mut args = vec![
        "run".to_string(),
        pipeline("ecommerce.toml"),
        pipeline("real-stack.toml"),
    ];
    for set in [
        format!("sources.transactions.topics=[\"{topic}\"]"),
        format!("sources.transactions.group_id=\"{group}\""),
        // A crashed member leaves the group after this long, not after the default 45 s.
        "sources.transactions.options={ \"session.timeout.ms\" = 6000 }".to_string(),
        format!("sources.transactions.stop_at_end={to_the_end}"),
        format!("sinks.transactions_index.index=\"{index}\""),
    ] {
        args.push("--set".into());
        args.push(set);
    }
    args
}

/// The environment of a flagship writing to `database`, with its state in `dir`/`name`.
fn flagship_env(dir: &Path, name: &str, database: &str) -> Vec<(&'static str, String)> {
    vec![
        ("KAFKA_BOOTSTRAP_SERVERS", kafka()),
        // Dynamic membership: a stopped run leaves the group, so its offsets can be rewound
        // from outside it before the next.
        ("ECOMFLOW_INSTANCE_ID", String::new()),
        ("DATABASE_URL", database.to_string()),
        ("ELASTICSEARCH_URL", elasticsearch()),
        (
            "ECOMFLOW_DEAD_LETTER",
            dir.join(format!("{name}.dead.jsonl")).display().to_string(),
        ),
        (
            "ECOMFLOW_STATE_DIR",
            dir.join(format!("{name}.state")).display().to_string(),
        ),
        ("ECOMFLOW_CHECKPOINT_INTERVAL", "200ms".to_string()),
    ]
}

/// How many messages of the topic the completed checkpoint in `state` holds (the sum of the
/// Kafka source's next offsets), if there is one.
fn checkpointed_messages(state: &Path) -> Option<i64> {
    let bytes = std::fs::read(state.join("checkpoint.json")).ok()?;
    let checkpoint: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let partitions = checkpoint["partitions"]["sources.transactions"].as_object()?;
    Some(
        partitions
            .values()
            .filter_map(|p| p["position"].as_i64())
            .sum(),
    )
}

/// Waits until a checkpoint in `state` holds more than `than` messages, while `child` runs.
fn wait_for_checkpoint_beyond(state: &Path, than: i64, child: &mut Child, log: &Path) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(n) = checkpointed_messages(state).filter(|n| *n > than) {
            return n;
        }
        if let Some(status) = child.try_wait().expect("wait") {
            panic!(
                "the flagship ended ({status}) before a checkpoint:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "no checkpoint beyond {than}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn still_writing(generator: &mut Child) -> bool {
    generator.try_wait().expect("wait").is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_and_crashed_mid_stream_then_restarted_ends_with_the_uninterrupted_tables() {
    let id = std::process::id();
    let topic = format!("ecomflow_restart_{id}");
    let (group, index) = (
        format!("ecomflow_restart_{id}"),
        format!("transactions_restart_{id}"),
    );
    let (reference_group, reference_index) = (format!("{group}_reference"), format!("{index}_ref"));
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let _keep = common::KeepOnFailure::new(dir, "real_stack_restart");
    let database = common::fresh_postgres_database(&format!("ecomflow_restart_{id}")).await;
    let reference_database =
        common::fresh_postgres_database(&format!("ecomflow_restart_ref_{id}")).await;

    // 1. The generator writes the topic at its pace, all through the first two runs.
    let (mut generator, generator_log) = spawn_generator(&topic, GOOD, RATE, dir);

    let deadline = Instant::now() + Duration::from_secs(30);
    while topic_end(&topic) == 0 {
        assert!(Instant::now() < deadline, "the generator wrote nothing");
        std::thread::sleep(Duration::from_millis(50));
    }

    // 2. The flagship follows the topic; SIGTERM once a checkpoint holds part of it.
    let args = flagship_args(&topic, &group, &index, false);
    let env = flagship_env(dir, "restarted", &database);
    let state = dir.join("restarted.state");
    let log = dir.join("first.log");
    let mut first = spawn(&args, &env, dir, &log);
    let at_first = wait_for_checkpoint_beyond(&state, 0, &mut first, &log);
    assert!(
        still_writing(&mut generator),
        "the topic is still being written when the flagship is stopped"
    );
    signal(&first, "-TERM");
    let status = first.wait().expect("exits");
    let first_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "SIGTERM drains and exits 0:\n{first_log}");
    let stopped_at = checkpointed_messages(&state).expect("a last checkpoint");
    assert!(
        stopped_at >= at_first,
        "the last checkpoint follows the others"
    );

    // The group's offsets rewound: the next run must resume from its checkpoint, not from
    // them, or it counts everything again.
    rewind_group(&group, &topic);

    // 3. Started again, it resumes; SIGKILL (a crash) once a later checkpoint holds more.
    let log = dir.join("second.log");
    let mut second = spawn(&args, &env, dir, &log);
    wait_for_checkpoint_beyond(&state, stopped_at, &mut second, &log);
    assert!(
        still_writing(&mut generator),
        "the topic is still being written when the flagship crashes"
    );
    // Let it read on past that checkpoint, so the crash loses work in flight.
    std::thread::sleep(Duration::from_millis(300));
    signal(&second, "-KILL");
    let status = second.wait().expect("exits");
    assert!(!status.success(), "killed");

    // 4. Started again at once (the crashed member is still in the group until its session
    //    times out), it reads on; once the generator has finished and a checkpoint holds the
    //    whole topic, SIGTERM.
    let log = dir.join("third.log");
    let mut third = spawn(&args, &env, dir, &log);
    let status = generator.wait().expect("generator exits");
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&generator_log).unwrap_or_default()
    );
    let end = topic_end(&topic);
    wait_for_checkpoint_beyond(&state, end - 1, &mut third, &log);
    signal(&third, "-TERM");
    let status = third.wait().expect("exits");
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // 5. The reference: the same topic read once, never interrupted.
    run(
        &flagship_args(&topic, &reference_group, &reference_index, true),
        &flagship_env(dir, "reference", &reference_database),
        dir,
    );

    // 6. The same tables, every good transaction once in them and in Elasticsearch, and the
    //    group's offsets at the end of the topic.
    let reference = postgres_dump(&reference_database).await;
    let restarted = postgres_dump(&database).await;
    let transactions = reference
        .iter()
        .filter(|r| r.starts_with("transactions "))
        .count();
    assert_eq!(
        transactions as u64, GOOD,
        "the reference holds every good one"
    );
    common::assert_same_rows(&reference, &restarted, "after the crashes");
    assert_eq!(es_count(&index).await, Some(GOOD));
    assert_eq!(es_count(&reference_index).await, Some(GOOD));
    assert_committed_to_the_end(&group, &topic);

    let http = reqwest::Client::new();
    for index in [&index, &reference_index] {
        let _ = http
            .delete(format!("{}/{index}", elasticsearch()))
            .send()
            .await;
    }
}
