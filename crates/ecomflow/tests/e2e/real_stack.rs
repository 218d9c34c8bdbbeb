//! The real stack end to end, against the real servers `scripts/services.sh` starts (Kafka,
//! PostgreSQL, Elasticsearch): `generate.toml` puts transactions (some broken) on a topic, the
//! flagship with the `real-stack.toml` overlay consumes it to the end, and then PostgreSQL's
//! aggregate tables equal their recomputation from `transactions`, the Elasticsearch index holds
//! exactly the good transactions under their ids with a date-typed `transactionDate`, the bad
//! messages are dead letters with their reasons, and the group's offsets are committed to the
//! end. Without the servers these tests fail.

use common::stack::{
    assert_committed_to_the_end, elasticsearch, es_count, es_json, kafka, pipeline, run,
};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::Duration;

use crate::common;

const GOOD: u64 = 3000;

async fn produce_malformed(topic: &str, n: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .create()
        .expect("producer");
    for i in 0..n {
        let payload = format!("{{\"transactionId\": \"broken-{i}\", \"productPrice\": ");
        producer
            .send(
                FutureRecord::to(topic).key("broken").payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_to_postgres_and_elasticsearch() {
    let id = std::process::id();
    let topic = format!("ecomflow_e2e_{id}");
    let index = format!("transactions_e2e_{id}");
    let group = format!("ecomflow_e2e_{id}");
    let dir = tempfile::tempdir().expect("tempdir");
    let database = common::fresh_postgres_database(&format!("ecomflow_e2e_{id}")).await;
    let http = reqwest::Client::new();
    // Leftovers of earlier runs: templates named after a test index would overlap the
    // shipped `transactions*` template.
    let _ = http
        .delete(format!(
            "{}/_index_template/transactions_e2e_*",
            elasticsearch()
        ))
        .send()
        .await;

    // 1. generate.toml puts GOOD transactions, plus broken ones, on the topic.
    let broker = kafka();
    run(
        &[
            "run",
            &pipeline("generate.toml"),
            "--set",
            &format!("sinks.kafka.topic={topic}"),
            "--set",
            &format!("sources.transactions.count={GOOD}"),
            "--set",
            "sources.transactions.bad_ratio=0.02",
        ],
        &[
            ("KAFKA_BOOTSTRAP_SERVERS", broker.clone()),
            (
                "ECOMFLOW_DEAD_LETTER",
                dir.path().join("generate-dead.jsonl").display().to_string(),
            ),
        ],
        dir.path(),
    );
    produce_malformed(&topic, 3).await;

    // 2. The flagship with the real-stack overlay consumes the topic to its end.
    let dead = dir.path().join("dead-letter.jsonl");
    run(
        &[
            "run",
            &pipeline("ecommerce.toml"),
            &pipeline("real-stack.toml"),
            "--set",
            &format!("sources.transactions.topics=[\"{topic}\"]"),
            "--set",
            &format!("sources.transactions.group_id={group}"),
            "--set",
            "sources.transactions.stop_at_end=true",
            "--set",
            &format!("sinks.transactions_index.index={index}"),
        ],
        &[
            ("KAFKA_BOOTSTRAP_SERVERS", broker.clone()),
            ("DATABASE_URL", database.clone()),
            ("ELASTICSEARCH_URL", elasticsearch()),
            ("ECOMFLOW_DEAD_LETTER", dead.display().to_string()),
        ],
        dir.path(),
    );

    // 3. PostgreSQL: every good transaction once; aggregates equal their recomputation.
    let pool = sqlx::PgPool::connect(&database).await.expect("database");
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM transactions")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(n as u64, GOOD);
    let mismatched: Vec<(String,)> = sqlx::query_as(
        "SELECT d.transaction_date::text FROM sales_per_day d
         FULL JOIN (SELECT transaction_date::date AS day, SUM(total_amount_usd) AS total
                    FROM transactions WHERE payment_status = 'success' GROUP BY 1) r
           ON r.day = d.transaction_date
         WHERE d.transaction_date IS NULL OR r.day IS NULL OR abs(d.total_sales - r.total) > 0.005",
    )
    .fetch_all(&pool)
    .await
    .expect("recompute");
    assert!(
        mismatched.is_empty(),
        "sales_per_day differs on {mismatched:?}"
    );
    let mismatched: Vec<(String,)> = sqlx::query_as(
        "SELECT c.category FROM sales_per_category c
         FULL JOIN (SELECT transaction_date::date AS day, product_category AS category,
                           SUM(total_amount_usd) AS total
                    FROM transactions WHERE payment_status = 'success' GROUP BY 1, 2) r
           ON r.day = c.transaction_date AND r.category = c.category
         WHERE c.category IS NULL OR r.category IS NULL OR abs(c.total_sales - r.total) > 0.005",
    )
    .fetch_all(&pool)
    .await
    .expect("recompute");
    assert!(
        mismatched.is_empty(),
        "sales_per_category differs on {mismatched:?}"
    );

    // 4. Elasticsearch: exactly the good transactions, under their ids, with a date field.
    assert_eq!(es_count(&index).await, Some(GOOD));
    let mapping = es_json(&format!("/{index}/_mapping")).await;
    assert_eq!(
        mapping[&index]["mappings"]["properties"]["transactionDate"]["type"], "date",
        "{mapping}"
    );
    let (some_id,): (String,) = sqlx::query_as("SELECT transaction_id FROM transactions LIMIT 1")
        .fetch_one(&pool)
        .await
        .expect("an id");
    let doc = es_json(&format!("/{index}/_doc/{some_id}")).await;
    assert_eq!(doc["found"], true, "{doc}");
    assert_eq!(doc["_source"]["transactionId"], some_id.as_str());

    // 5. Dead letters: the undecodable messages with topic, partition and offset, and the
    //    records with missing or mistyped fields; none of them reached a table.
    let letters: Vec<serde_json::Value> = std::fs::read_to_string(&dead)
        .expect("dead letters")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let undecodable: Vec<&serde_json::Value> = letters
        .iter()
        .filter(|l| l["component"] == "sources.transactions")
        .collect();
    assert_eq!(undecodable.len(), 3, "{undecodable:?}");
    for l in &undecodable {
        let reason = l["reason"].as_str().unwrap_or("");
        assert!(
            reason.starts_with(&format!("{topic}[")) && reason.contains("]@"),
            "{reason}"
        );
    }
    assert!(
        letters
            .iter()
            .any(|l| l["component"] == "transforms.checked"),
        "the broken records on the topic are caught by the check"
    );

    // 6. The consumer group's offsets are committed to the end of every partition.
    assert_committed_to_the_end(&group, &topic);
    let _ = http
        .delete(format!("{}/{index}", elasticsearch()))
        .send()
        .await;
}

/// A Kafka pipeline without a `[checkpoint]` table: its offsets are still committed only for
/// what the sinks acknowledged (checkpoints that keep nothing), and end at the end of the topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_pipeline_without_checkpoints_commits_what_its_sink_wrote() {
    let id = std::process::id();
    let topic = format!("ecomflow_acks_{id}");
    let group = format!("ecomflow_acks_{id}");
    let dir = tempfile::tempdir().expect("tempdir");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .create()
        .expect("producer");
    for i in 0..500 {
        let payload = format!("{{\"i\": {i}}}");
        producer
            .send(
                FutureRecord::to(&topic).key(&payload).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
    }
    let pipeline = dir.path().join("copy.toml");
    std::fs::write(
        &pipeline,
        format!(
            "[sources.in]\ntype = \"kafka\"\nbootstrap_servers = {:?}\ntopics = [{topic:?}]\n\
             group_id = {group:?}\nstop_at_end = true\ncommit_interval = \"100ms\"\n\n\
             [sinks.out]\ntype = \"file\"\ninputs = [\"in\"]\npath = \"out.jsonl\"\n",
            kafka()
        ),
    )
    .expect("pipeline");
    run(&["run", pipeline.to_str().expect("utf8")], &[], dir.path());
    let lines = std::fs::read_to_string(dir.path().join("out.jsonl")).expect("written");
    assert_eq!(lines.lines().count(), 500);
    assert_committed_to_the_end(&group, &topic);
}
