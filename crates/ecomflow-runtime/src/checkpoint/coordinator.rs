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
//! by themselves. Without a directory (a pipeline with no `[checkpoint]` table whose sources
//! want acknowledgements), checkpoints only acknowledge: nothing is written.

use super::Keep;
use crate::telemetry::{CheckpointRecord, RunTelemetry, now_millis};
use ecomflow_core::PartitionId;
use ecomflow_core::checkpoint::{Checkpoint, Held, PartitionCheckpoint, Report};
use ecomflow_core::partition_store::PartitionStore;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::{mpsc, watch};

/// The coordinator's handles, shared with the components.
pub struct Coordination {
    /// The newest checkpoint asked for.
    pub requested: Arc<AtomicU64>,
    /// Woken when a checkpoint is asked for.
    pub asked: Arc<tokio::sync::Notify>,
    /// Where components report.
    pub reports: mpsc::UnboundedSender<Report>,
    /// Asks for a checkpoint as soon as the one under way is done (sources at their end, the
    /// stop of the run).
    pub wanted: mpsc::UnboundedSender<()>,
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
    let (completed_tx, completed) = watch::channel(restored.id);
    let task = tokio::spawn(coordinate(
        Coordinator {
            keep,
            requested: requested.clone(),
            asked: asked.clone(),
            participants,
            ended: BTreeSet::new(),
            pending: BTreeMap::new(),
            last: restored.clone(),
            completed: completed_tx,
            store: store.clone(),
            in_flight: None,
            again: false,
            asked_at: Instant::now(),
            telemetry,
        },
        reports,
        wanted,
        interval,
    ));
    (
        Coordination {
            requested,
            asked,
            reports: reports_tx,
            wanted: wanted_tx,
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
}

struct Coordinator {
    keep: Keep,
    requested: Arc<AtomicU64>,
    asked: Arc<tokio::sync::Notify>,
    participants: BTreeSet<String>,
    ended: BTreeSet<String>,
    pending: BTreeMap<u64, Pending>,
    last: Checkpoint,
    completed: watch::Sender<u64>,
    store: PartitionStore,
    /// The checkpoint asked for and not completed yet: there is never more than one.
    in_flight: Option<u64>,
    /// Another checkpoint was wanted while one was under way: ask for it once that is done.
    again: bool,
    /// When the checkpoint under way was asked for.
    asked_at: Instant,
    /// Where completed checkpoints and failures are shown.
    telemetry: Arc<RunTelemetry>,
}

async fn coordinate(
    mut c: Coordinator,
    mut reports: mpsc::UnboundedReceiver<Report>,
    mut wanted: mpsc::UnboundedReceiver<()>,
    interval: std::time::Duration,
) -> Result<(), String> {
    let mut ticker = crate::ticker::every(interval);
    loop {
        if c.ended.len() == c.participants.len() {
            return Ok(());
        }
        tokio::select! {
            _ = ticker.tick() => c.begin_or_queue(false),
            Some(()) = wanted.recv() => c.begin_or_queue(true),
            report = reports.recv() => {
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
            } => {
                let p = self.pending.entry(id).or_default();
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
            Report::Ended { component } => {
                self.ended.insert(component.to_string());
            }
        }
        self.complete_ready().await
    }

    /// Completes the oldest pending checkpoint once every component (the dead-letter output
    /// included) has reported it or ended.
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
            .all(|c| p.reported.contains(c) || self.ended.contains(c));
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
        for (partition, kept) in fresh {
            next.partitions
                .entry(partition.source.to_string())
                .or_default()
                .insert(partition.key(), kept);
        }
        let committed = self.keep.commit(&next, &held).await;
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

/// Tells the checkpoint coordinator that a component has ended.
pub fn ended(reports: &Option<mpsc::UnboundedSender<Report>>, component: Arc<str>) {
    if let Some(r) = reports {
        let _ = r.send(Report::Ended { component });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn partition(number: i32) -> Arc<PartitionId> {
        Arc::new(PartitionId {
            source: "sources.s".into(),
            topic: "t".into(),
            number,
        })
    }

    fn kept(position: i64, state: i64) -> PartitionCheckpoint {
        PartitionCheckpoint {
            position: json!(position),
            transforms: BTreeMap::from([("transforms.x".to_string(), json!(state))]),
        }
    }

    #[tokio::test]
    async fn a_partition_held_now_is_replaced_and_the_others_keep_what_they_had() {
        let mut restored = Checkpoint::default();
        restored.partitions.insert(
            "sources.s".into(),
            BTreeMap::from([
                ("t/0".to_string(), kept(5, 1)),
                ("t/1".to_string(), kept(9, 4)),
            ]),
        );
        let store = PartitionStore::new(restored.clone());
        let participants = BTreeSet::from(["sources.s".to_string(), "transforms.x".to_string()]);
        let telemetry = RunTelemetry::detached();
        let (c, task) = start(
            Keep::Nothing,
            std::time::Duration::from_secs(3600),
            restored,
            participants,
            store.clone(),
            telemetry.clone(),
        );
        let mut completed = c.completed.clone();
        let held = |number, position| ecomflow_core::checkpoint::Held {
            partition: partition(number),
            position: json!(position),
            claim: None,
        };
        // Partition 0 held now (read on to 6), and a partition 2 new since; 1 went elsewhere.
        let _ = c.reports.send(Report::Source {
            id: 1,
            component: "sources.s".into(),
            position: json!({}),
            partitions: vec![held(0, 6), held(2, 3)],
        });
        let _ = c.reports.send(Report::Transform {
            id: 1,
            component: "transforms.x".into(),
            state: None,
            partitions: vec![(partition(0), json!(2)), (partition(1), json!(100))],
        });
        completed.wait_for(|id| *id >= 1).await.expect("completes");
        let shown = telemetry.checkpoints.last().expect("shown");
        assert_eq!(shown.id, 1);
        assert!(shown.size > 0, "the size of what it kept: {shown:?}");
        let latest = store.latest();
        assert_eq!(latest.partition(&partition(0)), Some(&kept(6, 2)));
        assert_eq!(
            latest.partition(&partition(1)),
            Some(&kept(9, 4)),
            "not held at the barrier: what it had, not a state reported for it"
        );
        let fresh = latest.partition(&partition(2)).expect("kept");
        assert_eq!(fresh.position, json!(3));
        assert!(fresh.transforms.is_empty(), "nothing built from it yet");
        let _ = c.reports.send(Report::Ended {
            component: "sources.s".into(),
        });
        let _ = c.reports.send(Report::Ended {
            component: "transforms.x".into(),
        });
        task.await.expect("no panic").expect("ends");
    }
}
