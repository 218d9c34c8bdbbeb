//! Tests of the checkpoint coordinator: which checkpoint a stop fixes, components that end or
//! fail, and what it keeps per partition.

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

fn two_components() -> (Coordination, tokio::task::JoinHandle<Result<(), String>>) {
    let participants = BTreeSet::from(["sources.s".to_string(), "transforms.x".to_string()]);
    start(
        Keep::Nothing,
        std::time::Duration::from_secs(3600),
        Checkpoint::default(),
        participants,
        PartitionStore::new(Checkpoint::default()),
        RunTelemetry::detached(),
    )
}

fn source_at(id: u64, position: i64) -> Report {
    Report::Source {
        id,
        component: "sources.s".into(),
        position: json!(position),
        partitions: Vec::new(),
    }
}

fn ended(component: &str, finished: bool) -> Report {
    Report::Ended {
        component: component.into(),
        finished,
    }
}

#[tokio::test]
async fn a_checkpoint_a_stopped_component_did_not_report_is_not_kept() {
    let (c, task) = two_components();
    let _ = c.reports.send(source_at(1, 10));
    // Stopped for a restart before barrier 1 came from all its inputs: its part of
    // checkpoint 1 is missing, so checkpoint 1 would pair the source's position with the
    // transform's older state.
    let _ = c.reports.send(ended("transforms.x", false));
    let _ = c.reports.send(ended("sources.s", false));
    task.await.expect("no panic").expect("ends");
    assert_eq!(*c.completed.borrow(), 0, "checkpoint 1 was completed");
    assert_eq!(c.store.latest().id, 0);
}

#[tokio::test]
async fn a_component_that_finished_takes_part_in_no_later_checkpoint() {
    let (c, task) = two_components();
    let mut completed = c.completed.clone();
    // Every input of the transform ended and it sent its end on: the source's position
    // holds everything, so checkpoint 1 is whole without the transform.
    let _ = c.reports.send(ended("transforms.x", true));
    let _ = c.reports.send(source_at(1, 10));
    completed.wait_for(|id| *id >= 1).await.expect("completes");
    assert_eq!(c.store.latest().sources["sources.s"], json!(10));
    let _ = c.reports.send(ended("sources.s", true));
    task.await.expect("no panic").expect("ends");
}

#[tokio::test]
async fn a_stop_fixes_the_next_checkpoint_as_the_one_every_source_stops_at() {
    // Nothing under way: the stop asks for checkpoint 1 at once.
    let (c, task) = two_components();
    let mut stop_at = c.stop_at.clone();
    let _ = c.stop.send(());
    let at = *stop_at.wait_for(Option::is_some).await.expect("fixed");
    assert_eq!(at, Some(1));
    assert_eq!(c.requested.load(Ordering::Acquire), 1);
    task.abort();

    // Checkpoint 1 under way: the stop's is 2, asked for once 1 is done.
    let (c, task) = two_components();
    let _ = c.wanted.send(());
    while c.requested.load(Ordering::Acquire) < 1 {
        tokio::task::yield_now().await;
    }
    let mut stop_at = c.stop_at.clone();
    let _ = c.stop.send(());
    let at = *stop_at.wait_for(Option::is_some).await.expect("fixed");
    assert_eq!(at, Some(2));
    assert_eq!(c.requested.load(Ordering::Acquire), 1, "one at a time");
    let _ = c.reports.send(source_at(1, 10));
    let _ = c.reports.send(Report::Transform {
        id: 1,
        component: "transforms.x".into(),
        state: None,
        partitions: Vec::new(),
        deltas: Vec::new(),
    });
    let mut completed = c.completed.clone();
    completed.wait_for(|id| *id >= 1).await.expect("completes");
    while c.requested.load(Ordering::Acquire) < 2 {
        tokio::task::yield_now().await;
    }
    task.abort();
}

#[tokio::test]
async fn a_failed_component_stops_the_coordinator() {
    let (c, task) = two_components();
    c.failed.cancel();
    task.await
        .expect("no panic")
        .expect("ends without an error of its own");
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
        deltas: Vec::new(),
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
    let _ = c.reports.send(ended("sources.s", true));
    let _ = c.reports.send(ended("transforms.x", true));
    task.await.expect("no panic").expect("ends");
}
