//! The `aggregate` transform: keyed aggregates (count, sum, min, max, avg) over groups whose
//! keys are fields or calendar buckets of the event time, emitted as an upsert stream.
//!
//! Rows are emitted every `emit_interval` for the groups that changed, and when the
//! watermark passes the end of a group's bucket. A bucket's state is dropped once the
//! watermark passes its end plus `allowed_lateness`; records for it after that are late.

mod calendar;
mod dirty;

use crate::aggregation::{
    Accumulator, Aggregation, GroupKey, KeyPart, LateRecords, Rejected, SharedKey,
    parse_aggregations,
};
use calendar::{Calendar, TimeKey};
use dirty::Dirty;
use ecomflow_core::state::{KeyedState, StateHandle, Tracking};
use ecomflow_core::{
    Batch, BuildContext, BuildError, Emitter, Field, Plugin, Record, Transform, TransformPlugin,
};
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

/// Options of the `aggregate` transform.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AggregateConfig {
    /// The group key: output field -> a record field (`productCategory`) or a calendar
    /// function of the event time: `hour(event_time)` (0-23), `day(event_time)`
    /// (`YYYY-MM-DD`), `week(event_time)` (the Monday, `YYYY-MM-DD`), `month(event_time)`
    /// (1-12, needs a year key) or `year(event_time)`. Time keys need `event_time` on the
    /// source.
    pub keys: IndexMap<String, String>,
    /// Output field -> `count()`, `count(field)`, `sum(field)`, `min(field)`, `max(field)`
    /// or `avg(field)`.
    pub aggregations: IndexMap<String, String>,
    /// IANA time zone of the calendar functions, such as `UTC` or `Europe/Berlin`.
    #[serde(default = "utc")]
    pub time_zone: String,
    /// How long after its bucket ends (by the watermark) a group still takes late records;
    /// then its state is dropped.
    #[serde(default)]
    pub allowed_lateness: ecomflow_core::duration::ZeroAllowed,
    /// How often the rows of groups that changed are emitted.
    #[serde(default = "one_second")]
    pub emit_interval: ecomflow_core::duration::Positive,
    /// What to do with records for buckets already dropped: `dead_letter`, `output` (to
    /// `<id>.late`) or `drop`.
    #[serde(default)]
    pub late: LateRecords,
}

fn utc() -> String {
    "UTC".into()
}

fn one_second() -> ecomflow_core::duration::Positive {
    ecomflow_core::duration::Positive::new(Duration::from_secs(1))
}

/// Registers the `aggregate` transform.
pub struct AggregatePlugin;

impl TransformPlugin for AggregatePlugin {
    type Config = AggregateConfig;
    const OUTPUTS: &'static [&'static str] = &["late"];

    fn build(cfg: AggregateConfig, _cx: &BuildContext) -> Result<Box<dyn Transform>, BuildError> {
        if cfg.keys.is_empty() {
            return Err(BuildError::field("keys", "name at least one key field"));
        }
        let mut keys = Vec::new();
        let mut time_keys = Vec::new();
        for (output, expr) in &cfg.keys {
            let source = match TimeKey::parse(expr) {
                Some(t) => {
                    time_keys.push(t);
                    KeySource::Time(t)
                }
                None if expr.contains('(') => {
                    return Err(BuildError::field(
                        format!("keys.{output}"),
                        format!(
                            "`{expr}` is not a key: use a field name or hour/day/week/month/year(event_time)"
                        ),
                    ));
                }
                None => KeySource::Field(Field::new(expr.trim())),
            };
            keys.push((Field::new(output), source));
        }
        TimeKey::check_combination(&time_keys).map_err(|e| BuildError::field("keys", e))?;
        // The zone is checked even when no key reads it, so a typo never waits for a change.
        let unit = time_keys.iter().min().copied();
        let calendar = Calendar::new(&cfg.time_zone, unit.unwrap_or(TimeKey::Day))
            .map_err(|e| BuildError::field("time_zone", e))?;
        let calendar = unit.map(|_| calendar);
        let aggregations = parse_aggregations(&cfg.aggregations)?;
        Ok(Box::new(Aggregate {
            empty: aggregations
                .iter()
                .map(|a| Accumulator::new(a.function))
                .collect(),
            aggregations,
            keys,
            calendar,
            lateness_us: i64::try_from(cfg.allowed_lateness.as_micros()).unwrap_or(i64::MAX),
            emit_interval: cfg.emit_interval.get(),
            late: cfg.late,
            groups: KeyedState::new(),
            dirty: Dirty::default(),
            watermark: i64::MIN,
            scratch: Vec::new(),
        }))
    }
}

