//! Migrations: a directory of sqlx migrations applied once per process and database, at the
//! first connection, never per record. Sinks on the same database wait for each other here.
//! A lost connection is worth retrying; any other failure is not.

use crate::db::{Db, is_connection_error};
use ecomflow_core::ComponentError;
use sqlx::migrate::{MigrateError, Migrator};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use tokio::sync::Mutex;

/// (database, migrations directory) pairs already applied by this process. Held while
/// migrating, so a second sink on the same database waits instead of racing the first.
static APPLIED: LazyLock<Mutex<HashSet<(String, PathBuf)>>> =
    LazyLock::new(|| Mutex::new(HashSet::new()));

/// What [`apply`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// The migrator ran (it applies only the migrations the database lacks).
    Ran,
    /// Another sink of this process had already run it on this database.
    AlreadyDone,
}

/// Applies the migrations in `dir` to `db`. `database` identifies the database across sinks
/// (a canonical SQLite path, a PostgreSQL URL); `None` (an in-memory SQLite database, which
/// no other pool sees) always runs. `target` names the database in messages.
pub async fn apply(
    db: &Db,
    database: Option<&str>,
    dir: &Path,
    target: &str,
) -> Result<Applied, ComponentError> {
    let dir = tokio::fs::canonicalize(dir).await.map_err(|e| {
        ComponentError::io(
            format!("cannot read the migrations directory {}", dir.display()),
            e,
        )
    })?;
    let mut applied = APPLIED.lock().await;
    let id = database.map(|d| (d.to_string(), dir.clone()));
    if id.as_ref().is_some_and(|id| applied.contains(id)) {
        return Ok(Applied::AlreadyDone);
    }
    let migrator = Migrator::new(dir.as_path()).await.map_err(|e| {
        ComponentError::Other(format!(
            "cannot read the migrations in {}: {e}",
            dir.display()
        ))
    })?;
    let ran = match db {
        Db::Sqlite(pool, _) => migrator.run(pool).await,
        Db::Postgres(pool) => migrator.run(pool).await,
    };
    ran.map_err(|e| {
        let message = format!(
            "cannot apply the migrations in {} to {target}: {e}",
            dir.display()
        );
        match &e {
            // The connection was lost: applying them again later can succeed.
            MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _)
                if is_connection_error(e) =>
            {
                ComponentError::Unavailable(message)
            }
            _ => ComponentError::Other(message),
        }
    })?;
    tracing::info!(
        migrations = %dir.display(),
        database = target,
        count = migrator.iter().count(),
        "migrations applied"
    );
    if let Some(id) = id {
        applied.insert(id);
    }
    Ok(Applied::Ran)
}
