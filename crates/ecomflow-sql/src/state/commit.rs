//! One checkpoint's transaction in the `postgres` checkpoint store: each held partition's
//! position and states (only while this process's claim on it stands), the rows the sinks
//! prepared (not those of a partition claimed away), and the part that is not partitioned.
//! All of it commits, or none of it.
//!
//! The rows are copied into staging tables first, before any row another process may wait
//! for is locked: a `COPY` is the one statement during which the server waits for this
//! process, and no timeout ends a statement under way. A process frozen there (SIGSTOP, a
//! paused machine) with its partitions' rows locked kept the member the group gave them to
//! from claiming them for as long as it stayed frozen. Frozen between two statements, its
//! transaction is ended by `idle_in_transaction_session_timeout`.

use super::prepared::Rows;
use super::schema;
use crate::copy::encode;
use crate::db::{Failure, classify};
use crate::dialect::Dialect;
use crate::value_bind::{Bound, bind};
use ecomflow_core::checkpoint::Checkpoint;
use ecomflow_core::{PartitionId, Payload, Record, Shard};
use sqlx::{PgConnection, Postgres};
use std::sync::Arc;

/// What a committed transaction left out or rejected.
#[derive(Default)]
pub struct Outcome {
    /// Partitions another process claimed since: nothing of them was written.
    pub fenced: Vec<Arc<PartitionId>>,
    /// Rows the database rejected, by the index of their group in the rows written.
    pub rejected: Vec<(usize, Vec<(String, Payload)>)>,
    /// The groups left out (of a partition claimed away or not held), by index.
    pub left_out: Vec<usize>,
}

/// A transaction whose COMMIT was sent but not answered (the connection was lost): it may
/// have committed. Its id tells ([`resolve`]) before it is run again, so that its rows are
/// never written twice.
pub struct InDoubt {
    /// The transaction's id (`txid_current()`).
    pub xid: i64,
    /// What it gives if it committed.
    pub outcome: Outcome,
}

/// What became of a transaction in doubt.
#[derive(Debug, PartialEq)]
pub enum Resolved {
    /// It committed: nothing to run again.
    Committed,
    /// It did not: run it again.
    Aborted,
    /// The server is still committing it: ask again.
    InProgress,
}

/// Asks the server what became of the transaction `xid`.
pub async fn resolve(c: &mut PgConnection, xid: i64) -> Result<Resolved, sqlx::Error> {
    let (status,): (Option<String>,) = sqlx::query_as("SELECT txid_status($1)")
        .bind(xid)
        .fetch_one(&mut *c)
        .await?;
    Ok(match status.as_deref() {
        Some("committed") => Resolved::Committed,
        Some("in progress") => Resolved::InProgress,
        // Aborted, or too old to tell (it was not committed by this process's last attempt,
        // which is recent).
        _ => Resolved::Aborted,
    })
}

