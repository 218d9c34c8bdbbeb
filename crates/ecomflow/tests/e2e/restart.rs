//! Checkpoints: the flagship stopped with SIGTERM mid-stream and started again ends with
//! exactly the tables of a run that was never interrupted: nothing lost, nothing counted twice.

#![cfg(unix)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common;

const COUNT: &str = "sources.transactions.count=30000";

fn ecomflow(dir: &Path, db: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecomflow"));
    cmd.arg("run")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/ecommerce.toml"))
        .args(extra)
        .args(["--set", COUNT])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join(db).display()),
        )
        .env("ECOMFLOW_DEAD_LETTER", dir.join(format!("{db}.dead.jsonl")))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_and_restarted_run_ends_with_the_uninterrupted_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let overlay = dir.path().join("checkpoint.toml");
    std::fs::write(
        &overlay,
        format!(
            "[checkpoint]\ndir = {:?}\ninterval = \"100ms\"\n",
            dir.path().join("state").display().to_string()
        ),
    )
    .expect("overlay");
    let overlay = overlay.to_str().expect("utf8").to_string();

    // The reference: one uninterrupted run.
    let out = ecomflow(dir.path(), "reference.db", &[])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The same job, paced so it is still running when SIGTERM comes, then started again.
    let paced = [overlay.as_str(), "--set", "sources.transactions.rate=15000"];
    let child = ecomflow(dir.path(), "restarted.db", &paced)
        .spawn()
        .expect("starts");
    std::thread::sleep(Duration::from_millis(1000));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let first = child.wait_with_output().expect("exits");
    let first_log = String::from_utf8_lossy(&first.stderr).into_owned();
    assert!(first.status.success(), "{first_log}");
    let generated: u64 = first_log
        .lines()
        .find(|l| l.starts_with("sources.transactions"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary in:\n{first_log}"));
    assert!(
        generated > 0 && generated < 30000,
        "the first run was stopped mid-stream ({generated} sent)"
    );
    assert!(dir.path().join("state/checkpoint.json").exists());

    let second = ecomflow(dir.path(), "restarted.db", &[overlay.as_str()])
        .output()
        .expect("runs again");
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );

    let reference = common::sqlite_file_dump(&dir.path().join("reference.db"), None).await;
    let restarted = common::sqlite_file_dump(&dir.path().join("restarted.db"), None).await;
    assert_eq!(reference.len(), restarted.len(), "row counts differ");
    let first_difference = reference.iter().zip(&restarted).find(|(a, b)| a != b);
    assert!(
        first_difference.is_none(),
        "the tables differ: {first_difference:?}"
    );
}
