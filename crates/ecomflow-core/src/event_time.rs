//! Event time at the sources: each record's time is read from a field, records whose time
//! cannot be read or lies too far in the future are dead-lettered, and the watermark (the
//! highest time seen minus the allowed out-of-orderness) is tracked per source partition.
//! Partitions that have gone idle do not hold the watermark back.

use crate::dead_letter::Payload;
use crate::field::Field;
use crate::record::Batch;
use crate::time::TimeFormat;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The `event_time` table every source takes: where a record's event time is and how late
/// records may arrive.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTimeConfig {
    /// The field holding the event time, such as `transactionDate`.
    pub field: String,
    /// How it is written: `seed` (`2025-07-19T12:34:56.123456+0000`, no offset = UTC),
    /// `rfc3339`, `epoch_millis`, `epoch_seconds`, or a strftime pattern such as
    /// `%d/%m/%Y %H:%M`.
    #[serde(default = "seed")]
    pub format: String,
    /// How far out of order events may arrive: the watermark trails the highest event time
    /// seen by this much.
    #[serde(default)]
    pub max_out_of_orderness: crate::duration::ZeroAllowed,
    /// A partition that has sent nothing for this long stops holding the watermark back.
    #[serde(default = "thirty_seconds")]
    pub idle_timeout: crate::duration::Positive,
    /// Records whose event time is further than this ahead of the wall clock are
    /// dead-lettered and never move the watermark.
    #[serde(default = "one_day")]
    pub max_future: crate::duration::ZeroAllowed,
}

fn seed() -> String {
    "seed".into()
}

fn thirty_seconds() -> crate::duration::Positive {
    crate::duration::Positive::new(Duration::from_secs(30))
}

fn one_day() -> crate::duration::ZeroAllowed {
    crate::duration::ZeroAllowed::new(Duration::from_secs(86_400))
}

/// Stamps records with their event time and tracks the watermark of one source.
pub struct EventTimeTracker {
    field: Field,
    format: TimeFormat,
    out_of_orderness_us: i64,
    max_future_us: i64,
    idle_timeout: Duration,
    partitions: Vec<Partition>,
    watermark: Option<i64>,
}

