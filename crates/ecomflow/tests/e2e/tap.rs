//! `ecomflow tap URL COMPONENT` against a running flagship: it prints records of the
//! component asked for (the `paid` filter's are all successful payments, the `failed`
//! filter's all failures), stops after `--limit`, and prints nothing at `--rate 0`; an
//! unknown component is an error that lists the real ones.

use common::http::served_url;
use common::processes::{signal, spawn};
use common::stack::{ecomflow, flagship_run};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::common;

/// The flagship, endless at a steady rate, serving on a free port.
fn start(dir: &std::path::Path) -> Child {
    let args = flagship_run(&[
        "sources.transactions.count=0",
        "sources.transactions.rate=2000",
        "http.port=0",
    ]);
    spawn(&args, &[], dir, &dir.join("stderr.log"))
}

/// `ecomflow tap` with `args`: its standard output as lines, and whether it succeeded.
fn tap(
    args: &[&str],
    dir: &std::path::Path,
    limit: Duration,
) -> (Vec<serde_json::Value>, bool, String) {
    let mut child = ecomflow(&[&["tap"], args].concat(), &[], dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tap starts");
    let started = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() && started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("tap output");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let records = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (
        records,
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tap_prints_records_of_the_component_asked_for_and_none_at_rate_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut run = start(dir.path());
    let url = served_url(&dir.path().join("stderr.log")).await;

    for (component, status) in [
        ("transforms.paid", "success"),
        ("transforms.failed", "failed"),
    ] {
        let (records, ok, err) = tap(
            &[&url, component, "--rate", "100", "--limit", "7"],
            dir.path(),
            Duration::from_secs(20),
        );
        assert!(ok, "tap {component} ends by itself after --limit: {err}");
        assert_eq!(records.len(), 7, "{component}: {records:?}");
        for r in &records {
            assert_eq!(r["paymentStatus"], status, "{component} sent {r}");
            assert!(r["total_amount_usd"].is_number(), "after the usd map: {r}");
        }
    }

    // 2,000 transactions a second, a third of them paid: the limit keeps the tap to 5 a
    // second (its bucket holds one second's worth).
    let (records, _, _) = tap(
        &[&url, "transforms.paid", "--rate", "5"],
        dir.path(),
        Duration::from_secs(3),
    );
    assert!(
        (5..=5 * 3 + 5).contains(&records.len()),
        "about 5 a second for 3 s: {}",
        records.len()
    );

    let (records, _, _) = tap(
        &[&url, "transforms.paid", "--rate", "0"],
        dir.path(),
        Duration::from_secs(3),
    );
    assert!(records.is_empty(), "rate 0 prints nothing: {records:?}");

    let (_, ok, err) = tap(
        &[&url, "sinks.transactions_table"],
        dir.path(),
        Duration::from_secs(10),
    );
    assert!(
        !ok && err.contains("is a sink"),
        "a sink sends nothing on: {err}"
    );

    let (_, ok, err) = tap(
        &[&url, "transforms.nope"],
        dir.path(),
        Duration::from_secs(10),
    );
    assert!(!ok, "an unknown component fails");
    assert!(
        err.contains("no component `transforms.nope`") && err.contains("transforms.paid"),
        "{err}"
    );

    signal(&run, "-TERM");
    let status = run.wait().expect("the run exits");
    assert!(status.success(), "the run drains and ends: {status}");
}
