//! The `_bulk` wire format: the NDJSON body built from records, and the per-item results read
//! back from the response.

use ecomflow_core::{Field, Record, Value};
use ecomflow_json::{JsonDecoder, encode_line};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Range;

/// The longest `_id` Elasticsearch accepts, in bytes.
const MAX_ID_BYTES: usize = 512;

/// Documents waiting to be sent: their action and source lines, back to back.
#[derive(Default)]
pub struct Buffer {
    /// The NDJSON of every document, in order.
    pub body: Vec<u8>,
    /// Where each document's two lines are in `body`.
    pub docs: Vec<Range<usize>>,
    /// A hash of each document's `_id`, when it has one (so two requests in flight never
    /// hold the same document).
    ids: Vec<Option<u64>>,
}

impl Buffer {
    /// Appends `record` as an `index` action, with its `_id` read from `id_field` when set.
    /// A record whose id cannot be read is not added: the reason is returned.
    pub fn push(&mut self, record: &Record, id_field: Option<Field>) -> Result<(), String> {
        let id = match id_field {
            Some(f) => Some(document_id(record, f)?),
            None => None,
        };
        let start = self.body.len();
        self.ids.push(id.as_ref().map(|id| {
            let mut h = DefaultHasher::new();
            id.hash(&mut h);
            h.finish()
        }));
        match id {
            Some(id) => {
                self.body.extend_from_slice(br#"{"index":{"_id":"#);
                // Writing a string into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut self.body, &id);
                self.body.extend_from_slice(b"}}\n");
            }
            None => self.body.extend_from_slice(b"{\"index\":{}}\n"),
        }
        encode_line(record, &mut self.body);
        self.docs.push(start..self.body.len());
        Ok(())
    }

    /// How many documents are waiting.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// True when no document is waiting.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The bytes of documents `docs` (a range of positions), back to back.
    pub fn slice(&self, docs: Range<usize>) -> &[u8] {
        match (self.docs.get(docs.start), docs.end.checked_sub(1)) {
            (Some(first), Some(last)) if last >= docs.start => match self.docs.get(last) {
                Some(l) => &self.body[first.start..l.end],
                None => &[],
            },
            _ => &[],
        }
    }

    /// A body holding only the documents at `positions`.
    pub fn select(&self, positions: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in positions.iter().filter_map(|&p| self.docs.get(p)) {
            out.extend_from_slice(&self.body[r.clone()]);
        }
        out
    }

    /// The hashes of the documents' ids.
    pub fn id_hashes(&self) -> HashSet<u64> {
        self.ids.iter().flatten().copied().collect()
    }

    /// Takes the first `n` documents out, as a buffer of their own.
    pub fn split_front(&mut self, n: usize) -> Buffer {
        let n = n.min(self.docs.len());
        if n == self.docs.len() {
            return std::mem::take(self);
        }
        let cut = self.docs.get(n).map_or(self.body.len(), |next| next.start);
        let front = Buffer {
            body: self.body[..cut].to_vec(),
            docs: self.docs[..n].to_vec(),
            ids: self.ids[..n].to_vec(),
        };
        self.drain_front(n);
        front
    }

    /// Drops the first `n` documents, keeping the rest.
    pub fn drain_front(&mut self, n: usize) {
        let n = n.min(self.docs.len());
        let cut = match (n, self.docs.get(n)) {
            (0, _) => return,
            (_, Some(next)) => next.start,
            (_, None) => self.body.len(),
        };
        self.body.drain(..cut);
        self.docs.drain(..n);
        self.ids.drain(..n);
        for r in &mut self.docs {
            *r = r.start - cut..r.end - cut;
        }
    }

    /// The record of the document at `position`, decoded back from its source line (for dead
    /// letters, which are rare: the buffer keeps bytes, not records).
    pub fn record(&self, position: usize) -> Record {
        let source = self
            .docs
            .get(position)
            .map(|r| &self.body[r.clone()])
            .and_then(|doc| {
                doc.iter()
                    .position(|&b| b == b'\n')
                    .map(|nl| &doc[nl + 1..])
            })
            .unwrap_or_default();
        let source = source.strip_suffix(b"\n").unwrap_or(source);
        JsonDecoder::new().decode(source).unwrap_or_default()
    }

    /// Empties the buffer.
    pub fn clear(&mut self) {
        self.body.clear();
        self.docs.clear();
        self.ids.clear();
    }
}

/// The `_id` of `record`: the value of `field` as text.
pub(crate) fn document_id(record: &Record, field: Field) -> Result<String, String> {
    let id = match record.get(field) {
        Some(Value::Str(s)) => s.to_string(),
        Some(Value::Int(i)) => i.to_string(),
        Some(Value::Float(f)) if f.is_finite() => f.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        None | Some(Value::Null) => return Err(format!("no `{field}` field for the document id")),
        Some(other) => {
            return Err(format!(
                "`{field}` is {} {}, not a document id",
                article(other.type_name()),
                other.type_name()
            ));
        }
    };
    if id.is_empty() {
        return Err(format!("`{field}` is empty, not a document id"));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!(
            "`{field}` is {} bytes long; a document id has at most {MAX_ID_BYTES}",
            id.len()
        ));
    }
    Ok(id)
}

