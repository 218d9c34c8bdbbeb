//! The checkpoint coordinator: the one owner of when checkpoints are taken.
//!
//! Every `interval` the coordinator asks for checkpoint `n`: each source puts barrier `n`
//! into its stream at a batch boundary and reports where it stands; each transform, once
//! barrier `n` has come from every input (holding back what an input sends after its own
//! barrier), reports its state and passes the barrier on; each sink makes everything before
//! the barrier durable and reports, and so does the dead-letter output once the barrier has
//! come from every component. When every component has reported (or ended), the checkpoint
//! is written to its directory: a restarted pipeline resumes from it. One checkpoint is under
//! way at a time; sources and the stop of the run ask for one through the coordinator, never
//! by themselves. A stop fixes the checkpoint every source stops at (the next one) and every
//! source takes part in each checkpoint up to it. A component stopped for a restart (not at
//! the end of all its inputs) sends no end on, so a checkpoint it has not reported never
//! completes: the restart then resumes from an earlier one. Without a directory (a pipeline
//! with no `[checkpoint]` table whose sources want acknowledgements), checkpoints only
//! acknowledge: nothing is written.

use super::Keep;
use crate::telemetry::{CheckpointRecord, RunTelemetry, now_millis};
use ecomflow_core::PartitionId;
use ecomflow_core::checkpoint::{Checkpoint, Held, PartitionCheckpoint, Report};
use ecomflow_core::partition_store::PartitionStore;
use ecomflow_core::state::Delta;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// The coordinator's handles, shared with the components.
pub struct Coordination {
    /// The newest checkpoint asked for.
    pub requested: Arc<AtomicU64>,
    /// Woken when a checkpoint is asked for.
    pub asked: Arc<tokio::sync::Notify>,
    /// Where components report.
    pub reports: mpsc::UnboundedSender<Report>,
    /// Asks for a checkpoint as soon as the one under way is done (sources at their end).
    pub wanted: mpsc::UnboundedSender<()>,
    /// The run stops: fixes the checkpoint every source stops at (the next one).
    pub stop: mpsc::UnboundedSender<()>,
    /// The checkpoint every source stops at, once a stop has fixed it.
    pub stop_at: watch::Receiver<Option<u64>>,
    /// Cancelled when a component failed: the coordinator stops, since no checkpoint can
    /// complete without the failed component, and nothing waits for one.
    pub failed: CancellationToken,
    /// The newest completed checkpoint.
    pub completed: watch::Receiver<u64>,
    /// The checkpoint the run resumed from.
    pub restored: Checkpoint,
    /// What the newest completed checkpoint keeps for each partition.
    pub store: PartitionStore,
}

/// Starts the coordinator for the components in `participants` (paths, the dead-letter
/// output's among them), asking for a checkpoint every `interval` and keeping completed ones
/// in `keep`; partitions assigned resume from `store`.
pub fn start(
    keep: Keep,
    interval: std::time::Duration,
    restored: Checkpoint,
    participants: BTreeSet<String>,
    store: PartitionStore,
    telemetry: Arc<RunTelemetry>,
) -> (Coordination, tokio::task::JoinHandle<Result<(), String>>) {
    let requested = Arc::new(AtomicU64::new(restored.id));
    let asked = Arc::new(tokio::sync::Notify::new());
    let (reports_tx, reports) = mpsc::unbounded_channel();
    let (wanted_tx, wanted) = mpsc::unbounded_channel();
    let (stop_tx, stop) = mpsc::unbounded_channel();
    let (stop_at_tx, stop_at) = watch::channel(None);
    let failed = CancellationToken::new();
    let (completed_tx, completed) = watch::channel(restored.id);
    let task = tokio::spawn(coordinate(
        Coordinator {
            keep,
            requested: requested.clone(),
            asked: asked.clone(),
            participants,
            ended: BTreeSet::new(),
            finished: BTreeSet::new(),
            pending: BTreeMap::new(),
            last: restored.clone(),
            completed: completed_tx,
            store: store.clone(),
            in_flight: None,
            again: false,
            stop_at: stop_at_tx,
            asked_at: Instant::now(),
            telemetry,
        },
        Inbox {
            reports,
            wanted,
            stop,
            failed: failed.clone(),
        },
        interval,
    ));
    (
        Coordination {
            requested,
            asked,
            reports: reports_tx,
            wanted: wanted_tx,
            stop: stop_tx,
            stop_at,
            failed,
            completed,
            restored,
            store,
        },
        task,
    )
}

