//! The `[channels]` table of a pipeline: how much each component's input holds before the
//! components writing to it wait (backpressure), in batches and in bytes.

use ecomflow_core::byte_size::{ByteSize, Bytes, bytes};
use ecomflow_core::channel::Capacity;
use serde::Deserialize;

/// The `[channels]` table. Every option can be set with `--set channels.<option>=...`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelsConfig {
    /// Batches (and watermarks and checkpoint barriers) waiting in one component's input
    /// before the components writing to it wait.
    #[serde(default = "default_batches")]
    #[schemars(range(min = 1))]
    pub batches: usize,
    /// Bytes of records waiting in one component's input before the components writing to
    /// it wait (each record counted as it sits in memory: its fields and the strings longer
    /// than 24 bytes). A batch larger than this goes through alone. With large records this,
    /// not `batches`, is what bounds the memory between two components.
    #[serde(default = "default_bytes")]
    #[schemars(with = "Bytes")]
    pub bytes: ByteSize,
}

// The defaults are the channel's own (`Capacity::default`).
fn default_batches() -> usize {
    Capacity::default().messages
}

fn default_bytes() -> ByteSize {
    ByteSize::b(Capacity::default().bytes as u64)
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        ChannelsConfig {
            batches: default_batches(),
            bytes: default_bytes(),
        }
    }
}

impl ChannelsConfig {
    /// What an input channel holds.
    pub fn capacity(&self) -> Capacity {
        Capacity {
            messages: self.batches,
            bytes: bytes(self.bytes),
        }
    }

    /// What is wrong with the options, if anything: (option, message).
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        if self.batches == 0 {
            Some(("batches", "must be at least 1"))
        } else if self.bytes.as_u64() == 0 {
            Some(("bytes", "must be at least 1 byte"))
        } else {
            None
        }
    }
}
