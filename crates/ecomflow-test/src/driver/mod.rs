//! Runs a loaded pipeline step by step, on one thread and without a clock of its own: the
//! test says when records arrive, when watermarks move, when the processing clock ticks and
//! when the pipeline restarts. Sources are not run (the test's records replace what they
//! read, or go straight into a component's input) and sinks are not run unless the test asks
//! (what they are given is kept, to be checked, as the rows of their table when they write
//! one); every message is handled before a step returns, so a restart always happens at a
//! checkpoint. A source that keeps state per partition (Kafka) gets one instance of every
//! transform per partition, as in a run; transforms handle messages with the runtime's own
//! node (see `flow.rs`). This file holds the pipeline's nodes
//! and what the steps ask of them; `steps.rs` the steps, `outputs.rs` what is read back.

mod flow;
mod outputs;
mod steps;

use crate::real_sink::RealSink;
use ecomflow_core::Message;
use ecomflow_core::tokio::runtime::Runtime;
use ecomflow_core::{Batch, DeadLetter, EventTimeTracker, PartitionId, Payload, Record, Shard};
use ecomflow_core::{TableView, Transform};
use ecomflow_runtime::transform_node::TransformNode;
use ecomflow_runtime::transform_shards::Instances;
use ecomflow_runtime::watermarks::carrying_event_time;
use ecomflow_runtime::{Built, InputRef, Pipeline};
use flow::output_name;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The dead-letter output's name in `expect`.
pub const DEAD_LETTER: &str = "dead_letter";

/// The topic of a test's partitions (a test names a partition by its number).
const TOPIC: &str = "test";

/// The most times one `advance` step fires a transform's timer.
pub const MAX_TICKS: u128 = 100_000;

enum Role {
    Source {
        tracker: Option<EventTimeTracker>,
        /// Each partition has its own transform instances (a Kafka source).
        partitioned: bool,
        /// The partitions that have sent, in that order (partitioned sources).
        assigned: Vec<i32>,
    },
    Transform {
        node: TransformNode,
    },
    Sink {
        view: Option<TableView>,
        /// Running for real, when the test asked for it.
        real: Option<RealSink>,
    },
}

struct Node {
    id: String,
    path: Arc<str>,
    inputs: Vec<InputRef>,
    ports: Vec<&'static str>,
    role: Role,
}

/// A pipeline under test.
pub struct Driver {
    nodes: Vec<Node>,
    /// Readers of each output (`id` or `id.port`): node and input position.
    readers: HashMap<String, Vec<(usize, usize)>>,
    /// Everything each output emitted (a sink's: what it was given), each record with the
    /// number of the partition it came from, and how much of it an `expect` has checked.
    emitted: HashMap<String, (Vec<(i32, Record)>, usize)>,
    /// Messages under way: the reading node, and the message on one of its inputs.
    queue: VecDeque<(usize, Message)>,
    /// The states a restart resumes partitions' instances from, by transform path and
    /// partition number.
    restored: HashMap<(String, i32), serde_json::Value>,
    /// The processing clock, from the start of the test.
    clock: Duration,
    /// When the test started, on the clock that idle timeouts are measured by.
    start: Instant,
    /// When the transforms' timers started (the test's start, or its last restart): a timer
    /// fires every interval from then, as a run's ticker does from its start.
    timers_from: Duration,
    /// Where real sinks run, when the test has any.
    runtime: Option<Runtime>,
    /// The first error of a real sink or of a partition's state, for the step that caused it.
    failure: Option<String>,
    /// The pipeline has a `[checkpoint]` table: a restart resumes its state.
    keeps_state: bool,
    /// Every source has ended (and the real sinks have finished).
    ended: bool,
}

