//! What an `elasticsearch` sink's index refuses, known once the sink is open (for a
//! `storable` transform upstream): a document id that is missing, empty or longer than 512
//! bytes; a field name Elasticsearch cannot map (empty, dots only, a leading, trailing or
//! doubled dot, a metadata name such as `_id`); objects nested deeper than
//! `index.mapping.depth.limit`; more fields than `index.mapping.total_fields.limit` (the
//! fields the index maps, with those the records let through so far add: each new string
//! adds two, its text and its keyword); under `dynamic: strict`, any field it does not map;
//! a value of a mapped field that it cannot take (a word in a number field, an integer out of
//! the field's range, an object in a keyword, a keyword longer than 32,766 bytes, a date in
//! none of the field's formats, where `date_format` knows them all). What only the server
//! knows (fields another writer adds, a date format not known here) is not known here: such
//! a document is still a dead letter of the sink.

use crate::bulk::document_id;
use crate::date_format;
use ecomflow_core::{Admission, Field, Record, Value};
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

/// The longest keyword Lucene indexes, in bytes.
const MAX_KEYWORD_BYTES: usize = 32766;
/// Elasticsearch's default `index.mapping.total_fields.limit`.
const DEFAULT_FIELD_LIMIT: usize = 1000;
/// Elasticsearch's default `index.mapping.depth.limit`.
const DEFAULT_DEPTH_LIMIT: usize = 20;
/// Names Elasticsearch keeps for itself: a document cannot hold them.
const METADATA: &[&str] = &[
    "_id",
    "_index",
    "_source",
    "_routing",
    "_version",
    "_seq_no",
    "_primary_term",
    "_ignored",
    "_field_names",
    "_doc_count",
    "_tier",
    "_data_stream_timestamp",
    "_feature",
    "_nested_path",
    "_tsid",
];

/// How a mapped field takes values.
#[derive(Debug, Clone, PartialEq)]
enum Mapped {
    /// A whole number between the bounds (a fraction is cut off).
    Integer(i64, i64),
    /// Any number.
    Number,
    /// A keyword: no object, at most this many bytes (none with `ignore_above`).
    Keyword(Option<usize>),
    /// A date in one of these formats (`None`: the default ones).
    Date(Option<Arc<str>>),
    /// Anything this check does not look into (text, date, boolean, ...).
    Other,
}

/// What the index maps for new fields: everything (`true`), nothing (`false`), or refuses
/// them (`strict`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Dynamic {
    Map,
    Ignore,
    Strict,
}

/// What an index refuses.
#[derive(Debug)]
pub struct IndexRules {
    id_field: Option<Field>,
    field_limit: usize,
    depth_limit: usize,
    dynamic: Dynamic,
    /// How each mapped leaf takes values, by path (`a.b`).
    mapped: HashMap<String, Mapped>,
    /// Every path the index maps (objects, leaves, multi-fields), and those the records let
    /// through so far add.
    known: RwLock<HashSet<String>>,
}

impl IndexRules {
    /// The rules of an index whose `mappings` and `settings` are these (as `_mapping` and
    /// `_settings` or an index template give them; `Null` when unknown), for documents with
    /// ids from `id_field`.
    pub fn new(id_field: Option<Field>, mappings: &Json, settings: &Json) -> IndexRules {
        let limit = |name: &str, default: usize| {
            setting(settings, &["index", "mapping", name, "limit"])
                .or_else(|| setting(settings, &[&format!("index.mapping.{name}.limit")]))
                .unwrap_or(default)
        };
        let dynamic = match mappings.get("dynamic") {
            Some(Json::String(s)) if s == "strict" => Dynamic::Strict,
            Some(Json::String(s)) if s == "false" => Dynamic::Ignore,
            Some(Json::Bool(false)) => Dynamic::Ignore,
            _ => Dynamic::Map,
        };
        let mut rules = IndexRules {
            id_field,
            field_limit: limit("total_fields", DEFAULT_FIELD_LIMIT),
            depth_limit: limit("depth", DEFAULT_DEPTH_LIMIT),
            dynamic,
            mapped: HashMap::new(),
            known: RwLock::default(),
        };
        let mut known = HashSet::new();
        if let Some(properties) = mappings.get("properties") {
            rules.read_properties(properties, "", &mut known);
        }
        rules.known = RwLock::new(known);
        rules
    }

