//! The tap: samples of the records leaving a component's default output, live, at most
//! `rate` records a second (default 10; 0 sends none; at most `[http] max_tap_rate`, and at
//! most `[http] max_taps` taps at once), as server-sent events
//! (`/api/tap/<component>`, for a browser) or JSON lines (`?format=jsonl`, for
//! `ecomflow tap`). A tap never slows the pipeline: the component offers a few records of a
//! batch only while someone watches, a watcher that falls behind misses samples, and the
//! rate limit drops the rest here. The watch ends when the client goes away (its stream is
//! dropped) or the run ends.

use crate::access::Access;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use ecomflow_core::Kind;
use ecomflow_core::telemetry::TapWatch;
use ecomflow_runtime::{RunState, RunTelemetry};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

/// Records a second a tap sends unless asked otherwise.
pub const DEFAULT_RATE: f64 = 10.0;

/// How often a tap with nothing to send looks whether the run has ended.
const LOOK: Duration = Duration::from_millis(500);

/// The query of a tap request.
#[derive(Debug, Deserialize)]
pub struct TapQuery {
    /// Records a second at most (0: none).
    pub rate: Option<f64>,
    /// `sse` (default) or `jsonl`.
    pub format: Option<String>,
}

/// `GET /api/tap/<component>`.
pub fn tap(run: &Arc<RunTelemetry>, access: &Access, component: &str, query: TapQuery) -> Response {
    let refuse = |code, text: String| (code, text).into_response();
    let Some(c) = run.component(component) else {
        let known: Vec<&str> = run
            .components
            .iter()
            .filter(|c| c.kind != Kind::Sink)
            .map(|c| &*c.path)
            .collect();
        return refuse(
            StatusCode::NOT_FOUND,
            format!(
                "no component `{component}` to tap (the pipeline has {})\n",
                known.join(", ")
            ),
        );
    };
    if c.kind == Kind::Sink {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("`{component}` is a sink: it sends nothing on; tap what it reads\n"),
        );
    }
    let rate = query.rate.unwrap_or(DEFAULT_RATE);
    if !rate.is_finite() || rate < 0.0 {
        return refuse(
            StatusCode::BAD_REQUEST,
            "rate must be 0 or more records a second\n".into(),
        );
    }
    if rate > f64::from(access.max_tap_rate) {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "rate must be at most {} records a second (http.max_tap_rate)\n",
                access.max_tap_rate
            ),
        );
    }
    let jsonl = match query.format.as_deref() {
        None | Some("sse") => false,
        Some("jsonl") => true,
        Some(other) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("format must be `sse` or `jsonl`, not `{other}`\n"),
            );
        }
    };
    let Some(permit) = access.tap_permit() else {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{} taps are streaming already, the most this run allows (http.max_taps)\n",
                access.max_taps
            ),
        );
    };
    // At rate 0 nothing is watched: the component is not asked for samples at all.
    let watch = (rate > 0.0).then(|| c.tap.watch());
    let records = limited(watch, rate, run.clone(), permit);
    if jsonl {
        let lines = records.map(|r| Ok::<_, Infallible>(format!("{r}\n")));
        Response::builder()
            .header(header::CONTENT_TYPE, "application/x-ndjson")
            .body(Body::from_stream(lines))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    } else {
        let events = records.map(|r| Ok::<_, Infallible>(Event::default().data(r.to_string())));
        Sse::new(events)
            .keep_alive(KeepAlive::default())
            .into_response()
    }
}

/// What a tap holds while it streams.
struct Limited {
    watch: Option<TapWatch>,
    /// This tap's place among `max_taps`, given back when the stream is dropped.
    _permit: OwnedSemaphorePermit,
    run: Arc<RunTelemetry>,
    ready: VecDeque<Value>,
    rate: f64,
    tokens: f64,
    refilled: Instant,
}

/// The records a watch gets, at most `rate` a second (a token bucket holding one second's
/// worth), until the run ends; dropping the stream ends the watch.
fn limited(
    watch: Option<TapWatch>,
    rate: f64,
    run: Arc<RunTelemetry>,
    permit: OwnedSemaphorePermit,
) -> impl Stream<Item = Value> {
    let state = Limited {
        watch,
        _permit: permit,
        run,
        ready: VecDeque::new(),
        rate,
        tokens: rate.min(rate.max(1.0)),
        refilled: Instant::now(),
    };
    stream::unfold(state, |mut s| async move {
        loop {
            if let Some(record) = s.ready.pop_front() {
                return Some((record, s));
            }
            if matches!(s.run.state(), RunState::Finished | RunState::Failed) {
                return None;
            }
            let Some(watch) = s.watch.as_mut() else {
                tokio::time::sleep(LOOK).await;
                continue;
            };
            let batch = match tokio::time::timeout(LOOK, watch.samples.recv()).await {
                Err(_) | Ok(Err(RecvError::Lagged(_))) => continue,
                Ok(Err(RecvError::Closed)) => return None,
                Ok(Ok(batch)) => batch,
            };
            let now = Instant::now();
            let cap = s.rate.max(1.0);
            s.tokens = (s.tokens + s.rate * (now - s.refilled).as_secs_f64()).min(cap);
            s.refilled = now;
            for record in batch.iter() {
                if s.tokens < 1.0 {
                    break;
                }
                s.tokens -= 1.0;
                s.ready.push_back(record.clone());
            }
        }
    })
}
