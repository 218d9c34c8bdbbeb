//! The event-time tracker with the formats of `event_time.format`: times stamped, the
//! watermark trailing the highest by the out-of-orderness, idle partitions left out.

use ecomflow_core::{Batch, EventTimeConfig, Field, Record, Value};
use ecomflow_time::{parse_iso, tracker};
use std::time::Duration;
fn config(extra: &str) -> EventTimeConfig {
    toml::from_str(&format!("field = \"t\"\n{extra}")).expect("valid config")
}

fn batch(times: &[&str]) -> Batch {
    times
        .iter()
        .map(|t| {
            let mut r = Record::default();
            r.push(Field::new("t"), Value::from(*t));
            r
        })
        .collect()
}

const MINUTE: i64 = 60_000_000;

#[test]
fn stamps_times_and_trails_the_highest_by_the_out_of_orderness() {
    let mut t = tracker(&config("max_out_of_orderness = \"5m\"")).expect("ok");
    let mut b = batch(&[
        "2025-01-01T00:10:00.000000+0000",
        "2025-01-01T00:07:00.000000+0000",
    ]);
    let mut dead = Vec::new();
    t.stamp(0, &mut b, &mut dead);
    assert!(dead.is_empty());
    let ten = parse_iso("2025-01-01T00:10:00Z", true).expect("time");
    assert_eq!(b[0].time(), Some(ten));
    assert_eq!(t.advance(), Some(ten - 5 * MINUTE));
    assert_eq!(t.advance(), None, "no change, no new watermark");
    // An earlier event never moves the watermark back.
    let mut b = batch(&["2025-01-01T00:01:00Z"]);
    t.stamp(0, &mut b, &mut dead);
    assert_eq!(t.advance(), None);
}

#[test]
fn bad_and_far_future_times_are_dead_lettered_and_never_advance() {
    let mut t = tracker(&config("max_future = \"1h\"")).expect("ok");
    let mut b = batch(&["2025-01-01T00:00:00Z", "yesterday", "2999-01-01T00:00:00Z"]);
    b.push(Record::default());
    let mut ancient = Record::default();
    ancient.push(Field::new("t"), Value::Int(-9_223_372_036_854_775));
    b.push(ancient);
    let mut dead = Vec::new();
    t.stamp(0, &mut b, &mut dead);
    assert_eq!(b.len(), 1);
    let reasons: Vec<&str> = dead.iter().map(|(r, _)| r.as_str()).collect();
    assert!(
        reasons[0].contains("`yesterday` is not like"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("too far in the future"), "{reasons:?}");
    assert!(
        reasons[2].contains("missing event-time field `t`"),
        "{reasons:?}"
    );
    assert!(reasons[3].contains("expected a text time"), "{reasons:?}");
    assert_eq!(t.advance(), parse_iso("2025-01-01T00:00:00Z", true));
}

#[test]
fn the_slowest_active_partition_sets_the_watermark_and_idle_ones_do_not() {
    let mut t = tracker(&config("idle_timeout = \"50ms\"")).expect("ok");
    let mut dead = Vec::new();
    t.stamp(0, &mut batch(&["2025-01-01T00:00:00Z"]), &mut dead);
    t.stamp(1, &mut batch(&["2025-01-01T01:00:00Z"]), &mut dead);
    let midnight = parse_iso("2025-01-01T00:00:00Z", true);
    assert_eq!(t.advance(), midnight);
    std::thread::sleep(Duration::from_millis(80));
    t.stamp(1, &mut batch(&["2025-01-01T02:00:00Z"]), &mut dead);
    // Partition 0 is idle now: partition 1 alone sets the watermark.
    assert_eq!(t.advance(), parse_iso("2025-01-01T02:00:00Z", true));
}

#[test]
fn a_registered_partition_holds_the_watermark_until_it_sends() {
    let mut t = tracker(&config("idle_timeout = \"1h\"")).expect("ok");
    let mut dead = Vec::new();
    t.register(0);
    t.register(1);
    t.stamp(0, &mut batch(&["2025-01-01T05:00:00Z"]), &mut dead);
    assert_eq!(t.advance(), None, "partition 1 has not sent yet");
    t.stamp(1, &mut batch(&["2025-01-01T01:00:00Z"]), &mut dead);
    assert_eq!(t.advance(), parse_iso("2025-01-01T01:00:00Z", true));
}

#[test]
fn unknown_formats_are_config_errors() {
    assert!(tracker(&config("format = \"iso\"")).is_err());
}
