//! The embedded flagship's five `sql` sinks share one SQLite file: run it on a fresh file a few
//! hundred times and fail if any run takes more than a few seconds (sinks that fought over the
//! file's lock stalled about one run in a hundred for the 30 s busy timeout).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 500;
/// A run of 100 transactions takes well under a second; a stall takes the busy timeout.
const SLOW: Duration = Duration::from_secs(5);

#[test]
fn the_embedded_flagship_never_stalls_on_its_shared_sqlite_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flagship = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/ecommerce.toml");
    let mut slowest = Duration::ZERO;
    for run in 0..RUNS {
        let db = dir.path().join(format!("run{run}.db"));
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ecomflow"))
            .arg("run")
            .arg(&flagship)
            .args(["--set", "sources.transactions.count=100"])
            .env("DATABASE_URL", format!("sqlite://{}", db.display()))
            .env("ECOMFLOW_DEAD_LETTER", dir.path().join("dead.jsonl"))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts");
        let status = loop {
            if let Some(status) = child.try_wait().expect("waits") {
                break status;
            }
            if started.elapsed() > SLOW {
                let _ = child.kill();
                let _ = child.wait();
                panic!("run {run} was still running after {SLOW:?} (slowest before: {slowest:?})");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(status.success(), "run {run} failed");
        slowest = slowest.max(started.elapsed());
        let _ = std::fs::remove_file(&db);
    }
    eprintln!("{RUNS} runs, the slowest took {slowest:?}");
}