    fn read_properties(&mut self, properties: &Json, prefix: &str, known: &mut HashSet<String>) {
        let Some(properties) = properties.as_object() else {
            return;
        };
        for (name, mapping) in properties {
            let path = format!("{prefix}{name}");
            if let Some(fields) = mapping.get("fields").and_then(Json::as_object) {
                known.extend(fields.keys().map(|f| format!("{path}.{f}")));
            }
            if let Some(inner) = mapping.get("properties") {
                self.read_properties(inner, &format!("{path}."), known);
            } else {
                let kind = mapping
                    .get("type")
                    .and_then(Json::as_str)
                    .unwrap_or("object");
                let mapped = match kind {
                    "byte" => Mapped::Integer(i8::MIN.into(), i8::MAX.into()),
                    "short" => Mapped::Integer(i16::MIN.into(), i16::MAX.into()),
                    "integer" => Mapped::Integer(i32::MIN.into(), i32::MAX.into()),
                    "long" => Mapped::Integer(i64::MIN, i64::MAX),
                    "double" | "float" | "half_float" | "scaled_float" => Mapped::Number,
                    "keyword" => Mapped::Keyword(
                        mapping
                            .get("ignore_above")
                            .is_none()
                            .then_some(MAX_KEYWORD_BYTES),
                    ),
                    "date" => {
                        Mapped::Date(mapping.get("format").and_then(Json::as_str).map(Arc::from))
                    }
                    _ => Mapped::Other,
                };
                self.mapped.insert(path.clone(), mapped);
            }
            known.insert(path);
        }
    }
}

/// A number under `path` of `settings`, whether nested or flat, number or text.
fn setting(settings: &Json, path: &[&str]) -> Option<usize> {
    let mut at = settings;
    for part in path {
        at = at.get(part)?;
    }
    match at {
        Json::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        Json::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// What a document adds to the index: its paths, each with how many fields it maps.
struct Walk<'a> {
    rules: &'a IndexRules,
    known: &'a HashSet<String>,
    new: Vec<(String, usize)>,
}

impl Walk<'_> {
    /// Looks at `value` under `path`, a field `depth` levels deep (1: in the document
    /// itself, as Elasticsearch counts); the first refusal.
    fn value(&mut self, path: &str, value: &Value, depth: usize) -> Option<String> {
        if let Some(mapped) = self.rules.mapped.get(path)
            && let Some(reason) = refuses_value(mapped, value)
        {
            return Some(format!("field `{path}`: {reason}"));
        }
        match value {
            Value::Nested(inner) => self.json(path, inner, depth),
            Value::Str(_) => self.leaf(path, 2),
            Value::Null => None,
            _ => self.leaf(path, 1),
        }
    }

    fn json(&mut self, path: &str, value: &Json, depth: usize) -> Option<String> {
        match value {
            Json::Object(map) => {
                if depth + 1 > self.rules.depth_limit {
                    return Some(format!(
                        "field `{path}` nests objects deeper than {} levels \
                         (index.mapping.depth.limit)",
                        self.rules.depth_limit
                    ));
                }
                if let Some(reason) = self.leaf(path, 1) {
                    return Some(reason);
                }
                for (name, inner) in map {
                    if let Some(reason) = self.name(path, name, inner, depth + 1) {
                        return Some(reason);
                    }
                }
                None
            }
            Json::Array(items) => items.iter().find_map(|v| self.json(path, v, depth)),
            Json::String(_) => self.leaf(path, 2),
            Json::Null => None,
            _ => self.leaf(path, 1),
        }
    }

    /// A field `name` of the object at `parent` (`""`: the document).
    fn name(&mut self, parent: &str, name: &str, value: &Json, depth: usize) -> Option<String> {
        if let Some(reason) = bad_name(name) {
            return Some(reason);
        }
        let path = if parent.is_empty() {
            name.to_string()
        } else {
            format!("{parent}.{name}")
        };
        if let Some(mapped) = self.rules.mapped.get(&path)
            && let Some(reason) = refuses_value(mapped, &Value::from_json(value.clone()))
        {
            return Some(format!("field `{path}`: {reason}"));
        }
        self.json(&path, value, depth)
    }

    /// A path the document maps, adding `fields` fields when new.
    fn leaf(&mut self, path: &str, fields: usize) -> Option<String> {
        if self.known.contains(path) || self.rules.dynamic == Dynamic::Ignore {
            return None;
        }
        if self.rules.dynamic == Dynamic::Strict {
            return Some(format!(
                "the index maps no field `{path}` and takes no new one (dynamic: strict)"
            ));
        }
        if !self.new.iter().any(|(p, _)| p == path) {
            self.new.push((path.to_string(), fields));
        }
        None
    }
}