impl Driver {
    /// The pipeline ready for its first step, the sinks in `real` running for real (opened
    /// now: an error says why one cannot open).
    pub fn new(pipeline: Pipeline, real: &[String]) -> Result<Driver, String> {
        let runtime = match real.is_empty() {
            true => None,
            false => Some(
                ecomflow_core::tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start a runtime for the real sinks: {e}"))?,
            ),
        };
        let keeps_state = pipeline.checkpoint.is_some();
        let admissions = pipeline.admissions.clone();
        let timed = carrying_event_time(&pipeline.components);
        let mut readers: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
        let mut emitted = HashMap::new();
        let mut nodes = Vec::new();
        for (at, c) in pipeline.components.into_iter().enumerate() {
            let path: Arc<str> = c.path().into();
            for (position, input) in c.inputs.iter().enumerate() {
                readers
                    .entry(output_name(&input.component, input.port.as_deref()))
                    .or_default()
                    .push((at, position));
            }
            emitted.insert(c.id.clone(), (Vec::new(), 0));
            for port in c.plugin.outputs {
                emitted.insert(output_name(&c.id, Some(port)), (Vec::new(), 0));
            }
            let role = match c.built {
                Built::Source(source) => Role::Source {
                    tracker: c
                        .event_time
                        .as_ref()
                        .and_then(|config| ecomflow_time::tracker(config).ok()),
                    partitioned: source.capabilities().partitioned_state,
                    assigned: Vec::new(),
                },
                Built::Transform(transform) => Role::Transform {
                    node: TransformNode::new(
                        path.clone(),
                        Instances::new(
                            transform,
                            c.inputs
                                .iter()
                                .map(|i| timed.contains(&i.component))
                                .collect(),
                            c.rebuild,
                        ),
                    ),
                },
                Built::Sink(mut sink) => {
                    let view = sink.as_table().map(|t| t.view());
                    let real = match &runtime {
                        Some(rt) if real.contains(&c.id) => {
                            let opened = RealSink::open(rt, path.clone(), sink)?;
                            // A `storable` transform refuses what it says, as in a run.
                            admissions.publish(&c.id, opened.admission());
                            Some(opened)
                        }
                        _ => None,
                    };
                    Role::Sink { view, real }
                }
            };
            nodes.push(Node {
                path,
                id: c.id,
                inputs: c.inputs,
                ports: c.plugin.outputs.to_vec(),
                role,
            });
        }
        emitted.insert(DEAD_LETTER.to_string(), (Vec::new(), 0));
        Ok(Driver {
            nodes,
            readers,
            emitted,
            queue: VecDeque::new(),
            restored: HashMap::new(),
            clock: Duration::ZERO,
            start: Instant::now(),
            timers_from: Duration::ZERO,
            runtime,
            failure: None,
            keeps_state,
            ended: false,
        })
    }

    /// Whether a restart resumes the pipeline's state (it has a `[checkpoint]` table).
    pub fn keeps_state(&self) -> bool {
        self.keeps_state
    }

    /// Whether source `id` reads event time.
    pub fn reads_event_time(&self, id: &str) -> bool {
        self.nodes.iter().any(|n| {
            n.id == id
                && matches!(
                    n.role,
                    Role::Source {
                        tracker: Some(_),
                        ..
                    }
                )
        })
    }

    /// The source that keeps state per partition feeding `id` (or `id` itself), if any.
    fn partitioned_source_of(&self, id: &str) -> Option<usize> {
        let mut todo = vec![id.to_string()];
        let mut seen = Vec::new();
        while let Some(id) = todo.pop() {
            let at = self.nodes.iter().position(|n| n.id == id)?;
            if seen.contains(&at) {
                continue;
            }
            seen.push(at);
            match &self.nodes[at].role {
                Role::Source {
                    partitioned: true, ..
                } => return Some(at),
                Role::Source { .. } => {}
                _ => todo.extend(self.nodes[at].inputs.iter().map(|i| i.component.clone())),
            }
        }
        None
    }

    /// Whether records sent to `id` (or watermarks of source `id`) can name a partition: a
    /// source that keeps state per partition feeds it.
    pub fn has_partitions(&self, id: &str) -> bool {
        self.partitioned_source_of(id).is_some()
    }

    /// The first error of a real sink (or of a partition's state) since the last call.
    pub fn failure(&mut self) -> Option<String> {
        self.failure.take()
    }

    /// The ids of the sources, in file order.
    pub fn sources(&self) -> Vec<String> {
        self.ids(|r| matches!(r, Role::Source { .. }))
    }

    /// The sinks' ids, in file order.
    pub fn sinks(&self) -> Vec<String> {
        self.ids(|r| matches!(r, Role::Sink { .. }))
    }