enum KeySource {
    Field(Field),
    Time(TimeKey),
}

/// The row of group `key`: its key fields, then its aggregates.
fn row(
    keys: &[(Field, KeySource)],
    aggregations: &[Aggregation],
    key: &[KeyPart],
    group: &Group,
) -> Record {
    let mut r = Record::with_capacity(keys.len() + aggregations.len());
    for ((output, _), part) in keys.iter().zip(key) {
        r.push(*output, part.value());
    }
    for (a, acc) in aggregations.iter().zip(group.accumulators.iter()) {
        r.push(a.output, acc.value());
    }
    if let Some(start) = group.start {
        r.set_time(start);
    }
    r
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Group {
    accumulators: Box<[Accumulator]>,
    start: Option<i64>,
    end: Option<i64>,
    dirty: bool,
}

struct Aggregate {
    keys: Vec<(Field, KeySource)>,
    aggregations: Vec<Aggregation>,
    /// Fresh accumulators, cloned for each new group (and used to check values first).
    empty: Box<[Accumulator]>,
    calendar: Option<Calendar>,
    lateness_us: i64,
    emit_interval: Duration,
    late: LateRecords,
    /// The open groups, ordered by the end of their bucket (so a watermark drops those
    /// past their lateness without looking at the others). Their key is shared with
    /// `dirty`.
    groups: KeyedState<SharedKey, Group>,
    /// Groups changed since their last row.
    dirty: Dirty,
    watermark: i64,
    scratch: Vec<KeyPart>,
}

impl Aggregate {
    /// Adds one record to its group, or says why it cannot be added.
    fn add(&mut self, record: &Record) -> Result<(), Rejected> {
        let mut bucket = None;
        if let Some(calendar) = &mut self.calendar {
            let t = record.time().ok_or(
                "the record has no event time: set `event_time` on the source that reads it",
            )?;
            let b = calendar.bucket(t)?;
            if b.end.saturating_add(self.lateness_us) <= self.watermark {
                return Err(Rejected::Late(format!(
                    "late: its bucket ended at {} and the watermark is at {}",
                    ecomflow_time::describe(b.end),
                    ecomflow_time::describe(self.watermark)
                )));
            }
            bucket = Some(b);
        }
        self.scratch.clear();
        for (output, source) in &self.keys {
            self.scratch.push(match source {
                KeySource::Time(k) => bucket.map_or(KeyPart::Null, |b| b.key(*k)),
                KeySource::Field(f) => match record.get(*f) {
                    Some(v) => KeyPart::of(v).map_err(|e| format!("key field `{f}` {e}"))?,
                    None => {
                        return Err(
                            format!("key field `{f}` is missing (for key `{output}`)").into()
                        );
                    }
                },
            });
        }
        for (a, empty) in self.aggregations.iter().zip(self.empty.iter()) {
            empty.takes(a, record)?;
        }
        let (start, end) = bucket.map_or((None, None), |b| (Some(b.start), Some(b.end)));
        let mut new_key = None;
        let (group, _) = self.groups.get_or_insert_with(
            end,
            &self.scratch[..],
            || {
                let key: SharedKey = self.scratch.as_slice().into();
                new_key = Some(key.clone());
                key
            },
            || Group {
                accumulators: self.empty.clone(),
                start,
                end,
                dirty: false,
            },
        );
        // Every sum takes the value, or none does: a record that would overflow one is
        // rejected whole.
        for (acc, a) in group.accumulators.iter().zip(&self.aggregations) {
            acc.admits(a, record)?;
        }
        for (acc, a) in group.accumulators.iter_mut().zip(&self.aggregations) {
            acc.add(a.value(record));
        }
        if !group.dirty {
            group.dirty = true;
            // The list shares the key memory holds: no copy of it.
            let key = new_key.or_else(|| self.groups.cached_key(end, &self.scratch[..]).cloned());
            if let Some(key) = key {
                self.dirty.push(end, key);
            }
        }
        Ok(())
    }

    /// Emits the row of `key` if it changed since its last row.
    fn emit_if_dirty(&mut self, end: Option<i64>, key: &[KeyPart], out: &mut Emitter) {
        let Some(group) = self.groups.get_mut(end, key) else {
            return;
        };
        if group.dirty {
            group.dirty = false;
            out.emit(row(&self.keys, &self.aggregations, key, group));
        }
    }

    fn emit_changed(&mut self, out: &mut Emitter) {
        for (end, key) in self.dirty.take_all() {
            self.emit_if_dirty(end, &key, out);
        }
    }
}

impl Transform for Aggregate {
    fn process(&mut self, batch: Batch, out: &mut Emitter) {
        self.process_shared(&batch, out);
    }

    /// Aggregates only read records: a shared batch is never copied.
    fn process_shared(&mut self, batch: &[Record], out: &mut Emitter) {
        for record in batch {
            if let Err(rejected) = self.add(record) {
                rejected.route(record, self.late, out);
            }
        }
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Emitter) {
        self.watermark = watermark;
        // Changed groups whose bucket has ended: their rows are final now (until a record
        // within the lateness changes them again). Only changed groups whose bucket ended
        // are looked at, however many are open.
        for (end, key) in self.dirty.take_ended(watermark) {
            self.emit_if_dirty(end, &key, out);
        }
        // Buckets past their lateness: their state goes.
        self.groups
            .expire_through(watermark.saturating_sub(self.lateness_us));
    }

    fn flush(&mut self, out: &mut Emitter) {
        self.emit_changed(out);
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.emit_interval)
    }

    /// The watermark, the groups whose row is due, and the groups themselves unless the
    /// state store keeps them.
    fn snapshot(&self) -> Option<serde_json::Value> {
        #[derive(serde::Serialize)]
        struct State<'a> {
            watermark: i64,
            groups: Vec<(SharedKey, Group)>,
            due: Vec<(Option<i64>, &'a [KeyPart])>,
        }
        let groups = match self.groups.tracking() {
            Tracking::Incremental => Vec::new(),
            Tracking::None | Tracking::Full => self
                .groups
                .export()
                .into_iter()
                .map(|(_, k, g)| (k, g))
                .collect(),
        };
        serde_json::to_value(State {
            watermark: self.watermark,
            groups,
            due: self.dirty.iter().map(|(end, k)| (end, &**k)).collect(),
        })
        .ok()
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
        #[derive(serde::Deserialize)]
        struct State {
            watermark: i64,
            groups: Vec<(GroupKey, Group)>,
            /// Missing in checkpoints of versions before the state store: the groups' own
            /// flags say which rows are due.
            due: Option<Vec<(Option<i64>, GroupKey)>>,
        }
        let state: State = serde_json::from_value(state).map_err(|e| e.to_string())?;
        self.watermark = state.watermark;
        if state
            .groups
            .iter()
            .any(|(_, g)| g.accumulators.len() != self.empty.len())
        {
            return Err("the aggregations changed since the checkpoint".into());
        }
        if state.due.is_none() {
            for (key, group) in &state.groups {
                if group.dirty {
                    self.dirty.push(group.end, SharedKey::from(key.clone()));
                }
            }
        }
        for (end, key) in state.due.unwrap_or_default() {
            self.dirty.push(end, SharedKey::from(key));
        }
        self.groups.import(
            state
                .groups
                .into_iter()
                .map(|(key, group)| (group.end, SharedKey::from(key), group)),
        );
        Ok(())
    }

    fn keyed_states(&mut self) -> Vec<&mut dyn StateHandle> {
        vec![&mut self.groups]
    }

    fn tick(&mut self, out: &mut Emitter) {
        self.emit_changed(out);
    }
}

ecomflow_core::inventory::submit!(Plugin::transform::<AggregatePlugin>(
    "aggregate",
    "keyed aggregates over fields and calendar buckets of event time, as an upsert stream"
));

#[cfg(test)]
mod tests;
