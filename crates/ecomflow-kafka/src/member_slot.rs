//! `instance_id = "auto"`: a static group membership id that is the same when a process is
//! started again on the same machine, and different for processes running side by side. Each
//! process takes the first free slot of the group on this machine (a lock file under the
//! temporary directory, held while it runs and freed by the system when it ends, even by
//! SIGKILL); its id is `<hostname>-<slot>`. A process restarted after a crash takes the slot
//! it left, so it comes back under the same id, and the group gives it its partitions at
//! once, without a rebalance.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;

/// The most processes of one group on one machine.
const SLOTS: usize = 1024;

/// A slot held while the process runs.
pub struct MemberSlot {
    /// The id: `<hostname>-<slot>`.
    pub id: String,
    _lock: File,
}

/// Where the lock files of `group` are.
fn dir() -> PathBuf {
    std::env::temp_dir().join("ecomflow-members")
}

/// This machine's name: `/proc/sys/kernel/hostname`, `HOSTNAME`, or `localhost`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Takes the first free slot of `group` on this machine.
pub fn claim(group: &str) -> Result<MemberSlot, String> {
    let dir = dir();
    std::fs::create_dir_all(&dir).map_err(|e| {
        format!(
            "cannot make {} for `instance_id = \"auto\"`: {e}",
            dir.display()
        )
    })?;
    let safe: String = group
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    for slot in 0..SLOTS {
        let path = dir.join(format!("{safe}-{slot}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {
                return Ok(MemberSlot {
                    id: format!("{}-{slot}", hostname()),
                    _lock: file,
                });
            }
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()));
            }
        }
    }
    Err(format!(
        "{SLOTS} processes of group `{group}` run on this machine already"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_side_by_side_get_their_own_id_and_a_freed_slot_is_taken_again() {
        let group = format!("slot-test-{}", std::process::id());
        let first = claim(&group).expect("a slot");
        let second = claim(&group).expect("another slot");
        assert!(
            first.id.ends_with("-0") && second.id.ends_with("-1"),
            "{} {}",
            first.id,
            second.id
        );
        drop(first);
        let again = claim(&group).expect("the freed slot");
        assert!(again.id.ends_with("-0"), "{}", again.id);
    }
}
