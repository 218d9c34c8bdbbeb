//! Tests of the `sql` sink against real SQLite files: built from TOML through the registry,
//! then checked by reading the database back.

use crate::db::Db;
use crate::dialect::Dialect;
use crate::migrations::{self, Applied};
use crate::test_support::{
    build_error, build_sink, count, dead_letters, exec, record, rows, sink_context, sqlite_url,
};
use ecomflow_core::Incoming;
use ecomflow_core::{Kind, Payload, Plugin, Sink};
use serde_json::json;
use sqlx::Connection;
use std::path::Path;
use std::time::Duration;

/// Builds the `sql` sink on the SQLite file `db` with `extra` options.
fn sink(db: &Path, table: &str, extra: &str) -> Box<dyn Sink> {
    let options = format!("url = {:?}\ntable = {table:?}\n{extra}", sqlite_url(db));
    build_sink("sql", &options).expect("builds")
}

const SALES: &str = "CREATE TABLE sales_per_category (
    transaction_date TEXT NOT NULL,
    category TEXT NOT NULL,
    total_sales REAL NOT NULL,
    PRIMARY KEY (transaction_date, category))";

/// The rows of `table` once a transaction running beside the sink has ended: the count
/// after it has stayed the same for 200 ms (or after 5 s).
async fn settled_count(db: &Path, table: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM {table}");
    let mut last = count(db, &sql).await;
    let mut steady = 0;
    for _ in 0..250 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = count(db, &sql).await;
        steady = if now == last { steady + 1 } else { 0 };
        last = now;
        if steady == 10 && now > 0 {
            break;
        }
    }
    last
}

fn sale(day: &str, category: &str, total: f64) -> ecomflow_core::Record {
    record(json!({"transaction_date": day, "category": category, "total_sales": total}))
}

#[test]
fn registered_with_documented_options_and_defaults() {
    let p = Plugin::find(Kind::Sink, "sql").expect("the sql sink is registered");
    assert!(!p.summary.is_empty());
    let schema = serde_json::to_value((p.schema)()).expect("schema is JSON");
    let properties = schema["properties"].as_object().expect("options");
    for (option, s) in properties {
        assert!(
            s["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{option} has no documentation: {s}"
        );
    }
    assert_eq!(schema["required"], json!(["url", "table"]));
    assert_eq!(properties["batch_size"]["default"], 1000);
    assert_eq!(properties["flush_interval"]["default"], "1s");
    assert_eq!(properties["max_connections"]["default"], 4);
    assert_eq!(properties["key"]["default"], json!([]));
    assert_eq!(properties["columns"]["default"], json!({}));
    assert_eq!(properties["migrations"]["default"], json!(null));
}

#[tokio::test]
async fn inserts_every_row_with_its_fields_as_columns() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("out.db");
    exec(
        &db,
        "CREATE TABLE transactions (transaction_id TEXT, product_quantity INTEGER,
         total_amount REAL, paid INTEGER, tags TEXT, note TEXT)",
    )
    .await;
    let mut s = sink(&db, "transactions", "");
    let (cx, mut dead) = sink_context();
    for batch in 0..3 {
        let records = (0..4)
            .map(|i| {
                let n = batch * 4 + i;
                record(json!({
                    "transaction_id": format!("t{n}"),
                    "product_quantity": n,
                    "total_amount": n as f64 + 0.5,
                    "paid": n % 2 == 0,
                    "tags": ["a", n],
                    "note": null,
                }))
            })
            .collect::<Vec<_>>();
        s.write(Incoming::from(records), &cx).await.expect("writes");
    }
    s.finish(&cx).await.expect("finishes");
    assert!(dead_letters(&mut dead).is_empty());
    let got = rows(
        &db,
        "SELECT transaction_id, product_quantity, total_amount, paid, tags, note
         FROM transactions ORDER BY rowid",
    )
    .await;
    assert_eq!(got.len(), 12);
    assert_eq!(got[0], json!(["t0", 0, 0.5, 1, "[\"a\",0]", null]));
    assert_eq!(got[11], json!(["t11", 11, 11.5, 0, "[\"a\",11]", null]));
}

