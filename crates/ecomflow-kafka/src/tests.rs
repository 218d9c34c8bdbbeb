//! Tests of the `kafka` source and sink against a real broker, and of their options.

use crate::test_support::*;
use ecomflow_core::Incoming;
use ecomflow_core::{Batch, Field, Kind, Payload, Record, Value};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

fn sink_options(topic: &str, extra: &str) -> String {
    format!(
        "bootstrap_servers = {:?}\ntopic = {topic:?}\n{extra}",
        broker()
    )
}

fn source_options(topics: &[&str], group: &str, extra: &str) -> String {
    format!(
        "bootstrap_servers = {:?}\ntopics = {topics:?}\ngroup_id = {group:?}\n{extra}",
        broker()
    )
}

fn transaction(i: usize) -> serde_json::Value {
    json!({
        "transactionId": format!("tx-{i}"),
        "productPrice": 10.25 + i as f64,
        "productQuantity": i,
        "currency": "USD",
        "nested": {"a": [1, 2]},
    })
}

fn values(messages: &[In]) -> Vec<serde_json::Value> {
    messages
        .iter()
        .map(|m| serde_json::from_slice(m.value.as_deref().expect("a value")).expect("JSON"))
        .collect()
}

// ---- sink --------------------------------------------------------------------------------

#[tokio::test]
async fn sink_writes_keyed_json_messages_that_a_consumer_reads_back() {
    let topic = unique("sink");
    create_topic(&topic, 3, &[]).await;
    let mut sink =
        build_sink(&sink_options(&topic, "key_field = \"transactionId\"")).expect("builds");
    let (cx, mut dead) = sink_context();
    let n = 1000;
    let records: Batch = (0..n).map(|i| record(transaction(i))).collect();
    sink.write(Incoming::from(records[..600].to_vec()), &cx)
        .await
        .expect("writes");
    sink.write(Incoming::from(&records[600..]), &cx)
        .await
        .expect("writes");
    // A key that is not a string is written as JSON; null or absent: no key.
    let odd = vec![
        record(json!({"transactionId": 42, "v": 1})),
        record(json!({"transactionId": null, "v": 2})),
        record(json!({"v": 3})),
    ];
    sink.write(Incoming::from(odd), &cx).await.expect("writes");
    sink.finish(&cx).await.expect("finishes");
    assert!(dead_letters(&mut dead).is_empty());

    let got = read_topic(&topic, 3).await;
    assert_eq!(got.len(), n + 3);
    let mut keyed = HashMap::new();
    let mut unkeyed = Vec::new();
    for (m, v) in got.iter().zip(values(&got)) {
        match &m.key {
            Some(k) => {
                let k = String::from_utf8(k.clone()).expect("UTF-8 key");
                assert!(
                    keyed.insert(k, (v, m.partition)).is_none(),
                    "one message per key"
                );
            }
            None => unkeyed.push(v),
        }
    }
    for i in 0..n {
        let (v, _) = &keyed[&format!("tx-{i}")];
        assert_eq!(*v, transaction(i), "key tx-{i}");
    }
    assert_eq!(keyed["42"].0, json!({"transactionId": 42, "v": 1}));
    unkeyed.sort_by_key(|v| v["v"].as_i64());
    assert_eq!(
        unkeyed,
        [json!({"transactionId": null, "v": 2}), json!({"v": 3})]
    );
    let partitions: std::collections::BTreeSet<i32> = keyed.values().map(|(_, p)| *p).collect();
    assert_eq!(partitions.len(), 3, "keys spread over the partitions");
}

#[tokio::test]
async fn every_offered_codec_round_trips() {
    for codec in ["none", "gzip", "snappy", "lz4"] {
        let topic = unique(codec);
        create_topic(&topic, 1, &[]).await;
        let options = format!("compression = \"{codec}\"\nkey_field = \"transactionId\"");
        let mut sink = build_sink(&sink_options(&topic, &options)).expect("builds");
        let (cx, mut dead) = sink_context();
        let records: Batch = (0..300).map(|i| record(transaction(i))).collect();
        sink.write(Incoming::from(records), &cx)
            .await
            .expect("writes");
        sink.finish(&cx).await.expect("finishes");
        assert!(dead_letters(&mut dead).is_empty(), "{codec}");
        let got = values(&read_topic(&topic, 1).await);
        let want: Vec<_> = (0..300).map(transaction).collect();
        assert_eq!(got, want, "{codec}: one partition keeps the order");
    }
}

