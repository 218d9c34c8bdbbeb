//! The dashboard in a real browser (Debian's Chromium driven by playwright-core, see
//! `common/browser.rs`): on the flagship's run, the page loads and refreshes without an error
//! in the console, says when the run finished, draws one node of the graph per component of
//! `/api/pipeline`, shows the sales-per-day chart with one bar per row of the `sales_per_day`
//! table (same day, same sum), every bar chart with exactly the points `/api/charts` serves,
//! and the payment alerts as table rows. The run has a token (`[http] token`), given to the
//! page as `#token=...`: the page asks for its data with it. A full-page screenshot is left in
//! `target/test-artifacts/dashboard.png`.

use common::browser::{self, Report};
use common::http::{get, served_url};
use common::processes::{signal, spawn};
use common::stack::flagship_run;
use serde_json::Value;
use sqlx::sqlite::SqlitePoolOptions;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::common;

/// The chart the flagship fills from `sales_per_day`.
const SALES_PER_DAY: &str = "sinks.sales_per_day_chart";
/// The table of the payment alerts.
const ALERTS: &str = "sinks.payment_alerts_list";
/// At most this many differences of one kind are named.
const NAMED: usize = 8;

/// A run of ecomflow, killed if the test ends before stopping it.
struct Running(Option<Child>);

