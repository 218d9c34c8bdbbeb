//! A finite number that overflows (`"totalAmount": 1.7e308`, which `round(2)` turns into
//! infinity) through the flagship on SQLite with checkpoints: the record is dead-lettered with
//! the reason, the run is stopped with SIGTERM and started again from its checkpoint, and the
//! tables equal an uninterrupted run's and hold no infinity and no NaN.

#![cfg(unix)]

use sqlx::sqlite::SqlitePoolOptions;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;
use crate::common::repo;

/// Good transactions in the seed's format, in event-time order (so batch boundaries never
/// make one late), as JSON lines.
fn transactions(dir: &Path) -> Vec<String> {
    let out = dir.join("generated.jsonl");
    let status = Command::new(env!("CARGO_BIN_EXE_ecomflow"))
        .arg("run")
        .arg(repo().join("crates/ecomflow/tests/fixtures/generate-to-file.toml"))
        .args(["--set", "sources.transactions.count=3000"])
        .args(["--set", "sources.transactions.jitter_ms=0"])
        .args(["--set", "sources.transactions.bad_ratio=0"])
        .args(["--set", "sources.transactions.event_step_ms=60000"])
        .env("OUT", &out)
        .env("DEAD", dir.join("generated-dead.jsonl"))
        .stderr(Stdio::null())
        .status()
        .expect("runs");
    assert!(status.success());
    std::fs::read_to_string(&out)
        .expect("generated")
        .lines()
        .map(str::to_string)
        .collect()
}

/// The record of the issue: a successful payment in USD whose amount is finite but whose
/// rounding to cents overflows.
fn huge_copy_of(line: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(line).expect("json");
    v["transactionId"] = "huge-amount".into();
    v["paymentStatus"] = "success".into();
    v["currency"] = "USD".into();
    // One item at that price, so the total passes the flagship's checks (price times
    // quantity) and reaches the conversion to USD.
    v["productQuantity"] = 1.into();
    let text = serde_json::to_string(&v).expect("json");
    let (price, amount) = (v["productPrice"].to_string(), v["totalAmount"].to_string());
    text.replacen(
        &format!("\"productPrice\":{price}"),
        "\"productPrice\":1.7e308",
        1,
    )
    .replacen(
        &format!("\"totalAmount\":{amount}"),
        "\"totalAmount\":1.7e308",
        1,
    )
}

fn flagship(dir: &Path, db: &str, path: &str, checkpoints: bool) -> Command {
    let overlay = dir.join(format!("{db}.overlay.toml"));
    let mut text = format!(
        "[sources.transactions]\nreplace = true\ntype = \"file\"\npath = {path:?}\n\n\
         [sources.transactions.event_time]\nfield = \"transactionDate\"\nformat = \"seed\"\n\
         max_out_of_orderness = \"5m\"\n"
    );
    if checkpoints {
        text.push_str(&format!(
            "\n[checkpoint]\ndir = {:?}\ninterval = \"100ms\"\n",
            dir.join("state").display().to_string()
        ));
    }
    std::fs::write(&overlay, text).expect("overlay");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecomflow"));
    cmd.arg("run")
        .arg(repo().join("pipelines/ecommerce.toml"))
        .arg(&overlay)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join(db).display()),
        )
        .env("ECOMFLOW_DEAD_LETTER", dir.join(format!("{db}.dead.jsonl")))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

async fn pool(path: &Path) -> sqlx::SqlitePool {
    SqlitePoolOptions::new()
        .connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("database")
}

/// Rows of the flagship's tables whose amounts are NULL, infinite or NaN.
async fn non_finite_rows(pool: &sqlx::SqlitePool) -> i64 {
    let mut n = 0;
    for (table, column) in [
        ("transactions", "total_amount_usd"),
        ("transactions", "total_amount"),
        ("sales_per_category", "total_sales"),
        ("sales_per_day", "total_sales"),
        ("sales_per_month", "total_sales"),
    ] {
        let (count,): (i64,) = sqlx::query_as(&format!(
            "SELECT count(*) FROM {table} WHERE {column} IS NULL OR {column} != {column} \
             OR abs({column}) > 1.7976931348623157e308"
        ))
        .fetch_one(pool)
        .await
        .expect("count");
        n += count;
    }
    n
}

