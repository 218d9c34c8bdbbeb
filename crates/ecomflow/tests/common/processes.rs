//! Running ecomflow as a separate process that a test stops, kills or freezes: started with
//! its standard error in a log file, signalled with `kill`.

use super::stack::ecomflow;
use std::path::Path;
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

/// Sends signal `name` (`-TERM`, `-KILL`, `-STOP`, `-CONT`) to `child`.
pub fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
}