#[test]
fn the_offered_codecs_are_those_this_librdkafka_has() {
    let native = rdkafka::ClientConfig::new()
        .create_native_config()
        .expect("config");
    let features = native.get("builtin.features").expect("builtin.features");
    let features: Vec<&str> = features.split(',').collect();
    for codec in ["gzip", "snappy", "lz4"] {
        assert!(
            features.contains(&codec),
            "{codec} missing from {features:?}"
        );
    }
    // zstd needs rdkafka's `zstd` feature; until it is enabled the option refuses it.
    assert!(
        !features.contains(&"zstd"),
        "zstd is built in now: offer it"
    );
    let schema = schema(Kind::Sink);
    let offered: Vec<&str> = schema["$defs"]["Compression"]["oneOf"]
        .as_array()
        .expect("documented variants")
        .iter()
        .map(|v| v["const"].as_str().expect("a name"))
        .collect();
    assert_eq!(offered, ["none", "gzip", "snappy", "lz4"]);
    let e = build_error(build_sink(&sink_options("t", "compression = \"zstd\"")));
    assert!(e.message.contains("unknown variant `zstd`"), "{e}");
}

#[tokio::test]
async fn messages_kafka_refuses_are_dead_lettered_and_the_rest_written() {
    let topic = unique("refused");
    create_topic(&topic, 1, &[("max.message.bytes", "2000")]).await;
    let mut sink = build_sink(&sink_options(&topic, "")).expect("builds");
    let (cx, mut dead) = sink_context();
    // Over librdkafka's own limit (message.max.bytes, 1 MB): refused before it is sent...
    let huge = record(json!({"id": "huge", "pad": "x".repeat(1_100_000)}));
    let batch = vec![record(json!({"id": "a"})), huge, record(json!({"id": "b"}))];
    sink.write(Incoming::from(batch), &cx)
        .await
        .expect("the batch is handled");
    // ...and over the topic's limit: refused by the broker.
    let big = record(json!({"id": "big", "pad": "y".repeat(5000)}));
    sink.write(Incoming::from(vec![big]), &cx)
        .await
        .expect("the batch is handled");
    sink.write(Incoming::from(vec![record(json!({"id": "c"}))]), &cx)
        .await
        .expect("writes");
    sink.finish(&cx).await.expect("finishes");

    let letters = dead_letters(&mut dead);
    let ids: Vec<String> = letters
        .iter()
        .map(|d| match &d.payload {
            Payload::Record(r) => r.get(Field::new("id")).expect("id").to_json().to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, ["\"huge\"", "\"big\""]);
    for d in &letters {
        assert!(
            d.reason
                .contains(&format!("kafka topic `{topic}` refused the message"))
                && d.reason.contains("MessageSizeTooLarge"),
            "{}",
            d.reason
        );
    }
    let written: Vec<serde_json::Value> = values(&read_topic(&topic, 1).await);
    assert_eq!(
        written,
        [json!({"id": "a"}), json!({"id": "b"}), json!({"id": "c"})]
    );
}

#[tokio::test]
async fn a_broker_failure_fails_the_write_naming_topic_and_brokers() {
    // Nothing listens on port 1: every message times out after message.timeout.ms.
    let options = "bootstrap_servers = \"127.0.0.1:1\"\ntopic = \"nowhere\"\n\
                   options = { \"message.timeout.ms\" = 1000 }";
    let mut sink = build_sink(options).expect("builds without connecting");
    let (cx, mut dead) = sink_context();
    let started = Instant::now();
    let e = sink
        .write(
            Incoming::from(vec![record(json!({"a": 1})), record(json!({"a": 2}))]),
            &cx,
        )
        .await
        .expect_err("no broker");
    let text = e.to_string();
    assert!(
        text.contains("kafka topic `nowhere` at 127.0.0.1:1") && text.contains("timed out"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(dead_letters(&mut dead).is_empty(), "not the records' fault");
}

#[tokio::test]
async fn an_empty_run_creates_no_producer() {
    let mut sink =
        build_sink("bootstrap_servers = \"127.0.0.1:1\"\ntopic = \"t\"").expect("builds");
    let (cx, _dead) = sink_context();
    let started = Instant::now();
    sink.write(Incoming::from(Vec::new()), &cx)
        .await
        .expect("nothing to write");
    sink.finish(&cx).await.expect("nothing to flush");
    assert!(started.elapsed() < Duration::from_secs(1));
}

// ---- source ------------------------------------------------------------------------------

#[tokio::test]
async fn source_reads_records_and_dead_letters_undecodable_messages() {
    let topic = unique("source");
    create_topic(&topic, 3, &[]).await;
    let n = 600;
    let mut out: Vec<Out> = (0..n)
        .map(|i| {
            let tx = json!({"transactionId": format!("tx-{i}"), "i": i, "price": 1.5});
            json_to((i % 3) as i32, tx)
        })
        .collect();
    let bad: [(i32, Option<&[u8]>); 5] = [
        (0, Some(b"not json")),
        (1, Some(b"{\"a\":")),
        (2, Some(b"")),
        (0, None),
        (1, Some(b"[1,2]")),
    ];
    for (k, (p, v)) in bad.iter().enumerate() {
        out.insert(k * 100 + 7, raw_to(*p, *v));
    }
    let placed = produce(&topic, &out).await;
    let group = unique("group");
    let options = source_options(&[&topic], &group, "stop_at_end = true\nbatch_size = 50");
    let (batches, dead) = run_to_end(build_source(&options).expect("builds")).await;

    let records: Vec<&Record> = batches.iter().flatten().collect();
    assert_eq!(records.len(), n);
    let mut seen: Vec<i64> = records.iter().map(|r| int(r, "i")).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..n as i64).collect::<Vec<_>>());
    for r in &records {
        let i = int(r, "i");
        assert_eq!(
            r.get(Field::new("transactionId")),
            Some(&Value::from(format!("tx-{i}")))
        );
        assert_eq!(r.get(Field::new("price")), Some(&Value::Float(1.5)));
    }

    assert_eq!(dead.len(), bad.len(), "{dead:?}");
    for (k, (_, bytes)) in bad.iter().enumerate() {
        let (partition, offset) = placed[k * 100 + 7];
        let prefix = format!("{topic}[{partition}]@{offset}: invalid JSON");
        let letter = dead
            .iter()
            .find(|d| d.reason.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no dead letter for {prefix}: {dead:?}"));
        assert_eq!(
            letter.payload,
            Payload::Raw(bytes.unwrap_or_default().to_vec())
        );
        assert_eq!(&*letter.component, "sources.test");
    }
    let reasons: Vec<&str> = dead.iter().map(|d| d.reason.as_str()).collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.ends_with("invalid JSON: empty message"))
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.ends_with("no value (a tombstone)"))
    );
    assert!(
        reasons.iter().any(|r| r.contains("EOF while parsing")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("expected a JSON object")),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn each_batch_holds_one_partition_in_offset_order() {
    let topic = unique("batches");
    create_topic(&topic, 3, &[]).await;
    let per_partition = 100;
    let out: Vec<Out> = (0..per_partition)
        .flat_map(|i| (0..3).map(move |p| json_to(p, json!({"p": p, "i": i}))))
        .collect();
    produce(&topic, &out).await;
    let options = source_options(
        &[&topic],
        &unique("group"),
        "stop_at_end = true\nbatch_size = 7",
    );
    let (batches, dead) = run_to_end(build_source(&options).expect("builds")).await;
    assert!(dead.is_empty());
    let mut per: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for b in &batches {
        assert!(!b.is_empty() && b.len() <= 7, "batch of {}", b.len());
        let p = int(&b[0], "p");
        for r in b {
            assert_eq!(int(r, "p"), p, "a batch mixes partitions");
            per.entry(p).or_default().push(int(r, "i"));
        }
    }
    assert_eq!(per.len(), 3);
    for seq in per.values() {
        assert_eq!(*seq, (0..per_partition as i64).collect::<Vec<_>>());
    }
    assert!(batches.iter().filter(|b| b.len() == 7).count() >= 3 * 14);
}

#[tokio::test]
async fn a_message_the_consumer_delivers_again_is_not_sent_again() {
    use rdkafka::consumer::Consumer;
    let topic = unique("again");
    create_topic(&topic, 1, &[]).await;
    let group = unique("group");
    let numbered = |from: i64, to: i64| -> Vec<Out> {
        (from..to).map(|i| json_to(0, json!({"i": i}))).collect()
    };
    produce(&topic, &numbered(0, 10)).await;
    let options = source_options(&[&topic], &group, "batch_size = 4");
    let mut running = start(build_source(&options).expect("builds"));
    let first = running.records(10).await;
    // The consumer hands 3..9 over a second time, as librdkafka can around a rebalance.
    let consumer = crate::reader::test_consumers::of(&group).expect("the source's consumer");
    consumer
        .seek(
            &topic,
            0,
            rdkafka::Offset::Offset(3),
            Duration::from_secs(10),
        )
        .expect("seek back");
    produce(&topic, &numbered(10, 15)).await;
    let rest = running.records(5).await;
    let read: Vec<i64> = first
        .iter()
        .chain(&rest)
        .flatten()
        .map(|r| int(r, "i"))
        .collect();
    assert_eq!(
        read,
        (0..15).collect::<Vec<_>>(),
        "each message once, in order"
    );
    drop(consumer);
    running.shutdown.cancel();
    let (after, _) = running.drain().await;
    let again: Vec<i64> = after.iter().flatten().map(|r| int(r, "i")).collect();
    assert!(again.is_empty(), "sent again at the end: {again:?}");
}

#[tokio::test]
async fn offsets_are_committed_at_the_end_and_the_next_run_resumes_there() {
    let topic = unique("offsets");
    create_topic(&topic, 3, &[]).await;
    let out: Vec<Out> = (0..90).map(|i| json_to(i % 3, json!({"i": i}))).collect();
    produce(&topic, &out).await;
    let group = unique("group");
    let options = source_options(&[&topic], &group, "stop_at_end = true");
    let count = |batches: &[Batch]| batches.iter().map(Vec::len).sum::<usize>();

    let (first, _) = run_to_end(build_source(&options).expect("builds")).await;
    assert_eq!(count(&first), 90);
    let ends: Vec<Option<i64>> = end_offsets(&topic, 3).await.into_iter().map(Some).collect();
    assert_eq!(ends, [Some(30), Some(30), Some(30)]);
    assert_eq!(committed(&group, &topic, 3).await, ends);

    let (second, dead) = run_to_end(build_source(&options).expect("builds")).await;
    assert_eq!(count(&second), 0, "nothing new");
    assert!(dead.is_empty());

    let more: Vec<Out> = (90..95).map(|i| json_to(1, json!({"i": i}))).collect();
    produce(&topic, &more).await;
    let (third, _) = run_to_end(build_source(&options).expect("builds")).await;
    let is: Vec<i64> = third.iter().flatten().map(|r| int(r, "i")).collect();
    assert_eq!(is, [90, 91, 92, 93, 94]);
    assert_eq!(
        committed(&group, &topic, 3).await,
        [Some(30), Some(35), Some(30)]
    );
}

#[tokio::test]
async fn a_restored_checkpoint_says_where_its_partitions_resume_whatever_was_committed() {
    let topic = unique("resume");
    create_topic(&topic, 3, &[]).await;
    // Offset k of partition p holds i = p + 3k.
    let out: Vec<Out> = (0..90).map(|i| json_to(i % 3, json!({"i": i}))).collect();
    produce(&topic, &out).await;
    let group = unique("group");
    // The group's offsets may be ahead of the checkpoint (partition 0) or behind it (1);
    // partition 2 is not in the checkpoint and resumes from its committed offset.
    commit(&group, &topic, &[(0, 30), (1, 5), (2, 25)]).await;
    let checkpoint = [
        (topic.as_str(), 0, json!(10)),
        (topic.as_str(), 1, json!(20)),
    ];
    let options = source_options(&[&topic], &group, "stop_at_end = true");
    let running = start_restored(build_source(&options).expect("builds"), &checkpoint);
    let (batches, dead) = running.finish().await;
    assert!(dead.is_empty(), "{dead:?}");
    let mut read: Vec<i64> = batches.iter().flatten().map(|r| int(r, "i")).collect();
    read.sort_unstable();
    let mut expected: Vec<i64> = (10..30)
        .map(|k| 3 * k)
        .chain((20..30).map(|k| 1 + 3 * k))
        .chain((25..30).map(|k| 2 + 3 * k))
        .collect();
    expected.sort_unstable();
    assert_eq!(read, expected);
}

#[tokio::test]
async fn a_corrupt_checkpoint_position_fails_the_source_clearly() {
    let topic = unique("corrupt");
    create_topic(&topic, 1, &[]).await;
    let options = source_options(&[&topic], &unique("group"), "stop_at_end = true");
    let kept = [(topic.as_str(), 0, json!({"x": 1}))];
    let running = start_restored(build_source(&options).expect("builds"), &kept);
    let result = tokio::time::timeout(PATIENCE, running.task)
        .await
        .expect("ends")
        .expect("no panic");
    let e = result.expect_err("refuses the position").to_string();
    assert!(e.contains("checkpoint's offsets are unreadable"), "{e}");
}

#[tokio::test]
async fn a_checkpoint_with_one_state_for_every_partition_is_refused() {
    let topic = unique("old_checkpoint");
    create_topic(&topic, 1, &[]).await;
    let options = source_options(&[&topic], &unique("group"), "stop_at_end = true");
    // How checkpoints kept the source before each partition kept its own position.
    let old = json!([[&topic, 0, 10]]);
    let running = start_restored_from(build_source(&options).expect("builds"), old, &[]);
    let result = tokio::time::timeout(PATIENCE, running.task)
        .await
        .expect("ends")
        .expect("no panic");
    let e = result.expect_err("refuses the checkpoint").to_string();
    assert!(e.contains("kept one state for all partitions"), "{e}");
    assert!(e.contains("--reset-state sources.test"), "{e}");
}

#[tokio::test]
async fn shutdown_is_prompt_sends_what_was_read_and_commits_it() {
    let topic = unique("shutdown");
    create_topic(&topic, 3, &[]).await;
    let out: Vec<Out> = (0..60).map(|i| json_to(i % 3, json!({"i": i}))).collect();
    produce(&topic, &out).await;
    let group = unique("group");
    // Batches are never due and offsets never committed on time: only shutdown sends and
    // commits them.
    let options = source_options(
        &[&topic],
        &group,
        "batch_size = 100000\nflush_interval = \"1h\"\ncommit_interval = \"1h\"",
    );
    let mut running = start(build_source(&options).expect("builds"));
    // Joining the group and reading 60 messages takes well under this.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(running.batches.try_recv().is_err(), "nothing is due yet");
    assert_eq!(committed(&group, &topic, 3).await, [None, None, None]);

    let asked = Instant::now();
    running.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), &mut running.task)
        .await
        .expect("stops within 2 s")
        .expect("no panic")
        .expect("no error");
    assert!(asked.elapsed() < Duration::from_secs(2));
    let (batches, _) = running.drain().await;
    assert_eq!(batches.len(), 3, "one partial batch per partition");
    assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 60);
    assert_eq!(
        committed(&group, &topic, 3).await,
        [Some(20), Some(20), Some(20)]
    );
}

