//! Talking to the HTTP server of an `ecomflow run` started by a test: where it serves (read
//! off its log), plain GETs, and a scrape parsed by Python's `prometheus_client`, the
//! reference parser of the Prometheus text format (`scripts/test.sh` installs it and names
//! the interpreter in `ECOMFLOW_TEST_PYTHON`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The URL the run logging to `log` serves at (`http://127.0.0.1:PORT/`), waiting up to 30 s
/// for it to say.
pub async fn served_url(log: &Path) -> String {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(rest) = text.split("serving the dashboard at ").nth(1) {
            return rest.split_whitespace().next().expect("a URL").to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the run does not say where it serves:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET url`: the status code and the body.
pub async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

/// One sample of a scrape.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Sample {
    /// The sample's name (`ecomflow_records_sent_total`, `..._bucket`).
    pub name: String,
    /// Its labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// Parses a scrape with Python's `prometheus_client` (which fails on anything that is not
/// the Prometheus text format): every sample.
pub fn parse_metrics(text: &str) -> Vec<Sample> {
    let python = std::env::var("ECOMFLOW_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = [dict(name=s.name, labels=s.labels, value=s.value)\n\
               for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]\n\
        print(json.dumps(out))\n";
    let mut child = Command::new(&python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{python}: {e} (scripts/test.sh installs the test tools)"));
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("scrape written");
    let out = child.wait_with_output().expect("python runs");
    assert!(
        out.status.success(),
        "prometheus_client cannot parse the scrape ({}): {}\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("samples as JSON")
}

/// The value of sample `name` whose `component` label is `component`.
pub fn value_of(samples: &[Sample], name: &str, component: &str) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name && s.labels.get("component").map(String::as_str) == Some(component)
        })
        .map(|s| s.value)
}
