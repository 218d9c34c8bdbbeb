//! Tests of the generator source: reproducible transactions in the seed's format, bad ones
//! of every kind, the event clock and its jitter, count, rate and shutdown.

use super::*;
use crate::sources::catalog::PRODUCTS;
use crate::test_support::{build_error, build_source, run_source, source_context};
use ecomflow_core::DeadLetter;
use std::collections::HashSet;

async fn generate(options: &str) -> (Vec<Batch>, Vec<DeadLetter>) {
    run_source(build_source("generator", options).expect("builds")).await
}

#[tokio::test]
async fn bad_ratio_leaves_the_good_transactions_unchanged() {
    let (clean, _) = generate("count = 200\nseed = 5").await;
    let (mixed, dead) = generate("count = 200\nseed = 5\nbad_ratio = 0.3").await;
    let clean = records(clean);
    let mixed = records(mixed);
    assert!(!dead.is_empty() && mixed.len() > clean.len());
    // Every clean transaction appears in the mixed output, in order.
    let mut rest = mixed.iter();
    for want in &clean {
        assert!(rest.any(|r| r == want), "missing {want:?}");
    }
}

fn records(batches: Vec<Batch>) -> Vec<Record> {
    batches.into_iter().flatten().collect()
}

fn lines(records: &[Record]) -> String {
    let mut out = Vec::new();
    for r in records {
        encode_line(r, &mut out);
    }
    String::from_utf8(out).expect("utf8")
}

fn str_of<'a>(r: &'a Record, name: &str) -> &'a str {
    r.get(Field::new(name))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("`{name}` is not a string in {:?}", r.to_json()))
}

#[tokio::test]
async fn same_seed_same_bytes_other_seed_other_bytes() {
    let (a, _) = generate("count = 50\nseed = 7\njitter_ms = 1000").await;
    let (b, _) = generate("count = 50\nseed = 7\njitter_ms = 1000").await;
    let (c, _) = generate("count = 50\nseed = 8\njitter_ms = 1000").await;
    let (a, b, c) = (records(a), records(b), records(c));
    assert_eq!(a.len(), 50);
    assert_eq!(lines(&a), lines(&b));
    assert_ne!(lines(&a), lines(&c));
}

#[tokio::test]
async fn fields_are_the_seeds_in_order_with_valid_values() {
    let (batches, dead) = generate("count = 300\nseed = 1").await;
    assert!(dead.is_empty());
    let mut ids = HashSet::new();
    for r in records(batches) {
        let names: Vec<&str> = r.iter().map(|(f, _)| f.name()).collect();
        assert_eq!(names, FIELD_NAMES);
        let id = uuid::Uuid::parse_str(str_of(&r, "transactionId")).expect("a uuid");
        assert_eq!(id.get_version(), Some(uuid::Version::Random));
        assert!(ids.insert(id), "ids are unique");
        assert!(CURRENCIES.contains(&str_of(&r, "currency")));
        assert!(PAYMENT_METHODS.contains(&str_of(&r, "paymentMethod")));
        assert!(PAYMENT_STATUSES.contains(&str_of(&r, "paymentStatus")));
        assert!(!str_of(&r, "customerId").is_empty());
        let Some(Value::Float(price)) = r.get(Field::new("productPrice")) else {
            panic!("price is a float");
        };
        let Some(Value::Int(quantity)) = r.get(Field::new("productQuantity")) else {
            panic!("quantity is an integer");
        };
        let Some(Value::Float(total)) = r.get(Field::new("totalAmount")) else {
            panic!("total is a float");
        };
        assert!((1..=100).contains(quantity));
        assert_eq!((price * 100.0).round() / 100.0, *price, "2 decimals");
        let expected = (price * *quantity as f64 * 100.0).round() / 100.0;
        assert!((total - expected).abs() < 1e-9, "{total} != {expected}");
    }
}

#[tokio::test]
async fn each_product_keeps_its_name_category_brand_and_price_band() {
    let (batches, _) = generate("count = 2000\nseed = 3").await;
    let mut seen = HashSet::new();
    for r in records(batches) {
        let id = str_of(&r, "productId");
        let p = PRODUCTS
            .iter()
            .find(|p| p.id == id)
            .unwrap_or_else(|| panic!("unknown product {id}"));
        assert_eq!(str_of(&r, "productName"), p.name);
        assert_eq!(str_of(&r, "productCategory"), p.category);
        assert_eq!(str_of(&r, "productBrand"), p.brand);
        let price = r.get(Field::new("productPrice")).and_then(Value::as_f64);
        let cents = (price.expect("a price") * 100.0).round() as u32;
        assert!(
            (p.price_cents.0..=p.price_cents.1).contains(&cents),
            "{id}: {cents}"
        );
        seen.insert(id.to_string());
    }
    assert_eq!(seen.len(), PRODUCTS.len(), "every product shows up");
}

#[tokio::test]
async fn dates_have_the_seed_format_and_follow_the_clock() {
    let (batches, _) =
        generate("count = 3\nseed = 1\nstart_time = \"2025-07-19T12:34:56.5+02:00\"").await;
    let dates: Vec<String> = records(batches)
        .iter()
        .map(|r| str_of(r, "transactionDate").to_string())
        .collect();
    assert_eq!(
        dates,
        [
            "2025-07-19T10:34:56.500000+0000",
            "2025-07-19T10:35:56.500000+0000",
            "2025-07-19T10:36:56.500000+0000",
        ]
    );
}

