//! The `dashboard` sink: keeps the records it gets as the points of one chart (or the rows
//! of one table) that the dashboard at `/` draws live. An upsert stream (an aggregate's
//! running totals) replaces a point with the same key rather than adding one.

mod chart;

pub use chart::Chart;

use ecomflow_core::async_trait::async_trait;
use ecomflow_core::{
    BuildContext, BuildError, ComponentError, Incoming, Plugin, Sink, SinkContext, SinkPlugin,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How the records are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChartKind {
    /// Bars at each `x`, one per `series` value side by side.
    Bar,
    /// A line through the points, one per `series` value.
    Line,
    /// A table of the newest records (`columns`), newest first.
    Table,
}

/// Options of the `dashboard` sink.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DashboardConfig {
    /// `bar`, `line` or `table`.
    pub chart: ChartKind,
    /// The chart's title (default: the sink's id).
    #[serde(default)]
    pub title: Option<String>,
    /// The field along the horizontal axis (bar and line charts): a day, a category.
    #[serde(default)]
    pub x: Option<String>,
    /// The numeric field drawn (bar and line charts): a total.
    #[serde(default)]
    pub y: Option<String>,
    /// A field whose values each get their own bars or line (optional): a category.
    #[serde(default)]
    pub series: Option<String>,
    /// The fields that name a point: a record with the same values replaces it (an upsert
    /// stream's new total). Default for charts: `x` and `series`; for tables: none, every
    /// record is a new row.
    #[serde(default)]
    pub key: Option<Vec<String>>,
    /// The fields a table shows, in order (default: every field of the records).
    #[serde(default)]
    pub columns: Vec<String>,
    /// Points (or rows) kept: beyond it the oldest go. Default 1000 for charts, 20 for
    /// tables.
    #[serde(default)]
    pub keep: Option<usize>,
}

/// Registers the `dashboard` sink.
pub struct DashboardPlugin;

impl SinkPlugin for DashboardPlugin {
    type Config = DashboardConfig;

    fn build(cfg: DashboardConfig, cx: &BuildContext) -> Result<Box<dyn Sink>, BuildError> {
        if cfg.chart != ChartKind::Table {
            for (name, value) in [("x", &cfg.x), ("y", &cfg.y)] {
                if value.as_deref().is_none_or(str::is_empty) {
                    return Err(BuildError::field(
                        name,
                        format!("a {:?} chart needs `{name}`, the field to draw", cfg.chart)
                            .to_lowercase(),
                    ));
                }
            }
        }
        if cfg.keep == Some(0) {
            return Err(BuildError::field("keep", "keep must be at least 1"));
        }
        let title = cfg.title.clone().unwrap_or_else(|| cx.component.clone());
        Ok(Box::new(DashboardSink {
            chart: Arc::new(Chart::new(title, cfg)),
        }))
    }
}

/// The sink as built: the chart it fills.
struct DashboardSink {
    chart: Arc<Chart>,
}

#[async_trait]
impl Sink for DashboardSink {
    /// Shows the chart on the dashboard, empty until records come.
    async fn open(&mut self, cx: &SinkContext) -> Result<(), ComponentError> {
        cx.telemetry.set_exhibit(self.chart.clone());
        Ok(())
    }

    async fn write(&mut self, batch: Incoming, _cx: &SinkContext) -> Result<(), ComponentError> {
        self.chart.add(batch.records());
        Ok(())
    }
}

ecomflow_core::inventory::submit!(Plugin::sink::<DashboardPlugin>(
    "dashboard",
    "draws the records as a live chart or table on the run's dashboard (http://127.0.0.1:8640/)"
));
