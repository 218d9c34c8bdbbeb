//! The flagship end to end, on embedded SQLite and on a real PostgreSQL server (started by
//! `scripts/services.sh`; `ECOMFLOW_TEST_POSTGRES_URL`): 100,000 transactions over several
//! months, out of order and with bad records; every aggregate table must equal the same
//! aggregation recomputed with SQL from the `transactions` table, and a second run changes
//! nothing.

use sqlx::sqlite::SqlitePoolOptions;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::common;

const COUNT: u64 = 100_000;

fn run_flagship(dir: &Path, database_url: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ecomflow"))
        .arg("run")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/ecommerce.toml"))
        .args([
            "--set",
            &format!("sources.transactions.count={COUNT}"),
            "--set",
            "sources.transactions.start_time=2025-01-01T00:00:00Z",
            "--set",
            "sources.transactions.event_step_ms=120000",
            "--set",
            "sources.transactions.bad_ratio=0.02",
        ])
        .env("DATABASE_URL", database_url)
        .env("ECOMFLOW_DEAD_LETTER", dir.join("dead-letter.jsonl"))
        .current_dir(dir)
        .output()
        .expect("ecomflow runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// Rows of `sql` as (key, amount) with the key columns joined by `|`.
async fn keyed(pool: &sqlx::SqlitePool, sql: &str) -> BTreeMap<String, f64> {
    sqlx::query_as::<_, (String, f64)>(sql)
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .collect()
}

fn assert_same(table: &str, stored: &BTreeMap<String, f64>, recomputed: &BTreeMap<String, f64>) {
    assert!(!stored.is_empty(), "{table} is empty");
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        recomputed.keys().collect::<Vec<_>>(),
        "{table}: keys differ"
    );
    for (k, v) in stored {
        let want = recomputed[k];
        assert!(
            (v - want).abs() < 0.005,
            "{table}[{k}]: stored {v}, recomputed {want}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_tables_equal_their_sql_recomputation_and_runs_repeat() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("flagship.db").display());
    let summary = run_flagship(dir.path(), &db);
    let pool = SqlitePoolOptions::new()
        .connect(&db)
        .await
        .expect("database");

    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM transactions")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(n as u64, COUNT, "every good transaction, once");

    let per_day = keyed(
        &pool,
        "SELECT transaction_date, total_sales FROM sales_per_day",
    )
    .await;
    let per_day_sql = keyed(
        &pool,
        "SELECT date(transaction_date), SUM(total_amount_usd) FROM transactions
         WHERE payment_status = 'success' GROUP BY 1",
    )
    .await;
    assert_same("sales_per_day", &per_day, &per_day_sql);
    assert!(
        per_day.len() > 100,
        "100,000 transactions two minutes apart span months"
    );

    let per_category = keyed(
        &pool,
        "SELECT transaction_date || '|' || category, total_sales FROM sales_per_category",
    )
    .await;
    let per_category_sql = keyed(
        &pool,
        "SELECT date(transaction_date) || '|' || product_category, SUM(total_amount_usd)
         FROM transactions WHERE payment_status = 'success' GROUP BY 1",
    )
    .await;
    assert_same("sales_per_category", &per_category, &per_category_sql);

    let per_month = keyed(
        &pool,
        "SELECT printf('%04d-%02d', year, month), total_sales FROM sales_per_month",
    )
    .await;
    let per_month_sql = keyed(
        &pool,
        "SELECT strftime('%Y-%m', transaction_date), SUM(total_amount_usd) FROM transactions
         WHERE payment_status = 'success' GROUP BY 1",
    )
    .await;
    assert_same("sales_per_month", &per_month, &per_month_sql);
    assert!(per_month.len() >= 4, "{per_month:?}");

    let alerts = keyed(
        &pool,
        "SELECT window_start || '|' || payment_method, failed_count FROM payment_alerts",
    )
    .await;
    let alerts_sql = keyed(
        &pool,
        "SELECT strftime('%Y-%m-%d %H:%M:00.000000', transaction_date) || '|' || payment_method,
                COUNT(*) FROM transactions WHERE payment_status = 'failed'
         GROUP BY 1 HAVING COUNT(*) > 4",
    )
    .await;
    assert_eq!(alerts, alerts_sql, "payment_alerts");

    // Bad records are dead letters with reasons, and none reached a table.
    let letters: Vec<serde_json::Value> =
        std::fs::read_to_string(dir.path().join("dead-letter.jsonl"))
            .expect("dead letters")
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON"))
            .collect();
    assert!(
        letters.len() > 1000,
        "2% of 100,000 are broken: {}",
        letters.len()
    );
    let mut ids = Vec::new();
    for l in &letters {
        assert!(!l["reason"].as_str().unwrap_or("").is_empty(), "{l}");
        if let Some(id) = l["payload"]["transactionId"].as_str() {
            ids.push(id.to_string());
        }
    }
    for id in ids {
        let (found,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM transactions WHERE transaction_id = ?")
                .bind(&id)
                .fetch_one(&pool)
                .await
                .expect("lookup");
        assert_eq!(
            found, 0,
            "dead-lettered {id} reached the transactions table"
        );
    }
    assert!(summary.contains("dead_letter"), "{summary}");

    // Running again over the same database leaves every table as it was.
    let before = common::sqlite_dump(&pool).await;
    pool.close().await;
    run_flagship(dir.path(), &db);
    let pool = SqlitePoolOptions::new()
        .connect(&db)
        .await
        .expect("database");
    assert_eq!(common::sqlite_dump(&pool).await, before);
}

async fn pg_keyed(pool: &sqlx::PgPool, sql: &str) -> BTreeMap<String, f64> {
    sqlx::query_as::<_, (String, f64)>(sql)
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .collect()
}

async fn pg_dump(pool: &sqlx::PgPool) -> Vec<String> {
    let mut all = Vec::new();
    for table in common::TABLES {
        let rows: Vec<(String,)> =
            sqlx::query_as(&format!("SELECT t::text AS r FROM {table} t ORDER BY r"))
                .fetch_all(pool)
                .await
                .unwrap_or_else(|e| panic!("{table}: {e}"));
        all.extend(rows.into_iter().map(|(r,)| format!("{table} {r}")));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_too_the_tables_equal_their_recomputation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db =
        common::fresh_postgres_database(&format!("ecomflow_flagship_{}", std::process::id())).await;
    run_flagship(dir.path(), &db);
    let pool = sqlx::PgPool::connect(&db).await.expect("database");

    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM transactions")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(n as u64, COUNT);
    let success = "FROM transactions WHERE payment_status = 'success'";
    assert_same(
        "sales_per_day",
        &pg_keyed(
            &pool,
            "SELECT transaction_date::text, total_sales FROM sales_per_day",
        )
        .await,
        &pg_keyed(
            &pool,
            &format!(
                "SELECT transaction_date::date::text, SUM(total_amount_usd) {success} GROUP BY 1"
            ),
        )
        .await,
    );
    assert_same(
        "sales_per_category",
        &pg_keyed(
            &pool,
            "SELECT transaction_date::text || '|' || category, total_sales FROM sales_per_category",
        )
        .await,
        &pg_keyed(
            &pool,
            &format!(
                "SELECT transaction_date::date::text || '|' || product_category, SUM(total_amount_usd) {success} GROUP BY 1"
            ),
        )
        .await,
    );
    let per_month = pg_keyed(
        &pool,
        "SELECT lpad(year::text, 4, '0') || '-' || lpad(month::text, 2, '0'), total_sales FROM sales_per_month",
    )
    .await;
    assert_same(
        "sales_per_month",
        &per_month,
        &pg_keyed(
            &pool,
            &format!("SELECT to_char(transaction_date, 'YYYY-MM'), SUM(total_amount_usd) {success} GROUP BY 1"),
        )
        .await,
    );
    assert!(per_month.len() >= 4);
    assert_eq!(
        pg_keyed(
            &pool,
            "SELECT to_char(window_start, 'YYYY-MM-DD HH24:MI') || '|' || payment_method, failed_count::float8 FROM payment_alerts",
        )
        .await,
        pg_keyed(
            &pool,
            "SELECT to_char(date_trunc('minute', transaction_date), 'YYYY-MM-DD HH24:MI') || '|' || payment_method,
                    COUNT(*)::float8 FROM transactions WHERE payment_status = 'failed'
             GROUP BY 1 HAVING COUNT(*) > 4",
        )
        .await,
        "payment_alerts"
    );

    let before = pg_dump(&pool).await;
    pool.close().await;
    run_flagship(dir.path(), &db);
    let pool = sqlx::PgPool::connect(&db).await.expect("database");
    assert_eq!(pg_dump(&pool).await, before, "a second run changes nothing");
}