fn article(type_name: &str) -> &'static str {
    if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// What happened to one document of a `_bulk` request.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Stored.
    Done,
    /// Rejected for now (429, 5xx): send it again. Holds Elasticsearch's reason.
    Retry(String),
    /// Rejected for good (a mapping error, say). Holds Elasticsearch's reason.
    Failed(String),
}

/// The fields of a `_bulk` response the sink reads (asked for with `filter_path`).
#[derive(Deserialize)]
struct BulkResponse {
    #[serde(default)]
    items: Vec<HashMap<String, Item>>,
}

#[derive(Deserialize)]
struct Item {
    status: u16,
    #[serde(default)]
    error: Option<ErrorCause>,
}

/// An Elasticsearch error: its type, reason and cause.
#[derive(Deserialize)]
pub struct ErrorCause {
    #[serde(default, rename = "type")]
    ty: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    caused_by: Option<Box<ErrorCause>>,
}

impl std::fmt::Display for ErrorCause {
    /// `type: reason`, followed by ` (caused by type: reason)` for each cause.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.ty, &self.reason) {
            (Some(t), Some(r)) => write!(f, "{t}: {r}")?,
            (Some(t), None) => f.write_str(t)?,
            (None, Some(r)) => f.write_str(r)?,
            (None, None) => f.write_str("unknown error")?,
        }
        if let Some(cause) = &self.caused_by {
            write!(f, " (caused by {cause})")?;
        }
        Ok(())
    }
}

/// Reads the outcome of each of `sent` documents from a `_bulk` response body.
pub fn outcomes(body: &[u8], sent: usize) -> Result<Vec<Outcome>, String> {
    let response: BulkResponse = serde_json::from_slice(body)
        .map_err(|e| format!("unreadable _bulk response ({e}): {}", preview(body)))?;
    if response.items.len() != sent {
        return Err(format!(
            "the _bulk response has {} results for {sent} documents",
            response.items.len()
        ));
    }
    Ok(response
        .items
        .into_iter()
        .map(|item| {
            let Some(item) = item.into_values().next() else {
                return Outcome::Failed("empty result in the _bulk response".into());
            };
            let reason = || match &item.error {
                Some(e) => e.to_string(),
                None => format!("status {}", item.status),
            };
            match item.status {
                200..=299 => Outcome::Done,
                429 | 500..=599 => Outcome::Retry(reason()),
                _ => Outcome::Failed(reason()),
            }
        })
        .collect())
}

/// The `error` of an Elasticsearch error response, as `type: reason`, or the body's start.
pub fn error_of(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorResponse {
        error: ErrorCause,
    }
    match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(r) => r.error.to_string(),
        Err(_) => preview(body),
    }
}

