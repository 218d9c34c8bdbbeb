//! The `ecomflow` binary.

/// mimalloc instead of the system allocator: records, their strings and window rows are
/// allocated and freed at millions per second, and glibc's malloc spent about 12% of the
/// analytics' instructions on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ecomflow::cli::main()
}
