//! The `lines` sink: writes one field of every record to a file, a value per line as JSON
//! (`null` for a record without it). It gathers lines in memory and appends them to the file,
//! made durable, at each checkpoint, at the end (`finish` does what `checkpoint`
//! does unless a sink says otherwise), and whenever 1 MiB has gathered.

use ecomflow_core::async_trait::async_trait;
use ecomflow_core::schemars::JsonSchema;
use ecomflow_core::serde::Deserialize;
use ecomflow_core::{BuildContext, BuildError, ComponentError, Field, Incoming, Plugin};
use ecomflow_core::{Sink, SinkContext, SinkPlugin};
use std::{fs::File, io::Write};

/// Options of the `lines` sink.
#[derive(Deserialize, JsonSchema)]
#[serde(crate = "ecomflow_core::serde", deny_unknown_fields)]
#[schemars(crate = "ecomflow_core::schemars")]
pub struct LinesConfig {
    /// The file, appended to (created when missing).
    pub path: String,
    /// The field written.
    pub field: String,
}

/// The `lines` sink: its options, and the lines not in the file yet.
pub struct Lines(LinesConfig, Vec<u8>);

impl SinkPlugin for Lines {
    type Config = LinesConfig;

    fn build(config: LinesConfig, _: &BuildContext) -> Result<Box<dyn Sink>, BuildError> {
        Ok(Box::new(Lines(config, Vec::new())))
    }
}

#[async_trait]
impl Sink for Lines {
    async fn write(&mut self, batch: Incoming, _: &SinkContext) -> Result<(), ComponentError> {
        let field = Field::new(&self.0.field);
        for record in batch.records() {
            let value = record.get(field).map(|v| v.to_json());
            let _ = writeln!(self.1, "{}", value.unwrap_or_default()); // A Vec takes it all.
        }
        self.append_if(self.1.len() >= 1 << 20)
    }

    async fn checkpoint(&mut self, _: &SinkContext) -> Result<(), ComponentError> {
        self.append_if(true)
    }
}

impl Lines {
    /// When `now`, appends the lines gathered to the file and makes them durable.
    fn append_if(&mut self, now: bool) -> Result<(), ComponentError> {
        if now && !self.1.is_empty() {
            let failed = |e| ComponentError::io(format!("cannot write {}", self.0.path), e);
            append(&self.0.path, &self.1).map_err(failed)?;
            self.1.clear();
        }
        Ok(())
    }
}

fn append(path: &str, lines: &[u8]) -> std::io::Result<()> {
    let mut file = File::options().create(true).append(true).open(path)?;
    file.write_all(lines)?;
    file.sync_data()
}

ecomflow_core::inventory::submit!(Plugin::sink::<Lines>("lines", "Writes a field per line"));