/// Why Elasticsearch cannot map a field named `name`.
fn bad_name(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some("a field name is empty".into());
    }
    if name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return Some(format!(
            "field name `{name}` starts or ends with a dot, or has two in a row"
        ));
    }
    METADATA
        .contains(&name)
        .then(|| format!("`{name}` is a metadata field of Elasticsearch, not a document's"))
}

/// Why a field mapped as `mapped` cannot take `value`.
fn refuses_value(mapped: &Mapped, value: &Value) -> Option<String> {
    let number = |v: &Value| match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Str(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match (mapped, value) {
        (_, Value::Null) | (Mapped::Other, _) => None,
        (Mapped::Keyword(_), Value::Nested(n)) if n.is_object() => {
            Some("an object, for a keyword".into())
        }
        (Mapped::Keyword(Some(max)), Value::Str(s)) if s.len() > *max => {
            Some(format!("{} bytes, for a keyword of at most {max}", s.len()))
        }
        (Mapped::Keyword(_), _) => None,
        (Mapped::Date(format), Value::Str(s)) => match date_format::reads(format.as_deref(), s) {
            Some(false) => Some(format!(
                "{:?} is not a date the field reads (format {})",
                s.as_str(),
                format
                    .as_deref()
                    .unwrap_or("strict_date_optional_time||epoch_millis")
            )),
            _ => None,
        },
        (Mapped::Date(_), _) => None,
        (Mapped::Number | Mapped::Integer(..), Value::Nested(_) | Value::Bool(_)) => Some(format!(
            "{} {}, for a number",
            value.type_name(),
            value.to_json()
        )),
        (Mapped::Number, v) => match number(v) {
            Some(_) => None,
            None => Some(format!("{} is not a number", v.to_json())),
        },
        (Mapped::Integer(low, high), v) => match number(v) {
            // Elasticsearch cuts the fraction off.
            Some(n) if n.trunc() >= *low as f64 && n.trunc() <= *high as f64 => None,
            Some(_) => Some(format!(
                "{} is out of the field's range ({low} to {high})",
                v.to_json()
            )),
            None => Some(format!("{} is not a number", v.to_json())),
        },
    }
}

impl Admission for IndexRules {
    fn refuses(&self, record: &Record) -> Option<String> {
        if let Some(field) = self.id_field
            && let Err(reason) = document_id(record, field)
        {
            return Some(reason);
        }
        let known = self.known.read().unwrap_or_else(|p| p.into_inner());
        let mut walk = Walk {
            rules: self,
            known: &known,
            new: Vec::new(),
        };
        for (field, value) in record.iter() {
            let name = field.name();
            if let Some(reason) = bad_name(name) {
                return Some(reason);
            }
            if let Some(reason) = walk.value(name, value, 1) {
                return Some(reason);
            }
        }
        let new = std::mem::take(&mut walk.new);
        drop(known);
        if new.is_empty() {
            return None;
        }
        let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
        let added: usize = new
            .iter()
            .filter(|(p, _)| !known.contains(p))
            .map(|(_, n)| n)
            .sum();
        if known.len() + added > self.field_limit {
            return Some(format!(
                "the index would map {} fields with this document's, more than its {} \
                 (index.mapping.total_fields.limit)",
                known.len() + added,
                self.field_limit
            ));
        }
        for (path, fields) in new {
            if fields == 2 {
                known.insert(format!("{path}.keyword"));
            }
            known.insert(path);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(v: Json) -> Record {
        ecomflow_core::testing::record(v)
    }

    fn template() -> (Json, Json) {
        let t: Json = serde_json::from_str(include_str!(
            "../../../elasticsearch/transactions-template.json"
        ))
        .expect("the shipped template");
        (t["template"]["mappings"].clone(), Json::Null)
    }

    fn good() -> Json {
        json!({"transactionId": "t-1", "productName": "laptop", "productQuantity": 2,
               "productPrice": 10.5, "transactionDate": "2025-07-19T12:34:56.123456+0000"})
    }

    fn refusal(rules: &IndexRules, change: impl FnOnce(&mut Json)) -> Option<String> {
        let mut v = good();
        change(&mut v);
        rules.refuses(&record(v))
    }

    #[test]
    fn the_shipped_template_refuses_what_elasticsearch_would() {
        let (mappings, settings) = template();
        let rules = IndexRules::new(Some(Field::new("transactionId")), &mappings, &settings);
        assert_eq!(refusal(&rules, |_| {}), None);
        type Change = Box<dyn FnOnce(&mut Json)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|v| v["transactionId"] = json!("")), "is empty"),
            (
                Box::new(|v| v["transactionId"] = json!("é".repeat(300))),
                "600 bytes long",
            ),
            (
                Box::new(|v| v["productQuantity"] = json!(3_000_000_000i64)),
                "out of the field's range",
            ),
            (
                Box::new(|v| v["productPrice"] = json!("cheap")),
                "not a number",
            ),
            (
                Box::new(|v| v["productName"] = json!({"a": 1})),
                "an object, for a keyword",
            ),
            (
                Box::new(|v| v["productName"] = json!("x".repeat(40_000))),
                "for a keyword of at most 32766",
            ),
            (Box::new(|v| v["a..b"] = json!(1)), "has two in a row"),
            (Box::new(|v| v["_id"] = json!(1)), "metadata field"),
            (Box::new(|v| v[""] = json!(1)), "a field name is empty"),
            (
                Box::new(|v| v["transactionDate"] = json!("2025-07-19 12:34:56.123456+0000")),
                "is not a date the field reads",
            ),
        ];
        for (change, want) in cases {
            let got = refusal(&rules, change).expect("refused");
            assert!(got.contains(want), "{got} (wanted {want})");
        }
    }

    #[test]
    fn new_fields_count_against_the_limit_and_are_remembered() {
        let settings = json!({"index": {"mapping": {"total_fields": {"limit": "10"}}}});
        let rules = IndexRules::new(
            None,
            &json!({"properties": {"a": {"type": "long"}}}),
            &settings,
        );
        // A new string maps two fields (text and keyword), a number one.
        let many = |n: usize, from: usize| {
            let mut v = serde_json::Map::new();
            for i in from..from + n {
                v.insert(format!("f{i}"), json!("x"));
            }
            record(Json::Object(v))
        };
        assert_eq!(rules.refuses(&many(4, 0)), None); // 1 + 8 fields
        assert_eq!(rules.refuses(&many(4, 0)), None); // the same ones again
        let e = rules.refuses(&many(1, 4)).expect("over the limit");
        assert!(
            e.contains("11 fields") && e.contains("total_fields.limit"),
            "{e}"
        );
        assert_eq!(rules.refuses(&record(json!({"a": 5}))), None);
    }

    #[test]
    fn depth_and_strict_mappings_are_enforced() {
        let settings = json!({"index.mapping.depth.limit": "2"});
        let rules = IndexRules::new(None, &json!({}), &settings);
        assert_eq!(rules.refuses(&record(json!({"a": {"b": 1}}))), None);
        let e = rules
            .refuses(&record(json!({"a": {"b": {"c": 1}}})))
            .expect("deep");
        assert!(e.contains("deeper than 2"), "{e}");
        let strict = IndexRules::new(
            None,
            &json!({"dynamic": "strict", "properties": {"a": {"type": "keyword"}}}),
            &Json::Null,
        );
        assert_eq!(strict.refuses(&record(json!({"a": "x"}))), None);
        let e = strict
            .refuses(&record(json!({"b": "x"})))
            .expect("unmapped");
        assert!(e.contains("dynamic: strict"), "{e}");
    }
}
