//! `ecomflow tap URL COMPONENT`: prints samples of the records leaving a component of a
//! running pipeline, as JSON lines, at most `--rate` a second, from the run's HTTP server;
//! with the token in `ECOMFLOW_HTTP_TOKEN` when the run has one (`[http] token`).

use std::io::Write;
use std::process::ExitCode;

/// Prints what `component` of the run serving at `url` sends on, until the run ends, the
/// tap is interrupted, or `limit` records were printed.
pub fn tap(url: &str, component: &str, rate: f64, limit: Option<u64>) -> ExitCode {
    if !rate.is_finite() || rate < 0.0 {
        tell!("error: --rate must be 0 or more records a second");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tell!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let address = format!(
        "{}/api/tap/{component}?format=jsonl&rate={rate}",
        url.trim_end_matches('/')
    );
    match runtime.block_on(print_records(&address, limit)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tell!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The variable the token is read from, as the shipped pipelines do.
const TOKEN_VARIABLE: &str = "ECOMFLOW_HTTP_TOKEN";

async fn print_records(address: &str, limit: Option<u64>) -> Result<(), String> {
    let mut request = reqwest::Client::new().get(address);
    if let Some(token) = std::env::var(TOKEN_VARIABLE).ok().filter(|t| !t.is_empty()) {
        request = request.bearer_auth(token);
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| format!("cannot reach {address}: {e} (is the pipeline running?)"))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let hint = if status == reqwest::StatusCode::UNAUTHORIZED {
            format!(" (set {TOKEN_VARIABLE} to the run's token)")
        } else {
            String::new()
        };
        return Err(format!(
            "{address} answered {status}: {}{hint}",
            body.trim()
        ));
    }
    let mut printed = 0u64;
    let mut out = std::io::stdout().lock();
    loop {
        if limit.is_some_and(|l| printed >= l) {
            return Ok(());
        }
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            // The run ended (or its server did): everything sent was printed.
            Ok(None) | Err(_) => return Ok(()),
        };
        for line in chunk.split_inclusive(|b| *b == b'\n') {
            if limit.is_some_and(|l| printed >= l) {
                return Ok(());
            }
            out.write_all(line)
                .map_err(|e| format!("cannot write: {e}"))?;
            printed += u64::from(line.ends_with(b"\n"));
        }
        out.flush().map_err(|e| format!("cannot write: {e}"))?;
    }
}
