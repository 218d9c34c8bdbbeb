//! The options of the `sql` sink and their offline checks (no file or network access).

use crate::dialect::Dialect;
use ecomflow_core::BuildError;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::HashSet;
use std::time::Duration;

/// Options of the `sql` sink.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlConfig {
    /// The database: `sqlite://path/to/file.db` (a relative path is taken from the working
    /// directory; the file is created when missing, its directory must exist),
    /// `sqlite::memory:`, or `postgres://user:password@host:port/database`.
    pub url: String,
    /// The table to write, optionally as `schema.table`. It must exist when the sink starts
    /// writing (create it with `migrations`).
    pub table: String,
    /// Key columns. Empty: every row is a plain INSERT. Otherwise rows are upserted on these
    /// columns (`INSERT ... ON CONFLICT (key) DO UPDATE` of the other columns, so a new value
    /// replaces the stored one), which needs a primary key or unique index on exactly them;
    /// rows with the same key in one batch are reduced to the last one.
    #[serde(default)]
    pub key: Vec<String>,
    /// The columns to write, in order, each with the record field it takes, such as
    /// `{ transaction_id = "transactionId" }`. A record without the field writes NULL. Empty:
    /// every field of the first record, into the column of the same name.
    #[serde(default)]
    pub columns: IndexMap<String, String>,
    /// A column that gets the number of the source partition each row was built from, such
    /// as `source_partition` (0 for rows of a source without partitions). With a Kafka source
    /// every partition keeps its own state, so an aggregate writes one partial row per group
    /// and partition: put the column in `key` too, and sum the partials when reading (see
    /// `migrations/scale-out`). Each partition has one owner at a time, so two processes of
    /// one consumer group never write the same row.
    #[serde(default)]
    pub partition_column: Option<String>,
    /// Rows written per transaction; a full buffer is written at once.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1))]
    pub batch_size: usize,
    /// The most rows one transaction takes. A transaction runs while the sink goes on taking
    /// records; a full buffer gathers until it ends, up to this size, so a busy sink commits
    /// fewer, larger transactions (a commit writes every page the transaction touched, and
    /// upserts on random keys touch a page per row). At least `batch_size`; default 20000,
    /// or `batch_size` when that is larger.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_batch_size: Option<usize>,
    /// The longest a row waits in the buffer before it is written, such as `1s` or `500ms`
    /// (checked whenever records arrive, and at the end of the run).
    #[serde(default = "default_flush_interval")]
    pub flush_interval: ecomflow_core::duration::Positive,
    /// A directory of sqlx migrations (`<version>_<description>.sql`), such as
    /// `../migrations`, relative to the pipeline file; applied once when the sink first
    /// connects. Several sinks on one database apply it once.
    #[serde(default)]
    pub migrations: Option<String>,
    /// The most connections the sink opens to a PostgreSQL database. An SQLite file has one
    /// connection for the whole process, shared by every sink that writes it, so they take
    /// turns instead of waiting for each other's locks.
    #[serde(default = "default_max_connections")]
    #[schemars(range(min = 1))]
    pub max_connections: u32,
    /// How long connecting (with the `migrations`) and each batch are tried again, with
    /// pauses from 100ms doubling up to 5s, while the database cannot be reached (not up yet,
    /// connection lost, server restarting) before the run stops. Other failures (a refused
    /// password, a missing database) stop it at once.
    #[serde(default = "default_retry_for")]
    pub retry_for: ecomflow_core::duration::ZeroAllowed,
    /// Whether the rows commit in the checkpoint's transaction, with the source positions
    /// and states they come from, so that a crash neither loses nor repeats a row. Unset:
    /// they do when the pipeline keeps its checkpoints in this very database (`checkpoint.url`
    /// equal to `url`, PostgreSQL), and the sink commits its own batches otherwise. `true`:
    /// they must (a pipeline whose checkpoints are kept elsewhere is an error). `false`: the
    /// sink always commits its own batches, as soon as they fill (at least once: after a
    /// crash, rows since the last checkpoint are written again, a keyed row replacing itself).
    #[serde(default)]
    pub exactly_once: Option<bool>,
}

