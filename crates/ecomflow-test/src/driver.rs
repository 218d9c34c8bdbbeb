//! Runs a loaded pipeline step by step, on one thread and without a clock of its own: the
//! test says when records arrive, when watermarks move, when the processing clock ticks and
//! when the pipeline restarts. Sources are not run (the test's records replace what they
//! read, or go straight into a component's input) and sinks are not run (what they are given
//! is kept, to be checked, as the rows of their table when they write one); every message is
//! handled before a step returns, so a restart always happens at a checkpoint.

use crate::real_sink::RealSink;
use ecomflow_core::tokio::runtime::Runtime;
use ecomflow_core::{
    Batch, DeadLetter, Emitter, EventTimeTracker, Payload, Record, TableView, Transform,
};
use ecomflow_runtime::watermarks::{Watermarks, carrying_event_time};
use ecomflow_runtime::{Built, InputRef, Pipeline};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The dead-letter output's name in `expect`.
pub const DEAD_LETTER: &str = "dead_letter";

enum Role {
    Source {
        tracker: Option<EventTimeTracker>,
    },
    Transform {
        transform: Box<dyn Transform>,
        watermarks: Watermarks,
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

enum Message {
    Batch(Batch),
    Watermark(i64),
    End,
}

/// A pipeline under test.
pub struct Driver {
    nodes: Vec<Node>,
    /// Readers of each output (`id` or `id.port`): node and input position.
    readers: HashMap<String, Vec<(usize, usize)>>,
    /// Everything each output emitted (a sink's: what it was given), and how much of it an
    /// `expect` has checked already.
    emitted: HashMap<String, (Vec<Record>, usize)>,
    queue: VecDeque<(usize, usize, Message)>,
    /// The processing clock, from the start of the test.
    clock: Duration,
    /// When the test started, on the clock that idle timeouts are measured by.
    start: Instant,
    /// Where real sinks run, when the test has any.
    runtime: Option<Runtime>,
    /// The first error of a real sink, for the step that caused it.
    failure: Option<String>,
}

fn output_name(id: &str, port: Option<&str>) -> String {
    match port {
        Some(p) => format!("{id}.{p}"),
        None => id.to_string(),
    }
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
                Built::Source(_) => Role::Source {
                    tracker: c
                        .event_time
                        .as_ref()
                        .and_then(|config| EventTimeTracker::new(config).ok()),
                },
                Built::Transform(transform) => Role::Transform {
                    transform,
                    watermarks: Watermarks::new(
                        c.inputs
                            .iter()
                            .map(|i| timed.contains(&i.component))
                            .collect(),
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
            clock: Duration::ZERO,
            start: Instant::now(),
            runtime,
            failure: None,
        })
    }

    /// The first error of a real sink since the last call.
    pub fn failure(&mut self) -> Option<String> {
        self.failure.take()
    }

    /// The sinks' ids, in file order.
    pub fn sinks(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| matches!(n.role, Role::Sink { .. }))
            .map(|n| n.id.clone())
            .collect()
    }

    /// Finishes the real sinks (they write what they hold and close).
    pub fn finish(&mut self) -> Result<(), String> {
        self.each_real_sink(RealSink::finish);
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
        self.real_letters(letters);
    }

