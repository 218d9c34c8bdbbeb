//! The flagship's tables agree whatever comes in: between good transactions, successful sales
//! that a table or the index would refuse (a NUL character, ids of 10,000 characters, empty
//! or 600 bytes long, a quantity beyond an integer, field names Elasticsearch refuses, a date
//! its mapping does not read, 20 records with 10,000 new field names each). On the embedded
//! stack (SQLite, no services) and on the real one (Kafka, PostgreSQL, Elasticsearch, started
//! by `scripts/services.sh`), each
//! aggregate equals its recomputation from `transactions`, the index holds exactly the ids of
//! `transactions`, and each refused record is a dead letter, in no table and in no sum.

use common::stack::{elasticsearch, produce, run_flagship_on_lines, run_real_stack_to_the_end};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;

use crate::common;

/// Good sales, one an hour from the first of February 2025.
const GOOD: usize = 300;

/// A successful sale `id`, `n` hours into February 2025.
fn sale(id: &str, n: usize) -> Value {
    json!({
        "transactionId": id, "productId": "product_1", "productName": "laptop",
        "productCategory": "electronic", "productPrice": 10.5, "productQuantity": 2,
        "productBrand": "apple", "currency": "USD", "customerId": "c1",
        "transactionDate": format!("2025-02-{:02}T{:02}:00:00.000000+0000", 1 + n / 24, n % 24),
        "paymentMethod": "credit_card", "paymentStatus": if n.is_multiple_of(3) { "failed" } else { "success" },
        "totalAmount": 21.0
    })
}

/// Sales that some table or index may refuse: (id, the record). Each is a successful sale.
fn hostile() -> Vec<(String, Value)> {
    let with = |id: String, n: usize, change: &dyn Fn(&mut Value)| {
        let mut v = sale(&id, n);
        v["paymentStatus"] = json!("success");
        change(&mut v);
        (id, v)
    };
    let mut all = vec![
        with("nul-name".into(), 1, &|v| {
            v["productName"] = json!("lap\u{0}top")
        }),
        with("x".repeat(10_000), 2, &|_| {}),
        with(String::new(), 4, &|_| {}),
        with("€".repeat(200), 5, &|_| {}),
        with("é".repeat(200), 7, &|_| {}),
        with("huge-quantity".into(), 8, &|v| {
            v["productPrice"] = json!(0.01);
            v["productQuantity"] = json!(3_000_000_000i64);
            v["totalAmount"] = json!(30_000_000.0);
        }),
        with("metadata-field".into(), 10, &|v| v["_id"] = json!("other")),
        with("dotted-field".into(), 11, &|v| v["a..b"] = json!(1)),
        // The event time reads it; the index's date format does not.
        with("spaced-date".into(), 12, &|v| {
            v["transactionDate"] = json!("2025-02-01 12:00:00.000000+0000")
        }),
    ];
    for i in 0..20 {
        all.push(with(format!("wide-{i}"), 13 + i, &|v| {
            for f in 0..10_000 {
                v[format!("extra_{i}_{f}")] = json!(f);
            }
        }));
    }
    all
}

/// Every line of input: the good sales with the hostile ones among them.
fn lines() -> Vec<String> {
    let mut lines: Vec<String> = (0..GOOD)
        .map(|n| sale(&format!("good-{n}"), n).to_string())
        .collect();
    for (i, (_, v)) in hostile().into_iter().enumerate() {
        lines.insert(i * 10 + 5, v.to_string());
    }
    lines
}

