//! ecomflow-observe: the HTTP server of a running pipeline (one per `ecomflow run`, see the
//! pipeline's `[http]` table): `/metrics` for Prometheus, `/health` and `/ready` for probes,
//! the tap, and the dashboard at `/` with the charts that `dashboard` sinks fill; with a
//! token (`[http] token`), only the open paths answer without it.

pub mod access;
pub mod api;
mod assets;
pub mod bind;
pub mod dashboard_sink;
pub mod health;
pub mod metrics;
pub mod tap;

use access::Access;
use axum::extract::{Path, Query};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get};
use axum::{Json, Router};
use ecomflow_runtime::http_config::OpenPath;
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
    if config.token.is_none() && !local.ip().is_loopback() {
        tracing::warn!(
            "the HTTP server on {local} answers beyond this machine without a token: anyone \
             who reaches it can read whole records through the tap and the dashboard's data; \
             set `[http] token` (the shipped pipelines read ECOMFLOW_HTTP_TOKEN)"
        );
    }
    let app = routes(telemetry, config);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("the HTTP server stopped: {e}");
        }
    });
    Ok(Server {
        url: format!("http://{local}/"),
    })
}

/// Every route, each answering from `run`, behind the token of `config` but for the
/// dashboard's page and the open paths.
pub fn routes(run: Arc<RunTelemetry>, config: &HttpConfig) -> Router {
    let access = Access::new(config);
    let with = |f: fn(&Arc<RunTelemetry>) -> axum::response::Response| {
        let run = run.clone();
        get(move || async move { f(&run) })
    };
    let probe = |path: OpenPath| -> MethodRouter {
        match path {
            OpenPath::Health => with(|run| health::health(run).into_response()),
            OpenPath::Ready => with(|run| health::ready(run).into_response()),
            OpenPath::Metrics => with(|run| {
                (
                    [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
                    metrics::render(run),
                )
                    .into_response()
            }),
        }
    };
    let mut open = Router::new()
        .route("/", get(assets::index))
        .route("/assets/dashboard.js", get(assets::script))
        .route("/assets/dashboard.css", get(assets::style));
    let mut guarded = Router::new();
    for path in [OpenPath::Health, OpenPath::Ready, OpenPath::Metrics] {
        if config.open_paths.contains(&path) {
            open = open.route(path.path(), probe(path));
        } else {
            guarded = guarded.route(path.path(), probe(path));
        }
    }
    let (tap_run, tap_access) = (run.clone(), access.clone());
    let guarded = guarded
        .route("/api/pipeline", with(|run| Json(api::pipeline(run)).into_response()))
        .route("/api/status", with(|run| Json(api::status(run)).into_response()))
        .route("/api/charts", with(|run| Json(api::charts(run)).into_response()))
        .route(
            "/api/tap/{component}",
            get(
                move |Path(component): Path<String>, Query(query): Query<tap::TapQuery>| async move {
                    tap::tap(&tap_run, &tap_access, &component, query)
                },
            ),
        )
        .route_layer(axum::middleware::from_fn(move |request, next| {
            access::require_token(access.clone(), request, next)
        }));
    open.merge(guarded)
}