fn stderr_of(child: std::process::Child) -> (std::process::ExitStatus, String) {
    let out = child.wait_with_output().expect("waits");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflowing_amount_is_dead_lettered_and_a_restart_from_the_checkpoint_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lines = transactions(dir.path());
    let half = lines.len() / 2;
    // Twice in the same day: the second would also overflow the day's sum on its own.
    let huge = huge_copy_of(&lines[half - 10]);
    lines.insert(half - 5, huge.clone());
    lines.insert(half - 4, huge.replace("huge-amount", "huge-amount-2"));
    let all = dir.path().join("all.jsonl");
    std::fs::write(&all, lines.join("\n") + "\n").expect("write");

    // The reference: one uninterrupted run over the file.
    let reference = flagship(
        dir.path(),
        "reference.db",
        all.to_str().expect("utf8"),
        false,
    )
    .spawn()
    .expect("starts");
    let (status, stderr) = stderr_of(reference);
    assert!(status.success(), "{stderr}");

    // The same lines on stdin with checkpoints: the first half, SIGTERM once a checkpoint
    // holds the overflowing record, then a second run with the rest.
    let mut first = flagship(dir.path(), "restarted.db", "-", true)
        .stdin(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut stdin = first.stdin.take().expect("stdin");
    stdin
        .write_all((lines[..half].join("\n") + "\n").as_bytes())
        .expect("write");
    stdin.flush().expect("flush");
    let checkpoint = dir.path().join("state/checkpoint.json");
    let started = Instant::now();
    let mut taken_after_the_record = false;
    while started.elapsed() < Duration::from_secs(30) && !taken_after_the_record {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let dead =
            std::fs::read_to_string(dir.path().join("restarted.db.dead.jsonl")).unwrap_or_default();
        taken_after_the_record = dead.contains("huge-amount-2") && checkpoint.exists();
    }
    assert!(taken_after_the_record, "no checkpoint after the record");
    // Two more checkpoints, so one holds the state after the record for sure.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = first.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let (status, stderr) = stderr_of(first);
    drop(stdin);
    assert!(status.success(), "the stopped run failed:\n{stderr}");

    let mut second = flagship(dir.path(), "restarted.db", "-", true)
        .stdin(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut stdin = second.stdin.take().expect("stdin");
    stdin
        .write_all((lines[half..].join("\n") + "\n").as_bytes())
        .expect("write");
    drop(stdin);
    let (status, stderr) = stderr_of(second);
    assert!(status.success(), "the restart failed:\n{stderr}");
    assert!(stderr.contains("resuming from a checkpoint"), "{stderr}");

    let reference = pool(&dir.path().join("reference.db")).await;
    let restarted = pool(&dir.path().join("restarted.db")).await;
    assert_eq!(non_finite_rows(&reference).await, 0);
    assert_eq!(non_finite_rows(&restarted).await, 0);
    let want = common::sqlite_dump(&reference).await;
    assert!(want.len() > 3000, "the reference holds {} rows", want.len());
    assert_eq!(common::sqlite_dump(&restarted).await, want);

    // Both overflowing records are dead letters with the reason; nothing else was refused.
    let dead = std::fs::read_to_string(dir.path().join("reference.db.dead.jsonl")).expect("dead");
    let letters: Vec<serde_json::Value> = dead
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(letters.len(), 2, "{dead}");
    for l in &letters {
        assert_eq!(l["component"], "transforms.usd", "{l}");
        let reason = l["reason"].as_str().expect("reason");
        assert!(reason.contains("not a finite number"), "{reason}");
    }
    let state = std::fs::read_to_string(&checkpoint).expect("checkpoint");
    assert!(
        !state.contains("null"),
        "the checkpoint keeps a null: {state}"
    );
}

#[test]
fn a_checkpoint_that_cannot_be_restored_names_the_component_and_the_way_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = transactions(dir.path());
    let path = "-";
    let mut first = flagship(dir.path(), "db", path, true)
        .stdin(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut stdin = first.stdin.take().expect("stdin");
    stdin
        .write_all((lines[..200].join("\n") + "\n").as_bytes())
        .expect("write");
    stdin.flush().expect("flush");
    let checkpoint = dir.path().join("state/checkpoint.json");
    let started = Instant::now();
    while !checkpoint.exists() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let killed = Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let (status, stderr) = stderr_of(first);
    drop(stdin);
    assert!(status.success(), "{stderr}");
    // A state this version cannot read (as an older version's `null` sum was).
    let mut kept: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&checkpoint).expect("read")).expect("json");
    let day = &mut kept["transforms"]["transforms.sales_per_day"];
    assert!(day.is_object(), "{kept}");
    *day = serde_json::json!({"groups": [[["2025-01-01"], [{"Sum": {"float": null}}]]]});
    std::fs::write(&checkpoint, kept.to_string()).expect("write");

    let (status, stderr) = stderr_of(
        flagship(dir.path(), "db", path, true)
            .stdin(Stdio::null())
            .spawn()
            .expect("starts"),
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("transforms.sales_per_day: cannot restore the state that checkpoint")
            && stderr.contains("--reset-state transforms.sales_per_day"),
        "{stderr}"
    );

    let (status, stderr) = stderr_of(
        flagship(dir.path(), "db", path, true)
            .stdin(Stdio::null())
            .args(["--reset-state", "transforms.sales_per_day"])
            .spawn()
            .expect("starts"),
    );
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("starting afresh"), "{stderr}");

    let (status, stderr) = stderr_of(
        flagship(dir.path(), "db", path, true)
            .stdin(Stdio::null())
            .args(["--reset-state", "transforms.nothing"])
            .spawn()
            .expect("starts"),
    );
    assert_eq!(status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("--reset-state transforms.nothing: no such component"),
        "{stderr}"
    );
}
