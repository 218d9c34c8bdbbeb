//! The connection pool of either database: connecting, reading a table's columns, running
//! INSERT statements, and telling a rejected row from a lost connection.

use crate::copy::CopySql;
use crate::dialect::{BindKind, Cast, Dialect, split_table};
use crate::sqlite_files;
use crate::value_bind::{Bound, bind};
use ecomflow_core::ComponentError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection, Postgres, Sqlite};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// How long connecting to PostgreSQL, or acquiring a pooled connection, may take before the
/// attempt fails (the sink then tries again, pausing longer each time, for up to its
/// `retry_for`).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// The same for SQLite, where waiting means another writer holds the file.
const SQLITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// An open pool.
#[derive(Clone)]
pub enum Db {
    /// SQLite, with the canonical path of its file when it is one (shared by every sink of
    /// the process that writes that file; see `sqlite_files`), `None` in memory.
    Sqlite(SqlitePool, Option<PathBuf>),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// A pool and what identifies its database for migrations.
pub struct Connected {
    /// The pool.
    pub db: Db,
    /// The database across pools (canonical SQLite file, PostgreSQL URL); `None` in memory.
    pub database: Option<String>,
}

/// One column of the target table and how values are bound for it.
#[derive(Clone, Debug, PartialEq)]
pub struct TableColumn {
    /// Its name.
    pub name: String,
    /// How values are converted for it.
    pub kind: BindKind,
    /// How its placeholder is cast.
    pub cast: Cast,
}

/// One column as the database describes it.
#[derive(Debug, Clone)]
pub struct ColumnFacts {
    /// Its name.
    pub name: String,
    /// Its type as `information_schema` (PostgreSQL) or the declaration (SQLite) says.
    pub data_type: String,
    /// `varchar(n)`: n.
    pub max_chars: Option<i32>,
    /// NOT NULL (or a primary key's column in PostgreSQL).
    pub not_null: bool,
    /// How the sink binds values for it.
    pub kind: BindKind,
    /// How its placeholder is cast.
    pub cast: Cast,
}

/// One INSERT statement and its values, row after row.
pub struct Statement<'a> {
    /// The SQL text.
    pub sql: &'a str,
    /// The values in placeholder order.
    pub values: &'a [Bound<'a>],
    /// Keep it prepared for reuse (for the statement sizes that recur).
    pub persistent: bool,
}

/// How a failed statement is handled.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// The database rejected the data (a constraint, a value that does not convert): the
    /// rows go to the dead-letter output with this message.
    Rejected(String),
    /// Anything else (connection, missing table, locked database): the run stops.
    Fatal,
}

/// Whether `e` is SQLite's "database is locked" (another connection holds the lock).
fn is_sqlite_busy(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.parse::<i32>().is_ok_and(|c| c & 0xff == 5)))
}

/// Whether `e` means the database could not be reached (worth retrying the same batch): the
/// connection failed, the server is shutting down or starting (57P0x), or it ended the
/// session (25P03: a transaction left idle too long, as when the process was frozen).
pub fn is_connection_error(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
    ) || matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P0") || c == "25P03"))
}

/// Whether a batch that failed with `e` is worth retrying row by row: only when the database
/// itself answered (not when the connection failed).
pub fn is_database_error(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(_))
}

/// Whether `e`, from a one-row statement, rejects that row's data.
pub fn classify(dialect: Dialect, e: &sqlx::Error) -> Failure {
    let sqlx::Error::Database(db) = e else {
        return Failure::Fatal;
    };
    let code = db.code().unwrap_or_default();
    let rejected = match dialect {
        // Primary result codes: TOOBIG, CONSTRAINT, MISMATCH, RANGE.
        Dialect::Sqlite => code
            .parse::<i32>()
            .is_ok_and(|c| matches!(c & 0xff, 18 | 19 | 20 | 25)),
        // SQLSTATE classes: data exception, integrity constraint violation, raised by a
        // trigger.
        Dialect::Postgres => ["22", "23", "P0"].iter().any(|c| code.starts_with(c)),
    };
    if rejected {
        Failure::Rejected(db.message().to_string())
    } else {
        Failure::Fatal
    }
}