impl Running {
    /// Ends the linger with SIGTERM; a problem if ecomflow then fails.
    fn stop(mut self) -> Option<String> {
        let mut child = self.0.take()?;
        signal(&child, "-TERM");
        let status = child.wait().expect("ecomflow exits");
        (!status.success())
            .then(|| format!("ecomflow, stopped during the linger, failed: {status}"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Where the screenshot goes: `target/test-artifacts/dashboard.png` of the workspace.
fn screenshot_path() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("target/test-artifacts");
    std::fs::canonicalize(&dir)
        .expect("target/test-artifacts")
        .join("dashboard.png")
}

/// The run's token.
const TOKEN: &str = "token-of-the-dashboard-test";

/// `GET url` with the run's token, as JSON.
async fn get_json(url: &str) -> Value {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let code = response.status().as_u16();
    let body = response.text().await.expect("a body");
    assert_eq!(code, 200, "GET {url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: {e}: {body}"))
}

/// Waits until `/api/status` says the run finished (its tables are then complete).
async fn wait_finished(url: &str, log: &Path) {
    let started = Instant::now();
    while get_json(&format!("{url}api/status")).await["state"] != "finished" {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the run does not finish:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A value as the page writes it in a `data-` attribute; numbers in one spelling, so that
/// JSON's `2025.0` and JavaScript's `2025` are the same.
fn normal(text: &str) -> String {
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() => n.to_string(),
        _ => text.to_string(),
    }
}

/// The text of a point's field (`""` for none).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => normal(s),
        Value::Null => String::new(),
        v => normal(&v.to_string()),
    }
}

/// At most [`NAMED`] items of `items`, and how many there are.
fn named<T: std::fmt::Debug>(items: &[T]) -> String {
    let shown: Vec<&T> = items.iter().take(NAMED).collect();
    format!("{} of them: {shown:?}", items.len())
}

/// What went wrong with the page itself: it never finished, or it logged errors.
fn check_page(report: &Report, problems: &mut Vec<String>) {
    let waited = report.wait_error.as_deref().unwrap_or("");
    if !report.loaded {
        problems.push(format!("the page did not load: {waited}"));
    } else if !report.finished {
        problems.push(format!(
            "the page never showed body[data-state=\"finished\"] (data-state {:?}, data-refreshes \
             {:?}): {waited}",
            report.state, report.refreshes
        ));
    } else if !report.refreshed_twice_after {
        problems.push(format!(
            "the page did not refresh twice after the run finished (data-refreshes {:?}): \
             {waited}",
            report.refreshes
        ));
    }
    let lists = [
        ("console errors", &report.console_errors),
        ("failed requests", &report.failed_requests),
        ("responses with an error status", &report.error_responses),
    ];
    for (what, list) in lists {
        if !list.is_empty() {
            let json: Vec<String> = list.iter().map(Value::to_string).collect();
            problems.push(format!("{what}: {}", named(&json)));
        }
    }
    if !report.page_errors.is_empty() {
        problems.push(format!("page errors: {}", named(&report.page_errors)));
    }
}

/// The graph has exactly one node per component of `/api/pipeline`.
fn check_graph(report: &Report, pipeline: &Value, problems: &mut Vec<String>) {
    let components: Vec<String> = pipeline["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| c["path"].as_str().expect("a path").to_string())
        .collect();
    let mut nodes: BTreeMap<String, usize> = BTreeMap::new();
    for node in &report.graph_nodes {
        let name = node.clone().unwrap_or_else(|| "(no data-component)".into());
        *nodes.entry(name).or_default() += 1;
    }
    let missing: Vec<&String> = components
        .iter()
        .filter(|c| !nodes.contains_key(*c))
        .collect();
    let extra: Vec<&String> = nodes.keys().filter(|n| !components.contains(n)).collect();
    let twice: Vec<(&String, &usize)> = nodes.iter().filter(|(_, n)| **n > 1).collect();
    if !missing.is_empty() {
        problems.push(format!(
            "components without a node in svg#graph ({} nodes there): {}",
            report.graph_nodes.len(),
            named(&missing)
        ));
    }
    if !extra.is_empty() {
        problems.push(format!(
            "nodes of svg#graph that are no component: {}",
            named(&extra)
        ));
    }
    if !twice.is_empty() {
        problems.push(format!("components with several nodes: {}", named(&twice)));
    }
}

/// The bars of the chart `component` by (x, series), their `data-y` read as numbers.
fn bars_of(
    report: &Report,
    component: &str,
    problems: &mut Vec<String>,
) -> Option<BTreeMap<(String, String), f64>> {
    let Some(chart) = report
        .charts
        .iter()
        .find(|c| c.component.as_deref() == Some(component))
    else {
        problems.push(format!("no section.chart[data-component=\"{component}\"]"));
        return None;
    };
    let mut bars = BTreeMap::new();
    for bar in &chart.bars {
        let key = (
            normal(bar.x.as_deref().unwrap_or("(no data-x)")),
            normal(bar.series.as_deref().unwrap_or("(no data-series)")),
        );
        let Some(y) = bar.y.as_deref().and_then(|y| y.parse::<f64>().ok()) else {
            problems.push(format!(
                "{component}: a bar whose data-y is no number: {bar:?}"
            ));
            continue;
        };
        if bars.insert(key.clone(), y).is_some() {
            problems.push(format!("{component}: two bars for (x, series) {key:?}"));
        }
    }
    Some(bars)
}

/// Compares `got` (what the page shows) with `want`, naming what differs; `close` says
/// when two values are the same.
fn compare<K: Ord + Clone + std::fmt::Debug>(
    what: &str,
    want: &BTreeMap<K, f64>,
    got: &BTreeMap<K, f64>,
    close: impl Fn(f64, f64) -> bool,
    problems: &mut Vec<String>,
) {
    let missing: Vec<(&K, &f64)> = want.iter().filter(|(k, _)| !got.contains_key(*k)).collect();
    let extra: Vec<(&K, &f64)> = got.iter().filter(|(k, _)| !want.contains_key(*k)).collect();
    let differ: Vec<(&K, f64, f64)> = want
        .iter()
        .filter_map(|(k, w)| got.get(k).filter(|g| !close(**g, *w)).map(|g| (k, *w, *g)))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "{what}: missing from the page: {}",
            named(&missing)
        ));
    }
    if !extra.is_empty() {
        problems.push(format!("{what}: on the page only: {}", named(&extra)));
    }
    if !differ.is_empty() {
        problems.push(format!(
            "{what}: other values on the page, (key, expected, shown): {}",
            named(&differ)
        ));
    }
}

