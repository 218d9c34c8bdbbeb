//! The transform trait, and the emitter that collects what one call produces.

use crate::dead_letter::Payload;
use crate::record::{Batch, Record};
use std::time::Duration;

/// Collects what a transform produces from one call: records for its outputs and dead letters.
#[derive(Default)]
pub struct Emitter {
    records: Batch,
    named: Vec<(&'static str, Batch)>,
    dead: Vec<(String, Payload)>,
    dropped: u64,
}

impl Emitter {
    /// An emitter with room for `n` records on the default output.
    pub fn with_capacity(n: usize) -> Emitter {
        Emitter {
            records: Vec::with_capacity(n),
            ..Emitter::default()
        }
    }

    /// Sends a record to the default output.
    #[inline]
    pub fn emit(&mut self, record: Record) {
        self.records.push(record);
    }

    /// Sends a record to the named output `port` (one the plugin declared).
    pub fn emit_to(&mut self, port: &'static str, record: Record) {
        match self.named.iter_mut().find(|(p, _)| *p == port) {
            Some((_, b)) => b.push(record),
            None => self.named.push((port, vec![record])),
        }
    }

    /// Sends a record to the dead-letter output with the reason.
    pub fn dead_letter(&mut self, reason: impl Into<String>, record: Record) {
        self.dead.push((reason.into(), Payload::Record(record)));
    }

    /// Counts a record dropped on purpose (it is not sent anywhere).
    pub fn drop_record(&mut self) {
        self.dropped += 1;
    }

    /// Takes the count of records dropped on purpose since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// Takes what was emitted: default records, named outputs and dead letters.
    #[allow(clippy::type_complexity)]
    pub fn take(&mut self) -> (Batch, Vec<(&'static str, Batch)>, Vec<(String, Payload)>) {
        (
            std::mem::take(&mut self.records),
            std::mem::take(&mut self.named),
            std::mem::take(&mut self.dead),
        )
    }
}

/// A component that turns records into records. Synchronous, so it is tested without tokio.
pub trait Transform: Send {
    /// Handles one batch.
    fn process(&mut self, batch: Batch, out: &mut Emitter);

    /// Handles one batch that other components read too. The default copies it for
    /// [`Transform::process`]; a transform that only reads records (or keeps few) overrides
    /// this and clones just what it emits.
    fn process_shared(&mut self, batch: &[Record], out: &mut Emitter) {
        self.process(batch.to_vec(), out);
    }

    /// The state to keep in a checkpoint (everything needed to go on after a restart as if
    /// nothing happened), or `None` for a stateless transform.
    fn snapshot(&self) -> Option<serde_json::Value> {
        None
    }

    /// Restores the state a checkpoint kept, before any record arrives.
    fn restore(&mut self, _state: serde_json::Value) -> Result<(), String> {
        Ok(())
    }

    /// The keyed states it keeps ([`crate::state::KeyedState`]: groups, buffered rows, keys
    /// seen), in a fixed order. The runtime attaches each to the process's state store
    /// before [`Transform::restore`]: memory is then bounded by `[state] memory`, what does
    /// not fit goes to disk, and a checkpoint writes only what changed. A snapshot then
    /// holds what is not in them (a watermark); a keyed state not attached (tests) or
    /// attached with [`crate::state::Tracking::Full`] is kept whole in the snapshot.
    fn keyed_states(&mut self) -> Vec<&mut dyn crate::state::StateHandle> {
        Vec::new()
    }

    /// Called when the watermark of this transform's inputs (the lowest of them) moves:
    /// no record with an earlier event time should come any more; close what ends before it.
    fn on_watermark(&mut self, _watermark: i64, _out: &mut Emitter) {}

    /// Called when every input has ended, before the outputs close: emit held state.
    fn flush(&mut self, _out: &mut Emitter) {}

    /// How often [`Transform::tick`] should run, if at all.
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// Called every [`Transform::tick_interval`] (timers: periodic emits).
    fn tick(&mut self, _out: &mut Emitter) {}
}