#[tokio::test]
async fn upsert_replaces_the_stored_values_of_a_key() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("out.db");
    exec(&db, SALES).await;
    let key = r#"key = ["transaction_date", "category"]"#;
    let (cx, _dead) = sink_context();
    let mut first = sink(&db, "sales_per_category", key);
    first
        .write(
            Incoming::from(vec![
                sale("2025-07-19", "home", 10.0),
                sale("2025-07-19", "office", 5.0),
            ]),
            &cx,
        )
        .await
        .expect("writes");
    first.finish(&cx).await.expect("finishes");
    // A replay or a later total for the same key: the new absolute value replaces the old.
    let mut second = sink(&db, "sales_per_category", key);
    second
        .write(
            Incoming::from(vec![
                sale("2025-07-19", "home", 25.0),
                sale("2025-07-20", "home", 1.0),
            ]),
            &cx,
        )
        .await
        .expect("writes");
    second.finish(&cx).await.expect("finishes");
    let got = rows(
        &db,
        "SELECT transaction_date, category, total_sales FROM sales_per_category
         ORDER BY transaction_date, category",
    )
    .await;
    assert_eq!(
        got,
        [
            json!(["2025-07-19", "home", 25.0]),
            json!(["2025-07-19", "office", 5.0]),
            json!(["2025-07-20", "home", 1.0]),
        ]
    );
}

#[tokio::test]
async fn duplicates_in_a_batch_are_written_once_with_the_last_value() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("out.db");
    // SQLite would let the later row of one INSERT update the earlier one; the trigger
    // shows whether that happened (PostgreSQL refuses it outright).
    exec(
        &db,
        "CREATE TABLE totals (id TEXT PRIMARY KEY, total INTEGER);
         CREATE TABLE updates (id TEXT);
         CREATE TRIGGER counted AFTER UPDATE ON totals BEGIN
             INSERT INTO updates VALUES (new.id);
         END;",
    )
    .await;
    let mut s = sink(&db, "totals", r#"key = ["id"]"#);
    let (cx, _dead) = sink_context();
    s.write(
        Incoming::from(vec![
            record(json!({"id": "a", "total": 1})),
            record(json!({"id": "b", "total": 2})),
            record(json!({"id": "a", "total": 3})),
        ]),
        &cx,
    )
    .await
    .expect("writes");
    s.write(
        Incoming::from(vec![record(json!({"id": "b", "total": 4}))]),
        &cx,
    )
    .await
    .expect("writes");
    s.finish(&cx).await.expect("finishes");
    let got = rows(&db, "SELECT id, total FROM totals ORDER BY rowid").await;
    assert_eq!(got, [json!(["a", 3]), json!(["b", 4])]);
    assert_eq!(count(&db, "SELECT count(*) FROM updates").await, 0);
}

#[tokio::test]
async fn columns_map_fields_to_columns_and_missing_fields_write_null() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("out.db");
    exec(
        &db,
        "CREATE TABLE transactions (transaction_id TEXT PRIMARY KEY, total_amount REAL,
         currency TEXT, untouched TEXT DEFAULT 'default')",
    )
    .await;
    let options = r#"
        key = ["transaction_id"]
        [columns]
        transaction_id = "transactionId"
        total_amount = "totalAmount"
        currency = "currency"
    "#;
    let mut s = sink(&db, "main.transactions", options);
    let (cx, _dead) = sink_context();
    s.write(
        Incoming::from(vec![
            record(
                json!({"transactionId": "t1", "totalAmount": 12.5, "currency": "USD",
                          "productName": "mouse"}),
            ),
            record(json!({"productName": "laptop", "totalAmount": 99, "transactionId": "t2"})),
        ]),
        &cx,
    )
    .await
    .expect("writes");
    s.finish(&cx).await.expect("finishes");
    let got = rows(
        &db,
        "SELECT transaction_id, total_amount, currency, untouched FROM transactions
         ORDER BY transaction_id",
    )
    .await;
    assert_eq!(
        got,
        [
            json!(["t1", 12.5, "USD", "default"]),
            json!(["t2", 99.0, null, "default"]),
        ]
    );
}

