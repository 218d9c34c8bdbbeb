//! A sink a test asks to run for real (`real_sinks`): it opens, writes every batch it is
//! given, makes its writes durable at a restart and finishes at the end of the test, on a
//! runtime of its own; what it cannot write comes back as dead letters, and the rows its
//! table holds are read back from its database.

use ecomflow_core::component::DeadLetterOutput;
use ecomflow_core::tokio::runtime::Runtime;
use ecomflow_core::tokio::sync::mpsc;
use ecomflow_core::{
    Batch, ComponentTelemetry, Counters, DeadLetter, Incoming, Kind, Record, Shard, Sink,
    SinkContext,
};
use std::sync::Arc;

/// A table's rows read back (`None`: the sink writes no table), and the dead letters of the
/// writes before.
pub type RowsRead = (Option<Vec<Record>>, Vec<DeadLetter>);

/// One sink running for real.
pub struct RealSink {
    sink: Box<dyn Sink>,
    cx: SinkContext,
    letters: mpsc::UnboundedReceiver<Vec<DeadLetter>>,
    path: Arc<str>,
    /// Its table's rows, read just before it finished (and closed its database), or why
    /// they could not be: only an `expect` on it fails with that.
    last_rows: Option<Result<Option<Vec<Record>>, String>>,
}

impl RealSink {
    /// Opens `sink` (connects, applies its migrations) on `runtime`.
    pub fn open(
        runtime: &Runtime,
        path: Arc<str>,
        mut sink: Box<dyn Sink>,
    ) -> Result<RealSink, String> {
        let (dead_letter, letters) =
            DeadLetterOutput::collected(path.clone(), Arc::new(Counters::default()));
        let cx = SinkContext {
            dead_letter,
            telemetry: ComponentTelemetry::detached(&path, Kind::Sink),
        };
        runtime
            .block_on(sink.open(&cx))
            .map_err(|e| format!("{path} cannot open: {e}"))?;
        Ok(RealSink {
            sink,
            cx,
            letters,
            path,
            last_rows: None,
        })
    }

    /// What it refuses, now that it is open.
    pub fn admission(&self) -> Option<Arc<dyn ecomflow_core::Admission>> {
        self.sink.admission()
    }

    /// Writes `batch` of `shard`; returns the dead letters it produced.
    pub fn write(
        &mut self,
        runtime: &Runtime,
        shard: Shard,
        batch: Batch,
    ) -> Result<Vec<DeadLetter>, String> {
        runtime
            .block_on(
                self.sink
                    .write(Incoming::in_shard(shard, Arc::new(batch)), &self.cx),
            )
            .map_err(|e| format!("{} cannot write: {e}", self.path))?;
        Ok(self.letters())
    }

    /// Makes everything written durable, as at a checkpoint.
    pub fn checkpoint(&mut self, runtime: &Runtime) -> Result<Vec<DeadLetter>, String> {
        runtime
            .block_on(self.sink.checkpoint(&self.cx))
            .map_err(|e| format!("{} cannot keep its writes at a checkpoint: {e}", self.path))?;
        Ok(self.letters())
    }

    /// The rows its table holds, read back from its database after it wrote what it
    /// buffers (those it held when it finished, once it has; `None` when it writes no
    /// table), and the dead letters of those writes.
    pub fn rows(&mut self, runtime: &Runtime) -> Result<RowsRead, String> {
        let rows = self.read(runtime)?;
        Ok((rows, self.letters()))
    }

    fn read(&mut self, runtime: &Runtime) -> Result<Option<Vec<Record>>, String> {
        if let Some(rows) = &self.last_rows {
            return rows.clone();
        }
        let Some(table) = self.sink.as_table() else {
            return Ok(None);
        };
        runtime
            .block_on(table.read(&self.cx))
            .map(Some)
            .map_err(|e| format!("{} cannot read its table back: {e}", self.path))
    }

    /// Finishes: writes what it holds, reads its table back, closes.
    pub fn finish(&mut self, runtime: &Runtime) -> Result<Vec<DeadLetter>, String> {
        if let Some(writes) = self.sink.in_checkpoint() {
            writes.inputs_ended();
        }
        self.last_rows = Some(self.read(runtime));
        runtime
            .block_on(self.sink.finish(&self.cx))
            .map_err(|e| format!("{} cannot finish: {e}", self.path))?;
        Ok(self.letters())
    }

    fn letters(&mut self) -> Vec<DeadLetter> {
        let mut out = Vec::new();
        while let Ok(letters) = self.letters.try_recv() {
            out.extend(letters);
        }
        out
    }
}
