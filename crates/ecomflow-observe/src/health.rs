//! `/health` and `/ready`: for docker compose, Kubernetes probes and load balancers.
//!
//! `/health` answers 200 as long as the runtime runs (and while it lingers after a run that
//! finished), 503 after a run that failed. `/ready` answers 200 once every component is
//! built, every sink has connected and every Kafka source has its partitions, and 503 with
//! the reasons while any is not (a sink retrying an outage among them).

use axum::Json;
use axum::http::StatusCode;
use ecomflow_runtime::{RunState, RunTelemetry};
use serde_json::{Value, json};
use std::sync::Arc;

/// `GET /health`.
pub fn health(telemetry: &RunTelemetry) -> (StatusCode, Json<Value>) {
    let state = telemetry.state();
    let code = match state {
        RunState::Failed => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    (code, Json(json!({ "status": state.name() })))
}

/// `GET /ready`.
pub fn ready(telemetry: &Arc<RunTelemetry>) -> (StatusCode, Json<Value>) {
    let waiting = telemetry.not_ready();
    let code = if waiting.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({ "ready": waiting.is_empty(), "waiting": waiting })),
    )
}
