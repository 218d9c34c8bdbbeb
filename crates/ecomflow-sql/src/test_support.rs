//! Test helpers: build the sink from TOML through the registry, run it on a real dead-letter
//! channel, and read the SQLite file it wrote.

use sqlx::SqlitePool;
use std::path::Path;

pub use ecomflow_core::testing::{build_error, build_sink, dead_letters, record, sink_context};

/// The `sqlite://` URL of `path`.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.to_str().expect("utf8 path"))
}

/// A pool on the SQLite file at `path` (created if missing), for setting up and checking.
pub async fn open(path: &Path) -> SqlitePool {
    let url = format!("{}?mode=rwc", sqlite_url(path));
    SqlitePool::connect(&url)
        .await
        .expect("test database opens")
}

/// Runs `sql` (several statements allowed) on the file at `path`.
pub async fn exec(path: &Path, sql: &str) {
    let pool = open(path).await;
    sqlx::raw_sql(sql)
        .execute(&pool)
        .await
        .expect("setup SQL runs");
    pool.close().await;
}

/// The rows of `sql` as JSON arrays (integer, real, text and NULL columns).
pub async fn rows(path: &Path, sql: &str) -> Vec<serde_json::Value> {
    use sqlx::{Row, ValueRef};
    let pool = open(path).await;
    let rows = sqlx::query(sql).fetch_all(&pool).await.expect("query runs");
    let out = rows
        .iter()
        .map(|row| {
            let cells: Vec<serde_json::Value> = (0..row.columns().len())
                .map(|i| {
                    let raw = row.try_get_raw(i).expect("column");
                    if raw.is_null() {
                        return serde_json::Value::Null;
                    }
                    if let Ok(v) = row.try_get::<i64, _>(i) {
                        return v.into();
                    }
                    if let Ok(v) = row.try_get::<f64, _>(i) {
                        return v.into();
                    }
                    let v: String = row.try_get(i).expect("text column");
                    v.into()
                })
                .collect();
            serde_json::Value::Array(cells)
        })
        .collect();
    pool.close().await;
    out
}

/// The single integer `sql` returns.
pub async fn count(path: &Path, sql: &str) -> i64 {
    let pool = open(path).await;
    let n: i64 = sqlx::query_scalar(sql)
        .fetch_one(&pool)
        .await
        .expect("count runs");
    pool.close().await;
    n
}