fn write_migration(dir: &Path) -> std::path::PathBuf {
    let migrations = dir.join("migrations");
    std::fs::create_dir(&migrations).expect("dir");
    std::fs::write(
        migrations.join("0001_init.sql"),
        "CREATE TABLE events (id INTEGER PRIMARY KEY, source TEXT NOT NULL);",
    )
    .expect("migration");
    std::fs::write(migrations.join("README.md"), "not a migration").expect("readme");
    migrations
}

#[tokio::test]
async fn migrations_are_applied_once_for_two_sinks_on_one_file() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("out.db");
    let migrations = write_migration(dir.path());
    let options = format!("migrations = {:?}", migrations.to_str().expect("utf8"));
    let run = |source: &'static str, first_id: i64| {
        let mut s = sink(&db, "events", &options);
        async move {
            let (cx, mut dead) = sink_context();
            for id in first_id..first_id + 3 {
                s.write(
                    Incoming::from(vec![record(json!({"id": id, "source": source}))]),
                    &cx,
                )
                .await
                .expect("writes");
            }
            s.finish(&cx).await.expect("finishes");
            assert!(dead_letters(&mut dead).is_empty());
        }
    };
    tokio::join!(run("a", 0), run("b", 100));
    assert_eq!(count(&db, "SELECT count(*) FROM _sqlx_migrations").await, 1);
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 6);
}

#[tokio::test]
async fn migrations_run_once_per_database_and_directory() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("out.db");
    let migrations = write_migration(dir.path());
    let url = sqlite_url(&db);
    let conn = Db::connect(Dialect::Sqlite, &url, 1, &url)
        .await
        .expect("connects");
    let database = conn.database.as_deref();
    assert!(database.is_some(), "a file is known across pools");
    let applied = migrations::apply(&conn.db, database, &migrations, &url).await;
    assert_eq!(applied.expect("applies"), Applied::Ran);
    let again = migrations::apply(&conn.db, database, &migrations, &url).await;
    assert_eq!(again.expect("applies"), Applied::AlreadyDone);
    // The same directory reached by another path is the same directory.
    let other_path = dir.path().join(".").join("migrations");
    let again = migrations::apply(&conn.db, database, &other_path, &url).await;
    assert_eq!(again.expect("applies"), Applied::AlreadyDone);
    conn.db.close().await;
    assert_eq!(count(&db, "SELECT count(*) FROM _sqlx_migrations").await, 1);
}

#[tokio::test]
async fn an_empty_run_still_applies_the_migrations() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("new.db");
    let migrations = write_migration(dir.path());
    let options = format!("migrations = {:?}", migrations.to_str().expect("utf8"));
    let mut s = sink(&db, "events", &options);
    assert!(!db.exists(), "building opens nothing");
    let (cx, _dead) = sink_context();
    s.finish(&cx).await.expect("finishes");
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 0);
    assert_eq!(count(&db, "SELECT count(*) FROM _sqlx_migrations").await, 1);
}

#[tokio::test]
async fn rejected_rows_go_to_dead_letters_and_the_others_are_written() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("out.db");
    exec(
        &db,
        "CREATE TABLE sales_per_day (transaction_date TEXT PRIMARY KEY,
         total_sales REAL NOT NULL CHECK (total_sales >= 0))",
    )
    .await;
    let mut s = sink(&db, "sales_per_day", "batch_size = 10");
    let (cx, mut dead) = sink_context();
    let bad_null = record(json!({"transaction_date": "d2", "total_sales": null}));
    let bad_check = record(json!({"transaction_date": "d3", "total_sales": -1.0}));
    s.write(
        Incoming::from(vec![
            record(json!({"transaction_date": "d1", "total_sales": 1.0})),
            bad_null.clone(),
            bad_check.clone(),
            record(json!({"transaction_date": "d4", "total_sales": 4.0})),
        ]),
        &cx,
    )
    .await
    .expect("a rejected row does not stop the run");
    s.finish(&cx).await.expect("finishes");
    let got = rows(
        &db,
        "SELECT transaction_date, total_sales FROM sales_per_day ORDER BY 1",
    )
    .await;
    assert_eq!(got, [json!(["d1", 1.0]), json!(["d4", 4.0])]);
    let letters = dead_letters(&mut dead);
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert_eq!(&*letters[0].component, "sinks.test");
    assert_eq!(
        letters[0].reason,
        "NOT NULL constraint failed: sales_per_day.total_sales"
    );
    assert_eq!(letters[0].payload, Payload::Record(bad_null));
    assert!(
        letters[1].reason.contains("CHECK constraint failed"),
        "{}",
        letters[1].reason
    );
    assert_eq!(letters[1].payload, Payload::Record(bad_check));
}

