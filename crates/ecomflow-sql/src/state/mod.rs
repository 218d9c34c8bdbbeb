//! The `postgres` checkpoint store (`[checkpoint] url = "postgres://..."`): checkpoints of
//! every process of a pipeline in one database, so a Kafka partition's position and state
//! move with the partition. A process claims a partition when the group assigns it (a new
//! epoch, which fences the previous owner) and commits its checkpoints in one transaction
//! with the rows that `sql` sinks on the same database prepared for them.

mod claims;
mod commit;
#[cfg(test)]
mod commit_tests;
mod prepared;
mod schema;

pub use prepared::{Prepared, Rows};

use claims::Claims;
use ecomflow_core::async_trait::async_trait;
use ecomflow_core::checkpoint::{Checkpoint, PartitionCheckpoint};
use ecomflow_core::component::CheckpointTransaction;
use ecomflow_core::shared_store::{Opening, SharedStore, StoreOptions, StorePlugin};
use ecomflow_core::{ComponentError, Counters, PartitionId, RetryPolicy};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long connecting, claiming and committing are tried again while the database cannot
/// be reached.
const RETRY_FOR: Duration = Duration::from_secs(60);

/// The longest a commit's transaction may wait for its process between statements.
const IDLE_IN_COMMIT: &str = "10s";

/// The store of one pipeline (`name`) in one database.
struct PostgresStore {
    pool: PgPool,
    /// The URL without password, for messages.
    target: String,
    name: String,
    claims: Claims,
    /// This process's epoch of each partition it claimed.
    epochs: Mutex<HashMap<PartitionId, i64>>,
    /// The rows sinks on this database prepared for the checkpoint under way.
    prepared: Arc<Prepared>,
    retry: RetryPolicy,
}

fn open(options: StoreOptions) -> Opening {
    Box::pin(async move {
        let target = crate::url::redact(&options.url);
        let fail = |e: sqlx::Error| {
            crate::db::db_error(format!("cannot open the checkpoint store in {target}"), e)
        };
        // A process frozen in a commit (a pause, SIGSTOP) holds the locks of its partitions'
        // rows: the server ends its transaction after this long, so the member the group
        // gave them to can claim them, and the frozen one's commit fails when it wakes.
        let connect = PgConnectOptions::from_str(&options.url)
            .map_err(fail)?
            .options([("idle_in_transaction_session_timeout", IDLE_IN_COMMIT)]);
        let retry = RetryPolicy::new(RETRY_FOR);
        let pool = retry
            .run(|| async {
                PgPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(connect.clone())
                    .await
                    .map_err(fail)
            })
            .await?;
        retry
            .run(|| async { create_tables(&pool).await.map_err(fail) })
            .await?;
        let owner = format!(
            "{}:{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
            std::process::id()
        );
        let claims = Claims::start(connect, options.name.clone(), owner, RETRY_FOR)
            .map_err(ComponentError::Other)?;
        let store: Arc<dyn SharedStore> = Arc::new(PostgresStore {
            prepared: Arc::default(),
            pool,
            target,
            name: options.name,
            claims,
            epochs: Mutex::new(HashMap::new()),
            retry,
        });
        Ok(store)
    })
}

