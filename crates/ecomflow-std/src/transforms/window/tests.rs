//! Golden tests of the `window` transform: tumbling, hopping and session windows,
//! out-of-order and late records, the lateness bound, early updates.

use crate::test_support::{Seen, at, build_error, build_transform, feed, flush, watermark};
use ecomflow_core::Emitter;
use serde_json::json;

fn failed(t: &str, method: &str) -> ecomflow_core::Record {
    at(
        t,
        json!({"paymentMethod": method, "paymentStatus": "failed"}),
    )
}

const PER_MINUTE: &str = r#"
kind = "tumbling"
size = "1m"
keys = { payment_method = "paymentMethod" }
aggregations = { failures = "count()" }
"#;

#[test]
fn tumbling_windows_count_per_key_and_close_on_the_watermark() {
    let mut t = build_transform("window", PER_MINUTE).expect("builds");
    let mut seen = Seen::default();
    feed(
        t.as_mut(),
        &mut seen,
        vec![
            failed("2025-07-19T12:00:59Z", "cash"),
            failed("2025-07-19T12:01:00Z", "cash"),
            failed("2025-07-19T12:00:01Z", "cash"),
            failed("2025-07-19T12:00:30Z", "paypal"),
        ],
    );
    assert!(seen.rows.is_empty(), "windows emit on close");
    watermark(t.as_mut(), &mut seen, "2025-07-19T12:01:00Z");
    assert_eq!(
        seen.table(&["payment_method", "window_start"]),
        [
            json!({"payment_method": "cash", "window_start": "2025-07-19 12:00:00.000000", "window_end": "2025-07-19 12:01:00.000000", "failures": 2}),
            json!({"payment_method": "paypal", "window_start": "2025-07-19 12:00:00.000000", "window_end": "2025-07-19 12:01:00.000000", "failures": 1}),
        ]
    );
    flush(t.as_mut(), &mut seen);
    assert_eq!(seen.rows.len(), 3, "the 12:01 window closes at the end");
}

#[test]
fn hopping_windows_hold_a_record_in_each_window_it_falls_in() {
    let options = r#"
kind = "hopping"
size = "1m"
hop = "30s"
aggregations = { n = "count()" }
"#;
    let mut t = build_transform("window", options).expect("builds");
    let mut seen = Seen::default();
    feed(
        t.as_mut(),
        &mut seen,
        vec![
            failed("2025-07-19T12:00:45Z", "cash"),
            failed("2025-07-19T12:00:10Z", "cash"),
        ],
    );
    flush(t.as_mut(), &mut seen);
    assert_eq!(
        seen.table(&["window_start"])
            .iter()
            .map(|r| (
                r["window_start"].as_str().unwrap_or("").to_string(),
                r["n"].clone()
            ))
            .collect::<Vec<_>>(),
        [
            ("2025-07-19 11:59:30.000000".to_string(), json!(1)),
            ("2025-07-19 12:00:00.000000".to_string(), json!(2)),
            ("2025-07-19 12:00:30.000000".to_string(), json!(1)),
        ]
    );
}

