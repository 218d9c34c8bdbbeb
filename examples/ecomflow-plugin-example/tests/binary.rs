//! Builds the example binary (cargo does, for this test) and runs a pipeline that uses `mask`.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ecomflow-with-mask"))
}

#[test]
fn list_shows_the_plugin_beside_the_built_ins() {
    let out = bin().arg("list").output().expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("transform mask: Hides all but"), "{text}");
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
