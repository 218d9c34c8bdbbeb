//! ecomflow-observe: the HTTP server of a running pipeline (one per `ecomflow run`, see the
//! pipeline's `[http]` table): `/metrics` for Prometheus, `/health` and `/ready` for probes.

pub mod bind;
pub mod health;
pub mod metrics;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use ecomflow_runtime::{HttpConfig, RunTelemetry};
use std::sync::Arc;

/// A server that runs until the process ends.
pub struct Server {
    /// Where it answers: `http://127.0.0.1:8640/`.
    pub url: String,
}

/// Starts serving `telemetry` as `config` says, or says why it cannot.
pub async fn start(config: &HttpConfig, telemetry: Arc<RunTelemetry>) -> Result<Server, String> {
    let listener = bind::listen(&config.address, config.port).await?;
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

/// Every route.
pub fn routes(telemetry: Arc<RunTelemetry>) -> Router {
    let (t1, t2, t3) = (telemetry.clone(), telemetry.clone(), telemetry);
    Router::new()
        .route(
            "/metrics",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
                    metrics::render(&t1),
                )
            }),
        )
        .route(
            "/health",
            get(move || async move { health::health(&t2).into_response() }),
        )
        .route(
            "/ready",
            get(move || async move { health::ready(&t3).into_response() }),
        )
}