#[tokio::test]
async fn full_batches_are_written_as_they_fill() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("out.db");
    exec(&db, "CREATE TABLE events (id INTEGER PRIMARY KEY)").await;
    let mut s = sink(&db, "events", "batch_size = 2\nflush_interval = \"1h\"");
    let (cx, _dead) = sink_context();
    s.write(Incoming::from(vec![record(json!({"id": 1}))]), &cx)
        .await
        .expect("writes");
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 0);
    let four: Vec<_> = (2..=5).map(|id| record(json!({"id": id}))).collect();
    s.write(Incoming::from(four), &cx).await.expect("writes");
    // Five records, batches of two: two written, the fifth waits for its batch or the end.
    assert_eq!(settled_count(&db, "events").await, 4);
    s.finish(&cx).await.expect("finishes");
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 5);
}

#[tokio::test]
async fn rows_gather_while_a_transaction_runs_and_make_the_next_one() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("out.db");
    exec(&db, "CREATE TABLE events (id INTEGER PRIMARY KEY)").await;
    let options = "batch_size = 2\nmax_batch_size = 6\nflush_interval = \"1h\"";
    let mut s = sink(&db, "events", options);
    let (cx, _dead) = sink_context();
    s.open(&cx).await.expect("connects");
    let ids = |from: i64, to: i64| -> Vec<_> {
        (from..=to).map(|id| record(json!({"id": id}))).collect()
    };
    // Another connection holds the write lock: the sink's first transaction waits for it.
    let mut other = sqlx::SqliteConnection::connect(&sqlite_url(&db))
        .await
        .expect("connects");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .expect("locks");
    s.write(Incoming::from(ids(1, 2)), &cx)
        .await
        .expect("a full batch starts a transaction and returns");
    s.write(Incoming::from(ids(3, 5)), &cx)
        .await
        .expect("the next rows gather while it waits");
    sqlx::query("COMMIT")
        .execute(&mut other)
        .await
        .expect("unlocks");
    let written = || count(&db, "SELECT count(*) FROM events");
    assert_eq!(
        settled_count(&db, "events").await,
        2,
        "the first transaction has its batch; the rows gathered wait for the next write"
    );
    s.write(Incoming::from(ids(6, 6)), &cx)
        .await
        .expect("writes");
    s.checkpoint(&cx)
        .await
        .expect("a checkpoint waits for the writes");
    assert_eq!(
        written().await,
        6,
        "the gathered rows made one more transaction"
    );
    s.finish(&cx).await.expect("finishes");
}

#[tokio::test]
async fn rows_older_than_the_interval_are_written_when_records_arrive() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("out.db");
    exec(&db, "CREATE TABLE events (id INTEGER PRIMARY KEY)").await;
    let mut s = sink(&db, "events", "flush_interval = \"100ms\"");
    let (cx, _dead) = sink_context();
    s.write(Incoming::from(vec![record(json!({"id": 1}))]), &cx)
        .await
        .expect("writes");
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 0);
    tokio::time::sleep(Duration::from_millis(150)).await;
    s.write(Incoming::from(vec![record(json!({"id": 2}))]), &cx)
        .await
        .expect("writes");
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 2);
    s.finish(&cx).await.expect("finishes");
}

