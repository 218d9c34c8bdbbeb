//! Outages of the real PostgreSQL and Elasticsearch servers (`scripts/services.sh` starts
//! them), through a TCP proxy that cuts a server off (open connections dropped, new ones
//! refused): a run whose database is not up yet when it starts, or that loses a server for 15 s
//! mid-run, waits (the sinks block, the source waits behind them) and completes with every row
//! and document once; a server that never comes back stops the run after `retry_for` with an
//! error naming it. Without the servers these tests fail.

use common::stack::{ecomflow, elasticsearch, es_count};
use ecomflow_core::testing::Proxy;
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common;

/// How long a server is away.
const OUTAGE: Duration = Duration::from_secs(15);

/// `host:port` of `url` (`scheme://[user@]host:port/...`).
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, h)| h)
        .to_string()
}

/// `url` going through `proxy` instead of straight to the server.
fn via(url: &str, proxy: &Proxy) -> String {
    url.replacen(&host_port(url), &proxy.address(), 1)
}

/// Starts `ecomflow run pipeline.toml` in `dir`, standard error into `dir/stderr.log`.
fn start(dir: &Path, pipeline: &str, envs: &[(&str, String)]) -> Child {
    std::fs::write(dir.join("pipeline.toml"), pipeline).expect("pipeline written");
    let stderr = std::fs::File::create(dir.join("stderr.log")).expect("log file");
    ecomflow(&["run", "pipeline.toml"], envs, dir)
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("ecomflow starts")
}

