//! `ecomflow-with-mask`: the stock ecomflow command line with the `mask` plugin linked in.

// Naming the crate keeps the linker from dropping its plugin registration.
use ecomflow_plugin_example as _;

fn main() -> std::process::ExitCode {
    ecomflow::cli::main()
}
