//! Runs a built pipeline: one tokio task per component, bounded channels of batches between
//! them (backpressure), fan-out by cloning batches, fan-in by sharing a channel.
//!
//! Watermarks follow the batches: a source with `event_time` sends one whenever it moves,
//! every component sends `i64::MAX` when it ends, and a transform passes on the lowest
//! watermark of its inputs after calling `on_watermark` (see `watermarks.rs`).
//!
//! Stopping: cancelling the shutdown token stops the sources; every record already read then
//! flows through, transforms flush, sinks finish, and the run returns. A component that fails
//! stops the run the same way and the run returns its error.

use crate::checkpoint::{self as coordination, Alignment, Step};
use crate::pipeline::{Built, Component, Pipeline};
use crate::watermarks::{Watermarks, carrying_event_time};
use ecomflow_core::checkpoint::{Checkpoint, Report, SourceCheckpoints};
use ecomflow_core::component::DeadLetterOutput;
use ecomflow_core::{
    Batch, ComponentError, Counters, DeadLetter, Emitter, EventTimeTracker, Message, Output, Sink,
    SinkContext, SourceContext, Transform,
};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Batches a channel holds before its sender waits.
const CHANNEL_BATCHES: usize = 8;

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

/// Runs `pipeline` until every source ends or `shutdown` is cancelled and everything read has
/// been written.
pub async fn run(
    pipeline: Pipeline,
    shutdown: CancellationToken,
) -> Result<RunSummary, RunFailure> {
    let Pipeline {
        components,
        dead_letter,
        checkpoint,
        reset_state,
    } = pipeline;
    let fail_early = |failures: Vec<(String, String)>| RunFailure {
        failures,
        summary: RunSummary::default(),
    };

    // Checkpointing: resume from the last completed checkpoint, coordinate the next ones.
    // Without a `[checkpoint]` table, sources that want acknowledgements still get
    // checkpoints that only acknowledge (no state kept, nothing written).
    let (marker_tx, marker_rx) = mpsc::unbounded_channel::<u64>();
    let acknowledged_every = components
        .iter()
        .filter_map(|c| match &c.built {
            Built::Source(source) => source.acknowledged_every(),
            _ => None,
        })
        .min();
    let keep_state = checkpoint.is_some();
    let plan = match (&checkpoint, acknowledged_every) {
        (Some(config), _) => {
            let restored = Checkpoint::load(std::path::Path::new(&config.dir))
                .map_err(|e| {
                    fail_early(vec![(
                        "checkpoint".into(),
                        format!("cannot read the checkpoint in {}: {e}", config.dir),
                    )])
                })?
                .unwrap_or_default();
            let restored = without_reset(restored, &reset_state);
            if restored.id > 0 {
                tracing::info!(checkpoint = restored.id, dir = %config.dir, "resuming from a checkpoint");
            }
            Some((Some(config.dir.clone().into()), config.interval, restored))
        }
        (None, Some(every)) => Some((None, every, Checkpoint::default())),
        (None, None) => None,
    };
    let coordination = match plan {
        Some((dir, interval, restored)) => {
            let participants = components.iter().map(Component::path).collect();
            Some(coordination::start(
                dir,
                interval,
                restored,
                participants,
                marker_tx,
                dead_letter.id.clone(),
            ))
        }
        None => {
            drop(marker_tx);
            None
        }
    };
    let (coordination, coordinator_task) = match coordination {
        Some((c, t)) => (Some(c), Some(t)),
        None => (None, None),
    };
    // Sources stop when the run is asked to; with checkpoints, a last checkpoint is asked
    // for first, so a restart resumes exactly where this run stopped.
    let stop_sources = CancellationToken::new();
    {
        let (shutdown, stop) = (shutdown.clone(), stop_sources.clone());
        let wanted = coordination.as_ref().map(|c| c.wanted.clone());
        tokio::spawn(async move {
            shutdown.cancelled().await;
            // The coordinator asks for it after the one under way; each source takes part in
            // it after the last records it sends.
            if let Some(wanted) = wanted {
                let _ = wanted.send(());
            }
            stop.cancel();
        });
    }
    let mut restore_failures = Vec::new();

    let mut senders = HashMap::new();
    let mut receivers = HashMap::new();
    for c in components.iter().filter(|c| !c.inputs.is_empty()) {
        let (tx, rx) = mpsc::channel::<Message>(CHANNEL_BATCHES);
        senders.insert(c.id.clone(), tx);
        receivers.insert(c.id.clone(), rx);
    }
    // Each reader of (id, port) gets the batches, and watermarks tagged with the position
    // of that output among the reader's inputs.
    let output_of = |id: &str, port: Option<&str>| {
        Output::new(
            components
                .iter()
                .filter_map(|c| {
                    let at = c
                        .inputs
                        .iter()
                        .position(|i| i.component == id && i.port.as_deref() == port)?;
                    Some((senders.get(&c.id)?.clone(), at))
                })
                .collect(),
        )
    };

    let (dl_tx, dl_rx) = mpsc::channel::<Vec<DeadLetter>>(CHANNEL_BATCHES * 8);
    let mut tasks = JoinSet::new();
    let mut names = HashMap::new();
    let mut counters = Vec::new();

    // Which components' outputs carry event time: their watermark holds back from the start.
    let timed = carrying_event_time(&components);
    let mut outputs = Vec::new();
    for c in &components {
        counters.push((c.path(), Arc::new(Counters::default())));
        let named: Vec<(&'static str, Output)> = c
            .plugin
            .outputs
            .iter()
            .map(|p| (*p, output_of(&c.id, Some(p))))
            .collect();
        outputs.push((output_of(&c.id, None), named));
    }
    drop(senders);
    for ((c, (path, count)), (out, named)) in components.into_iter().zip(&counters).zip(outputs) {
        let path: Arc<str> = path.as_str().into();
        let count = count.clone();
        let dead_letter = DeadLetterOutput::new(path.clone(), dl_tx.clone(), count.clone());
        let Component {
            id,
            built,
            inputs,
            event_time,
            ..
        } = c;
        let reports = coordination.as_ref().map(|c| c.reports.clone());
        let handle = match built {
            Built::Source(source) => {
                let tracker = event_time
                    .as_ref()
                    .and_then(|config| EventTimeTracker::new(config).ok())
                    .map(std::sync::Mutex::new);
                let checkpoints = coordination.as_ref().map(|c| SourceCheckpoints {
                    requested: c.requested.clone(),
                    asked: c.asked.clone(),
                    taken: std::sync::atomic::AtomicU64::new(c.restored.id),
                    reports: c.reports.clone(),
                    wanted: c.wanted.clone(),
                    restored: c.restored.sources.get(&*path).cloned(),
                    completed: c.completed.clone(),
                });
                let stopped = stop_sources.clone();
                let cx = SourceContext {
                    output: out.clone(),
                    dead_letter,
                    shutdown: stop_sources.child_token(),
                    counters: count,
                    event_time: tracker,
                    checkpoints,
                };
                let component = path.clone();
                tasks.spawn(async move {
                    let result = source.run(cx).await;
                    // The source has ended: nothing earlier will come from it. A source
                    // stopped for a restart has not ended: its open buckets stay open, kept by
                    // the last checkpoint.
                    if !(keep_state && stopped.is_cancelled()) {
                        out.send_watermark(i64::MAX).await;
                    }
                    ended(&reports, component);
                    result
                })
            }
            Built::Transform(mut transform) => {
                if let Some(state) = coordination
                    .as_ref()
                    .and_then(|c| c.restored.transforms.get(&*path))
                    && let Err(e) = transform.restore(state.clone())
                {
                    let dir = checkpoint.as_ref().map_or("", |c| c.dir.as_str());
                    restore_failures.push((
                        path.to_string(),
                        format!(
                            "cannot restore the state that checkpoint {} in {dir} kept for it: {e}. \
                             To start this component afresh (its state is lost, the others \
                             resume), run again with `--reset-state {path}`",
                            coordination.as_ref().map_or(0, |c| c.restored.id)
                        ),
                    ));
                }
                let rx = receivers.remove(&id);
                let io = TransformIo {
                    out,
                    named,
                    dead_letter,
                    count,
                    watermarks: Watermarks::new(
                        inputs
                            .iter()
                            .map(|i| timed.contains(&i.component))
                            .collect(),
                    ),
                    alignment: Alignment::new(inputs.len()),
                    reports,
                    component: path.clone(),
                    keep_state,
                };
                tasks.spawn(run_transform(transform, rx, io))
            }
            Built::Sink(sink) => {
                let rx = receivers.remove(&id);
                let cx = SinkContext { dead_letter };
                let alignment = Alignment::new(inputs.len());
                tasks.spawn(run_sink(
                    sink,
                    rx,
                    cx,
                    count,
                    alignment,
                    reports,
                    path.clone(),
                ))
            }
        };
        names.insert(handle.id(), path.to_string());
    }
    drop(dl_tx);
    if !restore_failures.is_empty() {
        stop_sources.cancel();
        tasks.abort_all();
        return Err(fail_early(restore_failures));
    }

    let dl_path = dead_letter.id.clone();
    let dl_count = Arc::new(Counters::default());
    let dl_reports = coordination.as_ref().map(|c| c.reports.clone());
    drop(coordination);
    let dl_task = tokio::spawn(run_dead_letter(
        dead_letter,
        dl_rx,
        dl_count.clone(),
        marker_rx,
        dl_reports,
    ));

    let mut failures = Vec::new();
    while let Some(done) = tasks.join_next_with_id().await {
        let (name, result) = match done {
            Ok((id, r)) => (names.get(&id).cloned(), r.map_err(|e| e.to_string())),
            Err(e) => (names.get(&e.id()).cloned(), Err(panic_message(e))),
        };
        if let Err(e) = result {
            failures.push((name.unwrap_or_else(|| "?".into()), e));
            shutdown.cancel();
        }
    }
    if let Some(task) = coordinator_task {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(("checkpoint".into(), e)),
            Err(e) => failures.push(("checkpoint".into(), panic_message(e))),
        }
    }
    match dl_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => failures.push((dl_path.clone(), e.to_string())),
        Err(e) => failures.push((dl_path.clone(), panic_message(e))),
    }

    counters.push((dl_path, dl_count));
    let summary = RunSummary {
        components: counters
            .into_iter()
            .map(|(path, c)| ComponentSummary {
                path,
                received: c.received.load(Ordering::Relaxed),
                sent: c.sent.load(Ordering::Relaxed),
                dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
                dropped: c.dropped.load(Ordering::Relaxed),
            })
            .collect(),
    };
    if failures.is_empty() {
        Ok(summary)
    } else {
        Err(RunFailure { failures, summary })
    }
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            format!("component panicked: {msg}")
        }
        Err(e) => format!("component task ended abnormally: {e}"),
    }
}