#[test]
fn bad_options_are_build_errors() {
    let e = build_error(build_sink(
        "sql",
        "url = \"mysql://root:secret@db/shop\"\ntable = \"t\"",
    ));
    assert_eq!(e.field.as_deref(), Some("url"));
    assert!(e.message.contains("unknown database `mysql`"), "{e}");
    assert!(!e.message.contains("secret"), "{e}");

    let e = build_error(build_sink(
        "sql",
        "url = \"sqlite::memory:\"\ntable = \"t\"\nbatch_size = 500\nmax_batch_size = 100",
    ));
    assert_eq!(e.field.as_deref(), Some("max_batch_size"));
    assert!(
        e.message
            .contains("max_batch_size (100) is smaller than batch_size (500)"),
        "{e}"
    );

    let e = build_error(build_sink("sql", "url = \"shop.db\"\ntable = \"t\""));
    assert_eq!(e.field.as_deref(), Some("url"));

    let e = build_error(build_sink("sql", "table = \"t\""));
    assert!(e.message.contains("missing field `url`"), "{e}");

    let e = build_error(build_sink(
        "sql",
        "url = \"sqlite::memory:\"\ntable = \"t\"\nbatch_size = 0",
    ));
    assert_eq!(e.field.as_deref(), Some("batch_size"));

    let e = build_error(build_sink(
        "sql",
        "url = \"sqlite::memory:\"\ntable = \"t\"\nkey = [\"id\"]\ncolumns = { total = \"t\" }",
    ));
    assert_eq!(e.field.as_deref(), Some("key"));

    let e = build_error(build_sink(
        "sql",
        "url = \"sqlite::memory:\"\ntable = \"t\"\nflush_interval = \"soon\"",
    ));
    assert!(
        e.message.contains("flush_interval") || e.span.is_some(),
        "{e}"
    );

    let e = build_error(build_sink(
        "sql",
        "url = \"sqlite::memory:\"\ntable = \"t\"\nbatchsize = 5",
    ));
    assert!(e.message.contains("unknown field `batchsize`"), "{e}");
}

#[tokio::test]
async fn a_missing_directory_is_reported_at_the_first_write() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("no/such/dir/out.db");
    let mut s = sink(&db, "events", "");
    let (cx, _dead) = sink_context();
    let e = s
        .write(Incoming::from(vec![record(json!({"id": 1}))]), &cx)
        .await
        .and(s.finish(&cx).await)
        .expect_err("cannot open");
    let text = e.to_string();
    assert!(
        text.contains("no/such/dir") && text.contains("does not exist"),
        "{text}"
    );
}

#[tokio::test]
async fn a_missing_table_or_column_stops_the_run_with_its_name() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("out.db");
    exec(&db, "CREATE TABLE events (id INTEGER PRIMARY KEY)").await;
    let (cx, mut dead) = sink_context();
    let mut s = sink(&db, "evnets", "");
    s.write(Incoming::from(vec![record(json!({"id": 1}))]), &cx)
        .await
        .expect("buffered");
    let e = s.finish(&cx).await.expect_err("no such table");
    assert!(
        e.to_string().contains("table \"evnets\" does not exist"),
        "{e}"
    );
    let mut s = sink(&db, "events", "");
    s.write(
        Incoming::from(vec![record(json!({"id": 1, "source": "a"}))]),
        &cx,
    )
    .await
    .expect("buffered");
    let e = s.finish(&cx).await.expect_err("no such column");
    assert!(e.to_string().contains("no column `source`"), "{e}");
    assert!(dead_letters(&mut dead).is_empty());
}

