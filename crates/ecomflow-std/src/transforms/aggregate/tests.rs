//! Golden tests of the `aggregate` transform: out-of-order and late records, lateness,
//! month and year boundaries, a daylight-saving day, bad records.

use crate::test_support::{Seen, at, build_error, build_transform, feed, flush, record, watermark};
use ecomflow_core::{Emitter, Field, Value};
use serde_json::json;

const PER_CATEGORY_DAY: &str = r#"
keys = { transaction_date = "day(event_time)", category = "productCategory" }
aggregations = { total_sales = "sum(amount)", n = "count()" }
"#;

#[test]
fn sums_per_category_and_event_day_whatever_the_arrival_order() {
    let mut t = build_transform("aggregate", PER_CATEGORY_DAY).expect("builds");
    let mut seen = Seen::default();
    feed(
        t.as_mut(),
        &mut seen,
        vec![
            at(
                "2025-07-19T23:59:00Z",
                json!({"productCategory": "office", "amount": 10.25}),
            ),
            at(
                "2025-07-20T00:01:00Z",
                json!({"productCategory": "office", "amount": 1.0}),
            ),
            at(
                "2025-07-19T08:00:00Z",
                json!({"productCategory": "office", "amount": 5.5}),
            ),
            at(
                "2025-07-19T09:00:00Z",
                json!({"productCategory": "home", "amount": 2.0}),
            ),
        ],
    );
    assert!(
        seen.rows.is_empty(),
        "nothing is emitted before a tick, a watermark or the end"
    );
    flush(t.as_mut(), &mut seen);
    assert_eq!(
        seen.table(&["transaction_date", "category"]),
        [
            json!({"transaction_date": "2025-07-19", "category": "home", "total_sales": 2.0, "n": 1}),
            json!({"transaction_date": "2025-07-19", "category": "office", "total_sales": 15.75, "n": 2}),
            json!({"transaction_date": "2025-07-20", "category": "office", "total_sales": 1.0, "n": 1}),
        ]
    );
    // The rows carry the bucket's start as their event time.
    assert!(seen.rows.iter().all(|r| r.time().is_some()));
}

#[test]
fn a_passing_watermark_closes_buckets_and_ticks_emit_only_changes() {
    let mut t = build_transform("aggregate", PER_CATEGORY_DAY).expect("builds");
    let mut seen = Seen::default();
    feed(
        t.as_mut(),
        &mut seen,
        vec![
            at(
                "2025-07-19T10:00:00Z",
                json!({"productCategory": "office", "amount": 1.0}),
            ),
            at(
                "2025-07-20T10:00:00Z",
                json!({"productCategory": "office", "amount": 2.0}),
            ),
        ],
    );
    watermark(t.as_mut(), &mut seen, "2025-07-20T00:00:00Z");
    assert_eq!(seen.rows.len(), 1, "only the 19th has ended");
    assert_eq!(
        seen.rows[0].get(Field::new("transaction_date")),
        Some(&Value::from("2025-07-19"))
    );
    let mut out = Emitter::default();
    t.tick(&mut out);
    seen.collect(&mut out);
    assert_eq!(seen.rows.len(), 2, "the tick emits the 20th, which changed");
    let mut out = Emitter::default();
    t.tick(&mut out);
    seen.collect(&mut out);
    assert_eq!(seen.rows.len(), 2, "nothing changed since");
}

