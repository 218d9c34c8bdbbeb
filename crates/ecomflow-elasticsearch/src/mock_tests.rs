//! Retry tests against a tiny local HTTP server that answers as a busy Elasticsearch would.

use crate::test_support::*;
use ecomflow_core::Incoming;
use serde_json::json;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One request the server received.
#[derive(Clone, Debug)]
struct Request {
    method: String,
    path: String,
    body: String,
}

/// Answers request number `n` (from 0) with a status and a JSON body.
type Answer = Arc<dyn Fn(usize, &Request) -> (u16, serde_json::Value) + Send + Sync>;

/// A server on a free local port; keeps every request.
struct Mock {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Mock {
    async fn start(
        answer: impl Fn(usize, &Request) -> (u16, serde_json::Value) + Send + Sync + 'static,
    ) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let answer: Answer = Arc::new(answer);
        let kept = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, kept.clone(), answer.clone()));
            }
        });
        Mock { url, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("lock").clone()
    }

    /// The `_bulk` requests only.
    fn bulks(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.contains("/_bulk"))
            .collect()
    }
}

/// Serves HTTP/1.1 requests with a Content-Length body on one connection until it closes.
async fn serve(stream: TcpStream, requests: Arc<Mutex<Vec<Request>>>, answer: Answer) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut length = 0;
        loop {
            let mut header = String::new();
            if read.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().expect("content-length");
            }
        }
        let mut body = vec![0; length];
        read.read_exact(&mut body).await.expect("body");
        let request = Request {
            method,
            path,
            body: String::from_utf8(body).expect("utf8 body"),
        };
        let n = {
            let mut all = requests.lock().expect("lock");
            all.push(request.clone());
            all.len() - 1
        };
        let (status, json) = answer(n, &request);
        let body = if request.method == "HEAD" {
            String::new()
        } else {
            json.to_string()
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let sent = write.write_all(head.as_bytes()).await;
        if sent.is_err() || write.write_all(body.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn item(status: u16) -> serde_json::Value {
    if status < 300 {
        json!({ "index": { "status": status } })
    } else {
        json!({ "index": { "status": status, "error": {
            "type": "es_rejected_execution_exception",
            "reason": "rejected execution of coordinating operation"
        } } })
    }
}

fn bulk_answer(statuses: &[u16]) -> (u16, serde_json::Value) {
    let items: Vec<_> = statuses.iter().map(|s| item(*s)).collect();
    (
        200,
        json!({ "errors": statuses.iter().any(|s| *s >= 300), "items": items }),
    )
}

fn options(url: &str, extra: &str) -> String {
    format!(
        "url = \"{url}\"\nindex = \"tx\"\nid_field = \"transactionId\"\nretry_backoff = \"10ms\"\n{extra}"
    )
}

fn records(n: usize) -> Vec<ecomflow_core::Record> {
    (0..n)
        .map(|i| transaction(i, "2025-07-19T12:34:56.123456+0000"))
        .collect()
}

/// The two NDJSON lines of `records(..)[i]`.
fn lines_of(i: usize) -> String {
    let mut out = format!("{{\"index\":{{\"_id\":\"tx-{i:04}\"}}}}\n").into_bytes();
    ecomflow_json::encode_line(&records(i + 1)[i], &mut out);
    String::from_utf8(out).expect("utf8")
}

#[tokio::test]
async fn only_the_documents_rejected_with_429_are_sent_again() {
    let mock = Mock::start(|n, _| match n {
        0 => bulk_answer(&[201, 429, 201]),
        _ => bulk_answer(&[201]),
    })
    .await;
    let (cx, mut dead) = sink_context();
    let mut sink = build(&options(&mock.url, "")).expect("builds");
    sink.write(Incoming::from(records(3)), &cx)
        .await
        .expect("written");
    sink.finish(&cx).await.expect("finished");
    let bulks = mock.bulks();
    assert_eq!(bulks.len(), 2, "{bulks:?}");
    assert_eq!(bulks[0].method, "POST");
    assert!(bulks[0].path.starts_with("/tx/_bulk"), "{}", bulks[0].path);
    assert_eq!(bulks[0].body, lines_of(0) + &lines_of(1) + &lines_of(2));
    assert_eq!(bulks[1].body, lines_of(1));
    assert!(dead_letters(&mut dead).is_empty());
}

#[tokio::test]
async fn documents_still_rejected_after_retry_for_are_dead_lettered() {
    let mock = Mock::start(|n, _| match n {
        0 => bulk_answer(&[429, 201, 503]),
        _ => bulk_answer(&[429, 503]),
    })
    .await;
    let (cx, mut dead) = sink_context();
    let mut sink = build(&options(&mock.url, "retry_for = \"100ms\"")).expect("builds");
    let sent = records(3);
    let started = std::time::Instant::now();
    sink.write(Incoming::from(sent.clone()), &cx)
        .await
        .expect("written");
    sink.finish(&cx).await.expect("finished");
    assert!(started.elapsed() >= std::time::Duration::from_millis(100));
    let bulks = mock.bulks();
    assert!(bulks.len() >= 3, "the first try and retries: {bulks:?}");
    for retry in &bulks[1..] {
        assert_eq!(
            retry.body,
            lines_of(0) + &lines_of(2),
            "only the rejected ones"
        );
    }
    let letters = dead_letters(&mut dead);
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert_eq!(
        letters[0].payload,
        ecomflow_core::Payload::Record(sent[0].clone())
    );
    assert_eq!(
        letters[1].payload,
        ecomflow_core::Payload::Record(sent[2].clone())
    );
    assert_eq!(
        letters[0].reason,
        "es_rejected_execution_exception: rejected execution of coordinating operation \
         (still rejected after retrying for 100ms)"
    );
}

#[tokio::test]
async fn a_request_answered_503_is_sent_again_whole() {
    let mock = Mock::start(|n, _| match n {
        0 => (
            503,
            json!({ "error": { "type": "unavailable", "reason": "starting" } }),
        ),
        _ => bulk_answer(&[201, 201]),
    })
    .await;
    let (cx, mut dead) = sink_context();
    let mut sink = build(&options(&mock.url, "")).expect("builds");
    sink.write(Incoming::from(records(2)), &cx)
        .await
        .expect("written");
    sink.finish(&cx).await.expect("finished");
    let bulks = mock.bulks();
    assert_eq!(bulks.len(), 2);
    assert_eq!(bulks[0].body, bulks[1].body);
    assert!(dead_letters(&mut dead).is_empty());
}

#[tokio::test]
async fn a_request_that_keeps_failing_stops_the_run() {
    let mock = Mock::start(|_, _| {
        (
            503,
            json!({ "error": { "type": "cluster_block_exception", "reason": "blocked" } }),
        )
    })
    .await;
    let (cx, _dead) = sink_context();
    let mut sink =
        build(&options(&mock.url, "retry_for = \"50ms\"\nbatch_size = 2")).expect("builds");
    sink.write(Incoming::from(records(2)), &cx)
        .await
        .expect("the request runs beside the sink");
    let e = sink.checkpoint(&cx).await.expect_err("fails");
    let message = e.to_string();
    assert!(mock.bulks().len() >= 2, "retried");
    assert!(
        message.contains(&format!("cannot write to index `tx` at {}: ", mock.url)),
        "{message}"
    );
    assert!(
        message.ends_with("(still failing after retrying for 50ms)"),
        "{message}"
    );
    assert!(
        message.contains("cluster_block_exception: blocked"),
        "{message}"
    );
}

#[tokio::test]
async fn a_request_answered_400_fails_at_once() {
    let mock = Mock::start(|_, _| {
        (
            400,
            json!({ "error": { "type": "illegal_argument_exception", "reason": "bad" } }),
        )
    })
    .await;
    let (cx, _dead) = sink_context();
    let mut sink = build(&options(&mock.url, "")).expect("builds");
    sink.write(Incoming::from(records(1)), &cx)
        .await
        .expect("buffered");
    let e = sink.finish(&cx).await.expect_err("fails");
    assert_eq!(mock.bulks().len(), 1, "not retried");
    assert!(
        e.to_string().contains("illegal_argument_exception: bad"),
        "{e}"
    );
}

#[tokio::test]
async fn the_template_is_stored_before_the_first_write() {
    let mock = Mock::start(|_, r| match r.method.as_str() {
        "PUT" => (200, json!({ "acknowledged": true })),
        "HEAD" => (404, json!(null)),
        _ => bulk_answer(&[201]),
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("t.json"), r#"{"index_patterns":["tx"]}"#).expect("written");
    let (cx, _dead) = sink_context();
    let opts = options(&mock.url, "template = \"t.json\"");
    let mut sink = build_sink_in("elasticsearch", &opts, dir.path()).expect("builds");
    assert!(mock.requests().is_empty(), "build does no I/O");
    sink.write(Incoming::from(records(1)), &cx)
        .await
        .expect("buffered");
    sink.finish(&cx).await.expect("finished");
    let seen: Vec<_> = mock
        .requests()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.method,
                r.path.split('?').next().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        seen,
        ["PUT /_index_template/t", "HEAD /tx", "POST /tx/_bulk"]
    );
    assert_eq!(mock.requests()[0].body, r#"{"index_patterns":["tx"]}"#);
}

#[tokio::test]
async fn a_template_that_is_not_json_is_named_in_the_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("t.json"), "{ nope").expect("written");
    let (cx, _dead) = sink_context();
    let opts = options("http://127.0.0.1:1", "template = \"t.json\"");
    let mut sink = build_sink_in("elasticsearch", &opts, dir.path()).expect("builds");
    let e = sink.finish(&cx).await.expect_err("fails");
    assert!(e.to_string().contains("t.json is not JSON"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_run_side_by_side_but_never_two_with_the_same_document() {
    // Each `_bulk` answer takes 200 ms; the log says when each request began and ended.
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let kept = log.clone();
    let mock = Mock::start(move |_, request| {
        if !request.path.contains("/_bulk") {
            return (200, json!({}));
        }
        let ids: Vec<&str> = request
            .body
            .lines()
            .step_by(2)
            .filter_map(|l| l.split('"').nth(5))
            .collect();
        let name = ids.join(",");
        kept.lock().expect("log").push(format!("begin {name}"));
        std::thread::sleep(std::time::Duration::from_millis(200));
        kept.lock().expect("log").push(format!("end {name}"));
        bulk_answer(&vec![201; ids.len()])
    })
    .await;
    let (cx, dead) = sink_context();
    let mut sink = build(&options(
        &mock.url,
        "batch_size = 1\nconcurrency = 3\nflush_interval = \"1h\"",
    ))
    .expect("builds");
    let all = records(2);
    // tx-0000, tx-0001, then tx-0000 again: three places, yet the third waits for the first.
    for r in [&all[0], &all[1], &all[0]] {
        sink.write(Incoming::from(vec![r.clone()]), &cx)
            .await
            .expect("written");
    }
    sink.finish(&cx).await.expect("finished");
    let log = log.lock().expect("log").clone();
    let at = |event: &str| log.iter().position(|e| e == event).expect(event);
    let second_begin = log
        .iter()
        .rposition(|e| e == "begin tx-0000")
        .expect("again");
    assert!(
        at("begin tx-0001") < at("end tx-0000"),
        "two requests in flight at once: {log:?}"
    );
    assert!(
        second_begin > at("end tx-0000"),
        "the same document waits for its earlier request: {log:?}"
    );
    assert_eq!(log.len(), 6, "{log:?}");
    drop(dead);
}
