//! ecomflow: the stock command line, with every built-in plugin linked.
//!
//! A third-party plugin crate ships a binary whose `main` links its crate and calls
//! [`cli::main`]; see `docs/guides/writing-a-plugin.md`.

#[macro_use]
mod say;

pub mod cli;
pub mod list;
mod live_view;
mod plugins;
mod results;
mod run_command;
mod tap_command;
mod test_command;

pub use ecomflow_core as core;
pub use ecomflow_runtime as runtime;
