//! ecomflow-runtime: loads pipeline files (with every error collected and located), checks
//! the component graph, and runs it on tokio.

pub mod channels_config;
mod checkpoint;
pub mod diagnostic;
pub mod graph;
mod graph_check;
pub mod http_config;
mod inbox;
pub mod interpolate;
pub mod load;
mod overrides;
pub mod pipeline;
pub mod run;
mod sink_task;
mod sinks_open;
pub mod state_config;
mod state_store;
mod summary;
pub mod telemetry;
mod ticker;
pub mod transform_node;
pub mod transform_shards;
mod transform_task;
pub mod watermarks;

pub use channels_config::ChannelsConfig;
pub use diagnostic::{Diagnostic, Diagnostics};
pub use graph::{GraphFormat, render};
pub use http_config::HttpConfig;
pub use load::{LoadOptions, load};
pub use pipeline::{Built, Component, InputRef, Pipeline};
pub use run::{run, run_observed};
pub use state_config::StateConfig;
pub use summary::{ComponentSummary, RunFailure, RunSummary};
pub use telemetry::{RunState, RunTelemetry};