#[tokio::test]
async fn shutdown_without_a_broker_is_prompt_too() {
    let options = "bootstrap_servers = \"127.0.0.1:1\"\ntopics = [\"t\"]\ngroup_id = \"g\"";
    let mut running = start(build_source(options).expect("builds without connecting"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!running.task.is_finished(), "waits for the broker");
    let asked = Instant::now();
    running.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), &mut running.task)
        .await
        .expect("stops within 2 s")
        .expect("no panic")
        .expect("nothing read, nothing to commit");
    assert!(asked.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn two_members_of_a_group_share_the_partitions_and_read_each_message_once() {
    let topic = unique("members");
    create_topic(&topic, 3, &[]).await;
    let message = |i: i64| json_to((i % 3) as i32, json!({"i": i}));
    produce(&topic, &(0..30).map(message).collect::<Vec<_>>()).await;
    let group = unique("group");
    // Offsets are committed only when partitions are revoked and when the sources stop.
    let options = source_options(&[&topic], &group, "commit_interval = \"1h\"");
    let mut a = start(build_source(&options).expect("builds"));
    let mut seen: Vec<i64> = a
        .records(30)
        .await
        .iter()
        .flatten()
        .map(|r| int(r, "i"))
        .collect();

    // A second member joins: the first gives partitions up (committing what it sent), and
    // each message written from then on is read by one of them.
    let mut b = start(build_source(&options).expect("builds"));
    let mut next = 30;
    let mut b_read = 0;
    let deadline = Instant::now() + PATIENCE;
    while b_read == 0 {
        assert!(
            Instant::now() < deadline,
            "the second member never got a partition"
        );
        produce(&topic, &(next..next + 3).map(message).collect::<Vec<_>>()).await;
        next += 3;
        tokio::time::sleep(Duration::from_millis(300)).await;
        while let Ok(batch) = a.batches.try_recv() {
            seen.extend(batch.iter().map(|r| int(r, "i")));
        }
        while let Ok(batch) = b.batches.try_recv() {
            b_read += batch.len();
            seen.extend(batch.iter().map(|r| int(r, "i")));
        }
    }
    // Give both time to read the last messages, then stop them.
    tokio::time::sleep(Duration::from_secs(1)).await;
    a.shutdown.cancel();
    b.shutdown.cancel();
    for running in [a, b] {
        let (batches, _) = running.finish().await;
        seen.extend(batches.iter().flatten().map(|r| int(r, "i")));
    }
    seen.sort_unstable();
    let ends: Vec<Option<i64>> = end_offsets(&topic, 3).await.into_iter().map(Some).collect();
    assert_eq!(seen, (0..next).collect::<Vec<_>>(), "each message once");
    assert_eq!(committed(&group, &topic, 3).await, ends);
}

#[tokio::test]
async fn offsets_are_committed_every_commit_interval_while_running() {
    let topic = unique("interval");
    create_topic(&topic, 3, &[]).await;
    let out: Vec<Out> = (0..30).map(|i| json_to(i % 3, json!({"i": i}))).collect();
    produce(&topic, &out).await;
    let group = unique("group");
    let options = source_options(&[&topic], &group, "commit_interval = \"300ms\"");
    let mut running = start(build_source(&options).expect("builds"));
    running.records(30).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if committed(&group, &topic, 3).await == [Some(10), Some(10), Some(10)] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "offsets not committed while running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!running.task.is_finished(), "still running");
    running.shutdown.cancel();
    running.finish().await;
}

#[tokio::test]
async fn stop_at_end_covers_several_topics_sharing_partition_numbers() {
    let (a, b) = (unique("a"), unique("b"));
    create_topic(&a, 3, &[]).await;
    create_topic(&b, 3, &[]).await;
    // Partition 0 has messages in both topics; a[2] and b[1] stay empty.
    let to = |t: &str, p: i32, i: i64| json_to(p, json!({"t": t, "p": p, "i": i}));
    let out_a: Vec<Out> = (0..5)
        .map(|i| to("a", 0, i))
        .chain((0..3).map(|i| to("a", 1, i)))
        .collect();
    let out_b: Vec<Out> = (0..4)
        .map(|i| to("b", 0, i))
        .chain((0..2).map(|i| to("b", 2, i)))
        .collect();
    produce(&a, &out_a).await;
    produce(&b, &out_b).await;
    let options = source_options(&[&a, &b], &unique("group"), "stop_at_end = true");
    let (batches, _) = run_to_end(build_source(&options).expect("builds")).await;
    let mut seen: BTreeMap<(String, i64), Vec<i64>> = BTreeMap::new();
    for batch in &batches {
        let first = &batch[0];
        let key = |r: &Record| (r.get(Field::new("t")).cloned(), int(r, "p"));
        for r in batch {
            assert_eq!(key(r), key(first), "a batch mixes partitions");
            let t = r.get(Field::new("t")).and_then(Value::as_str).expect("t");
            seen.entry((t.to_string(), int(r, "p")))
                .or_default()
                .push(int(r, "i"));
        }
    }
    let want: BTreeMap<(String, i64), Vec<i64>> = [
        (("a".to_string(), 0), (0..5).collect()),
        (("a".to_string(), 1), (0..3).collect()),
        (("b".to_string(), 0), (0..4).collect()),
        (("b".to_string(), 2), (0..2).collect()),
    ]
    .into_iter()
    .collect();
    assert_eq!(seen, want);
}

#[tokio::test]
async fn stop_at_end_waits_for_a_backlog_while_another_topic_keeps_growing() {
    // Both topics have a partition 0: `live` reaches its end at once and again after each
    // new message, and none of those end events may count for `backlog`.
    let (live, backlog) = (unique("live"), unique("backlog"));
    create_topic(&live, 1, &[]).await;
    create_topic(&backlog, 1, &[]).await;
    produce(&live, &[json_to(0, json!({"t": "live"}))]).await;
    let n = 5_000;
    let out: Vec<Out> = (0..n)
        .map(|i| json_to(0, json!({"t": "backlog", "i": i})))
        .collect();
    produce(&backlog, &out).await;
    let stop = ecomflow_core::CancellationToken::new();
    let writer = {
        let (live, stop) = (live.clone(), stop.clone());
        tokio::spawn(async move {
            let producer = producer();
            while !stop.is_cancelled() {
                produce_with(&producer, &live, &[json_to(0, json!({"t": "live"}))]).await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    // A slow downstream (0.5 s for the backlog) and small fetches keep the backlog
    // from queueing up ahead of the live topic's messages and end events.
    let options = source_options(
        &[&live, &backlog],
        &unique("group"),
        "stop_at_end = true\nbatch_size = 100\noptions = { \"queued.min.messages\" = 50, \"max.partition.fetch.bytes\" = 2048 }",
    );
    let running = start_paced(
        build_source(&options).expect("builds"),
        Duration::from_millis(10),
    );
    let (batches, _) = running.finish().await;
    stop.cancel();
    writer.await.expect("writer");
    let from_backlog = batches
        .iter()
        .flatten()
        .filter(|r| r.get(Field::new("t")) == Some(&Value::from("backlog")))
        .count();
    assert_eq!(from_backlog, n);
}

#[tokio::test]
async fn stop_at_end_on_an_empty_topic_ends_with_nothing() {
    let topic = unique("empty");
    create_topic(&topic, 3, &[]).await;
    let options = source_options(&[&topic], &unique("group"), "stop_at_end = true");
    let (batches, dead) = run_to_end(build_source(&options).expect("builds")).await;
    assert!(batches.is_empty() && dead.is_empty());
}

#[tokio::test]
async fn start_latest_skips_what_is_already_there() {
    let topic = unique("latest");
    create_topic(&topic, 1, &[]).await;
    produce(&topic, &[json_to(0, json!({"i": 0}))]).await;
    let options = source_options(
        &[&topic],
        &unique("group"),
        "start = \"latest\"\nstop_at_end = true",
    );
    let (batches, _) = run_to_end(build_source(&options).expect("builds")).await;
    assert!(batches.is_empty(), "{batches:?}");
}

// ---- options -----------------------------------------------------------------------------

#[test]
fn build_errors_name_the_option() {
    let source = |extra: &str| build_source(&source_options(&["t"], "g", extra));
    let cases: &[(&str, Result<(), ecomflow_core::BuildError>, &str)] = &[
        (
            "topics",
            build_source("bootstrap_servers = \"b:1\"\ntopics = []\ngroup_id = \"g\"").map(drop),
            "topics is empty",
        ),
        (
            "topics",
            build_source(&source_options(&["a b"], "g", "")).map(drop),
            "`a b` is not a topic name",
        ),
        (
            "group_id",
            build_source(&source_options(&["t"], "", "")).map(drop),
            "group_id is empty",
        ),
        (
            "batch_size",
            source("batch_size = 0").map(drop),
            "at least 1",
        ),
        (
            "commit_interval",
            source("commit_interval = \"0s\"").map(drop),
            "must be longer than zero",
        ),
        (
            "options.enable.auto.commit",
            source("options = { \"enable.auto.commit\" = true }").map(drop),
            "set by the component itself",
        ),
        (
            "options.no.such.setting",
            source("options = { \"no.such.setting\" = 1 }").map(drop),
            "No such configuration property",
        ),
        (
            "options.session.timeout.ms",
            source("options = { \"session.timeout.ms\" = \"soon\" }").map(drop),
            "session.timeout.ms",
        ),
        (
            "bootstrap_servers",
            build_source("bootstrap_servers = \"\"\ntopics = [\"t\"]\ngroup_id = \"g\"").map(drop),
            "bootstrap_servers is empty",
        ),
        (
            "topic",
            build_sink(&sink_options("^t.*", "")).map(drop),
            "is not a topic name",
        ),
        (
            "key_field",
            build_sink(&sink_options("t", "key_field = \"\"")).map(drop),
            "key_field is empty",
        ),
        (
            "options.linger.ms",
            build_sink(&sink_options("t", "options = { \"linger.ms\" = 1 }")).map(drop),
            "set by the component itself",
        ),
        (
            "batch_size",
            build_sink(&sink_options("t", "batch_size = 0")).map(drop),
            "batch.num.messages",
        ),
        (
            "flush_interval",
            build_sink(&sink_options("t", "flush_interval = \"1h\"")).map(drop),
            "outside allowed range",
        ),
        // The name the option had before every plugin called it `flush_interval`.
        (
            "flush_interval",
            build_sink(&sink_options("t", "linger = \"1h\"")).map(drop),
            "outside allowed range",
        ),
    ];
    for (field, result, message) in cases {
        let e = match result {
            Ok(()) => panic!("{field}: expected a build error"),
            Err(e) => e,
        };
        assert_eq!(e.field.as_deref(), Some(*field), "{e}");
        assert!(e.message.contains(message), "{field}: {e}");
    }
    // Values serde refuses: unknown variants, missing and unknown options.
    for (result, message) in [
        (
            source("start = \"middle\"").map(drop),
            "unknown variant `middle`",
        ),
        (
            build_sink(&sink_options("t", "acks = \"2\"")).map(drop),
            "unknown variant `2`",
        ),
        (
            build_source("bootstrap_servers = \"b:1\"\ntopics = [\"t\"]").map(drop),
            "missing field `group_id`",
        ),
        (
            source("stop_at_eof = true").map(drop),
            "unknown field `stop_at_eof`",
        ),
        (source("flush_interval = \"soon\"").map(drop), "soon"),
        (source("batch_timeout = \"later\"").map(drop), "later"),
    ] {
        let e = build_error(result);
        assert!(e.message.contains(message), "{e}");
    }
    // Nothing connects at build time: an unreachable broker builds fine.
    build_source(&source_options(
        &["t", "^other.*"],
        "g",
        "stop_at_end = true",
    ))
    .expect("builds");
    build_sink(&sink_options("t", "acks = \"0\"\ncompression = \"lz4\"")).expect("builds");
}

#[test]
fn both_are_registered_with_documented_options_and_defaults() {
    for kind in [Kind::Source, Kind::Sink] {
        let schema = schema(kind);
        let properties = schema["properties"].as_object().expect("options");
        for (option, s) in properties {
            assert!(
                s["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{option} has no documentation: {s}"
            );
        }
    }
    let source = schema(Kind::Source);
    let p = &source["properties"];
    assert_eq!(p["start"]["default"], "earliest");
    assert_eq!(p["batch_size"]["default"], 1024);
    assert_eq!(p["flush_interval"]["default"], "100ms");
    assert_eq!(p["stop_at_end"]["default"], false);
    assert_eq!(p["commit_interval"]["default"], "5s");
    assert_eq!(
        source["required"],
        json!(["bootstrap_servers", "topics", "group_id"])
    );
    let sink = schema(Kind::Sink);
    let p = &sink["properties"];
    assert_eq!(p["compression"]["default"], "none");
    assert_eq!(p["batch_size"]["default"], 10_000);
    assert_eq!(p["flush_interval"]["default"], "5ms");
    assert_eq!(p["acks"]["default"], "all");
    assert_eq!(sink["required"], json!(["bootstrap_servers", "topic"]));
}

// ---- pipelines/generate.toml -------------------------------------------------------------

#[tokio::test]
async fn the_generate_pipeline_writes_keyed_transactions_to_kafka() {
    use ecomflow_std as _; // links the generator source and the file sink
    let topic = unique("generate");
    create_topic(&topic, 3, &[]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let dead_path = dir.path().join("dead.jsonl");
    let sets = [
        format!("sinks.kafka.topic={topic:?}"),
        format!("dead_letter.path={:?}", dead_path.to_str().expect("UTF-8")),
    ];
    let env = |name: &str| (name == "KAFKA_BOOTSTRAP_SERVERS").then(broker);
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/generate.toml");
    let options = ecomflow_runtime::LoadOptions {
        sets: &sets,
        env: &env,
    };
    let pipeline = ecomflow_runtime::load(&[file], &options)
        .unwrap_or_else(|d| panic!("generate.toml loads: {d:?}"));
    let summary = ecomflow_runtime::run(pipeline, ecomflow_core::CancellationToken::new())
        .await
        .unwrap_or_else(|f| panic!("generate.toml runs: {:?}", f.failures));
    let written = summary.get("sinks.kafka").expect("the sink ran");
    let dead_lettered = std::fs::read_to_string(&dead_path)
        .unwrap_or_default()
        .lines()
        .count();
    assert!(
        dead_lettered > 0,
        "the truncated records are dead-lettered at the source"
    );

    let messages = read_topic(&topic, 3).await;
    assert_eq!(messages.len() as u64, written.received, "{written:?}");
    let mut good = 0;
    for (m, v) in messages.iter().zip(values(&messages)) {
        let id = v["transactionId"].as_str();
        match (&m.key, id) {
            (Some(k), Some(id)) => assert_eq!(k, id.as_bytes()),
            (None, None) => {} // a deliberately broken record without its id
            other => panic!("key and transactionId differ: {other:?}"),
        }
        let numbers = ["productPrice", "productQuantity", "totalAmount"]
            .iter()
            .all(|f| v[f].is_number());
        if v.as_object().is_some_and(|o| o.len() == 13) && numbers {
            good += 1;
        }
    }
    assert_eq!(good, 1000, "count = 1000 good transactions");
    assert!(
        messages.len() > 1000,
        "the records with a field missing or mistyped reach Kafka too"
    );
}
