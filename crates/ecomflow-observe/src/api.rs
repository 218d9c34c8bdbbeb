//! The dashboard's JSON: `/api/pipeline` (the graph and the charts declared), `/api/status`
//! (every component's counters, watermark and readiness, the channels, the checkpoints) and
//! `/api/charts` (every `dashboard` sink's points).

use ecomflow_core::Kind;
use ecomflow_runtime::RunTelemetry;
use ecomflow_runtime::telemetry::now_millis;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::UNIX_EPOCH;

/// `GET /api/pipeline`: what does not change during the run.
pub fn pipeline(run: &RunTelemetry) -> Value {
    json!({
        "components": run.components.iter().map(|c| json!({
            "path": &*c.path,
            "kind": c.kind.noun(),
            "type": c.plugin,
        })).collect::<Vec<_>>(),
        "edges": run.edges.iter().map(|e| json!({
            "from": &*e.from,
            "port": e.port,
            "to": &*e.to,
        })).collect::<Vec<_>>(),
        "started_ms": run.started.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
    })
}

/// `GET /api/status`: the figures now.
pub fn status(run: &RunTelemetry) -> Value {
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let last = run.checkpoints.last();
    json!({
        "state": run.state().name(),
        "now_ms": now_millis(),
        "not_ready": run.not_ready(),
        "components": run.components.iter().map(|c| json!({
            "path": &*c.path,
            "received": load(&c.counters.received),
            "sent": load(&c.counters.sent),
            "dead_lettered": load(&c.counters.dead_lettered),
            "dropped": load(&c.counters.dropped),
            "bytes_read": (c.kind == Kind::Source).then(|| load(&c.bytes_read)),
            "retries": load(&c.retries),
            "watermark_ms": c.low_watermark().map(|w| w / 1000),
            "not_ready": c.not_ready(),
            "partitions": c.partitions().into_iter().map(|(key, p)| json!({
                "partition": key,
                "watermark_ms": p.watermark.map(|w| w / 1000),
                "lag": p.lag,
                "owned": p.owned,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "channels": run.channels().into_iter().map(|ch| json!({
            "component": &*ch.component,
            "batches": ch.batches,
            "capacity": ch.capacity,
            "bytes": ch.bytes,
            "byte_capacity": ch.byte_capacity,
        })).collect::<Vec<_>>(),
        "checkpoints": {
            "failures": run.checkpoints.failures(),
            "last_id": last.map(|l| l.id),
            "history": run.checkpoints.history().into_iter().map(|h| json!({
                "id": h.id,
                "completed_ms": h.completed_at,
                "duration_ms": h.duration.as_secs_f64() * 1000.0,
                "size": h.size,
            })).collect::<Vec<_>>(),
        },
    })
}

/// `GET /api/charts`: every chart a `dashboard` sink fills, with its points.
pub fn charts(run: &RunTelemetry) -> Value {
    Value::Array(
        run.components
            .iter()
            .filter_map(|c| {
                let mut shown = c.exhibit()?.snapshot();
                shown["component"] = json!(&*c.path);
                Some(shown)
            })
            .collect(),
    )
}
