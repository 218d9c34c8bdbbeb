//! A crash loop on the real stack (`scripts/services.sh`): the flagship with the
//! `real-stack.toml` overlay, killed (SIGKILL) once it owns the topic, is started again at
//! once. With the overlay's static membership (`instance_id = "auto"`) it comes back under the
//! same id and owns its partitions again within seconds, not after the dead member's session
//! (`session.timeout.ms`, 45 s by default) as a new dynamic member would.

#![cfg(unix)]

use common::http::served_url;
use common::processes::{KillOnDrop, signal, spawn, spawn_generator};
use common::stack::{elasticsearch, kafka, pipeline};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::common;

/// The member: reading the topic for good, serving on a free port.
fn member(dir: &Path, topic: &str, group: &str, run: &str) -> Child {
    let args: Vec<String> = [
        "run".to_string(),
        "--quiet".into(),
        pipeline("ecommerce.toml"),
        pipeline("real-stack.toml"),
        "--set".into(),
        format!("sources.transactions.topics=[\"{topic}\"]"),
        "--set".into(),
        format!("sources.transactions.group_id=\"{group}\""),
        "--set".into(),
        format!("sinks.transactions_index.index=\"{group}\""),
        "--set".into(),
        "http.port=0".into(),
    ]
    .to_vec();
    let envs = [
        ("KAFKA_BOOTSTRAP_SERVERS", kafka()),
        ("ELASTICSEARCH_URL", elasticsearch()),
        (
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("t.db").display()),
        ),
        (
            "ECOMFLOW_STATE_DIR",
            dir.join("state").display().to_string(),
        ),
        (
            "ECOMFLOW_DEAD_LETTER",
            dir.join(format!("{run}.dead.jsonl")).display().to_string(),
        ),
    ];
    spawn(&args, &envs, dir, &dir.join(format!("{run}.log")))
}

/// How long until the run logging to `log` is ready (owns its partitions), at most `limit`.
async fn ready_after(log: &Path, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let url = served_url(log).await;
    while started.elapsed() < limit {
        if let Ok(r) = reqwest::get(format!("{url}ready")).await
            && r.status().is_success()
        {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_killed_and_started_again_owns_its_partitions_at_once() {
    let id = std::process::id();
    let topic = format!("ecomflow_static_{id}");
    let group = format!("ecomflow_static_{id}");
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let _keep = common::KeepOnFailure::new(dir, "static_membership");
    let (mut generator, _) = spawn_generator(&topic, 2000, 0, dir);
    assert!(generator.wait().expect("generator").success());

    let mut first = member(dir, &topic, &group, "first");
    let mut running = KillOnDrop(vec![first.id()]);
    ready_after(&dir.join("first.log"), Duration::from_secs(60))
        .await
        .expect("the first run owns the topic");
    signal(&first, "-KILL");
    let _ = first.wait();

    let mut second = member(dir, &topic, &group, "second");
    running.0.push(second.id());
    // A new dynamic member would wait out the killed one's session: 45 s.
    let took = ready_after(&dir.join("second.log"), Duration::from_secs(40)).await;
    let log = std::fs::read_to_string(dir.join("second.log")).unwrap_or_default();
    let took =
        took.unwrap_or_else(|| panic!("the restarted member waits for its partitions:\n{log}"));
    assert!(
        took < Duration::from_secs(20),
        "ready after {took:?}:\n{log}"
    );
    assert!(log.contains("static group membership"), "{log}");
    signal(&second, "-TERM");
    let _ = second.wait();
    let _ = reqwest::Client::new()
        .delete(format!("{}/{group}", elasticsearch()))
        .send()
        .await;
}
