//! The throughput bench's yardstick (`benches/kernel.rs`: the flagship's three sums written
//! by hand) as a program of its own, so that it and `ecomflow run` can be timed as whole
//! processes side by side (`farm-bench --vs`):
//!
//!     cargo build --release -p ecomflow --example kernel
//!     target/release/examples/kernel transactions.jsonl

#[path = "../benches/kernel.rs"]
mod kernel;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: kernel FILE.jsonl");
        std::process::exit(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(1);
        }
    };
    let groups = kernel::sums(&bytes, &kernel::rates());
    println!("{groups} groups");
}
