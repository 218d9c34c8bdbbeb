//! The `sql` sink: buffers records, and writes them by size or age in one transaction per
//! batch (see `write`), one transaction at a time while the next batch gathers.

mod capabilities;

use crate::admission::TableRules;
use crate::config::SqlConfig;
use crate::db::{Connected, Db, db_error};
use crate::dedup::dedup_by_key;
use crate::dialect::{Dialect, quote_table};
use crate::migrations;
use crate::plan::Plan;
use crate::state::{Prepared, Rows};
use crate::url::redact;
use crate::write::Writer;
use ecomflow_core::async_trait::async_trait;
use ecomflow_core::component::{Commit, WritesInCheckpoint, WritesTable};
use ecomflow_core::{
    Batching, BuildContext, BuildError, ComponentError, Counters, Field, InFlight, Incoming,
    Plugin, Record, RetryPolicy, Shard, Sink, SinkContext, SinkPlugin, Value,
};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Registers the `sql` sink.
pub struct SqlPlugin;

impl SinkPlugin for SqlPlugin {
    type Config = SqlConfig;

    fn build(cfg: SqlConfig, cx: &BuildContext) -> Result<Box<dyn Sink>, BuildError> {
        let dialect = cfg.check()?;
        let field_of = |column: &str| Field::new(cfg.columns.get(column).map_or(column, |f| f));
        let key_fields = cfg.key.iter().map(|k| field_of(k)).collect();
        let mut columns: Vec<(String, Field)> = cfg
            .columns
            .iter()
            .map(|(c, f)| (c.clone(), Field::new(f)))
            .collect();
        let partition_field = cfg.partition_column.as_deref().map(Field::new);
        if let (Some(column), Some(field)) = (&cfg.partition_column, partition_field)
            && !columns.is_empty()
        {
            columns.push((column.clone(), field));
        }
        // Relative to the pipeline file, so a pipeline finds the migrations shipped with it.
        // Whether the folder is there can be told offline, so `validate` tells it.
        let migrations = cfg.migrations.as_ref().map(|m| cx.base_dir.join(m));
        if let Some(dir) = &migrations
            && !dir.is_dir()
        {
            return Err(BuildError::field(
                "migrations",
                format!("the migrations folder {} does not exist", dir.display()),
            )
            .with_hint("the path is relative to the pipeline file"));
        }
        let batching =
            Batching::new(cfg.batch_size, cfg.flush_interval.get()).growing_to(cfg.largest_batch());
        Ok(Box::new(SqlSink {
            dialect,
            target: redact(&cfg.url),
            url: cfg.url,
            table: cfg.table,
            key: cfg.key,
            key_fields,
            columns,
            partition_field,
            batching,
            migrations,
            max_connections: cfg.max_connections,
            retry: RetryPolicy::new(cfg.retry_for.get()),
            conn: None,
            plan: None,
            commit: match cfg.exactly_once {
                Some(true) => Commit::Required,
                Some(false) => Commit::Own,
                None => Commit::WhenShared,
            },
            transactional: None,
            pending: Vec::new(),
            inputs_ended: false,
            buffer: Vec::new(),
            writer: None,
            in_flight: InFlight::new(1),
            admission: None,
            counters: Arc::default(),
        }))
    }
}

