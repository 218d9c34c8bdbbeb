//! Runs a loaded pipeline step by step, on one thread and without a clock of its own: the
//! test says when records arrive, when watermarks move, when the processing clock ticks and
//! when the pipeline restarts. Sources are not run (the test's records replace what they
//! read, or go straight into a component's input) and sinks are not run unless the test asks
//! (what they are given is kept, to be checked, as the rows of their table when they write
//! one); every message is handled before a step returns, so a restart always happens at a
//! checkpoint. A source that keeps state per partition (Kafka) gets one instance of every
//! transform per partition, as in a run (see `flow.rs`).

mod flow;

use crate::real_sink::RealSink;
use ecomflow_core::tokio::runtime::Runtime;
use ecomflow_core::{Batch, DeadLetter, EventTimeTracker, PartitionId, Payload, Record, Shard};
use ecomflow_core::{TableView, Transform};
use ecomflow_runtime::transform_shards::Instances;
use ecomflow_runtime::watermarks::carrying_event_time;
use ecomflow_runtime::{Built, InputRef, Pipeline};
use flow::{Message, output_name};
use std::collections::{HashMap, VecDeque};
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
        instances: Instances,
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
    queue: VecDeque<(usize, usize, Message)>,
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

/// A state through the checkpoint's JSON text and back, as a restart reads it.
fn through_json(path: &str, state: serde_json::Value) -> Result<serde_json::Value, String> {
    let text = serde_json::to_string(&state)
        .map_err(|e| format!("{path}: its state cannot be kept: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: its state cannot be read back: {e}"))
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
                        .and_then(|config| EventTimeTracker::new(config).ok()),
                    partitioned: source.partitioned_state(),
                    assigned: Vec::new(),
                },
                Built::Transform(transform) => Role::Transform {
                    instances: Instances::new(
                        transform,
                        c.inputs
                            .iter()
                            .map(|i| timed.contains(&i.component))
                            .collect(),
                        c.rebuild,
                    ),
                },
                Built::Sink(sink) => {
                    let view = sink.table_view();
                    let real = match &runtime {
                        Some(rt) if real.contains(&c.id) => {
                            Some(RealSink::open(rt, path.clone(), sink)?)
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
            self.broadcast(at, Message::Assign(id.clone()));
            self.settle();
        }
        Shard::Partition(id)
    }

    /// Sends `records` as source `id`'s next batch from `partition` (with `undecodable`, a
    /// line and why, going to the dead letters as the source would send them), then moves its
    /// watermark. Into a transform or sink, the records come in by its input `from` (needed
    /// when it has several); those with the event-time field of the one source with event
    /// time upstream of it are stamped by that source, whose watermark moves as if it had sent
    /// them.
    pub fn send(
        &mut self,
        id: &str,
        from: Option<&str>,
        partition: i32,
        mut records: Batch,
        undecodable: Vec<(String, Vec<u8>)>,
    ) -> Result<(), String> {
        let at = self.node(id)?;
        let into = match &self.nodes[at].role {
            Role::Source { .. } => None,
            _ => Some(self.input_of(at, from)?),
        };
        let stamping = match into {
            None => Some(at),
            Some(input) => {
                let upstream = self.nodes[at].inputs[input].component.clone();
                match self.timed_sources_of(&upstream).as_slice() {
                    [] => None,
                    [one] => Some(*one),
                    many => {
                        let names: Vec<&str> =
                            many.iter().map(|n| self.nodes[*n].id.as_str()).collect();
                        return Err(format!(
                            "the records could come from several sources with event time ({}): \
                             send them at one of those",
                            names.join(", ")
                        ));
                    }
                }
            }
        };
        let shard = match self.partitioned_source_of(id) {
            Some(source) => self.shard_of(source, partition),
            None => Shard::Whole,
        };
        let mut dead: Vec<(String, Payload)> = undecodable
            .into_iter()
            .map(|(reason, line)| (reason, Payload::Raw(line)))
            .collect();
        let mut watermark = None;
        let now = self.now();
        let slot = usize::try_from(partition).map_err(|_| "`partition` is 0 or more")?;
        if let Some(source) = stamping
            && let Role::Source {
                tracker: Some(tracker),
                partitioned,
                ..
            } = &mut self.nodes[source].role
        {
            if into.is_none() {
                tracker.stamp_at(slot, &mut records, &mut dead, now);
            } else {
                // Into a component's input: a record that has the source's event-time field
                // is stamped from it; one without goes in without an event time.
                let field = tracker.field();
                let mut stamped = Vec::with_capacity(records.len());
                for record in records {
                    let mut one = vec![record];
                    if one[0].get(field).is_some() {
                        tracker.stamp_at(slot, &mut one, &mut dead, now);
                    }
                    stamped.extend(one);
                }
                records = stamped;
            }
            // A partition of a partitioned source has a watermark of its own.
            watermark = match partitioned {
                true => tracker.advance_partition(slot),
                false => tracker.advance_at(now),
            };
        }
        let blamed = self.nodes[stamping.unwrap_or(at)].path.clone();
        self.dead_letters(&blamed, dead);
        match into {
            None => self.emit(at, None, &shard, records),
            Some(input) => {
                self.queue
                    .push_back((at, input, Message::Batch(shard.clone(), records)))
            }
        }
        if let (Some(source), Some(w)) = (stamping, watermark) {
            self.broadcast(source, Message::Watermark(shard, w));
        }
        self.settle();
        Ok(())
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

    /// Moves the watermark of source `id` (every source with event time when `None`) to
    /// `at` (microseconds since the epoch). For a source that keeps state per partition:
    /// of `partition`, or of every partition that has sent.
    pub fn watermark(
        &mut self,
        id: Option<&str>,
        partition: Option<i32>,
        at: i64,
    ) -> Result<(), String> {
        let sources: Vec<usize> = match id {
            Some(id) => vec![self.source(id)?],
            None => (0..self.nodes.len())
                .filter(|&n| {
                    matches!(
                        self.nodes[n].role,
                        Role::Source {
                            tracker: Some(_),
                            ..
                        }
                    )
                })
                .collect(),
        };
        if sources.is_empty() {
            return Err("no source of the pipeline reads event time".into());
        }
        for s in sources {
            let Role::Source {
                partitioned,
                assigned,
                ..
            } = &self.nodes[s].role
            else {
                continue;
            };
            let partitions = match (partitioned, partition) {
                (true, Some(p)) => vec![p],
                (true, None) => assigned.clone(),
                (false, None) => vec![0],
                (false, Some(_)) => {
                    return Err(format!(
                        "`{}` keeps no state per partition: it has one watermark, leave out \
                         `partition`",
                        self.nodes[s].id
                    ));
                }
            };
            for p in partitions {
                let shard = self.shard_of(s, p);
                self.broadcast(s, Message::Watermark(shard, at));
            }
        }
        self.settle();
        Ok(())
    }

    /// Moves the processing clock by `by`: each transform's timer fires once for every
    /// interval of it that ends in that time (at most [`MAX_TICKS`] times a step).
    pub fn advance(&mut self, by: Duration) -> Result<(), String> {
        let from = self.clock - self.timers_from;
        let to = self
            .clock
            .checked_add(by)
            .filter(|t| self.start.checked_add(*t).is_some())
            .ok_or("the processing clock cannot go that far")?;
        self.clock = to;
        let to = to - self.timers_from;
        for at in 0..self.nodes.len() {
            let Role::Transform { instances } = &mut self.nodes[at].role else {
                continue;
            };
            let Some(every) = instances
                .whole
                .transform
                .tick_interval()
                .filter(|d| !d.is_zero())
            else {
                continue;
            };
            let fired = to.as_nanos() / every.as_nanos() - from.as_nanos() / every.as_nanos();
            if fired > MAX_TICKS {
                return Err(format!(
                    "`{}`'s timer would fire {fired} times: move the clock in steps of at most \
                     {MAX_TICKS} of its intervals",
                    self.nodes[at].id
                ));
            }
            for _ in 0..fired {
                self.tick(at);
            }
        }
        Ok(())
    }

    /// Every source ends: the watermark passes everything, transforms flush, and the real
    /// sinks finish (an error of theirs belongs to this step).
    pub fn end(&mut self) -> Result<(), String> {
        for at in 0..self.nodes.len() {
            if matches!(self.nodes[at].role, Role::Source { .. }) {
                self.broadcast(at, Message::End);
            }
        }
        self.settle();
        self.each_real_sink(RealSink::finish);
        self.ended = true;
        match self.failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Stops at a checkpoint and starts again from it: each transform's state (the whole
    /// shard's and each partition's) goes through the checkpoint's JSON into the same
    /// transform of `fresh` (the pipeline built again), the partitions that had sent are
    /// assigned again, and watermarks start afresh, as after a restart.
    pub fn restart(&mut self, fresh: Pipeline, real: &[String]) -> Result<(), String> {
        self.each_real_sink(RealSink::checkpoint);
        if let Some(e) = self.failure() {
            return Err(e);
        }
        let mut next = Driver::new(fresh, real)?;
        for (old, new) in self.nodes.iter().zip(next.nodes.iter_mut()) {
            // Partitions are assigned again below, each transform resuming its state.
            if let (Role::Transform { instances: kept }, Role::Transform { instances }) =
                (&old.role, &mut new.role)
            {
                let (whole, partitions) = kept.snapshot();
                if let Some(state) = whole {
                    let state = through_json(&old.path, state)?;
                    restore(instances.whole.transform.as_mut(), state, &old.path)?;
                }
                for (partition, state) in partitions {
                    let state = through_json(&old.path, state)?;
                    next.restored
                        .insert((old.path.to_string(), partition.number), state);
                }
            }
        }
        let assigned: Vec<(usize, Vec<i32>)> = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(at, n)| match &n.role {
                Role::Source {
                    partitioned: true,
                    assigned,
                    ..
                } => Some((at, assigned.clone())),
                _ => None,
            })
            .collect();
        next.emitted = std::mem::take(&mut self.emitted);
        next.clock = self.clock;
        next.start = self.start;
        next.timers_from = self.clock;
        *self = next;
        for (at, partitions) in assigned {
            for p in partitions {
                self.shard_of(at, p);
            }
        }
        self.settle();
        match self.failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// What `output` (`id`, `id.port`, or `dead_letter`) emitted since the last call for it,
    /// or `None` when the pipeline has no such output. For a sink that writes a table: the
    /// rows its table holds now (read back from its database when it runs for real).
    pub fn take(&mut self, output: &str) -> Result<Option<Vec<Record>>, String> {
        if let Some(rows) = self.real_rows(output)? {
            return Ok(Some(rows));
        }
        let view = self.nodes.iter().find_map(|n| match &n.role {
            Role::Sink {
                view: Some(view), ..
            } if n.id == output => Some(view.clone()),
            _ => None,
        });
        let Some((records, seen)) = self.emitted.get_mut(output) else {
            return Ok(None);
        };
        if let Some(view) = view {
            return Ok(Some(view.table(records)));
        }
        let new = Driver::records_from(records, *seen);
        *seen = records.len();
        Ok(Some(new))
    }

    /// The rows of real sink `id`'s table, read back from its database; `None` when `id` is
    /// not a real sink or writes no table.
    fn real_rows(&mut self, id: &str) -> Result<Option<Vec<Record>>, String> {
        let Some(rt) = &self.runtime else {
            return Ok(None);
        };
        let real = self.nodes.iter_mut().find_map(|n| match &mut n.role {
            Role::Sink {
                real: Some(real), ..
            } if n.id == id => Some(real),
            _ => None,
        });
        let Some(real) = real else {
            return Ok(None);
        };
        let (rows, letters) = real.rows(rt)?;
        self.keep_letters(letters);
        Ok(rows)
    }

    /// Whether `output` names something `take` can read.
    pub fn has_output(&self, output: &str) -> bool {
        self.emitted.contains_key(output)
    }

    /// The outputs `take` can read, for an error message.
    pub fn outputs(&self) -> Vec<String> {
        let mut names: Vec<String> = self.emitted.keys().cloned().collect();
        names.sort();
        names
    }
}

fn restore(
    transform: &mut dyn Transform,
    state: serde_json::Value,
    path: &str,
) -> Result<(), String> {
    transform
        .restore(state)
        .map_err(|e| format!("{path}: cannot restore its state: {e}"))
}
