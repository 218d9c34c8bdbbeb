//! Tests against the real Elasticsearch (`ECOMFLOW_TEST_ELASTICSEARCH`); they fail without it.

use crate::test_support::*;
use ecomflow_core::Incoming;
use ecomflow_core::Payload;
use ecomflow_core::testing::Proxy;
use elasticsearch::http::Method;
use serde_json::json;
use std::time::{Duration, Instant};

fn options(index: &str, extra: &str) -> String {
    format!(
        "url = \"{}\"\nindex = \"{index}\"\nid_field = \"transactionId\"\n{extra}",
        es_url()
    )
}

#[tokio::test]
async fn writes_documents_with_their_ids_and_a_rewrite_changes_nothing() {
    let index = unique_index("ids");
    let records: Vec<_> = (0..25)
        .map(|i| transaction(i, "2025-07-19T12:34:56.123456+0000"))
        .collect();
    let (cx, mut dead) = sink_context();
    let mut sink = build(&options(&index, "flush_interval = \"1h\"")).expect("builds");
    sink.write(Incoming::from(&records[..]), &cx)
        .await
        .expect("written");
    assert_eq!(count(&index).await, 0, "nothing is sent before a flush");
    sink.finish(&cx).await.expect("finished");
    let expected: Vec<String> = (0..25).map(|i| format!("tx-{i:04}")).collect();
    assert_eq!(ids(&index).await, expected);

    // The body is the record, camelCase keys and all.
    let (status, doc) = es(Method::Get, &format!("/{index}/_doc/tx-0003"), None).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["_source"], records[3].to_json());

    // A replay replaces the documents instead of adding some.
    let mut sink = build(&options(&index, "batch_size = 7")).expect("builds");
    sink.write(Incoming::from(records.clone()), &cx)
        .await
        .expect("written again");
    sink.finish(&cx).await.expect("finished");
    assert_eq!(ids(&index).await, expected);
    assert!(dead_letters(&mut dead).is_empty());
    cleanup(&index).await;
}

#[tokio::test]
async fn without_id_field_elasticsearch_assigns_ids() {
    let index = unique_index("noid");
    let (cx, _dead) = sink_context();
    let opts = format!("url = \"{}\"\nindex = \"{index}\"", es_url());
    let mut sink = build(&opts).expect("builds");
    let same = transaction(1, "2025-07-19T12:34:56.123456+0000");
    sink.write(Incoming::from(vec![same.clone(), same]), &cx)
        .await
        .expect("written");
    sink.finish(&cx).await.expect("finished");
    let ids = ids(&index).await;
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|id| id != "tx-0001"), "{ids:?}");
    cleanup(&index).await;
}