    fn ids(&self, keep: impl Fn(&Role) -> bool) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| keep(&n.role))
            .map(|n| n.id.clone())
            .collect()
    }

    /// Finishes the real sinks (they write what they hold and close).
    pub fn finish(&mut self) -> Result<(), String> {
        if !self.ended {
            self.each_real_sink(RealSink::finish);
        }
        match self.failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Calls `step` on every real sink, keeping its dead letters and its first error.
    fn each_real_sink(
        &mut self,
        step: fn(&mut RealSink, &Runtime) -> Result<Vec<DeadLetter>, String>,
    ) {
        let Some(rt) = &self.runtime else { return };
        let mut letters = Vec::new();
        for node in &mut self.nodes {
            if let Role::Sink {
                real: Some(real), ..
            } = &mut node.role
            {
                match step(real, rt) {
                    Ok(l) => letters.extend(l),
                    Err(e) => {
                        self.failure.get_or_insert(e);
                    }
                }
            }
        }
        self.keep_letters(letters);
    }

    /// Now on the test's processing clock.
    fn now(&self) -> Instant {
        self.start + self.clock
    }

    fn node(&self, id: &str) -> Result<usize, String> {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .ok_or_else(|| format!("the pipeline has no component `{id}`"))
    }

    fn source(&self, id: &str) -> Result<usize, String> {
        match self.nodes.iter().position(|n| n.id == id) {
            Some(at) if matches!(self.nodes[at].role, Role::Source { .. }) => Ok(at),
            Some(_) => Err(format!("`{id}` is not a source")),
            None => Err(format!("the pipeline has no source `{id}`")),
        }
    }

    /// The sources with event time that feed `id`, directly or not.
    fn timed_sources_of(&self, id: &str) -> Vec<usize> {
        let mut found = Vec::new();
        let mut todo = vec![id.to_string()];
        let mut seen = Vec::new();
        while let Some(id) = todo.pop() {
            let Some(at) = self.nodes.iter().position(|n| n.id == id) else {
                continue;
            };
            if seen.contains(&at) {
                continue;
            }
            seen.push(at);
            match &self.nodes[at].role {
                Role::Source {
                    tracker: Some(_), ..
                } => found.push(at),
                _ => todo.extend(self.nodes[at].inputs.iter().map(|i| i.component.clone())),
            }
        }
        found.sort_unstable();
        found
    }

    /// The shard of `partition` of source `at`: the whole one unless the source keeps state
    /// per partition, whose first use assigns it downstream.
    fn shard_of(&mut self, at: usize, partition: i32) -> Shard {
        let path = self.nodes[at].path.clone();
        let Role::Source {
            partitioned: true,
            assigned,
            ..
        } = &mut self.nodes[at].role
        else {
            return Shard::Whole;
        };
        let id = Arc::new(PartitionId {
            source: path,
            topic: TOPIC.into(),
            number: partition,
        });
        if !assigned.contains(&partition) {
            assigned.push(partition);
            // Every transform holds the partition before its first records arrive, however
            // far downstream they are sent.
            let states = Arc::new(self.restored_states(partition));
            self.broadcast(at, |input| Message::Assign {
                input,
                partition: id.clone(),
                states: states.clone(),
            });
            self.settle();
        }
        Shard::Partition(id)
    }

    /// The states a restart resumes `partition`'s instances from, by transform path.
    fn restored_states(&self, partition: i32) -> BTreeMap<String, serde_json::Value> {
        self.restored
            .iter()
            .filter(|((_, number), _)| *number == partition)
            .map(|((path, _), state)| (path.clone(), state.clone()))
            .collect()
    }

    /// Whether records can be sent to `id` (by its input `from`): `Ok(true)` for a source,
    /// `Ok(false)` for another component, or why not.
    pub fn check_send(&self, id: &str, from: Option<&str>) -> Result<bool, String> {
        let at = self.node(id)?;
        if matches!(self.nodes[at].role, Role::Source { .. }) {
            return match from {
                Some(_) => Err(format!(
                    "`{id}` is a source: `from` goes with a transform or sink"
                )),
                None => Ok(true),
            };
        }
        let input = self.input_of(at, from)?;
        let upstream = &self.nodes[at].inputs[input].component;
        if self.timed_sources_of(upstream).len() > 1 {
            return Err(format!(
                "records into `{id}` by `{upstream}` could come from several sources with event \
                 time: send them at one of those"
            ));
        }
        Ok(false)
    }

    /// The position of the input of node `at` named by `from` (an id or `id.port`).
    fn input_of(&self, at: usize, from: Option<&str>) -> Result<usize, String> {
        let inputs = &self.nodes[at].inputs;
        match from {
            Some(from) => inputs
                .iter()
                .position(|i| i.to_string() == from)
                .ok_or_else(|| {
                    let names: Vec<String> = inputs.iter().map(ToString::to_string).collect();
                    format!(
                        "`{}` has no input `{from}` (its inputs: {})",
                        self.nodes[at].id,
                        names.join(", ")
                    )
                }),
            None if inputs.len() == 1 => Ok(0),
            None => Err(format!(
                "`{}` has several inputs: say which one the records come in by with `from`",
                self.nodes[at].id
            )),
        }
    }
}
