//! Runs a built pipeline: one tokio task per component, bounded channels of batches between
//! them (backpressure), fan-out by cloning batches, fan-in by sharing a channel.
//!
//! Watermarks follow the batches: a source with `event_time` sends one whenever it moves, a
//! component that ends on its own sends an end, and a transform passes on the lowest
//! watermark of its inputs after calling `on_watermark` (see `watermarks.rs`).
//!
//! Stopping: cancelling the shutdown token stops the sources; every record already read then
//! flows through, transforms flush, sinks finish, and the run returns. A component that fails
//! stops the run the same way and the run returns its error.

use crate::checkpoint::{self as coordination, Alignment, Keep, ended};
use crate::pipeline::{Built, Component, Pipeline};
use crate::sink_task::{run_dead_letter, run_sink};
use crate::sinks_open::{SinkStart, SinksOpen};
use crate::summary::{ComponentSummary, RunFailure, RunSummary};
use crate::telemetry::{RunState, RunTelemetry};
use crate::transform_shards::Instances;
use crate::transform_task::{TransformIo, run_transform};
use crate::watermarks::carrying_event_time;
use ecomflow_core::channel::Capacity;
use ecomflow_core::checkpoint::Checkpoint;
use ecomflow_core::component::DeadLetterOutput;
use ecomflow_core::partition_store::PartitionStore;
use ecomflow_core::source_checkpoints::SourceCheckpoints;
use ecomflow_core::telemetry::scope;
use ecomflow_core::{
    ComponentTelemetry, EventTimeTracker, Message, Output, SinkContext, SourceContext,
};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Dead letters waiting before the components sending them wait.
const DEAD_LETTER_MESSAGES: usize = 64;

/// Runs `pipeline` until every source ends or `shutdown` is cancelled and everything read has
/// been written.
pub async fn run(
    pipeline: Pipeline,
    shutdown: CancellationToken,
) -> Result<RunSummary, RunFailure> {
    let telemetry = RunTelemetry::new(&pipeline);
    run_observed(pipeline, shutdown, telemetry).await
}

/// [`run`], showing what it does in `telemetry` (made by [`RunTelemetry::new`] from the same
/// pipeline) while it runs.
pub async fn run_observed(
    pipeline: Pipeline,
    shutdown: CancellationToken,
    telemetry: Arc<RunTelemetry>,
) -> Result<RunSummary, RunFailure> {
    // One figure per component and the dead-letter output, in file order.
    if telemetry.components.len() != pipeline.components.len() + 1 {
        telemetry.set_state(RunState::Failed);
        return Err(RunFailure {
            failures: vec![(
                "ecomflow".into(),
                "the run's telemetry was made for another pipeline".into(),
            )],
            summary: RunSummary::default(),
        });
    }
    let result = run_with(pipeline, shutdown, &telemetry).await;
    telemetry.set_state(if result.is_ok() {
        RunState::Finished
    } else {
        RunState::Failed
    });
    result
}

