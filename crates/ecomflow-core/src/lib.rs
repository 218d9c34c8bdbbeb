//! ecomflow-core: the record type, the component traits, the plugin registry and the errors
//! that every ecomflow crate and third-party plugin shares.
//!
//! A plugin crate depends on this crate alone: it re-exports `inventory`, `serde`,
//! `schemars` and `async_trait` so the versions always match the runtime's.

pub mod admission;
pub mod batching;
pub mod byte_size;
pub mod channel;
pub mod checkpoint;
pub mod component;
pub mod dead_letter;
pub mod destination;
pub mod duration;
pub mod error;
pub mod event_time;
pub mod field;
pub mod in_flight;
pub mod kind;
pub mod partition_store;
pub mod record;
pub mod registry;
pub mod retry;
pub mod shard;
pub mod shared_store;
pub mod source_checkpoints;
pub mod table_view;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod value;
pub mod write_times;

pub use async_trait;
pub use ecomflow_state as state;
pub use inventory;
pub use schemars;
pub use serde;
pub use tokio;

pub use admission::{Admission, Admissions, Said};
pub use batching::Batching;
pub use component::{
    Counters, Emitter, Incoming, Message, Output, Sink, SinkContext, Source, SourceContext,
    Transform,
};
pub use dead_letter::{DeadLetter, Payload};
pub use destination::Destination;
pub use error::{BuildError, BuildErrorKind, ComponentError};
pub use event_time::{EventTimeConfig, EventTimeTracker};
pub use field::Field;
pub use in_flight::InFlight;
pub use record::{Batch, Record};
pub use registry::{
    BuildContext, DefaultDeadLetter, Kind, Plugin, SinkPlugin, SourcePlugin, TransformPlugin,
};
pub use retry::{RetryPolicy, Retrying};
pub use shard::{PartitionId, Shard};
pub use table_view::TableView;
pub use telemetry::ComponentTelemetry;
pub use tokio_util::sync::CancellationToken;
pub use value::Value;
