//! Event time at the sources: each record's time is read from a field, records whose time
//! cannot be read or lies too far in the future are dead-lettered, and the watermark (the
//! highest time seen minus the allowed out-of-orderness) is tracked per source partition.
//! Partitions that have gone idle do not hold the watermark back.

use crate::dead_letter::Payload;
use crate::field::Field;
use crate::record::Batch;
use crate::value::Value;
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

/// Reads an event time from a field's value: microseconds since 1970-01-01 UTC, or why it
/// cannot (a time format; `ecomflow-time` has those of `event_time.format`).
pub trait ReadTime: Send + Sync {
    /// The time `value` says, or why it says none.
    fn read(&self, value: &Value) -> Result<i64, String>;
}

/// Stamps records with their event time and tracks the watermark of one source.
pub struct EventTimeTracker {
    field: Field,
    format: Box<dyn ReadTime>,
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
    /// A tracker for `config` reading times with `format` (what `config.format` names:
    /// `ecomflow_time::tracker` makes both from the config).
    pub fn new(config: &EventTimeConfig, format: Box<dyn ReadTime>) -> EventTimeTracker {
        EventTimeTracker {
            field: Field::new(&config.field),
            format,
            out_of_orderness_us: micros(config.max_out_of_orderness.get()),
            max_future_us: micros(config.max_future.get()),
            idle_timeout: config.idle_timeout.get(),
            partitions: Vec::new(),
            watermark: None,
        }
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