/// Creates the store's tables when missing. Processes starting at once take turns (a
/// transaction-scoped advisory lock): PostgreSQL's `IF NOT EXISTS` does not stop two
/// concurrent creations from colliding.
async fn create_tables(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(schema::LOCK).execute(&mut *tx).await?;
    for statement in schema::CREATE {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await
}

#[async_trait]
impl SharedStore for PostgresStore {
    async fn load(&self) -> Result<Checkpoint, ComponentError> {
        let row: Option<(i64, String, String)> = self
            .retry
            .run(|| async {
                sqlx::query_as(schema::LOAD)
                    .bind(&self.name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| crate::db::db_error(format!("cannot read {}", self.target), e))
            })
            .await?;
        let Some((id, sources, transforms)) = row else {
            return Ok(Checkpoint::default());
        };
        let unreadable =
            |e: serde_json::Error| ComponentError::Other(format!("an unreadable checkpoint: {e}"));
        Ok(Checkpoint {
            id: u64::try_from(id).unwrap_or_default(),
            sources: serde_json::from_str(&sources).map_err(unreadable)?,
            transforms: serde_json::from_str(&transforms).map_err(unreadable)?,
            partitions: Default::default(),
        })
    }

    fn claim(&self, partition: &PartitionId) -> Result<Option<PartitionCheckpoint>, String> {
        let (epoch, kept) = self.claims.claim(partition)?;
        self.epochs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(partition.clone(), epoch);
        match &kept {
            Some(k) => tracing::info!(
                partition = %partition.key(),
                epoch,
                resumes_at = %k.position,
                "partition claimed"
            ),
            None => {
                tracing::info!(partition = %partition.key(), epoch, "partition claimed, never committed before")
            }
        }
        Ok(kept)
    }

    async fn commit(
        &self,
        checkpoint: &Checkpoint,
        held: &[(Arc<PartitionId>, Option<i64>)],
    ) -> Result<Vec<Arc<PartitionId>>, ComponentError> {
        let rows = self.prepared.take();
        // A COMMIT sent but not answered may have committed: the next attempt asks first.
        let in_doubt: Mutex<Option<commit::InDoubt>> = Mutex::new(None);
        let outcome = self
            .retry
            .run(|| async {
                let fail = |e| crate::db::db_error(format!("cannot commit to {}", self.target), e);
                let mut c = self.pool.acquire().await.map_err(fail)?;
                let earlier = in_doubt.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(earlier) = earlier {
                    let resolved = match commit::resolve(&mut c, earlier.xid).await {
                        Ok(resolved) => resolved,
                        Err(e) => {
                            // Still in doubt: asked again at the next attempt.
                            *in_doubt.lock().unwrap_or_else(|p| p.into_inner()) = Some(earlier);
                            return Err(fail(e));
                        }
                    };
                    match resolved {
                        commit::Resolved::Committed => {
                            tracing::info!(
                                checkpoint = checkpoint.id,
                                "the commit whose answer was lost had committed"
                            );
                            return Ok(earlier.outcome);
                        }
                        commit::Resolved::InProgress => {
                            *in_doubt.lock().unwrap_or_else(|p| p.into_inner()) = Some(earlier);
                            return Err(ComponentError::Unavailable(format!(
                                "the commit of checkpoint {} to {} is still under way",
                                checkpoint.id, self.target
                            )));
                        }
                        commit::Resolved::Aborted => {}
                    }
                }
                let mut sent = None;
                let result =
                    commit::run(&mut c, &self.name, checkpoint, held, &rows, &mut sent).await;
                if result.is_err() {
                    *in_doubt.lock().unwrap_or_else(|p| p.into_inner()) = sent;
                }
                result.map_err(fail)
            })
            .await?;
        let mut refused = vec![0; rows.len()];
        for (i, letters) in outcome.rejected {
            if let Some(group) = rows.get(i) {
                refused[i] = letters.len();
                group.dead_letter.send(letters).await;
            }
        }
        // What each sink wrote, and what it left for the partition's next owner.
        for (i, group) in rows.iter().enumerate() {
            let n = group.rows.len();
            if outcome.left_out.contains(&i) {
                Counters::add(&group.counters.dropped, n);
            } else {
                Counters::add(&group.counters.sent, n - refused[i]);
            }
        }
        Ok(outcome.fenced)
    }

    fn claim_of(&self, partition: &PartitionId) -> Option<i64> {
        let epochs = self.epochs.lock().unwrap_or_else(|p| p.into_inner());
        epochs.get(partition).copied()
    }

    fn describe(&self) -> String {
        format!("the checkpoint store `{}` in {}", self.name, self.target)
    }

    fn transaction(&self) -> Option<CheckpointTransaction> {
        Some(CheckpointTransaction::new(self.prepared.clone()))
    }
}

ecomflow_core::inventory::submit!(StorePlugin {
    scheme: "postgres",
    open,
});