    fn real_letters(&mut self, letters: Vec<DeadLetter>) {
        if let Some((kept, _)) = self.emitted.get_mut(DEAD_LETTER) {
            kept.extend(letters.iter().map(DeadLetter::to_record));
        }
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
                Role::Source { tracker: Some(_) } => found.push(at),
                _ => todo.extend(self.nodes[at].inputs.iter().map(|i| i.component.clone())),
            }
        }
        found.sort_unstable();
        found
    }

    fn source(&mut self, id: &str) -> Result<usize, String> {
        match self.nodes.iter().position(|n| n.id == id) {
            Some(at) if matches!(self.nodes[at].role, Role::Source { .. }) => Ok(at),
            Some(_) => Err(format!("`{id}` is not a source")),
            None => Err(format!("the pipeline has no source `{id}`")),
        }
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
        partition: usize,
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
        let mut dead: Vec<(String, Payload)> = undecodable
            .into_iter()
            .map(|(reason, line)| (reason, Payload::Raw(line)))
            .collect();
        let mut watermark = None;
        let now = self.now();
        if let Some(source) = stamping
            && let Role::Source {
                tracker: Some(tracker),
            } = &mut self.nodes[source].role
        {
            if into.is_none() {
                tracker.stamp_at(partition, &mut records, &mut dead, now);
            } else {
                // Into a component's input: a record that has the source's event-time field
                // is stamped from it; one without goes in without an event time.
                let field = tracker.field();
                let mut stamped = Vec::with_capacity(records.len());
                for record in records {
                    let mut one = vec![record];
                    if one[0].get(field).is_some() {
                        tracker.stamp_at(partition, &mut one, &mut dead, now);
                    }
                    stamped.extend(one);
                }
                records = stamped;
            }
            watermark = tracker.advance_at(now);
        }
        let blamed = self.nodes[stamping.unwrap_or(at)].path.clone();
        self.dead_letters(&blamed, dead);
        match into {
            None => self.emit(at, None, records),
            Some(input) => self.queue.push_back((at, input, Message::Batch(records))),
        }
        if let (Some(source), Some(w)) = (stamping, watermark) {
            self.broadcast(source, Message::Watermark(w));
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
    /// `at` (microseconds since the epoch).
    pub fn watermark(&mut self, id: Option<&str>, at: i64) -> Result<(), String> {
        let sources: Vec<usize> = match id {
            Some(id) => vec![self.source(id)?],
            None => (0..self.nodes.len())
                .filter(|&n| matches!(self.nodes[n].role, Role::Source { tracker: Some(_) }))
                .collect(),
        };
        if sources.is_empty() {
            return Err("no source of the pipeline reads event time".into());
        }
        for s in sources {
            self.broadcast(s, Message::Watermark(at));
        }
        self.settle();
        Ok(())
    }

    /// Moves the processing clock by `by`: each transform's timer fires once for every
    /// interval of it that ends in that time.
    /// A source's partition that has sent nothing for its `idle_timeout` stops holding the
    /// watermark back then.
    pub fn advance(&mut self, by: Duration) {
        let (from, to) = (self.clock, self.clock + by);
        self.clock = to;
        let now = self.now();
        for at in 0..self.nodes.len() {
            if let Role::Source {
                tracker: Some(tracker),
            } = &mut self.nodes[at].role
                && let Some(w) = tracker.advance_at(now)
            {
                self.broadcast(at, Message::Watermark(w));
            }
        }
        self.settle();
        for at in 0..self.nodes.len() {
            let Role::Transform { transform, .. } = &mut self.nodes[at].role else {
                continue;
            };
            let Some(every) = transform.tick_interval().filter(|d| !d.is_zero()) else {
                continue;
            };
            let fired = to.as_nanos() / every.as_nanos() - from.as_nanos() / every.as_nanos();
            for _ in 0..fired {
                let mut out = Emitter::default();
                if let Role::Transform { transform, .. } = &mut self.nodes[at].role {
                    transform.tick(&mut out);
                }
                self.forward(at, out);
                self.settle();
            }
        }
    }

    /// Every source ends: the watermark passes everything and transforms flush.
    pub fn end(&mut self) {
        for at in 0..self.nodes.len() {
            if matches!(self.nodes[at].role, Role::Source { .. }) {
                self.broadcast(at, Message::End);
            }
        }
        self.settle();
    }

    /// Stops at a checkpoint and starts again from it: each transform's state goes through
    /// the checkpoint's JSON into the same transform of `fresh` (the pipeline built again);
    /// watermarks start afresh, as after a restart.
    pub fn restart(&mut self, fresh: Pipeline, real: &[String]) -> Result<(), String> {
        self.each_real_sink(RealSink::checkpoint);
        if let Some(e) = self.failure() {
            return Err(e);
        }
        let mut next = Driver::new(fresh, real)?;
        for (old, new) in self.nodes.iter().zip(next.nodes.iter_mut()) {
            if let (
                Role::Transform {
                    transform: kept, ..
                },
                Role::Transform { transform, .. },
            ) = (&old.role, &mut new.role)
                && let Some(state) = kept.snapshot()
            {
                let text = serde_json::to_string(&state)
                    .map_err(|e| format!("{}: its state cannot be kept: {e}", old.path))?;
                let state = serde_json::from_str(&text)
                    .map_err(|e| format!("{}: its state cannot be read back: {e}", old.path))?;
                transform
                    .restore(state)
                    .map_err(|e| format!("{}: cannot restore its state: {e}", old.path))?;
            }
        }
        next.emitted = std::mem::take(&mut self.emitted);
        next.clock = self.clock;
        next.start = self.start;
        *self = next;
        Ok(())
    }

    /// What `output` (`id`, `id.port`, or `dead_letter`) emitted since the last call for it,
    /// or `None` when the pipeline has no such output. For a sink that writes a table: the
    /// rows its table holds now.
    pub fn take(&mut self, output: &str) -> Option<Vec<Record>> {
        let view = self.nodes.iter().find_map(|n| match &n.role {
            Role::Sink {
                view: Some(view), ..
            } if n.id == output => Some(view.clone()),
            _ => None,
        });
        let (records, seen) = self.emitted.get_mut(output)?;
        if let Some(view) = view {
            return Some(view.table(records));
        }
        let new = records[*seen..].to_vec();
        *seen = records.len();
        Some(new)
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

    fn dead_letters(&mut self, component: &Arc<str>, dead: Vec<(String, Payload)>) {
        let letters = &mut self
            .emitted
            .get_mut(DEAD_LETTER)
            .expect("the dead-letter output is always there")
            .0;
        letters.extend(dead.into_iter().map(|(reason, payload)| {
            DeadLetter {
                component: component.clone(),
                reason,
                payload,
            }
            .to_record()
        }));
    }

    /// Keeps `records` as output `port` of node `at` and sends them to its readers.
    fn emit(&mut self, at: usize, port: Option<&str>, records: Batch) {
        let name = output_name(&self.nodes[at].id, port);
        if let Some(readers) = self.readers.get(&name) {
            for &(reader, input) in readers {
                self.queue
                    .push_back((reader, input, Message::Batch(records.clone())));
            }
        }
        if let Some((kept, _)) = self.emitted.get_mut(&name) {
            kept.extend(records);
        }
    }

    /// Sends a watermark or an end to the readers of every output of node `at`.
    fn broadcast(&mut self, at: usize, message: Message) {
        let node = &self.nodes[at];
        let names = std::iter::once(output_name(&node.id, None))
            .chain(node.ports.iter().map(|p| output_name(&node.id, Some(p))));
        let readers: Vec<(usize, usize)> = names
            .filter_map(|n| self.readers.get(&n))
            .flatten()
            .copied()
            .collect();
        for (reader, input) in readers {
            let copy = match &message {
                Message::Watermark(w) => Message::Watermark(*w),
                Message::End => Message::End,
                Message::Batch(b) => Message::Batch(b.clone()),
            };
            self.queue.push_back((reader, input, copy));
        }
    }

    fn forward(&mut self, at: usize, mut out: Emitter) {
        let (records, named, dead) = out.take();
        let path = self.nodes[at].path.clone();
        self.dead_letters(&path, dead);
        self.emit(at, None, records);
        for (port, records) in named {
            self.emit(at, Some(port), records);
        }
    }

    /// Handles every message under way, in the order they were sent.
    fn settle(&mut self) {
        while let Some((at, input, message)) = self.queue.pop_front() {
            let mut out = Emitter::default();
            let mut moved = None;
            let mut ended = false;
            match (&mut self.nodes[at].role, message) {
                (Role::Sink { real, .. }, Message::Batch(records)) => {
                    // A real sink writes each batch and makes it durable at once, so its
                    // dead letters show at the step that sent the records.
                    let mut letters = Vec::new();
                    if let (Some(real), Some(rt)) = (real, &self.runtime) {
                        let written = real.write(rt, records.clone()).and_then(|mut l| {
                            l.extend(real.checkpoint(rt)?);
                            Ok(l)
                        });
                        match written {
                            Ok(l) => letters = l,
                            Err(e) => {
                                self.failure.get_or_insert(e);
                            }
                        }
                    }
                    self.real_letters(letters);
                    let id = self.nodes[at].id.clone();
                    if let Some((kept, _)) = self.emitted.get_mut(&id) {
                        kept.extend(records);
                    }
                    continue;
                }
                (Role::Sink { .. } | Role::Source { .. }, _) => continue,
                (Role::Transform { transform, .. }, Message::Batch(records)) => {
                    transform.process(records, &mut out);
                }
                (
                    Role::Transform {
                        transform,
                        watermarks,
                    },
                    Message::Watermark(w),
                ) => {
                    moved = watermarks.update(input, w);
                    if let Some(w) = moved {
                        transform.on_watermark(w, &mut out);
                    }
                }
                (
                    Role::Transform {
                        transform,
                        watermarks,
                    },
                    Message::End,
                ) => {
                    moved = watermarks.end(input);
                    if let Some(w) = moved {
                        transform.on_watermark(w, &mut out);
                    }
                    if watermarks.all_ended() {
                        transform.flush(&mut out);
                        ended = true;
                    }
                }
            }
            self.forward(at, out);
            if let Some(w) = moved {
                self.broadcast(at, Message::Watermark(w));
            }
            if ended {
                self.broadcast(at, Message::End);
            }
        }
    }

    /// The ids of the sources, in file order.
    pub fn sources(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| matches!(n.role, Role::Source { .. }))
            .map(|n| n.id.clone())
            .collect()
    }
}
