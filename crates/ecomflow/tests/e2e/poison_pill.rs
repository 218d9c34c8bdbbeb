//! A poison pill: payloads that are arrays nested far beyond any parser's stack (20,000,
//! 100,000 and 1,000,000 levels, of arrays and of arrays of objects), between good
//! transactions. Each is a dead letter with its reason and the run goes on to the end: from
//! a file (no services), and from Kafka (the real broker `scripts/services.sh` starts), where
//! the group's offsets move past them and every good transaction around them is written.
//! Such a message once aborted the process with a stack overflow on every restart.

use common::stack::{
    assert_committed_to_the_end, produce, run, run_flagship_on_lines, run_real_stack_to_the_end,
};
use std::path::Path;

use crate::common;

fn nest(open: &str, close: &str, depth: usize) -> String {
    open.repeat(depth) + &close.repeat(depth)
}

/// The poison: arrays nested 20,000 and 100,000 deep, and an array of objects nested 100,000
/// deep (each under a broker's default 1 MB message size).
fn poison() -> Vec<String> {
    vec![
        nest("[", "]", 20_000),
        nest("[", "]", 100_000),
        nest("[{\"a\":", "}]", 100_000),
    ]
}

/// `n` good transactions (generated with `seed`), one JSON line each.
fn good_lines(dir: &Path, n: u64, seed: u64) -> Vec<String> {
    let out = dir.join(format!("good-{seed}.jsonl"));
    run(
        &[
            "run".to_string(),
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/generate-to-file.toml")
                .display()
                .to_string(),
            "--set".into(),
            format!("sources.transactions.count={n}"),
            "--set".into(),
            format!("sources.transactions.seed={seed}"),
            "--set".into(),
            "sources.transactions.bad_ratio=0".into(),
        ],
        &[
            ("OUT", out.display().to_string()),
            ("DEAD", dir.join("good-dead.jsonl").display().to_string()),
        ],
        dir,
    );
    let text = std::fs::read_to_string(&out).expect("generated transactions");
    text.lines().map(str::to_string).collect()
}

/// The dead letters of `path` that say a payload is an array, and the count of all of them.
fn array_letters(path: &Path) -> (usize, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let letters: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a dead letter is JSON"))
        .collect();
    let arrays = letters
        .iter()
        .filter(|l| {
            l["component"] == "sources.transactions"
                && l["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("expected a JSON object, found an array"))
        })
        .count();
    (arrays, letters.len())
}

async fn count_rows(url: &str, table: &str) -> i64 {
    let pool = sqlx::SqlitePool::connect(url).await.expect("database");
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&pool)
        .await
        .expect("count");
    pool.close().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deeply_nested_array_in_a_file_is_a_dead_letter_and_the_run_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = good_lines(dir.path(), 600, 1234);
    let mut lines = good[..500].to_vec();
    lines.extend(poison());
    lines.push(nest("[", "]", 1_000_000));
    lines.extend_from_slice(&good[500..]);
    let database = run_flagship_on_lines(dir.path(), &lines);
    let (arrays, all) = array_letters(&dir.path().join("dead-letter.jsonl"));
    assert_eq!(
        (arrays, all),
        (4, 4),
        "each nested array is one dead letter"
    );
    assert_eq!(count_rows(&database, "transactions").await, 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deeply_nested_array_on_kafka_is_a_dead_letter_and_the_group_moves_past_it() {
    let id = std::process::id();
    let topic = format!("ecomflow_poison_{id}");
    let group = format!("ecomflow_poison_{id}");
    let dir = tempfile::tempdir().expect("tempdir");
    let _keep = common::KeepOnFailure::new(dir.path(), "poison_pill_kafka");
    // 500 good transactions, the poison, then 100 more good ones (another seed, other ids).
    let good = good_lines(dir.path(), 600, 4321);
    produce(&topic, &good[..500]).await;
    produce(&topic, &poison()).await;
    produce(&topic, &good[500..]).await;

    let database = format!("sqlite://{}", dir.path().join("t.db").display());
    let dead = dir.path().join("dead-letter.jsonl");
    run_real_stack_to_the_end(
        &topic,
        &group,
        &format!("poison_{id}"),
        &database,
        &dead,
        dir.path(),
    );
    let (arrays, all) = array_letters(&dead);
    assert_eq!(
        (arrays, all),
        (3, 3),
        "each nested array is one dead letter"
    );
    assert_eq!(count_rows(&database, "transactions").await, 600);
    assert_committed_to_the_end(&group, &topic);
}
