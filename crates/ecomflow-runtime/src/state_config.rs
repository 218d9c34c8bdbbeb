//! The `[state]` table of a pipeline: how much memory the keyed state of its stateful
//! transforms may take, and where what does not fit is kept on disk.

use ecomflow_core::byte_size::{ByteSize, Bytes, bytes};
use serde::Deserialize;

/// The `[state]` table. Every option can be set with `--set state.<option>=...`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Memory the keyed state of all stateful transforms (an aggregate's groups, a window's
    /// open windows) may take together, such as `256MiB` or `2GiB`; what does not fit is
    /// kept on disk and read back when a record needs it. An estimate of what the entries
    /// hold: the process takes more (its channels, the disk store's own cache of a quarter
    /// of this).
    #[serde(default = "default_memory")]
    #[schemars(with = "Bytes")]
    pub memory: ByteSize,
    /// Directory of the disk store. By default: `keyed` in `checkpoint.dir` when checkpoints
    /// are kept in a directory (checkpoints commit the changed state there, and a restart
    /// opens it in place), otherwise a temporary directory removed at the end of the run.
    #[serde(default)]
    pub dir: Option<String>,
}

fn default_memory() -> ByteSize {
    ByteSize::mib(256)
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            memory: default_memory(),
            dir: None,
        }
    }
}

impl StateConfig {
    /// The memory budget, in bytes.
    pub fn memory_bytes(&self) -> usize {
        bytes(self.memory)
    }

    /// What is wrong with the options, if anything: (option, message).
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        if self.memory.as_u64() < 1 << 20 {
            Some(("memory", "must be at least 1MiB"))
        } else if self.dir.as_deref().is_some_and(|d| d.trim().is_empty()) {
            Some(("dir", "must not be empty (leave it out for the default)"))
        } else {
            None
        }
    }
}
