//! ecomflow-observe: the HTTP server of a running pipeline (one per `ecomflow run`, see the
//! pipeline's `[http]` table): `/metrics` for Prometheus, `/health` and `/ready` for probes,
//! the tap, and the dashboard at `/` with the charts that `dashboard` sinks fill.

pub mod api;
mod assets;
pub mod bind;
pub mod dashboard_sink;
pub mod health;
pub mod metrics;
pub mod tap;

use axum::extract::{Path, Query};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use ecomflow_runtime::{HttpConfig, RunTelemetry};
use std::sync::Arc;

/// A server that runs until the process ends.
pub struct Server {
    /// Where it answers: `http://127.0.0.1:8640/`.
    pub url: String,
}

/// Starts serving `telemetry` as `config` says, or says why it cannot.
pub async fn start(config: &HttpConfig, telemetry: Arc<RunTelemetry>) -> Result<Server, String> {
    let listener = bind::listen(config.address, config.port).await?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot tell the port listened on: {e}"))?;
    let app = routes(telemetry);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("the HTTP server stopped: {e}");
        }
    });
    Ok(Server {
        url: format!("http://{local}/"),
    })
}

/// Every route, each answering from `run`.
pub fn routes(run: Arc<RunTelemetry>) -> Router {
    let with = |f: fn(&Arc<RunTelemetry>) -> axum::response::Response| {
        let run = run.clone();
        get(move || async move { f(&run) })
    };
    let tap_run = run.clone();
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/dashboard.js", get(assets::script))
        .route("/assets/dashboard.css", get(assets::style))
        .route(
            "/metrics",
            with(|run| {
                (
                    [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
                    metrics::render(run),
                )
                    .into_response()
            }),
        )
        .route("/health", with(|run| health::health(run).into_response()))
        .route("/ready", with(|run| health::ready(run).into_response()))
        .route("/api/pipeline", with(|run| Json(api::pipeline(run)).into_response()))
        .route("/api/status", with(|run| Json(api::status(run)).into_response()))
        .route("/api/charts", with(|run| Json(api::charts(run)).into_response()))
        .route(
            "/api/tap/{component}",
            get(
                move |Path(component): Path<String>, Query(query): Query<tap::TapQuery>| async move {
                    tap::tap(&tap_run, &component, query)
                },
            ),
        )
}
