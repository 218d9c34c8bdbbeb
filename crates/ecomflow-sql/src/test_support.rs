//! Test helpers: build the sink from TOML through the registry, run it on a real dead-letter
//! channel, and read the SQLite file it wrote.

use ecomflow_core::component::DeadLetterOutput;
use ecomflow_core::registry::Builder;
use ecomflow_core::{
    BuildContext, BuildError, Counters, DeadLetter, Field, Kind, Plugin, Record, Sink, SinkContext,
    Value,
};
use sqlx::SqlitePool;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Builds the sink `name` from TOML options, exactly as the runtime does.
pub fn build_sink(name: &str, options: &str) -> Result<Box<dyn Sink>, BuildError> {
    let table = toml::de::DeTable::parse(options).expect("options are valid TOML");
    let plugin =
        Plugin::find(Kind::Sink, name).unwrap_or_else(|| panic!("sink `{name}` is not registered"));
    let cx = BuildContext {
        component: "sinks.test".into(),
        base_dir: ".".into(),
    };
    match plugin.builder {
        Builder::Sink(build) => build(table, &cx),
        _ => panic!("`{name}` is not a sink"),
    }
}

/// The build error, failing the test when the build succeeded.
pub fn build_error<T>(result: Result<T, BuildError>) -> BuildError {
    match result {
        Ok(_) => panic!("expected a build error"),
        Err(e) => e,
    }
}

/// A record from a JSON object.
pub fn record(json: serde_json::Value) -> Record {
    let serde_json::Value::Object(map) = json else {
        panic!("not an object: {json}");
    };
    let mut r = Record::with_capacity(map.len());
    for (k, v) in map {
        r.push(Field::new(&k), Value::from_json(v));
    }
    r
}

/// A sink context on a real channel, with the dead-letter receiver.
pub fn sink_context() -> (SinkContext, mpsc::Receiver<Vec<DeadLetter>>) {
    let (dead_tx, dead_rx) = mpsc::channel(64);
    let counters = Arc::new(Counters::default());
    let cx = SinkContext {
        dead_letter: DeadLetterOutput::new("sinks.test".into(), dead_tx, counters),
    };
    (cx, dead_rx)
}

/// Every dead letter sent so far.
pub fn dead_letters(rx: &mut mpsc::Receiver<Vec<DeadLetter>>) -> Vec<DeadLetter> {
    let mut all = Vec::new();
    while let Ok(d) = rx.try_recv() {
        all.extend(d);
    }
    all
}

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