/// Every bar chart of `/api/charts` shows exactly its points (the same numbers).
fn check_charts(report: &Report, charts: &Value, problems: &mut Vec<String>) {
    for chart in charts.as_array().expect("charts") {
        let component = chart["component"].as_str().expect("a component");
        if chart["chart"] == "table" {
            continue;
        }
        let Some(bars) = bars_of(report, component, problems) else {
            continue;
        };
        let field = |name: &str| chart[name].as_str().map(str::to_string);
        let (x, y, series) = (field("x"), field("y"), field("series"));
        let points: BTreeMap<(String, String), f64> = chart["points"]
            .as_array()
            .expect("points")
            .iter()
            .map(|p| {
                let at = |f: &Option<String>| f.as_ref().map_or(String::new(), |f| text(&p[f]));
                let value = y.as_ref().and_then(|y| p[y].as_f64()).unwrap_or(f64::NAN);
                ((at(&x), at(&series)), value)
            })
            .collect();
        compare(
            &format!("{component} against /api/charts"),
            &points,
            &bars,
            |a, b| a == b,
            problems,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_browser_shows_the_graph_and_the_tables_of_the_run() {
    browser::node_modules(); // fails first, with what to install, when the tools are missing
    let screenshot = screenshot_path();
    let _ = std::fs::remove_file(&screenshot);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("stderr.log");
    let args = flagship_run(&[
        "sources.transactions.count=20000",
        "http.port=0",
        "http.linger=\"120s\"",
    ]);
    let envs = [("ECOMFLOW_HTTP_TOKEN", TOKEN.to_string())];
    let run = Running(Some(spawn(&args, &envs, dir.path(), &log)));
    let url = served_url(&log).await;
    assert_eq!(
        get(&format!("{url}api/status")).await.0,
        401,
        "the data needs the token"
    );

    let report = browser::look_at(&format!("{url}#token={TOKEN}"), &screenshot, 60);
    wait_finished(&url, &log).await;
    let pipeline_json = get_json(&format!("{url}api/pipeline")).await;
    let charts = get_json(&format!("{url}api/charts")).await;

    let db = format!(
        "sqlite://{}?mode=ro",
        dir.path().join("ecomflow.db").display()
    );
    let pool = SqlitePoolOptions::new()
        .connect(&db)
        .await
        .unwrap_or_else(|e| panic!("{db}: {e}"));
    let days: Vec<(String, f64)> =
        sqlx::query_as("SELECT transaction_date, total_sales FROM sales_per_day")
            .fetch_all(&pool)
            .await
            .expect("sales_per_day");
    let (alerts,): (i64,) = sqlx::query_as("SELECT count(*) FROM payment_alerts")
        .fetch_one(&pool)
        .await
        .expect("payment_alerts");
    pool.close().await;

    let mut problems = Vec::new();
    check_page(&report, &mut problems);
    check_graph(&report, &pipeline_json, &mut problems);
    if days.is_empty() {
        problems.push("the sales_per_day table is empty: nothing to compare".into());
    }
    if let Some(bars) = bars_of(&report, SALES_PER_DAY, &mut problems) {
        let table: BTreeMap<(String, String), f64> = days
            .iter()
            .map(|(day, sum)| ((day.clone(), String::new()), *sum))
            .collect();
        compare(
            &format!("{SALES_PER_DAY} against the sales_per_day table ((day, series))"),
            &table,
            &bars,
            |a, b| (a - b).abs() <= 0.01,
            &mut problems,
        );
    }
    check_charts(&report, &charts, &mut problems);
    match report
        .charts
        .iter()
        .find(|c| c.component.as_deref() == Some(ALERTS))
    {
        None => problems.push(format!("no section.chart[data-component=\"{ALERTS}\"]")),
        Some(table) if table.rows == 0 => problems.push(format!(
            "{ALERTS} shows no tr.row, while the payment_alerts table holds {alerts} rows"
        )),
        Some(_) => {}
    }
    problems.extend(run.stop());
    let mut seen = std::collections::BTreeSet::new();
    problems.retain(|p| seen.insert(p.clone()));
    assert!(
        problems.is_empty(),
        "the dashboard at {url} is not what the run holds:\n- {}\n(screenshot: {})",
        problems.join("\n- "),
        screenshot.display()
    );
}
