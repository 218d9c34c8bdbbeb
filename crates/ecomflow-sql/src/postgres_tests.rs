//! Tests of the `sql` sink against a real PostgreSQL server: `scripts/services.sh start`
//! runs one, and `ECOMFLOW_TEST_POSTGRES_URL` names it (default: the one the script starts).
//! Without a server these tests fail; they never skip.

use crate::test_support::{build_sink, dead_letters, record, sink_context};
use ecomflow_core::Incoming;
use ecomflow_core::testing::Proxy;
use ecomflow_core::{Payload, Sink};
use serde_json::json;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::path::Path;
use std::time::{Duration, Instant};

/// The server the tests use.
pub fn server_url() -> String {
    std::env::var("ECOMFLOW_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/postgres".into())
}

/// A new, empty database on the test server: its URL and a pool on it.
pub async fn fresh_database() -> (String, PgPool) {
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&server_url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no PostgreSQL at {} ({e}): run scripts/services.sh start",
                server_url()
            )
        });
    let name = format!("ecomflow_test_{}", uuid_like());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create database");
    admin.close().await;
    let base = server_url();
    let url = match base.rfind('/') {
        Some(at) => format!("{}/{name}", &base[..at]),
        None => panic!("server URL without a database: {base}"),
    };
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .expect("connect to the new database");
    (url, pool)
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}_{}", std::process::id())
}

fn migrations_dir() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .to_str()
        .expect("utf8")
        .to_string()
}

fn sink(url: &str, table: &str, extra: &str) -> Box<dyn Sink> {
    let options = format!("url = {url:?}\ntable = {table:?}\n{extra}");
    build_sink("sql", &options).expect("builds")
}

