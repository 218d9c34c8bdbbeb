//! Starts each component of a run as a task: a source once every sink is open, a transform
//! resumed from the checkpoint, a sink linked to the checkpoint's transaction when it writes
//! in it.

use super::checkpointing::Checkpointing;
use super::wiring::Outputs;
use crate::checkpoint::{Alignment, ended};
use crate::pipeline::{Built, Component, Rebuild};
use crate::sink_task::run_sink;
use crate::sinks_open::{SinkStart, SinksOpen};
use crate::transform_shards::Instances;
use crate::transform_task::{TransformIo, run_transform};
use ecomflow_core::channel::InputReceiver;
use ecomflow_core::component::DeadLetterOutput;
use ecomflow_core::source_checkpoints::SourceCheckpoints;
use ecomflow_core::telemetry::scope;
use ecomflow_core::{
    Admissions, ComponentError, ComponentTelemetry, Message, Sink, SinkContext, Source,
    SourceContext, Transform,
};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::task::{AbortHandle, JoinSet};

/// What every component's start needs.
pub(super) struct Start<'a> {
    /// The run's tasks.
    pub(super) tasks: &'a mut JoinSet<Result<(), ComponentError>>,
    pub(super) checkpointing: &'a Checkpointing,
    pub(super) sinks_open: &'a SinksOpen,
    pub(super) admissions: &'a Admissions,
    /// Components whose outputs carry event time.
    pub(super) timed: &'a HashSet<String>,
}

/// One component to start.
pub(super) struct One {
    pub(super) component: Component,
    pub(super) shown: Arc<ComponentTelemetry>,
    pub(super) outputs: Outputs,
    pub(super) input: Option<InputReceiver<Message>>,
    pub(super) dead_letter: DeadLetterOutput,
}

impl Start<'_> {
    /// Starts `one`; a transform whose state does not restore is not started: the error says
    /// why and what to do.
    pub(super) fn spawn(&mut self, one: One) -> Result<AbortHandle, String> {
        let One {
            component,
            shown,
            outputs,
            input,
            dead_letter,
        } = one;
        let Component {
            id,
            built,
            inputs,
            event_time,
            rebuild,
            in_checkpoint,
            ..
        } = component;
        match built {
            Built::Source(source) => {
                Ok(self.source(source, event_time, shown, outputs, dead_letter))
            }
            Built::Transform(transform) => {
                let timed = inputs
                    .iter()
                    .map(|i| self.timed.contains(&i.component))
                    .collect();
                let instances = self.restored(transform, timed, rebuild, &shown)?;
                let io = TransformIo {
                    out: outputs.0,
                    named: outputs.1,
                    dead_letter,
                    count: shown.counters.clone(),
                    alignment: Alignment::new(inputs.len()),
                    reports: self.reports(),
                    component: shown.path.clone(),
                    keep_state: self.checkpointing.keep_state,
                    telemetry: shown.clone(),
                };
                Ok(self
                    .tasks
                    .spawn(scope(shown, run_transform(instances, input, io))))
            }
            Built::Sink(sink) => Ok(self.sink(
                sink,
                id,
                in_checkpoint,
                inputs.len(),
                input,
                shown,
                dead_letter,
            )),
        }
    }

    fn reports(
        &self,
    ) -> Option<tokio::sync::mpsc::UnboundedSender<ecomflow_core::checkpoint::Report>> {
        self.checkpointing
            .coordination
            .as_ref()
            .map(|c| c.reports.clone())
    }

    /// A source: it reads once every sink is open, and takes part in checkpoints.
    fn source(
        &mut self,
        source: Box<dyn Source>,
        event_time: Option<ecomflow_core::EventTimeConfig>,
        shown: Arc<ComponentTelemetry>,
        (out, _): Outputs,
        dead_letter: DeadLetterOutput,
    ) -> AbortHandle {
        let path = shown.path.clone();
        let tracker = event_time
            .as_ref()
            .and_then(|config| ecomflow_time::tracker(config).ok())
            .map(std::sync::Mutex::new);
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let checkpoints = self
            .checkpointing
            .coordination
            .as_ref()
            .map(|c| SourceCheckpoints {
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
        let stop_sources = &self.checkpointing.stop_sources;
        let stopped = stop_sources.clone();
        shown.set_ready(source.capabilities().ready_at_start);
        let cx = SourceContext {
            output: out.clone(),
            dead_letter,
            shutdown: stop_sources.child_token(),
            counters: shown.counters.clone(),
            event_time: tracker,
            checkpoints,
            telemetry: shown.clone(),
        };
        let letters = cx.dead_letter.clone();
        let sinks_open = self.sinks_open.clone();
        let keep_state = self.checkpointing.keep_state;
        let reports = self.reports();
        self.tasks.spawn(scope(shown, async move {
            // Nothing is read before every sink is open (a stop comes first).
            tokio::select! {
                _ = sinks_open.all() => {}
                _ = cx.shutdown.cancelled() => {}
            }
            let result = source.run(cx).await;
            letters.send_end().await;
            // The source has ended: nothing earlier will come from it. A source stopped for a
            // restart has not ended: its open buckets stay open, kept by the last checkpoint.
            // One that took its last checkpoint at its own end has ended, even if a stop came
            // since.
            let finished =
                !(keep_state && stopped.is_cancelled()) || finished.load(Ordering::Acquire);
            if finished {
                out.send_end().await;
            }
            ended(&reports, path, finished);
            result
        }))
    }

    /// A transform's instances, the whole shard's restored from the checkpoint.
    fn restored(
        &self,
        mut transform: Box<dyn Transform>,
        timed: Vec<bool>,
        rebuild: Option<Rebuild>,
        shown: &ComponentTelemetry,
    ) -> Result<Instances, String> {
        let path = &shown.path;
        let state = self.checkpointing.state.clone();
        if let Some(store) = &state {
            store
                .attach(&mut *transform, path, None)
                .map_err(|e| format!("cannot open its keyed state: {e}"))?;
        }
        if let Some(c) = &self.checkpointing.coordination
            && let Some(state) = c.restored.transforms.get(&**path)
            && let Err(e) = transform.restore(state.clone())
        {
            return Err(format!(
                "cannot restore the state that checkpoint {} in {} kept for it: {e}. To start \
                 this component afresh (its state is lost, the others resume), run again with \
                 `--reset-state {path}`",
                c.restored.id, self.checkpointing.place,
            ));
        }
        Ok(Instances::new(transform, timed, rebuild).with_state(state, path.clone()))
    }

    /// A sink, linked to the checkpoint's transaction when it writes in it.
    #[allow(clippy::too_many_arguments)]
    fn sink(
        &mut self,
        mut sink: Box<dyn Sink>,
        id: String,
        in_checkpoint: bool,
        inputs: usize,
        input: Option<InputReceiver<Message>>,
        shown: Arc<ComponentTelemetry>,
        dead_letter: DeadLetterOutput,
    ) -> AbortHandle {
        if in_checkpoint
            && let (Some(transaction), Some(writes)) =
                (&self.checkpointing.transaction, sink.in_checkpoint())
        {
            writes.join(transaction.clone());
        }
        let cx = SinkContext {
            dead_letter,
            telemetry: shown.clone(),
        };
        let start = SinkStart {
            component: shown.path.clone(),
            id,
            admissions: self.admissions.clone(),
            open: self.sinks_open.clone(),
        };
        let count = shown.counters.clone();
        let task = run_sink(
            sink,
            input,
            cx,
            count,
            Alignment::new(inputs),
            self.reports(),
            start,
        );
        self.tasks.spawn(scope(shown, task))
    }
}
