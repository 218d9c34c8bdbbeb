//! The `window` transform: tumbling, hopping and session windows on event time, with keyed
//! aggregates, allowed lateness, a `late` output and optional early updates.
//!
//! A window's row is emitted when the watermark passes its end (and again if a record
//! within the allowed lateness changes it, or at each early update while it is open). Its
//! state is dropped once the watermark passes its end plus the allowed lateness.

mod fixed;
mod session;

use crate::aggregation::{
    Accumulator, Aggregation, KeyPart, LateRecords, Rejected, parse_aggregations,
};
use ecomflow_core::{
    Batch, BuildContext, BuildError, Emitter, Field, Plugin, Record, Transform, TransformPlugin,
    Value,
};
use fixed::FixedWindows;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use session::Sessions;
use std::time::Duration;

/// The kinds of window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    /// Back-to-back windows of `size`.
    Tumbling,
    /// Windows of `size` starting every `hop` (a record can be in several).
    Hopping,
    /// Per key, records closer than `gap` to each other form one window.
    Session,
}

/// Options of the `window` transform.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// `tumbling`, `hopping` or `session`.
    pub kind: WindowKind,
    /// Length of tumbling and hopping windows, such as `1m`.
    #[serde(default)]
    pub size: Option<ecomflow_core::duration::Positive>,
    /// How far apart hopping windows start, such as `30s`.
    #[serde(default)]
    pub hop: Option<ecomflow_core::duration::Positive>,
    /// For sessions: this long without a record ends the session.
    #[serde(default)]
    pub gap: Option<ecomflow_core::duration::Positive>,
    /// Group key: output field -> record field. Without keys, one window covers all records.
    #[serde(default)]
    pub keys: IndexMap<String, String>,
    /// Output field -> `count()`, `count(field)`, `sum(field)`, `min(field)`, `max(field)`
    /// or `avg(field)`.
    pub aggregations: IndexMap<String, String>,
    /// How long after its end (by the watermark) a window still takes late records.
    #[serde(default)]
    pub allowed_lateness: ecomflow_core::duration::ZeroAllowed,
    /// Emit the rows of open windows that changed this often (early results); only on close
    /// when absent.
    #[serde(default)]
    pub early_updates: Option<ecomflow_core::duration::Positive>,
    /// What to do with records later than the allowed lateness: `dead_letter`, `output` (to
    /// `<id>.late`) or `drop`.
    #[serde(default)]
    pub late: LateRecords,
}

/// Registers the `window` transform.
pub struct WindowPlugin;

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn positive(
    d: Option<ecomflow_core::duration::Positive>,
    name: &str,
    kind: &str,
) -> Result<i64, BuildError> {
    match d {
        Some(d) if !d.is_zero() => Ok(micros(d.get())),
        _ => Err(BuildError::field(
            name,
            format!("{kind} windows need `{name}` (longer than 0s)"),
        )),
    }
}

impl TransformPlugin for WindowPlugin {
    type Config = WindowConfig;
    const OUTPUTS: &'static [&'static str] = &["late"];

    fn build(cfg: WindowConfig, _cx: &BuildContext) -> Result<Box<dyn Transform>, BuildError> {
        let assigner = match cfg.kind {
            WindowKind::Tumbling => {
                let size = positive(cfg.size, "size", "tumbling")?;
                Assigner::Fixed(FixedWindows::new(size, size))
            }
            WindowKind::Hopping => {
                let size = positive(cfg.size, "size", "hopping")?;
                let hop = positive(cfg.hop, "hop", "hopping")?;
                if hop > size {
                    return Err(BuildError::field(
                        "hop",
                        "`hop` longer than `size` would skip records",
                    ));
                }
                Assigner::Fixed(FixedWindows::new(size, hop))
            }
            WindowKind::Session => {
                Assigner::Session(Sessions::new(positive(cfg.gap, "gap", "session")?))
            }
        };
        if cfg.early_updates.is_some_and(|d| d.is_zero()) {
            return Err(BuildError::field("early_updates", "must be longer than 0s"));
        }
        let aggregations = parse_aggregations(&cfg.aggregations)?;
        Ok(Box::new(Window {
            keys: cfg
                .keys
                .iter()
                .map(|(out, field)| (Field::new(out), Field::new(field.trim())))
                .collect(),
            empty: aggregations
                .iter()
                .map(|a| Accumulator::new(a.function))
                .collect(),
            aggregations,
            assigner,
            lateness_us: micros(cfg.allowed_lateness.get()),
            early_updates: cfg
                .early_updates
                .map(ecomflow_core::duration::Positive::get),
            late: cfg.late,
            watermark: i64::MIN,
            fields: OutputFields {
                start: Field::new("window_start"),
                end: Field::new("window_end"),
            },
            scratch: Vec::new(),
        }))
    }
}