#[tokio::test]
async fn flagship_tables_take_seed_transactions_with_typed_columns() {
    let (url, pool) = fresh_database().await;
    let options = format!(
        r#"migrations = {:?}
        key = ["transaction_id"]
        [columns]
        transaction_id = "transactionId"
        product_price = "productPrice"
        product_quantity = "productQuantity"
        transaction_date = "transactionDate"
        total_amount = "totalAmount"
        "#,
        migrations_dir()
    );
    let mut s = sink(&url, "transactions", &options);
    let (cx, mut dead) = sink_context();
    s.write(
        Incoming::from(vec![record(json!({
            "transactionId": "t-1",
            "productPrice": 19.99,
            "productQuantity": 3,
            "transactionDate": "2025-07-19T14:34:56.123456+0200",
            "totalAmount": 59.97,
        }))]),
        &cx,
    )
    .await
    .expect("writes");
    s.finish(&cx).await.expect("finishes");
    assert!(dead_letters(&mut dead).is_empty());
    let row = sqlx::query(
        "SELECT transaction_id, product_price, product_quantity,
                to_char(transaction_date, 'YYYY-MM-DD HH24:MI:SS.US') AS at, total_amount
         FROM transactions",
    )
    .fetch_one(&pool)
    .await
    .expect("one row");
    assert_eq!(row.get::<String, _>("transaction_id"), "t-1");
    assert_eq!(row.get::<f64, _>("product_price"), 19.99);
    assert_eq!(row.get::<i32, _>("product_quantity"), 3);
    assert_eq!(
        row.get::<String, _>("at"),
        "2025-07-19 12:34:56.123456",
        "the offset is applied: stored in UTC"
    );
    let (migrated,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .expect("migrations table");
    assert_eq!(migrated, 1);
}

#[tokio::test]
async fn aggregates_are_upserted_as_absolute_values_on_date_keys() {
    let (url, pool) = fresh_database().await;
    let options = format!(
        "migrations = {:?}\nkey = [\"transaction_date\", \"category\"]",
        migrations_dir()
    );
    let mut s = sink(&url, "sales_per_category", &options);
    let (cx, mut dead) = sink_context();
    let row = |day: &str, cat: &str, total: f64| {
        record(json!({"transaction_date": day, "category": cat, "total_sales": total}))
    };
    s.write(
        Incoming::from(vec![
            row("2025-07-19", "office", 10.0),
            row("2025-07-19", "home", 1.0),
        ]),
        &cx,
    )
    .await
    .expect("writes");
    s.finish(&cx).await.expect("finishes");
    let mut s = sink(&url, "sales_per_category", &options);
    s.write(
        Incoming::from(vec![
            row("2025-07-19", "office", 25.0),
            row("2025-07-20", "office", 2.0),
            row("2025-07-20", "office", 3.0),
        ]),
        &cx,
    )
    .await
    .expect("writes");
    s.finish(&cx).await.expect("finishes");
    assert!(dead_letters(&mut dead).is_empty());
    let got: Vec<(String, String, f64)> = sqlx::query_as(
        "SELECT transaction_date::text, category, total_sales FROM sales_per_category ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .expect("rows");
    assert_eq!(
        got,
        [
            ("2025-07-19".into(), "home".into(), 1.0),
            ("2025-07-19".into(), "office".into(), 25.0),
            ("2025-07-20".into(), "office".into(), 3.0),
        ]
    );
}

#[tokio::test]
async fn rows_postgres_rejects_are_dead_lettered_and_the_rest_written() {
    let (url, pool) = fresh_database().await;
    sqlx::raw_sql(
        "CREATE TABLE sales_per_day (transaction_date DATE PRIMARY KEY,
         total_sales DOUBLE PRECISION NOT NULL CHECK (total_sales >= 0), n INTEGER, note TEXT)",
    )
    .execute(&pool)
    .await
    .expect("table");
    let mut s = sink(&url, "sales_per_day", "key = [\"transaction_date\"]");
    let (cx, mut dead) = sink_context();
    let negative = record(json!({"transaction_date": "2025-01-02", "total_sales": -1.0, "n": 1}));
    let not_a_date = record(json!({"transaction_date": "2025-13-45", "total_sales": 1.0, "n": 1}));
    let not_a_number =
        record(json!({"transaction_date": "2025-01-04", "total_sales": 1.0, "n": "ten"}));
    // PostgreSQL's text cannot hold a NUL character.
    let nul =
        record(json!({"transaction_date": "2025-01-03", "total_sales": 1.0, "note": "a\u{0}b"}));
    s.write(
        Incoming::from(vec![
            // The first record names the columns written (`columns` is not set).
            record(
                json!({"transaction_date": "2025-01-01", "total_sales": 1.5, "n": 1, "note": "ok"}),
            ),
            negative.clone(),
            not_a_date.clone(),
            not_a_number.clone(),
            nul.clone(),
            record(json!({"transaction_date": "2025-01-05", "total_sales": 5.0, "n": 2})),
        ]),
        &cx,
    )
    .await
    .expect("rejected rows do not stop the run");
    s.finish(&cx).await.expect("finishes");
    let got: Vec<(String, f64)> =
        sqlx::query_as("SELECT transaction_date::text, total_sales FROM sales_per_day ORDER BY 1")
            .fetch_all(&pool)
            .await
            .expect("rows");
    assert_eq!(
        got,
        [("2025-01-01".into(), 1.5), ("2025-01-05".into(), 5.0)]
    );
    let mut letters = dead_letters(&mut dead);
    // A value that cannot be converted is refused before the database sees it: order by day.
    letters.sort_by_key(|l| match &l.payload {
        Payload::Record(r) => r.to_json()["transaction_date"].to_string(),
        Payload::Raw(_) => String::new(),
    });
    let payloads: Vec<&Payload> = letters.iter().map(|l| &l.payload).collect();
    assert_eq!(
        payloads,
        [
            &Payload::Record(negative),
            &Payload::Record(nul),
            &Payload::Record(not_a_number),
            &Payload::Record(not_a_date)
        ]
    );
    assert!(
        letters[0].reason.contains("check constraint"),
        "{}",
        letters[0].reason
    );
    assert!(letters[1].reason.contains("0x00"), "{}", letters[1].reason);
    assert!(letters[2].reason.contains("ten"), "{}", letters[2].reason);
    assert!(
        letters[3].reason.contains("2025-13-45"),
        "{}",
        letters[3].reason
    );
}

#[tokio::test]
async fn a_missing_database_is_a_clear_error_without_the_password() {
    let base = server_url();
    let at = base.rfind('/').expect("database in URL");
    let url = format!("{}/no_such_database_here", &base[..at]).replacen(
        "postgres://postgres@",
        "postgres://postgres:secret@",
        1,
    );
    let mut s = sink(&url, "t", "");
    let (cx, _dead) = sink_context();
    let started = Instant::now();
    let e = s
        .write(Incoming::from(vec![record(json!({"a": 1}))]), &cx)
        .await
        .and(s.finish(&cx).await)
        .expect_err("no such database");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a missing database is not retried for retry_for (1m): {:?}",
        started.elapsed()
    );
    let text = e.to_string();
    assert!(text.contains("no_such_database_here"), "{text}");
    assert!(!text.contains("secret"), "the password leaked: {text}");
}

