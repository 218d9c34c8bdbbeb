//! Fencing a zombie, on the real stack (`scripts/services.sh`): member A of the flagship
//! (with the `real-stack.toml` overlay, checkpoints in PostgreSQL) is paused with SIGSTOP
//! past its session timeout, while the topic is being written; the group gives its
//! partitions to member B, which claims them once the server has ended A's transaction. A
//! is frozen in the middle of a commit and resumed with SIGCONT, with rows prepared for
//! partitions it no longer owns: its commit must leave them alone. A table written with plain INSERTs (no key) beside the flagship's holds every good
//! transaction exactly once in the end, and the five tables equal those of one process that
//! was never interrupted. A is frozen anywhere in its commit's transaction, and, in a second
//! test, in a `COPY`, where the server waits for A's data (no timeout ends a statement under
//! way: a commit that held its partitions' rows there kept B from claiming them for good).
//! Without the servers this test fails.

#![cfg(unix)]

use common::stack::{elasticsearch, kafka, pipeline, postgres_dump, run, topic_end};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::common;

use common::processes::{KillOnDrop, is_stopped, signal, spawn, spawn_alone, spawn_generator};

/// Good transactions the generator writes.
const GOOD: i64 = 50000;
/// Its pace: it writes for 25 s, through the pause (A's session timeout, the end of its
/// transaction by the server, B's claims).
const RATE: i64 = 2000;

fn member_args(
    overlay: &Path,
    topic: &str,
    group: &str,
    index: &str,
    database: &str,
    to_the_end: bool,
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
        // A member that stops heartbeating is out of the group after 6 s.
        "sources.transactions.options={ \"session.timeout.ms\" = 6000 }".to_string(),
        format!("sources.transactions.stop_at_end={to_the_end}"),
        format!("sinks.transactions_index.index=\"{index}\""),
        format!("checkpoint.url=\"{database}\""),
        "checkpoint.interval=\"500ms\"".to_string(),
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
        (
            "ECOMFLOW_DEAD_LETTER",
            dir.join(format!("{member}.dead.jsonl"))
                .display()
                .to_string(),
        ),
        ("RUST_LOG", "info".to_string()),
        // Dynamic membership: the members stopped at the end leave the group, so the bounded
        // run after them is given every partition (static members would keep theirs until
        // their sessions ended, and the bounded run would end without reading them).
        ("ECOMFLOW_INSTANCE_ID", String::new()),
    ]
}

/// The owners of the partitions committed so far (`host:pid`), one per partition, and the
/// sum of their positions.
async fn owners(database: &str) -> (Vec<String>, i64) {
    let pool = sqlx::PgPool::connect(database).await.expect("database");
    let rows: Vec<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT owner, position::text FROM ecomflow_partitions ORDER BY partition")
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
    pool.close().await;
    let sum = rows
        .iter()
        .filter_map(|(_, p)| p.as_deref()?.parse::<i64>().ok())
        .sum();
    (rows.into_iter().filter_map(|(o, _)| o).collect(), sum)
}

/// Where in a commit the zombie is frozen.
#[derive(Debug, Clone, Copy)]
enum Freeze {
    /// Anywhere in its transaction: in a statement or between two.
    InTheTransaction,
    /// In a `COPY ... FROM STDIN`, where the server waits for the member's data (and a
    /// statement under way is never ended by `idle_in_transaction_session_timeout`).
    InACopy,
}

