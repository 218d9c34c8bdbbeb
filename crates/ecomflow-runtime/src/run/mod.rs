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
//!
//! This file holds the order of a run; `checkpointing.rs` what it resumes from and its
//! coordinator, `wiring.rs` the channels, `spawn.rs` each component's task, `join.rs` the
//! end.

mod checkpointing;
mod join;
mod spawn;
mod wiring;

use crate::pipeline::{Built, Pipeline};
use crate::sink_task::run_dead_letter;
use crate::sinks_open::SinksOpen;
use crate::summary::{RunFailure, RunSummary};
use crate::telemetry::{RunState, RunTelemetry};
use crate::watermarks::carrying_event_time;
use checkpointing::Checkpointing;
use ecomflow_core::ComponentTelemetry;
use ecomflow_core::component::DeadLetterOutput;
use ecomflow_core::telemetry::scope;
use join::Tasks;
use spawn::{One, Start};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use wiring::Wiring;

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
        mut components,
        dead_letter,
        checkpoint,
        state,
        reset_state,
        channels,
        admissions,
        ..
    } = pipeline;
    let fail_early = |failures: Vec<(String, String)>| RunFailure {
        failures,
        summary: RunSummary::default(),
    };
    let checkpointing = checkpointing::start(
        &mut components,
        &dead_letter,
        checkpoint.as_ref(),
        &state,
        &reset_state,
        telemetry,
        &shutdown,
    )
    .await
    .map_err(|e| fail_early(vec![("checkpoint".into(), e)]))?;
    let Wiring {
        mut inputs,
        outputs,
        dead_letters,
        dead_letter_input,
    } = wiring::wire(&components, channels.capacity(), telemetry);
    let sinks_open = SinksOpen::new(
        components
            .iter()
            .filter(|c| matches!(c.built, Built::Sink(_)))
            .count(),
    );
    // Which components' outputs carry event time: their watermark holds back from the start.
    let timed = carrying_event_time(&components);
    let senders_of_letters = components.len();
    let mut tasks = JoinSet::new();
    let mut names = HashMap::new();
    let mut restore_failures = Vec::new();
    let mut start = Start {
        tasks: &mut tasks,
        checkpointing: &checkpointing,
        sinks_open: &sinks_open,
        admissions: &admissions,
        timed: &timed,
    };
    for (from, ((component, shown), outputs)) in components
        .into_iter()
        .zip(&telemetry.components)
        .zip(outputs)
        .enumerate()
    {
        let path = shown.path.clone();
        let dead_letter = DeadLetterOutput::new(
            path.clone(),
            from,
            dead_letters.clone(),
            shown.counters.clone(),
        );
        let one = One {
            input: inputs.remove(&component.id),
            component,
            shown: shown.clone(),
            outputs,
            dead_letter,
        };
        match start.spawn(one) {
            Ok(handle) => {
                names.insert(handle.id(), path.to_string());
            }
            Err(e) => restore_failures.push((path.to_string(), e)),
        }
    }
    drop(dead_letters);
    if !restore_failures.is_empty() {
        checkpointing.stop_sources.cancel();
        tasks.abort_all();
        return Err(fail_early(restore_failures));
    }

    let dl_path = dead_letter.id.clone();
    let dl_shown = telemetry
        .components
        .last()
        .cloned()
        .unwrap_or_else(|| ComponentTelemetry::detached(&dl_path, dead_letter.kind));
    let Checkpointing {
        coordination, task, ..
    } = checkpointing;
    let dl_reports = coordination.as_ref().map(|c| c.reports.clone());
    let checkpoints_failed = coordination.as_ref().map(|c| c.failed.clone());
    drop(coordination);
    let dl_task = tokio::spawn(scope(
        dl_shown.clone(),
        run_dead_letter(
            dead_letter,
            dead_letter_input,
            dl_shown,
            senders_of_letters,
            dl_reports,
        ),
    ));
    telemetry.set_state(RunState::Running);

    let tasks = Tasks {
        components: tasks,
        names,
        coordinator: task,
        checkpoints_failed,
        dead_letter: (dl_task, dl_path),
    };
    let failures = join::join(tasks, &shutdown).await;
    let summary = join::summary(telemetry);
    if failures.is_empty() {
        Ok(summary)
    } else {
        Err(RunFailure { failures, summary })
    }
}