#[tokio::test]
async fn a_lost_connection_is_retried_until_the_server_is_back() {
    let (url, pool) = fresh_database().await;
    sqlx::raw_sql("CREATE TABLE events (id TEXT PRIMARY KEY, n INTEGER)")
        .execute(&pool)
        .await
        .expect("table");
    let server = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("host:port")
        .to_string();
    for (retry_for, must_succeed) in [("30s", true), ("0s", false)] {
        let proxy = Proxy::start(&server).await;
        let via_proxy = url.replacen(&server, &proxy.address(), 1);
        let mut s = sink(
            &via_proxy,
            "events",
            &format!("key = [\"id\"]\nbatch_size = 2\nretry_for = \"{retry_for}\""),
        );
        let (cx, _dead) = sink_context();
        let row = |id: &str| record(json!({"id": format!("{retry_for}-{id}"), "n": 1}));
        s.write(Incoming::from(vec![row("a"), row("b")]), &cx)
            .await
            .expect("first batch");
        // The server goes away for three seconds (longer than a connection attempt waits).
        proxy.cut_for(Duration::from_secs(3));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = s.write(Incoming::from(vec![row("c"), row("d")]), &cx).await;
        assert_eq!(
            second.is_ok(),
            must_succeed,
            "retry_for = {retry_for}: {second:?}"
        );
        if must_succeed {
            s.finish(&cx).await.expect("finishes");
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events WHERE id LIKE '30s-%'")
                .fetch_one(&pool)
                .await
                .expect("count");
            assert_eq!(n, 4, "nothing lost across the outage");
        }
    }
}

#[tokio::test]
async fn refused_credentials_are_a_clear_error_without_the_password() {
    // `scripts/services.sh` makes the role `ecomflow_password`, which must give its password.
    let base = server_url();
    let host = base
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("host:port");
    let url = format!("postgres://ecomflow_password:not-the-password@{host}/postgres");
    let mut s = sink(&url, "t", "");
    let (cx, _dead) = sink_context();
    let started = Instant::now();
    let e = s
        .write(Incoming::from(vec![record(json!({"a": 1}))]), &cx)
        .await
        .and(s.finish(&cx).await)
        .expect_err("refused");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refused credentials are not retried for retry_for (1m): {:?}",
        started.elapsed()
    );
    let text = e.to_string();
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(text.contains("ecomflow_password"), "{text}");
    assert!(
        !text.contains("not-the-password"),
        "the password leaked: {text}"
    );
}

#[tokio::test]
async fn a_database_not_up_at_start_is_waited_for_and_its_migrations_applied() {
    let (url, pool) = fresh_database().await;
    let server = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("host:port")
        .to_string();
    let proxy = Proxy::start_cut(&server, Duration::from_secs(3)).await;
    let via_proxy = url.replacen(&server, &proxy.address(), 1);
    let options = format!(
        "migrations = {:?}\nkey = [\"transaction_date\"]",
        migrations_dir()
    );
    let mut s = sink(&via_proxy, "sales_per_day", &options);
    let (cx, mut dead) = sink_context();
    let started = Instant::now();
    s.write(
        Incoming::from(vec![record(
            json!({"transaction_date": "2025-07-19", "total_sales": 2.5}),
        )]),
        &cx,
    )
    .await
    .expect("buffered");
    s.finish(&cx).await.expect("written once the server is up");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(dead_letters(&mut dead).is_empty());
    let got: Vec<(String, f64)> =
        sqlx::query_as("SELECT transaction_date::text, total_sales FROM sales_per_day")
            .fetch_all(&pool)
            .await
            .expect("rows");
    assert_eq!(got, [("2025-07-19".into(), 2.5)]);
}
