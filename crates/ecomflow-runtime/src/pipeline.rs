//! A loaded pipeline: every component built and every input resolved, ready to run or draw.

use ecomflow_core::{EventTimeConfig, Kind, Plugin, Sink, Source, Transform};

/// An input of a transform or sink: a component id and, optionally, one of its named outputs
/// (`"sales.late"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRef {
    /// The upstream component's id.
    pub component: String,
    /// The named output, or `None` for the default one.
    pub port: Option<String>,
}

impl InputRef {
    /// Parses `id` or `id.port`.
    pub fn parse(s: &str) -> InputRef {
        match s.split_once('.') {
            Some((c, p)) => InputRef {
                component: c.to_string(),
                port: Some(p.to_string()),
            },
            None => InputRef {
                component: s.to_string(),
                port: None,
            },
        }
    }
}

impl std::fmt::Display for InputRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.port {
            Some(p) => write!(f, "{}.{p}", self.component),
            None => f.write_str(&self.component),
        }
    }
}

/// Builds a fresh instance of a transform, from the options it was declared with (one per
/// source partition).
pub type Rebuild = std::sync::Arc<dyn Fn() -> Result<Box<dyn Transform>, String> + Send + Sync>;

/// A built component, ready to run.
pub enum Built {
    /// A source.
    Source(Box<dyn Source>),
    /// A transform.
    Transform(Box<dyn Transform>),
    /// A sink.
    Sink(Box<dyn Sink>),
}

/// One component of the pipeline.
pub struct Component {
    /// Its id, unique in the pipeline.
    pub id: String,
    /// Its kind.
    pub kind: Kind,
    /// The plugin that built it.
    pub plugin: &'static Plugin,
    /// What it reads (empty for sources).
    pub inputs: Vec<InputRef>,
    /// The built component.
    pub built: Built,
    /// Where a source's records keep their event time, if they have one.
    pub event_time: Option<EventTimeConfig>,
    /// How to build another instance of a transform (one per source partition).
    pub rebuild: Option<Rebuild>,
    /// A sink that writes in the checkpoint's transaction: the pipeline keeps its checkpoints
    /// in the database it writes to (see `load/checkpoint_links.rs`).
    pub in_checkpoint: bool,
}

impl Component {
    /// The component's path as users write it: `transforms.paid`.
    pub fn path(&self) -> String {
        format!("{}.{}", self.kind.table(), self.id)
    }
}

/// A whole pipeline, checked and built.
pub struct Pipeline {
    /// Its components in file order.
    pub components: Vec<Component>,
    /// Where records that a component cannot handle go.
    pub dead_letter: Component,
    /// Checkpointing, when the pipeline has a `[checkpoint]` table.
    pub checkpoint: Option<ecomflow_core::checkpoint::CheckpointConfig>,
    /// Where `ecomflow run` serves metrics, health, the tap and the dashboard (`[http]`).
    pub http: crate::http_config::HttpConfig,
    /// How much each component's input holds (`[channels]`).
    pub channels: crate::channels_config::ChannelsConfig,
    /// How much memory keyed state takes, and where the rest goes (`[state]`).
    pub state: crate::state_config::StateConfig,
    /// Components (paths such as `transforms.sales_per_day`) that start afresh: what the last
    /// checkpoint kept for them is discarded (`ecomflow run --reset-state`).
    pub reset_state: std::collections::BTreeSet<String>,
    /// What its sinks refuse, published by each once open, read by `storable` transforms.
    pub admissions: ecomflow_core::Admissions,
}

impl std::fmt::Debug for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Component")
            .field("path", &self.path())
            .field("type", &self.plugin.name)
            .field("inputs", &self.inputs)
            .finish()
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("components", &self.components)
            .field("dead_letter", &self.dead_letter)
            .finish()
    }
}
