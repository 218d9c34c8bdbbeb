//! The end of a run: every task joined, the first failures kept (a failure stops the rest),
//! and the end-of-run summary from the same counters the metrics show.

use super::checkpointing::CoordinatorTask;
use crate::summary::{ComponentSummary, RunSummary};
use crate::telemetry::RunTelemetry;
use ecomflow_core::ComponentError;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

/// The tasks of a run.
pub(super) struct Tasks {
    /// The components' tasks.
    pub(super) components: JoinSet<Result<(), ComponentError>>,
    /// Each task's component path, by task id.
    pub(super) names: HashMap<tokio::task::Id, String>,
    /// The checkpoint coordinator's, when the run takes checkpoints.
    pub(super) coordinator: Option<CoordinatorTask>,
    /// Cancelled when a component fails: no checkpoint can complete without it.
    pub(super) checkpoints_failed: Option<CancellationToken>,
    /// The dead-letter sink's, and its path.
    pub(super) dead_letter: (JoinHandle<Result<(), ComponentError>>, String),
}

/// Waits for every task; the first failure of a component stops the run (`shutdown`). Returns
/// the failures, each with what failed.
pub(super) async fn join(mut tasks: Tasks, shutdown: &CancellationToken) -> Vec<(String, String)> {
    let mut failures = Vec::new();
    while let Some(done) = tasks.components.join_next_with_id().await {
        let (name, result) = match done {
            Ok((id, r)) => (tasks.names.get(&id).cloned(), r.map_err(|e| e.to_string())),
            Err(e) => (tasks.names.get(&e.id()).cloned(), Err(panic_message(e))),
        };
        if let Err(e) = result {
            failures.push((name.unwrap_or_else(|| "?".into()), e));
            // No checkpoint completes without the failed component: the sources waiting to
            // take part in the stop's do not wait for it.
            if let Some(failed) = &tasks.checkpoints_failed {
                failed.cancel();
            }
            shutdown.cancel();
        }
    }
    if let Some(task) = tasks.coordinator {
        match task.await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => failures.push(("checkpoint".into(), e)),
            Ok(Err(e)) | Err(e) => failures.push(("checkpoint".into(), panic_message(e))),
        }
    }
    let (task, path) = tasks.dead_letter;
    match task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => failures.push((path, e.to_string())),
        Err(e) => failures.push((path, panic_message(e))),
    }
    failures
}

/// The end-of-run table: the same counters the metrics show.
pub(super) fn summary(telemetry: &RunTelemetry) -> RunSummary {
    RunSummary {
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
