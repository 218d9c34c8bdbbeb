//! The flagship on its embedded defaults serves `/metrics`, `/health` and `/ready` while it
//! runs: every scrape parses with Python's `prometheus_client`, the counters move during the
//! run, and the scrape after the end (the server lingers) equals the end-of-run table,
//! component by component.

use common::http::{get, parse_metrics, served_url, value_of};
use common::processes::{signal, spawn};
use common::stack::flagship_run;
use std::time::{Duration, Instant};

use crate::common;

/// The end-of-run table in `log`: (component, [received, sent, dead-lettered, dropped]).
fn end_of_run_table(log: &str) -> Vec<(String, [u64; 4])> {
    let table = log
        .split("dead-lettered    dropped\n")
        .nth(1)
        .expect("the end-of-run table");
    table
        .lines()
        .take_while(|l| !l.starts_with("finished in"))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(fields.len(), 5, "a row of the table: {line:?}");
            let n = |i: usize| fields[i].parse::<u64>().expect("a count");
            (fields[0].to_string(), [n(1), n(2), n(3), n(4)])
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_parse_and_the_last_one_equals_the_end_of_run_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("stderr.log");
    // About 4 s of transactions, so that scrapes land mid-run.
    let args = flagship_run(&[
        "sources.transactions.count=40000",
        "sources.transactions.rate=10000",
        "http.port=0",
        "http.linger=\"60s\"",
    ]);
    let mut child = spawn(&args, &[], dir.path(), &log);
    let url = served_url(&log).await;

    let mut mid_run = 0;
    let started = Instant::now();
    let text = loop {
        let so_far = std::fs::read_to_string(&log).unwrap_or_default();
        // Health before the metrics: when the scrape after it shows the run mid-way, the run
        // was still going when health answered (a run can end between the two requests).
        let health = get(&format!("{url}health")).await;
        let (_, body) = get(&format!("{url}metrics")).await;
        if so_far.contains("finished in") {
            // Scraped after the table was printed: the final figures.
            break body;
        }
        let samples = parse_metrics(&body);
        let read = value_of(
            &samples,
            "ecomflow_records_received_total",
            "sources.transactions",
        )
        .expect("the source's counter");
        if read > 0.0 && read < 40000.0 {
            mid_run += 1;
            let (code, health) = &health;
            assert_eq!((*code, health.as_str()), (200, r#"{"status":"running"}"#));
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the run does not end:\n{so_far}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(mid_run >= 2, "scrapes during the run: {mid_run}");

    let samples = parse_metrics(&text);
    let log_text = std::fs::read_to_string(&log).expect("log");
    let table = end_of_run_table(&log_text);
    assert_eq!(
        table.len(),
        22,
        "every component and the dead-letter output:\n{log_text}"
    );
    for (component, counts) in &table {
        let names = [
            "ecomflow_records_received_total",
            "ecomflow_records_sent_total",
            "ecomflow_records_dead_lettered_total",
            "ecomflow_records_dropped_total",
        ];
        for (name, expected) in names.iter().zip(counts) {
            assert_eq!(
                value_of(&samples, name, component),
                Some(*expected as f64),
                "{name} of {component}"
            );
        }
    }
    // Every sink batch was timed, and the run kept no checkpoint (no `[checkpoint]`).
    for sink in table.iter().filter(|(c, _)| c.starts_with("sinks.")) {
        let batches = value_of(&samples, "ecomflow_sink_batches_total", &sink.0);
        let timed = value_of(&samples, "ecomflow_sink_write_seconds_count", &sink.0);
        assert!(batches.is_some_and(|b| b > 0.0), "{}: {batches:?}", sink.0);
        assert_eq!(batches, timed, "{}", sink.0);
    }
    let watermark = value_of(
        &samples,
        "ecomflow_watermark_seconds",
        "sources.transactions",
    )
    .expect("the source's watermark");
    // The flagship's event clock starts on 2025-01-31 and moves 2 s per transaction.
    assert!(
        (1.738e9..1.75e9).contains(&watermark),
        "seconds since the epoch: {watermark}"
    );
    assert!(
        samples
            .iter()
            .any(|s| s.name == "process_resident_memory_bytes" && s.value > 1e6)
    );
    let (code, ready) = get(&format!("{url}ready")).await;
    assert_eq!(code, 503, "a finished run is not ready: {ready}");
    signal(&child, "-TERM");
    let status = child.wait().expect("ecomflow exits");
    assert!(
        status.success(),
        "a signal during the linger ends it: {status}"
    );
}