#[tokio::test]
async fn the_template_makes_transaction_date_a_date_that_range_queries_find() {
    let index = unique_index("template");
    let dir = tempfile::tempdir().expect("temp dir");
    template_for(dir.path(), &format!("{index}.json"), &index);
    let (cx, mut dead) = sink_context();
    // `template` is relative to the pipeline file's directory.
    let opts = options(&index, &format!("template = \"{index}.json\""));
    let mut sink = build_sink_in("elasticsearch", &opts, dir.path()).expect("builds");
    let mut with_timestamp = transaction(4, "2025-07-20T08:00:00.000001+0000");
    with_timestamp.set(
        ecomflow_core::Field::new("transaction_timestamp"),
        ecomflow_core::Value::from("2025-07-20 08:00:00.000001"),
    );
    let records = vec![
        transaction(0, "2025-07-19T12:34:56.123456+0000"),
        transaction(1, "2025-07-19T23:59:59.999999+0000"),
        // 2025-07-18T23:30Z: the offset counts.
        transaction(2, "2025-07-19T01:30:00.000000+0200"),
        // The older seed variant: no offset, meaning UTC.
        transaction(3, "2025-07-19T00:00:00.000000"),
        with_timestamp,
    ];
    sink.write(Incoming::from(records), &cx)
        .await
        .expect("written");
    sink.finish(&cx).await.expect("finished");
    assert!(dead_letters(&mut dead).is_empty());
    assert_eq!(count(&index).await, 5);

    let (status, mapping) = es(Method::Get, &format!("/{index}/_mapping"), None).await;
    assert_eq!(status, 200, "{mapping}");
    let props = &mapping[&index]["mappings"]["properties"];
    assert_eq!(props["transactionDate"]["type"], "date", "{props}");
    assert_eq!(
        props["transactionDate"]["format"],
        "yyyy-MM-dd'T'HH:mm:ss.SSSSSSZ||strict_date_optional_time||epoch_millis"
    );
    assert_eq!(props["transaction_timestamp"]["type"], "date", "{props}");
    for keyword in [
        "transactionId",
        "productCategory",
        "productBrand",
        "paymentMethod",
        "paymentStatus",
        "currency",
    ] {
        assert_eq!(props[keyword]["type"], "keyword", "{keyword}: {props}");
    }
    assert_eq!(props["productQuantity"]["type"], "integer");
    assert_eq!(props["totalAmount"]["type"], "double");

    let in_range = |field: &str, gte: &str, lt: &str| json!({ "query": { "range": { field: { "gte": gte, "lt": lt } } }, "sort": ["transactionId"] });
    let found = |body: serde_json::Value| -> Vec<String> {
        body["hits"]["hits"]
            .as_array()
            .expect("hits")
            .iter()
            .map(|h| h["_id"].as_str().expect("_id").to_string())
            .collect()
    };
    let query = in_range(
        "transactionDate",
        "2025-07-19T00:00:00Z",
        "2025-07-20T00:00:00Z",
    );
    let (status, body) = es(Method::Post, &format!("/{index}/_search"), Some(query)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(found(body), ["tx-0000", "tx-0001", "tx-0003"]);
    let query = in_range(
        "transaction_timestamp",
        "2025-07-20T07:59:59Z",
        "2025-07-20T08:00:01Z",
    );
    let (status, body) = es(Method::Post, &format!("/{index}/_search"), Some(query)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(found(body), ["tx-0004"]);
    cleanup(&index).await;
}

#[tokio::test]
async fn a_document_the_mapping_rejects_is_dead_lettered_with_the_reason() {
    let index = unique_index("reject");
    let dir = tempfile::tempdir().expect("temp dir");
    template_for(dir.path(), &format!("{index}.json"), &index);
    let (cx, mut dead) = sink_context();
    let tmpl = dir.path().join(format!("{index}.json"));
    let opts = options(
        &index,
        &format!("template = {:?}", tmpl.to_str().expect("utf8")),
    );
    let mut sink = build(&opts).expect("builds");
    let mut bad = transaction(2, "2025-07-19T12:34:56.123456+0000");
    bad.set(
        ecomflow_core::Field::new("productQuantity"),
        ecomflow_core::Value::from("many"),
    );
    let mut no_id = transaction(5, "2025-07-19T12:34:56.123456+0000");
    no_id.remove(ecomflow_core::Field::new("transactionId"));
    let mut records: Vec<_> = (0..5)
        .map(|i| transaction(i, "2025-07-19T12:34:56.123456+0000"))
        .collect();
    records[2] = bad.clone();
    records.push(no_id.clone());
    sink.write(Incoming::from(records), &cx)
        .await
        .expect("written");
    sink.finish(&cx).await.expect("finished");

    assert_eq!(
        ids(&index).await,
        ["tx-0000", "tx-0001", "tx-0003", "tx-0004"]
    );
    let letters = dead_letters(&mut dead);
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert_eq!(letters[0].payload, Payload::Record(no_id));
    assert_eq!(
        letters[0].reason,
        "no `transactionId` field for the document id"
    );
    assert_eq!(letters[1].payload, Payload::Record(bad));
    let reason = &letters[1].reason;
    assert!(
        reason.starts_with("document_parsing_exception: ")
            || reason.starts_with("mapper_parsing_exception: "),
        "{reason}"
    );
    assert!(reason.contains("[productQuantity]"), "{reason}");
    assert!(reason.contains("many"), "{reason}");
    cleanup(&index).await;
}

#[tokio::test]
async fn compressed_bodies_are_indexed() {
    let index = unique_index("gzip");
    let (cx, mut dead) = sink_context();
    let mut sink = build(&options(&index, "compression = true\nbatch_size = 4")).expect("builds");
    let records: Vec<_> = (0..10)
        .map(|i| transaction(i, "2025-07-19T12:34:56.123456+0000"))
        .collect();
    sink.write(Incoming::from(records), &cx)
        .await
        .expect("written");
    sink.finish(&cx).await.expect("finished");
    assert!(dead_letters(&mut dead).is_empty());
    let expected: Vec<String> = (0..10).map(|i| format!("tx-{i:04}")).collect();
    assert_eq!(ids(&index).await, expected);
    cleanup(&index).await;
}

#[tokio::test]
async fn full_batches_are_sent_before_finish() {
    let index = unique_index("size");
    let (cx, _dead) = sink_context();
    let mut sink =
        build(&options(&index, "batch_size = 10\nflush_interval = \"1h\"")).expect("builds");
    let records: Vec<_> = (0..25)
        .map(|i| transaction(i, "2025-07-19T12:34:56.123456+0000"))
        .collect();
    sink.write(Incoming::from(records[..8].to_vec()), &cx)
        .await
        .expect("written");
    assert_eq!(count(&index).await, 0, "8 documents wait for a full batch");
    sink.write(Incoming::from(records[8..].to_vec()), &cx)
        .await
        .expect("written");
    // The two requests run beside the sink: their documents show once they end.
    let mut sent = 0;
    for _ in 0..100 {
        sent = count(&index).await;
        if sent >= 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sent, 20, "two full batches are sent, 5 wait");
    sink.finish(&cx).await.expect("finished");
    assert_eq!(count(&index).await, 25);
    cleanup(&index).await;
}

#[tokio::test]
async fn documents_are_sent_once_they_waited_flush_interval() {
    let index = unique_index("interval");
    let (cx, _dead) = sink_context();
    let mut sink = build(&options(&index, "flush_interval = \"300ms\"")).expect("builds");
    assert_eq!(sink.tick_interval(), Some(Duration::from_millis(300)));
    let started = Instant::now();
    let records: Vec<_> = (0..3)
        .map(|i| transaction(i, "2025-07-19T12:34:56.123456+0000"))
        .collect();
    sink.write(Incoming::from(records), &cx)
        .await
        .expect("written");
    sink.tick(&cx).await.expect("tick");
    if started.elapsed() < Duration::from_millis(300) {
        assert_eq!(count(&index).await, 0, "too young to be sent");
    }
    tokio::time::sleep(Duration::from_millis(350)).await;
    sink.tick(&cx).await.expect("tick");
    assert_eq!(count(&index).await, 3, "the tick sent them");

    // A write finds old documents too, even an empty one.
    sink.write(
        Incoming::from(vec![transaction(3, "2025-07-19T12:34:56.123456+0000")]),
        &cx,
    )
    .await
    .expect("written");
    tokio::time::sleep(Duration::from_millis(350)).await;
    sink.write(Incoming::from(Vec::new()), &cx)
        .await
        .expect("written");
    assert_eq!(count(&index).await, 4, "the write sent it");
    cleanup(&index).await;
}

#[tokio::test]
async fn a_refused_connection_fails_after_retry_for() {
    let index = unique_index("refused");
    let (cx, _dead) = sink_context();
    let opts = format!(
        "url = \"http://127.0.0.1:1\"\nindex = \"{index}\"\nbatch_size = 1\nretry_for = \"300ms\"\n\
         retry_backoff = \"50ms\""
    );
    let mut sink = build(&opts).expect("builds without connecting");
    let started = Instant::now();
    sink.write(
        Incoming::from(vec![transaction(0, "2025-07-19T12:34:56.123456+0000")]),
        &cx,
    )
    .await
    .expect("the request runs beside the sink");
    let e = sink
        .checkpoint(&cx)
        .await
        .expect_err("nothing listens on port 1");
    let message = e.to_string();
    let start = format!("cannot write to index `{index}` at http://127.0.0.1:1: ");
    assert!(message.starts_with(&start), "{message}");
    assert!(message.to_lowercase().contains("connect"), "{message}");
    assert!(
        message.ends_with("(still failing after retrying for 300ms)"),
        "{message}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn outages_at_start_and_mid_run_are_waited_out() {
    let index = unique_index("outage");
    let dir = tempfile::tempdir().expect("temp dir");
    template_for(dir.path(), &format!("{index}.json"), &index);
    let server = es_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    // Longer than the five retries the sink used to make (6.2 s of pauses).
    let outage = Duration::from_secs(7);
    let proxy = Proxy::start_cut(&server, outage).await;
    let opts = format!(
        "url = \"http://{}\"\nindex = \"{index}\"\nid_field = \"transactionId\"\n\
         template = \"{index}.json\"\nbatch_size = 5",
        proxy.address()
    );
    let mut sink = build_sink_in("elasticsearch", &opts, dir.path()).expect("builds");
    let (cx, mut dead) = sink_context();
    let records: Vec<_> = (0..20)
        .map(|i| transaction(i, "2025-07-19T12:34:56.123456+0000"))
        .collect();
    let started = Instant::now();
    sink.write(Incoming::from(records[..10].to_vec()), &cx)
        .await
        .expect("the template and the first batches once Elasticsearch is up");
    sink.checkpoint(&cx).await.expect("the batches are stored");
    assert!(started.elapsed() >= outage, "{:?}", started.elapsed());
    assert_eq!(count(&index).await, 10);
    proxy.cut_for(outage);
    let cut = Instant::now();
    sink.write(Incoming::from(records[10..].to_vec()), &cx)
        .await
        .expect("the requests run beside the sink");
    sink.checkpoint(&cx)
        .await
        .expect("written once Elasticsearch is back");
    assert!(cut.elapsed() >= outage, "{:?}", cut.elapsed());
    sink.finish(&cx).await.expect("finished");
    assert!(dead_letters(&mut dead).is_empty());
    let expected: Vec<String> = (0..20).map(|i| format!("tx-{i:04}")).collect();
    assert_eq!(ids(&index).await, expected);
    let (status, mapping) = es(Method::Get, &format!("/{index}/_mapping"), None).await;
    assert_eq!(status, 200, "{mapping}");
    assert_eq!(
        mapping[&index]["mappings"]["properties"]["transactionDate"]["type"], "date",
        "the template was stored before the first document"
    );
    cleanup(&index).await;
}