/// Sends SIGSTOP to `member` while it is inside a commit's transaction on `database`, at the
/// moment `at` says.
async fn freeze_in_a_commit(member: &Child, database: &str, at: Freeze) {
    let pool = sqlx::PgPool::connect(database).await.expect("database");
    let started = Instant::now();
    let condition = match at {
        Freeze::InTheTransaction => "state IN ('active', 'idle in transaction')",
        Freeze::InACopy => "state = 'active' AND query ILIKE 'COPY %'",
    };
    loop {
        let (committing,): (i64,) = sqlx::query_as(&format!(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND xact_start IS NOT NULL AND {condition}
               AND query NOT ILIKE '%pg_stat_activity%'"
        ))
        .fetch_one(&pool)
        .await
        .expect("activity");
        if committing > 0 {
            signal(member, "-STOP");
            let since = Instant::now();
            while !is_stopped(member.id()) {
                assert!(since.elapsed() < Duration::from_secs(5), "A does not stop");
                std::thread::sleep(Duration::from_millis(1));
            }
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "A never seen in a commit ({at:?})"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    pool.close().await;
}

fn owned_by(owners: &[String], pid: u32) -> usize {
    owners
        .iter()
        .filter(|o| o.ends_with(&format!(":{pid}")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_paused_in_a_copy_past_its_session_cannot_commit_for_partitions_it_lost() {
    zombie(Freeze::InACopy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_paused_past_its_session_cannot_commit_for_partitions_it_lost() {
    zombie(Freeze::InTheTransaction).await;
}

/// The two tests run one after the other: each alone is two members, a generator and a
/// reference run on two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn zombie(at: Freeze) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let id = format!("{}_{}", std::process::id(), at as u8);
    let topic = format!("ecomflow_zombie_{id}");
    let group = format!("ecomflow_zombie_{id}");
    let index = format!("zombie_{id}");
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let _keep = common::KeepOnFailure::new(
        dir,
        match at {
            Freeze::InTheTransaction => "zombie",
            Freeze::InACopy => "zombie_in_a_copy",
        },
    );
    let overlay = dir.join("plain-table.toml");
    std::fs::write(&overlay, common::plain_table::OVERLAY).expect("overlay");
    let database = common::fresh_postgres_database(&format!("ecomflow_zombie_{id}")).await;
    let reference = common::fresh_postgres_database(&format!("ecomflow_zombie_ref_{id}")).await;
    common::plain_table::create(&database).await;
    common::plain_table::create(&reference).await;

    let (mut generator, generator_log) = spawn_generator(&topic, GOOD as u64, RATE as u64, dir);
    let mut left_running = KillOnDrop(vec![generator.id()]);

    // 1. A alone, until it owns and has committed every partition.
    let args = member_args(&overlay, &topic, &group, &index, &database, false);
    let a_log = dir.join("a.log");
    let mut a = spawn_alone(&args, &member_env(dir, "a", &database), dir, &a_log);
    left_running.0.push(a.id());
    let started = Instant::now();
    loop {
        let (owners, sum) = owners(&database).await;
        if owners.len() == 3 && owned_by(&owners, a.id()) == 3 && sum > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "A never owned the topic"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 2. A freezes in the middle of a commit (its transaction holds its partitions' rows); B
    //    joins and, once A's session is over and the server has ended A's transaction
    //    (idle_in_transaction_session_timeout), claims every partition.
    freeze_in_a_commit(&a, &database, at).await;
    let b_log = dir.join("b.log");
    let mut b = spawn(&args, &member_env(dir, "b", &database), dir, &b_log);
    left_running.0.push(b.id());
    let started = Instant::now();
    let mut taken_at = None;
    loop {
        assert!(
            is_stopped(a.id()),
            "A was woken up before the test sent SIGCONT"
        );
        let (owners, sum) = owners(&database).await;
        if owned_by(&owners, b.id()) == 3 {
            // B claimed them all; let it commit past where A stood.
            let at = *taken_at.get_or_insert(sum);
            if sum > at {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "B never took A's partitions over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        generator.try_wait().expect("wait").is_none(),
        "the topic is still being written when A comes back"
    );

    // 3. A comes back: what it prepared for the lost partitions must not be committed.
    signal(&a, "-CONT");

    // 4. The topic written and committed to its end, both stop.
    let status = generator.wait().expect("generator exits");
    let reaped = generator.id();
    left_running.0.retain(|pid| *pid != reaped);
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&generator_log).unwrap_or_default()
    );
    let end = topic_end(&topic);
    let started = Instant::now();
    while owners(&database).await.1 < end {
        if started.elapsed() > Duration::from_secs(90) {
            let tail = |log: &Path| {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(40)..].join("\n")
            };
            panic!(
                "the members did not commit the whole topic ({end}): {:?}\nA (pid {}):\n{}\nB (pid {}):\n{}",
                owners(&database).await,
                a.id(),
                tail(&a_log),
                b.id(),
                tail(&b_log)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Both are about to be stopped and reaped: nothing is left to kill.
    left_running.0.clear();
    for (name, child, log) in [("a", &mut a, &a_log), ("b", &mut b, &b_log)] {
        signal(child, "-TERM");
        let status = child.wait().expect("exits");
        let text = std::fs::read_to_string(log).unwrap_or_default();
        assert!(status.success(), "member {name}:\n{text}");
    }

    // 5. A bounded run in the same group closes what is still open at the end of the input
    //    (the last minutes' windows), as the reference does at its end.
    run(
        &member_args(&overlay, &topic, &group, &index, &database, true),
        &member_env(dir, "closer", &database),
        dir,
    );

    // 6. The reference, one process never interrupted; the same tables, each row once.
    run(
        &member_args(
            &overlay,
            &topic,
            &format!("{group}_ref"),
            &format!("{index}_ref"),
            &reference,
            true,
        ),
        &member_env(dir, "reference", &reference),
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
        "every good transaction once, whatever the zombie did"
    );
    let expected = postgres_dump(&reference).await;
    let fenced = postgres_dump(&database).await;
    common::assert_same_rows(&expected, &fenced, "after the zombie");

    // The refusal happened (a log line says so), so the tables above prove it harmless.
    let a_text = std::fs::read_to_string(&a_log).unwrap_or_default();
    assert!(
        a_text.contains("belongs to another process now"),
        "A's commit after SIGCONT was refused for the partitions B claimed:\n{a_text}"
    );

    let http = reqwest::Client::new();
    for index in [index.clone(), format!("{index}_ref")] {
        let _ = http
            .delete(format!("{}/{index}", elasticsearch()))
            .send()
            .await;
    }
}
