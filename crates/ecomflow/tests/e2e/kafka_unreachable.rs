//! A Kafka broker that cannot be reached is something librdkafka retries on its own until the
//! broker is back: the run logs it as warnings, not errors, and stops cleanly on SIGTERM.

use common::processes::{signal, spawn};
use std::time::Duration;

use crate::common;

#[test]
fn an_unreachable_broker_is_logged_as_warnings_not_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = dir.path().join("p.toml");
    // Port 1 on loopback: nothing listens there.
    std::fs::write(
        &pipeline,
        "[sources.in]\ntype = \"kafka\"\nbootstrap_servers = \"127.0.0.1:1\"\n\
         topics = [\"nowhere\"]\ngroup_id = \"nobody\"\n\n\
         [sinks.out]\ntype = \"blackhole\"\ninputs = [\"in\"]\n\n[http]\nenabled = false\n",
    )
    .expect("write");
    let log = dir.path().join("run.log");
    let args = [
        "run".to_string(),
        "--quiet".into(),
        pipeline.display().to_string(),
    ];
    let mut run = spawn(&args, &[], dir.path(), &log);
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("Connection refused")
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "librdkafka never says it cannot connect:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    signal(&run, "-TERM");
    let status = run.wait().expect("exits");
    let text = std::fs::read_to_string(&log).expect("log");
    let refused: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Connection refused"))
        .collect();
    assert!(
        refused.iter().all(|l| l.contains(" WARN ")),
        "what librdkafka retries is a warning:\n{text}"
    );
    assert!(
        !text.contains(" ERROR "),
        "no error while it retries:\n{text}"
    );
    assert!(
        status.success(),
        "SIGTERM stops it cleanly: {status}\n{text}"
    );
}
