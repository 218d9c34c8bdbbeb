//! The three kinds of component (source, transform, sink) and what the runtime hands them,
//! one file a role.

mod dead_letter_output;
mod in_checkpoint;
mod message;
mod output;
mod sink;
mod source;
mod source_end;
mod transform;

pub use crate::telemetry::Counters;
pub use dead_letter_output::DeadLetterOutput;
pub use in_checkpoint::{CheckpointTransaction, Commit, WritesInCheckpoint};
pub use message::Message;
pub use output::{Closed, Output};
pub use sink::{Incoming, Sink, SinkContext, WritesTable};
pub use source::{Source, SourceCapabilities, SourceContext};
pub use transform::{Emitter, Transform};
