//! The checkpoints of a run: where they are kept and what the run resumes from, the
//! coordinator that takes them, and how a stop reaches the sources (through one last
//! checkpoint when state is kept).

use crate::checkpoint::{self as coordination, Keep};
use crate::pipeline::{Built, Component};
use crate::state_config::StateConfig;
use crate::state_store::StateStore;
use crate::telemetry::RunTelemetry;
use coordination::Coordination;
use ecomflow_core::checkpoint::{Checkpoint, CheckpointConfig};
use ecomflow_core::component::CheckpointTransaction;
use ecomflow_core::partition_store::PartitionStore;
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The coordinator's task: it ends with the run, or with the error that stopped it.
pub(super) type CoordinatorTask = JoinHandle<Result<Result<(), String>, tokio::task::JoinError>>;

/// What the components of a run need of its checkpoints.
pub(super) struct Checkpointing {
    /// The coordinator's handles, when the run takes checkpoints.
    pub(super) coordination: Option<Coordination>,
    /// The coordinator itself.
    pub(super) task: Option<CoordinatorTask>,
    /// What sinks writing in the checkpoint's transaction join (see
    /// `load/checkpoint_links.rs`).
    pub(super) transaction: Option<CheckpointTransaction>,
    /// Checkpoints keep state (a `[checkpoint]` table), rather than only acknowledge.
    pub(super) keep_state: bool,
    /// Cancelled when the sources are to stop (after the stop's checkpoint is fixed).
    pub(super) stop_sources: CancellationToken,
    /// Where checkpoints are kept, for messages.
    pub(super) place: String,
    /// Where transforms keep their keyed state, when some do.
    pub(super) state: Option<Arc<StateStore>>,
}

/// Opens where `checkpoint` keeps checkpoints, reads what the run resumes from (without what
/// it kept for the components in `reset_state`) and starts the coordinator. Without a
/// `[checkpoint]` table, sources that want acknowledgements still get checkpoints that only
/// acknowledge. A checkpoint that cannot be read is the error.
#[allow(clippy::too_many_arguments)]
pub(super) async fn start(
    components: &mut [Component],
    dead_letter: &Component,
    checkpoint: Option<&CheckpointConfig>,
    state: &StateConfig,
    reset_state: &BTreeSet<String>,
    telemetry: &Arc<RunTelemetry>,
    shutdown: &CancellationToken,
) -> Result<Checkpointing, String> {
    let keyed = components.iter_mut().any(|c| match &mut c.built {
        Built::Transform(t) => !t.keyed_states().is_empty(),
        _ => false,
    });
    let keyed_config = keyed.then_some(state);
    let acknowledged_every = components
        .iter()
        .filter_map(|c| match &c.built {
            Built::Source(source) => source.capabilities().acknowledged_every,
            _ => None,
        })
        .min();
    let plan = match (checkpoint, acknowledged_every) {
        (Some(config), _) => {
            // Every component starting afresh needs nothing of the last checkpoint: a damaged
            // one is then set aside.
            let reset_all = components.iter().all(|c| reset_state.contains(&c.path()));
            let (keep, restored) = Keep::open(config, reset_all, keyed_config).await?;
            let restored = without_reset(restored, reset_state);
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
    let state = match keyed_config {
        Some(config) => {
            let committed = plan.as_ref().and_then(|(keep, ..)| keep.state().cloned());
            let whole = matches!(plan, Some((Keep::Shared(_), ..)));
            let store = StateStore::new(config, committed, whole, reset_state.clone())?;
            Some(Arc::new(store))
        }
        None => None,
    };
    let transaction = match &plan {
        Some((Keep::Shared(store), ..)) => store.transaction(),
        _ => None,
    };
    let (coordination, task) = match plan {
        Some((keep, interval, restored, store)) => {
            let mut participants: BTreeSet<String> =
                components.iter().map(Component::path).collect();
            participants.insert(dead_letter.id.clone());
            let (c, task) = coordination::start(
                keep,
                interval,
                restored,
                participants,
                store,
                telemetry.clone(),
            );
            (Some(c), Some(stops_the_run_on_failure(task, shutdown)))
        }
        None => (None, None),
    };
    let stop_sources = stop_sources_on(shutdown, coordination.as_ref());
    Ok(Checkpointing {
        coordination,
        task,
        transaction,
        keep_state: checkpoint.is_some(),
        stop_sources,
        place: checkpoint.map(CheckpointConfig::place).unwrap_or_default(),
        state,
    })
}

/// A checkpoint that cannot be kept stops the run (with its error): going on without
/// checkpoints would hold every source's progress back for good.
fn stops_the_run_on_failure(
    task: JoinHandle<Result<(), String>>,
    shutdown: &CancellationToken,
) -> CoordinatorTask {
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let result = task.await;
        if !matches!(result, Ok(Ok(()))) {
            shutdown.cancel();
        }
        result
    })
}

/// Sources stop when the run is asked to; with checkpoints, a last checkpoint is asked for
/// first, so a restart resumes exactly where this run stopped.
fn stop_sources_on(
    shutdown: &CancellationToken,
    coordination: Option<&Coordination>,
) -> CancellationToken {
    let stop = CancellationToken::new();
    let (shutdown, stopping) = (shutdown.clone(), stop.clone());
    let stop_checkpoint = coordination.map(|c| c.stop.clone());
    tokio::spawn(async move {
        shutdown.cancelled().await;
        // The coordinator fixes the checkpoint every source stops at (the next one); each
        // source takes part in every checkpoint up to it, after the last records it sends.
        if let Some(stop_checkpoint) = stop_checkpoint {
            let _ = stop_checkpoint.send(());
        }
        stopping.cancel();
    });
    stop
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
