//! Running ecomflow as a separate process that a test stops, kills or freezes: started with
//! its standard error in a log file, signalled with `kill`.

use super::stack::{ecomflow, kafka, pipeline};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// `ecomflow` with `args` and `envs` in `dir`, running in the background, its standard error
/// written to `log`.
pub fn spawn(args: &[String], envs: &[(&str, String)], dir: &Path, log: &Path) -> Child {
    ecomflow(args, envs, dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("ecomflow starts")
}

/// As [`spawn`], in a process group of its own, for a process the test freezes with
/// SIGSTOP. In the test runner's group, with the runner started in the background (its
/// parent gone: an orphaned group, which the kernel wakes with SIGCONT when it finds it
/// orphaned with a stopped member), a frozen member was seen going on as if never stopped.
/// Its own group, whose parent (the test) is in another group of the same session, is not
/// orphaned while the test runs.
#[cfg(unix)]
pub fn spawn_alone(args: &[String], envs: &[(&str, String)], dir: &Path, log: &Path) -> Child {
    use std::os::unix::process::CommandExt;
    ecomflow(args, envs, dir)
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("ecomflow starts")
}

/// Whether the process `pid` is stopped (SIGSTOP), from `/proc/<pid>/stat`.
#[cfg(target_os = "linux")]
pub fn is_stopped(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command's name, which is in parentheses.
    let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
    state == Some(Some('T'))
}

/// Kills the processes it names when dropped, so a test that fails (a panic) leaves none
/// running, not even one it had frozen with `-STOP`. Processes that already ended are left
/// alone (`kill` of a reaped pid fails quietly).
pub struct KillOnDrop(pub Vec<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Sends signal `name` (`-TERM`, `-KILL`, `-STOP`, `-CONT`) to `child`.
pub fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
}

/// `generate.toml` writing `count` good transactions to `topic`, `rate` per second (0: as
/// fast as it can), in the background; its log is `dir/generate.log`.
pub fn spawn_generator(topic: &str, count: u64, rate: u64, dir: &Path) -> (Child, PathBuf) {
    let mut args = vec![
        "run".to_string(),
        pipeline("generate.toml"),
        "--set".into(),
        format!("sinks.kafka.topic=\"{topic}\""),
        "--set".into(),
        format!("sources.transactions.count={count}"),
    ];
    if rate > 0 {
        args.push("--set".into());
        args.push(format!("sources.transactions.rate={rate}"));
    }
    let envs = [
        ("KAFKA_BOOTSTRAP_SERVERS", kafka()),
        (
            "ECOMFLOW_DEAD_LETTER",
            dir.join("generate.dead.jsonl").display().to_string(),
        ),
    ];
    let log = dir.join("generate.log");
    (spawn(&args, &envs, dir, &log), log)
}