async fn run_with(
    pipeline: Pipeline,
    shutdown: CancellationToken,
    telemetry: &Arc<RunTelemetry>,
) -> Result<RunSummary, RunFailure> {
    let Pipeline {
        components,
        dead_letter,
        checkpoint,
        reset_state,
        channels,
        admissions,
        ..
    } = pipeline;
    let sinks_open = SinksOpen::new(
        components
            .iter()
            .filter(|c| matches!(c.built, Built::Sink(_)))
            .count(),
    );
    let fail_early = |failures: Vec<(String, String)>| RunFailure {
        failures,
        summary: RunSummary::default(),
    };

    // Checkpointing: resume from the last completed checkpoint, coordinate the next ones.
    // Without a `[checkpoint]` table, sources that want acknowledgements still get
    // checkpoints that only acknowledge (no state kept, nothing written).
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
            // Every component starting afresh needs nothing of the last checkpoint: a damaged
            // one is then set aside.
            let reset_all = components.iter().all(|c| reset_state.contains(&c.path()));
            let (keep, restored) = Keep::open(config, reset_all)
                .await
                .map_err(|e| fail_early(vec![("checkpoint".into(), e)]))?;
            let restored = without_reset(restored, &reset_state);
            if restored.id > 0 {
                tracing::info!(checkpoint = restored.id, store = %config.place(), "resuming from a checkpoint");
            }
            let store = match &keep {
                Keep::Shared(shared) => PartitionStore::shared(shared.clone(), reset_state.clone()),
                _ => PartitionStore::new(restored.clone()),
            };
            Some((keep, config.interval.get(), restored, store))
        }
        (None, Some(every)) => Some((
            Keep::Nothing,
            every,
            Checkpoint::default(),
            PartitionStore::default(),
        )),
        (None, None) => None,
    };
    // What sinks writing in the checkpoint's transaction join (see `load/checkpoint_links.rs`).
    let transaction = match &plan {
        Some((Keep::Shared(store), ..)) => store.transaction(),
        _ => None,
    };
    let coordination = match plan {
        Some((keep, interval, restored, store)) => {
            let mut participants: BTreeSet<String> =
                components.iter().map(Component::path).collect();
            participants.insert(dead_letter.id.clone());
            Some(coordination::start(
                keep,
                interval,
                restored,
                participants,
                store,
                telemetry.clone(),
            ))
        }
        None => None,
    };
    let (coordination, coordinator_task) = match coordination {
        Some((c, t)) => (Some(c), Some(t)),
        None => (None, None),
    };
    // A checkpoint that cannot be kept stops the run (with its error, below): going on
    // without checkpoints would hold every source's progress back for good.
    let coordinator_task = coordinator_task.map(|task| {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let result = task.await;
            if !matches!(result, Ok(Ok(()))) {
                shutdown.cancel();
            }
            result
        })
    });
    // Sources stop when the run is asked to; with checkpoints, a last checkpoint is asked
    // for first, so a restart resumes exactly where this run stopped.
    let stop_sources = CancellationToken::new();
    {
        let (shutdown, stop) = (shutdown.clone(), stop_sources.clone());
        let stop_checkpoint = coordination.as_ref().map(|c| c.stop.clone());
        tokio::spawn(async move {
            shutdown.cancelled().await;
            // The coordinator fixes the checkpoint every source stops at (the next one);
            // each source takes part in every checkpoint up to it, after the last records it
            // sends.
            if let Some(stop_checkpoint) = stop_checkpoint {
                let _ = stop_checkpoint.send(());
            }
            stop.cancel();
        });
    }
    let mut restore_failures = Vec::new();

    let mut senders = HashMap::new();
    let mut receivers = HashMap::new();
    for c in components.iter().filter(|c| !c.inputs.is_empty()) {
        let (tx, rx) = ecomflow_core::channel::input(channels.capacity());
        telemetry.watch_input(c.path().into(), tx.downgrade());
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

    let senders_of_letters = components.len();
    let (dl_tx, dl_rx) = ecomflow_core::channel::input::<Message>(Capacity {
        messages: DEAD_LETTER_MESSAGES,
        ..channels.capacity()
    });
    let mut tasks = JoinSet::new();
    let mut names = HashMap::new();

    // Which components' outputs carry event time: their watermark holds back from the start.
    let timed = carrying_event_time(&components);
    let mut outputs = Vec::new();
    for c in &components {
        let named: Vec<(&'static str, Output)> = c
            .plugin
            .outputs
            .iter()
            .map(|p| (*p, output_of(&c.id, Some(p))))
            .collect();
        outputs.push((output_of(&c.id, None), named));
    }
    drop(senders);
    for (from, ((c, shown), (out, named))) in components
        .into_iter()
        .zip(&telemetry.components)
        .zip(outputs)
        .enumerate()
    {
        let path = shown.path.clone();
        let count = shown.counters.clone();
        let shown = shown.clone();
        let dead_letter = DeadLetterOutput::new(path.clone(), from, dl_tx.clone(), count.clone());
        let Component {
            id,
            built,
            inputs,
            event_time,
            rebuild,
            in_checkpoint,
            ..
        } = c;
        let reports = coordination.as_ref().map(|c| c.reports.clone());
        let handle = match built {
            Built::Source(source) => {
                let tracker = event_time
                    .as_ref()
                    .and_then(|config| EventTimeTracker::new(config).ok())
                    .map(std::sync::Mutex::new);
                let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let checkpoints = coordination.as_ref().map(|c| SourceCheckpoints {
                    requested: c.requested.clone(),
                    asked: c.asked.clone(),
                    taken: std::sync::atomic::AtomicU64::new(c.restored.id),
                    reports: c.reports.clone(),
                    wanted: c.wanted.clone(),
                    restored: c.restored.sources.get(&*path).cloned(),
                    completed: c.completed.clone(),
                    store: c.store.clone(),
                    stop_at: c.stop_at.clone(),
                    finished: finished.clone(),
                });
                let stopped = stop_sources.clone();
                shown.set_ready(source.ready_at_start());
                let cx = SourceContext {
                    output: out.clone(),
                    dead_letter,
                    shutdown: stop_sources.child_token(),
                    counters: count,
                    event_time: tracker,
                    checkpoints,
                    telemetry: shown.clone(),
                };
                let component = path.clone();
                let letters = cx.dead_letter.clone();
                let sinks_open = sinks_open.clone();
                tasks.spawn(scope(shown, async move {
                    // Nothing is read before every sink is open (a stop comes first).
                    tokio::select! {
                        _ = sinks_open.all() => {}
                        _ = cx.shutdown.cancelled() => {}
                    }
                    let result = source.run(cx).await;
                    letters.send_end().await;
                    // The source has ended: nothing earlier will come from it. A source
                    // stopped for a restart has not ended: its open buckets stay open, kept by
                    // the last checkpoint. One that took its last checkpoint at its own end
                    // has ended, even if a stop came since.
                    let finished =
                        !(keep_state && stopped.is_cancelled()) || finished.load(Ordering::Acquire);
                    if finished {
                        out.send_end().await;
                    }
                    ended(&reports, component, finished);
                    result
                }))
            }
            Built::Transform(mut transform) => {
                if let Some(state) = coordination
                    .as_ref()
                    .and_then(|c| c.restored.transforms.get(&*path))
                    && let Err(e) = transform.restore(state.clone())
                {
                    let dir = checkpoint.as_ref().map(|c| c.place()).unwrap_or_default();
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
                let instances = Instances::new(
                    transform,
                    inputs
                        .iter()
                        .map(|i| timed.contains(&i.component))
                        .collect(),
                    rebuild,
                );
                let io = TransformIo {
                    out,
                    named,
                    dead_letter,
                    count,
                    alignment: Alignment::new(inputs.len()),
                    reports,
                    component: path.clone(),
                    keep_state,
                    telemetry: shown.clone(),
                };
                tasks.spawn(scope(shown, run_transform(instances, rx, io)))
            }
            Built::Sink(mut sink) => {
                if in_checkpoint
                    && let (Some(transaction), Some(writes)) = (&transaction, sink.in_checkpoint())
                {
                    writes.join(transaction.clone());
                }
                let rx = receivers.remove(&id);
                let cx = SinkContext {
                    dead_letter,
                    telemetry: shown.clone(),
                };
                let alignment = Alignment::new(inputs.len());
                tasks.spawn(scope(
                    shown,
                    run_sink(
                        sink,
                        rx,
                        cx,
                        count,
                        alignment,
                        reports,
                        SinkStart {
                            component: path.clone(),
                            id: id.clone(),
                            admissions: admissions.clone(),
                            open: sinks_open.clone(),
                        },
                    ),
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
    let dl_shown = telemetry
        .components
        .last()
        .cloned()
        .unwrap_or_else(|| ComponentTelemetry::detached(&dl_path, dead_letter.kind));
    let dl_reports = coordination.as_ref().map(|c| c.reports.clone());
    let checkpoints_failed = coordination.as_ref().map(|c| c.failed.clone());
    drop(coordination);
    let dl_task = tokio::spawn(scope(
        dl_shown.clone(),
        run_dead_letter(
            dead_letter,
            dl_rx,
            dl_shown.clone(),
            senders_of_letters,
            dl_reports,
        ),
    ));
    telemetry.set_state(RunState::Running);

    let mut failures = Vec::new();
    while let Some(done) = tasks.join_next_with_id().await {
        let (name, result) = match done {
            Ok((id, r)) => (names.get(&id).cloned(), r.map_err(|e| e.to_string())),
            Err(e) => (names.get(&e.id()).cloned(), Err(panic_message(e))),
        };
        if let Err(e) = result {
            failures.push((name.unwrap_or_else(|| "?".into()), e));
            // No checkpoint completes without the failed component: the sources waiting to
            // take part in the stop's do not wait for it.
            if let Some(failed) = &checkpoints_failed {
                failed.cancel();
            }
            shutdown.cancel();
        }
    }
    if let Some(task) = coordinator_task {
        match task.await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => failures.push(("checkpoint".into(), e)),
            Ok(Err(e)) | Err(e) => failures.push(("checkpoint".into(), panic_message(e))),
        }
    }
    match dl_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => failures.push((dl_path.clone(), e.to_string())),
        Err(e) => failures.push((dl_path.clone(), panic_message(e))),
    }

    // The end-of-run table: the same counters the metrics show.
    let summary = RunSummary {
        components: telemetry
            .components
            .iter()
            .map(|shown| ComponentSummary {
                path: shown.path.to_string(),
                received: shown.counters.received.load(Ordering::Relaxed),
                sent: shown.counters.sent.load(Ordering::Relaxed),
                dead_lettered: shown.counters.dead_lettered.load(Ordering::Relaxed),
                dropped: shown.counters.dropped.load(Ordering::Relaxed),
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

/// The checkpoint `restored` without what it kept for the components in `reset` (they start
/// afresh; the others resume).
fn without_reset(mut restored: Checkpoint, reset: &BTreeSet<String>) -> Checkpoint {
    for path in reset {
        let source = restored.sources.remove(path).is_some();
        let mut transform = restored.transforms.remove(path).is_some();
        let partitions = restored.partitions.remove(path).is_some();
        for partition in restored
            .partitions
            .values_mut()
            .flat_map(|p| p.values_mut())
        {
            transform |= partition.transforms.remove(path).is_some();
        }
        if source || transform || partitions {
            tracing::warn!(
                component = %path,
                checkpoint = restored.id,
                "starting afresh: the state the checkpoint kept for it is discarded"
            );
        }
    }
    restored
}