/// Tells the checkpoint coordinator that a component has ended.
fn ended(reports: &Option<mpsc::UnboundedSender<Report>>, component: Arc<str>) {
    if let Some(r) = reports {
        let _ = r.send(Report::Ended { component });
    }
}

/// Where a transform's results go, the watermarks of its inputs and its checkpoint duties.
struct TransformIo {
    out: Output,
    named: Vec<(&'static str, Output)>,
    dead_letter: DeadLetterOutput,
    count: Arc<Counters>,
    watermarks: Watermarks,
    alignment: Alignment,
    reports: Option<mpsc::UnboundedSender<Report>>,
    component: Arc<str>,
    /// Checkpoints keep state (a `[checkpoint]` table), rather than only acknowledge.
    keep_state: bool,
}

async fn run_transform(
    mut transform: Box<dyn Transform>,
    rx: Option<mpsc::Receiver<Message>>,
    mut io: TransformIo,
) -> Result<(), ComponentError> {
    let Some(mut rx) = rx else {
        ended(&io.reports, io.component.clone());
        return Ok(());
    };
    let mut emitter = Emitter::default();
    let mut ticker = transform.tick_interval().map(|d| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + d, d);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    // Messages held back during a checkpoint's alignment, handled once it is done.
    let mut replay = std::collections::VecDeque::new();
    loop {
        let message = if let Some(m) = replay.pop_front() {
            Some(m)
        } else {
            match ticker.as_mut() {
                Some(t) => tokio::select! {
                    m = rx.recv() => m,
                    _ = t.tick() => {
                        transform.tick(&mut emitter);
                        forward(&mut emitter, &io).await;
                        continue;
                    }
                },
                None => rx.recv().await,
            }
        };
        let Some(message) = message else { break };
        match io.alignment.step(message) {
            Step::Wait => {}
            Step::Aligned(id) => {
                if let Some(r) = &io.reports {
                    let _ = r.send(Report::Transform {
                        id,
                        component: io.component.clone(),
                        state: if io.keep_state {
                            transform.snapshot()
                        } else {
                            None
                        },
                    });
                }
                io.out.send_barrier(id).await;
                for (_, o) in &io.named {
                    o.send_barrier(id).await;
                }
                let mut held = io.alignment.release();
                held.extend(replay.drain(..));
                replay = held;
            }
            Step::Handle(Message::Batch { batch, .. }) => {
                Counters::add(&io.count.received, batch.len());
                match Arc::try_unwrap(batch) {
                    Ok(owned) => transform.process(owned, &mut emitter),
                    Err(shared) => transform.process_shared(&shared, &mut emitter),
                }
                forward(&mut emitter, &io).await;
            }
            Step::Handle(Message::Watermark { input, at }) => {
                if let Some(at) = io.watermarks.update(input, at) {
                    transform.on_watermark(at, &mut emitter);
                    forward(&mut emitter, &io).await;
                    send_watermark(&io, at).await;
                }
            }
            Step::Handle(Message::Barrier { .. }) => {}
        }
    }
    transform.flush(&mut emitter);
    forward(&mut emitter, &io).await;
    // Every input ended on its own (a MAX watermark) or was stopped for a restart: pass on
    // only what the inputs said.
    if io.watermarks.current == Some(i64::MAX) || io.reports.is_none() {
        send_watermark(&io, i64::MAX).await;
    }
    ended(&io.reports, io.component.clone());
    Ok(())
}

async fn send_watermark(io: &TransformIo, at: i64) {
    io.out.send_watermark(at).await;
    for (_, o) in &io.named {
        o.send_watermark(at).await;
    }
}

async fn forward(emitter: &mut Emitter, io: &TransformIo) {
    let (records, ports, dead) = emitter.take();
    io.count
        .dropped
        .fetch_add(emitter.take_dropped(), Ordering::Relaxed);
    // A closed output means its readers failed; the run is already stopping with their error.
    Counters::add(&io.count.sent, records.len());
    let _ = io.out.send(records).await;
    for (port, batch) in ports {
        match io.named.iter().find(|(p, _)| *p == port) {
            // Nothing reads this output: its records are dropped, and counted.
            Some((_, o)) if o.is_unconnected() => Counters::add(&io.count.dropped, batch.len()),
            Some((_, o)) => {
                Counters::add(&io.count.sent, batch.len());
                let _ = o.send(batch).await;
            }
            None => Counters::add(&io.count.dropped, batch.len()),
        }
    }
    io.dead_letter.send(dead).await;
}

async fn run_sink(
    mut sink: Box<dyn Sink>,
    rx: Option<mpsc::Receiver<Message>>,
    cx: SinkContext,
    count: Arc<Counters>,
    mut alignment: Alignment,
    reports: Option<mpsc::UnboundedSender<Report>>,
    component: Arc<str>,
) -> Result<(), ComponentError> {
    let mut ticker = sink.tick_interval().map(|d| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + d, d);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    if let Some(mut rx) = rx {
        let mut replay = std::collections::VecDeque::new();
        loop {
            let message = if let Some(m) = replay.pop_front() {
                Some(m)
            } else {
                match ticker.as_mut() {
                    Some(t) => tokio::select! {
                        m = rx.recv() => m,
                        _ = t.tick() => {
                            sink.tick(&cx).await?;
                            continue;
                        }
                    },
                    None => rx.recv().await,
                }
            };
            let Some(message) = message else { break };
            match alignment.step(message) {
                Step::Aligned(id) => {
                    sink.checkpoint(&cx).await?;
                    if let Some(r) = &reports {
                        let _ = r.send(Report::Sink {
                            id,
                            component: component.clone(),
                        });
                    }
                    let mut held = alignment.release();
                    held.extend(replay.drain(..));
                    replay = held;
                }
                Step::Handle(Message::Batch { batch, .. }) => {
                    let n = batch.len();
                    Counters::add(&count.received, n);
                    match Arc::try_unwrap(batch) {
                        Ok(owned) => sink.write(owned, &cx).await?,
                        Err(shared) => sink.write_shared(&shared, &cx).await?,
                    }
                    Counters::add(&count.sent, n);
                }
                Step::Handle(_) | Step::Wait => {}
            }
        }
    }
    let result = sink.finish(&cx).await;
    ended(&reports, component);
    result
}

async fn run_dead_letter(
    component: Component,
    mut rx: mpsc::Receiver<Vec<DeadLetter>>,
    count: Arc<Counters>,
    mut markers: mpsc::UnboundedReceiver<u64>,
    reports: Option<mpsc::UnboundedSender<Report>>,
) -> Result<(), ComponentError> {
    let Built::Sink(mut sink) = component.built else {
        return Err(ComponentError::Other(
            "the dead-letter output must be a sink".into(),
        ));
    };
    // Dead letters of the dead-letter sink itself have nowhere else to go: they are counted.
    let (own_tx, _) = mpsc::channel(1);
    let cx = SinkContext {
        dead_letter: DeadLetterOutput::new(component.id.as_str().into(), own_tx, count.clone()),
    };
    let component_id: Arc<str> = component.id.as_str().into();
    let mut markers_open = true;
    loop {
        tokio::select! {
            letters = rx.recv() => {
                let Some(letters) = letters else { break };
                write_letters(&mut sink, &cx, &count, letters).await?;
            }
            marker = markers.recv(), if markers_open => {
                let Some(id) = marker else {
                    markers_open = false;
                    continue;
                };
                // Every letter sent before the checkpoint's barriers is queued by now.
                while let Ok(letters) = rx.try_recv() {
                    write_letters(&mut sink, &cx, &count, letters).await?;
                }
                sink.checkpoint(&cx).await?;
                if let Some(r) = &reports {
                    let _ = r.send(Report::Sink { id, component: component_id.clone() });
                }
            }
        }
    }
    sink.finish(&cx).await
}

async fn write_letters(
    sink: &mut Box<dyn Sink>,
    cx: &SinkContext,
    count: &Counters,
    letters: Vec<DeadLetter>,
) -> Result<(), ComponentError> {
    let batch: Batch = letters.iter().map(DeadLetter::to_record).collect();
    let n = batch.len();
    Counters::add(&count.received, n);
    sink.write(batch, cx).await?;
    Counters::add(&count.sent, n);
    Ok(())
}

/// The checkpoint `restored` without what it kept for the components in `reset` (they start
/// afresh; the others resume).
fn without_reset(mut restored: Checkpoint, reset: &BTreeSet<String>) -> Checkpoint {
    for path in reset {
        let source = restored.sources.remove(path).is_some();
        let transform = restored.transforms.remove(path).is_some();
        if source || transform {
            tracing::warn!(
                component = %path,
                checkpoint = restored.id,
                "starting afresh: the state the checkpoint kept for it is discarded"
            );
        }
    }
    restored
}
