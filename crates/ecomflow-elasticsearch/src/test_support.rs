//! Test helpers: build the sink from TOML through the registry, run it on a real dead-letter
//! channel, and talk to the test Elasticsearch.

use ecomflow_core::{BuildError, Record, Sink};
use elasticsearch::Elasticsearch;
use elasticsearch::http::Method;
use elasticsearch::http::headers::HeaderMap;
use elasticsearch::http::request::JsonBody;
use elasticsearch::http::transport::Transport;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The shipped index template for `transactions*`.
pub const TEMPLATE: &str = include_str!("../../../elasticsearch/transactions-template.json");

/// The test Elasticsearch: `ECOMFLOW_TEST_ELASTICSEARCH`, or the one `scripts/services.sh`
/// starts.
pub fn es_url() -> String {
    std::env::var("ECOMFLOW_TEST_ELASTICSEARCH")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:19200".into())
}

/// An index name no other test (or earlier run) uses.
pub fn unique_index(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!(
        "ecomflow-test-{name}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub use ecomflow_core::testing::{build_error, build_sink_in, dead_letters, record, sink_context};

/// Builds the `elasticsearch` sink from TOML options.
pub fn build(options: &str) -> Result<Box<dyn Sink>, BuildError> {
    build_sink_in("elasticsearch", options, Path::new("."))
}

/// A transaction as the seed generator writes it, number `i`, on `date`.
pub fn transaction(i: usize, date: &str) -> Record {
    let price = 10.0 + i as f64;
    record(serde_json::json!({
        "transactionId": format!("tx-{i:04}"),
        "productId": format!("product_{}", i % 10 + 1),
        "productName": "laptop",
        "productCategory": "electronics",
        "productPrice": price,
        "productQuantity": i % 5 + 1,
        "productBrand": "apple",
        "currency": "USD",
        "customerId": format!("user{i}"),
        "transactionDate": date,
        "paymentMethod": "credit_card",
        "paymentStatus": "success",
        "totalAmount": price * (i % 5 + 1) as f64,
    }))
}

/// Sends a request to the test Elasticsearch and returns the status and JSON body (null when
/// empty). Panics when the server does not answer: the tests need it.
pub async fn es(
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let url = es_url();
    let client = Elasticsearch::new(Transport::single_node(&url).expect("test URL"));
    let response = client
        .send(
            method,
            path,
            HeaderMap::new(),
            None::<&()>,
            body.map(JsonBody::new),
            None,
        )
        .await
        .unwrap_or_else(|e| {
            panic!("the test Elasticsearch at {url} does not answer ({e}); start it with `scripts/services.sh start elasticsearch`")
        });
    let status = response.status_code().as_u16();
    let bytes = response.bytes().await.expect("response body");
    let json = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON response")
    };
    (status, json)
}

/// Makes the documents written to `index` searchable and returns how many there are.
pub async fn count(index: &str) -> u64 {
    let (status, body) = es(Method::Post, &format!("/{index}/_refresh"), None).await;
    if status == 404 {
        return 0;
    }
    assert_eq!(status, 200, "refresh {index}: {body}");
    let (status, body) = es(Method::Get, &format!("/{index}/_count"), None).await;
    assert_eq!(status, 200, "count {index}: {body}");
    body["count"].as_u64().expect("count")
}

/// The sorted `_id`s of the documents in `index` (at most 10,000).
pub async fn ids(index: &str) -> Vec<String> {
    count(index).await;
    let query = serde_json::json!({ "size": 10000, "_source": false, "sort": ["_doc"] });
    let (status, body) = es(Method::Post, &format!("/{index}/_search"), Some(query)).await;
    assert_eq!(status, 200, "search {index}: {body}");
    let mut ids: Vec<String> = body["hits"]["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| h["_id"].as_str().expect("_id").to_string())
        .collect();
    ids.sort();
    ids
}

/// Deletes `index` and the template named after it, whatever they hold.
pub async fn cleanup(index: &str) {
    es(Method::Delete, &format!("/{index}"), None).await;
    es(Method::Delete, &format!("/_index_template/{index}"), None).await;
}

/// Writes the shipped template into `dir` as `name`, with `index_patterns` narrowed to
/// `index` (so tests never clash with each other or with a real `transactions` template).
pub fn template_for(dir: &Path, name: &str, index: &str) {
    let mut template: serde_json::Value = serde_json::from_str(TEMPLATE).expect("template JSON");
    assert_eq!(
        template["index_patterns"],
        serde_json::json!(["transactions*"])
    );
    template["index_patterns"] = serde_json::json!([index]);
    std::fs::write(dir.join(name), template.to_string()).expect("template written");
}