struct SqlSink {
    dialect: Dialect,
    url: String,
    /// The URL without password, for messages.
    target: String,
    table: String,
    key: Vec<String>,
    /// The record fields of the key columns, for de-duplication.
    key_fields: Vec<Field>,
    /// The configured (column, field) pairs; empty: those of the first record.
    columns: Vec<(String, Field)>,
    /// The field that carries each record's source partition number to the
    /// `partition_column`, added to every record written.
    partition_field: Option<Field>,
    /// When the buffer is written: by size and by age.
    batching: Batching,
    migrations: Option<PathBuf>,
    max_connections: u32,
    /// How connecting and writing are retried while the database cannot be reached.
    retry: RetryPolicy,
    /// Opened at the first write (or at finish), with the migrations applied.
    conn: Option<Connected>,
    /// Fixed at the first write.
    plan: Option<Arc<Plan>>,
    /// Whether it writes in the checkpoint's transaction (`exactly_once`).
    commit: Commit,
    /// Where its rows go at each barrier when it writes in the checkpoint store's
    /// transactions (the runtime links it before it opens).
    transactional: Option<Arc<Prepared>>,
    /// In the store's transactions: the rows since the last barrier, by shard.
    pending: Vec<(Shard, Vec<Record>)>,
    /// Every input ended on its own: the rows after the last checkpoint are the
    /// transforms' final flush, written at the finish.
    inputs_ended: bool,
    /// Records not written yet.
    buffer: Vec<Record>,
    /// What writes the rows, made at the first write.
    writer: Option<Arc<Writer>>,
    /// The transaction running beside the sink, if any.
    in_flight: InFlight,
    /// What its table refuses, read when it opens.
    admission: Option<Arc<TableRules>>,
    /// Its counters (taken when it opens): it counts the rows it wrote and those it left out
    /// (see `Sink::counts_written`).
    counters: Arc<Counters>,
}

impl SqlSink {
    fn what(&self) -> String {
        format!("table {} of {}", quote_table(&self.table), self.target)
    }

    /// Connects and applies the migrations, once; tried again, pausing longer each time,
    /// while the database cannot be reached, for up to `retry_for`.
    async fn connect(&mut self) -> Result<(), ComponentError> {
        if self.conn.is_some() {
            return Ok(());
        }
        let mut retrying = self.retry.start();
        let mut pool = None;
        loop {
            match self.connect_once(&mut pool).await {
                Ok(()) => break,
                Err(e) => retrying.failed(e).await?,
            }
        }
        self.conn = pool;
        Ok(())
    }

    /// One attempt of [`Self::connect`]: opens the pool into `pool` unless it is open, then
    /// applies the migrations.
    async fn connect_once(&self, pool: &mut Option<Connected>) -> Result<(), ComponentError> {
        let conn = match pool {
            Some(conn) => conn,
            None => pool.insert(
                Db::connect(self.dialect, &self.url, self.max_connections, &self.target).await?,
            ),
        };
        if let Some(dir) = &self.migrations {
            migrations::apply(&conn.db, conn.database.as_deref(), dir, &self.target).await?;
        }
        Ok(())
    }

    /// Fixes the plan from the table's columns and the first record, once.
    async fn plan(&mut self, first: &Record) -> Result<(), ComponentError> {
        if self.plan.is_some() {
            return Ok(());
        }
        let Some(conn) = &self.conn else {
            return Err(ComponentError::Other(
                "the sql sink is not connected".into(),
            ));
        };
        let existing =
            self.retry
                .run(|| async {
                    conn.db.table_columns(&self.table).await.map_err(|e| {
                        db_error(format!("cannot read the columns of {}", self.what()), e)
                    })
                })
                .await?;
        let mut wanted = self.columns.clone();
        if wanted.is_empty() {
            wanted = first
                .iter()
                .map(|(f, _)| (f.name().to_string(), f))
                .collect();
            for (k, f) in self.key.iter().zip(&self.key_fields) {
                if !wanted.iter().any(|(c, _)| c == k) {
                    wanted.push((k.clone(), *f));
                }
            }
        }
        let plan = Plan::new(
            self.dialect,
            &self.table,
            &self.key,
            &wanted,
            &existing,
            self.batching.batch_size(),
        )
        .map_err(|e| ComponentError::Other(format!("cannot write to {}: {e}", self.target)))?;
        tracing::debug!(table = %self.table, sql = %plan.sql(1).0, "sql sink plan");
        self.plan = Some(Arc::new(plan));
        Ok(())
    }