/// Runs the transaction of `checkpoint` for the pipeline `name`; `held` are the partitions
/// its sources held, each with this process's epoch when it claimed it. When the COMMIT is
/// sent, `in_doubt` holds the transaction until the server has answered.
pub async fn run(
    c: &mut PgConnection,
    name: &str,
    checkpoint: &Checkpoint,
    held: &[(Arc<PartitionId>, Option<i64>)],
    rows: &[Rows],
    in_doubt: &mut Option<InDoubt>,
) -> Result<Outcome, sqlx::Error> {
    let mut tx = sqlx::Connection::begin(c).await?;
    let (xid,): (i64,) = sqlx::query_as("SELECT txid_current()")
        .fetch_one(&mut *tx)
        .await?;
    let mut outcome = Outcome::default();
    let id = i64::try_from(checkpoint.id).unwrap_or(i64::MAX);
    let mut staged = Vec::with_capacity(rows.len());
    for (i, group) in rows.iter().enumerate() {
        staged.push(stage(&mut tx, i, group).await?);
    }
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
    for (i, (group, staged)) in rows.iter().zip(staged).enumerate() {
        // A partition claimed away, or one not held at this barrier: its rows are the next
        // owner's to write, from the position it resumes at.
        let lost = match &group.shard {
            Shard::Whole => false,
            Shard::Partition(p) => outcome.fenced.contains(p) || !held.iter().any(|(h, _)| h == p),
        };
        if lost {
            outcome.left_out.push(i);
            continue;
        }
        let rejected = write(&mut tx, group, staged).await?;
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
    *in_doubt = Some(InDoubt { xid, outcome });
    tx.commit().await?;
    Ok(in_doubt.take().map(|d| d.outcome).unwrap_or_default())
}

/// One group's rows, bound and copied into a staging table of its own.
struct Staged<'a> {
    /// The staging table; none when there is no row to move, or when the database refused
    /// the COPY (a value of a row): the rows are then written one by one.
    stage: Option<String>,
    /// The rows' values, `plan.width()` a row.
    values: Vec<Bound<'a>>,
    /// The rows bound.
    kept: Vec<&'a Record>,
    /// The rows that do not bind, with the reason.
    rejected: Vec<(String, Payload)>,
}

/// Binds the rows of `group` (number `i`) and copies them into a staging table.
async fn stage<'a>(
    tx: &mut PgConnection,
    i: usize,
    group: &'a Rows,
) -> Result<Staged<'a>, sqlx::Error> {
    let plan = &group.plan;
    let width = plan.width();
    let mut staged = Staged {
        stage: None,
        values: Vec::with_capacity(group.rows.len() * width),
        kept: Vec::with_capacity(group.rows.len()),
        rejected: Vec::new(),
    };
    for r in &group.rows {
        match plan.bind_row(r, &mut staged.values) {
            Ok(()) => staged.kept.push(r),
            Err(reason) => staged.rejected.push((reason, Payload::Record(r.clone()))),
        }
    }
    if staged.kept.is_empty() {
        return Ok(staged);
    }
    // The store commits to PostgreSQL only, whose plans always have the COPY path.
    let Some(copy) = plan.copy_sql() else {
        return Err(sqlx::Error::Configuration(
            "the checkpoint store's rows go to PostgreSQL only".into(),
        ));
    };
    let name = format!("ecomflow_stage_{i}");
    let data = encode(&staged.values, width);
    savepoint(tx, "SAVEPOINT ecomflow_stage").await?;
    match copy.stage(tx, &name, data).await {
        Ok(()) => {
            savepoint(tx, "RELEASE SAVEPOINT ecomflow_stage").await?;
            staged.stage = Some(name);
        }
        Err(e) if !matches!(e, sqlx::Error::Database(_)) => return Err(e),
        Err(e) => {
            tracing::debug!(table = %group.what, error = %e, "rows refused by COPY; writing them one by one");
            savepoint(tx, "ROLLBACK TO SAVEPOINT ecomflow_stage").await?;
        }
    }
    Ok(staged)
}

/// Writes one group of staged rows inside the transaction. When the database rejects the
/// group, its rows are written one by one, each behind a savepoint, and those it rejects are
/// returned with its reason (the transaction goes on without them).
async fn write(
    tx: &mut PgConnection,
    group: &Rows,
    staged: Staged<'_>,
) -> Result<Vec<(String, Payload)>, sqlx::Error> {
    let Staged {
        stage,
        values,
        kept,
        mut rejected,
    } = staged;
    if kept.is_empty() {
        return Ok(rejected);
    }
    let plan = &group.plan;
    if let (Some(stage), Some(copy)) = (stage, plan.copy_sql()) {
        savepoint(tx, "SAVEPOINT ecomflow_rows").await?;
        match copy.move_staged(tx, &stage).await.err() {
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
    }
    savepoint(tx, "SAVEPOINT ecomflow_rows").await?;
    let (one, _) = plan.sql(1);
    for (r, row) in kept.iter().zip(values.chunks(plan.width())) {
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
