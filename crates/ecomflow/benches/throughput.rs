//! Throughput on one core (a current-thread tokio runtime), through the real loader and
//! runtime: `cargo bench -p ecomflow --bench throughput`. `BENCH_EVENTS` sets the number of
//! transactions (default 1,000,000).
//!
//! Measures: the JSON decoder alone; generator -> blackhole; JSON lines of seed
//! transactions -> parse -> validate -> filter -> map (USD) -> blackhole; the flagship's
//! whole analytics; and, as the yardstick, the same sums written by hand (`kernel.rs`): the
//! last line prints how many times the kernel's time the analytics take.

use ecomflow_json::JsonDecoder;
use ecomflow_runtime::{LoadOptions, load, run};
use std::path::Path;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

use ecomflow_std as _;

mod kernel;

fn main() {
    let n: u64 = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("transactions.jsonl");

    let gen_to_file = format!(
        "[sources.g]\ntype = \"generator\"\ncount = {n}\nseed = 1\n\n\
         [sinks.f]\ntype = \"file\"\ninputs = [\"g\"]\npath = {:?}\nappend = false\n\n\
         [dead_letter]\ntype = \"blackhole\"\n",
        data.display().to_string()
    );
    let secs = time_pipeline(dir.path(), &gen_to_file);
    bench("generator -> file (JSON lines)", n, || secs);

    bench("JSON decode only (13 fields)", n, || {
        let bytes = std::fs::read(&data).expect("generated data");
        let started = Instant::now();
        let mut decoder = JsonDecoder::new();
        let mut fields = 0usize;
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            fields += decoder.decode(line).map(|r| r.len()).unwrap_or(0);
        }
        assert_eq!(fields as u64, n * 13);
        started.elapsed().as_secs_f64()
    });

    let gen_to_blackhole = format!(
        "[sources.g]\ntype = \"generator\"\ncount = {n}\nseed = 1\n\n\
         [sinks.b]\ntype = \"blackhole\"\ninputs = [\"g\"]\n\n\
         [dead_letter]\ntype = \"blackhole\"\n"
    );
    bench("generator -> blackhole", n, || {
        time_pipeline(dir.path(), &gen_to_blackhole)
    });

    let flagship_transforms = format!(
        "[sources.f]\ntype = \"file\"\npath = {:?}\n\n\
         [transforms.paid]\ntype = \"filter\"\ninputs = [\"f\"]\ncondition = \"paymentStatus == 'success'\"\n\n\
         [transforms.usd]\ntype = \"map\"\ninputs = [\"paid\"]\n\
         set.total_amount_usd = \"(totalAmount * usd_per_unit[currency]) | round(2)\"\n{rates}\n\
         [sinks.b]\ntype = \"blackhole\"\ninputs = [\"usd\"]\n\n\
         [dead_letter]\ntype = \"blackhole\"\n",
        data.display().to_string(),
        rates = kernel::RATES,
    );
    bench("file -> parse -> filter -> map -> blackhole", n, || {
        time_pipeline(dir.path(), &flagship_transforms)
    });

    let with_validate = flagship_transforms
        .replace("inputs = [\"f\"]", "inputs = [\"checked\"]")
        .replace(
            "[transforms.paid]",
            &format!("[transforms.checked]\ntype = \"validate\"\ninputs = [\"f\"]\n{SCHEMA}\n[transforms.paid]"),
        );
    bench(
        "file -> parse -> validate -> filter -> map -> blackhole",
        n,
        || time_pipeline(dir.path(), &with_validate),
    );

    // The flagship's whole analytics section (event time, validate, USD, filters, three
    // calendar aggregates, the alert window), read from pipelines/ecommerce.toml.
    let flagship = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/ecommerce.toml"),
    )
    .expect("flagship pipeline");
    let analytics = flagship
        .split("# ---- analytics")
        .nth(1)
        .and_then(|rest| rest.split("# ---- outputs").next())
        .expect("the flagship has an analytics section");
    let flagship_transforms = format!(
        "[sources.transactions]\ntype = \"file\"\npath = {:?}\n\
         event_time = {{ field = \"transactionDate\", max_out_of_orderness = \"5m\" }}\n\
         # {analytics}\n\
         [sinks.transactions_table]\ntype = \"blackhole\"\n\
         inputs = [\"storable\", \"sales_per_category\", \"sales_per_day\", \"sales_per_month\", \"payment_alerts\"]\n\n\
         [dead_letter]\ntype = \"blackhole\"\n",
        data.display().to_string()
    );
    let mut analytics = None;
    bench("file -> the flagship's analytics -> blackhole", n, || {
        let secs = time_pipeline(dir.path(), &flagship_transforms);
        analytics = Some(secs);
        secs
    });

    // The yardstick: the same sums by hand, on the same file, reading it included.
    let rates = kernel::rates();
    let mut by_hand = None;
    bench(
        "the same sums by hand (sonic-rs, 5 fields, 3 sums)",
        n,
        || {
            let started = Instant::now();
            let bytes = std::fs::read(&data).expect("generated data");
            let groups = kernel::sums(&bytes, &rates);
            assert!(groups > 0, "the kernel summed something");
            let secs = started.elapsed().as_secs_f64();
            by_hand = Some(secs);
            secs
        },
    );
    if let (Some(a), Some(k)) = (analytics, by_hand) {
        println!(
            "the flagship's analytics take {:.2}x the hand-written kernel's time (goal: 2x)",
            a / k
        );
    }
}

const SCHEMA: &str = r#"fields = { transactionId = "string", productId = "string", productName = "string", productCategory = "string", productPrice = "number", productQuantity = "integer", productBrand = "string", currency = "string", customerId = "string", transactionDate = "string", paymentMethod = "string", paymentStatus = "string", totalAmount = "number" }
"#;

fn time_pipeline(dir: &Path, toml: &str) -> f64 {
    let path = dir.join("bench.toml");
    std::fs::write(&path, toml).expect("write pipeline");
    let env = |_: &str| None;
    let pipeline = load(
        &[path],
        &LoadOptions {
            sets: &[],
            env: &env,
        },
    )
    .expect("valid pipeline");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    rt.block_on(run(pipeline, CancellationToken::new()))
        .expect("pipeline runs");
    started.elapsed().as_secs_f64()
}

/// Runs and reports one measurement, unless `BENCH_ONLY` names another (to profile one).
fn bench(what: &str, n: u64, measure: impl FnOnce() -> f64) {
    if std::env::var("BENCH_ONLY").is_ok_and(|only| !what.contains(&only)) {
        return;
    }
    report(what, n, measure());
}

fn report(what: &str, n: u64, secs: f64) {
    println!(
        "{what:<56} {n:>9} events {secs:>7.3} s {:>12.0} events/s (one core)",
        n as f64 / secs
    );
}