#[derive(Default)]
struct Pending {
    reported: BTreeSet<String>,
    sources: BTreeMap<String, serde_json::Value>,
    transforms: BTreeMap<String, serde_json::Value>,
    /// The partitions the sources hold.
    partitions: Vec<Held>,
    /// Transforms' states of partitions: (partition, transform path, state).
    partition_states: Vec<(Arc<PartitionId>, String, serde_json::Value)>,
    /// What changed in transforms' keyed states, of the whole shard or of a partition.
    deltas: Vec<(Option<Arc<PartitionId>>, Delta)>,
}

struct Coordinator {
    keep: Keep,
    requested: Arc<AtomicU64>,
    asked: Arc<tokio::sync::Notify>,
    participants: BTreeSet<String>,
    /// The components that have ended.
    ended: BTreeSet<String>,
    /// The components that ended with the end of all their inputs and sent their end on.
    finished: BTreeSet<String>,
    pending: BTreeMap<u64, Pending>,
    last: Checkpoint,
    completed: watch::Sender<u64>,
    store: PartitionStore,
    /// The checkpoint asked for and not completed yet: there is never more than one.
    in_flight: Option<u64>,
    /// Another checkpoint was wanted while one was under way: ask for it once that is done.
    again: bool,
    /// The checkpoint every source stops at, once the run is stopping.
    stop_at: watch::Sender<Option<u64>>,
    /// When the checkpoint under way was asked for.
    asked_at: Instant,
    /// Where completed checkpoints and failures are shown.
    telemetry: Arc<RunTelemetry>,
}

/// What the coordinator hears from the run.
struct Inbox {
    reports: mpsc::UnboundedReceiver<Report>,
    wanted: mpsc::UnboundedReceiver<()>,
    stop: mpsc::UnboundedReceiver<()>,
    failed: CancellationToken,
}

async fn coordinate(
    mut c: Coordinator,
    mut inbox: Inbox,
    interval: std::time::Duration,
) -> Result<(), String> {
    let mut ticker = crate::ticker::every(interval);
    loop {
        if c.ended.len() == c.participants.len() {
            c.left_incomplete();
            return Ok(());
        }
        tokio::select! {
            _ = ticker.tick() => c.begin_or_queue(false),
            Some(()) = inbox.wanted.recv() => c.begin_or_queue(true),
            Some(()) = inbox.stop.recv() => c.stop(),
            _ = inbox.failed.cancelled() => return Ok(()),
            report = inbox.reports.recv() => {
                let Some(report) = report else { return Ok(()) };
                c.take(report).await?;
            }
        }
    }
}

impl Coordinator {
    /// Asks for the next checkpoint, unless one is under way: one at a time keeps the
    /// held-back data small, and every source takes part in every checkpoint in order. A
    /// checkpoint `wanted` while one is under way is asked for as soon as that one is done.
    fn begin_or_queue(&mut self, wanted: bool) {
        if self.in_flight.is_some() {
            self.again |= wanted;
            return;
        }
        let id = self.requested.fetch_add(1, Ordering::AcqRel) + 1;
        self.in_flight = Some(id);
        self.asked_at = Instant::now();
        self.asked.notify_waiters();
    }

    /// The run stops: the next checkpoint is the one every source stops at (asked for now, or
    /// once the one under way is done).
    fn stop(&mut self) {
        if self.stop_at.borrow().is_some() {
            return;
        }
        let at = self.requested.load(Ordering::Acquire) + 1;
        self.begin_or_queue(true);
        self.stop_at.send_replace(Some(at));
    }

    /// Every component has ended: a checkpoint still pending could not complete, because a
    /// component stopped before it reported it.
    fn left_incomplete(&self) {
        for (id, p) in &self.pending {
            let missing: Vec<&str> = self
                .participants
                .iter()
                .filter(|c| !p.reported.contains(*c) && !self.finished.contains(*c))
                .map(String::as_str)
                .collect();
            tracing::warn!(
                checkpoint = id,
                kept = self.last.id,
                "checkpoint {id} is not kept: {} stopped before taking part in it; a \
                 restart resumes from checkpoint {}",
                missing.join(", "),
                self.last.id
            );
        }
    }

    /// The checkpoint under way is over (completed, or every source ended before it).
    fn over(&mut self, id: u64) {
        if self.in_flight.is_some_and(|f| f <= id) {
            self.in_flight = None;
            if std::mem::take(&mut self.again) {
                self.begin_or_queue(false);
            }
        }
    }

