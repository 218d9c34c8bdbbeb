//! Builds the example binary (cargo does, for this test) and runs the example pipelines: one
//! with `mask`, one with the `sequence` source and the `lines` sink, stopped and resumed.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ecomflow-with-mask"))
}

#[test]
fn list_shows_the_plugin_beside_the_built_ins() {
    let out = bin().arg("list").output().expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("transform mask: Masks string fields"),
        "{text}"
    );
    assert!(text.contains("source sequence: The numbers"), "{text}");
    assert!(
        text.contains("sink lines: Writes a field per line"),
        "{text}"
    );
    assert!(text.contains("source generator:"), "{text}");
}

#[test]
fn a_pipeline_using_mask_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = dir.path().join("masked.jsonl");
    let pipeline = concat!(env!("CARGO_MANIFEST_DIR"), "/pipeline.toml");
    let status = bin()
        .args(["run", pipeline])
        .env("OUT", &out_path)
        .current_dir(dir.path())
        .status()
        .expect("runs");
    assert!(status.success());
    let text = std::fs::read_to_string(&out_path).expect("output written");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 5);
    for l in lines {
        let id = l["customerId"].as_str().expect("customerId is a string");
        assert!(id.len() > 1 && id[1..].chars().all(|c| c == '*'), "{id}");
    }
}

/// The numbers in the `lines` file, in order.
fn numbers(path: &std::path::Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| l.parse().expect("a number a line"))
        .collect()
}

#[test]
fn a_stopped_sequence_resumes_where_it_left_off_and_ends_with_every_number_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("numbers.txt");
    let pipeline = concat!(env!("CARGO_MANIFEST_DIR"), "/sequence.toml");
    let run = |every: &str| {
        let mut c = bin();
        c.args(["run", pipeline, "--quiet"])
            .env("OUT", &out)
            .env("STATE", dir.path().join("state"))
            .env("EVERY", every)
            .current_dir(dir.path());
        c
    };
    // 200 batches 10 ms apart: stopped (SIGTERM) after about a second, mid-way.
    let mut first = run("10ms").spawn().expect("runs");
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let stopped = Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(stopped.success());
    assert!(
        first.wait().expect("waits").success(),
        "a stop drains and exits 0"
    );
    let before = numbers(&out);
    assert!(
        !before.is_empty() && before.len() < 20_000,
        "stopped mid-way: {} numbers",
        before.len()
    );
    assert_eq!(before, (0..before.len() as u64).collect::<Vec<_>>());

    assert!(run("0s").status().expect("runs").success());
    let all = numbers(&out);
    assert_eq!(
        all,
        (0..20_000).collect::<Vec<_>>(),
        "every number once, in order"
    );
}
