//! The `ecomflow` binary.

fn main() -> std::process::ExitCode {
    ecomflow::cli::main()
}