/// A database failure as a component error, with what was being done: worth retrying
/// ([`ComponentError::Unavailable`]) when the database could not be reached.
pub fn db_error(context: String, e: sqlx::Error) -> ComponentError {
    if is_connection_error(&e) {
        return ComponentError::Unavailable(format!("{context}: {e}"));
    }
    match e {
        sqlx::Error::Io(io) => ComponentError::io(context, io),
        other => ComponentError::Other(format!("{context}: {other}")),
    }
}

/// Whether `url` is an in-memory SQLite database.
fn is_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

impl Db {
    /// Opens a pool on `url`. `target` (the URL without password) names it in errors.
    pub async fn connect(
        dialect: Dialect,
        url: &str,
        max_connections: u32,
        target: &str,
    ) -> Result<Connected, ComponentError> {
        let fail = |e: sqlx::Error| db_error(format!("cannot connect to {target}"), e);
        match dialect {
            Dialect::Sqlite => {
                // Write-ahead log with NORMAL sync: a commit survives a crash of the process
                // (not of the machine) without an fsync per transaction; readers never block
                // the writer. Another process may hold the file, so wait for the lock a while.
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(fail)?
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(std::time::Duration::from_secs(30))
                    // 64 MiB of page cache per connection: upserts on random keys (UUIDs)
                    // touch pages all over the table.
                    .pragma("cache_size", "-65536")
                    // Checkpoint the log every ~40 MiB rather than every 4 MiB.
                    .pragma("wal_autocheckpoint", "10000");
                let memory = is_memory(url);
                if !memory {
                    let file = options.get_filename();
                    let dir = file.parent().filter(|p| !p.as_os_str().is_empty());
                    if let Some(dir) = dir
                        && let Ok(false) = tokio::fs::try_exists(dir).await
                    {
                        return Err(ComponentError::Other(format!(
                            "cannot open {target}: directory {} does not exist",
                            dir.display()
                        )));
                    }
                }
                if memory {
                    // One connection that never closes: the database lives as long as it.
                    let pool = SqlitePoolOptions::new()
                        .max_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                        .acquire_timeout(SQLITE_ACQUIRE_TIMEOUT)
                        .connect_with(options)
                        .await
                        .map_err(fail)?;
                    return Ok(Connected {
                        db: Db::Sqlite(pool, None),
                        database: None,
                    });
                }
                // One connection per file for the whole process: sinks writing the same file
                // take turns on it rather than wait for each other's locks. The wait for a
                // turn is the acquire timeout; another process holding the file is waited
                // for by the busy timeout.
                let path = sqlite_files::canonical(options.get_filename()).await;
                let pool = sqlite_files::share(&path, async {
                    let pool_options = SqlitePoolOptions::new()
                        .max_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                        .acquire_timeout(SQLITE_ACQUIRE_TIMEOUT);
                    // Another process opening a new file at once races to switch it to the
                    // write-ahead log, which does not wait for the lock: try again while busy.
                    let started = std::time::Instant::now();
                    loop {
                        match pool_options.clone().connect_with(options.clone()).await {
                            Err(e)
                                if is_sqlite_busy(&e)
                                    && started.elapsed() < SQLITE_ACQUIRE_TIMEOUT =>
                            {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            other => break other,
                        }
                    }
                })
                .await
                .map_err(fail)?;
                Ok(Connected {
                    database: Some(format!("sqlite:{}", path.display())),
                    db: Db::Sqlite(pool, Some(path)),
                })
            }
            Dialect::Postgres => {
                let options = PgConnectOptions::from_str(url).map_err(fail)?;
                // One connection first, for the server's own reason when it cannot be reached
                // (a pool that cannot connect only says it timed out).
                let probe = tokio::time::timeout(ACQUIRE_TIMEOUT, options.connect()).await;
                match probe {
                    Ok(Ok(connection)) => {
                        let _ = connection.close().await;
                    }
                    Ok(Err(e)) => return Err(fail(e)),
                    Err(_) => {
                        return Err(ComponentError::Unavailable(format!(
                            "cannot connect to {target}: no answer within {ACQUIRE_TIMEOUT:?}"
                        )));
                    }
                }
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(fail)?;
                Ok(Connected {
                    db: Db::Postgres(pool),
                    database: Some(url.to_string()),
                })
            }
        }
    }

    /// The dialect of this pool.
    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(..) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The columns of `table` (`schema.table` allowed) in order, with how values are bound
    /// for each; empty when it does not exist.
    pub async fn table_columns(&self, table: &str) -> Result<Vec<TableColumn>, sqlx::Error> {
        Ok(self
            .column_facts(table)
            .await?
            .into_iter()
            .map(|c| TableColumn {
                name: c.name,
                kind: c.kind,
                cast: c.cast,
            })
            .collect())
    }

    /// The columns of `table` as the database describes them, in order; empty when it does
    /// not exist.
    pub async fn column_facts(&self, table: &str) -> Result<Vec<ColumnFacts>, sqlx::Error> {
        let (schema, name) = split_table(table);
        let sql = self.dialect().columns_sql();
        match self {
            Db::Sqlite(pool, _) => {
                let rows: Vec<(String, String, bool)> = sqlx::query_as(sql)
                    .bind(name)
                    .bind(schema.unwrap_or("main"))
                    .fetch_all(pool)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(name, data_type, not_null)| ColumnFacts {
                        name,
                        data_type: data_type.to_lowercase(),
                        // SQLite keeps what it is given: a declared length is not enforced.
                        max_chars: None,
                        not_null,
                        kind: BindKind::Native,
                        cast: Cast::None,
                    })
                    .collect())
            }
            Db::Postgres(pool) => {
                type Row = (String, String, String, String, Option<i32>, bool);
                let rows: Vec<Row> = sqlx::query_as(sql)
                    .bind(name)
                    .bind(schema)
                    .fetch_all(pool)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(
                        |(name, data_type, udt_schema, udt_name, max_chars, not_null)| {
                            let (kind, cast) =
                                Dialect::postgres_column(&data_type, &udt_schema, &udt_name);
                            ColumnFacts {
                                name,
                                data_type,
                                max_chars,
                                not_null,
                                kind,
                                cast,
                            }
                        },
                    )
                    .collect())
            }
        }
    }

    /// Runs `statements` in one transaction: all their rows are written, or none.
    pub async fn insert_in_transaction(
        &self,
        statements: &[Statement<'_>],
    ) -> Result<(), sqlx::Error> {
        macro_rules! run {
            ($pool:expr, $db:ty) => {{
                let mut tx = $pool.begin().await?;
                for s in statements {
                    let mut q = sqlx::query::<$db>(s.sql).persistent(s.persistent);
                    for v in s.values {
                        q = bind(q, v);
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await
            }};
        }
        match self {
            Db::Sqlite(pool, _) => run!(pool, Sqlite),
            Db::Postgres(pool) => run!(pool, Postgres),
        }
    }

    /// Writes `values` (rows of `width` values) by `copy`, in one transaction. PostgreSQL
    /// only: SQLite has no COPY.
    pub async fn copy_in_transaction(
        &self,
        copy: &CopySql,
        values: &[Bound<'_>],
        width: usize,
    ) -> Result<(), sqlx::Error> {
        let Db::Postgres(pool) = self else {
            return Err(sqlx::Error::Configuration(
                "COPY is PostgreSQL's; this is SQLite".into(),
            ));
        };
        let mut tx = pool.begin().await?;
        copy.write(&mut tx, values, width).await?;
        tx.commit().await
    }

    /// Runs one statement on its own.
    pub async fn insert(&self, s: &Statement<'_>) -> Result<(), sqlx::Error> {
        macro_rules! run {
            ($pool:expr, $db:ty) => {{
                let mut q = sqlx::query::<$db>(s.sql).persistent(s.persistent);
                for v in s.values {
                    q = bind(q, v);
                }
                q.execute($pool).await.map(|_| ())
            }};
        }
        match self {
            Db::Sqlite(pool, _) => run!(pool, Sqlite),
            Db::Postgres(pool) => run!(pool, Postgres),
        }
    }

    /// Closes the pool, waiting for its connections to finish. For an SQLite file, only the
    /// last sink of the process that writes it closes it, and first folds the write-ahead
    /// log into the database file, so the file alone holds every row.
    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool, None) => pool.close().await,
            Db::Sqlite(_, Some(path)) => {
                if let Some(pool) = sqlite_files::release(path).await {
                    // Best effort: another process may be reading the file.
                    let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                        .execute(&pool)
                        .await;
                    pool.close().await
                }
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }
}
