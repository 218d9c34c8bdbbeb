//! Keyed state on disk through SIGKILLs: two aggregates whose groups mostly live in the
//! state store (`[state] memory = "1MiB"`: one group per transaction that never closes, and
//! one per customer and day that expires), checkpoints every 200 ms, the process killed
//! with SIGKILL three times mid-stream, each time once it has completed a checkpoint of its
//! own (another is under way much of the time), then run to the end: every table equals an
//! uninterrupted run's.
//!
//! `ECOMFLOW_TEST_STATE_GROUPS` sets the number of transactions (default 30,000, which a
//! debug build runs in about 8 s) and `ECOMFLOW_TEST_STATE_BIN` the `ecomflow` binary (the
//! debug build by default): `docs/performance.md` gives the run with 1,000,000 on a release
//! build.

#![cfg(unix)]

use crate::common;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn groups() -> u64 {
    std::env::var("ECOMFLOW_TEST_STATE_GROUPS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(30_000)
}

const MIGRATION: &str = "CREATE TABLE per_transaction (
    transaction_id TEXT PRIMARY KEY, total REAL NOT NULL, items INTEGER NOT NULL);
CREATE TABLE per_customer_day (
    customer TEXT NOT NULL, day TEXT NOT NULL, total REAL NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (customer, day));
";

/// The pipeline, writing to `out.db` and keeping its checkpoints in `state`, both in the
/// working directory.
fn pipeline(count: u64) -> String {
    format!(
        r#"
[sources.g]
type = "generator"
count = {count}
seed = 7
event_time = {{ field = "transactionDate", max_out_of_orderness = "5m" }}

[transforms.per_transaction]
type = "aggregate"
inputs = ["g"]
keys = {{ transaction_id = "transactionId" }}
aggregations = {{ total = "sum(totalAmount)", items = "count()" }}

[transforms.per_customer_day]
type = "aggregate"
inputs = ["g"]
keys = {{ customer = "customerId", day = "day(event_time)" }}
aggregations = {{ total = "sum(totalAmount)", n = "count()" }}
allowed_lateness = "20d"

[sinks.per_transaction_table]
type = "sql"
inputs = ["per_transaction"]
url = "sqlite://out.db"
migrations = "migrations"
table = "per_transaction"
key = ["transaction_id"]
columns = {{ transaction_id = "transaction_id", total = "total", items = "items" }}

[sinks.per_customer_day_table]
type = "sql"
inputs = ["per_customer_day"]
url = "sqlite://out.db"
migrations = "migrations"
table = "per_customer_day"
key = ["customer", "day"]
columns = {{ customer = "customer", day = "day", total = "total", n = "n" }}

[dead_letter]
type = "file"
path = "dead-letter.jsonl"

[state]
memory = "1MiB"

[checkpoint]
dir = "state"
interval = "200ms"
"#
    )
}

/// A directory holding the pipeline and its migration.
fn prepared(count: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("migrations")).expect("migrations");
    std::fs::write(dir.path().join("migrations/1_tables.sql"), MIGRATION).expect("migration");
    std::fs::write(dir.path().join("pipeline.toml"), pipeline(count)).expect("pipeline");
    dir
}

fn run(dir: &Path) -> Command {
    let bin = std::env::var("ECOMFLOW_TEST_STATE_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_ecomflow").to_string());
    let mut cmd = Command::new(bin);
    cmd.args([
        "run",
        "pipeline.toml",
        "--quiet",
        "--set",
        "http.enabled=false",
    ])
    .current_dir(dir)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    cmd
}

/// The id of the last checkpoint completed in `dir` (0: none yet).
fn checkpoint_id(dir: &Path) -> u64 {
    std::fs::read(dir.join("state/checkpoint.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|c| c["id"].as_u64())
        .unwrap_or(0)
}

async fn tables(dir: &Path) -> Vec<String> {
    let tables = ["per_transaction", "per_customer_day"];
    common::sqlite_file_dump(&dir.join("out.db"), Some(&tables)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_state_killed_mid_checkpoints_ends_with_the_uninterrupted_tables() {
    let count = groups();
    let reference = prepared(count);
    let out = run(reference.path()).output().expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = tables(reference.path()).await;
    let transactions = expected
        .iter()
        .filter(|r| r.starts_with("per_transaction "))
        .count() as u64;
    assert_eq!(transactions, count, "one group per transaction");

    let killed = prepared(count);
    let started = Instant::now();
    let mut kills = 0;
    for pause in [300, 600, 450] {
        let before = checkpoint_id(killed.path());
        let child = run(killed.path()).spawn().expect("starts");
        // Killed once this run has completed a checkpoint of its own, a little later (with
        // checkpoints every 200 ms, one is under way much of the time).
        let waited = Instant::now();
        while checkpoint_id(killed.path()) <= before && waited.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            checkpoint_id(killed.path()) > before,
            "run {} completed a checkpoint within 60 s",
            kills + 1
        );
        std::thread::sleep(Duration::from_millis(pause));
        let signal = Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(signal.success());
        let out = child.wait_with_output().expect("exits");
        assert_eq!(
            out.status.signal(),
            Some(9),
            "killed mid-stream, not finished before: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        kills += 1;
    }
    let keyed = killed.path().join("state/keyed");
    assert!(keyed.is_dir(), "the groups are in the state store");
    let out = run(killed.path()).output().expect("runs");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let got = tables(killed.path()).await;
    common::assert_same_rows(&expected, &got, "after three SIGKILLs");
    let letters =
        std::fs::read_to_string(killed.path().join("dead-letter.jsonl")).unwrap_or_default();
    assert!(letters.is_empty(), "no dead letters: {letters}");
    eprintln!(
        "{count} transactions, {kills} kills, {:.1} s in all",
        started.elapsed().as_secs_f64()
    );
}