#[derive(Clone, Copy)]
struct Partition {
    highest: Option<i64>,
    /// Its own watermark, passed on last (for sources whose partitions are shards).
    watermark: Option<i64>,
    last_seen: Instant,
    /// Known to exist (registered or seen), so it counts while it is not idle.
    known: bool,
}

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z: the times calendars can handle.
const EARLIEST_US: i64 = -62_135_596_800_000_000;
const LATEST_US: i64 = 253_402_300_799_999_999;

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl EventTimeTracker {
    /// A tracker for `config`, or why the config is wrong (an unknown format).
    pub fn new(config: &EventTimeConfig) -> Result<EventTimeTracker, String> {
        Ok(EventTimeTracker {
            field: Field::new(&config.field),
            format: TimeFormat::parse(&config.format)?,
            out_of_orderness_us: micros(config.max_out_of_orderness.get()),
            max_future_us: micros(config.max_future.get()),
            idle_timeout: config.idle_timeout.get(),
            partitions: Vec::new(),
            watermark: None,
        })
    }

    /// The field the event time is read from.
    pub fn field(&self) -> Field {
        self.field
    }

    /// Reads the event time of every record in `batch` from `partition`, stamps it on the
    /// record, and moves records it cannot accept to `dead` with the reason.
    pub fn stamp(
        &mut self,
        partition: usize,
        batch: &mut Batch,
        dead: &mut Vec<(String, Payload)>,
    ) {
        self.stamp_at(partition, batch, dead, Instant::now());
    }

    /// [`EventTimeTracker::stamp`] at `now` on the clock that idle timeouts are measured by
    /// (a test's processing clock).
    pub fn stamp_at(
        &mut self,
        partition: usize,
        batch: &mut Batch,
        dead: &mut Vec<(String, Payload)>,
        now: Instant,
    ) {
        let wall_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, micros);
        let latest_allowed = wall_us.saturating_add(self.max_future_us);
        self.register_at(partition, now);
        let p = &mut self.partitions[partition];
        let field = self.field;
        let format = &self.format;
        let mut highest = p.highest;
        let mut rejected = Vec::new();
        batch.retain_mut(|r| {
            let reason = match r.get(field) {
                None => format!("missing event-time field `{field}`"),
                Some(v) => match format.read(v) {
                    Ok(t) if t > latest_allowed => {
                        format!("event time of `{field}` is too far in the future")
                    }
                    Ok(t) if !(EARLIEST_US..=LATEST_US).contains(&t) => {
                        format!("event time of `{field}` is outside the years 0001 to 9999")
                    }
                    Ok(t) => {
                        r.set_time(t);
                        highest = Some(highest.map_or(t, |h| h.max(t)));
                        return true;
                    }
                    Err(e) => format!("event time `{field}`: {e}"),
                },
            };
            rejected.push((reason, r.clone()));
            false
        });
        p.highest = highest;
        dead.extend(
            rejected
                .into_iter()
                .map(|(reason, r)| (reason, Payload::Record(r))),
        );
    }

    /// Registers partition `partition` before it sends anything: until it does (or idles),
    /// the watermark waits for it.
    pub fn register(&mut self, partition: usize) {
        self.register_at(partition, Instant::now());
    }

    /// [`EventTimeTracker::register`] at `now`.
    pub fn register_at(&mut self, partition: usize, now: Instant) {
        if self.partitions.len() <= partition {
            self.partitions.resize(
                partition + 1,
                Partition {
                    highest: None,
                    watermark: None,
                    last_seen: now,
                    known: false,
                },
            );
        }
        let p = &mut self.partitions[partition];
        p.known = true;
        p.last_seen = now;
    }

    /// Partition `partition`'s own watermark (its highest time minus the out-of-orderness),
    /// if it moved forward since the last call: for a source whose partitions are shards,
    /// each with its own state, where one partition never holds another back.
    pub fn advance_partition(&mut self, partition: usize) -> Option<i64> {
        let p = self.partitions.get_mut(partition)?;
        let candidate = p.highest?.saturating_sub(self.out_of_orderness_us);
        if p.watermark.is_some_and(|w| w >= candidate) {
            return None;
        }
        p.watermark = Some(candidate);
        p.watermark
    }

    /// Forgets partition `partition` (it went to another process): what it saw no longer
    /// counts, and should it come back, it starts afresh.
    pub fn forget(&mut self, partition: usize) {
        if let Some(p) = self.partitions.get_mut(partition) {
            p.highest = None;
            p.watermark = None;
            p.known = false;
        }
    }

    /// The watermark if it moved since the last call: the lowest of the active partitions'
    /// highest times minus the out-of-orderness. Partitions idle for longer than the idle
    /// timeout are left out, unless all are; a registered partition that has not sent yet
    /// holds it back until then.
    pub fn advance(&mut self) -> Option<i64> {
        self.advance_at(Instant::now())
    }

    /// [`EventTimeTracker::advance`] at `now`.
    pub fn advance_at(&mut self, now: Instant) -> Option<i64> {
        let waiting = self.partitions.iter().any(|p| {
            p.known && p.highest.is_none() && now.duration_since(p.last_seen) < self.idle_timeout
        });
        if waiting {
            return None;
        }
        let seen = self.partitions.iter().filter(|p| p.highest.is_some());
        let active: Vec<i64> = seen
            .clone()
            .filter(|p| now.duration_since(p.last_seen) < self.idle_timeout)
            .filter_map(|p| p.highest)
            .collect();
        let lowest = if active.is_empty() {
            seen.filter_map(|p| p.highest).min()
        } else {
            active.into_iter().min()
        }?;
        let candidate = lowest.saturating_sub(self.out_of_orderness_us);
        if self.watermark.is_some_and(|w| w >= candidate) {
            return None;
        }
        self.watermark = Some(candidate);
        self.watermark
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Record, Value};

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
        let mut t = EventTimeTracker::new(&config("max_out_of_orderness = \"5m\"")).expect("ok");
        let mut b = batch(&[
            "2025-01-01T00:10:00.000000+0000",
            "2025-01-01T00:07:00.000000+0000",
        ]);
        let mut dead = Vec::new();
        t.stamp(0, &mut b, &mut dead);
        assert!(dead.is_empty());
        let ten = crate::time::parse_iso("2025-01-01T00:10:00Z", true).expect("time");
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
        let mut t = EventTimeTracker::new(&config("max_future = \"1h\"")).expect("ok");
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
        assert_eq!(
            t.advance(),
            crate::time::parse_iso("2025-01-01T00:00:00Z", true)
        );
    }

    #[test]
    fn the_slowest_active_partition_sets_the_watermark_and_idle_ones_do_not() {
        let mut t = EventTimeTracker::new(&config("idle_timeout = \"50ms\"")).expect("ok");
        let mut dead = Vec::new();
        t.stamp(0, &mut batch(&["2025-01-01T00:00:00Z"]), &mut dead);
        t.stamp(1, &mut batch(&["2025-01-01T01:00:00Z"]), &mut dead);
        let midnight = crate::time::parse_iso("2025-01-01T00:00:00Z", true);
        assert_eq!(t.advance(), midnight);
        std::thread::sleep(Duration::from_millis(80));
        t.stamp(1, &mut batch(&["2025-01-01T02:00:00Z"]), &mut dead);
        // Partition 0 is idle now: partition 1 alone sets the watermark.
        assert_eq!(
            t.advance(),
            crate::time::parse_iso("2025-01-01T02:00:00Z", true)
        );
    }

    #[test]
    fn a_registered_partition_holds_the_watermark_until_it_sends() {
        let mut t = EventTimeTracker::new(&config("idle_timeout = \"1h\"")).expect("ok");
        let mut dead = Vec::new();
        t.register(0);
        t.register(1);
        t.stamp(0, &mut batch(&["2025-01-01T05:00:00Z"]), &mut dead);
        assert_eq!(t.advance(), None, "partition 1 has not sent yet");
        t.stamp(1, &mut batch(&["2025-01-01T01:00:00Z"]), &mut dead);
        assert_eq!(
            t.advance(),
            crate::time::parse_iso("2025-01-01T01:00:00Z", true)
        );
    }

    #[test]
    fn unknown_formats_are_config_errors() {
        assert!(EventTimeTracker::new(&config("format = \"iso\"")).is_err());
    }
}
