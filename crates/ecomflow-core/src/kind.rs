//! The three kinds of component: source, transform, sink.

/// The kind of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Produces records (`[sources.<id>]`).
    Source,
    /// Turns records into records (`[transforms.<id>]`).
    Transform,
    /// Writes records out (`[sinks.<id>]`).
    Sink,
}

impl Kind {
    /// The table name in pipeline files: `sources`, `transforms` or `sinks`.
    pub fn table(self) -> &'static str {
        match self {
            Kind::Source => "sources",
            Kind::Transform => "transforms",
            Kind::Sink => "sinks",
        }
    }

    /// The singular noun: `source`, `transform` or `sink`.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Source => "source",
            Kind::Transform => "transform",
            Kind::Sink => "sink",
        }
    }
}