    /// Starts writing `rows` (at most the largest batch) in one transaction, once the one in
    /// flight has ended: the sink goes on taking records meanwhile, and those gathered by
    /// then make the next transaction.
    async fn start_write(
        &mut self,
        rows: Vec<Record>,
        cx: &SinkContext,
    ) -> Result<(), ComponentError> {
        let Some(first) = rows.first() else {
            return Ok(());
        };
        self.connect().await?;
        self.plan(first).await?;
        let (Some(conn), Some(plan)) = (&self.conn, &self.plan) else {
            return Err(ComponentError::Other(
                "the sql sink is not connected".into(),
            ));
        };
        let what = self.what();
        let writer = self
            .writer
            .get_or_insert_with(|| {
                Arc::new(Writer {
                    db: conn.db.clone(),
                    plan: plan.clone(),
                    retry: self.retry,
                    what,
                })
            })
            .clone();
        let dead_letter = cx.dead_letter.clone();
        let counters = self.counters.clone();
        // One transaction at a time: rows keep their order.
        let write = async move { writer.write(rows, &dead_letter, &counters).await };
        self.in_flight.start(HashSet::new(), write).await
    }

    /// Drops from `rows` those a later row of the same key replaces: they count as
    /// written (the table holds the last of a key).
    fn dedup(&self, rows: &mut Vec<Record>) {
        let replaced = dedup_by_key(rows, &self.key_fields);
        Counters::add(&self.counters.sent, replaced);
    }

    /// Writes every buffered record.
    async fn flush_all(&mut self, cx: &SinkContext) -> Result<(), ComponentError> {
        let mut buffer = std::mem::take(&mut self.buffer);
        self.dedup(&mut buffer);
        self.buffer = buffer;
        while !self.buffer.is_empty() {
            let rest = self
                .buffer
                .split_off(self.batching.max_batch_size().min(self.buffer.len()));
            let rows = std::mem::replace(&mut self.buffer, rest);
            self.start_write(rows, cx).await?;
        }
        self.batching.emptied();
        self.in_flight.wait_all().await
    }
}

#[async_trait]
impl Sink for SqlSink {
    /// Connects (and applies the migrations) before the first batch, so the sink is ready
    /// once the database answers.
    async fn open(&mut self, cx: &SinkContext) -> Result<(), ComponentError> {
        self.counters = cx.telemetry.counters.clone();
        self.connect().await?;
        let Some(conn) = &self.conn else {
            return Ok(());
        };
        let own = self.partition_field.map(|f| f.name().to_string());
        let rules = self
            .retry
            .run(|| async {
                TableRules::read(&conn.db, &self.table, &self.columns, own.as_deref())
                    .await
                    .map_err(|e| db_error(format!("cannot read the columns of {}", self.what()), e))
            })
            .await?;
        self.admission = Some(Arc::new(rules));
        Ok(())
    }

    fn in_checkpoint(&mut self) -> Option<&mut dyn WritesInCheckpoint> {
        // Checkpoints are kept in PostgreSQL only.
        match self.dialect {
            Dialect::Postgres => Some(self),
            Dialect::Sqlite => None,
        }
    }

    fn admission(&self) -> Option<Arc<dyn ecomflow_core::Admission>> {
        self.admission
            .clone()
            .map(|a| a as Arc<dyn ecomflow_core::Admission>)
    }

    fn destination(&self) -> Option<ecomflow_core::Destination> {
        Some(ecomflow_core::Destination::named(
            self.target.clone(),
            self.table.clone(),
        ))
    }

    fn as_table(&mut self) -> Option<&mut dyn WritesTable> {
        Some(self)
    }