/// Waits for `child` to exit (at most `limit`); its status and standard error.
async fn finish(mut child: Child, dir: &Path, limit: Duration) -> (ExitStatus, String) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let log = std::fs::read_to_string(dir.join("stderr.log")).expect("log");
            return (status, log);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
            panic!("ecomflow still runs after {limit:?}:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `ready` until it is true (at most 60 s) while `child`, running in `dir`, runs.
async fn until<F, Fut>(what: &str, child: &mut Child, dir: &Path, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !ready().await {
        let log = || std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
        if let Some(status) = child.try_wait().expect("wait") {
            panic!(
                "waiting until {what}, ecomflow ended ({status}):\n{}",
                log()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "waiting until {what}:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The number of rows of `table` and of distinct `transaction_id`s in it.
async fn rows(url: &str, table: &str) -> (i64, i64) {
    let pool = sqlx::PgPool::connect(url).await.expect("database");
    let counts = sqlx::query_as(&format!(
        "SELECT COUNT(*), COUNT(DISTINCT transaction_id) FROM {table}"
    ))
    .fetch_one(&pool)
    .await
    .unwrap_or((0, 0));
    pool.close().await;
    counts
}

/// A migrations directory in `dir` with tables `(name, keyed)` of a transaction id and an
/// amount; without a key a row written twice shows, with one it is upserted.
fn migrations(dir: &Path, tables: &[(&str, bool)]) {
    let m = dir.join("migrations");
    std::fs::create_dir_all(&m).expect("migrations dir");
    let sql: String = tables
        .iter()
        .map(|(t, keyed)| {
            let key = if *keyed { " PRIMARY KEY" } else { "" };
            format!(
                "CREATE TABLE {t} (transaction_id TEXT NOT NULL{key}, total_amount DOUBLE PRECISION);\n"
            )
        })
        .collect();
    std::fs::write(m.join("1_tables.sql"), sql).expect("migration written");
}

/// A sink writing transactions to `table` of `${DATABASE_URL}`.
fn sql_sink(name: &str, table: &str, extra: &str) -> String {
    format!(
        r#"
[sinks.{name}]
type = "sql"
inputs = ["transactions"]
url = "${{DATABASE_URL}}"
table = "{table}"
migrations = "migrations"
{extra}
[sinks.{name}.columns]
transaction_id = "transactionId"
total_amount = "totalAmount"
"#
    )
}

fn generator(count: u64, rate: u64) -> String {
    format!(
        "[sources.transactions]\ntype = \"generator\"\ncount = {count}\nrate = {rate}\nseed = 8\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_not_up_at_start_is_waited_for() {
    let url = common::fresh_postgres_database("ecomflow_outage_start").await;
    let dir = tempfile::tempdir().expect("tempdir");
    migrations(dir.path(), &[("transactions", false)]);
    let proxy = Proxy::start_cut(&host_port(&url), OUTAGE).await;
    let started = Instant::now();
    let pipeline = generator(2000, 0) + &sql_sink("rows", "transactions", "");
    let child = start(
        dir.path(),
        &pipeline,
        &[("DATABASE_URL", via(&url, &proxy))],
    );
    let (status, log) = finish(child, dir.path(), Duration::from_secs(120)).await;
    let took = started.elapsed();
    eprintln!("postgres down at start for {OUTAGE:?}: the run took {took:?}");
    assert!(status.success(), "{status}:\n{log}");
    assert!(
        took >= OUTAGE,
        "the run cannot end before the database is up: {took:?}"
    );
    assert!(log.contains("retrying in"), "each retry is logged:\n{log}");
    assert_eq!(rows(&url, "transactions").await, (2000, 2000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_mid_run_loses_nothing() {
    let url = common::fresh_postgres_database("ecomflow_outage_mid_run").await;
    let dir = tempfile::tempdir().expect("tempdir");
    migrations(dir.path(), &[("transactions", true), ("copies", false)]);
    let proxy = Proxy::start(&host_port(&url)).await;
    // `rows` writes every 200 ms, upserting (a batch whose commit was in flight when the
    // connection dropped is written again); `copies` first writes after 4-8 s (its age is
    // checked every 4 s), during the outage: its connection, made at the start, is gone when
    // it first writes.
    let pipeline = generator(3000, 200)
        + &sql_sink(
            "rows",
            "transactions",
            "key = [\"transaction_id\"]\nflush_interval = \"200ms\"",
        )
        + &sql_sink(
            "copies",
            "copies",
            "batch_size = 100000\nflush_interval = \"4s\"",
        );
    let mut child = start(
        dir.path(),
        &pipeline,
        &[("DATABASE_URL", via(&url, &proxy))],
    );
    until(
        "the first rows are written",
        &mut child,
        dir.path(),
        || async { rows(&url, "transactions").await.0 > 0 },
    )
    .await;
    let cut = Instant::now();
    proxy.cut_for(OUTAGE);
    let (status, log) = finish(child, dir.path(), Duration::from_secs(120)).await;
    eprintln!(
        "postgres cut for {OUTAGE:?} mid-run: the run ended {:?} after the cut",
        cut.elapsed()
    );
    assert!(status.success(), "{status}:\n{log}");
    assert!(log.contains("retrying in"), "each retry is logged:\n{log}");
    assert_eq!(rows(&url, "transactions").await, (3000, 3000));
    assert_eq!(rows(&url, "copies").await, (3000, 3000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_that_never_comes_up_fails_after_retry_for() {
    let url = common::fresh_postgres_database("ecomflow_outage_never").await;
    let dir = tempfile::tempdir().expect("tempdir");
    migrations(dir.path(), &[("transactions", false)]);
    let proxy = Proxy::start(&host_port(&url)).await;
    proxy.cut_forever();
    let through = via(&url, &proxy);
    let with_password = through.replacen("postgres://postgres@", "postgres://postgres:hush@", 1);
    let started = Instant::now();
    let pipeline = generator(100, 0) + &sql_sink("rows", "transactions", "retry_for = \"3s\"");
    let child = start(dir.path(), &pipeline, &[("DATABASE_URL", with_password)]);
    let (status, log) = finish(child, dir.path(), Duration::from_secs(60)).await;
    let took = started.elapsed();
    eprintln!("postgres never up, retry_for = 3s: the run failed after {took:?}");
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(took >= Duration::from_secs(3), "{took:?}:\n{log}");
    assert!(
        log.contains(&format!("cannot connect to {through}")),
        "{log}"
    );
    assert!(log.contains("still failing after retrying for 3s"), "{log}");
    assert!(!log.contains("hush"), "the password leaked:\n{log}");
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_cut_mid_run_loses_nothing() {
    let index = format!("ecomflow-outage-{}", std::process::id());
    let dir = tempfile::tempdir().expect("tempdir");
    let proxy = Proxy::start(&host_port(&elasticsearch())).await;
    let pipeline = generator(3000, 200)
        + r#"
[sinks.index]
type = "elasticsearch"
inputs = ["transactions"]
url = "${ELASTICSEARCH_URL}"
index = "${INDEX}"
id_field = "transactionId"
flush_interval = "200ms"
"#;
    let envs = [
        ("ELASTICSEARCH_URL", via(&elasticsearch(), &proxy)),
        ("INDEX", index.clone()),
    ];
    let mut child = start(dir.path(), &pipeline, &envs);
    until(
        "the first documents are indexed",
        &mut child,
        dir.path(),
        || async {
            reqwest::get(format!("{}/{index}/_count", elasticsearch()))
                .await
                .is_ok_and(|r| r.status().is_success())
        },
    )
    .await;
    let cut = Instant::now();
    proxy.cut_for(OUTAGE);
    let (status, log) = finish(child, dir.path(), Duration::from_secs(120)).await;
    eprintln!(
        "elasticsearch cut for {OUTAGE:?} mid-run: the run ended {:?} after the cut",
        cut.elapsed()
    );
    assert!(status.success(), "{status}:\n{log}");
    assert!(log.contains("retrying in"), "each retry is logged:\n{log}");
    // Documents have their transaction's id: 3000 documents means each one once.
    assert_eq!(es_count(&index).await, Some(3000));
    let _ = reqwest::Client::new()
        .delete(format!("{}/{index}", elasticsearch()))
        .send()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_that_never_comes_back_fails_after_retry_for() {
    let index = format!("ecomflow-outage-never-{}", std::process::id());
    let dir = tempfile::tempdir().expect("tempdir");
    let proxy = Proxy::start(&host_port(&elasticsearch())).await;
    let pipeline = generator(3000, 200)
        + r#"
[sinks.index]
type = "elasticsearch"
inputs = ["transactions"]
url = "${ELASTICSEARCH_URL}"
index = "${INDEX}"
id_field = "transactionId"
flush_interval = "200ms"
retry_for = "3s"
"#;
    let through = via(&elasticsearch(), &proxy);
    let envs = [
        ("ELASTICSEARCH_URL", through.clone()),
        ("INDEX", index.clone()),
    ];
    let mut child = start(dir.path(), &pipeline, &envs);
    until(
        "the first documents are indexed",
        &mut child,
        dir.path(),
        || async {
            reqwest::get(format!("{}/{index}/_count", elasticsearch()))
                .await
                .is_ok_and(|r| r.status().is_success())
        },
    )
    .await;
    let cut = Instant::now();
    proxy.cut_forever();
    let (status, log) = finish(child, dir.path(), Duration::from_secs(60)).await;
    let took = cut.elapsed();
    eprintln!(
        "elasticsearch gone for good mid-run, retry_for = 3s: the run failed {took:?} after the cut"
    );
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(took >= Duration::from_secs(3), "{took:?}:\n{log}");
    assert!(
        log.contains(&format!("index `{index}` at {through}")),
        "the error names the index and the node:\n{log}"
    );
    assert!(log.contains("still failing after retrying for 3s"), "{log}");
    let _ = reqwest::Client::new()
        .delete(format!("{}/{index}", elasticsearch()))
        .send()
        .await;
}

/// `/ready` answers 200 once the sink has connected, 503 naming the sink while PostgreSQL is
/// cut off (the sink retries), and 200 again once it is back; nothing is lost meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_false_while_postgres_is_cut_and_true_after() {
    let url = common::fresh_postgres_database("ecomflow_outage_ready").await;
    let dir = tempfile::tempdir().expect("tempdir");
    migrations(dir.path(), &[("transactions", true)]);
    let proxy = Proxy::start(&host_port(&url)).await;
    let pipeline = generator(0, 200)
        + &sql_sink(
            "rows",
            "transactions",
            "key = [\"transaction_id\"]\nflush_interval = \"200ms\"",
        )
        + "[http]\nport = 0\n";
    let mut child = start(
        dir.path(),
        &pipeline,
        &[("DATABASE_URL", via(&url, &proxy))],
    );
    let served = common::http::served_url(&dir.path().join("stderr.log")).await;
    let ready = format!("{served}ready");
    let answer = |url: String| async move { common::http::get(&url).await };
    until("ready", &mut child, dir.path(), || async {
        answer(ready.clone()).await.0 == 200
    })
    .await;
    proxy.cut_for(OUTAGE);
    let cut = Instant::now();
    let reason = std::sync::Mutex::new(String::new());
    until(
        "not ready during the outage",
        &mut child,
        dir.path(),
        || async {
            let (code, body) = answer(ready.clone()).await;
            *reason.lock().expect("reason") = body;
            code == 503
        },
    )
    .await;
    // The reason the 503 itself gave.
    let why = reason.lock().expect("reason").clone();
    assert!(
        why.contains("sinks.rows: retrying"),
        "the reason names the sink: {why}"
    );
    assert!(cut.elapsed() < OUTAGE, "noticed during the outage");
    until("ready again", &mut child, dir.path(), || async {
        answer(ready.clone()).await.0 == 200
    })
    .await;
    assert!(
        cut.elapsed() >= OUTAGE,
        "ready only once the database is back"
    );
    common::processes::signal(&child, "-TERM");
    let (status, log) = finish(child, dir.path(), Duration::from_secs(60)).await;
    assert!(status.success(), "{status}:\n{log}");
    let (rows, distinct) = rows(&url, "transactions").await;
    assert!(
        rows > 0 && rows == distinct,
        "{rows} rows, {distinct} transactions"
    );
}
