//! The tap: samples of the records leaving a component's default output, live, at most
//! `rate` records a second (default 10; 0 sends none), as server-sent events
//! (`/api/tap/<component>`, for a browser) or JSON lines (`?format=jsonl`, for
//! `ecomflow tap`). A tap never slows the pipeline: the component offers a few records of a
//! batch only while someone watches, a watcher that falls behind misses samples, and the
//! rate limit drops the rest here.

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use ecomflow_core::telemetry::TapWatch;
use ecomflow_runtime::RunTelemetry;
use serde::Deserialize;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

/// Records a second a tap sends unless asked otherwise.
pub const DEFAULT_RATE: f64 = 10.0;

/// The query of a tap request.
#[derive(Debug, Deserialize)]
pub struct TapQuery {
    /// Records a second at most (0: none).
    pub rate: Option<f64>,
    /// `sse` (default) or `jsonl`.
    pub format: Option<String>,
}

/// `GET /api/tap/<component>`.
pub fn tap(run: &Arc<RunTelemetry>, component: &str, query: TapQuery) -> Response {
    let Some(c) = run.component(component) else {
        let known: Vec<&str> = run.components.iter().map(|c| &*c.path).collect();
        return (
            StatusCode::NOT_FOUND,
            format!(
                "no component `{component}` (the pipeline has {})\n",
                known.join(", ")
            ),
        )
            .into_response();
    };
    let rate = query.rate.unwrap_or(DEFAULT_RATE);
    if !rate.is_finite() || rate < 0.0 {
        return (
            StatusCode::BAD_REQUEST,
            "rate must be 0 or more records a second\n",
        )
            .into_response();
    }
    let records = limited(c.tap.watch(), rate);
    match query.format.as_deref() {
        Some("jsonl") => {
            let lines = futures_lines(records);
            Response::builder()
                .header(header::CONTENT_TYPE, "application/x-ndjson")
                .body(Body::from_stream(lines))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        None | Some("sse") => {
            let events = tokio_stream::StreamExt::map(records, |r| {
                Ok::<_, Infallible>(Event::default().data(r.to_string()))
            });
            Sse::new(events)
                .keep_alive(KeepAlive::default())
                .into_response()
        }
        Some(other) => (
            StatusCode::BAD_REQUEST,
            format!("format must be `sse` or `jsonl`, not `{other}`\n"),
        )
            .into_response(),
    }
}

/// The records a watch gets, at most `rate` a second (a token bucket holding one second's
/// worth).
fn limited(mut watch: TapWatch, rate: f64) -> impl tokio_stream::Stream<Item = serde_json::Value> {
    async_stream_records(move |tx| async move {
        let cap = rate.max(1.0);
        let mut tokens = rate.min(cap);
        let mut refilled = Instant::now();
        loop {
            let batch = match watch.samples.recv().await {
                Ok(batch) => batch,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            let now = Instant::now();
            tokens = (tokens + rate * (now - refilled).as_secs_f64()).min(cap);
            refilled = now;
            for record in batch.iter() {
                if tokens < 1.0 {
                    break;
                }
                tokens -= 1.0;
                if tx.send(record.clone()).await.is_err() {
                    return;
                }
            }
        }
    })
}

/// A stream of what `produce` sends into its channel (it stops when the reader goes away).
fn async_stream_records<F, Fut>(produce: F) -> impl tokio_stream::Stream<Item = serde_json::Value>
where
    F: FnOnce(tokio::sync::mpsc::Sender<serde_json::Value>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(produce(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Each record as a JSON line.
fn futures_lines(
    records: impl tokio_stream::Stream<Item = serde_json::Value> + Send + 'static,
) -> impl tokio_stream::Stream<Item = Result<String, Infallible>> + Send + 'static {
    tokio_stream::StreamExt::map(records, |r| Ok(format!("{r}\n")))
}