#[tokio::test]
async fn in_memory_databases_work_with_migrations() {
    let dir = tempfile::tempdir().expect("dir");
    let migrations = write_migration(dir.path());
    let options = format!(
        "url = \"sqlite::memory:\"\ntable = \"events\"\nmigrations = {:?}",
        migrations.to_str().expect("utf8")
    );
    // Two sinks, two separate in-memory databases: each gets its own tables.
    for _ in 0..2 {
        let mut s = build_sink("sql", &options).expect("builds");
        let (cx, mut dead) = sink_context();
        s.write(
            Incoming::from(vec![record(json!({"id": 1, "source": "a"}))]),
            &cx,
        )
        .await
        .expect("writes");
        s.finish(&cx).await.expect("finishes");
        assert!(dead_letters(&mut dead).is_empty());
    }
}

#[tokio::test]
async fn the_project_migrations_create_the_flagship_tables_in_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("ecommerce.db");
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let options = format!(
        r#"migrations = {:?}
        key = ["transaction_id"]
        [columns]
        transaction_id = "transactionId"
        product_quantity = "productQuantity"
        transaction_date = "transactionDate"
        total_amount = "totalAmount"
        "#,
        migrations.to_str().expect("utf8")
    );
    let mut s = sink(&db, "transactions", &options);
    let (cx, mut dead) = sink_context();
    let seed = record(json!({
        "transactionId": "6c8a0c5e-1b2f-4d8e-9a51-0f7c2d3e4b5a",
        "productQuantity": 3,
        "transactionDate": "2025-07-19T12:34:56.123456+0000",
        "totalAmount": 59.97,
        "currency": "USD",
    }));
    s.write(Incoming::from(vec![seed]), &cx)
        .await
        .expect("writes");
    s.finish(&cx).await.expect("finishes");
    assert!(dead_letters(&mut dead).is_empty());
    let got = rows(
        &db,
        "SELECT transaction_id, product_quantity, transaction_date, total_amount, currency
         FROM transactions",
    )
    .await;
    assert_eq!(
        got,
        [json!([
            "6c8a0c5e-1b2f-4d8e-9a51-0f7c2d3e4b5a",
            3,
            "2025-07-19T12:34:56.123456+0000",
            59.97,
            null
        ])]
    );
    for table in [
        "sales_per_category",
        "sales_per_day",
        "sales_per_month",
        "payment_alerts",
    ] {
        let n = count(&db, &format!("SELECT count(*) FROM {table}")).await;
        assert_eq!(n, 0, "{table} exists");
    }
}

#[tokio::test]
async fn the_partition_column_keeps_one_partial_row_per_partition() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("out.db");
    exec(
        &db,
        "CREATE TABLE partials (day TEXT, source_partition INTEGER NOT NULL, total REAL,
         PRIMARY KEY (day, source_partition))",
    )
    .await;
    let options = r#"key = ["day", "source_partition"]
partition_column = "source_partition""#;
    let mut s = sink(&db, "partials", options);
    let (cx, mut dead) = sink_context();
    let partition = |number| {
        ecomflow_core::PartitionId {
            source: "sources.t".into(),
            topic: "orders".into(),
            number,
        }
        .shard()
    };
    let day = |total: f64| vec![record(json!({"day": "2025-02-01", "total": total}))];
    // Partition 1's total replaces its own row, never partition 0's.
    for (shard, total) in [
        (partition(0), 10.0),
        (partition(1), 4.0),
        (partition(1), 5.0),
    ] {
        let batch = Incoming::in_shard(shard, std::sync::Arc::new(day(total)));
        s.write(batch, &cx).await.expect("writes");
    }
    s.write(Incoming::from(day(1.0)), &cx)
        .await
        .expect("writes");
    s.finish(&cx).await.expect("finishes");
    assert!(dead_letters(&mut dead).is_empty());
    let got = rows(
        &db,
        "SELECT day, source_partition, total FROM partials ORDER BY source_partition",
    )
    .await;
    assert_eq!(
        got,
        [json!(["2025-02-01", 0, 1.0]), json!(["2025-02-01", 1, 5.0])],
        "the whole shard writes partition 0"
    );
    let e = build_error(build_sink(
        "sql",
        "url = \"sqlite::memory:\"\ntable = \"t\"\npartition_column = \"p\"\ncolumns = { p = \"x\" }",
    ));
    assert!(e.message.contains("`p` is in `columns` too"), "{e:?}");
}
