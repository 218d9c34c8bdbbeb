//! `ecomflow test` with `real_sinks` on a real database: an `expect` on such a sink reads its
//! table back, so it sees every row the database holds (those there before the test too),
//! in the database's own types: on an SQLite file, and on the PostgreSQL test server
//! (`scripts/services.sh start`; without it these tests fail).

use sqlx::sqlite::SqlitePoolOptions;
use std::path::Path;
use std::process::Command;

use crate::common;
use crate::common::repo;

/// One flagship transaction as a JSON line.
fn transaction(id: &str, at: &str, currency: &str, status: &str) -> String {
    format!(
        "{{\"transactionId\": \"{id}\", \"productId\": \"p1\", \"productName\": \"laptop\", \
         \"productCategory\": \"electronic\", \"productPrice\": 50.0, \"productQuantity\": 2, \
         \"productBrand\": \"apple\", \"currency\": \"{currency}\", \"customerId\": \"c1\", \
         \"transactionDate\": \"{at}\", \"paymentMethod\": \"credit_card\", \
         \"paymentStatus\": \"{status}\", \"totalAmount\": 100.0}}"
    )
}

/// Writes `tests` (the `[[tests]]` of one test file over the flagship) to `dir` and runs
/// `ecomflow test` on it: the exit code and stdout.
fn run_tests(dir: &Path, tests: &str) -> (Option<i32>, String) {
    let file = dir.join("real.test.toml");
    let pipeline = repo().join("pipelines/ecommerce.toml");
    std::fs::write(
        &file,
        format!(
            "pipelines = [{:?}]\n\n{tests}",
            pipeline.display().to_string()
        ),
    )
    .expect("write the test file");
    let out = Command::new(env!("CARGO_BIN_EXE_ecomflow"))
        .arg("test")
        .arg(&file)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.code(), format!("{stdout}\n{stderr}"))
}

#[tokio::test]
async fn an_expect_on_a_real_sqlite_sink_reads_every_row_of_its_file_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("shop.db");
    // A row already in the table, which no record of the test wrote.
    let pool = SqlitePoolOptions::new()
        .connect(&format!("sqlite://{}?mode=rwc", db.display()))
        .await
        .expect("create the database");
    let migration = std::fs::read_to_string(repo().join("migrations/0001_ecommerce_tables.sql"))
        .expect("the migration");
    sqlx::raw_sql(&migration)
        .execute(&pool)
        .await
        .expect("tables");
    sqlx::query("INSERT INTO transactions (transaction_id, payment_status) VALUES ('t0', 'old')")
        .execute(&pool)
        .await
        .expect("a row");
    pool.close().await;

    let t1 = transaction("t1", "2025-01-31T10:00:00.000000+0000", "EUR", "failed");
    let t1_again = transaction("t1", "2025-01-31T10:00:00.000000+0000", "EUR", "success");
    let tests = |second_status: &str| {
        format!(
            r#"[[tests]]
name = "the table holds the old row and the last of each key"
set = ["sinks.transactions_table.url=sqlite://{db}"]
real_sinks = ["transactions_table"]

[[tests.steps]]
send = "transactions"
lines = '{t1}'

[[tests.steps]]
expect = "transactions_table"
match = [{{ transaction_id = "t0", payment_status = "old" }}, {{ transaction_id = "t1", payment_status = "failed", total_amount_usd = 108.0 }}]

[[tests.steps]]
send = "transactions"
lines = '{t1_again}'

[[tests.steps]]
end = true

[[tests.steps]]
expect = "transactions_table"
match = [{{ transaction_id = "t0", payment_status = "old" }}, {{ transaction_id = "t1", payment_status = "{second_status}", product_quantity = 2 }}]
"#,
            db = db.display()
        )
    };
    let (code, out) = run_tests(dir.path(), &tests("success"));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1 passed, 0 failed"), "{out}");

    // A wrong expectation at the end shows the row as the file holds it.
    let (code, out) = run_tests(dir.path(), &tests("refunded"));
    assert_eq!(code, Some(1), "{out}");
    let failure = out
        .lines()
        .find(|l| l.contains("`expect = \"transactions_table\"`"))
        .expect("a failed expect");
    assert!(
        failure.contains("real.test.toml:23:1:")
            && failure.contains("expected 2 records, 2 emitted"),
        "the last step fails, with its place:\n{out}"
    );
    assert!(
        out.contains(
            "\"payment_status\":\"success\",\"total_amount\":100.0,\"total_amount_usd\":108.0}"
        ),
        "{out}"
    );
}

#[tokio::test]
async fn an_expect_on_a_real_postgres_sink_shows_the_rows_in_postgres_types() {
    let url = common::fresh_postgres_database("ecomflow_test_command_real").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let t1 = transaction("t1", "2025-01-31T23:30:00.000000-0200", "USD", "success");
    let tests = |total: f64| {
        format!(
            r#"[[tests]]
name = "rows as PostgreSQL holds them"
set = ["sinks.transactions_table.url={url}", "sinks.sales_per_day_table.url={url}"]
real_sinks = ["transactions_table", "sales_per_day_table"]

[[tests.steps]]
send = "transactions"
lines = '{t1}'

[[tests.steps]]
end = true

[[tests.steps]]
expect = "transactions_table"
match = [{{ transaction_id = "t1", transaction_date = "2025-02-01T01:30:00", total_amount_usd = 100.0 }}]

[[tests.steps]]
expect = "sales_per_day_table"
records = [{{ transaction_date = "2025-02-01", total_sales = {total:?} }}]
"#
        )
    };
    let (code, out) = run_tests(dir.path(), &tests(100.0));
    assert_eq!(code, Some(0), "{out}");

    let (code, out) = run_tests(dir.path(), &tests(99.0));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("actual:   {\"transaction_date\":\"2025-02-01\",\"total_sales\":100}"),
        "the row as PostgreSQL gives it back:\n{out}"
    );
}