    async fn take(&mut self, report: Report) -> Result<(), String> {
        match report {
            Report::Source {
                id,
                component,
                position,
                partitions,
            } => {
                let p = self.pending.entry(id).or_default();
                p.reported.insert(component.to_string());
                p.sources.insert(component.to_string(), position);
                p.partitions.extend(partitions);
            }
            Report::Transform {
                id,
                component,
                state,
                partitions,
                deltas,
            } => {
                let p = self.pending.entry(id).or_default();
                p.deltas.extend(deltas);
                p.reported.insert(component.to_string());
                if let Some(state) = state {
                    p.transforms.insert(component.to_string(), state);
                }
                for (partition, state) in partitions {
                    p.partition_states
                        .push((partition, component.to_string(), state));
                }
            }
            Report::Sink { id, component } => {
                self.pending
                    .entry(id)
                    .or_default()
                    .reported
                    .insert(component.to_string());
            }
            Report::Ended {
                component,
                finished,
            } => {
                if finished {
                    self.finished.insert(component.to_string());
                }
                self.ended.insert(component.to_string());
            }
        }
        self.complete_ready().await
    }

    /// Completes the oldest pending checkpoint once every component (the dead-letter output
    /// included) has reported it or finished: one stopped without reporting it leaves it
    /// incomplete.
    async fn complete_ready(&mut self) -> Result<(), String> {
        loop {
            if !self.complete_oldest().await? {
                return Ok(());
            }
        }
    }

    /// Completes the oldest pending checkpoint if it is ready; true when one was completed
    /// (the next may be ready too).
    async fn complete_oldest(&mut self) -> Result<bool, String> {
        let Some((&id, p)) = self.pending.iter().next() else {
            return Ok(false);
        };
        let all = self
            .participants
            .iter()
            .all(|c| p.reported.contains(c) || self.finished.contains(c));
        if all && !p.sources.is_empty() {
            self.complete(id).await?;
            Ok(true)
        } else {
            if all {
                // Every source had ended before it: nothing to resume from.
                self.pending.remove(&id);
                self.over(id);
            }
            Ok(false)
        }
    }

    async fn complete(&mut self, id: u64) -> Result<(), String> {
        let Some(p) = self.pending.remove(&id) else {
            return Ok(());
        };
        let mut next = self.last.clone();
        next.id = id;
        next.sources.extend(p.sources);
        next.transforms.extend(p.transforms);
        // A partition a source holds now gets what was built from it up to this checkpoint;
        // the others keep what they had (their owner, or this process before, made it
        // durable).
        let held: Vec<(Arc<PartitionId>, Option<i64>)> = p
            .partitions
            .iter()
            .map(|h| (h.partition.clone(), h.claim))
            .collect();
        let mut fresh: BTreeMap<Arc<PartitionId>, PartitionCheckpoint> = p
            .partitions
            .into_iter()
            .map(|h| {
                let kept = PartitionCheckpoint {
                    position: h.position,
                    transforms: BTreeMap::new(),
                };
                (h.partition, kept)
            })
            .collect();
        for (partition, component, state) in p.partition_states {
            if let Some(kept) = fresh.get_mut(&partition) {
                kept.transforms.insert(component, state);
            }
        }
        // A partition's changes are kept with it: not when its source no longer held it.
        let deltas: Vec<Delta> = p
            .deltas
            .into_iter()
            .filter(|(partition, _)| partition.as_ref().is_none_or(|p| fresh.contains_key(p)))
            .map(|(_, delta)| delta)
            .collect();
        for (partition, kept) in fresh {
            next.partitions
                .entry(partition.source.to_string())
                .or_default()
                .insert(partition.key(), kept);
        }
        let committed = self.keep.commit(&next, &held, &deltas).await;
        if committed.is_err() {
            self.telemetry.checkpoints.failed();
        }
        for lost in committed? {
            // Claimed by another process since the barrier: what this process built from it
            // was not kept; the other process resumes it from what was committed before.
            tracing::warn!(
                checkpoint = id,
                partition = %ecomflow_core::Shard::Partition(lost.clone()),
                "the partition belongs to another process now: this process's work on it \
                 since the last checkpoint is dropped"
            );
            if let Some(source) = next.partitions.get_mut(&*lost.source) {
                source.remove(&lost.key());
            }
        }
        self.telemetry.checkpoints.completed(CheckpointRecord {
            id,
            completed_at: now_millis(),
            duration: self.asked_at.elapsed(),
            size: serde_json::to_vec(&next).map_or(0, |v| v.len() as u64),
        });
        self.store.set(next.clone());
        self.last = next;
        let _ = self.completed.send(id);
        tracing::debug!(checkpoint = id, "checkpoint complete");
        self.over(id);
        Ok(())
    }
}

/// Tells the checkpoint coordinator that a component has ended: `finished` when every input
/// ended and it sent its end on, not when it was stopped for a restart.
pub fn ended(reports: &Option<mpsc::UnboundedSender<Report>>, component: Arc<str>, finished: bool) {
    if let Some(r) = reports {
        let _ = r.send(Report::Ended {
            component,
            finished,
        });
    }
}

#[cfg(test)]
#[path = "coordinator_tests.rs"]
mod tests;