/// One window's state.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WindowState {
    /// First instant in the window.
    pub start: i64,
    /// First instant after it.
    pub end: i64,
    /// The aggregations so far.
    pub accumulators: Box<[Accumulator]>,
    /// Changed since its last row.
    pub dirty: bool,
}

enum Assigner {
    Fixed(FixedWindows),
    Session(Sessions),
}

struct OutputFields {
    start: Field,
    end: Field,
}

struct Window {
    keys: Vec<(Field, Field)>,
    aggregations: Vec<Aggregation>,
    empty: Box<[Accumulator]>,
    assigner: Assigner,
    lateness_us: i64,
    early_updates: Option<Duration>,
    late: LateRecords,
    watermark: i64,
    fields: OutputFields,
    /// The key parts of the record being added.
    scratch: Vec<KeyPart>,
}

impl Window {
    fn add(&mut self, record: &Record) -> Result<(), Rejected> {
        let t = record
            .time()
            .ok_or("the record has no event time: set `event_time` on the source that reads it")?;
        let key = &mut self.scratch;
        key.clear();
        for (output, field) in &self.keys {
            match record.get(*field) {
                Some(v) => {
                    key.push(KeyPart::of(v).map_err(|e| format!("key field `{field}` {e}"))?)
                }
                None => {
                    return Err(
                        format!("key field `{field}` is missing (for key `{output}`)").into(),
                    );
                }
            }
        }
        for (a, empty) in self.aggregations.iter().zip(self.empty.iter()) {
            empty.takes(a, record)?;
        }
        let closed_before = self.watermark.saturating_sub(self.lateness_us);
        let aggregations = &self.aggregations;
        let add = |w: &mut WindowState| {
            for (acc, a) in w.accumulators.iter_mut().zip(aggregations) {
                acc.add(a.value(record));
            }
            w.dirty = true;
        };
        // Every sum of every window the record joins takes its value, or none does.
        let fits = |w: &WindowState| {
            w.accumulators
                .iter()
                .zip(aggregations)
                .try_for_each(|(acc, a)| acc.admits(a, record))
        };
        let key = &self.scratch[..];
        let applied = match &mut self.assigner {
            Assigner::Fixed(f) => f.add(key, t, closed_before, &self.empty, fits, add),
            Assigner::Session(s) => s.add(key, t, closed_before, &self.empty, fits, add),
        }?;
        if applied == 0 {
            return Err(Rejected::Late(format!(
                "late: event time {} is past every window's allowed lateness (watermark {})",
                ecomflow_time::describe(t),
                ecomflow_time::describe(self.watermark)
            )));
        }
        Ok(())
    }

