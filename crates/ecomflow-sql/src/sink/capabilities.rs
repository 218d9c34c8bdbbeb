//! What a `sql` sink can do besides writing: be read back as a table (for `ecomflow test`),
//! and write in the checkpoint's transaction when the checkpoints are kept in its database.

use super::SqlSink;
use crate::state::Prepared;
use ecomflow_core::async_trait::async_trait;
use ecomflow_core::component::{CheckpointTransaction, Commit, WritesInCheckpoint, WritesTable};
use ecomflow_core::{ComponentError, Counters, PartitionId, Record, SinkContext};
use std::sync::Arc;

/// A sql sink writes a table: `ecomflow test` checks its rows.
#[async_trait]
impl WritesTable for SqlSink {
    fn view(&self) -> ecomflow_core::TableView {
        ecomflow_core::TableView {
            key: self.key.clone(),
            columns: self.columns.clone(),
            partition_column: self.partition_field.map(|f| f.name().to_string()),
        }
    }

    async fn read(&mut self, cx: &SinkContext) -> Result<Vec<Record>, ComponentError> {
        self.take_final_rows();
        self.flush_all(cx).await?;
        self.connect().await?;
        let Some(conn) = &self.conn else {
            return Err(ComponentError::Other(format!(
                "{}: not connected",
                self.what()
            )));
        };
        crate::read_back::read_rows(&conn.db, &self.table, &self.key)
            .await
            .map_err(|e| ComponentError::Other(format!("{}: {e}", self.what())))
    }
}

/// A PostgreSQL sink can write in the checkpoint's transaction.
impl WritesInCheckpoint for SqlSink {
    fn database(&self) -> &str {
        &self.url
    }

    fn commit(&self) -> Commit {
        self.commit
    }

    fn revoked(&mut self, partition: &Arc<PartitionId>) {
        // Built since the last checkpoint from a partition that another process resumes
        // from that checkpoint: not written.
        let before: usize = self.pending.iter().map(|(_, rows)| rows.len()).sum();
        self.pending
            .retain(|(shard, _)| shard.partition() != Some(partition));
        let after: usize = self.pending.iter().map(|(_, rows)| rows.len()).sum();
        Counters::add(&self.counters.dropped, before - after);
    }

    fn inputs_ended(&mut self) {
        self.inputs_ended = true;
    }

    fn join(&mut self, transaction: CheckpointTransaction) {
        self.transactional = transaction.get::<Prepared>();
        if self.transactional.is_some() {
            tracing::info!(table = %self.target, "rows commit with the checkpoints (exactly once)");
        }
    }
}