/// The ids of the dead letters of `path`, with their reasons.
fn dead_letters(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a dead letter is JSON");
            let id = v["payload"]["transactionId"]
                .as_str()
                .unwrap_or("?")
                .to_string();
            (id, v["reason"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

/// Asserts what every stack must give: the ids stored are those of the input but the
/// refused ones, and every refused one is a dead letter whose reason names a sink.
fn assert_refused_only(stored: &BTreeSet<String>, letters: &[(String, String)], refused: &[&str]) {
    let all: BTreeSet<String> = (0..GOOD)
        .map(|n| format!("good-{n}"))
        .chain(hostile().into_iter().map(|(id, _)| id))
        .collect();
    let want: BTreeSet<String> = all
        .iter()
        .filter(|id| !refused.contains(&id.as_str()))
        .cloned()
        .collect();
    let missing: Vec<&String> = want.difference(stored).take(5).collect();
    let extra: Vec<String> = stored
        .difference(&want)
        .map(|id| id.chars().take(40).collect())
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "stored but refused: {extra:?}; refused but not stored: {missing:?}"
    );
    for id in refused {
        let reason = letters
            .iter()
            .find(|(l, _)| l == id)
            .map(|(_, r)| r.as_str())
            .unwrap_or_else(|| panic!("no dead letter for {:.40}", id));
        assert!(
            reason.contains("would refuse it"),
            "{:.40}: refused before the fan-out, with the sink's reason: {reason}",
            id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_every_aggregate_counts_exactly_the_stored_transactions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = run_flagship_on_lines(dir.path(), &lines());
    let pool = sqlx::SqlitePool::connect(&database)
        .await
        .expect("database");
    let ids: Vec<(String,)> = sqlx::query_as("SELECT transaction_id FROM transactions")
        .fetch_all(&pool)
        .await
        .expect("ids");
    let stored: BTreeSet<String> = ids.into_iter().map(|(id,)| id).collect();
    // SQLite holds every text whole (a declared length is not enforced) and any integer.
    assert_refused_only(
        &stored,
        &dead_letters(&dir.path().join("dead-letter.jsonl")),
        &[],
    );
    let differing: Vec<(String, f64, f64)> = sqlx::query_as(
        "SELECT d.transaction_date, d.total_sales, r.total FROM sales_per_day d
         JOIN (SELECT substr(transaction_date, 1, 10) AS day, SUM(total_amount_usd) AS total
               FROM transactions WHERE payment_status = 'success' GROUP BY 1) r
           ON r.day = d.transaction_date
         WHERE abs(d.total_sales - r.total) > 0.005",
    )
    .fetch_all(&pool)
    .await
    .expect("recompute");
    assert!(differing.is_empty(), "sales_per_day differs: {differing:?}");
    let (days, recomputed): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM sales_per_day),
                (SELECT count(DISTINCT substr(transaction_date, 1, 10)) FROM transactions
                 WHERE payment_status = 'success')",
    )
    .fetch_one(&pool)
    .await
    .expect("days");
    assert_eq!(days, recomputed);
}

/// Every document id of `index`.
async fn index_ids(index: &str) -> BTreeSet<String> {
    let http = reqwest::Client::new();
    let es = elasticsearch();
    http.post(format!("{es}/{index}/_refresh"))
        .send()
        .await
        .expect("refresh");
    let found: Value = http
        .get(format!("{es}/{index}/_search?size=10000&_source=false"))
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("JSON");
    found["hits"]["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| h["_id"].as_str().expect("an id").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_real_stack_the_tables_and_the_index_hold_the_same_transactions() {
    let id = std::process::id();
    let topic = format!("ecomflow_agree_{id}");
    let group = format!("ecomflow_agree_{id}");
    let index = format!("transactions_agree_{id}");
    let dir = tempfile::tempdir().expect("tempdir");
    let _keep = common::KeepOnFailure::new(dir.path(), "tables_agree");
    let database = common::fresh_postgres_database(&format!("ecomflow_agree_{id}")).await;
    produce(&topic, &lines()).await;

    let dead = dir.path().join("dead-letter.jsonl");
    run_real_stack_to_the_end(&topic, &group, &index, &database, &dead, dir.path());

    let pool = sqlx::PgPool::connect(&database).await.expect("database");
    let ids: Vec<(String,)> = sqlx::query_as("SELECT transaction_id FROM transactions")
        .fetch_all(&pool)
        .await
        .expect("ids");
    let stored: BTreeSet<String> = ids.into_iter().map(|(id,)| id).collect();
    let long = "x".repeat(10_000);
    let wide: Vec<String> = (0..20).map(|i| format!("wide-{i}")).collect();
    let euros = "€".repeat(200);
    let mut refused = vec![
        "nul-name",
        long.as_str(),
        "",
        euros.as_str(),
        "huge-quantity",
        "metadata-field",
        "dotted-field",
        "spaced-date",
    ];
    refused.extend(wide.iter().map(String::as_str));
    assert_refused_only(&stored, &dead_letters(&dead), &refused);
    assert_eq!(
        index_ids(&index).await,
        stored,
        "the index holds what the table holds"
    );
    for (view, recompute) in [
        (
            "SELECT transaction_date::text, total_sales FROM sales_per_day",
            "SELECT transaction_date::date::text, SUM(total_amount_usd) FROM transactions
             WHERE payment_status = 'success' GROUP BY 1",
        ),
        (
            "SELECT transaction_date::text || ' ' || category, total_sales FROM sales_per_category",
            "SELECT transaction_date::date::text || ' ' || product_category, SUM(total_amount_usd)
             FROM transactions WHERE payment_status = 'success' GROUP BY 1",
        ),
    ] {
        let rows = |sql: &'static str| {
            let pool = pool.clone();
            async move {
                let rows: Vec<(String, f64)> =
                    sqlx::query_as(sql).fetch_all(&pool).await.expect(sql);
                rows.into_iter()
                    .map(|(k, v)| format!("{k} {v:.2}"))
                    .collect::<BTreeSet<String>>()
            }
        };
        assert_eq!(rows(view).await, rows(recompute).await, "{view}");
    }
    let _ = reqwest::Client::new()
        .delete(format!("{}/{index}", elasticsearch()))
        .send()
        .await;
}
