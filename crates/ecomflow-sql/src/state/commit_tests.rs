//! A checkpoint's transaction against a real PostgreSQL server (`scripts/services.sh`): while
//! it copies its rows, the partition it commits for can be claimed by another process without
//! waiting, and the commit then leaves that partition's rows out; a transaction whose COMMIT
//! went unanswered is asked about before it is run again.

use super::prepared::Rows;
use super::{commit, create_tables, schema};
use crate::db::{Db, TableColumn};
use crate::dialect::Dialect;
use crate::plan::Plan;
use crate::postgres_tests::fresh_database;
use ecomflow_core::checkpoint::{Checkpoint, PartitionCheckpoint};
use ecomflow_core::component::DeadLetterOutput;
use ecomflow_core::{Field, PartitionId, Record, Shard, Value};
use sqlx::postgres::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rows enough for the COPY to take a while on the server.
const ROWS: i64 = 400_000;

async fn columns(url: &str, table: &str) -> Vec<TableColumn> {
    let connected = Db::connect(Dialect::Postgres, url, 1, "test")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    connected.db.table_columns(table).await.expect("columns")
}

/// Claims `partition` of the pipeline `name` as `owner`, waiting at most `patience` for a
/// lock: its epoch, or the error.
async fn claim(
    pool: &PgPool,
    name: &str,
    partition: &PartitionId,
    owner: &str,
    patience: &str,
) -> Result<i64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("SET LOCAL lock_timeout = '{patience}'"))
        .execute(&mut *tx)
        .await?;
    let (epoch, _, _): (i64, Option<String>, Option<String>) = sqlx::query_as(schema::CLAIM)
        .bind(name)
        .bind(&*partition.source)
        .bind(&*partition.topic)
        .bind(partition.number)
        .bind(owner)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(epoch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_can_be_claimed_while_its_rows_are_copied_and_they_are_then_left_out() {
    let (url, pool) = fresh_database().await;
    create_tables(&pool).await.expect("store tables");
    sqlx::query("CREATE TABLE t (k BIGINT PRIMARY KEY, v TEXT)")
        .execute(&pool)
        .await
        .expect("table");
    let name = "zombie";
    let partition = Arc::new(PartitionId {
        source: "sources.in".into(),
        topic: "topic".into(),
        number: 0,
    });
    let first = claim(&pool, name, &partition, "a", "5s").await.expect("A");

    let (k, v) = (Field::new("k"), Field::new("v"));
    let wanted = [("k".to_string(), k), ("v".to_string(), v)];
    let plan = Plan::new(
        Dialect::Postgres,
        "t",
        &["k".to_string()],
        &wanted,
        &columns(&url, "t").await,
        1000,
    )
    .expect("plan");
    let records = (0..ROWS)
        .map(|i| {
            let mut r = Record::with_capacity(2);
            r.push(k, Value::Int(i));
            r.push(v, Value::Str(format!("row {i} of a big checkpoint").into()));
            r
        })
        .collect();
    let (dead_letter, _letters) = DeadLetterOutput::collected("sinks.t".into(), Default::default());
    let rows = vec![Rows {
        plan: Arc::new(plan),
        shard: Shard::Partition(partition.clone()),
        rows: records,
        dead_letter,
        counters: Default::default(),
        what: "t".into(),
    }];
    let mut checkpoint = Checkpoint {
        id: 1,
        ..Checkpoint::default()
    };
    checkpoint
        .partitions
        .entry("sources.in".into())
        .or_default()
        .insert(
            partition.key(),
            PartitionCheckpoint {
                position: serde_json::json!(ROWS),
                transforms: Default::default(),
            },
        );
    let held = vec![(partition.clone(), Some(first))];

    // A commits; B claims the partition while the server copies A's rows.
    let mut a = pool.acquire().await.expect("A's connection");
    let committing = tokio::spawn(async move {
        let outcome = commit::run(&mut a, name, &checkpoint, &held, &rows, &mut None).await;
        outcome.map(|o| o.fenced)
    });
    let watcher = pool.clone();
    let started = Instant::now();
    loop {
        let (copying,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND state = 'active' AND query ILIKE 'COPY %'",
        )
        .fetch_one(&watcher)
        .await
        .expect("activity");
        if copying > 0 {
            break;
        }
        assert!(
            !committing.is_finished() && started.elapsed() < Duration::from_secs(30),
            "the commit was never seen copying"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let b = PgPool::connect(&url).await.expect("B's pool");
    let second = claim(&b, name, &partition, "b", "200ms")
        .await
        .expect("B claims at once: nothing of A's commit holds the partition's row yet");
    assert_eq!(second, first + 1);

    let fenced = committing.await.expect("no panic").expect("A's commit");
    assert_eq!(fenced, vec![partition], "A's claim no longer stands");
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM t")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(n, 0, "no row of the partition claimed away is written");
    let (position,): (Option<String>,) =
        sqlx::query_as("SELECT position::text FROM ecomflow_partitions")
            .fetch_one(&pool)
            .await
            .expect("position");
    assert_eq!(position, None, "nor its position");
}

/// The id of the transaction open on `c`.
async fn xid(c: &mut sqlx::PgConnection) -> i64 {
    let (x,): (i64,) = sqlx::query_as("SELECT txid_current()")
        .fetch_one(c)
        .await
        .expect("xid");
    x
}

#[tokio::test]
async fn a_transaction_in_doubt_is_told_committed_or_not() {
    let (_, pool) = fresh_database().await;
    let mut c = pool.acquire().await.expect("a connection");
    let mut tx = sqlx::Connection::begin(&mut *c).await.expect("begin");
    let committed = xid(&mut tx).await;
    tx.commit().await.expect("commit");
    let mut tx = sqlx::Connection::begin(&mut *c).await.expect("begin");
    let rolled_back = xid(&mut tx).await;
    tx.rollback().await.expect("rollback");
    let mut other = pool.acquire().await.expect("another connection");
    assert_eq!(
        commit::resolve(&mut other, committed).await.expect("asked"),
        commit::Resolved::Committed
    );
    assert_eq!(
        commit::resolve(&mut other, rolled_back)
            .await
            .expect("asked"),
        commit::Resolved::Aborted
    );
    let mut tx = sqlx::Connection::begin(&mut *c).await.expect("begin");
    let open = xid(&mut tx).await;
    assert_eq!(
        commit::resolve(&mut other, open).await.expect("asked"),
        commit::Resolved::InProgress
    );
    tx.rollback().await.expect("rollback");
}
