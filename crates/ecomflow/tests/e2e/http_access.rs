//! Who may read a run's HTTP server. The flagship bound beyond loopback with a token
//! (ECOMFLOW_HTTP_TOKEN, as the shipped pipelines read it): the probes and the metrics answer
//! anyone, the dashboard's data and the tap only the token (`ecomflow tap` sends it from the
//! same variable); taps are limited in number and rate. Without a token it warns; with
//! `open_paths = []` the probes need the token too; a short token is refused without being
//! shown.

use common::http::served_url;
use common::processes::{KillOnDrop, signal, spawn};
use common::stack::{ecomflow, flagship_run};
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use crate::common;

const TOKEN: &str = "s3cret-token-of-the-run-0123456789";

/// The flagship, endless at a steady rate, on every address and a free port, with `sets`.
fn start(dir: &Path, name: &str, sets: &[&str], token: Option<&str>) -> Child {
    let mut all = vec![
        "sources.transactions.count=0",
        "sources.transactions.rate=500",
        "http.address=\"0.0.0.0\"",
        "http.port=0",
    ];
    all.extend_from_slice(sets);
    let envs: Vec<(&str, String)> = token
        .map(|t| ("ECOMFLOW_HTTP_TOKEN", t.to_string()))
        .into_iter()
        .chain([
            (
                "DATABASE_URL",
                format!("sqlite://{}", dir.join(format!("{name}.db")).display()),
            ),
            (
                "ECOMFLOW_DEAD_LETTER",
                dir.join(format!("{name}.dead.jsonl")).display().to_string(),
            ),
        ])
        .collect();
    spawn(
        &flagship_run(&all),
        &envs,
        dir,
        &dir.join(format!("{name}.log")),
    )
}

/// `GET url` with `token` as a bearer token when given: the status.
async fn status(client: &reqwest::Client, url: &str, token: Option<&str>) -> u16 {
    let mut request = client.get(url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    response.status().as_u16()
}

/// A tap streaming from `url` (opened, its headers read): its response.
async fn open_tap(client: &reqwest::Client, url: &str, query: &str) -> reqwest::Response {
    client
        .get(format!("{url}api/tap/transforms.paid?format=jsonl{query}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("a tap")
}

fn stop(mut run: Child) {
    signal(&run, "-TERM");
    let status = run.wait().expect("the run exits");
    assert!(status.success(), "the run drains and ends: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_only_the_probes_and_metrics_answer_without_it_and_taps_are_limited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start(dir.path(), "token", &[], Some(TOKEN));
    let _kill = KillOnDrop(vec![run.id()]);
    let url = served_url(&dir.path().join("token.log")).await;
    let client = reqwest::Client::new();

    for open in ["health", "ready", "metrics", "", "assets/dashboard.js"] {
        let got = status(&client, &format!("{url}{open}"), None).await;
        assert!(
            got == 200 || (open == "ready" && got == 503),
            "/{open}: {got}"
        );
    }
    for guarded in [
        "api/pipeline",
        "api/status",
        "api/charts",
        "api/tap/transforms.paid",
    ] {
        let at = format!("{url}{guarded}");
        assert_eq!(status(&client, &at, None).await, 401, "/{guarded} without");
        assert_eq!(
            status(&client, &at, Some("s3cret-token-of-the-run-012345678X")).await,
            401,
            "/{guarded} with a wrong token"
        );
    }
    for guarded in ["api/pipeline", "api/status", "api/charts"] {
        let at = format!("{url}{guarded}");
        assert_eq!(status(&client, &at, Some(TOKEN)).await, 200, "/{guarded}");
    }

    // `ecomflow tap` sends the token from the variable, and says what is missing without it.
    let tap = |token: Option<&str>| {
        let mut cmd = ecomflow(
            &["tap", &url, "transforms.paid", "--limit", "3"],
            &[],
            dir.path(),
        );
        cmd.env_remove("ECOMFLOW_HTTP_TOKEN");
        if let Some(t) = token {
            cmd.env("ECOMFLOW_HTTP_TOKEN", t);
        }
        cmd.output().expect("tap runs")
    };
    let with = tap(Some(TOKEN));
    assert!(with.status.success(), "{with:?}");
    assert_eq!(String::from_utf8_lossy(&with.stdout).lines().count(), 3);
    let without = tap(None);
    let err = String::from_utf8_lossy(&without.stderr);
    assert!(
        !without.status.success() && err.contains("ECOMFLOW_HTTP_TOKEN"),
        "{err}"
    );

    // A rate beyond the limit is refused; four taps stream at once, a fifth is refused
    // until one of them ends.
    let fast = open_tap(&client, &url, "&rate=100000000").await;
    assert_eq!(fast.status().as_u16(), 400);
    let body = fast.text().await.expect("a body");
    assert!(
        body.contains("at most 1000") && body.contains("max_tap_rate"),
        "{body}"
    );
    let mut taps = Vec::new();
    for _ in 0..4 {
        let t = open_tap(&client, &url, "").await;
        assert_eq!(t.status().as_u16(), 200);
        taps.push(t);
    }
    let fifth = open_tap(&client, &url, "").await;
    assert_eq!(fifth.status().as_u16(), 429);
    let body = fifth.text().await.expect("a body");
    assert!(body.contains("max_taps"), "{body}");
    drop(taps.pop());
    // The server notices the closed stream when it next writes to it (a record or a
    // keep-alive): give it a few seconds.
    let mut reopened = 0;
    for _ in 0..100 {
        reopened = open_tap(&client, &url, "").await.status().as_u16();
        if reopened == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(reopened, 200, "a tap that ended gives its place back");
    drop(taps);

    let log = std::fs::read_to_string(dir.path().join("token.log")).expect("log");
    assert!(
        !log.contains("without a token"),
        "no warning with a token:\n{log}"
    );
    assert!(!log.contains(TOKEN), "the token is never printed:\n{log}");
    stop(run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_without_a_token_warns_and_open_paths_can_be_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = reqwest::Client::new();

    let open = start(dir.path(), "open", &[], None);
    let _kill = KillOnDrop(vec![open.id()]);
    let url = served_url(&dir.path().join("open.log")).await;
    assert_eq!(
        status(&client, &format!("{url}api/status"), None).await,
        200
    );
    let log = std::fs::read_to_string(dir.path().join("open.log")).expect("log");
    assert!(
        log.contains("WARN") && log.contains("without a token") && log.contains("[http] token"),
        "a warning names the risk and the remedy:\n{log}"
    );
    stop(open);

    let closed = start(dir.path(), "closed", &["http.open_paths=[]"], Some(TOKEN));
    let _kill = KillOnDrop(vec![closed.id()]);
    let url = served_url(&dir.path().join("closed.log")).await;
    for path in ["health", "ready", "metrics"] {
        let at = format!("{url}{path}");
        assert_eq!(status(&client, &at, None).await, 401, "/{path}");
    }
    assert_eq!(
        status(&client, &format!("{url}health"), Some(TOKEN)).await,
        200
    );
    stop(closed);
}

#[test]
fn a_short_token_is_refused_without_showing_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = ecomflow(
        &[
            "validate".to_string(),
            common::stack::pipeline("ecommerce.toml"),
        ],
        &[("ECOMFLOW_HTTP_TOKEN", "hunter2".to_string())],
        dir.path(),
    )
    .output()
    .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("at least 16 characters"), "{err}");
    assert!(!err.contains("hunter2"), "the token is not shown:\n{err}");
}
