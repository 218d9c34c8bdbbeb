//! One transaction of a `sql` sink's rows, run beside the sink: the rows bound to their
//! columns, tried again while the database cannot be reached, and, when the database rejects
//! the batch, written one by one so only the rows it rejects go to the dead-letter output.

use crate::db::{self, Db, Failure, Statement, db_error};
use crate::plan::Plan;
use crate::value_bind::Bound;
use ecomflow_core::component::DeadLetterOutput;
use ecomflow_core::{ComponentError, Counters, Payload, Record, RetryPolicy};
use std::sync::Arc;

/// What every transaction of one sink needs.
pub struct Writer {
    /// The pool.
    pub db: Db,
    /// The columns and statements, fixed at the first write.
    pub plan: Arc<Plan>,
    /// How long a lost connection is waited for.
    pub retry: RetryPolicy,
    /// The table and database, for messages.
    pub what: String,
}

impl Writer {
    /// Writes `rows` in one transaction. When the database rejects the batch, writes the
    /// rows one by one and sends those it rejects to `dead_letter` with its reason.
    /// The rows written are counted in `counters.sent`.
    pub async fn write(
        &self,
        rows: Vec<Record>,
        dead_letter: &DeadLetterOutput,
        counters: &Counters,
    ) -> Result<(), ComponentError> {
        let plan = &self.plan;
        let width = plan.width();
        let mut dead: Vec<(String, Payload)> = Vec::new();
        let mut kept: Vec<&Record> = Vec::with_capacity(rows.len());
        let mut values: Vec<Bound<'_>> = Vec::with_capacity(rows.len() * width);
        for r in &rows {
            match plan.bind_row(r, &mut values) {
                Ok(()) => kept.push(r),
                Err(reason) => dead.push((reason, Payload::Record(r.clone()))),
            }
        }
        let mut result = Ok(());
        if !values.is_empty() {
            // A lost connection rolls the transaction back: retry the batch, pausing longer
            // each time, until the database answers or `retry_for` has passed.
            let mut retrying = self.retry.start();
            loop {
                result = self.write_batch(&values).await;
                match result {
                    Err(e) if db::is_connection_error(&e) => {
                        let e = db_error(format!("cannot write to {}", self.what), e);
                        if let Err(e) = retrying.failed(e).await {
                            dead_letter.send(dead).await;
                            return Err(e);
                        }
                    }
                    _ => break,
                }
            }
        }
        if let Err(e) = result {
            if !db::is_database_error(&e) {
                dead_letter.send(dead).await;
                return Err(db_error(format!("cannot write to {}", self.what), e));
            }
            tracing::debug!(
                table = %self.what,
                error = %e,
                rows = kept.len(),
                "batch rejected; writing its rows one by one"
            );
            let (one, _) = plan.sql(1);
            for (r, values) in kept.iter().zip(values.chunks(width)) {
                let s = Statement {
                    sql: &one,
                    values,
                    persistent: true,
                };
                let Err(e) = self.db.insert(&s).await else {
                    continue;
                };
                match db::classify(self.db.dialect(), &e) {
                    Failure::Rejected(reason) => dead.push((reason, Payload::Record((*r).clone()))),
                    Failure::Fatal => {
                        dead_letter.send(dead).await;
                        return Err(db_error(format!("cannot write to {}", self.what), e));
                    }
                }
            }
        }
        Counters::add(&counters.sent, rows.len() - dead.len());
        dead_letter.send(dead).await;
        Ok(())
    }

    /// Writes the bound `values` in one transaction: by COPY into PostgreSQL, by multi-row
    /// INSERTs into SQLite.
    async fn write_batch(&self, values: &[Bound<'_>]) -> Result<(), sqlx::Error> {
        let plan = &self.plan;
        let width = plan.width();
        if let Some(copy) = plan.copy_sql() {
            return self.db.copy_in_transaction(copy, values, width).await;
        }
        let chunks: Vec<&[Bound<'_>]> = values.chunks(plan.rows_per_statement() * width).collect();
        let texts: Vec<_> = chunks.iter().map(|c| plan.sql(c.len() / width)).collect();
        let statements: Vec<Statement<'_>> = chunks
            .iter()
            .zip(&texts)
            .map(|(values, (sql, persistent))| Statement {
                sql,
                values,
                persistent: *persistent,
            })
            .collect();
        self.db.insert_in_transaction(&statements).await
    }
}
