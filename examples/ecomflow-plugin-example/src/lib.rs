//! A worked example of a third-party ecomflow plugin crate, one plugin per file: the `mask`
//! transform (`mask.rs`), the resumable `sequence` source (`sequence.rs`) and the `lines`
//! sink (`lines.rs`). `docs/guides/writing-a-plugin.md` walks through all three.

pub mod lines;
pub mod mask;
pub mod sequence;