fn default_batch_size() -> usize {
    1000
}

/// The largest transaction of a sink that is behind, unless `max_batch_size` says.
const DEFAULT_MAX_BATCH_SIZE: usize = 20_000;

fn default_flush_interval() -> ecomflow_core::duration::Positive {
    ecomflow_core::duration::Positive::new(Duration::from_secs(1))
}

fn default_max_connections() -> u32 {
    4
}

fn default_retry_for() -> ecomflow_core::duration::ZeroAllowed {
    ecomflow_core::duration::ZeroAllowed::new(Duration::from_secs(60))
}

impl SqlConfig {
    /// The most rows one transaction takes (see `max_batch_size`).
    pub fn largest_batch(&self) -> usize {
        self.max_batch_size
            .unwrap_or(DEFAULT_MAX_BATCH_SIZE.max(self.batch_size))
    }

    /// Checks the options without touching the database and returns the URL's dialect.
    pub fn check(&self) -> Result<Dialect, BuildError> {
        let dialect = crate::url::dialect_of(&self.url).map_err(|e| BuildError::field("url", e))?;
        if self.table.trim().is_empty() {
            return Err(BuildError::field("table", "table is empty"));
        }
        if self.table.split('.').any(str::is_empty) {
            return Err(BuildError::field(
                "table",
                format!("`{}` is not a table name", self.table),
            )
            .with_hint("write `table` or `schema.table`"));
        }
        if self.batch_size == 0 {
            return Err(BuildError::field(
                "batch_size",
                "batch_size must be at least 1",
            ));
        }
        if let Some(max) = self.max_batch_size
            && max < self.batch_size
        {
            return Err(BuildError::field(
                "max_batch_size",
                format!(
                    "max_batch_size ({max}) is smaller than batch_size ({})",
                    self.batch_size
                ),
            )
            .with_hint("a transaction of a sink that is behind takes at least a full batch"));
        }
        if self.exactly_once == Some(true) && dialect != Dialect::Postgres {
            return Err(BuildError::field(
                "exactly_once",
                "exactly_once needs a PostgreSQL database: checkpoints are kept in PostgreSQL",
            )
            .with_hint("write to PostgreSQL, or leave the option out"));
        }
        if self.max_connections == 0 {
            return Err(BuildError::field(
                "max_connections",
                "max_connections must be at least 1",
            ));
        }
        if self.migrations.as_deref().is_some_and(str::is_empty) {
            return Err(BuildError::field("migrations", "migrations is empty")
                .with_hint("name a directory such as \"migrations\", or leave the option out"));
        }
        if let Some(column) = &self.partition_column {
            if column.trim().is_empty() {
                return Err(BuildError::field(
                    "partition_column",
                    "partition_column is empty",
                ));
            }
            if self.columns.contains_key(column) {
                return Err(BuildError::field(
                    "partition_column",
                    format!("`{column}` is in `columns` too"),
                )
                .with_hint(
                    "the sink fills the partition column itself: remove it from `columns`",
                ));
            }
        }
        for (column, field) in &self.columns {
            if column.is_empty() {
                return Err(BuildError::field("columns", "a column name is empty"));
            }
            if field.is_empty() {
                return Err(BuildError::field(
                    format!("columns.{column}"),
                    format!("column `{column}` names no field"),
                ));
            }
        }
        let mut seen = HashSet::new();
        for k in &self.key {
            if k.is_empty() {
                return Err(BuildError::field("key", "a key column name is empty"));
            }
            if !seen.insert(k) {
                return Err(BuildError::field(
                    "key",
                    format!("key column `{k}` is repeated"),
                ));
            }
            let partition = self.partition_column.as_ref() == Some(k);
            if !self.columns.is_empty() && !self.columns.contains_key(k) && !partition {
                return Err(BuildError::field(
                    "key",
                    format!("key column `{k}` is not one of `columns`"),
                )
                .with_hint(format!("add `{k} = \"<field>\"` to `columns`")));
            }
        }
        Ok(dialect)
    }
}