/// The start of a body, for messages.
fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::record;
    use serde_json::json;

    fn buffer(n: usize) -> Buffer {
        let mut b = Buffer::default();
        for i in 0..n {
            b.push(
                &record(json!({ "id": i, "v": "x" })),
                Some(Field::new("id")),
            )
            .expect("pushed");
        }
        b
    }

    #[test]
    fn documents_are_action_and_source_lines() {
        let b = buffer(2);
        let text = String::from_utf8(b.slice(0..2).to_vec()).expect("utf8");
        assert_eq!(
            text,
            "{\"index\":{\"_id\":\"0\"}}\n{\"id\":0,\"v\":\"x\"}\n\
             {\"index\":{\"_id\":\"1\"}}\n{\"id\":1,\"v\":\"x\"}\n"
        );
        assert_eq!(b.select(&[1]), b.slice(1..2));
        assert_eq!(b.record(1), record(json!({ "id": 1, "v": "x" })));
        let mut no_id = Buffer::default();
        no_id
            .push(&record(json!({ "a": "\"q\"" })), None)
            .expect("pushed");
        assert_eq!(no_id.body, b"{\"index\":{}}\n{\"a\":\"\\\"q\\\"\"}\n");
    }

    #[test]
    fn draining_keeps_the_rest_addressable() {
        let mut b = buffer(5);
        let rest = b.slice(3..5).to_vec();
        b.drain_front(3);
        assert_eq!(b.len(), 2);
        assert_eq!(b.slice(0..2), rest.as_slice());
        assert_eq!(b.record(0), record(json!({ "id": 3, "v": "x" })));
        b.drain_front(2);
        assert!(b.is_empty() && b.body.is_empty());
    }

    #[test]
    fn the_front_splits_off_with_its_ids() {
        let mut b = buffer(5);
        let (front_bytes, rest_bytes) = (b.slice(0..2).to_vec(), b.slice(2..5).to_vec());
        let front = b.split_front(2);
        assert_eq!(front.len(), 2);
        assert_eq!(front.slice(0..2), front_bytes.as_slice());
        assert_eq!(b.slice(0..3), rest_bytes.as_slice());
        assert_eq!(front.id_hashes().len(), 2);
        assert!(front.id_hashes().is_disjoint(&b.id_hashes()));
        let again = buffer(1).id_hashes();
        assert!(
            again.is_subset(&front.id_hashes()),
            "the same id, the same hash"
        );
        let all = b.split_front(10);
        assert_eq!(all.len(), 3);
        assert!(b.is_empty() && b.body.is_empty());
        let mut no_id = Buffer::default();
        no_id
            .push(&record(json!({ "a": 1 })), None)
            .expect("pushed");
        assert!(no_id.id_hashes().is_empty());
    }

    #[test]
    fn ids_are_read_as_text_or_refused() {
        let id = Field::new("id");
        let mut b = Buffer::default();
        for (value, ok) in [
            (json!("a\"b"), true),
            (json!(7), true),
            (json!(1.5), true),
            (json!(""), false),
            (json!(null), false),
            (json!({ "x": 1 }), false),
            (json!("x".repeat(513)), false),
        ] {
            let r = b.push(&record(json!({ "id": value })), Some(id));
            assert_eq!(r.is_ok(), ok, "{value}: {r:?}");
        }
        assert!(String::from_utf8_lossy(&b.body).starts_with("{\"index\":{\"_id\":\"a\\\"b\"}}\n"));
        let e = b
            .push(&record(json!({ "id": [1] })), Some(id))
            .expect_err("array");
        assert_eq!(e, "`id` is an array, not a document id");
    }

    #[test]
    fn each_item_is_read() {
        let body = json!({ "items": [
            { "index": { "status": 201 } },
            { "index": { "status": 400, "error": { "type": "document_parsing_exception",
                "reason": "failed to parse field [q]",
                "caused_by": { "type": "number_format_exception", "reason": "For input string: \"many\"" } } } },
            { "index": { "status": 429, "error": { "type": "es_rejected_execution_exception", "reason": "busy" } } },
            { "create": { "status": 503 } },
        ] })
        .to_string();
        let got = outcomes(body.as_bytes(), 4).expect("read");
        assert_eq!(
            got,
            [
                Outcome::Done,
                Outcome::Failed(
                    "document_parsing_exception: failed to parse field [q] (caused by \
                     number_format_exception: For input string: \"many\")"
                        .into()
                ),
                Outcome::Retry("es_rejected_execution_exception: busy".into()),
                Outcome::Retry("status 503".into()),
            ]
        );
        let e = outcomes(body.as_bytes(), 3).expect_err("count differs");
        assert!(e.contains("4 results for 3 documents"), "{e}");
        assert!(
            outcomes(b"<html>", 1)
                .expect_err("not JSON")
                .contains("<html>")
        );
    }
}