    async fn write(&mut self, batch: Incoming, cx: &SinkContext) -> Result<(), ComponentError> {
        // Kept in the buffer until written: taken without a copy when no other reader has it.
        let shard = batch.shard().clone();
        let mut batch = batch.into_records();
        if let Some(field) = self.partition_field {
            for r in &mut batch {
                r.set(field, Value::Int(i64::from(shard.number())));
            }
        }
        if self.transactional.is_some() {
            // Written in the checkpoint's transaction, with the positions it covers.
            match self.pending.iter_mut().find(|(s, _)| *s == shard) {
                Some((_, rows)) => rows.extend(batch),
                None => self.pending.push((shard, batch)),
            }
            return Ok(());
        }
        let arrived = batch.len();
        if arrived > 0 {
            self.batching.added(arrived);
            self.buffer.extend(batch);
            // While a transaction runs, a full buffer gathers up to the largest batch.
            if self
                .batching
                .should_write(self.buffer.len(), self.in_flight.is_busy())
            {
                let mut buffer = std::mem::take(&mut self.buffer);
                self.dedup(&mut buffer);
                self.buffer = buffer;
                while self.batching.is_full(self.buffer.len()) {
                    // Whole batches: the rest waits for its batch, its age or the end.
                    let size = self.batching.batch_size();
                    let take = self.batching.max_batch_size().min(self.buffer.len()) / size * size;
                    let rest = self.buffer.split_off(take);
                    let rows = std::mem::replace(&mut self.buffer, rest);
                    self.start_write(rows, cx).await?;
                }
                self.batching
                    .full_batches_written(self.buffer.len(), arrived);
            }
        }
        // The age of the buffer is checked whenever records arrive, and on every tick.
        if self.batching.is_due() {
            self.flush_all(cx).await?;
        }
        Ok(())
    }

    async fn checkpoint(&mut self, cx: &SinkContext) -> Result<(), ComponentError> {
        let Some(prepared) = self.transactional.clone() else {
            return self.flush_all(cx).await;
        };
        for (shard, mut rows) in std::mem::take(&mut self.pending) {
            self.dedup(&mut rows);
            let Some(first) = rows.first() else {
                continue;
            };
            self.connect().await?;
            self.plan(first).await?;
            let Some(plan) = self.plan.clone() else {
                continue;
            };
            prepared.add(Rows {
                plan,
                shard,
                rows,
                dead_letter: cx.dead_letter.clone(),
                counters: self.counters.clone(),
                what: self.what(),
            });
        }
        Ok(())
    }

    fn counts_written(&self) -> bool {
        true
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.batching.flush_interval())
    }

    async fn tick(&mut self, cx: &SinkContext) -> Result<(), ComponentError> {
        if self.transactional.is_none() && self.batching.is_due() {
            self.flush_all(cx).await?;
        }
        Ok(())
    }

    async fn finish(&mut self, cx: &SinkContext) -> Result<(), ComponentError> {
        if !self.take_final_rows() && !self.pending.is_empty() {
            // After the last checkpoint: the next run reads them again and writes them then.
            let rows: usize = self.pending.iter().map(|(_, rows)| rows.len()).sum();
            tracing::debug!(table = %self.table, rows, "rows after the last checkpoint not written");
            Counters::add(&self.counters.dropped, rows);
            self.pending.clear();
        }
        self.flush_all(cx).await?;
        // An empty run still connects, so the migrations are applied and errors show.
        self.connect().await?;
        if let Some(conn) = self.conn.take() {
            conn.db.close().await;
        }
        Ok(())
    }
}

impl SqlSink {
    /// Once every input has ended: what the transforms emitted at the end of their input
    /// (open windows and groups closed), after the last checkpoint, which nothing follows,
    /// moves to the buffer to be written now. Returns whether the inputs have ended.
    fn take_final_rows(&mut self) -> bool {
        if self.inputs_ended {
            for (_, rows) in std::mem::take(&mut self.pending) {
                self.buffer.extend(rows);
            }
        }
        self.inputs_ended
    }
}

ecomflow_core::inventory::submit!(Plugin::sink::<SqlPlugin>(
    "sql",
    "writes records to a PostgreSQL or SQLite table: insert or upsert by key, batched by size \
     and time"
));
