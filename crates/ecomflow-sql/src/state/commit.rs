//! One checkpoint's transaction in the `postgres` checkpoint store: each held partition's
//! position and states (only while this process's claim on it stands), the rows the sinks
//! prepared (not those of a partition claimed away), and the part that is not partitioned.
//! All of it commits, or none of it.

use super::prepared::Rows;
use super::schema;
use crate::db::{Failure, classify};
use crate::dialect::Dialect;
use crate::value_bind::{Bound, bind};
use ecomflow_core::checkpoint::Checkpoint;
use ecomflow_core::{PartitionId, Payload, Shard};
use sqlx::{PgConnection, Postgres};
use std::sync::Arc;

/// What a committed transaction left out or rejected.
#[derive(Default)]
pub struct Outcome {
    /// Partitions another process claimed since: nothing of them was written.
    pub fenced: Vec<Arc<PartitionId>>,
    /// Rows the database rejected, by the index of their group in the rows written.
    pub rejected: Vec<(usize, Vec<(String, Payload)>)>,
}

/// Runs the transaction of `checkpoint` for the pipeline `name`; `held` are the partitions
/// its sources held, each with this process's epoch when it claimed it.
pub async fn run(
    c: &mut PgConnection,
    name: &str,
    checkpoint: &Checkpoint,
    held: &[(Arc<PartitionId>, Option<i64>)],
    rows: &[Rows],
) -> Result<Outcome, sqlx::Error> {
    let mut tx = sqlx::Connection::begin(c).await?;
    let mut outcome = Outcome::default();
    let id = i64::try_from(checkpoint.id).unwrap_or(i64::MAX);
    // In a fixed order, so two processes never wait for each other's rows in a circle.
    let mut held = held.to_vec();
    held.sort();
    for (partition, epoch) in &held {
        let (Some(epoch), Some(kept)) = (epoch, checkpoint.partition(partition)) else {
            outcome.fenced.push(partition.clone());
            continue;
        };
        let states = serde_json::to_string(&kept.transforms).unwrap_or_else(|_| "{}".into());
        let updated = sqlx::query(schema::COMMIT_PARTITION)
            .bind(name)
            .bind(&*partition.source)
            .bind(&*partition.topic)
            .bind(partition.number)
            .bind(id)
            .bind(kept.position.to_string())
            .bind(states)
            .bind(*epoch)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() == 0 {
            outcome.fenced.push(partition.clone());
        }
    }
    for (i, group) in rows.iter().enumerate() {
        let lost = match &group.shard {
            Shard::Whole => false,
            Shard::Partition(p) => outcome.fenced.contains(p),
        };
        if lost || group.rows.is_empty() {
            continue;
        }
        let rejected = write(&mut tx, group).await?;
        if !rejected.is_empty() {
            outcome.rejected.push((i, rejected));
        }
    }
    let sources = serde_json::to_string(&checkpoint.sources).unwrap_or_else(|_| "{}".into());
    let transforms = serde_json::to_string(&checkpoint.transforms).unwrap_or_else(|_| "{}".into());
    sqlx::query(schema::COMMIT_WHOLE)
        .bind(name)
        .bind(id)
        .bind(sources)
        .bind(transforms)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Writes one group of rows inside the transaction. When the database rejects the group,
/// its rows are written one by one, each behind a savepoint, and those it rejects are
/// returned with its reason (the transaction goes on without them).
async fn write(tx: &mut PgConnection, group: &Rows) -> Result<Vec<(String, Payload)>, sqlx::Error> {
    let plan = &group.plan;
    let width = plan.width();
    let mut values: Vec<Bound<'_>> = Vec::with_capacity(group.rows.len() * width);
    let mut kept = Vec::with_capacity(group.rows.len());
    let mut rejected = Vec::new();
    for r in &group.rows {
        match plan.bind_row(r, &mut values) {
            Ok(()) => kept.push(r),
            Err(reason) => rejected.push((reason, Payload::Record(r.clone()))),
        }
    }
    // The store commits to PostgreSQL only, whose plans always have the COPY path.
    let Some(copy) = plan.copy_sql() else {
        return Err(sqlx::Error::Configuration(
            "the checkpoint store's rows go to PostgreSQL only".into(),
        ));
    };
    savepoint(tx, "SAVEPOINT ecomflow_rows").await?;
    match copy.write(tx, &values, width).await.err() {
        None => {
            savepoint(tx, "RELEASE SAVEPOINT ecomflow_rows").await?;
            return Ok(rejected);
        }
        Some(e) if !matches!(e, sqlx::Error::Database(_)) => return Err(e),
        Some(e) => {
            tracing::debug!(table = %group.what, error = %e, "rows rejected; writing them one by one");
            savepoint(tx, "ROLLBACK TO SAVEPOINT ecomflow_rows").await?;
        }
    }
    let (one, _) = plan.sql(1);
    for (r, row) in kept.iter().zip(values.chunks(width)) {
        savepoint(tx, "SAVEPOINT ecomflow_row").await?;
        match execute(tx, &one, true, row).await {
            Ok(()) => savepoint(tx, "RELEASE SAVEPOINT ecomflow_row").await?,
            Err(e) => match classify(Dialect::Postgres, &e) {
                Failure::Rejected(reason) => {
                    savepoint(tx, "ROLLBACK TO SAVEPOINT ecomflow_row").await?;
                    rejected.push((reason, Payload::Record((*r).clone())));
                }
                Failure::Fatal => return Err(e),
            },
        }
    }
    savepoint(tx, "RELEASE SAVEPOINT ecomflow_rows").await?;
    Ok(rejected)
}

async fn execute(
    tx: &mut PgConnection,
    sql: &str,
    persistent: bool,
    values: &[Bound<'_>],
) -> Result<(), sqlx::Error> {
    let mut q = sqlx::query::<Postgres>(sql).persistent(persistent);
    for v in values {
        q = bind(q, v);
    }
    q.execute(&mut *tx).await.map(|_| ())
}

async fn savepoint(tx: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::query(sql).execute(&mut *tx).await.map(|_| ())
}