#[test]
fn lateness_bounds_state_and_late_records_go_where_configured() {
    let options = format!("{PER_CATEGORY_DAY}\nallowed_lateness = \"1h\"");
    let mut t = build_transform("aggregate", &options).expect("builds");
    let mut seen = Seen::default();
    let sale =
        |time: &str, amount: f64| at(time, json!({"productCategory": "office", "amount": amount}));
    feed(
        t.as_mut(),
        &mut seen,
        vec![sale("2025-07-19T10:00:00Z", 1.0)],
    );
    watermark(t.as_mut(), &mut seen, "2025-07-20T00:30:00Z");
    // Within the lateness: still counted, and the row is emitted again with the new total.
    feed(
        t.as_mut(),
        &mut seen,
        vec![sale("2025-07-19T23:00:00Z", 2.0)],
    );
    watermark(t.as_mut(), &mut seen, "2025-07-20T00:45:00Z");
    assert_eq!(
        seen.table(&["transaction_date"])[0]["total_sales"],
        json!(3.0)
    );
    // Past it: the state is gone and the record is late.
    watermark(t.as_mut(), &mut seen, "2025-07-20T01:00:00Z");
    feed(
        t.as_mut(),
        &mut seen,
        vec![sale("2025-07-19T23:30:00Z", 4.0)],
    );
    assert_eq!(seen.dead.len(), 1);
    assert!(seen.dead[0].0.starts_with("late:"), "{}", seen.dead[0].0);
    flush(t.as_mut(), &mut seen);
    assert_eq!(
        seen.table(&["transaction_date"])[0]["total_sales"],
        json!(3.0)
    );

    for (late, to_output, dropped) in [("output", 1, 0), ("drop", 0, 1)] {
        let options = format!("{PER_CATEGORY_DAY}\nlate = \"{late}\"");
        let mut t = build_transform("aggregate", &options).expect("builds");
        let mut seen = Seen::default();
        watermark(t.as_mut(), &mut seen, "2025-07-21T00:00:00Z");
        feed(
            t.as_mut(),
            &mut seen,
            vec![sale("2025-07-19T23:30:00Z", 4.0)],
        );
        assert_eq!(
            (seen.late.len(), seen.dropped, seen.dead.len()),
            (to_output, dropped, 0)
        );
    }
}

#[test]
fn months_of_different_years_stay_apart() {
    let options = r#"
keys = { year = "year(event_time)", month = "month(event_time)" }
aggregations = { total_sales = "sum(amount)" }
"#;
    let mut t = build_transform("aggregate", options).expect("builds");
    let mut seen = Seen::default();
    feed(
        t.as_mut(),
        &mut seen,
        vec![
            at("2024-12-31T23:59:59.999999Z", json!({"amount": 1})),
            at("2025-01-01T00:00:00Z", json!({"amount": 2})),
            at("2025-12-31T12:00:00Z", json!({"amount": 4})),
            at("2024-12-01T00:00:00Z", json!({"amount": 8})),
        ],
    );
    flush(t.as_mut(), &mut seen);
    assert_eq!(
        seen.table(&["year", "month"]),
        [
            json!({"year": 2024, "month": 12, "total_sales": 9}),
            json!({"year": 2025, "month": 1, "total_sales": 2}),
            json!({"year": 2025, "month": 12, "total_sales": 4}),
        ]
    );
}

#[test]
fn days_follow_the_local_calendar_across_daylight_saving() {
    let options = r#"
keys = { day = "day(event_time)" }
aggregations = { n = "count()" }
time_zone = "Europe/Berlin"
"#;
    let mut t = build_transform("aggregate", options).expect("builds");
    let mut seen = Seen::default();
    feed(
        t.as_mut(),
        &mut seen,
        vec![
            // 2025-03-30 in Berlin runs from 2025-03-29T23:00Z to 2025-03-30T22:00Z (23 hours).
            at("2025-03-29T22:59:59Z", json!({})),
            at("2025-03-29T23:00:00Z", json!({})),
            at("2025-03-30T21:59:59Z", json!({})),
            at("2025-03-30T22:00:00Z", json!({})),
        ],
    );
    watermark(t.as_mut(), &mut seen, "2025-03-30T22:00:00Z");
    assert_eq!(
        seen.table(&["day"]),
        [
            json!({"day": "2025-03-29", "n": 1}),
            json!({"day": "2025-03-30", "n": 2})
        ],
        "the 31st is still open"
    );
}

#[test]
fn a_repeated_local_hour_keeps_one_total() {
    let options = r#"
keys = { day = "day(event_time)", hour = "hour(event_time)" }
aggregations = { n = "count()" }
time_zone = "Europe/Berlin"
"#;
    let mut t = build_transform("aggregate", options).expect("builds");
    let mut seen = Seen::default();
    // 2025-10-26: local 02:00-03:00 happens twice in Berlin.
    feed(
        t.as_mut(),
        &mut seen,
        vec![at("2025-10-26T00:30:00Z", json!({}))],
    );
    feed(
        t.as_mut(),
        &mut seen,
        vec![at("2025-10-26T01:10:00Z", json!({}))],
    );
    watermark(t.as_mut(), &mut seen, "2025-10-26T01:10:00Z");
    feed(
        t.as_mut(),
        &mut seen,
        vec![at("2025-10-26T01:20:00Z", json!({}))],
    );
    flush(t.as_mut(), &mut seen);
    assert!(seen.dead.is_empty());
    assert_eq!(
        seen.table(&["day", "hour"]),
        [json!({"day": "2025-10-26", "hour": 2, "n": 3})]
    );
}

