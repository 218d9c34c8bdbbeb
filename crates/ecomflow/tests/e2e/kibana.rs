//! The Kibana saved objects shipped in `kibana/` only reference fields that the
//! `transactions` index template maps, and every reference between them resolves.

use crate::common::read;
use serde_json::Value;
use std::collections::BTreeSet;

fn objects() -> Vec<Value> {
    read("kibana/saved-objects.ndjson")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a saved object"))
        .collect()
}

/// Field names inside a JSON string attribute (such as `visState`).
fn embedded(o: &Value, attribute: &str) -> Value {
    o["attributes"][attribute]
        .as_str()
        .map(|s| serde_json::from_str(s).expect("embedded JSON"))
        .unwrap_or(Value::Null)
}

#[test]
fn every_field_they_use_is_in_the_index_mapping() {
    let template: Value = serde_json::from_str(&read("elasticsearch/transactions-template.json"))
        .expect("template JSON");
    let mapped: BTreeSet<&str> = template["template"]["mappings"]["properties"]
        .as_object()
        .expect("the template maps properties")
        .keys()
        .map(String::as_str)
        .collect();
    let mut used = BTreeSet::new();
    for o in objects() {
        if let Some(f) = o["attributes"]["timeFieldName"].as_str() {
            used.insert(f.to_string());
        }
        for agg in embedded(&o, "visState")["aggs"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(f) = agg["params"]["field"].as_str() {
                used.insert(f.to_string());
            }
        }
        let search = o["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"]
            .as_str()
            .map(|s| serde_json::from_str::<Value>(s).expect("search source JSON"))
            .unwrap_or(Value::Null);
        if let Some(q) = search["query"]["query"].as_str()
            && let Some((field, _)) = q.split_once(':')
        {
            used.insert(field.trim().to_string());
        }
    }
    assert!(used.len() >= 5, "{used:?}");
    for f in &used {
        assert!(
            mapped.contains(f.as_str()),
            "`{f}` is not in the index template's mapping"
        );
    }
    assert_eq!(
        template["template"]["mappings"]["properties"]["transactionDate"]["type"],
        "date"
    );
}

#[test]
fn references_resolve_and_the_dashboard_has_the_promised_panels() {
    let all = objects();
    let ids: BTreeSet<(String, String)> = all
        .iter()
        .map(|o| {
            (
                o["type"].as_str().unwrap_or("").to_string(),
                o["id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for o in &all {
        for r in o["references"].as_array().into_iter().flatten() {
            let target = (
                r["type"].as_str().unwrap_or("").to_string(),
                r["id"].as_str().unwrap_or("").to_string(),
            );
            assert!(
                ids.contains(&target),
                "{} refers to missing {target:?}",
                o["id"]
            );
        }
    }
    let dashboard = all
        .iter()
        .find(|o| o["type"] == "dashboard")
        .expect("a dashboard");
    let panels = embedded(dashboard, "panelsJSON");
    assert_eq!(panels.as_array().map(Vec::len), Some(4));
    let titles: Vec<&str> = all
        .iter()
        .filter(|o| o["type"] == "visualization")
        .filter_map(|o| o["attributes"]["title"].as_str())
        .collect();
    for want in [
        "Sales by category",
        "volume over time",
        "Payment method",
        "Failed payments",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(want)),
            "no `{want}` chart in {titles:?}"
        );
    }
}
