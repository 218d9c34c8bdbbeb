//! What a run did, component by component: the end-of-run table, and the failure that stopped it.

/// What one component did during the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentSummary {
    /// The component path, such as `transforms.paid`.
    pub path: String,
    /// Records received from inputs.
    pub received: u64,
    /// Records sent on (or written, for sinks).
    pub sent: u64,
    /// Records sent to the dead-letter output.
    pub dead_lettered: u64,
    /// Records dropped on purpose (late records, or a named output nothing reads).
    pub dropped: u64,
}

/// What the whole run did, component by component (the dead-letter output last).
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// One entry per component.
    pub components: Vec<ComponentSummary>,
}

impl RunSummary {
    /// The entry of `path`.
    pub fn get(&self, path: &str) -> Option<&ComponentSummary> {
        self.components.iter().find(|c| c.path == path)
    }
}

impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<32} {:>12} {:>12} {:>14} {:>10}",
            "component", "received", "sent", "dead-lettered", "dropped"
        )?;
        for c in &self.components {
            writeln!(
                f,
                "{:<32} {:>12} {:>12} {:>14} {:>10}",
                c.path, c.received, c.sent, c.dead_lettered, c.dropped
            )?;
        }
        Ok(())
    }
}

/// The run stopped because components failed.
#[derive(Debug, thiserror::Error)]
#[error("{}", .failures.iter().map(|(c, e)| format!("{c}: {e}")).collect::<Vec<_>>().join("\n"))]
pub struct RunFailure {
    /// Each failed component and its error.
    pub failures: Vec<(String, String)>,
    /// What the run did before it stopped.
    pub summary: RunSummary,
}
