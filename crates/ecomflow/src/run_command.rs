//! `ecomflow run`: the runtime, the HTTP server beside the pipeline, the signals that stop
//! it, and the end-of-run table.

use crate::live_view::LiveView;
use crate::results::Results;
use ecomflow_core::retry::shown;
use ecomflow_observe::Server;
use ecomflow_runtime::{HttpConfig, Pipeline, RunTelemetry};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs `pipeline` on `threads` worker threads, serving its figures over HTTP and showing
/// them on the terminal (unless `quiet`) while it runs, and prints the end-of-run table.
pub fn run(pipeline: Pipeline, threads: Option<usize>, quiet: bool) -> ExitCode {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            tell!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let http = pipeline.http.clone();
    let telemetry = RunTelemetry::new(&pipeline);
    let results = Results::of(&pipeline);
    let code = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let signals = tokio::spawn(stop_on_signal(shutdown.clone()));
        let server = serve(&http, &telemetry).await;
        let view = LiveView::start(telemetry.clone(), quiet);
        let started = std::time::Instant::now();
        let result = ecomflow_runtime::run_observed(pipeline, shutdown, telemetry).await;
        // The run is over: a signal from now on ends the linger, not a drain.
        signals.abort();
        if let Some(view) = view {
            view.finish().await;
        }
        let secs = started.elapsed().as_secs_f64();
        let code = match result {
            Ok(summary) => {
                tell_part!("{summary}");
                tell!("finished in {secs:.2}s");
                tell!("{}", results.report(&summary));
                ExitCode::SUCCESS
            }
            Err(failure) => {
                tell_part!("{}", failure.summary);
                tell!("error: the pipeline stopped after {secs:.2}s:\n{failure}");
                ExitCode::FAILURE
            }
        };
        if let Some(server) = server {
            linger(&server, http.linger.get()).await;
        }
        code
    });
    // A blocking read (stdin) cannot be cancelled; everything that was read is written by
    // now, so do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

/// Cancels `shutdown` on the first SIGINT or SIGTERM (the pipeline drains), and exits at once
/// on the second.
async fn stop_on_signal(shutdown: CancellationToken) {
    let mut signals = 0;
    loop {
        wait_for_signal().await;
        signals += 1;
        if signals == 1 {
            tracing::info!("stopping: draining what was read (signal again to exit at once)");
            shutdown.cancel();
        } else {
            tell!("second signal: exiting without draining");
            std::process::exit(130);
        }
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Starts the HTTP server when `[http]` wants one, printing where it answers. A server that
/// cannot start is a warning: the pipeline runs without it.
async fn serve(http: &HttpConfig, telemetry: &Arc<RunTelemetry>) -> Option<Server> {
    if !http.enabled {
        return None;
    }
    match ecomflow_observe::start(http, telemetry.clone()).await {
        Ok(server) => {
            tell!(
                "serving the dashboard at {url} (metrics: {url}metrics, health: {url}health, \
                 readiness: {url}ready)",
                url = server.url
            );
            Some(server)
        }
        Err(e) => {
            tracing::warn!("no HTTP server for this run: {e}");
            None
        }
    }
}

/// Goes on serving the final figures for `linger` after the run (until a signal).
async fn linger(server: &Server, linger: Duration) {
    if linger.is_zero() {
        tell!(
            "the dashboard at {} closed with the run (to look at the final figures, \
             --set http.linger=10m)",
            server.url
        );
        return;
    }
    tell!(
        "still serving the final figures at {} for {} (Ctrl-C to exit now)",
        server.url,
        shown(linger)
    );
    tokio::select! {
        _ = tokio::time::sleep(linger) => {}
        _ = wait_for_signal() => {}
    }
}
