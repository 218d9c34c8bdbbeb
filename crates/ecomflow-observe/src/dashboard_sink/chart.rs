//! The points of one `dashboard` sink's chart: kept by key (a record with the same key
//! replaces its point), the oldest dropped beyond `keep`, read as JSON by the dashboard.

use super::{ChartKind, DashboardConfig};
use ecomflow_core::telemetry::Exhibit;
use ecomflow_core::{Field, Record};
use indexmap::IndexMap;
use serde_json::{Value, json};
use std::sync::Mutex;

/// One chart and its points.
pub struct Chart {
    title: String,
    config: DashboardConfig,
    /// The fields that name a point (empty: every record is a new one).
    key: Vec<Field>,
    /// The fields shown of each record, by name (empty: a table of every field).
    shown: Vec<(String, Field)>,
    keep: usize,
    points: Mutex<Points>,
}

#[derive(Default)]
struct Points {
    by_key: IndexMap<String, Value>,
    /// Records taken, which names a point when there is no key.
    taken: u64,
}

impl Chart {
    /// An empty chart as `config` declares it.
    pub fn new(title: String, config: DashboardConfig) -> Chart {
        let key = match (&config.key, config.chart) {
            (Some(key), _) => key.clone(),
            (None, ChartKind::Table) => Vec::new(),
            (None, _) => config.x.iter().chain(&config.series).cloned().collect(),
        };
        let keep = config.keep.unwrap_or(match config.chart {
            ChartKind::Table => 20,
            _ => 1000,
        });
        let shown: Vec<&String> = match config.chart {
            ChartKind::Table => config.columns.iter().collect(),
            _ => [&config.x, &config.y, &config.series]
                .into_iter()
                .flatten()
                .collect(),
        };
        Chart {
            title,
            key: key.iter().map(|k| Field::new(k)).collect(),
            shown: shown
                .into_iter()
                .map(|n| (n.clone(), Field::new(n)))
                .collect(),
            keep,
            config,
            points: Mutex::new(Points::default()),
        }
    }

    /// Takes a batch: each record replaces the point with its key, or adds one.
    pub fn add(&self, records: &[Record]) {
        let Ok(mut points) = self.points.lock() else {
            return;
        };
        for record in records {
            points.taken += 1;
            let key = if self.key.is_empty() {
                points.taken.to_string()
            } else {
                let values: Vec<Value> = self
                    .key
                    .iter()
                    .map(|k| record.get(*k).map_or(Value::Null, |v| v.to_json()))
                    .collect();
                Value::Array(values).to_string()
            };
            // A point updated moves to the end: `keep` drops the ones updated longest ago,
            // and a table's newest rows are the last ones.
            points.by_key.shift_remove(&key);
            points.by_key.insert(key, self.row(record));
            if points.by_key.len() > self.keep {
                points.by_key.shift_remove_index(0);
            }
        }
    }

    /// What the dashboard shows of `record`: the chart's fields, or a table's columns (only
    /// those are read).
    fn row(&self, record: &Record) -> Value {
        if self.shown.is_empty() {
            return record.to_json();
        }
        let mut row = serde_json::Map::with_capacity(self.shown.len());
        for (name, field) in &self.shown {
            let value = record.get(*field).map_or(Value::Null, |v| v.to_json());
            row.insert(name.clone(), value);
        }
        Value::Object(row)
    }
}

impl Exhibit for Chart {
    fn snapshot(&self) -> Value {
        let points: Vec<Value> = match self.points.lock() {
            Ok(p) if self.config.chart == ChartKind::Table => {
                p.by_key.values().rev().cloned().collect()
            }
            Ok(p) => p.by_key.values().cloned().collect(),
            Err(_) => Vec::new(),
        };
        json!({
            "title": self.title,
            "chart": self.config.chart,
            "x": self.config.x,
            "y": self.config.y,
            "series": self.config.series,
            "columns": self.config.columns,
            "points": points,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> DashboardConfig {
        toml::from_str(toml).expect("options")
    }

    fn record(v: Value) -> Record {
        ecomflow_json::JsonDecoder::new()
            .decode(v.to_string().as_bytes())
            .expect("a record")
    }

    #[test]
    fn an_upsert_replaces_its_point_and_a_new_key_adds_one() {
        let chart = Chart::new(
            "sales".into(),
            config("chart = \"bar\"\nx = \"day\"\ny = \"total\"\nseries = \"category\""),
        );
        chart.add(&[
            record(json!({"day": "2025-01-31", "category": "books", "total": 10.0, "n": 1})),
            record(json!({"day": "2025-01-31", "category": "toys", "total": 5.0})),
        ]);
        chart.add(&[record(
            json!({"day": "2025-01-31", "category": "books", "total": 12.5}),
        )]);
        let shown = chart.snapshot();
        assert_eq!(
            shown["points"],
            json!([
                {"day": "2025-01-31", "total": 5.0, "category": "toys"},
                {"day": "2025-01-31", "total": 12.5, "category": "books"},
            ]),
            "one point per key, the one updated last at the end"
        );
        assert_eq!(shown["chart"], "bar");
    }

    #[test]
    fn keep_drops_the_point_updated_longest_ago() {
        let chart = Chart::new(
            "days".into(),
            config("chart = \"line\"\nx = \"day\"\ny = \"total\"\nkeep = 2"),
        );
        chart.add(&[
            record(json!({"day": "d1", "total": 1.0})),
            record(json!({"day": "d2", "total": 2.0})),
            record(json!({"day": "d1", "total": 3.0})),
            record(json!({"day": "d3", "total": 4.0})),
        ]);
        assert_eq!(
            chart.snapshot()["points"],
            json!([{"day": "d1", "total": 3.0}, {"day": "d3", "total": 4.0}]),
            "d2 went: d1 was updated after it"
        );
    }

    #[test]
    fn a_table_shows_the_newest_rows_first_and_keeps_only_so_many() {
        let chart = Chart::new(
            "alerts".into(),
            config("chart = \"table\"\ncolumns = [\"method\"]\nkeep = 2"),
        );
        for method in ["card", "cash", "bank"] {
            chart.add(&[record(json!({"method": method, "other": 1}))]);
        }
        assert_eq!(
            chart.snapshot()["points"],
            json!([{"method": "bank"}, {"method": "cash"}])
        );
    }
}
