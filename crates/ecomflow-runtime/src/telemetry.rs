//! What a whole run shows while it runs: every component's figures (see
//! `ecomflow_core::telemetry`), the edges between them with how full each input channel is,
//! the checkpoints, and whether the run is starting, running or over. The HTTP server and
//! the terminal's live view read it; the run fills it in.

use crate::pipeline::{Component, Pipeline};
use ecomflow_core::channel::WeakInputSender;
use ecomflow_core::{ComponentTelemetry, Counters, Kind, Message};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Checkpoints the history keeps (the dashboard draws them).
const HISTORY: usize = 60;

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Components are being started (a checkpoint read, state restored).
    Starting,
    /// Every component runs.
    Running,
    /// Every source ended and everything was written.
    Finished,
    /// A component failed and the run stopped.
    Failed,
}

impl RunState {
    /// Lower case, for JSON and logs.
    pub fn name(self) -> &'static str {
        match self {
            RunState::Starting => "starting",
            RunState::Running => "running",
            RunState::Finished => "finished",
            RunState::Failed => "failed",
        }
    }
}

/// One edge of the graph: `from`'s output (or its named output `port`) read by `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The writing component's path.
    pub from: Arc<str>,
    /// Its named output, or `None` for the default one.
    pub port: Option<String>,
    /// The reading component's path.
    pub to: Arc<str>,
}

/// One completed checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointRecord {
    /// Its id.
    pub id: u64,
    /// When it completed (milliseconds since the epoch).
    pub completed_at: i64,
    /// From the request to every component having made it durable.
    pub duration: Duration,
    /// The size of what it kept (bytes of JSON).
    pub size: u64,
}

/// The run's checkpoints.
#[derive(Debug, Default)]
pub struct CheckpointStats {
    history: Mutex<VecDeque<CheckpointRecord>>,
    failures: AtomicU64,
}

impl CheckpointStats {
    /// A checkpoint completed.
    pub fn completed(&self, record: CheckpointRecord) {
        if let Ok(mut h) = self.history.lock() {
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(record);
        }
    }

    /// A checkpoint could not be kept.
    pub fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Checkpoints that could not be kept.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The last completed checkpoint.
    pub fn last(&self) -> Option<CheckpointRecord> {
        self.history.lock().ok()?.back().copied()
    }

    /// The last completed checkpoints, oldest first.
    pub fn history(&self) -> Vec<CheckpointRecord> {
        self.history
            .lock()
            .map(|h| h.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// What a whole run shows while it runs.
#[derive(Debug)]
pub struct RunTelemetry {
    /// Every component in file order, the dead-letter output last.
    pub components: Vec<Arc<ComponentTelemetry>>,
    /// Every edge of the graph.
    pub edges: Vec<Edge>,
    /// The checkpoints.
    pub checkpoints: CheckpointStats,
    /// When the run was built.
    pub started: SystemTime,
    /// Each reading component's input channel (a weak handle: it does not keep it open).
    inputs: Mutex<Vec<(Arc<str>, WeakInputSender<Message>)>>,
    state: AtomicU8,
}

/// The batches waiting in one component's input channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelFill {
    /// The reading component's path.
    pub component: Arc<str>,
    /// Batches waiting.
    pub batches: usize,
    /// Batches it holds before its writers wait.
    pub capacity: usize,
    /// Bytes of records waiting.
    pub bytes: usize,
    /// Bytes it holds before its writers wait.
    pub byte_capacity: usize,
}

impl RunTelemetry {
    /// The figures of `pipeline` before it runs: every counter at zero, sinks not connected.
    pub fn new(pipeline: &Pipeline) -> Arc<RunTelemetry> {
        let of = |c: &Component, path: String| {
            let t = ComponentTelemetry::new(
                path.into(),
                c.kind,
                c.plugin.name,
                Arc::new(Counters::default()),
            );
            t.set_ready(c.kind != Kind::Sink);
            Arc::new(t)
        };
        let mut components: Vec<_> = pipeline
            .components
            .iter()
            .map(|c| of(c, c.path()))
            .collect();
        // The dead-letter output is named by its table, as in the end-of-run table.
        let dead_letter = &pipeline.dead_letter;
        components.push(of(dead_letter, dead_letter.id.clone()));
        let path_of = |id: &str| {
            pipeline
                .components
                .iter()
                .zip(&components)
                .find(|(c, _)| c.id == id)
                .map(|(_, t)| t.path.clone())
        };
        let edges = pipeline
            .components
            .iter()
            .zip(&components)
            .flat_map(|(c, to)| {
                c.inputs.iter().filter_map(|i| {
                    Some(Edge {
                        from: path_of(&i.component)?,
                        port: i.port.clone(),
                        to: to.path.clone(),
                    })
                })
            })
            .collect();
        Self::of(components, edges)
    }

    /// The figures of a run with no components (for tests of one part).
    pub fn detached() -> Arc<RunTelemetry> {
        Self::of(Vec::new(), Vec::new())
    }

    fn of(components: Vec<Arc<ComponentTelemetry>>, edges: Vec<Edge>) -> Arc<RunTelemetry> {
        Arc::new(RunTelemetry {
            components,
            edges,
            checkpoints: CheckpointStats::default(),
            started: SystemTime::now(),
            inputs: Mutex::new(Vec::new()),
            state: AtomicU8::new(RunState::Starting as u8),
        })
    }

    /// The component at `path`.
    pub fn component(&self, path: &str) -> Option<&Arc<ComponentTelemetry>> {
        self.components.iter().find(|c| &*c.path == path)
    }

    /// Where the run is.
    pub fn state(&self) -> RunState {
        match self.state.load(Ordering::Relaxed) {
            0 => RunState::Starting,
            1 => RunState::Running,
            2 => RunState::Finished,
            _ => RunState::Failed,
        }
    }

    /// The run moved on.
    pub fn set_state(&self, state: RunState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    /// Why the run is not ready (empty when it is): it is not running, a sink has not
    /// connected, a Kafka source waits for its partitions, a component retries an outage.
    pub fn not_ready(&self) -> Vec<String> {
        let state = self.state();
        if state != RunState::Running {
            return vec![format!("the run is {}", state.name())];
        }
        self.components
            .iter()
            .filter_map(|c| Some(format!("{}: {}", c.path, c.not_ready()?)))
            .collect()
    }

    /// Watches `component`'s input channel.
    pub(crate) fn watch_input(&self, component: Arc<str>, channel: WeakInputSender<Message>) {
        if let Ok(mut inputs) = self.inputs.lock() {
            inputs.push((component, channel));
        }
    }

    /// How full every input channel is now (channels already closed are left out).
    pub fn channels(&self) -> Vec<ChannelFill> {
        let Ok(inputs) = self.inputs.lock() else {
            return Vec::new();
        };
        inputs
            .iter()
            .filter_map(|(component, weak)| {
                let fill = weak.fill()?;
                Some(ChannelFill {
                    component: component.clone(),
                    batches: fill.messages,
                    capacity: fill.message_capacity,
                    bytes: fill.bytes,
                    byte_capacity: fill.byte_capacity,
                })
            })
            .collect()
    }
}

/// Now, in milliseconds since the epoch.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