    /// Emits the rows of changed windows that end by `until` (all changed ones for
    /// `i64::MAX`), in the order of their ends and starts.
    fn emit(&mut self, until: i64, out: &mut Emitter) {
        let mut rows = Vec::new();
        let shape = RowShape {
            keys: &self.keys,
            aggregations: &self.aggregations,
            fields: &self.fields,
        };
        let visit = |key: &[KeyPart], w: &mut WindowState| {
            if w.dirty && w.end <= until {
                w.dirty = false;
                rows.push((w.end, w.start, shape.row(key, w)));
            }
        };
        match &mut self.assigner {
            // Only the windows ended by then can be emitted: looked up by their end, not
            // by visiting every open window after each batch.
            Assigner::Fixed(f) if until != i64::MAX => f.for_each_ended(until, visit),
            Assigner::Fixed(f) => f.for_each(visit),
            Assigner::Session(s) => s.for_each(visit),
        }
        // Stable, and linear on the rows of ended windows, which come in order already.
        rows.sort_by_key(|(end, start, _)| (*end, *start));
        for (_, _, row) in rows {
            out.emit(row);
        }
    }

    fn expire(&mut self) {
        let horizon = self.watermark.saturating_sub(self.lateness_us);
        match &mut self.assigner {
            Assigner::Fixed(f) => f.expire(horizon),
            Assigner::Session(s) => s.expire(horizon),
        }
    }
}

/// What a window's row is made of.
struct RowShape<'a> {
    keys: &'a [(Field, Field)],
    aggregations: &'a [Aggregation],
    fields: &'a OutputFields,
}

impl RowShape<'_> {
    fn row(&self, key: &[KeyPart], w: &WindowState) -> Record {
        let mut r = Record::with_capacity(self.keys.len() + 2 + self.aggregations.len());
        for ((output, _), part) in self.keys.iter().zip(key.iter()) {
            r.push(*output, part.value());
        }
        let stamp = |us: i64| {
            let mut s = String::with_capacity(26);
            ecomflow_time::write_timestamp(us, &mut s);
            Value::from(s)
        };
        r.push(self.fields.start, stamp(w.start));
        r.push(self.fields.end, stamp(w.end));
        for (a, acc) in self.aggregations.iter().zip(w.accumulators.iter()) {
            r.push(a.output, acc.value());
        }
        r.set_time(w.end - 1);
        r
    }
}

impl Transform for Window {
    fn process(&mut self, batch: Batch, out: &mut Emitter) {
        self.process_shared(&batch, out);
    }

    /// Windows only read records: a shared batch is never copied.
    fn process_shared(&mut self, batch: &[Record], out: &mut Emitter) {
        for record in batch {
            if let Err(rejected) = self.add(record) {
                rejected.route(record, self.late, out);
            }
        }
        // Records within the lateness change closed windows: their rows go out again now.
        let closed = self.watermark;
        self.emit(closed, out);
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Emitter) {
        self.watermark = watermark;
        self.emit(watermark, out);
        self.expire();
    }

    fn flush(&mut self, out: &mut Emitter) {
        self.emit(i64::MAX, out);
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.early_updates
    }

    /// The open windows and the watermark.
    fn snapshot(&self) -> Option<serde_json::Value> {
        let windows = match &self.assigner {
            Assigner::Fixed(f) => f.snapshot(),
            Assigner::Session(s) => s.snapshot(),
        };
        Some(serde_json::json!({ "watermark": self.watermark, "windows": windows }))
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
        self.watermark = state
            .get("watermark")
            .and_then(serde_json::Value::as_i64)
            .ok_or("no watermark in the window's state")?;
        let windows = state.get("windows").cloned().unwrap_or_default();
        match &mut self.assigner {
            Assigner::Fixed(f) => f.restore(windows),
            Assigner::Session(s) => s.restore(windows),
        }
    }

    fn tick(&mut self, out: &mut Emitter) {
        self.emit(i64::MAX, out);
    }
}

ecomflow_core::inventory::submit!(Plugin::transform::<WindowPlugin>(
    "window",
    "tumbling, hopping and session windows on event time, with keyed aggregates"
));

#[cfg(test)]
mod tests;