#[test]
fn sessions_split_on_the_gap_and_merge_when_a_record_bridges_them() {
    let options = r#"
kind = "session"
gap = "5m"
keys = { method = "paymentMethod" }
aggregations = { n = "count()" }
"#;
    let mut t = build_transform("window", options).expect("builds");
    let mut seen = Seen::default();
    feed(
        t.as_mut(),
        &mut seen,
        vec![
            failed("2025-07-19T12:00:00Z", "cash"),
            failed("2025-07-19T12:04:00Z", "cash"),
            failed("2025-07-19T12:20:00Z", "cash"),
            failed("2025-07-19T12:26:00Z", "cash"),
        ],
    );
    flush(t.as_mut(), &mut seen);
    let sessions: Vec<(String, String, i64)> = seen
        .rows
        .iter()
        .map(|r| {
            let j = r.to_json();
            (
                j["window_start"].as_str().unwrap_or("").to_string(),
                j["window_end"].as_str().unwrap_or("").to_string(),
                j["n"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        sessions,
        [
            (
                "2025-07-19 12:00:00.000000".into(),
                "2025-07-19 12:09:00.000000".into(),
                2
            ),
            (
                "2025-07-19 12:20:00.000000".into(),
                "2025-07-19 12:25:00.000000".into(),
                1
            ),
            (
                "2025-07-19 12:26:00.000000".into(),
                "2025-07-19 12:31:00.000000".into(),
                1
            ),
        ]
    );

    // A record between two open sessions merges them into one.
    let mut t = build_transform("window", options).expect("builds");
    let mut seen = Seen::default();
    feed(
        t.as_mut(),
        &mut seen,
        vec![
            failed("2025-07-19T12:00:00Z", "cash"),
            failed("2025-07-19T12:08:00Z", "cash"),
            failed("2025-07-19T12:04:00Z", "cash"),
        ],
    );
    flush(t.as_mut(), &mut seen);
    assert_eq!(seen.rows.len(), 1);
    let merged = seen.rows[0].to_json();
    assert_eq!(merged["window_start"], "2025-07-19 12:00:00.000000");
    assert_eq!(merged["window_end"], "2025-07-19 12:13:00.000000");
    assert_eq!(merged["n"], 3);
}

#[test]
fn late_records_within_lateness_update_and_later_ones_go_to_the_late_output() {
    let options = format!("{PER_MINUTE}\nallowed_lateness = \"30s\"\nlate = \"output\"");
    let mut t = build_transform("window", &options).expect("builds");
    let mut seen = Seen::default();
    feed(
        t.as_mut(),
        &mut seen,
        vec![failed("2025-07-19T12:00:10Z", "cash")],
    );
    watermark(t.as_mut(), &mut seen, "2025-07-19T12:01:10Z");
    assert_eq!(seen.rows.len(), 1);
    // Late but within the allowed 30 s: the window's row is emitted again, updated.
    feed(
        t.as_mut(),
        &mut seen,
        vec![failed("2025-07-19T12:00:50Z", "cash")],
    );
    assert_eq!(seen.rows.len(), 2);
    assert_eq!(seen.table(&["window_start"])[0]["failures"], 2);
    // Past the lateness the window is gone: the record goes to the late output.
    watermark(t.as_mut(), &mut seen, "2025-07-19T12:01:30Z");
    feed(
        t.as_mut(),
        &mut seen,
        vec![failed("2025-07-19T12:00:55Z", "cash")],
    );
    assert_eq!((seen.late.len(), seen.dead.len()), (1, 0));
    flush(t.as_mut(), &mut seen);
    assert_eq!(seen.table(&["window_start"])[0]["failures"], 2);
}

#[test]
fn late_records_are_dead_lettered_or_dropped_as_configured() {
    for (late, dead, dropped) in [("dead_letter", 1, 0), ("drop", 0, 1)] {
        let options = format!("{PER_MINUTE}\nlate = \"{late}\"");
        let mut t = build_transform("window", &options).expect("builds");
        let mut seen = Seen::default();
        watermark(t.as_mut(), &mut seen, "2025-07-19T13:00:00Z");
        feed(
            t.as_mut(),
            &mut seen,
            vec![failed("2025-07-19T12:00:00Z", "cash")],
        );
        assert_eq!((seen.dead.len(), seen.dropped), (dead, dropped), "{late}");
    }
}

#[test]
fn early_updates_emit_open_windows_that_changed() {
    let options = format!("{PER_MINUTE}\nearly_updates = \"10s\"");
    let mut t = build_transform("window", &options).expect("builds");
    assert!(t.tick_interval().is_some());
    let mut seen = Seen::default();
    feed(
        t.as_mut(),
        &mut seen,
        vec![failed("2025-07-19T12:00:10Z", "cash")],
    );
    let mut out = Emitter::default();
    t.tick(&mut out);
    seen.collect(&mut out);
    assert_eq!(seen.rows.len(), 1, "the open window's partial count");
    let mut out = Emitter::default();
    t.tick(&mut out);
    seen.collect(&mut out);
    assert_eq!(seen.rows.len(), 1, "unchanged: not emitted again");
}

#[test]
fn bad_options_are_rejected_at_build() {
    for (options, field) in [
        (
            "kind = \"tumbling\"\naggregations = { n = \"count()\" }",
            "size",
        ),
        (
            "kind = \"hopping\"\nsize = \"1m\"\naggregations = { n = \"count()\" }",
            "hop",
        ),
        (
            "kind = \"hopping\"\nsize = \"1m\"\nhop = \"2m\"\naggregations = { n = \"count()\" }",
            "hop",
        ),
        (
            "kind = \"session\"\naggregations = { n = \"count()\" }",
            "gap",
        ),
        (
            "kind = \"session\"\ngap = \"1m\"\naggregations = { n = \"mode(x)\" }",
            "aggregations.n",
        ),
    ] {
        let e = build_error(build_transform("window", options));
        assert_eq!(e.field.as_deref(), Some(field), "{options}: {e}");
    }
}

#[test]
fn a_value_that_would_overflow_a_window_sum_is_dead_lettered_from_every_window() {
    let hopping = r#"
kind = "hopping"
size = "2m"
hop = "1m"
keys = { payment_method = "paymentMethod" }
aggregations = { total = "sum(amount)", n = "count()" }
"#;
    let mut t = build_transform("window", hopping).expect("builds");
    let mut seen = Seen::default();
    let paid =
        |time: &str, amount: f64| at(time, json!({"paymentMethod": "cash", "amount": amount}));
    feed(
        t.as_mut(),
        &mut seen,
        vec![
            // In the windows starting 12:00 and 12:01.
            paid("2025-07-19T12:01:10Z", 1.7e308),
            // Only in 12:01 and 12:02; it would overflow 12:01, so it joins neither.
            paid("2025-07-19T12:02:10Z", 1.7e308),
        ],
    );
    flush(t.as_mut(), &mut seen);
    assert_eq!(seen.dead.len(), 1, "{:?}", seen.dead);
    assert!(
        seen.dead[0].0.contains("would make the sum overflow"),
        "{}",
        seen.dead[0].0
    );
    let rows = seen.table(&["payment_method", "window_start"]);
    assert_eq!(
        rows.len(),
        2,
        "no window holds the refused record: {rows:?}"
    );
    assert!(
        rows.iter()
            .all(|r| r["total"] == json!(1.7e308) && r["n"] == json!(1)),
        "{rows:?}"
    );
}