#[test]
fn bad_records_are_dead_lettered_with_the_reason() {
    let mut t = build_transform("aggregate", PER_CATEGORY_DAY).expect("builds");
    let mut seen = Seen::default();
    let no_time = record(json!({"productCategory": "office", "amount": 1.0}));
    feed(
        t.as_mut(),
        &mut seen,
        vec![
            at("2025-07-19T10:00:00Z", json!({"amount": 1.0})),
            at(
                "2025-07-19T10:00:00Z",
                json!({"productCategory": "office", "amount": "12.x"}),
            ),
            at("2025-07-19T10:00:00Z", json!({"productCategory": "office"})),
            no_time,
        ],
    );
    let reasons: Vec<&str> = seen.dead.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(reasons.len(), 4);
    assert!(
        reasons[0].contains("key field `productCategory` is missing"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("field `amount` should be a number, found string (for `total_sales`)"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].contains("field `amount` is missing"),
        "{reasons:?}"
    );
    assert!(reasons[3].contains("no event time"), "{reasons:?}");
    flush(t.as_mut(), &mut seen);
    assert!(seen.rows.is_empty(), "no bad record reached the aggregates");
}

#[test]
fn keys_without_time_work_without_event_time() {
    let options = r#"
keys = { method = "paymentMethod" }
aggregations = { n = "count()", biggest = "max(amount)", mean = "avg(amount)" }
"#;
    let mut t = build_transform("aggregate", options).expect("builds");
    let mut seen = Seen::default();
    feed(
        t.as_mut(),
        &mut seen,
        vec![
            record(json!({"paymentMethod": "cash", "amount": 1})),
            record(json!({"paymentMethod": "cash", "amount": 3})),
        ],
    );
    flush(t.as_mut(), &mut seen);
    assert_eq!(
        seen.table(&["method"]),
        [json!({"method": "cash", "n": 2, "biggest": 3, "mean": 2.0})]
    );
}

#[test]
fn bad_options_are_rejected_at_build() {
    for (options, field) in [
        (
            "keys = { m = \"month(event_time)\" }\naggregations = { n = \"count()\" }",
            "keys",
        ),
        (
            "keys = { d = \"day(event_time)\" }\naggregations = { n = \"count()\" }\ntime_zone = \"Mars/Base\"",
            "time_zone",
        ),
        (
            "keys = { d = \"day(transactionDate)\" }\naggregations = { n = \"count()\" }",
            "keys.d",
        ),
        (
            "keys = { d = \"x\" }\naggregations = { n = \"median(x)\" }",
            "aggregations.n",
        ),
        ("keys = {}\naggregations = { n = \"count()\" }", "keys"),
    ] {
        let e = build_error(build_transform("aggregate", options));
        assert_eq!(e.field.as_deref(), Some(field), "{options}: {e}");
    }
}

#[test]
fn a_value_that_would_overflow_a_sum_is_dead_lettered_and_the_row_stays_finite() {
    let mut t = build_transform("aggregate", PER_CATEGORY_DAY).expect("builds");
    let mut seen = Seen::default();
    let huge = |amount: f64| {
        at(
            "2025-07-19T10:00:00Z",
            json!({"productCategory": "office", "amount": amount}),
        )
    };
    feed(
        t.as_mut(),
        &mut seen,
        vec![huge(1.7e308), huge(1.7e308), huge(2.0)],
    );
    flush(t.as_mut(), &mut seen);
    assert_eq!(seen.dead.len(), 1, "{:?}", seen.dead);
    assert!(
        seen.dead[0].0.contains("would make the sum overflow")
            && seen.dead[0].0.contains("`amount`"),
        "{}",
        seen.dead[0].0
    );
    assert_eq!(
        seen.table(&["transaction_date", "category"]),
        [
            json!({"transaction_date": "2025-07-19", "category": "office", "total_sales": 1.7e308, "n": 2})
        ],
        "the refused record is counted by no aggregation"
    );
    assert!(
        t.snapshot()
            .is_some_and(|s| !s.to_string().contains("null"))
    );
}