#[tokio::test]
async fn jitter_moves_events_back_by_at_most_jitter() {
    let (batches, _) =
        generate("count = 200\nseed = 5\nevent_step_ms = 1000\njitter_ms = 3000").await;
    let start = chrono::DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z").expect("time");
    let mut out_of_order = 0;
    let mut last = i64::MIN;
    for (i, r) in records(batches).iter().enumerate() {
        let date = str_of(r, "transactionDate");
        let t = chrono::DateTime::parse_from_str(date, "%Y-%m-%dT%H:%M:%S%.6f%z")
            .expect("parses")
            .timestamp_micros();
        let clock = start.timestamp_micros() + i as i64 * 1_000_000;
        assert!((clock - 3_000_000..=clock).contains(&t), "{i}: {date}");
        if t < last {
            out_of_order += 1;
        }
        last = t;
    }
    assert!(out_of_order > 0, "some events arrive out of order");
}

#[test]
fn format_date_matches_chrono_everywhere() {
    let mut out = String::new();
    for us in [
        0_i64,
        1_752_928_496_123_456,
        951_782_400_000_001, // 2000-02-29
        -1,
        253_402_300_799_999_999, // 9999-12-31T23:59:59.999999
        4_107_542_400_000_000,   // 2100-03-01
    ] {
        out.clear();
        format_date(us, &mut out);
        let expected = chrono::DateTime::from_timestamp_micros(us)
            .expect("in range")
            .format("%Y-%m-%dT%H:%M:%S%.6f+0000")
            .to_string();
        assert_eq!(out, expected);
    }
}

#[tokio::test]
async fn count_is_respected_across_batches() {
    let (batches, _) = generate("count = 25\nbatch_size = 10\nseed = 2").await;
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    assert_eq!(sizes, [10, 10, 5]);
}

#[tokio::test]
async fn bad_ratio_makes_every_kind_of_bad_record() {
    let (batches, dead) = generate("count = 300\nseed = 9\nbad_ratio = 0.5").await;
    let all = records(batches);
    let complete: Vec<&Record> = all.iter().filter(|r| r.len() == 13).collect();
    let missing = all.iter().filter(|r| r.len() == 12).count();
    let mistyped = complete
        .iter()
        .filter(|r| {
            ["productPrice", "productQuantity", "totalAmount"]
                .iter()
                .any(|f| matches!(r.get(Field::new(f)), Some(Value::Str(_))))
        })
        .count();
    let good = complete.len() - mistyped;
    assert_eq!(good, 300, "bad records come on top of count");
    assert!(
        missing > 10 && mistyped > 10 && dead.len() > 10,
        "{missing} {mistyped} {}",
        dead.len()
    );
    assert!((100..200).contains(&(missing + mistyped + dead.len())));

    for d in &dead {
        assert_eq!(&*d.component, "sources.test");
        assert!(d.reason.starts_with("invalid JSON: "), "{}", d.reason);
        let Payload::Raw(bytes) = &d.payload else {
            panic!("malformed JSON is dead-lettered raw");
        };
        assert!(
            bytes.starts_with(b"{") && !bytes.ends_with(b"}"),
            "{bytes:?}"
        );
        assert!(JsonDecoder::new().decode(bytes).is_err());
    }
    let mistyped_values: HashSet<String> = complete
        .iter()
        .filter_map(|r| r.get(Field::new("productQuantity")))
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    assert_eq!(mistyped_values, HashSet::from(["many".to_string()]));
}

#[tokio::test]
async fn dead_letters_are_counted() {
    let source =
        build_source("generator", "count = 100\nseed = 4\nbad_ratio = 1.0").expect("builds");
    let (cx, mut h) = source_context();
    let counters = h.counters.clone();
    let drain = async move {
        let (mut sent, mut dead) = (0, 0);
        loop {
            tokio::select! {
                Some(b) = h.rx.recv() => sent += b.len(),
                Some(d) = h.dead_rx.recv() => dead += d.len(),
                else => break,
            }
        }
        (sent, dead)
    };
    let (result, (sent, dead)) = tokio::join!(source.run(cx), drain);
    result.expect("runs");
    assert_eq!(sent + dead, 200);
    assert_eq!(
        counters.sent.load(std::sync::atomic::Ordering::Relaxed),
        sent as u64
    );
    assert_eq!(
        counters
            .dead_lettered
            .load(std::sync::atomic::Ordering::Relaxed),
        dead as u64
    );
}

#[tokio::test]
async fn rate_paces_batches() {
    let started = std::time::Instant::now();
    let (batches, _) = generate("count = 30\nrate = 100.0\nseed = 1").await;
    assert_eq!(batches.len(), 3, "rate 100/s sends batches of 10");
    assert!(
        started.elapsed() >= Duration::from_millis(190),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn stops_promptly_on_shutdown() {
    // At this rate the next batch is due in two seconds: only the shutdown wakes it.
    let source = build_source("generator", "rate = 0.5").expect("builds");
    let (cx, mut h) = source_context();
    let task = tokio::spawn(source.run(cx));
    let first = h.rx.recv().await.expect("a first batch");
    assert_eq!(first.len(), 1);
    h.shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(1), task).await;
    result
        .expect("stops within a second")
        .expect("no panic")
        .expect("no error");
}

#[test]
fn bad_options_are_rejected_at_build() {
    for (options, field) in [
        ("start_time = \"yesterday\"", "start_time"),
        ("bad_ratio = 1.5", "bad_ratio"),
        ("rate = -1.0", "rate"),
        ("rate = 0.0000001", "rate"),
        (
            "count = 10\nevent_step_ms = 90000000000000",
            "event_step_ms",
        ),
        ("batch_size = 0", "batch_size"),
    ] {
        let e = build_error(build_source("generator", options));
        assert_eq!(e.field.as_deref(), Some(field), "{options}: {e}");
    }
    let e = build_error(build_source("generator", "cuont = 5"));
    assert!(e.message.contains("unknown field `cuont`"), "{e}");
}
