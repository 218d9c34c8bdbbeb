//! De-duplication of buffered rows by key: the last record of a key wins and takes the place
//! where the key was first seen. PostgreSQL refuses a multi-row upsert that touches one row
//! twice, and writing a key once is less work for either database.

use ecomflow_core::{Field, Record, Value};
use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// One key value, hashable (floats by their bits).
#[derive(Hash, PartialEq, Eq)]
enum KeyPart<'a> {
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(&'a str),
    Json(String),
}

/// The key of `record`, or `None` when a key field is missing or null (SQL keys never match
/// NULL, so such rows are kept apart).
fn key_of<'a>(record: &'a Record, key: &[Field]) -> Option<Vec<KeyPart<'a>>> {
    key.iter()
        .map(|f| {
            Some(match record.get(*f)? {
                Value::Null => return None,
                Value::Bool(b) => KeyPart::Bool(*b),
                Value::Int(i) => KeyPart::Int(*i),
                Value::Float(x) => KeyPart::Float(x.to_bits()),
                Value::Str(s) => KeyPart::Str(s),
                Value::Nested(v) => KeyPart::Json(v.to_string()),
            })
        })
        .collect()
}

/// Reduces `records` to one per key in place: first-seen order, last value. Returns how many
/// were dropped. Nothing happens when `key` is empty.
pub fn dedup_by_key(records: &mut Vec<Record>, key: &[Field]) -> usize {
    if key.is_empty() || records.len() < 2 {
        return 0;
    }
    // For each output slot, the index of the record that wins it.
    let mut winners: Vec<usize> = Vec::with_capacity(records.len());
    {
        let mut slot_of: HashMap<Vec<KeyPart<'_>>, usize> = HashMap::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            match key_of(r, key) {
                None => winners.push(i),
                Some(k) => match slot_of.entry(k) {
                    Entry::Occupied(slot) => winners[*slot.get()] = i,
                    Entry::Vacant(slot) => {
                        slot.insert(winners.len());
                        winners.push(i);
                    }
                },
            }
        }
    }
    let dropped = records.len() - winners.len();
    if dropped == 0 {
        return 0;
    }
    let mut all: Vec<Option<Record>> = std::mem::take(records).into_iter().map(Some).collect();
    records.extend(winners.into_iter().filter_map(|i| all[i].take()));
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(json: serde_json::Value) -> Record {
        let serde_json::Value::Object(map) = json else {
            panic!("not an object")
        };
        let mut r = Record::default();
        for (k, v) in map {
            r.push(Field::new(&k), Value::from_json(v));
        }
        r
    }

    #[test]
    fn last_value_wins_in_first_seen_order() {
        let key = [Field::new("day"), Field::new("category")];
        let mut rows = vec![
            rec(json!({"day": "d1", "category": "home", "total": 1})),
            rec(json!({"day": "d1", "category": "office", "total": 2})),
            rec(json!({"day": "d1", "category": "home", "total": 3})),
            rec(json!({"day": "d2", "category": "home", "total": 4})),
            rec(json!({"day": "d1", "category": "office", "total": 5})),
        ];
        assert_eq!(dedup_by_key(&mut rows, &key), 2);
        let totals: Vec<_> = rows.iter().map(|r| r.to_json()["total"].clone()).collect();
        assert_eq!(totals, [json!(3), json!(5), json!(4)]);
    }

    #[test]
    fn types_are_distinct_and_null_keys_are_never_merged() {
        let key = [Field::new("id")];
        let mut rows = vec![
            rec(json!({"id": 1, "v": "a"})),
            rec(json!({"id": "1", "v": "b"})),
            rec(json!({"id": null, "v": "c"})),
            rec(json!({"v": "d"})),
            rec(json!({"id": null, "v": "e"})),
        ];
        assert_eq!(dedup_by_key(&mut rows, &key), 0);
        assert_eq!(rows.len(), 5);
    }

    #[test]
    fn no_key_keeps_everything() {
        let mut rows = vec![rec(json!({"id": 1})), rec(json!({"id": 1}))];
        assert_eq!(dedup_by_key(&mut rows, &[]), 0);
        assert_eq!(rows.len(), 2);
    }
}
