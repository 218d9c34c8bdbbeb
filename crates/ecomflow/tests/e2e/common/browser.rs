//! Looking at a page in a real browser: `tests/browser/dashboard.mjs` drives Debian's
//! Chromium with playwright-core (both installed by `scripts/test-tools.sh`, found through
//! `ECOMFLOW_TEST_NODE_MODULES`, which `scripts/test.sh` sets) and reports what the dashboard
//! shows.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the browser saw, as `dashboard.mjs` prints it.
#[derive(Debug, Deserialize)]
pub struct Report {
    /// The page answered.
    pub loaded: bool,
    /// `body[data-state="finished"]` was seen.
    pub finished: bool,
    /// Two refreshes completed after that.
    pub refreshed_twice_after: bool,
    /// Why a wait above ended early (a time-out, a refused connection).
    pub wait_error: Option<String>,
    /// `body.dataset.state` at the end.
    pub state: Option<String>,
    /// `body.dataset.refreshes` at the end.
    pub refreshes: Option<String>,
    /// Errors written to the console.
    pub console_errors: Vec<serde_json::Value>,
    /// Uncaught exceptions in the page.
    pub page_errors: Vec<String>,
    /// Requests that failed (refused, aborted).
    pub failed_requests: Vec<serde_json::Value>,
    /// Responses with a status of 400 or more.
    pub error_responses: Vec<serde_json::Value>,
    /// `data-component` of every `svg#graph g.node`, in the page's order.
    pub graph_nodes: Vec<Option<String>>,
    /// Every `section.chart`.
    pub charts: Vec<Chart>,
}

/// One `section.chart`.
#[derive(Debug, Deserialize)]
pub struct Chart {
    /// Its `data-component`.
    pub component: Option<String>,
    /// Its `rect.bar`s.
    pub bars: Vec<Bar>,
    /// How many `tr.row` it has.
    pub rows: usize,
}

/// One `rect.bar`: its `data-x`, `data-y` and `data-series`.
#[derive(Debug, Deserialize)]
pub struct Bar {
    /// `data-x`.
    pub x: Option<String>,
    /// `data-y`: the number as JSON printed it.
    pub y: Option<String>,
    /// `data-series` (empty for a chart without series).
    pub series: Option<String>,
}

/// The directory holding playwright-core; a test that needs it fails, with what to run,
/// when it is not installed.
pub fn node_modules() -> PathBuf {
    let Some(dir) = std::env::var_os("ECOMFLOW_TEST_NODE_MODULES") else {
        panic!(
            "ECOMFLOW_TEST_NODE_MODULES is not set: run scripts/test-tools.sh (it installs \
             Chromium and playwright-core), then set ECOMFLOW_TEST_NODE_MODULES=\"$PWD/target/\
             test-tools/node/node_modules\" (scripts/test.sh does both)"
        );
    };
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("playwright-core/package.json").is_file(),
        "no playwright-core in {} (ECOMFLOW_TEST_NODE_MODULES): run scripts/test-tools.sh",
        dir.display()
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "no /usr/bin/chromium: run scripts/test-tools.sh (it installs Debian's chromium)"
    );
    dir
}

/// Opens `url` in Chromium, waits for the finished run and two more refreshes (at most
/// `timeout_s` in all), saves a full-page screenshot to `screenshot`; what it saw.
pub fn look_at(url: &str, screenshot: &Path, timeout_s: u64) -> Report {
    let modules = node_modules();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.mjs");
    let out = Command::new("node")
        .arg(&script)
        .arg(url)
        .arg(screenshot)
        .arg(timeout_s.to_string())
        .env("ECOMFLOW_TEST_NODE_MODULES", &modules)
        .output()
        .unwrap_or_else(|e| panic!("node: {e} (Node.js 20 or newer is needed)"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}\n{stdout}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("the browser's report is not what was expected ({e}):\n{stdout}")
    })
}
